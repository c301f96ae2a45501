// One line nesting thousands of arrays used to kill the proxy (JSON.stringify, and every other
// walk over a value, recurses). Now every message, from either side and on every transport, is
// checked once as it arrives: one nesting deeper than --max-message-depth (64) is refused with
// a JSON-RPC error when it is a request, becomes an error for the side that waits on it when it
// is an answer, and is dropped when it is a notification. After each, the proxy still answers a
// ping, and nothing denied ever reaches the server (a lenient one that logs every message).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { deepText, DEPTHS, errorOf, initializeBody, isRecord, modernBody, modernHeaders, resultText, type Json } from '../support/messages.js';
import { startProxy, type RawProxy } from '../support/raw-proxy.js';
import { openSse, postRaw, request, startListener, type Listener } from '../support/listener.js';
import { dispatched, lenientServer, startLenientHttp } from '../support/lenient.js';

const TIMEOUT = { timeout: 120_000 };

const POLICY = `version: "1"
default: allow
tools:
  delete_file:
    rules:
      - name: never delete
        action: deny
        on_deny: "Deleting files is not allowed"
`;

const TOO_DEEP = /nests deeper than 64 levels/;

/** A denied call whose arguments nest `depth` levels. */
function deepCall(id: number | string, depth: number): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"method":"tools/call","params":{"name":"delete_file","arguments":{"path":${deepText(depth)}}}}`;
}

function deepNotification(depth: number): string {
  return `{"jsonrpc":"2.0","method":"notifications/foo","params":{"x":${deepText(depth)}}}`;
}

/** The client's answer to a server request, nesting `depth` levels. */
function deepAnswer(id: unknown, depth: number): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"roots":${deepText(depth)}}}`;
}

let dir: TempDir;
let policy: string;
before(async () => {
  dir = await makeTempDir();
  policy = await writePolicy(dir.path, POLICY);
});
after(async () => {
  await dir?.cleanup();
});

/** Nothing the policy denies reached the server, and no message with one of `ids` did. */
async function assertNothingDeniedArrived(logFile: string, ids: unknown[] = []): Promise<void> {
  const seen = await dispatched(logFile);
  assert.deepEqual(seen.filter((m) => m.method === 'tools/call' && m.name === 'delete_file'), [], 'a denied call reached the server');
  assert.deepEqual(seen.filter((m) => ids.includes(m.id as never)), [], 'a refused message reached the server');
  assert.deepEqual(seen.filter((m) => m.raw === 'notifications/foo'), [], 'a refused notification reached the server');
}

describe('deep nesting over stdio', TIMEOUT, () => {
  let proxy: RawProxy;
  let logFile: string;
  before(async () => {
    logFile = join(dir.path, 'stdio.log');
    const server = lenientServer(logFile);
    proxy = startProxy(['-c', policy, '--', server.command, ...server.args]);
    await proxy.initialize();
  });
  after(async () => {
    await proxy?.close();
  });

  const refusedIds: number[] = [];
  for (const depth of DEPTHS) {
    it(`refuses a request nesting ${depth} levels, and keeps serving`, async () => {
      const id = proxy.freshId();
      refusedIds.push(id);
      proxy.send(deepCall(id, depth));
      const answer = await proxy.response(id);
      assert.equal(errorOf(answer)?.code, -32600);
      assert.match(errorOf(answer)!.message, TOO_DEEP);
      await proxy.barrier();
    });

    it(`drops a notification nesting ${depth} levels`, async () => {
      proxy.send(deepNotification(depth));
      await proxy.barrier();
      assert.deepEqual(proxy.drain(), [], 'nothing is answered to a notification');
    });

    it(`turns a client answer nesting ${depth} levels into an error for the server`, async () => {
      const id = proxy.freshId();
      proxy.sendJson({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'ask_client', arguments: {} } });
      const ask = await proxy.waitFor((m) => isRecord(m) && m.method === 'roots/list');
      proxy.send(deepAnswer(ask.id, depth));
      assert.match(resultText(await proxy.response(id)) ?? '', /client answered with error -32603: .*nests deeper than 64 levels/);
    });

    it(`answers the client with an error for a server result nesting ${depth} levels`, async () => {
      const answer = await proxy.callTool('deep_result', { depth });
      assert.equal(errorOf(answer)?.code, -32603);
      assert.match(errorOf(answer)!.message, TOO_DEEP);
    });

    it(`drops a server notification nesting ${depth} levels`, async () => {
      const answer = await proxy.callTool('deep_notification', { depth });
      assert.equal(resultText(answer), 'sent a deep notification');
      await proxy.barrier();
      assert.deepEqual(proxy.drain().filter((m) => isRecord(m) && m.method === 'notifications/message'), []);
    });

    it(`answers a server request nesting ${depth} levels with an error, never passing it on`, async () => {
      const answer = await proxy.callTool('deep_request', { depth });
      assert.match(resultText(answer) ?? '', /client answered with error -32600: .*nests deeper than 64 levels/);
      assert.deepEqual(proxy.drain().filter((m) => isRecord(m) && m.method === 'roots/list'), []);
    });
  }

  it('is still running, and no refused message reached the server', async () => {
    assert.equal(proxy.running, true);
    await proxy.barrier();
    await assertNothingDeniedArrived(logFile, refusedIds);
    const denied = await proxy.callTool('delete_file', { path: '/etc' });
    assert.match(resultText(denied) ?? '', /Deleting files is not allowed/);
  });

  it('takes a different limit from --max-message-depth, and refuses a bad one', async () => {
    const server = lenientServer(join(dir.path, 'limit.log'));
    const strict = startProxy(['-c', policy, '--max-message-depth', '8', '--', server.command, ...server.args]);
    try {
      await strict.initialize();
      const ok = await strict.callTool('echo', { text: JSON.parse(deepText(5)) as unknown as string });
      assert.equal(resultText(ok), 'ran echo');
      const id = strict.freshId();
      strict.send(deepCall(id, 9));
      assert.match(errorOf(await strict.response(id))!.message, /nests deeper than 8 levels/);
    } finally {
      await strict.close();
    }
    const bad = startProxy(['-c', policy, '--max-message-depth', 'deep', '--', server.command, ...server.args]);
    const exit = await bad.waitForExit();
    assert.equal(exit.code, 2);
    assert.match(bad.stderr, /--max-message-depth must be a whole number/);
  });
});

describe('deep nesting on the Streamable HTTP listener (2025 sessions)', TIMEOUT, () => {
  let listener: Listener;
  let logFile: string;
  let session: Record<string, string>;
  let nextId = 1;
  before(async () => {
    logFile = join(dir.path, 'http.log');
    listener = await startListener(policy, lenientServer(logFile));
    const init = await request(listener.url, { body: initializeBody() });
    assert.equal(init.status, 200, init.text);
    session = { 'Mcp-Session-Id': init.headers.get('mcp-session-id')! };
    await postRaw(listener.url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), session);
  });
  after(async () => {
    await listener?.stop();
  });

  async function ping(): Promise<void> {
    const id = nextId++;
    const res = await postRaw(listener.url, JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }), session);
    assert.deepEqual(await res.next((m) => m.id === id), { jsonrpc: '2.0', id, result: {} });
  }

  async function call(name: string, args: Json) {
    const id = nextId++;
    return { id, stream: await postRaw(listener.url, JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }), session) };
  }

  for (const depth of DEPTHS) {
    it(`refuses a request and a notification nesting ${depth} levels with 400, and keeps serving`, async () => {
      for (const body of [deepCall(nextId++, depth), deepNotification(depth)]) {
        const res = await postRaw(listener.url, body, session);
        assert.equal(res.status, 400);
        assert.match(errorOf(await res.next())?.message ?? '', TOO_DEEP);
      }
      await ping();
    });

    it(`turns a client answer nesting ${depth} levels into an error for the server`, async () => {
      const { id, stream } = await call('ask_client', {});
      const ask = await stream.next((m) => m.method === 'roots/list');
      assert.ok(ask, 'the server request arrives on the call stream');
      const refused = await postRaw(listener.url, deepAnswer(ask.id, depth), session);
      assert.equal(refused.status, 400);
      const answer = await stream.next((m) => m.id === id);
      assert.match(resultText(answer) ?? '', /client answered with error -32603/);
    });

    it(`answers with an error for a server result nesting ${depth} levels, and drops a deep notification`, async () => {
      const result = await call('deep_result', { depth });
      assert.match(errorOf(await result.stream.next((m) => m.id === result.id))?.message ?? '', TOO_DEEP);
      const note = await call('deep_notification', { depth });
      const messages = await note.stream.rest();
      assert.deepEqual(messages.filter((m) => m.method === 'notifications/message'), []);
      assert.equal(resultText(messages.find((m) => m.id === note.id)), 'sent a deep notification');
    });
  }

  it('never passed a refused message on', async () => {
    await ping();
    await assertNothingDeniedArrived(logFile);
    assert.equal(listener.proc.exitCode, null);
  });
});

describe('deep nesting on the Streamable HTTP listener (2026-07-28, stateless)', TIMEOUT, () => {
  let listener: Listener;
  let logFile: string;
  before(async () => {
    logFile = join(dir.path, 'modern.log');
    listener = await startListener(policy, lenientServer(logFile));
  });
  after(async () => {
    await listener?.stop();
  });

  /** A 2026 request whose arguments hold `depth` levels (spliced into its JSON text). */
  function modernDeepCall(id: number, depth: number): { body: string; headers: Record<string, string> } {
    const body = modernBody(id, 'tools/call', { name: 'delete_file', arguments: { path: 'DEEP' } });
    return { body: JSON.stringify(body).replace('"DEEP"', deepText(depth)), headers: modernHeaders(body) };
  }

  for (const depth of DEPTHS) {
    it(`refuses a request nesting ${depth} levels with 400, answers a server result that deep with an error`, async () => {
      const deep = modernDeepCall(depth, depth);
      const res = await postRaw(listener.url, deep.body, deep.headers);
      assert.equal(res.status, 400);
      assert.match(errorOf(await res.next())?.message ?? '', TOO_DEEP);

      const body = modernBody(1, 'tools/call', { name: 'deep_result', arguments: { depth } });
      const answer = await postRaw(listener.url, JSON.stringify(body), modernHeaders(body));
      assert.match(errorOf(await answer.next((m) => m.id === 1))?.message ?? '', TOO_DEEP);

      const ping = modernBody(2, 'ping');
      const pong = await postRaw(listener.url, JSON.stringify(ping), modernHeaders(ping));
      assert.ok((await pong.next((m) => m.id === 2))?.result, 'the next ping is answered');
    });
  }

  it('never passed a refused message on', async () => {
    await assertNothingDeniedArrived(logFile);
  });
});

describe('deep nesting on the legacy SSE listener', TIMEOUT, () => {
  let listener: Listener;
  let logFile: string;
  before(async () => {
    logFile = join(dir.path, 'sse.log');
    listener = await startListener(policy, lenientServer(logFile), { transport: 'sse' });
  });
  after(async () => {
    await listener?.stop();
  });

  it('refuses requests, notifications and client answers at every depth with 400, and keeps serving', async () => {
    const sse = await openSse(listener.url);
    try {
      const post = (body: string) => postRaw(sse.postUrl, body);
      assert.equal((await post(initializeBody(1))).status, 202);
      assert.ok(await sse.stream.next((m) => m.id === 1), 'initialize answered on the stream');
      await post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
      let id = 10;
      for (const depth of DEPTHS) {
        for (const body of [deepCall(id++, depth), deepNotification(depth)]) {
          const res = await post(body);
          assert.equal(res.status, 400);
          assert.match(errorOf(await res.next())?.message ?? '', TOO_DEEP);
        }
        const askId = id++;
        await post(JSON.stringify({ jsonrpc: '2.0', id: askId, method: 'tools/call', params: { name: 'ask_client', arguments: {} } }));
        const ask = await sse.stream.next((m) => m.method === 'roots/list');
        assert.equal((await post(deepAnswer(ask!.id, depth))).status, 400);
        assert.match(resultText(await sse.stream.next((m) => m.id === askId)) ?? '', /client answered with error -32603/);

        const resultId = id++;
        await post(JSON.stringify({ jsonrpc: '2.0', id: resultId, method: 'tools/call', params: { name: 'deep_result', arguments: { depth } } }));
        assert.match(errorOf(await sse.stream.next((m) => m.id === resultId))?.message ?? '', TOO_DEEP);

        const pingId = id++;
        await post(JSON.stringify({ jsonrpc: '2.0', id: pingId, method: 'ping' }));
        assert.deepEqual(await sse.stream.next((m) => m.id === pingId), { jsonrpc: '2.0', id: pingId, result: {} });
      }
    } finally {
      sse.close();
    }
    await assertNothingDeniedArrived(logFile);
  });
});

describe('deep nesting from a remote (HTTP) upstream', TIMEOUT, () => {
  let upstream: Awaited<ReturnType<typeof startLenientHttp>>;
  let proxy: RawProxy;
  before(async () => {
    upstream = await startLenientHttp(join(dir.path, 'remote.log'));
    proxy = startProxy(['-c', policy, '--upstream', upstream.url]);
    await proxy.initialize();
  });
  after(async () => {
    await proxy?.close();
    upstream?.stop();
  });

  for (const depth of DEPTHS) {
    it(`answers with an error for a result nesting ${depth} levels, and drops a notification that deep`, async () => {
      const answer = await proxy.callTool('deep_result', { depth });
      assert.match(errorOf(answer)?.message ?? '', TOO_DEEP);
      const note = await proxy.callTool('deep_notification', { depth });
      assert.equal(resultText(note), 'sent a deep notification');
      await proxy.barrier();
      assert.deepEqual(proxy.drain().filter((m) => isRecord(m) && m.method === 'notifications/message'), []);
    });
  }
});
