// approval_mode: client end to end: the human is asked inside the agent's own MCP client. With a
// 2025 client (the v1 SDK) the proxy sends elicitation/create while the call is held; with a
// 2026-07-28 client (the v2 SDK, pinned) it answers input_required and the client's retry brings
// the answer. The fixture server records what it ran (`seen`), so a denied call is shown never
// to reach it. A client that cannot show a form falls back to hold (approved from the CLI), and
// answers forged, replayed or moved to other arguments by a raw client are refused.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Client as V2Client } from '@modelcontextprotocol/client';
import { approvalsCli, type ApprovalsCli } from '../support/approvals-cli.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { deferred, eventually } from '../support/wait.js';
import { assertDenied, assertNotDenied, isRecord, MODERN, modernBody, textOf, type Json } from '../support/messages.js';
import { servers, type ServerCommand } from '../support/servers.js';
import { connectV1, connectV2, proxyParams, type Session } from '../support/sdk-clients.js';
import { startProxy, type RawProxy } from '../support/raw-proxy.js';
import { connectStreamableV1, connectStreamableV2, startListener, type Listener } from '../support/listener.js';

const TIMEOUT = { timeout: 120_000 };

const POLICY = `version: "1"
tools:
  echo:
    rules:
      - name: "asked in the client"
        action: require_approval
        approval_mode: client
        timeout: 60s
        on_deny: "Echoes need the user's yes"
  confirm_delete:
    rules:
      - name: "deletions asked in the client"
        action: require_approval
        approval_mode: client
  delete_all:
    rules:
      - name: "operator only"
        action: require_approval
        approval_mode: retry
`;

let dir: TempDir;
let policy: string;
let stateDir: string;
let cli: ApprovalsCli;

before(async () => {
  dir = await makeTempDir('intercept-approvals-client-');
  policy = await writePolicy(dir.path, POLICY);
  stateDir = `${dir.path}/state`;
  cli = approvalsCli(policy, stateDir);
});
after(async () => {
  await dir?.cleanup();
});

function fixture(): ServerCommand {
  const base = servers.modern();
  return { ...base, args: [...base.args, '--with-confirm'] };
}

const proxyFor = () => proxyParams(policy, fixture(), { flags: ['--state-dir', stateDir] });

/** What the fixture has run, one `<tool> <arguments JSON>` per line. */
async function seen(client: { callTool(p: { name: string; arguments: Json }): Promise<unknown> }): Promise<string[]> {
  const text = textOf(await client.callTool({ name: 'seen', arguments: {} }));
  return text === '' ? [] : text.split('\n');
}

const runs = (lines: string[], marker: string) => lines.filter((l) => l.includes(marker)).length;

/** How the client's human answers the proxy's form, and what they were shown. */
type Answer = { action: 'accept'; content: Record<string, string | boolean> } | { action: 'decline' } | { action: 'cancel' };

describe('approval in a 2025 client (elicitation)', TIMEOUT, () => {
  let session: Session<V1Client>;
  const shown: string[] = [];
  let answer: (message: string, signal: AbortSignal) => Promise<Answer> = async () => ({ action: 'decline' });

  before(async () => {
    session = await connectV1(proxyFor(), {
      capabilities: { elicitation: {} },
      setup: (client) =>
        client.setRequestHandler(ElicitRequestSchema, async (request, extra) => {
          const message = String(request.params.message);
          shown.push(message);
          return answer(message, extra.signal);
        }),
    });
  });
  after(async () => {
    await session?.close();
  });

  it('asks the user with the tool, the rule and the arguments; a yes runs the call once, recorded as decided in the client', async () => {
    answer = async () => ({ action: 'accept', content: { approve: true, reason: 'looks fine' } });
    const result = await session.client.callTool({ name: 'echo', arguments: { message: 'v1 yes' } });
    assertNotDenied(result);
    assert.equal(textOf(result), 'Echo: v1 yes');
    const question = shown.at(-1)!;
    assert.match(question, /"echo"/);
    assert.match(question, /"asked in the client"/);
    assert.match(question, /"message": "v1 yes"/);
    assert.equal(runs(await seen(session.client), 'v1 yes'), 1);
    const record = await cli.requestFor('echo', 'v1 yes', 'used');
    assert.equal(record.mode, 'client');
    assert.equal(record.via, 'client');
    assert.equal(record.decidedBy, 'intercept-e2e@1.0.0');
    assert.equal(record.reason, 'looks fine');
  });

  it('denies what the user declines, and what they accept without approving (with their reason); neither reaches the server', async () => {
    answer = async () => ({ action: 'decline' });
    assertDenied(await session.client.callTool({ name: 'echo', arguments: { message: 'v1 declined' } }), {
      kind: 'approval_denied',
      rule: 'asked in the client',
      message: /Echoes need the user.s yes: declined in the client/,
    });
    answer = async () => ({ action: 'accept', content: { approve: false, reason: 'not today' } });
    assertDenied(await session.client.callTool({ name: 'echo', arguments: { message: 'v1 refused' } }), {
      kind: 'approval_denied',
      message: /not today/,
    });
    const lines = await seen(session.client);
    assert.equal(runs(lines, 'v1 declined'), 0);
    assert.equal(runs(lines, 'v1 refused'), 0);
    assert.equal((await cli.requestFor('echo', 'v1 refused', 'denied')).via, 'client');
  });

  it('lets an operator decide while the form is open, and then closes the form in the client', async () => {
    const closed = deferred();
    answer = (_message, signal) =>
      new Promise((resolve) => {
        signal.addEventListener('abort', () => {
          closed.resolve();
          resolve({ action: 'cancel' });
        });
      });
    const call = session.client.callTool({ name: 'echo', arguments: { message: 'v1 operator' } });
    const request = await cli.requestFor('echo', 'v1 operator');
    const approved = await cli.run('approve', String(request.id));
    assert.equal(approved.code, 0, approved.stderr);
    assertNotDenied(await call);
    await closed.promise;
    assert.equal((await cli.requestFor('echo', 'v1 operator', 'used')).via, 'cli');
  });
});

describe('approval with a client that cannot show a form', TIMEOUT, () => {
  it('holds the call as hold does, for a decision from the command line', async () => {
    const session = await connectV1(proxyFor());
    try {
      const call = session.client.callTool({ name: 'echo', arguments: { message: 'no form' } });
      const request = await cli.requestFor('echo', 'no form');
      assert.equal(request.mode, 'client');
      assert.equal((await cli.run('approve', String(request.id), '--reason', 'by hand')).code, 0);
      assertNotDenied(await call);
      assert.equal(runs(await seen(session.client), 'no form'), 1);
      assert.match(session.stderr(), /the client cannot show a form/);
    } finally {
      await session.close();
    }
  });
});

describe('approval in a 2026-07-28 client (input_required)', TIMEOUT, () => {
  let session: Session<V2Client>;
  const shown: string[] = [];
  let answer: (message: string) => Answer = () => ({ action: 'decline' });

  before(async () => {
    session = await connectV2(proxyFor(), {
      versionNegotiation: { mode: { pin: MODERN } },
      capabilities: { elicitation: { form: {} } },
      setup: (client) =>
        client.setRequestHandler('elicitation/create', async (request) => {
          const message = String((request.params as { message?: unknown }).message);
          shown.push(message);
          return answer(message);
        }),
    });
  });
  after(async () => {
    await session?.close();
  });

  it('asks through input_required; the retry with a yes runs the call once', async () => {
    answer = () => ({ action: 'accept', content: { approve: true } });
    const result = await session.client.callTool({ name: 'echo', arguments: { message: 'v2 yes' } });
    assertNotDenied(result);
    assert.equal(textOf(result), 'Echo: v2 yes');
    assert.match(shown.at(-1)!, /"message": "v2 yes"/);
    assert.equal(runs(await seen(session.client), 'v2 yes'), 1);
    const record = await cli.requestFor('echo', 'v2 yes', 'used');
    assert.equal(record.via, 'client');
    assert.equal(record.decidedBy, 'intercept-e2e@2.0.0');
  });

  it('denies what the user declines; the server never sees it', async () => {
    answer = () => ({ action: 'decline' });
    assertDenied(await session.client.callTool({ name: 'echo', arguments: { message: 'v2 declined' } }), {
      kind: 'approval_denied',
      message: /declined in the client/,
    });
    assert.equal(runs(await seen(session.client), 'v2 declined'), 0);
  });

  it("gates each round of a server's own multi-round call: the user approves, the server asks, the user approves again", async () => {
    answer = (message): Answer => ({ action: 'accept', content: message.startsWith('Delete ') ? { confirm: true } : { approve: true } });
    const before = shown.length;
    const result = await session.client.callTool({ name: 'confirm_delete', arguments: { target: 'old-logs' } });
    assert.equal(textOf(result), 'Deleted old-logs');
    const asked = shown.slice(before).map((m) => (m.startsWith('Delete ') ? 'server' : 'proxy'));
    assert.deepEqual(asked, ['proxy', 'server', 'proxy']);
    assert.equal(runs(await seen(session.client), 'old-logs'), 1);
  });
});

describe('approval in the client through the HTTP listener', TIMEOUT, () => {
  let listener: Listener;
  before(async () => {
    listener = await startListener(policy, fixture(), { flags: ['--state-dir', stateDir] });
  });
  after(async () => {
    await listener?.stop();
  });

  it("puts a 2025 client's elicitation on the held call's stream, and takes its answer from a POST", async () => {
    const session = await connectStreamableV1(listener, {
      capabilities: { elicitation: {} },
      setup: (client) => client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { approve: true } })),
    });
    try {
      assertNotDenied(await session.client.callTool({ name: 'echo', arguments: { message: 'http v1' } }));
      assert.equal(runs(await seen(session.client), 'http v1'), 1);
    } finally {
      await session.close();
    }
  });

  it('carries the input_required round of a stateless 2026-07-28 client', async () => {
    const session = await connectStreamableV2(listener, {
      versionNegotiation: { mode: { pin: MODERN } },
      capabilities: { elicitation: { form: {} } },
      setup: (client) => client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { approve: true } })),
    });
    try {
      assertNotDenied(await session.client.callTool({ name: 'echo', arguments: { message: 'http v2' } }));
      assert.equal(runs(await seen(session.client), 'http v2'), 1);
      assert.equal((await cli.requestFor('echo', 'http v2', 'used')).via, 'client');
    } finally {
      await session.close();
    }
  });
});

/** The proxy's request state for request `id`, as a client could build it (the format is not
 * a secret: what protects the call is the store's record behind the id). */
const stateFor = (id: string) => `intercept-approval.${Buffer.from(JSON.stringify({ id }), 'utf8').toString('base64url')}`;
const yes = { 'intercept/approval': { action: 'accept', content: { approve: true } } };

describe('answers a raw client forges, replays or moves', TIMEOUT, () => {
  let proxy: RawProxy;
  const call = (id: number, name: string, args: Json, extra: Json = {}) => {
    const body = modernBody(id, 'tools/call', { name, arguments: args, ...extra });
    ((body.params as Json)._meta as Json)['io.modelcontextprotocol/clientCapabilities'] = { elicitation: { form: {} } };
    return body;
  };
  const ask = async (name: string, args: Json, extra: Json = {}): Promise<Json> => {
    const id = proxy.freshId();
    proxy.sendJson(call(id, name, args, extra));
    return proxy.response(id, 20_000);
  };
  const seenRaw = async () => {
    const r = await ask('seen', {});
    return textOf(r.result).split('\n');
  };

  before(() => {
    const server = fixture();
    proxy = startProxy(['-c', policy, '--state-dir', stateDir, '--', server.command, ...server.args]);
  });
  after(async () => {
    await proxy?.close().catch(() => {});
  });

  it('never lets an answer approve an operator-only request', async () => {
    const pending = await ask('delete_all', {});
    assertDenied(pending.result, { kind: 'approval_pending' });
    const meta = (pending.result as Json)._meta as Json;
    const id = String((meta['intercept/approval'] as Json).id);
    const forged = await ask('delete_all', {}, { requestState: stateFor(id), inputResponses: yes });
    assertDenied(forged.result, { kind: 'approval_denied' });
    assert.equal((await cli.requestFor('delete_all', '', 'pending')).id, id);
    assert.equal(runs(await seenRaw(), 'delete_all'), 0);
  });

  it('applies an answer to the call it was asked about only, and only once', async () => {
    const first = await ask('echo', { message: 'raw one' });
    assert.equal(isRecord(first.result) && first.result.resultType, 'input_required');
    const state = String((first.result as Json).requestState);
    const moved = await ask('echo', { message: 'raw other' }, { requestState: state, inputResponses: yes });
    assertDenied(moved.result, { kind: 'approval_denied', message: /another call/ });
    const answered = await ask('echo', { message: 'raw one' }, { requestState: state, inputResponses: yes });
    assertNotDenied(answered.result);
    const replayed = await ask('echo', { message: 'raw one' }, { requestState: state, inputResponses: yes });
    assertDenied(replayed.result, { kind: 'approval_expired' });
    const lines = await seenRaw();
    assert.equal(runs(lines, 'raw one'), 1);
    assert.equal(runs(lines, 'raw other'), 0);
  });

  it('refuses a state it cannot read, and an unknown request', async () => {
    assertDenied((await ask('echo', { message: 'raw bad' }, { requestState: 'intercept-approval.%%%', inputResponses: yes })).result, {
      kind: 'approval_denied',
    });
    assertDenied((await ask('echo', { message: 'raw bad' }, { requestState: stateFor('apr_aaaaaaaaaaaaaaaa'), inputResponses: yes })).result, {
      kind: 'approval_denied',
      message: /unknown/,
    });
    assert.equal(runs(await seenRaw(), 'raw bad'), 0);
    assert.ok(proxy.running);
    await eventually(() => (proxy.stderr.includes('refused an approval answer') ? true : undefined));
  });
});
