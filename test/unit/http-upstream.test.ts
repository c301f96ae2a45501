// The HTTP upstream against a scripted HTTP server: what the interceptor would receive when
// the server refuses, forgets the session, breaks a stream or cannot be reached; and the
// pieces the command line and the transport derive (header flags, 2026-07-28 headers).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkUpstreamUrl, parseHeaderFlags } from '../../src/cli/proxy.js';
import { silentLogger } from '../../src/log.js';
import type { Upstream } from '../../src/transport/upstream.js';
import type { Inbound } from '../../src/transport/channel.js';
import { sseCandidates, speaksLegacySse } from '../../src/transport/http-negotiation.js';
import { openHttpUpstream } from '../../src/transport/http-upstream.js';
import { encodeHeaderValue } from '../../src/jsonrpc/eras.js';
import { modernHeaders } from '../../src/transport/http-upstream-headers.js';

interface Seen {
  method: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown> | undefined;
}

type Script = (seen: Seen, res: ServerResponse) => void;

/** A server whose answers a test scripts, recording every request. */
class FakeServer {
  readonly requests: Seen[] = [];
  script: Script = (_seen, res) => res.writeHead(500).end();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const seen: Seen = { method: req.method ?? '', headers: req.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
        this.requests.push(seen);
        this.script(seen, res);
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/mcp`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** An upstream with its received messages. */
function open(url: string, opts: { lostAfterMs?: number; transport?: 'auto' | 'streamable' | 'sse' } = {}) {
  const received: unknown[] = [];
  const waiters: Array<() => void> = [];
  let ended = false;
  const upstream: Upstream = openHttpUpstream(
    { kind: 'http', url, headers: { 'X-Api-Key': 'k1' }, transport: opts.transport ?? 'streamable' },
    {
      onMessage: (ev: Inbound) => {
        if (ev.kind === 'message') received.push(ev.value);
        for (const w of waiters.splice(0)) w();
      },
      onEnd: () => (ended = true),
    },
    { log: silentLogger, graceMs: 500, lostAfterMs: opts.lostAfterMs ?? 100 },
  );
  /** Waits until `count` messages have arrived. */
  const next = async (count: number): Promise<unknown[]> => {
    const deadline = Date.now() + 5000;
    while (received.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${received.length} message(s) arrived: ${JSON.stringify(received)}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return received;
  };
  return { upstream, received, next, ended: () => ended };
}

const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } };
const INIT_RESULT = { jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'fake', version: '1' } } };

describe('HTTP upstream against a scripted server', () => {
  const server = new FakeServer();
  before(() => server.start());
  after(() => server.stop());

  it('keeps the session, sends the version after initialize, and ends the session with DELETE', async () => {
    server.requests.length = 0;
    server.script = (seen, res) => {
      if (seen.method === 'DELETE') return void res.writeHead(200).end();
      if (seen.method === 'GET') return void res.writeHead(405).end();
      if (seen.body?.method === 'initialize') return json(res, 200, INIT_RESULT, { 'mcp-session-id': 'sess-1' });
      if (seen.body?.id === undefined) return void res.writeHead(202).end();
      json(res, 200, { jsonrpc: '2.0', id: seen.body.id, result: { tools: [] } });
    };
    const { upstream, next, ended } = open(server.url);
    upstream.channel.send(INIT);
    await next(1);
    upstream.channel.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    upstream.channel.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    assert.deepEqual((await next(2))[1], { jsonrpc: '2.0', id: 2, result: { tools: [] } });
    upstream.shutdown();
    assert.equal(await upstream.done, 0);
    assert.equal(ended(), true);
    const list = server.requests.find((r) => r.body?.method === 'tools/list')!;
    assert.equal(list.headers['mcp-session-id'], 'sess-1');
    assert.equal(list.headers['mcp-protocol-version'], '2025-06-18');
    assert.equal(list.headers['x-api-key'], 'k1');
    assert.equal(server.requests[0]!.headers['mcp-session-id'], undefined);
    const del = server.requests.find((r) => r.method === 'DELETE');
    assert.equal(del?.headers['mcp-session-id'], 'sess-1');
  });

  it('answers requests the server refuses: its own JSON-RPC error for a 4xx, -32603 naming the status for a 5xx', async () => {
    server.script = (seen, res) => {
      if (seen.body?.method === 'initialize') return json(res, 200, INIT_RESULT);
      if (seen.body?.id === 2) return json(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32022, message: 'Unsupported protocol version' } });
      res.writeHead(503, 'Service Unavailable').end('down for maintenance');
    };
    const { upstream, next } = open(server.url);
    upstream.channel.send(INIT);
    await next(1);
    upstream.channel.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    upstream.channel.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'x' } });
    const got = await next(3);
    const byId = (id: number) => got.find((m) => (m as { id?: unknown }).id === id) as { error?: { code: number; message: string } };
    assert.deepEqual(byId(2).error, { code: -32022, message: 'Unsupported protocol version' });
    assert.equal(byId(3).error?.code, -32603);
    assert.equal(byId(3).error?.message, `Upstream ${server.url} answered HTTP 503 Service Unavailable`);
    upstream.shutdown();
    await upstream.done;
  });

  it('forgets a session the server answers 404 for, so the next initialize starts a new one', async () => {
    server.requests.length = 0;
    let sessions = 0;
    server.script = (seen, res) => {
      if (seen.method !== 'POST') return void res.writeHead(405).end();
      if (seen.body?.method === 'initialize') return json(res, 200, { ...INIT_RESULT, id: seen.body.id }, { 'mcp-session-id': `sess-${++sessions}` });
      if (seen.headers['mcp-session-id'] === 'sess-1') return void res.writeHead(404).end();
      json(res, 200, { jsonrpc: '2.0', id: seen.body?.id, result: {} });
    };
    const { upstream, next } = open(server.url);
    upstream.channel.send(INIT);
    await next(1);
    upstream.channel.send({ jsonrpc: '2.0', id: 2, method: 'ping' });
    const gone = (await next(2))[1] as { id: number; error: { code: number; message: string } };
    assert.equal(gone.id, 2);
    assert.equal(gone.error.code, -32603);
    assert.match(gone.error.message, /HTTP 404: the session has ended/);
    upstream.channel.send({ ...INIT, id: 3 });
    await next(3);
    upstream.channel.send({ jsonrpc: '2.0', id: 4, method: 'ping' });
    assert.deepEqual((await next(4))[3], { jsonrpc: '2.0', id: 4, result: {} });
    const inits = server.requests.filter((r) => r.body?.method === 'initialize');
    assert.deepEqual(
      inits.map((r) => r.headers['mcp-session-id']),
      [undefined, undefined],
    );
    assert.equal(server.requests.at(-1)!.headers['mcp-session-id'], 'sess-2');
    upstream.shutdown();
    await upstream.done;
  });

  it('answers a request whose response stream ends without its answer, and drops nothing else', async () => {
    server.script = (seen, res) => {
      if (seen.body?.method === 'initialize') return json(res, 200, INIT_RESULT);
      // An SSE response that carries a notification, then ends without the answer.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } })}\n\n`);
    };
    const { upstream, next } = open(server.url, { lostAfterMs: 50 });
    upstream.channel.send(INIT);
    await next(1);
    upstream.channel.send({ jsonrpc: '2.0', id: 'call-1', method: 'tools/call', params: { name: 'slow' } });
    const got = await next(3);
    assert.equal((got[1] as { method?: string }).method, 'notifications/message');
    const answer = got[2] as { id: string; error: { code: number; message: string } };
    assert.equal(answer.id, 'call-1');
    assert.equal(answer.error.code, -32603);
    assert.match(answer.error.message, /closed the response stream before answering/);
    upstream.shutdown();
    await upstream.done;
  });

  it('resolves done with 1 when the server cannot be reached at all, answering the request', async () => {
    const down = new FakeServer();
    await down.start();
    const url = down.url;
    await down.stop();
    const { upstream, next, ended } = open(url);
    upstream.channel.send(INIT);
    const [answer] = (await next(1)) as Array<{ id: number; error: { code: number; message: string } }>;
    assert.equal(answer!.id, 1);
    assert.equal(answer!.error.code, -32603);
    assert.ok(answer!.error.message.startsWith(`Upstream ${url} could not be reached`), answer!.error.message);
    assert.equal(await upstream.done, 1);
    assert.equal(ended(), true);
  });
});

describe('choosing the legacy HTTP+SSE transport', () => {
  const cases: Array<[string, Parameters<typeof speaksLegacySse>[0], boolean]> = [
    ['405', { status: 405, statusText: '', hadSession: false }, true],
    ['404 without a JSON-RPC body', { status: 404, statusText: '', hadSession: false }, true],
    ['404 with -32601 (a 2026-07-28 unknown method)', { status: 404, statusText: '', hadSession: false, error: { code: -32601, message: 'x' } }, false],
    ['400 with a legacy error', { status: 400, statusText: '', hadSession: false, error: { code: -32000, message: 'x' } }, true],
    ['400 with -32022', { status: 400, statusText: '', hadSession: false, error: { code: -32022, message: 'x' } }, false],
    ['400 with -32020', { status: 400, statusText: '', hadSession: false, error: { code: -32020, message: 'x' } }, false],
    ['401', { status: 401, statusText: '', hadSession: false }, false],
    ['500', { status: 500, statusText: '', hadSession: false }, false],
  ];
  for (const [label, refusal, legacy] of cases) {
    it(`${label}: ${legacy ? 'try HTTP+SSE' : 'stay on Streamable HTTP'}`, () => assert.equal(speaksLegacySse(refusal), legacy));
  }

  it('tries the URL itself, then its /sse sibling', () => {
    assert.deepEqual(sseCandidates(new URL('http://h:1/mcp')).map(String), ['http://h:1/mcp', 'http://h:1/sse']);
    assert.deepEqual(sseCandidates(new URL('http://h:1/a/mcp?x=1')).map(String), ['http://h:1/a/mcp?x=1', 'http://h:1/a/sse']);
    assert.deepEqual(sseCandidates(new URL('http://h:1/sse')).map(String), ['http://h:1/sse']);
  });
});

describe('2026-07-28 request headers', () => {
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
  const cases: Array<[string, unknown, Record<string, string>]> = [
    ['tools/call', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', _meta: meta } }, { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'add' }],
    ['resources/read', { jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'file:///a b', _meta: meta } }, { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'resources/read', 'mcp-name': 'file:///a b' }],
    ['tools/list', { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: meta } }, { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' }],
    ['a legacy request', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add' } }, {}],
    ['a notification', { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, _meta: meta } }, {}],
  ];
  for (const [label, message, headers] of cases) {
    it(label, () => assert.deepEqual(modernHeaders(message), headers));
  }

  it('encodes values that are not plain printable ASCII', () => {
    assert.equal(encodeHeaderValue('plain_name'), 'plain_name');
    assert.equal(encodeHeaderValue('café'), `=?base64?${Buffer.from('café').toString('base64')}?=`);
    assert.equal(encodeHeaderValue(' padded'), `=?base64?${Buffer.from(' padded').toString('base64')}?=`);
    assert.equal(encodeHeaderValue('=?base64?abc?='), `=?base64?${Buffer.from('=?base64?abc?=').toString('base64')}?=`);
  });
});

describe('--header and --upstream values', () => {
  const good: Array<[string[], Record<string, string>]> = [
    [['Authorization: Bearer abc'], { Authorization: 'Bearer abc' }],
    [['X-A:1', 'X-B:  two words  '], { 'X-A': '1', 'X-B': 'two words' }],
    [['X-Empty:'], { 'X-Empty': '' }],
    [['X-Url: http://a:b@c'], { 'X-Url': 'http://a:b@c' }],
  ];
  for (const [flags, headers] of good) {
    it(`accepts ${JSON.stringify(flags)}`, () => assert.deepEqual(parseHeaderFlags(flags), headers));
  }
  const bad: Array<[string[], RegExp]> = [
    [['no colon'], /must look like "Name: Value"/],
    [[': value'], /must look like "Name: Value"/],
    [['Bad Name: v'], /must look like "Name: Value"/],
    [['X-A: 1', 'x-a: 2'], /x-a is given more than once/],
    [['Mcp-Session-Id: s'], /cannot set Mcp-Session-Id/],
    [['content-type: text/plain'], /cannot set content-type/],
    [['X-A: a\rb'], /control character/],
  ];
  for (const [flags, message] of bad) {
    it(`refuses ${JSON.stringify(flags)}`, () => {
      const result = parseHeaderFlags(flags);
      assert.equal(typeof result, 'string');
      assert.match(result as string, message);
    });
  }

  it('takes http and https URLs only', () => {
    assert.equal(checkUpstreamUrl('https://mcp.example.com/mcp'), undefined);
    assert.equal(checkUpstreamUrl('http://127.0.0.1:3001/sse'), undefined);
    assert.match(checkUpstreamUrl('ftp://x/y') ?? '', /http:\/\/ or https:\/\//);
    assert.match(checkUpstreamUrl('not a url') ?? '', /http:\/\/ or https:\/\//);
  });
});
