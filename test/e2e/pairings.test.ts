// Every pairing of client transport and upstream transport, end to end, in each protocol era
// the pair can speak. One table: for each cell, the proxy is started as a user starts it, an
// official SDK client connects to it, and a real server sits behind it.
//
//   client side    stdio (v1 client spawning the CLI; v2 client in the 2026 era),
//                  Streamable HTTP (`--transport http`: v1 client, v2 client),
//                  legacy HTTP+SSE (`--transport sse`: v1 client)
//   upstream side  stdio child (`-- <command>`), Streamable HTTP (`--upstream <url>`),
//                  legacy HTTP+SSE (`--upstream <url>/sse --upstream-transport sse`)
//
// 2025 era (initialize), every pair, against server-everything: an allowed call returns the
// server's result; a denied call returns the denial and never reaches the server (a tee records
// what a stdio server reads, a recording HTTP proxy what an HTTP server receives); a hidden tool
// is gone from tools/list; a sampling request the server makes during a call reaches the
// client and the client's answer reaches the server; progress notifications arrive.
//
// 2026-07-28 era (v2 client pinned), the pairs where both ends can speak it: client stdio or
// Streamable HTTP × upstream stdio (test/fixtures/modern-server.ts) or Streamable HTTP
// (test/fixtures/modern-http-server.ts). The legacy HTTP+SSE transport predates that revision,
// so SSE on either side is tested in the 2025 era only.
//
// Then `--session-key client-info` and `--session-key token` on the listener: reconnects keep
// one session quota, a different agent gets its own.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Client as V2Client } from '@modelcontextprotocol/client';
import { fixturePolicy } from '../support/paths.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { assertDenied, assertNotDenied, calledTool, MODERN, textOf, type ToolResult } from '../support/messages.js';
import {
  readTeeLog,
  servers,
  startEverything,
  startRecorder,
  teeCommand,
  type HttpServer,
  type Recorder,
  type ServerCommand,
} from '../support/servers.js';
import { connectV1, connectV2, proxyParams, upstreamParams, type Session, type Wire } from '../support/sdk-clients.js';
import { connectSseV1, connectStreamableV1, connectStreamableV2, startListener, type Listener } from '../support/listener.js';
import { startModernHttpServer, type ModernHttpServer } from '../fixtures/modern-http-server.js';

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
  trigger-sampling-request:
    rules:
      - name: "short prompts"
        conditions:
          - path: "args.prompt"
            op: "regex"
            value: "^.{1,40}$"
`;

/** `scope: session` is the default: two echoes per agent session. */
const QUOTA_POLICY = `
version: "1"
tools:
  echo:
    rules:
      - action: allow
        rate_limit: { max: 2, window: 3600 }
`;

let dir: TempDir;
let everythingPolicy: string;
let quotaPolicy: string;
const modernPolicy = fixturePolicy('modern.yaml');
before(async () => {
  dir = await makeTempDir('intercept-pairings-');
  everythingPolicy = await writePolicy(dir.path, EVERYTHING_POLICY, 'everything.yaml');
  quotaPolicy = await writePolicy(dir.path, QUOTA_POLICY, 'quota.yaml');
});
after(async () => {
  await dir?.cleanup();
});

// ------------------------------------------------------------------------------ clients

type ClientSide = 'stdio' | 'http-v1' | 'http-v2' | 'sse';
type UpstreamSide = 'stdio' | 'http' | 'sse';

/** What a cell needs of a client, whichever SDK and transport it is. */
interface Agent {
  call(name: string, args?: Record<string, unknown>, onprogress?: () => void): Promise<ToolResult>;
  tools(): Promise<string[]>;
  wire: Wire;
  stderr(): string;
  close(): Promise<void>;
  /** 'legacy' or 'modern' (the v2 client's view); undefined for the v1 client. */
  era(): string | undefined;
}

function v1Agent(s: Session<V1Client>): Agent {
  return {
    call: (name, args = {}, onprogress) => s.client.callTool({ name, arguments: args }, undefined, onprogress ? { onprogress } : undefined) as Promise<ToolResult>,
    tools: async () => (await s.client.listTools()).tools.map((t) => t.name),
    wire: s.wire,
    stderr: s.stderr,
    close: s.close,
    era: () => undefined,
  };
}

function v2Agent(s: Session<V2Client>): Agent {
  return {
    call: (name, args = {}, onprogress) => s.client.callTool({ name, arguments: args }, onprogress ? { onprogress } : undefined) as Promise<ToolResult>,
    // server-everything adds tools after the handshake: never serve a cached listing.
    tools: async () => (await s.client.listTools(undefined, { cacheMode: 'refresh' })).tools.map((t) => t.name),
    wire: s.wire,
    stderr: s.stderr,
    close: s.close,
    era: () => s.client.getProtocolEra(),
  };
}

/** Answers server-everything's sampling request and remembers the prompt. */
function samplingAnswer(prompts: string[]) {
  return async (req: { params: { messages: Array<{ content: unknown }> } }) => {
    const first = req.params.messages[0]?.content as { text?: unknown } | undefined;
    prompts.push(typeof first?.text === 'string' ? first.text : '');
    return { model: 'e2e-model', role: 'assistant' as const, content: { type: 'text' as const, text: 'sampled answer 42' } };
  };
}

// ------------------------------------------------------------------------------ upstreams

/** Where the proxy finds its server, and what reached that server. */
interface Target {
  /** A command for `-- <command>`, or a URL for `--upstream`. */
  server?: ServerCommand;
  url?: string;
  flags: string[];
  /** Names of the tools/call requests the server received. */
  reached(): Promise<string[]>;
  /** The HTTP requests that reached an HTTP server, as `<METHOD> <path without query>`. */
  requests(): string[];
  stop(): Promise<void>;
}

/** server-everything over stdio behind the tee, which logs every line the server reads. */
async function stdioTarget(label: string): Promise<Target> {
  const log = dir.file(`${label.replace(/\W+/g, '-')}.jsonl`);
  const [command, ...args] = teeCommand(log);
  return {
    server: { command: command!, args },
    flags: [],
    reached: async () => (await readTeeLog(log)).flatMap((line) => calledTool(line) ?? []),
    requests: () => [],
    stop: async () => {},
  };
}

/** A recording proxy of this cell's own in front of a shared HTTP server. */
async function httpTarget(server: HttpServer, kind: 'http' | 'sse'): Promise<Target> {
  const recorder: Recorder = await startRecorder(server.origin);
  return {
    url: recorder.url(kind === 'http' ? '/mcp' : '/sse'),
    flags: kind === 'sse' ? ['--upstream-transport', 'sse'] : [],
    reached: async () =>
      recorder.exchanges.flatMap((e) => {
        try {
          const m = JSON.parse(e.body) as { method?: string; params?: { name?: string } };
          return m.method === 'tools/call' && typeof m.params?.name === 'string' ? [m.params.name] : [];
        } catch {
          return [];
        }
      }),
    requests: () => recorder.exchanges.map((e) => `${e.method} ${e.path.split('?')[0]}`),
    stop: () => recorder.stop(),
  };
}

/** A running cell: the proxy (a listener, or a process the stdio client spawned) and the client. */
interface Cell {
  agent: Agent;
  listener?: Listener;
}

interface ConnectOptions {
  policy: string;
  target: { server?: ServerCommand; url?: string; flags: string[] };
  /** Pin the v2 client to 2026-07-28. */
  modern?: boolean;
  /** Sampling requests the client answers land here (2025 cells). */
  prompts?: string[];
}

async function openCell(side: ClientSide, opts: ConnectOptions): Promise<Cell> {
  const { policy, target, prompts } = opts;
  const v1Setup = prompts ? { capabilities: { sampling: {} }, setup: (c: V1Client) => c.setRequestHandler(CreateMessageRequestSchema, samplingAnswer(prompts)) } : {};
  const v2Setup = {
    ...(prompts ? { capabilities: { sampling: {} }, setup: (c: V2Client) => c.setRequestHandler('sampling/createMessage', samplingAnswer(prompts)) } : {}),
    ...(opts.modern ? { versionNegotiation: { mode: { pin: MODERN } } as const } : {}),
  };
  if (side === 'stdio') {
    const params = target.server ? proxyParams(policy, target.server, { flags: target.flags }) : upstreamParams(policy, target.url!, { flags: target.flags });
    return { agent: opts.modern ? v2Agent(await connectV2(params, v2Setup)) : v1Agent(await connectV1(params, v1Setup)) };
  }
  const listener = await startListener(policy, target.server, { transport: side === 'sse' ? 'sse' : 'http', upstream: target.url, flags: target.flags });
  try {
    if (side === 'http-v2') return { listener, agent: v2Agent(await connectStreamableV2(listener, v2Setup)) };
    if (side === 'http-v1') return { listener, agent: v1Agent(await connectStreamableV1(listener, v1Setup)) };
    return { listener, agent: v1Agent(await connectSseV1(listener, v1Setup)) };
  } catch (err) {
    await listener.stop();
    throw err;
  }
}

async function closeCell(cell: Cell | undefined): Promise<void> {
  await cell?.agent.close().catch(() => {});
  await cell?.listener?.stop();
}

// ------------------------------------------------------------------------------ the 2025 era

const CLIENT_LABEL: Record<ClientSide, string> = {
  stdio: 'stdio (v1 client)',
  'http-v1': 'Streamable HTTP (v1 client)',
  'http-v2': 'Streamable HTTP (v2 client)',
  sse: 'HTTP+SSE (v1 client)',
};
const UPSTREAM_LABEL: Record<UpstreamSide, string> = {
  stdio: 'stdio child',
  http: 'Streamable HTTP',
  sse: 'HTTP+SSE',
};

/** Polls tools/list until server-everything has added its sampling tool (it does so once it
 * has seen the client's capabilities). */
async function waitForSamplingTool(agent: Agent): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const names = await agent.tools();
    if (names.includes('trigger-sampling-request')) return names;
    if (Date.now() > deadline) throw new Error(`trigger-sampling-request never appeared: ${names.join(',')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('every pairing in the 2025 era (server-everything)', TIMEOUT, () => {
  const shared: Partial<Record<'http' | 'sse', HttpServer>> = {};
  before(async () => {
    [shared.http, shared.sse] = await Promise.all([startEverything('streamableHttp'), startEverything('sse')]);
  });
  after(async () => {
    await Promise.all([shared.http?.stop(), shared.sse?.stop()]);
  });

  const clientSides: ClientSide[] = ['stdio', 'http-v1', 'http-v2', 'sse'];
  const upstreamSides: UpstreamSide[] = ['stdio', 'http', 'sse'];
  for (const clientSide of clientSides) {
    for (const upstreamSide of upstreamSides) {
      const label = `client ${CLIENT_LABEL[clientSide]} -> upstream ${UPSTREAM_LABEL[upstreamSide]}`;
      describe(label, () => {
        let target: Target;
        let cell: Cell;
        const prompts: string[] = [];
        before(async () => {
          target = upstreamSide === 'stdio' ? await stdioTarget(label) : await httpTarget(shared[upstreamSide]!, upstreamSide);
          cell = await openCell(clientSide, { policy: everythingPolicy, target, prompts });
        });
        after(async () => {
          await closeCell(cell);
          await target?.stop();
        });

        it('allows, denies without reaching the server, hides, and relays sampling and progress', async () => {
          const { agent } = cell;
          if (clientSide === 'http-v2') assert.equal(agent.era(), 'legacy');
          assert.ok(agent.wire.methodsSent().includes('initialize'));

          // (3) Hidden tools vanish from tools/list.
          const names = await waitForSamplingTool(agent);
          assert.ok(names.includes('echo') && names.includes('get-tiny-image'), names.join(','));
          assert.ok(!names.includes('get-env'), `get-env is hidden: ${names.join(',')}`);

          // (1) An allowed call returns the server's real result.
          const echoed = await agent.call('echo', { message: `through ${label}` });
          assertNotDenied(echoed);
          assert.equal(textOf(echoed), `Echo: through ${label}`);

          // (2) Denied calls get the denial and never reach the server.
          assertDenied(await agent.call('get-tiny-image'), { kind: 'deny_rule', rule: 'no images', message: 'Images are not allowed' });
          assertDenied(await agent.call('get-env'), { kind: 'hidden', message: 'Tool "get-env" is hidden by policy' });
          const raw = agent.wire.responseToLastCall('get-tiny-image');
          assert.equal(raw?.result?.isError, true);
          assert.equal(raw?.result && 'resultType' in raw.result, false, 'a 2025 result carries no resultType');

          // (4) A server-initiated request reaches the client, and its answer reaches the server.
          const sampled = await agent.call('trigger-sampling-request', { prompt: 'say hello', maxTokens: 20 });
          assertNotDenied(sampled);
          assert.match(textOf(sampled), /sampled answer 42/);
          assert.deepEqual(prompts, ['Resource trigger-sampling-request context: say hello']);
          assert.ok(agent.wire.requestsReceived().some((m) => m.method === 'sampling/createMessage'));
          // ...and a denied call never makes the server ask.
          assertDenied(await agent.call('trigger-sampling-request', { prompt: 'x'.repeat(41) }), { kind: 'condition', rule: 'short prompts' });
          assert.equal(prompts.length, 1);

          // (4) Progress notifications arrive, before the result.
          const done = await agent.call('trigger-long-running-operation', { duration: 0.2, steps: 4 }, () => {});
          assert.equal(textOf(done), 'Long running operation completed. Duration: 0.2 seconds, Steps: 4.');
          const token = (agent.wire.lastCall('trigger-long-running-operation')?.params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
          assert.notEqual(token, undefined);
          const progress = agent.wire.received.filter((m) => m.method === 'notifications/progress' && m.params?.progressToken === token);
          assert.deepEqual(
            progress.map((m) => m.params?.progress),
            [1, 2, 3, 4],
          );
          const answer = agent.wire.responseToLastCall('trigger-long-running-operation');
          assert.ok(agent.wire.received.indexOf(answer!) > agent.wire.received.indexOf(progress[3]!), 'progress arrives before the result');

          // The upstream transport is the one the cell names.
          const requests = new Set(target.requests());
          if (upstreamSide === 'http') assert.ok(requests.has('POST /mcp') && !requests.has('GET /sse'), [...requests].join(','));
          if (upstreamSide === 'sse') assert.ok(requests.has('GET /sse') && requests.has('POST /message') && !requests.has('POST /mcp'), [...requests].join(','));

          // What reached the server: the allowed calls, none of the denied ones.
          const reached = await target.reached();
          assert.deepEqual(
            reached.filter((n) => n !== 'trigger-long-running-operation'),
            ['echo', 'trigger-sampling-request'],
            `tools/call that reached the server: ${reached.join(',')}`,
          );
        });
      });
    }
  }
});

// ------------------------------------------------------------------------------ the 2026-07-28 era

describe('every pairing that can speak 2026-07-28 (v2 client pinned, modern fixtures)', TIMEOUT, () => {
  let modernHttp: ModernHttpServer;
  before(async () => {
    modernHttp = await startModernHttpServer();
  });
  after(async () => {
    await modernHttp?.close();
  });

  const cells: Array<[ClientSide, Exclude<UpstreamSide, 'sse'>]> = [
    ['stdio', 'stdio'],
    ['stdio', 'http'],
    ['http-v2', 'stdio'],
    ['http-v2', 'http'],
  ];
  for (const [clientSide, upstreamSide] of cells) {
    const label = `client ${clientSide === 'stdio' ? 'stdio (v2 client)' : CLIENT_LABEL[clientSide]} -> upstream ${UPSTREAM_LABEL[upstreamSide]}`;
    describe(label, () => {
      let cell: Cell;
      before(async () => {
        const target = upstreamSide === 'stdio' ? { server: servers.modern(), flags: [] } : { url: modernHttp.url, flags: [] };
        cell = await openCell(clientSide, { policy: modernPolicy, target, modern: true });
      });
      after(async () => {
        await closeCell(cell);
      });

      /** What the fixture server has run, from its own `seen` tool. */
      async function seen(): Promise<string[]> {
        const text = textOf(await cell.agent.call('seen'));
        return text === '' ? [] : text.split('\n');
      }

      it('allows, denies with a complete result without reaching the server, and hides', async () => {
        const { agent } = cell;
        const marker = clientSide === 'stdio' ? 11 : 22;
        // (1) An allowed call returns the server's real result.
        const added = await agent.call('add', { a: marker, b: 40 });
        assertNotDenied(added);
        assert.equal(textOf(added), `${marker} + 40 = ${marker + 40}`);
        assert.equal(agent.wire.responseToLastCall('add')?.result?.resultType, 'complete');

        // (2) A denied call returns the denial, complete, and never reaches the server.
        assertDenied(await agent.call('delete_all'), { kind: 'deny_rule', rule: 'never delete', message: 'Deleting everything is not allowed' });
        const raw = agent.wire.responseToLastCall('delete_all');
        assert.equal(raw?.result?.resultType, 'complete');
        assert.equal(raw?.result?.isError, true);

        // (3) The hidden tool is gone from tools/list, and calling it is denied.
        assert.deepEqual((await agent.tools()).sort(), ['add', 'delete_all', 'echo', 'seen']);
        assertDenied(await agent.call('secret_admin'), { kind: 'hidden', message: 'Tool "secret_admin" is hidden by policy' });
        assert.equal(agent.wire.responseToLastCall('secret_admin')?.result?.resultType, 'complete');

        const ran = await seen();
        assert.ok(ran.includes(`add {"a":${marker},"b":40}`), ran.join('\n'));
        assert.ok(!ran.some((line) => /^(delete_all|secret_admin) /.test(line)), ran.join('\n'));

        // Really the 2026-07-28 era end to end: no handshake, the version in every request.
        assert.equal(agent.era(), 'modern');
        assert.ok(!agent.wire.methodsSent().includes('initialize'));
        for (const m of agent.wire.sent.filter((m) => m.method === 'tools/call')) {
          assert.equal((m.params?._meta as Record<string, unknown> | undefined)?.['io.modelcontextprotocol/protocolVersion'], MODERN);
        }
        if (upstreamSide === 'http') {
          const posted = modernHttp.requests.filter((r) => r.headers['mcp-method'] === 'tools/call');
          assert.ok(posted.length > 0 && posted.every((r) => r.headers['mcp-protocol-version'] === MODERN && r.headers['mcp-session-id'] === undefined));
        }
      });
    });
  }
});

// ------------------------------------------------------------------------------ session keys

/** What the session-key tests need of a client. */
type Caller = Pick<Agent, 'call' | 'close'>;

/** A v1 client that calls itself `name`, over either listener transport. */
async function connectNamed(listener: Listener, transport: 'http' | 'sse', name: string): Promise<Caller> {
  const client = new V1Client({ name, version: '1.0.0' }, { capabilities: {} });
  const url = new URL(listener.url);
  const streamable = transport === 'http' ? new StreamableHTTPClientTransport(url) : undefined;
  await client.connect(streamable ?? new SSEClientTransport(url));
  return {
    call: (tool, args = {}) => client.callTool({ name: tool, arguments: args }) as Promise<ToolResult>,
    close: () => endSession(client, streamable),
  };
}

/** Disconnects; over Streamable HTTP the session is ended first (DELETE), so its server
 * process does not linger until the idle timeout. */
async function endSession(client: V1Client, transport: StreamableHTTPClientTransport | undefined): Promise<void> {
  await transport?.terminateSession().catch(() => {});
  await client.close();
}

describe('--session-key on the listener: who the agent is survives reconnects', TIMEOUT, () => {
  type Key = 'client-info' | 'token' | 'session';
  const rows: Array<{ key: Key; transport: 'http' | 'sse' }> = [
    { key: 'client-info', transport: 'http' },
    { key: 'client-info', transport: 'sse' },
    { key: 'token', transport: 'http' },
    { key: 'token', transport: 'sse' },
    // The default, for contrast: every connection is a new session with a fresh quota.
    { key: 'session', transport: 'http' },
  ];

  for (const { key, transport } of rows) {
    describe(`--session-key ${key} over ${transport === 'http' ? 'Streamable HTTP' : 'HTTP+SSE'}`, () => {
      let listener: Listener;
      before(async () => {
        listener = await startListener(quotaPolicy, servers.everything(), { transport, flags: ['--session-key', key] });
      });
      after(async () => {
        await listener?.stop();
      });

      /** Agent "a" or "b", as this key tells them apart. */
      async function connect(who: 'a' | 'b'): Promise<Caller> {
        if (key === 'client-info') return who === 'a' ? connectNamed(listener, transport, 'agent-a') : connectNamed(listener, transport, 'agent-b');
        const headers = { Authorization: `Bearer token-of-${who}` };
        if (transport === 'sse') return v1Agent(await connectSseV1(listener, { headers }));
        const session = await connectStreamableV1(listener, { headers });
        return { ...v1Agent(session), close: () => endSession(session.client, session.transport) };
      }

      /** Connects, calls echo once, disconnects: whether it was allowed. */
      async function echoOnce(who: 'a' | 'b'): Promise<boolean> {
        const agent = await connect(who);
        try {
          const result = await agent.call('echo', { message: `from ${who}` });
          if (result.isError) {
            assertDenied(result, { kind: 'rate_limit' });
            return false;
          }
          assert.equal(textOf(result), `Echo: from ${who}`);
          return true;
        } finally {
          await agent.close();
        }
      }

      it(key === 'session' ? 'gives every connection a fresh quota' : 'keeps one quota across two reconnects, and a different agent has its own', async () => {
        // Agent a: a connection and two reconnects, one echo each, two echoes allowed per key.
        const a = [await echoOnce('a'), await echoOnce('a'), await echoOnce('a')];
        assert.deepEqual(a, key === 'session' ? [true, true, true] : [true, true, false]);
        // Agent b: its own quota.
        assert.deepEqual([await echoOnce('b'), await echoOnce('b'), await echoOnce('b')], key === 'session' ? [true, true, true] : [true, true, false]);
      });
    });
  }
});
