// The HTTP listener's clients misbehave: one disappears while its call is in flight (its
// request's SSE stream open, or before any answer), one closes its legacy SSE stream with a call
// in flight, a stateless 2026-07-28 client drops its response stream, and two slow-loris clients
// send their headers or their body a byte a second. The proxy does not crash, records each
// call's fate, lets go of what it held (the session's requests in flight empty, so the idle
// timeout can end the session and its server), cuts the slow clients off, and serves everyone
// else meanwhile. Upstream: test/fixtures/faulty-server.ts. Needs the build (dist/).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { callsReceived, faultyLog, faultyServer } from '../support/faulty.js';
import { addFigure } from '../support/figures.js';
import { connectStreamableV1, openSse, request, startListener, type Listener } from '../support/listener.js';
import { initializeBody, modernBody, modernHeaders, resultText, textOf, type Json } from '../support/messages.js';
import { toolCalls, trailRecords } from '../support/trail.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { eventually } from '../support/wait.js';

const OPTIONS = { timeout: 120_000 };
const POLICY = `version: "1"
tools:
  "*":
    rules:
      - name: every call
        rate_limit: { max: 1000, window: 3600, scope: global }
`;
const JSON_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

let tmp: TempDir;
let policy: string;
let runs = 0;

before(async () => {
  tmp = await makeTempDir('intercept-faults-listener-');
  policy = await writePolicy(tmp.path, POLICY);
});
after(async () => {
  await tmp?.cleanup();
});

async function scene(transport: 'http' | 'sse', flags: string[] = []) {
  const n = ++runs;
  const log = tmp.file(`server-${n}.jsonl`);
  const events = tmp.file(`events-${n}`);
  const listener = await startListener(policy, faultyServer(log), { transport, flags: ['--state-dir', tmp.file(`state-${n}`), '--events-dir', events, ...flags] });
  return { listener, log, events };
}

/** The trail's tool_call records once there are `n` of them. */
async function recordedCalls(events: string, n: number): Promise<Json[]> {
  return eventually(async () => {
    const calls = toolCalls(await trailRecords(events));
    return calls.length >= n ? calls : undefined;
  }, 20_000);
}

/** Waits until the proxy has no server process left (every session ended, each server gone). */
async function noServersLeft(listener: Listener): Promise<void> {
  await eventually(() => (listener.children().length === 0 ? true : undefined), 20_000);
}

/** A 2025 Streamable HTTP session started by hand; returns its id. */
async function startSession(url: string): Promise<string> {
  const init = await request(url, { body: initializeBody() });
  assert.equal(init.status, 200, init.text);
  const id = init.headers.get('mcp-session-id')!;
  const initialized = await request(url, { body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers: { 'Mcp-Session-Id': id } });
  assert.equal(initialized.status, 202);
  return id;
}

describe('a client that disappears with its call in flight', OPTIONS, () => {
  it('Streamable HTTP: the calls run their course and are recorded; the session empties and ends when idle', async () => {
    const { listener, log, events } = await scene('http', ['--call-timeout', '4s', '--session-idle-timeout', '1']);
    try {
      const session = await startSession(listener.url);
      const headers = { ...JSON_HEADERS, 'Mcp-Session-Id': session };
      // One leaves once its answer's SSE stream is open (after a second), the other at once.
      const slow = new AbortController();
      const answer = await fetch(listener.url, { method: 'POST', headers, signal: slow.signal, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'slow', arguments: { ms: 2000 } } }) });
      assert.match(answer.headers.get('content-type') ?? '', /text\/event-stream/);
      slow.abort();
      const hang = new AbortController();
      void fetch(listener.url, { method: 'POST', headers, signal: hang.signal, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'hang', arguments: {} } }) }).catch(() => {});
      await eventually(async () => (callsReceived(await faultyLog(log), 'hang').length === 1 ? true : undefined));
      hang.abort();
      addFigure('faults injected', 2);

      // Still serving, on the same session.
      const ping = await request(listener.url, { body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' }), headers: { 'Mcp-Session-Id': session } });
      assert.deepEqual(ping.json?.result, {});

      const calls = await recordedCalls(events, 2);
      assert.deepEqual(calls.map((c) => [c.tool, c.outcome]).sort(), [['hang', 'timeout'], ['slow', 'result']]);
      // Nothing is left in flight, so the idle timeout ends the session and its server.
      await eventually(() => (/session ended .*reason="idle timeout"/.test(listener.stderr()) ? true : undefined), 20_000);
      await noServersLeft(listener);
    } finally {
      assert.equal(await listener.stop(), 0, listener.stderr());
    }
  });

  it('legacy HTTP+SSE: closing the stream ends the session; the call is cancelled upstream and recorded; others are served', async () => {
    const { listener, log, events } = await scene('sse');
    try {
      const sse = await openSse(listener.url);
      const post = (body: Json) => request(sse.postUrl, { body: JSON.stringify(body) });
      assert.equal((await post(JSON.parse(initializeBody()) as Json)).status, 202);
      await sse.stream.next((m) => m.id === 1);
      await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
      assert.equal((await post({ jsonrpc: '2.0', id: 'stuck', method: 'tools/call', params: { name: 'hang', arguments: {} } })).status, 202);
      await eventually(async () => (callsReceived(await faultyLog(log), 'hang').length === 1 ? true : undefined));
      sse.close();
      addFigure('faults injected', 1);

      const [call] = await recordedCalls(events, 1);
      assert.equal(call!.outcome, 'cancelled');
      assert.match(String(call!.error), /The session ended \(the client closed the session\)/);
      const cancelled = await eventually(async () => (await faultyLog(log)).find((e) => e.event === 'cancelled' && e.requestId === 'stuck'));
      assert.match(String(cancelled.reason), /session ended/);
      await noServersLeft(listener);

      // The next client is served as ever.
      const next = await openSse(listener.url);
      try {
        await request(next.postUrl, { body: initializeBody() });
        await next.stream.next((m) => m.id === 1);
        await request(next.postUrl, { body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'next' } } }) });
        assert.equal(resultText(await next.stream.next((m) => m.id === 2)), 'Echo: next');
      } finally {
        next.close();
      }
    } finally {
      assert.equal(await listener.stop(), 0, listener.stderr());
    }
  });

  it('a 2026-07-28 client dropping its response stream cancels the call; the stateless upstream empties and ends when idle', async () => {
    const { listener, log, events } = await scene('http', ['--session-idle-timeout', '1']);
    try {
      const body = modernBody(7, 'tools/call', { name: 'hang', arguments: {} });
      const gone = new AbortController();
      void fetch(listener.url, { method: 'POST', headers: { ...JSON_HEADERS, ...modernHeaders(body) }, body: JSON.stringify(body), signal: gone.signal }).catch(() => {});
      await eventually(async () => (callsReceived(await faultyLog(log), 'hang').length === 1 ? true : undefined));
      gone.abort();
      addFigure('faults injected', 1);
      const [call] = await recordedCalls(events, 1);
      assert.equal(call!.outcome, 'cancelled');
      await eventually(async () => ((await faultyLog(log)).some((e) => e.event === 'cancelled') ? true : undefined));
      await eventually(() => (/stateless upstream ended .*reason="idle timeout"/.test(listener.stderr()) ? true : undefined), 20_000);
      await noServersLeft(listener);
    } finally {
      assert.equal(await listener.stop(), 0, listener.stderr());
    }
  });
});

describe('slow-loris clients', OPTIONS, () => {
  /** A connection that sends `head` and then one byte of `drip` a second, until the server
   * closes it. Resolves with what the server sent back. */
  function loris(port: number, head: string, drip: string): { closed: Promise<string>; bytesSent: () => number } {
    const socket: Socket = connect({ host: '127.0.0.1', port });
    let received = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    socket.on('data', (d) => (received += d.toString()));
    socket.on('error', () => {});
    socket.on('connect', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (sent < drip.length && socket.writable) socket.write(drip[sent++]!);
      }, 1000);
    });
    const closed = new Promise<string>((resolve) =>
      socket.on('close', () => {
        clearInterval(timer);
        resolve(received);
      }),
    );
    return { closed, bytesSent: () => sent };
  }

  it('a header or a body a byte a second is cut off (408) while other clients are served', async () => {
    const { listener } = await scene('http');
    try {
      const port = Number(new URL(listener.url).port);
      const headers = loris(port, 'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n', `X-Slow: ${'a'.repeat(120)}\r\n\r\n`);
      const body = loris(
        port,
        `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 200\r\n\r\n`,
        ' '.repeat(200),
      );
      addFigure('faults injected', 2);
      const session = await connectStreamableV1(listener);
      let served = 0;
      let cut = 0;
      void Promise.all([headers.closed, body.closed]).then(() => (cut = 2));
      try {
        while (cut < 2) {
          assert.equal(textOf(await session.client.callTool({ name: 'echo', arguments: { message: `m${served}` } })), `Echo: m${served}`);
          served++;
          await new Promise((r) => setTimeout(r, 250));
        }
      } finally {
        await session.close();
      }
      for (const [which, slow, length] of [
        ['headers', headers, 124],
        ['body', body, 200],
      ] as const) {
        const answer = await slow.closed;
        assert.ok(slow.bytesSent() < length, `the slow ${which} was cut off before it was complete`);
        assert.match(answer, /^HTTP\/1\.1 408 /, `the slow ${which} is answered 408`);
      }
      assert.ok(served > 0, 'other clients were served meanwhile');
    } finally {
      assert.equal(await listener.stop(), 0, listener.stderr());
    }
  });
});
