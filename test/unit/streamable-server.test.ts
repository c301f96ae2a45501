// The response stream of the listener's Streamable HTTP framing, on a real Node HTTP server:
// an answer alone is one JSON body; anything before it makes the response an SSE stream, with
// text that spans lines split into data lines as SSE requires; a stream ended with nothing is
// an empty event stream; a client that left is noticed, and nothing more is written.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ResponseStream } from '../../src/transport/streamable-server.js';
import { waitUntil } from '../support/wait.js';

/** Serves one request with `serve`, then fetches it; returns the response and its body. */
async function exchange(serve: (res: ServerResponse) => void): Promise<{ type: string | null; length: string | null; body: string }> {
  const server = createServer((_req, res) => serve(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    return { type: res.headers.get('content-type'), length: res.headers.get('content-length'), body: await res.text() };
  } finally {
    server.close();
  }
}

describe('ResponseStream', () => {
  it('sends an answer that comes alone as one JSON body with its length', async () => {
    const text = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { note: 'é' } });
    const got = await exchange((res) => new ResponseStream(res, { 'mcp-session-id': 's' }).write(text, true));
    assert.equal(got.type, 'application/json');
    assert.equal(got.length, String(Buffer.byteLength(text)));
    assert.equal(got.body, text);
  });

  it('streams a notification and then the answer as SSE events, and ends there', async () => {
    const note = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } });
    const answer = JSON.stringify({ jsonrpc: '2.0', id: 1, result: {} });
    const got = await exchange((res) => {
      const stream = new ResponseStream(res, {});
      stream.write(note, false);
      stream.write(answer, true);
      assert.equal(stream.write(answer, true), false, 'nothing after the answer');
    });
    assert.equal(got.type, 'text/event-stream');
    assert.equal(got.body, `event: message\ndata: ${note}\n\nevent: message\ndata: ${answer}\n\n`);
  });

  it('splits text that spans lines (a pretty-printing upstream) into data lines', async () => {
    const pretty = '{\n  "jsonrpc": "2.0",\r\n  "method": "notifications/message"\r}';
    const got = await exchange((res) => {
      const stream = new ResponseStream(res, {});
      stream.write(pretty, false);
      stream.end();
    });
    assert.equal(got.body, 'event: message\ndata: {\ndata:   "jsonrpc": "2.0",\ndata:   "method": "notifications/message"\ndata: }\n\n');
    const data = got.body.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    assert.deepEqual(JSON.parse(data), { jsonrpc: '2.0', method: 'notifications/message' });
  });

  it('ends a stream that carried nothing as an empty event stream', async () => {
    const got = await exchange((res) => new ResponseStream(res, {}).end());
    assert.equal(got.type, 'text/event-stream');
    assert.equal(got.body, '');
  });

  it('notices a client that left, and writes nothing more', async () => {
    let stream: ResponseStream | undefined;
    let closed = 0;
    const server = createServer((_req, res) => {
      stream = new ResponseStream(res, {}, { onClose: () => closed++ });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const abort = new AbortController();
    const pending = fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { signal: abort.signal }).catch(() => undefined);
    await waitUntil(() => stream !== undefined, 5000, 'the request to arrive');
    abort.abort();
    await pending;
    await waitUntil(() => closed === 1, 5000, 'the stream to notice');
    assert.equal(stream!.open, false);
    assert.equal(stream!.write('{}', true), false);
    server.close();
  });
});
