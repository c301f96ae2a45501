// Multi-round-trip requests (2026-07-28) end to end: the fixture's confirm_delete answers its
// first round with `input_required` (a form elicitation plus a request state), the v2 client
// fulfils it through its elicitation handler and retries with a new id, and the proxy relays
// both rounds, gates the retry again, and charges the rate limit once for the whole round trip.
// Run in every pairing that carries 2026-07-28 traffic: the stdio proxy in front of the stdio
// server, the HTTP listener in front of the stdio server, the stdio proxy in front of the HTTP
// server, and the HTTP listener in front of the HTTP server. A 2025-era client closes the file: there the server SDK's legacy shim turns the
// same tool into a real elicitation/create request, which must cross the proxy both ways.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/client';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { assertDenied, assertNotDenied, MODERN, textOf } from '../support/messages.js';
import { servers, type ServerCommand } from '../support/servers.js';
import { connectV2, proxyParams, upstreamParams, type Session, type WireMessage } from '../support/sdk-clients.js';
import { connectStreamableV2, startListener, type Listener } from '../support/listener.js';
import { startModernHttpServer, type ModernHttpServer } from '../fixtures/modern-http-server.js';

const TIMEOUT = { timeout: 90_000 };

const RATE_LIMITED = `version: "1"
description: "one confirmed deletion a minute"
tools:
  confirm_delete:
    rules:
      - name: "one deletion a minute"
        action: allow
        rate_limit: { max: 1, window: 60 }
`;

const DENIED = `version: "1"
description: "no deletions"
tools:
  confirm_delete:
    rules:
      - name: "no deletions"
        action: deny
        on_deny: "Deletions are not allowed"
`;

/** The stdio fixture with confirm_delete switched on. */
function confirmServer(): ServerCommand {
  const base = servers.modern();
  return { ...base, args: [...base.args, '--with-confirm'] };
}

/** What the client's elicitation handler was asked, and how it answers (accept, confirm). */
interface Elicitations {
  messages: string[];
  setup(client: Client): void;
}

function elicitations(): Elicitations {
  const messages: string[] = [];
  return {
    messages,
    setup(client) {
      client.setRequestHandler('elicitation/create', async (request) => {
        messages.push(String((request.params as { message?: unknown }).message));
        return { action: 'accept', content: { confirm: true } };
      });
    },
  };
}

/** The calls the fixture server has executed, one `<tool> <arguments JSON>` per line. */
async function seen(client: Client): Promise<string[]> {
  const text = textOf(await client.callTool({ name: 'seen', arguments: {} }));
  return text === '' ? [] : text.split('\n');
}

const deletions = (lines: string[]) => lines.filter((l) => l.startsWith('confirm_delete '));

/** The tools/call requests the client sent for `tool`, in order. */
function callsOf(sent: WireMessage[], tool: string): WireMessage[] {
  return sent.filter((m) => m.method === 'tools/call' && m.params?.name === tool);
}

interface Connected {
  session: Session<Client>;
  elicited: Elicitations;
  close(): Promise<void>;
}

/** One way of putting the proxy between a pinned 2026-07-28 client and the fixture. */
interface Pairing {
  name: string;
  connect(policy: string): Promise<Connected>;
}

const pinned = { versionNegotiation: { mode: { pin: MODERN } } as const, capabilities: { elicitation: { form: {} } } };

const pairings: Pairing[] = [
  {
    name: 'the proxy over stdio in front of the stdio server',
    async connect(policy) {
      const elicited = elicitations();
      const session = await connectV2(proxyParams(policy, confirmServer()), { ...pinned, setup: elicited.setup });
      return { session, elicited, close: () => session.close() };
    },
  },
  {
    name: 'the HTTP listener in front of the stdio server',
    async connect(policy) {
      const elicited = elicitations();
      const listener: Listener = await startListener(policy, confirmServer());
      try {
        const session = await connectStreamableV2(listener, { ...pinned, setup: elicited.setup });
        return {
          session,
          elicited,
          async close() {
            await session.close().catch(() => {});
            await listener.stop();
          },
        };
      } catch (err) {
        await listener.stop();
        throw err;
      }
    },
  },
  {
    name: 'the proxy over stdio in front of the HTTP server',
    async connect(policy) {
      const elicited = elicitations();
      // A server of its own, so what it has run (`seen`) is this connection's alone.
      const server: ModernHttpServer = await startModernHttpServer({ withConfirm: true });
      try {
        const session = await connectV2(upstreamParams(policy, server.url), { ...pinned, setup: elicited.setup });
        return {
          session,
          elicited,
          async close() {
            await session.close().catch(() => {});
            await server.close();
          },
        };
      } catch (err) {
        await server.close();
        throw err;
      }
    },
  },
  {
    name: 'the HTTP listener in front of the HTTP server',
    async connect(policy) {
      const elicited = elicitations();
      const server: ModernHttpServer = await startModernHttpServer({ withConfirm: true });
      let listener: Listener | undefined;
      try {
        listener = await startListener(policy, undefined, { upstream: server.url });
        const session = await connectStreamableV2(listener, { ...pinned, setup: elicited.setup });
        const started = listener;
        return {
          session,
          elicited,
          async close() {
            await session.close().catch(() => {});
            await started.stop();
            await server.close();
          },
        };
      } catch (err) {
        await listener?.stop();
        await server.close();
        throw err;
      }
    },
  },
];

let dir: TempDir;
let rateLimited: string;
let denied: string;

before(async () => {
  dir = await makeTempDir('intercept-mrtr-');
  rateLimited = await writePolicy(dir.path, RATE_LIMITED, 'rate-limited.yaml');
  denied = await writePolicy(dir.path, DENIED, 'denied.yaml');
});

after(async () => {
  await dir?.cleanup();
});

for (const pairing of pairings) {
  describe(`input_required through ${pairing.name} (v2 client pinned to ${MODERN})`, TIMEOUT, () => {
    describe('with one confirmed deletion a minute', () => {
      let c: Connected;
      before(async () => {
        c = await pairing.connect(rateLimited);
      });
      after(async () => {
        await c?.close();
      });

      it("completes the round trip with the server's result, asking the client once", async () => {
        assert.equal(c.session.client.getProtocolEra(), 'modern');
        const before = deletions(await seen(c.session.client));
        const result = await c.session.client.callTool({ name: 'confirm_delete', arguments: { target: 'alpha' } });
        assertNotDenied(result);
        assert.equal(textOf(result), 'Deleted alpha');
        assert.deepEqual(c.elicited.messages, ['Delete alpha?']);
        // The server ran it exactly once, although it was asked twice.
        assert.deepEqual(deletions(await seen(c.session.client)).slice(before.length), ['confirm_delete {"target":"alpha"}']);
      });

      it('relays input_required verbatim and the retry (new id, inputResponses, requestState) upstream', () => {
        const calls = callsOf(c.session.wire.sent, 'confirm_delete');
        assert.equal(calls.length, 2, `two rounds: ${JSON.stringify(calls)}`);
        const [first, retry] = calls as [WireMessage, WireMessage];
        assert.notEqual(first.id, retry.id);
        assert.equal(first.params?.inputResponses, undefined);

        const asked = c.session.wire.responseTo(first.id)?.result;
        assert.equal(asked?.resultType, 'input_required');
        assert.equal(asked?.requestState, 'confirm:alpha');
        const request = (asked?.inputRequests as Record<string, { method: string; params: Record<string, unknown> }> | undefined)?.confirm;
        assert.equal(request?.method, 'elicitation/create');
        assert.equal(request?.params.message, 'Delete alpha?');

        assert.deepEqual(retry.params?.arguments, { target: 'alpha' });
        assert.equal(retry.params?.requestState, 'confirm:alpha');
        assert.deepEqual(retry.params?.inputResponses, { confirm: { action: 'accept', content: { confirm: true } } });
        assert.equal(c.session.wire.responseTo(retry.id)?.result?.resultType, 'complete');
      });

      it('counted the whole round trip once: the next logical call is denied in its first round', async () => {
        const askedBefore = c.elicited.messages.length;
        const sentBefore = callsOf(c.session.wire.sent, 'confirm_delete').length;
        const result = await c.session.client.callTool({ name: 'confirm_delete', arguments: { target: 'beta' } });
        assertDenied(result, { kind: 'rate_limit', message: /^Rate limit of 1 call per minute reached for "confirm_delete"/ });
        assert.equal(c.elicited.messages.length, askedBefore, 'the client was not asked to confirm a denied call');
        assert.equal(callsOf(c.session.wire.sent, 'confirm_delete').length, sentBefore + 1, 'one round only');
        assert.deepEqual(deletions(await seen(c.session.client)), ['confirm_delete {"target":"alpha"}']);
      });
    });

    describe('with deletions denied', () => {
      let c: Connected;
      before(async () => {
        c = await pairing.connect(denied);
      });
      after(async () => {
        await c?.close();
      });

      it('denies the first round: the server never asks and never runs it', async () => {
        const result = await c.session.client.callTool({ name: 'confirm_delete', arguments: { target: 'gamma' } });
        assertDenied(result, { kind: 'deny_rule', rule: 'no deletions', message: 'Deletions are not allowed' });
        assert.deepEqual(c.elicited.messages, []);
        const calls = callsOf(c.session.wire.sent, 'confirm_delete');
        assert.equal(calls.length, 1);
        assert.equal(c.session.wire.responseTo(calls[0]!.id)?.result?.resultType, 'complete');
        assert.deepEqual(deletions(await seen(c.session.client)), []);
      });
    });
  });
}

describe('the same tool for a 2025-era client: the legacy shim sends elicitation/create through the proxy', TIMEOUT, () => {
  let session: Session<Client>;
  let elicited: Elicitations;
  before(async () => {
    elicited = elicitations();
    session = await connectV2(proxyParams(rateLimited, confirmServer()), { capabilities: { elicitation: { form: {} } }, setup: elicited.setup });
  });
  after(async () => {
    await session?.close();
  });

  it('relays the server\'s request to the client and its answer back, and the call completes once', async () => {
    assert.equal(session.client.getProtocolEra(), 'legacy');
    const result = await session.client.callTool({ name: 'confirm_delete', arguments: { target: 'delta' } });
    assertNotDenied(result);
    assert.equal(textOf(result), 'Deleted delta');
    assert.deepEqual(elicited.messages, ['Delete delta?']);

    // One tools/call on the wire; the server's question arrived as a real request, and the
    // client's answer went back under the id the client received.
    assert.equal(callsOf(session.wire.sent, 'confirm_delete').length, 1);
    const asked = session.wire.requestsReceived().filter((m) => m.method === 'elicitation/create');
    assert.equal(asked.length, 1);
    assert.equal(asked[0]!.params?.message, 'Delete delta?');
    const answer = session.wire.sent.find((m) => m.method === undefined && m.id === asked[0]!.id);
    assert.deepEqual(answer?.result, { action: 'accept', content: { confirm: true } });
    assert.deepEqual(session.wire.strayResponses(), []);
    assert.deepEqual(deletions(await seen(session.client)), ['confirm_delete {"target":"delta"}']);
  });

  it('charged that call once: the next one is denied without asking', async () => {
    const result = await session.client.callTool({ name: 'confirm_delete', arguments: { target: 'epsilon' } });
    assertDenied(result, { kind: 'rate_limit' });
    assert.equal(elicited.messages.length, 1);
  });
});
