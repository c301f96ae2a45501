// Remote upstream servers: the client talks to the proxy over stdio, and the proxy talks to a
// real MCP server over HTTP (`--upstream <url>`): server-everything over Streamable HTTP and
// over the legacy HTTP+SSE transport, and the v2-SDK fixture in the 2026-07-28 era. A
// recording HTTP proxy in front of a server shows what reached it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Client as V2Client } from '@modelcontextprotocol/client';
import { fixturePolicy } from '../support/paths.js';
import { freePort } from '../support/wait.js';
import { assertDenied, assertNotDenied, MODERN, textOf } from '../support/messages.js';
import { startEverything, startRecorder, type HttpServer, type Recorder } from '../support/servers.js';
import { connectV1, connectV2, upstreamParams, type Session } from '../support/sdk-clients.js';
import { runProxyRaw } from '../support/raw-proxy.js';
import { startModernHttpServer, type ModernHttpServer } from '../fixtures/modern-http-server.js';

const TIMEOUT = { timeout: 90_000 };

/** The tools/call bodies that reached the server for `tool`, as parsed JSON. */
function callsReaching(bodies: string[], tool: string): Array<{ params: { name: string; arguments?: Record<string, unknown> } }> {
  return bodies
    .map((b) => {
      try {
        return JSON.parse(b) as { method?: string; params?: { name: string; arguments?: Record<string, unknown> } };
      } catch {
        return {};
      }
    })
    .filter((m): m is { method: string; params: { name: string; arguments?: Record<string, unknown> } } => m.method === 'tools/call' && m.params?.name === tool);
}

describe('server-everything over Streamable HTTP', TIMEOUT, () => {
  let server: HttpServer;
  let recorder: Recorder;
  let proxy: Session<V1Client>;

  before(async () => {
    server = await startEverything('streamableHttp');
    recorder = await startRecorder(server.origin);
    proxy = await connectV1(
      upstreamParams(fixturePolicy('everything-v1.yaml'), recorder.url('/mcp'), {
        flags: ['--header', 'Authorization: Bearer e2e-token', '--header', 'X-Trace:  trace-7 '],
      }),
    );
  });
  after(async () => {
    await proxy?.close();
    await recorder?.stop();
    await server?.stop();
  });
  const bodies = () => recorder.exchanges.map((e) => e.body);

  it("returns the server's real result for an allowed call", async () => {
    const result = await proxy.client.callTool({ name: 'echo', arguments: { message: 'ok over http' } });
    assertNotDenied(result);
    assert.equal(textOf(result), 'Echo: ok over http');
    assert.equal(callsReaching(bodies(), 'echo').length, 1);
  });

  it('denies a call, and the server never sees it', async () => {
    assertDenied(await proxy.client.callTool({ name: 'echo', arguments: { message: 'not ok' } }), {
      kind: 'condition',
      rule: 'ok messages only',
      message: 'Only messages that start with ok may be echoed',
    });
    assert.deepEqual(
      callsReaching(bodies(), 'echo').map((m) => m.params.arguments?.message),
      ['ok over http'],
    );
  });

  it('hides tools from tools/list and denies calling them without asking the server', async () => {
    const names = (await proxy.client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo') && !names.includes('get-env') && !names.includes('gzip-file-as-resource'), names.join(','));
    assertDenied(await proxy.client.callTool({ name: 'get-env', arguments: {} }), { kind: 'hidden' });
    assert.equal(callsReaching(bodies(), 'get-env').length, 0);
  });

  it('sends the --header values on every request to the server', () => {
    assert.ok(recorder.exchanges.length > 3);
    for (const e of recorder.exchanges) {
      assert.equal(e.headers.authorization, 'Bearer e2e-token', `${e.method} ${e.path}`);
      assert.equal(e.headers['x-trace'], 'trace-7', `${e.method} ${e.path}`);
    }
  });

  it('uses one upstream session for the whole run, with the negotiated protocol version', async () => {
    for (let i = 0; i < 3; i++) await proxy.client.callTool({ name: 'get-sum', arguments: { a: 1, b: i } });
    assert.equal(recorder.methods().filter((m) => m === 'initialize').length, 1);
    const minted = recorder.exchanges.flatMap((e) => (e.sessionId ? [e.sessionId] : []));
    assert.equal(new Set(minted).size, 1, `session ids minted: ${minted.join(',')}`);
    const [session] = minted;
    const later = recorder.exchanges.filter((e) => !e.body.includes('"initialize"'));
    assert.ok(later.length > 4);
    const version = proxy.wire.responseTo(proxy.wire.sent.find((m) => m.method === 'initialize')?.id)?.result?.protocolVersion;
    assert.equal(typeof version, 'string');
    for (const e of later) {
      assert.equal(e.headers['mcp-session-id'], session, `${e.method} ${e.body}`);
      assert.equal(e.headers['mcp-protocol-version'], version, `${e.method} ${e.body}`);
    }
    // The stream for server-initiated messages is open.
    assert.ok(recorder.exchanges.some((e) => e.method === 'GET' && e.status === 200));
  });

  it('ends the session with DELETE when the client goes away', async () => {
    const session = recorder.exchanges.find((e) => e.sessionId)?.sessionId;
    await proxy.close();
    const deadline = Date.now() + 10_000;
    while (!recorder.exchanges.some((e) => e.method === 'DELETE') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const del = recorder.exchanges.find((e) => e.method === 'DELETE');
    assert.ok(del, 'no DELETE reached the server');
    assert.equal(del.headers['mcp-session-id'], session);
  });
});

describe('server-initiated traffic over Streamable HTTP', TIMEOUT, () => {
  let server: HttpServer;
  let proxy: Session<V1Client>;
  const prompts: string[] = [];

  before(async () => {
    server = await startEverything('streamableHttp');
    proxy = await connectV1(upstreamParams(fixturePolicy('everything-traffic.yaml'), `${server.origin}/mcp`), {
      capabilities: { sampling: {} },
      setup(client) {
        client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
          const first = req.params.messages[0]?.content;
          prompts.push(first && 'text' in first && typeof first.text === 'string' ? first.text : '');
          return { model: 'e2e-model', role: 'assistant', content: { type: 'text', text: 'sampled over http' } };
        });
      },
    });
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  it('relays a sampling request made during an allowed call, and its answer', async () => {
    // server-everything adds its sampling tool once it sees the client's capabilities.
    const deadline = Date.now() + 10_000;
    while (!(await proxy.client.listTools()).tools.some((t) => t.name === 'trigger-sampling-request') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const result = await proxy.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'say hello', maxTokens: 20 } });
    assertNotDenied(result);
    assert.match(textOf(result), /sampled over http/);
    assert.deepEqual(prompts, ['Resource trigger-sampling-request context: say hello']);
    assert.ok(proxy.wire.requestsReceived().some((m) => m.method === 'sampling/createMessage'));
  });

  it('still gates: a denied call never makes the server ask for sampling', async () => {
    assertDenied(await proxy.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'x'.repeat(41) } }), {
      kind: 'condition',
      rule: 'short prompts',
    });
    assert.equal(prompts.length, 1);
  });

  it('relays progress notifications of a long-running call before its result', async () => {
    const result = await proxy.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 4 } }, undefined, {
      onprogress: () => {},
    });
    assert.equal(textOf(result), 'Long running operation completed. Duration: 0.2 seconds, Steps: 4.');
    const token = (proxy.wire.lastCall('trigger-long-running-operation')?.params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
    const arrived = proxy.wire.received.filter((m) => m.method === 'notifications/progress' && m.params?.progressToken === token);
    assert.deepEqual(
      arrived.map((m) => m.params?.progress),
      [1, 2, 3, 4],
    );
    const answer = proxy.wire.responseToLastCall('trigger-long-running-operation');
    assert.ok(proxy.wire.received.indexOf(answer!) > proxy.wire.received.indexOf(arrived[3]!));
  });
});

describe('server-everything over legacy HTTP+SSE', TIMEOUT, () => {
  let server: HttpServer;
  before(async () => {
    server = await startEverything('sse');
  });
  after(async () => {
    await server?.stop();
  });

  const cases: Array<[string, () => string, string[]]> = [
    ['auto mode falls back when the Streamable HTTP endpoint is missing', () => `${server.origin}/mcp`, []],
    ['auto mode uses HTTP+SSE for a URL ending in /sse', () => `${server.origin}/sse`, []],
    ['--upstream-transport sse', () => `${server.origin}/sse`, ['--upstream-transport', 'sse']],
  ];
  for (const [label, url, flags] of cases) {
    it(label, async () => {
      const proxy = await connectV1(upstreamParams(fixturePolicy('everything-v1.yaml'), url(), { flags }));
      try {
        const result = await proxy.client.callTool({ name: 'echo', arguments: { message: 'ok via sse' } });
        assert.equal(textOf(result), 'Echo: ok via sse');
        assertDenied(await proxy.client.callTool({ name: 'get-tiny-image', arguments: {} }), { kind: 'deny_rule', rule: 'no images' });
        const names = (await proxy.client.listTools()).tools.map((t) => t.name);
        assert.ok(names.includes('echo') && !names.includes('get-env'), names.join(','));
        assert.equal(textOf(await proxy.client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } })), 'The sum of 2 and 3 is 5.');
        if (flags.length === 0 && url().endsWith('/mcp')) assert.match(proxy.stderr(), /does not speak Streamable HTTP; using HTTP\+SSE/);
      } finally {
        await proxy.close();
      }
    });
  }
});

describe('an upstream that is down', TIMEOUT, () => {
  it('answers the first request with a JSON-RPC error and exits 1 when the server cannot be reached at all', async () => {
    const url = `http://127.0.0.1:${await freePort()}/mcp`;
    const run = await runProxyRaw(upstreamParams(fixturePolicy('everything-v1.yaml'), url), [
      { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } },
    ]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.messages.length, 1);
    const error = run.messages[0]!.error as { code: number; message: string };
    assert.equal(run.messages[0]!.id, 1);
    assert.equal(error.code, -32603);
    assert.ok(error.message.includes(url), error.message);
    assert.match(run.stderr, /cannot reach the upstream server/);
  });

  it('answers calls with a JSON-RPC error, not a hang, when the server goes away mid-session', async () => {
    const server = await startEverything('streamableHttp');
    const url = `${server.origin}/mcp`;
    const proxy = await connectV1(upstreamParams(fixturePolicy('everything-v1.yaml'), url));
    try {
      assert.equal(textOf(await proxy.client.callTool({ name: 'echo', arguments: { message: 'ok before' } })), 'Echo: ok before');
      await server.stop();
      await assert.rejects(proxy.client.callTool({ name: 'echo', arguments: { message: 'ok after' } }), (err: { code?: number; message?: string }) => {
        assert.equal(err.code, -32603);
        assert.ok(String(err.message).includes(url), err.message);
        return true;
      });
      // Denials need no server.
      assertDenied(await proxy.client.callTool({ name: 'echo', arguments: { message: 'nope' } }), { kind: 'condition' });
    } finally {
      await proxy.close();
      await server.stop();
    }
  });
});

describe('the 2026-07-28 era over HTTP (v2 client pinned)', TIMEOUT, () => {
  let server: ModernHttpServer;
  let proxy: Session<V2Client>;
  before(async () => {
    server = await startModernHttpServer();
    proxy = await connectV2(upstreamParams(fixturePolicy('modern.yaml'), server.url), { versionNegotiation: { mode: { pin: MODERN } } });
  });
  after(async () => {
    await proxy?.close();
    await server?.close();
  });
  const call = (name: string, args: Record<string, unknown> = {}) => proxy.client.callTool({ name, arguments: args });

  it('denies a call missing a required argument, using a tools/list the proxy made itself', async () => {
    assertDenied(await call('add', { a: 1 }), { kind: 'missing_args', rule: 'both operands', message: 'Missing required argument "b" for tool "add"' });
    assert.equal(proxy.wire.responseToLastCall('add')?.result?.resultType, 'complete');
    assert.ok(!proxy.wire.methodsSent().includes('tools/list'));
    assert.ok(server.requests.some((r) => r.headers['mcp-method'] === 'tools/list'), 'the proxy listed the tools itself');
    assert.deepEqual(server.seen, []);
  });

  it("returns the server's result for an allowed call, sent with the 2026-07-28 headers", async () => {
    const result = await call('add', { a: 2, b: 40 });
    assertNotDenied(result);
    assert.equal(textOf(result), '2 + 40 = 42');
    assert.equal(proxy.wire.responseToLastCall('add')?.result?.resultType, 'complete');
    const posted = server.requests.find((r) => r.body.includes('"tools/call"') && r.body.includes('"add"'));
    assert.ok(posted);
    assert.equal(posted.headers['mcp-protocol-version'], MODERN);
    assert.equal(posted.headers['mcp-method'], 'tools/call');
    assert.equal(posted.headers['mcp-name'], 'add');
    assert.equal(posted.headers['mcp-session-id'], undefined);
    assert.equal(proxy.client.getProtocolEra(), 'modern');
    assert.ok(!proxy.wire.methodsSent().includes('initialize'));
  });

  it('denies with a complete result, and the server never runs the call', async () => {
    assertDenied(await call('delete_all'), { kind: 'deny_rule', rule: 'never delete', message: 'Deleting everything is not allowed' });
    const raw = proxy.wire.responseToLastCall('delete_all');
    assert.equal(raw?.result?.resultType, 'complete');
    assert.deepEqual(server.seen, ['add {"a":2,"b":40}']);
  });

  it('filters tools/list and denies a hidden tool', async () => {
    const names = (await proxy.client.listTools()).tools.map((t) => t.name);
    assert.deepEqual(names.sort(), ['add', 'delete_all', 'echo', 'seen']);
    assertDenied(await call('secret_admin'), { kind: 'hidden' });
    assert.ok(!server.seen.some((line) => line.startsWith('secret_admin')));
  });

  it("relays the server's JSON-RPC error for an unknown tool", async () => {
    await assert.rejects(call('ghost'), (err: { code?: number; message?: string }) => err.code === -32602 && /ghost/.test(String(err.message)));
  });
});
