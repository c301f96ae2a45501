// How the listener frames Streamable HTTP, seen on the wire by a raw client: a plain answer is
// one JSON body, an answer preceded by progress is a short SSE stream, a call still running
// after a second has its stream opened; and the transport's own refusals (Accept, Content-Type,
// protocol version, a second initialize, a second standing stream, an id already in flight,
// a message with nothing to answer), none of which reaches the server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { initializeBody, modernBody, modernHeaders } from '../support/messages.js';
import { readTeeLog, teeCommand } from '../support/servers.js';
import { postRaw, request, startListener, type Listener } from '../support/listener.js';

const TIMEOUT = { timeout: 120_000 };

const POLICY = `
version: "1"
tools:
  echo:
    rules:
      - action: allow
  trigger-long-running-operation:
    rules:
      - action: allow
`;

let dir: TempDir;
let listener: Listener;
let tee: string;

before(async () => {
  dir = await makeTempDir();
  tee = `${dir.path}/upstream.log`;
  const policy = await writePolicy(dir.path, POLICY);
  const [command, ...args] = teeCommand(tee);
  listener = await startListener(policy, { command: command!, args });
});
after(async () => {
  await listener?.stop();
  await dir?.cleanup();
});

/** Opens a session (initialize, then notifications/initialized); returns its headers. */
async function session(): Promise<Record<string, string>> {
  const res = await request(listener.url, { body: initializeBody() });
  assert.equal(res.status, 200, res.text);
  const id = res.headers.get('mcp-session-id');
  assert.ok(id, 'an Mcp-Session-Id header');
  const headers = { 'Mcp-Session-Id': id, 'MCP-Protocol-Version': '2025-06-18' };
  const ack = await request(listener.url, { body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers });
  assert.equal(ack.status, 202);
  assert.equal(ack.text, '');
  return headers;
}

function call(id: number | string, name: string, args: Record<string, unknown>, meta?: Record<string, unknown>): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } });
}

/** How many tools/call requests with this marker reached the server. */
async function reachedServer(marker: string): Promise<number> {
  const lines = await readTeeLog(tee);
  return lines.filter((m) => JSON.stringify(m).includes(marker)).length;
}

describe('answers on the wire', TIMEOUT, () => {
  it('answers a plain call with one JSON body, its length declared, the session named', async () => {
    const headers = await session();
    // server-everything announces tools/list_changed once after initialize, on the stream of
    // whichever request is in flight: that answer is an SSE stream; every other is plain JSON.
    let plain = 0;
    for (let id = 1; id <= 3; id++) {
      const res = await request(listener.url, { body: call(id, 'echo', { message: 'plain' }), headers });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('mcp-session-id'), headers['Mcp-Session-Id']);
      if (res.headers.get('content-type') !== 'application/json') {
        assert.match(res.text, /notifications\/tools\/list_changed/);
        continue;
      }
      plain++;
      assert.equal(Number(res.headers.get('content-length')), Buffer.byteLength(res.text));
      assert.equal(res.json?.id, id);
      assert.match(JSON.stringify(res.json?.result), /Echo: plain/);
    }
    assert.ok(plain >= 2, `${plain} of 3 answers were plain JSON`);
  });

  it('streams progress and then the answer as SSE when the server reports progress first', async () => {
    const headers = await session();
    const stream = await postRaw(listener.url, call(8, 'trigger-long-running-operation', { duration: 0.2, steps: 3 }, { progressToken: 'p8' }), headers);
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
    const messages = await stream.rest();
    const progress = messages.filter((m) => m.method === 'notifications/progress');
    assert.equal(progress.length, 3, JSON.stringify(messages));
    assert.ok(progress.every((m) => (m.params as { progressToken?: unknown }).progressToken === 'p8'));
    assert.equal(messages.at(-1)?.id, 8);
    assert.ok(messages.at(-1)?.result, 'the answer comes last');
  });

  it('opens the stream of a call still running after a second, and answers on it', async () => {
    const headers = await session();
    const stream = await postRaw(listener.url, call(9, 'trigger-long-running-operation', { duration: 1.6, steps: 1 }), headers);
    assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
    const messages = await stream.rest();
    // Anything before the answer is a notification the server sent meanwhile (its logging).
    assert.equal(messages.at(-1)?.id, 9, JSON.stringify(messages));
    assert.ok(messages.slice(0, -1).every((m) => m.id === undefined && typeof m.method === 'string'), JSON.stringify(messages));
  });

  it('answers a 2026-07-28 request with JSON and its own id', async () => {
    const body = modernBody(41, 'tools/call', { name: 'echo', arguments: { message: 'modern' } });
    // The first request starts this agent's upstream, which may take longer than a second.
    await request(listener.url, { body: JSON.stringify(body), headers: modernHeaders(body) });
    const res = await request(listener.url, { body: JSON.stringify(body), headers: modernHeaders(body) });
    // server-everything speaks 2025 only: what matters here is the framing of the answer.
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(res.json?.id, 41);
  });
});

describe("the transport's refusals", TIMEOUT, () => {
  it('refuses a POST that does not accept both JSON and SSE (406), and the call never reaches the server', async () => {
    const headers = await session();
    for (const accept of ['application/json', 'text/event-stream', '*/*']) {
      const marker = `accept-${accept}`;
      const res = await request(listener.url, { body: call(10, 'echo', { message: marker }), headers: { ...headers, Accept: accept } });
      assert.equal(res.status, 406, accept);
      assert.equal(res.json?.error?.code, -32000);
      assert.equal(await reachedServer(marker), 0);
    }
  });

  it('refuses a body that is not declared JSON (415)', async () => {
    const headers = await session();
    const res = await request(listener.url, { body: call(11, 'echo', { message: 'typed-wrong' }), headers: { ...headers, 'Content-Type': 'text/plain' } });
    assert.equal(res.status, 415);
    assert.equal(await reachedServer('typed-wrong'), 0);
    const ok = await request(listener.url, { body: call(12, 'echo', { message: 'typed-right' }), headers: { ...headers, 'Content-Type': 'application/json; charset=utf-8' } });
    assert.equal(ok.status, 200, ok.text);
  });

  it('refuses a protocol version the session does not speak (400)', async () => {
    const headers = await session();
    const res = await request(listener.url, { body: call(13, 'echo', { message: 'old-version' }), headers: { ...headers, 'MCP-Protocol-Version': '1999-01-01' } });
    assert.equal(res.status, 400);
    assert.match(res.json?.error?.message ?? '', /unsupported protocol version/);
    assert.equal(await reachedServer('old-version'), 0);
  });

  it('refuses a second initialize on a session', async () => {
    const headers = await session();
    const res = await request(listener.url, { body: initializeBody(2), headers });
    assert.equal(res.status, 400);
    assert.match(res.json?.error?.message ?? '', /already initialized/);
  });

  it('allows one standing GET stream per session (409 for a second)', async () => {
    const headers = await session();
    const abort = new AbortController();
    const first = await fetch(listener.url, { headers: { ...headers, Accept: 'text/event-stream' }, signal: abort.signal });
    try {
      assert.equal(first.status, 200);
      assert.match(first.headers.get('content-type') ?? '', /^text\/event-stream/);
      const second = await request(listener.url, { method: 'GET', headers: { ...headers, Accept: 'text/event-stream' } });
      assert.equal(second.status, 409);
      const notAcceptable = await request(listener.url, { method: 'GET', headers: { ...headers, Accept: 'application/json' } });
      assert.equal(notAcceptable.status, 406);
    } finally {
      abort.abort();
    }
  });

  it('refuses a request whose id is in flight on the same session, and the first call still gets its own answer', async () => {
    const headers = await session();
    // Runs for 3 s: its stream opens (headers arrive) after 1 s unanswered, while it still runs.
    const first = await postRaw(listener.url, call(20, 'trigger-long-running-operation', { duration: 3, steps: 1 }), headers);
    const second = await request(listener.url, { body: call(20, 'echo', { message: 'same-id' }), headers });
    assert.equal(second.status, 400);
    assert.match(second.json?.error?.message ?? '', /already used by a request in flight/);
    const answers = (await first.rest()).filter((m) => m.id !== undefined);
    assert.equal(answers.length, 1, JSON.stringify(answers));
    assert.equal(answers[0]?.id, 20);
    assert.match(JSON.stringify(answers[0]?.result), /Long running operation completed/);
    assert.equal(await reachedServer('same-id'), 0);
  });

  it('refuses a message with nothing to answer (400) and keeps serving the session', async () => {
    const headers = await session();
    for (const body of [{ jsonrpc: '2.0' }, { jsonrpc: '2.0', method: 'tools/call', id: null }, { jsonrpc: '1.0', id: null }]) {
      const res = await request(listener.url, { body: JSON.stringify(body), headers });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.json?.error?.code, -32600);
    }
    const ok = await request(listener.url, { body: call(21, 'echo', { message: 'after' }), headers });
    assert.equal(ok.json?.id, 21);
  });
});
