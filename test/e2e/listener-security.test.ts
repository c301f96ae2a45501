// The HTTP listener is safe by default: browser pages of other origins and DNS-rebound host
// names are refused, a token is enforced when set, bodies are capped, sessions cannot be
// guessed or revived, a reachable bind address without a token is loudly reported, and agents
// identified by a header keep their session quota across reconnects.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { waitUntil } from '../support/wait.js';
import { assertDenied, assertNotDenied, initializeBody } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { connectSseV1, connectStreamableV1, request, startListener, type Listener } from '../support/listener.js';

const TIMEOUT = { timeout: 90_000 };

const POLICY = `
version: "1"
tools:
  echo:
    rules:
      - action: allow
        rate_limit: { max: 2, window: 3600 }
`;

let dir: TempDir;
let policy: string;
before(async () => {
  dir = await makeTempDir();
  policy = await writePolicy(dir.path, POLICY);
});
after(async () => {
  await dir?.cleanup();
});

/** Starts a session with a raw initialize; returns its id. */
async function initialize(url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await request(url, { body: initializeBody(), headers });
  assert.equal(res.status, 200, res.text);
  const id = res.headers.get('mcp-session-id');
  assert.ok(id, 'an Mcp-Session-Id header');
  return id;
}

describe('the front door (default flags)', TIMEOUT, () => {
  let listener: Listener;
  before(async () => {
    listener = await startListener(policy, servers.everything(), { flags: ['--max-message-size', '64KiB', '--allowed-origin', 'https://app.example.com'] });
  });
  after(async () => {
    await listener?.stop();
  });

  const ORIGINS: Array<[string, string | undefined, number]> = [
    ['no Origin (a non-browser client)', undefined, 200],
    ['a localhost page', 'http://localhost:5173', 200],
    ['a 127.0.0.1 page', 'http://127.0.0.1:3000', 200],
    ['an --allowed-origin page', 'https://app.example.com', 200],
    ['a foreign page', 'http://evil.example', 403],
    ['a look-alike of localhost', 'http://localhost.evil.example', 403],
    ['a null origin', 'null', 403],
  ];
  for (const [name, origin, status] of ORIGINS) {
    it(`answers ${status} to ${name}`, async () => {
      const res = await request(listener.url, { body: initializeBody(), headers: origin === undefined ? {} : { Origin: origin } });
      assert.equal(res.status, status, res.text);
      if (status === 403) {
        assert.equal(res.json?.jsonrpc, '2.0');
        assert.equal(typeof res.json?.error?.code, 'number');
      } else if (origin !== undefined) {
        assert.equal(res.headers.get('access-control-allow-origin'), origin);
      }
      const sid = res.headers.get('mcp-session-id');
      if (sid) await request(listener.url, { method: 'DELETE', headers: { 'Mcp-Session-Id': sid } });
    });
  }

  it('refuses a DNS-rebound Host header with 403', async () => {
    const { request: raw } = await import('node:http');
    const url = new URL(listener.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = raw({ host: url.hostname, port: url.port, path: '/mcp', method: 'POST', headers: { Host: `evil.example:${url.port}`, 'Content-Type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(initializeBody());
    });
    assert.equal(status, 403);
  });

  it('refuses a body over --max-message-size with 413', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { pad: 'x'.repeat(70 * 1024) } });
    const res = await request(listener.url, { body: big });
    assert.equal(res.status, 413);
  });

  it('answers an unknown session id with 404, and a deleted one too', async () => {
    const unknown = await request(listener.url, { body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), headers: { 'Mcp-Session-Id': 'no-such-session' } });
    assert.equal(unknown.status, 404);
    const id = await initialize(listener.url);
    assert.ok(id.length >= 22 && /^[A-Za-z0-9_-]+$/.test(id), `session id of at least 128 bits: ${id}`);
    assert.equal((await request(listener.url, { method: 'DELETE', headers: { 'Mcp-Session-Id': id } })).status, 200);
    const gone = await request(listener.url, { body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }), headers: { 'Mcp-Session-Id': id } });
    assert.equal(gone.status, 404);
  });

  it('answers other paths with 404 and other methods with 405', async () => {
    assert.equal((await request(new URL('/other', listener.url).href, { body: initializeBody() })).status, 404);
    assert.equal((await request(listener.url, { method: 'PUT', body: initializeBody() })).status, 405);
  });

  it('refuses a JSON-RPC batch with 400', async () => {
    const res = await request(listener.url, { body: `[${initializeBody()}]` });
    assert.equal(res.status, 400);
    assert.equal(res.json?.error?.code, -32600);
  });
});

describe('--auth-token', TIMEOUT, () => {
  let listener: Listener;
  before(async () => {
    listener = await startListener(policy, servers.everything(), { flags: ['--auth-token', 's3cret-token'] });
  });
  after(async () => {
    await listener?.stop();
  });

  const CASES: Array<[string, Record<string, string>, number]> = [
    ['no Authorization header', {}, 401],
    ['a wrong token', { Authorization: 'Bearer wrong' }, 401],
    ['a token of another scheme', { Authorization: 'Basic s3cret-token' }, 401],
    ['the right token', { Authorization: 'Bearer s3cret-token' }, 200],
  ];
  for (const [name, headers, status] of CASES) {
    it(`answers ${status} to ${name}`, async () => {
      const res = await request(listener.url, { body: initializeBody(), headers });
      assert.equal(res.status, status, res.text);
      if (status === 401) assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      const sid = res.headers.get('mcp-session-id');
      if (sid) await request(listener.url, { method: 'DELETE', headers: { 'Mcp-Session-Id': sid, ...headers } });
    });
  }

  it('lets the official client in with the token, and keeps it out without', async () => {
    const s = await connectStreamableV1(listener, { headers: { Authorization: 'Bearer s3cret-token' } });
    assertNotDenied(await s.client.callTool({ name: 'echo', arguments: { message: 'authorised' } }));
    await s.close();
    await assert.rejects(connectStreamableV1(listener));
  });

  it('takes the token from INTERCEPT_AUTH_TOKEN too', async () => {
    const own = await startListener(policy, servers.everything(), { env: { INTERCEPT_AUTH_TOKEN: 'from-env' } });
    try {
      assert.equal((await request(own.url, { body: initializeBody() })).status, 401);
      const ok = await request(own.url, { body: initializeBody(), headers: { Authorization: 'Bearer from-env' } });
      assert.equal(ok.status, 200);
    } finally {
      await own.stop();
    }
  });
});

describe('binding', TIMEOUT, () => {
  it('warns loudly when bound to a reachable address without a token', async () => {
    const open = await startListener(policy, servers.everything(), { flags: ['--bind', '0.0.0.0'] });
    await open.stop();
    assert.match(open.stderr(), /WARNING: listening on 0\.0\.0\.0.*without --auth-token/);
    const guarded = await startListener(policy, servers.everything(), { flags: ['--bind', '0.0.0.0', '--auth-token', 't'] });
    await guarded.stop();
    assert.doesNotMatch(guarded.stderr(), /WARNING/);
    const local = await startListener(policy, servers.everything());
    await local.stop();
    assert.doesNotMatch(local.stderr(), /WARNING/);
  });
});

describe('--session-key header:X-Agent-Id', TIMEOUT, () => {
  for (const transport of ['http', 'sse'] as const) {
    it(`keeps the session quota across reconnects of the same agent (${transport})`, async () => {
      const listener = await startListener(policy, servers.everything(), { transport, flags: ['--session-key', 'header:X-Agent-Id'] });
      const connect = transport === 'http' ? connectStreamableV1 : connectSseV1;
      try {
        const echo = (s: Awaited<ReturnType<typeof connect>>) => s.client.callTool({ name: 'echo', arguments: { message: 'hi' } });
        const first = await connect(listener, { headers: { 'X-Agent-Id': 'agent-7' } });
        assertNotDenied(await echo(first));
        assertNotDenied(await echo(first));
        await first.close();
        // A new connection of the same agent: its quota is used up.
        const again = await connect(listener, { headers: { 'X-Agent-Id': 'agent-7' } });
        assertDenied(await echo(again), { kind: 'rate_limit' });
        await again.close();
        // Another agent has its own.
        const other = await connect(listener, { headers: { 'X-Agent-Id': 'agent-8' } });
        assertNotDenied(await echo(other));
        await other.close();
      } finally {
        await listener.stop();
      }
    });
  }

  it('refuses a request without the header with 400', async () => {
    const listener = await startListener(policy, servers.everything(), { flags: ['--session-key', 'header:X-Agent-Id'] });
    try {
      assert.equal((await request(listener.url, { body: initializeBody() })).status, 400);
      const id = await initialize(listener.url, { 'X-Agent-Id': 'a' });
      const missing = await request(listener.url, { body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), headers: { 'Mcp-Session-Id': id } });
      assert.equal(missing.status, 400);
    } finally {
      await listener.stop();
    }
  });
});

describe('--session-idle-timeout', TIMEOUT, () => {
  it('ends an unused session and its server; the old id then gets 404', async () => {
    const listener = await startListener(policy, servers.everything(), { flags: ['--session-idle-timeout', '1'] });
    try {
      const id = await initialize(listener.url);
      await waitUntil(() => listener.children().length === 1, 10_000, 'a server process');
      await waitUntil(() => listener.children().length === 0, 15_000, 'the idle session’s server to exit');
      const res = await request(listener.url, { body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), headers: { 'Mcp-Session-Id': id } });
      assert.equal(res.status, 404);
    } finally {
      await listener.stop();
    }
  });
});
