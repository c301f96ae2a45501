// Cancellation through the proxy, end to end, in every pairing of client and upstream transport.
// A 2025 client cancels with `notifications/cancelled {requestId}`, which must reach the upstream
// for the request the proxy forwarded; a 2026-07-28 client over HTTP cancels by closing the
// request's response stream, which the listener turns into `notifications/cancelled` upstream;
// toward a 2026-07-28 HTTP upstream the proxy aborts that request's HTTP exchange. Each case
// checks what the upstream observed (the notification, the request id it names, or the server
// SDK's abort signal firing) and that the proxy keeps serving calls afterwards. A call cancelled
// while the proxy is still deciding it is never forwarded at all.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Client as V2Client } from '@modelcontextprotocol/client';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { waitUntil } from '../support/wait.js';
import { assertNotDenied, isRecord, MODERN, textOf, type Json } from '../support/messages.js';
import {
  everythingCommand,
  servers,
  startEverything,
  startRecorder,
  teeCommand,
  type HttpServer,
  type Recorder,
  type ServerCommand,
} from '../support/servers.js';
import { connectV1, connectV2, proxyParams, upstreamParams, type Session, type WireMessage } from '../support/sdk-clients.js';
import { startTeeProxy, type TeeSession } from '../support/raw-proxy.js';
import { connectStreamableV1, connectStreamableV2, startListener, type Listener } from '../support/listener.js';
import { startModernHttpServer, type ModernHttpServer } from '../fixtures/modern-http-server.js';

const TIMEOUT = { timeout: 90_000 };
const LONG = 'trigger-long-running-operation';
/** Long enough that it is always still running when the test cancels it. */
const LONG_ARGS = { duration: 60, steps: 60 };

// echo is validated against the tool's schema, so a call that comes before any tools/list makes
// the proxy list the tools itself first: a deterministic window in which the call is undecided.
const POLICY = `version: "1"
description: "cancellation"
tools:
  echo:
    rules:
      - name: "a message"
        validate:
          required_args: true
`;

let dir: TempDir;
let policy: string;

before(async () => {
  dir = await makeTempDir('intercept-cancel-');
  policy = await writePolicy(dir.path, POLICY);
});

after(async () => {
  await dir?.cleanup();
});

// ------------------------------------------------------------------------------ upstream views

/** server-everything over stdio behind the tee, which logs every line it receives. */
function teedEverything(logFile: string): ServerCommand {
  const [command, ...args] = teeCommand(logFile, everythingCommand());
  return { command: command!, args };
}

/** The JSON lines an upstream received (through the tee). */
function teeLines(logFile: string): Json[] {
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        const v = JSON.parse(l) as unknown;
        return isRecord(v) ? [v] : [];
      } catch {
        return [];
      }
    });
}

/** The JSON-RPC bodies POSTed to an HTTP upstream (through the recorder). */
function postedBodies(recorder: Recorder): Json[] {
  return recorder.exchanges.flatMap((e) => {
    if (e.method !== 'POST') return [];
    try {
      const v = JSON.parse(e.body) as unknown;
      return isRecord(v) ? [v] : [];
    } catch {
      return [];
    }
  });
}

function isCallOf(m: Json, tool: string): boolean {
  return m.method === 'tools/call' && isRecord(m.params) && m.params.name === tool;
}

/** The notifications/cancelled messages among `messages`, by the request id they name. */
function cancelledIds(messages: Json[]): unknown[] {
  return messages.filter((m) => m.method === 'notifications/cancelled' && isRecord(m.params)).map((m) => (m.params as Json).requestId);
}

/** The client's own notifications/cancelled, by the request id they name. */
function clientCancelled(sent: WireMessage[]): unknown[] {
  return sent.filter((m) => m.method === 'notifications/cancelled').map((m) => m.params?.requestId);
}

/**
 * Waits until the upstream has received the call to `tool`, aborts the client's request, and
 * waits until the upstream has been told to cancel that same request (the id the upstream saw,
 * which the proxy may have rewritten). Returns that id.
 */
async function cancelMidCall(opts: {
  upstreamMessages: () => Json[];
  tool: string;
  call: (signal: AbortSignal) => Promise<unknown>;
}): Promise<unknown> {
  const before = opts.upstreamMessages().filter((m) => isCallOf(m, opts.tool)).length;
  const controller = new AbortController();
  const pending = opts.call(controller.signal);
  pending.catch(() => {}); // judged below
  await waitUntil(() => opts.upstreamMessages().filter((m) => isCallOf(m, opts.tool)).length > before, 20_000, `the ${opts.tool} call to reach the server`);
  const forwarded = opts.upstreamMessages().filter((m) => isCallOf(m, opts.tool))[before]!;
  controller.abort(new Error('the user gave up'));
  await assert.rejects(pending, 'the aborted call rejects on the client');
  await waitUntil(() => cancelledIds(opts.upstreamMessages()).includes(forwarded.id), 20_000, `notifications/cancelled for ${JSON.stringify(forwarded.id)} upstream`);
  return forwarded.id;
}

/** The echo that shows the proxy still serves calls after a cancellation. */
async function echoWorks(client: V1Client | V2Client, message: string): Promise<void> {
  const result = await client.callTool({ name: 'echo', arguments: { message } });
  assertNotDenied(result);
  assert.equal(textOf(result), `Echo: ${message}`);
}

// ------------------------------------------------------------------------------ 2025 clients

describe('2025: the v1 client over stdio, the proxy in front of the stdio server', TIMEOUT, () => {
  let session: Session<V1Client>;
  let log: string;
  before(async () => {
    log = dir.file('stdio-stdio.log');
    session = await connectV1(proxyParams(policy, teedEverything(log)));
  });
  after(async () => {
    await session?.close();
  });

  it('relays the client\'s notifications/cancelled for the forwarded call, then serves the next call', async () => {
    const upstreamId = await cancelMidCall({
      upstreamMessages: () => teeLines(log),
      tool: LONG,
      call: (signal) => session.client.callTool({ name: LONG, arguments: LONG_ARGS }, undefined, { signal }),
    });
    const clientCall = session.wire.lastCall(LONG)!;
    assert.deepEqual(clientCancelled(session.wire.sent), [clientCall.id], 'the SDK sent notifications/cancelled for its request');
    assert.equal(upstreamId, clientCall.id, 'over stdio the id reaches the server unchanged');
    assert.equal(session.wire.responseTo(clientCall.id), undefined, 'no answer reached the client for the cancelled call');
    await echoWorks(session.client, 'after the cancellation');
  });
});

describe('2025: the v1 client over stdio, the proxy in front of a Streamable HTTP server', TIMEOUT, () => {
  let server: HttpServer;
  let recorder: Recorder;
  let session: Session<V1Client>;
  before(async () => {
    server = await startEverything('streamableHttp');
    recorder = await startRecorder(server.origin);
    session = await connectV1(upstreamParams(policy, recorder.url('/mcp')));
  });
  after(async () => {
    await session?.close();
    await recorder?.stop();
    await server?.stop();
  });

  it('POSTs notifications/cancelled for the forwarded call to the server, then serves the next call', async () => {
    const upstreamId = await cancelMidCall({
      upstreamMessages: () => postedBodies(recorder),
      tool: LONG,
      call: (signal) => session.client.callTool({ name: LONG, arguments: LONG_ARGS }, undefined, { signal }),
    });
    assert.equal(upstreamId, session.wire.lastCall(LONG)!.id);
    const posted = recorder.exchanges.find((e) => e.method === 'POST' && e.body.includes('notifications/cancelled'))!;
    await waitUntil(() => posted.status !== undefined, 10_000, 'the server to answer the notification');
    assert.equal(posted.status, 202, 'the server accepted the notification');
    assert.ok(posted.headers['mcp-session-id'], 'within the session the call belongs to');
    await echoWorks(session.client, 'after the cancellation');
  });
});

describe('2025: the v1 client over Streamable HTTP, the listener in front of the stdio server', TIMEOUT, () => {
  let listener: Listener;
  let session: Session<V1Client>;
  let log: string;
  before(async () => {
    log = dir.file('http-stdio.log');
    listener = await startListener(policy, teedEverything(log));
    session = await connectStreamableV1(listener);
  });
  after(async () => {
    await session?.close().catch(() => {});
    await listener?.stop();
  });

  it('relays the client\'s notifications/cancelled for the forwarded call, then serves the next call', async () => {
    await cancelMidCall({
      upstreamMessages: () => teeLines(log),
      tool: LONG,
      call: (signal) => session.client.callTool({ name: LONG, arguments: LONG_ARGS }, undefined, { signal }),
    });
    assert.deepEqual(clientCancelled(session.wire.sent), [session.wire.lastCall(LONG)!.id]);
    await echoWorks(session.client, 'after the cancellation');
  });
});

// ------------------------------------------------------------------------------ 2026-07-28 clients

const pinned = { versionNegotiation: { mode: { pin: MODERN } } as const };

/** The stdio fixture with slow switched on. */
function slowServer(): ServerCommand {
  const base = servers.modern();
  return { ...base, args: [...base.args, '--with-slow'] };
}

/** What the fixture has run, through its `seen` tool. */
async function seen(client: V2Client): Promise<string[]> {
  const text = textOf(await client.callTool({ name: 'seen', arguments: {} }));
  return text === '' ? [] : text.split('\n');
}

/** Polls the fixture's `seen` (bounded) until `line` is there. */
async function waitForSeen(client: V2Client, line: string): Promise<void> {
  const end = Date.now() + 20_000;
  let lines: string[] = [];
  while (!(lines = await seen(client)).includes(line)) {
    if (Date.now() > end) assert.fail(`the server never recorded ${JSON.stringify(line)}; it recorded ${JSON.stringify(lines)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts slow, waits until the server runs it, aborts it, and waits until the server's abort
 * signal has fired for it. */
async function cancelSlow(client: V2Client, label: string): Promise<void> {
  const controller = new AbortController();
  const pending = client.callTool({ name: 'slow', arguments: { label } }, { signal: controller.signal });
  pending.catch(() => {}); // judged below
  await waitForSeen(client, `slow {"label":"${label}"}`);
  controller.abort(new Error('the user gave up'));
  await assert.rejects(pending, 'the aborted call rejects on the client');
  await waitForSeen(client, `slow cancelled ${label}`);
}

describe(`${MODERN}: the v2 client over stdio, the proxy in front of the stdio server`, TIMEOUT, () => {
  let session: Session<V2Client>;
  before(async () => {
    session = await connectV2(proxyParams(policy, slowServer()), pinned);
  });
  after(async () => {
    await session?.close();
  });

  it("relays the client's notifications/cancelled: the server's abort signal fires, and the next call works", async () => {
    assert.equal(session.client.getProtocolEra(), 'modern');
    await cancelSlow(session.client, 'one');
    assert.deepEqual(clientCancelled(session.wire.sent), [session.wire.lastCall('slow')!.id]);
    await echoWorks(session.client, 'after the cancellation');
  });
});

describe(`${MODERN}: the v2 client over Streamable HTTP, the listener in front of the stdio server`, TIMEOUT, () => {
  let listener: Listener;
  let session: Session<V2Client>;
  before(async () => {
    listener = await startListener(policy, slowServer());
    session = await connectStreamableV2(listener, pinned);
  });
  after(async () => {
    await session?.close().catch(() => {});
    await listener?.stop();
  });

  it('turns the closed response stream into a cancellation upstream: the server\'s abort signal fires', async () => {
    assert.equal(session.client.getProtocolEra(), 'modern');
    await cancelSlow(session.client, 'two');
    // The 2026 client cancels by closing the stream alone; it sends no notification.
    assert.deepEqual(clientCancelled(session.wire.sent), []);
    // The listener logs it before telling the upstream; its stderr may reach us a little later.
    await waitUntil(() => /the client closed a response stream; cancelling the request/.test(listener.stderr()), 10_000, 'the listener to log the closed stream');
    await echoWorks(session.client, 'after the cancellation');
  });
});

describe(`${MODERN}: the v2 client over stdio, the proxy in front of a Streamable HTTP server`, TIMEOUT, () => {
  let server: ModernHttpServer;
  let session: Session<V2Client>;
  before(async () => {
    server = await startModernHttpServer({ withSlow: true });
    session = await connectV2(upstreamParams(policy, server.url), pinned);
  });
  after(async () => {
    await session?.close();
    await server?.close();
  });

  it("aborts the call's HTTP exchange: the server sees the request end and its abort signal fire", async () => {
    assert.equal(session.client.getProtocolEra(), 'modern');
    // The proxy's first message to an HTTP upstream chooses the transport and is awaited whole
    // before later ones go out, so a quick call goes first.
    await echoWorks(session.client, 'before the cancellation');
    await cancelSlow(session.client, 'three');
    const exchanges = server.requests.filter((r) => r.body.includes('"tools/call"') && r.body.includes('"slow"'));
    assert.equal(exchanges.length, 1);
    assert.equal(exchanges[0]!.aborted, true, 'the proxy closed the exchange before the response ended');
    assert.deepEqual(server.seen.filter((l) => l.startsWith('slow')), ['slow {"label":"three"}', 'slow cancelled three']);
    await echoWorks(session.client, 'after the cancellation');
  });
});

// ------------------------------------------------------------------------------ still being decided

describe('a call cancelled while the proxy is still deciding it', TIMEOUT, () => {
  let tee: TeeSession;
  before(async () => {
    tee = startTeeProxy(policy, dir.file('undecided.log'));
    await tee.proxy.initialize();
  });
  after(async () => {
    await tee?.proxy.close().catch(() => {});
  });

  it('is never forwarded and never answered, and the next call goes through', async () => {
    // The client never listed the tools, so deciding echo waits for the proxy's own tools/list;
    // the cancellation arrives in the same write, while the call waits.
    const id = 'undecided-1';
    tee.proxy.write(
      JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'never' } } }) +
        '\n' +
        JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'changed my mind' } }) +
        '\n',
    );
    await tee.proxy.waitForStderr(/call cancelled by the client before it was forwarded/);

    const next = await tee.proxy.callTool('echo', { message: 'after' }, 'decided-2');
    assert.deepEqual((next.result as Json | undefined)?.content, [{ type: 'text', text: 'Echo: after' }]);

    const upstream = (await tee.log()).filter(isRecord);
    assert.ok(upstream.some((m) => m.method === 'tools/list'), 'the proxy listed the tools itself while deciding');
    assert.deepEqual(
      upstream.filter((m) => isCallOf(m, 'echo')).map((m) => m.id),
      ['decided-2'],
      'only the second call reached the server',
    );
    assert.deepEqual(cancelledIds(upstream), [], 'nothing to cancel upstream: it never got the call');
    assert.equal(
      tee.proxy.pending().some((m) => isRecord(m) && m.id === id),
      false,
      'the cancelled call got no answer',
    );
  });
});
