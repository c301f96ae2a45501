// The HTTP listener end to end: `intercept --transport http|sse` started as a user starts it,
// the official clients connecting over HTTP, real servers behind it. Policy is enforced in every
// client transport; each 2025 session gets its own server process and its own session counters;
// server-initiated requests, their answers and progress cross the HTTP hop; 2026-07-28 clients
// are served statelessly.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Client as V2Client } from '@modelcontextprotocol/client';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { freePort, waitUntil } from '../support/wait.js';
import { assertDenied, assertNotDenied, MODERN, modernBody, modernHeaders, textOf } from '../support/messages.js';
import { servers } from '../support/servers.js';
import type { Session } from '../support/sdk-clients.js';
import { connectSseV1, connectStreamableV1, connectStreamableV2, request, startListener, type Listener } from '../support/listener.js';

const TIMEOUT = { timeout: 90_000 };

const EVERYTHING_POLICY = `
version: "1"
hide:
  - get-env
tools:
  get-tiny-image:
    rules:
      - name: "no images"
        action: "deny"
        on_deny: "Images are not allowed"
  echo:
    rules:
      - action: allow
        rate_limit: { max: 2, window: 3600 }
  trigger-sampling-request:
    rules:
      - name: "short prompts"
        conditions:
          - path: "args.prompt"
            op: "regex"
            value: "^.{1,40}$"
`;

let dir: TempDir;
let policy: string;
before(async () => {
  dir = await makeTempDir();
  policy = await writePolicy(dir.path, EVERYTHING_POLICY);
});
after(async () => {
  await dir?.cleanup();
});

type AnyClient = Pick<V1Client, 'callTool' | 'listTools'>;

/** One way of connecting a 2025-era client over HTTP. */
interface Pairing {
  name: string;
  transport: 'http' | 'sse';
  connect(l: Listener): Promise<Session<AnyClient>>;
}

const PAIRINGS: Pairing[] = [
  { name: 'v1 client, Streamable HTTP', transport: 'http', connect: (l) => connectStreamableV1(l) },
  { name: 'v1 client, legacy HTTP+SSE', transport: 'sse', connect: (l) => connectSseV1(l) },
  { name: 'v2 client, Streamable HTTP (2025 handshake)', transport: 'http', connect: (l) => connectStreamableV2(l) as unknown as Promise<Session<AnyClient>> },
];

for (const pairing of PAIRINGS) {
  describe(`policy over HTTP: ${pairing.name} -> server-everything (stdio)`, TIMEOUT, () => {
    let listener: Listener;
    let session: Session<AnyClient>;
    before(async () => {
      listener = await startListener(policy, servers.everything(), { transport: pairing.transport });
      session = await pairing.connect(listener);
    });
    after(async () => {
      await session?.close();
      await listener?.stop();
    });

    it("returns the server's result for an allowed call", async () => {
      const result = await session.client.callTool({ name: 'echo', arguments: { message: 'over http' } });
      assertNotDenied(result);
      assert.equal(textOf(result), 'Echo: over http');
    });

    it('denies a call the policy forbids, with the policy message', async () => {
      assertDenied(await session.client.callTool({ name: 'get-tiny-image', arguments: {} }), {
        kind: 'deny_rule',
        rule: 'no images',
        message: 'Images are not allowed',
      });
    });

    it('hides a hidden tool from tools/list and denies calling it', async () => {
      const names = (await session.client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('echo'), names.join(','));
      assert.ok(!names.includes('get-env'), names.join(','));
      assertDenied(await session.client.callTool({ name: 'get-env', arguments: {} }), { kind: 'hidden' });
    });
  });
}

describe('sessions over Streamable HTTP', TIMEOUT, () => {
  let listener: Listener;
  before(async () => {
    listener = await startListener(policy, servers.everything());
  });
  after(async () => {
    await listener?.stop();
  });

  it('gives two concurrent sessions their own server process and their own session counters; DELETE ends the process', async () => {
    const a = await connectStreamableV1(listener);
    const b = await connectStreamableV1(listener);
    try {
      await waitUntil(() => listener.children().length === 2, 10_000, 'two server processes');
      assert.notEqual(a.transport.sessionId, b.transport.sessionId);
      const echo = (s: typeof a) => s.client.callTool({ name: 'echo', arguments: { message: 'count me' } });
      // max 2 per session: a uses its two calls, then b still has both of its own.
      assertNotDenied(await echo(a));
      assertNotDenied(await echo(a));
      assertDenied(await echo(a), { kind: 'rate_limit' });
      assertNotDenied(await echo(b));
      assertNotDenied(await echo(b));
      assertDenied(await echo(b), { kind: 'rate_limit' });

      const before = listener.children();
      await a.transport.terminateSession();
      await waitUntil(() => listener.children().length === 1, 15_000, 'the first session’s server to exit');
      const left = listener.children();
      assert.ok(before.includes(left[0]!));
      // b is untouched.
      assert.match(textOf(await b.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })), /3/);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('ends every session and exits 0 on SIGTERM', async () => {
    const own = await startListener(policy, servers.everything());
    const s = await connectStreamableV1(own);
    await waitUntil(() => own.children().length === 1, 10_000, 'a server process');
    const child = own.children()[0]!;
    assert.equal(await own.stop(), 0);
    assert.throws(() => process.kill(child, 0), 'the server process is gone');
    await s.close().catch(() => {});
  });
});

/** A v1 client that answers sampling and elicitation, over the given transport. */
function trafficPairings(): Array<{ name: string; transport: 'http' | 'sse'; connect: typeof connectStreamableV1 | typeof connectSseV1 }> {
  return [
    { name: 'Streamable HTTP', transport: 'http', connect: connectStreamableV1 },
    { name: 'legacy HTTP+SSE', transport: 'sse', connect: connectSseV1 },
  ];
}

for (const pairing of trafficPairings()) {
  describe(`server-initiated traffic over ${pairing.name}`, TIMEOUT, () => {
    let listener: Listener;
    let session: Session<V1Client>;
    const samplingPrompts: string[] = [];
    const elicited: string[] = [];
    before(async () => {
      listener = await startListener(policy, servers.everything(), { transport: pairing.transport });
      session = await pairing.connect(listener, {
        capabilities: { sampling: {}, elicitation: {} },
        setup(client) {
          client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
            const first = req.params.messages[0]?.content;
            samplingPrompts.push(first && 'text' in first && typeof first.text === 'string' ? first.text : '');
            return { model: 'e2e-model', role: 'assistant', content: { type: 'text', text: 'sampled answer 42' } };
          });
          client.setRequestHandler(ElicitRequestSchema, async (req) => {
            elicited.push(req.params.message);
            return { action: 'accept', content: { name: 'Ada', check: true, firstLine: 'ok', integer: 7 } };
          });
        },
      });
      // server-everything registers the capability-dependent tools after the handshake.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const names = (await session.client.listTools()).tools.map((t) => t.name);
        if (names.includes('trigger-sampling-request') && names.includes('trigger-elicitation-request')) break;
        if (Date.now() > deadline) throw new Error(`tools never appeared: ${names.join(',')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    after(async () => {
      await session?.close();
      await listener?.stop();
    });

    it("relays the server's sampling request to the HTTP client and its answer back", async () => {
      const result = await session.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'say hello', maxTokens: 20 } });
      assertNotDenied(result);
      assert.match(textOf(result), /sampled answer 42/);
      assert.deepEqual(samplingPrompts, ['Resource trigger-sampling-request context: say hello']);
      assert.ok(session.wire.requestsReceived().some((m) => m.method === 'sampling/createMessage'));
    });

    it('still gates: a denied call never makes the server ask for sampling', async () => {
      assertDenied(await session.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'x'.repeat(41) } }), {
        kind: 'condition',
      });
      assert.equal(samplingPrompts.length, 1);
    });

    it("relays the server's elicitation request and the client's answer", async () => {
      const result = await session.client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
      assertNotDenied(result);
      assert.equal(elicited.length, 1);
      assert.match(textOf(result), /Ada/);
    });

    it('relays progress notifications of a long-running call', async () => {
      const progress: number[] = [];
      const result = await session.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 4 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      assertNotDenied(result);
      const arrived = session.wire.received.filter((m) => m.method === 'notifications/progress');
      assert.deepEqual(
        arrived.map((m) => m.params?.progress),
        [1, 2, 3, 4],
      );
      assert.ok(progress.length > 0);
    });
  });
}

describe('2026-07-28 clients over Streamable HTTP (v2 client pinned) -> modern fixture (stdio)', TIMEOUT, () => {
  let listener: Listener;
  let session: Session<V2Client>;
  let modernPolicy: string;
  before(async () => {
    modernPolicy = await writePolicy(
      dir.path,
      `
version: "1"
hide: [secret_admin]
tools:
  delete_all:
    rules:
      - name: "never delete"
        action: "deny"
        on_deny: "Deleting everything is not allowed"
`,
      'modern.yaml',
    );
    listener = await startListener(modernPolicy, servers.modern());
    session = await connectStreamableV2(listener, { versionNegotiation: { mode: { pin: MODERN } } });
  });
  after(async () => {
    await session?.close();
    await listener?.stop();
  });

  it('runs in the modern era, without initialize or a session id', async () => {
    assert.equal(session.client.getProtocolEra(), 'modern');
    assertNotDenied(await session.client.callTool({ name: 'add', arguments: { a: 2, b: 40 } }));
    assert.ok(!session.wire.methodsSent().includes('initialize'));
  });

  it('allows, denies and hides as the policy says', async () => {
    assert.equal(textOf(await session.client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })), '1 + 2 = 3');
    assertDenied(await session.client.callTool({ name: 'delete_all', arguments: {} }), { kind: 'deny_rule', message: 'Deleting everything is not allowed' });
    assert.equal(session.wire.responseToLastCall('delete_all')?.result?.resultType, 'complete');
    const names = (await session.client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(names, ['add', 'delete_all', 'echo', 'seen']);
    assertDenied(await session.client.callTool({ name: 'secret_admin', arguments: {} }), { kind: 'hidden' });
    const seen = textOf(await session.client.callTool({ name: 'seen', arguments: {} }));
    assert.ok(!/delete_all|secret_admin/.test(seen), seen);
  });

  it('refuses a request whose Mcp-Name header does not match its body (-32020), without running it', async () => {
    const body = modernBody(77, 'tools/call', { name: 'echo', arguments: { message: 'mismatched' } });
    const res = await request(listener.url, { body: JSON.stringify(body), headers: { ...modernHeaders(body), 'Mcp-Name': 'add' } });
    assert.equal(res.status, 400);
    assert.equal(res.json?.error?.code, -32020);
    const seen = textOf(await session.client.callTool({ name: 'seen', arguments: {} }));
    assert.ok(!seen.includes('mismatched'), seen);
  });

  it('answers a raw request whose headers match, restoring the client’s own id', async () => {
    const body = modernBody(4242, 'tools/call', { name: 'echo', arguments: { message: 'raw' } });
    const res = await request(listener.url, { body: JSON.stringify(body), headers: modernHeaders(body) });
    assert.equal(res.status, 200);
    assert.match(res.text, /"id":4242/);
    assert.match(res.text, /Echo: raw/);
  });

  it('answers GET and DELETE with 405', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await request(listener.url, { method, headers: { 'MCP-Protocol-Version': MODERN } });
      assert.equal(res.status, 405, method);
    }
  });
});

describe('Streamable HTTP client -> remote upstream (server-everything streamableHttp)', TIMEOUT, () => {
  let listener: Listener;
  let session: Session<V1Client>;
  let upstream: ReturnType<typeof spawn>;
  before(async () => {
    const port = await freePort();
    const everything = servers.everything();
    upstream = spawn(everything.command, [everything.args[0]!, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server-everything did not start: ${log}`)), 20_000);
      upstream.stderr!.on('data', (c: Buffer) => {
        log += c.toString();
        if (/listening|running|port/i.test(log)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    listener = await startListener(policy, undefined, { upstream: `http://127.0.0.1:${port}/mcp` });
    session = await connectStreamableV1(listener);
  });
  after(async () => {
    await session?.close();
    await listener?.stop();
    upstream?.kill('SIGTERM');
  });

  it('enforces the policy on a remote server', async () => {
    assert.equal(textOf(await session.client.callTool({ name: 'echo', arguments: { message: 'remote' } })), 'Echo: remote');
    assertDenied(await session.client.callTool({ name: 'get-tiny-image', arguments: {} }), { kind: 'deny_rule' });
    const names = (await session.client.listTools()).tools.map((t) => t.name);
    assert.ok(!names.includes('get-env'));
  });
});
