// The HTTP listener as an OAuth 2.1 resource server, through the real CLI (`node bin/intercept.js
// -c <policy> --transport http|sse --oauth-issuer <url> …`), a local issuer
// (test/support/oauth-issuer.ts), the official SDK clients carrying bearer tokens, and raw
// requests for the refusals: which tokens get in, the challenges and the metadata a client
// discovers the issuer by, per-person limits and a claims rule, sessions bound to their subject,
// the subject in the log and the trail, and the client's token never reaching the upstream.
// Needs the build (dist/), which `npm test` makes first.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertDenied, assertNotDenied, initializeBody, MODERN, type Json } from '../support/messages.js';
import { connectSseV1, connectStreamableV1, connectStreamableV2, request, startListener, type Listener } from '../support/listener.js';
import { startIssuer, type Issuer } from '../support/oauth-issuer.js';
import { runIntercept } from '../support/raw-proxy.js';
import { servers, startEverything, startRecorder, type HttpServer, type Recorder } from '../support/servers.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { toolCalls, trailRecords } from '../support/trail.js';
import { eventually } from '../support/wait.js';

const TIMEOUT = { timeout: 120_000 };

const POLICY = `
tools:
  list_conversations:
    rules:
      - action: allow
        rate_limit: { max: 2, window: 3600, scope: identity }
  create_conversation:
    rules:
      - name: finance only
        action: allow
        conditions:
          - { path: identity.claims.groups, op: contains, value: finance }
        reason: "Only finance may open conversations"
      - name: two per session
        action: allow
        rate_limit: { max: 2, window: 3600 }
`;

let dir: TempDir;
let policy: string;
let issuer: Issuer;
before(async () => {
  dir = await makeTempDir('intercept-oauth-');
  policy = await writePolicy(dir.path, POLICY);
  issuer = await startIssuer();
});
after(async () => {
  await issuer?.stop();
  await dir?.cleanup();
});

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const metadataUrl = (listener: Listener) => `${new URL(listener.url).origin}/.well-known/oauth-protected-resource/mcp`;

describe('who gets in', TIMEOUT, () => {
  let listener: Listener;
  before(async () => {
    listener = await startListener(policy, servers.demo(), { flags: ['--oauth-issuer', issuer.url, '--oauth-required-scope', 'mcp:tools', '--no-events'] });
  });
  after(async () => {
    await listener?.stop();
  });
  const mint = (claims: Json, opts?: Parameters<Issuer['mint']>[2]) => issuer.mint({ scope: 'mcp:tools', ...claims }, listener.url, opts);

  it('no token: 401 pointing at the resource metadata', async () => {
    const res = await request(listener.url, { body: initializeBody() });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Bearer resource_metadata="${metadataUrl(listener)}"`);
  });

  it('serves the metadata without a token, at both paths, behind the same Origin guard', async () => {
    for (const url of [metadataUrl(listener), `${new URL(listener.url).origin}/.well-known/oauth-protected-resource`]) {
      const res = await request(url, { method: 'GET' });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(JSON.parse(res.text), { resource: listener.url, authorization_servers: [issuer.url], scopes_supported: ['mcp:tools'], bearer_methods_supported: ['header'] });
    }
    assert.equal((await request(metadataUrl(listener), { method: 'GET', headers: { Origin: 'http://evil.example' } })).status, 403);
  });

  const refusals: [string, () => Promise<string>, RegExp][] = [
    ['expired', () => mint({ sub: 'alice' }, { expiresIn: -120 }), /expired/],
    ['not yet valid', () => mint({ sub: 'alice' }, { notBefore: 300 }), /not valid yet/],
    ['from another issuer', () => mint({ sub: 'alice' }, { issuer: 'https://other.example' }), /another issuer/],
    ['for another audience', () => mint({ sub: 'alice' }, { audience: 'http://127.0.0.1:1/mcp' }), /another audience/],
    ['unsigned (alg none)', () => mint({ sub: 'alice' }, { forge: 'none' }), /algorithm/],
    ['HS256 signed with the public key', () => mint({ sub: 'alice' }, { forge: 'HS256-public-key' }), /algorithm/],
  ];
  for (const [what, token, why] of refusals) {
    it(`a token ${what}: 401 invalid_token`, async () => {
      const res = await request(listener.url, { body: initializeBody(), headers: bearer(await token()) });
      assert.equal(res.status, 401, res.text);
      const challenge = res.headers.get('www-authenticate') ?? '';
      assert.match(challenge, /^Bearer error="invalid_token", error_description="[^"]+", resource_metadata="([^"]+)"$/);
      assert.ok(challenge.endsWith(`resource_metadata="${metadataUrl(listener)}"`), challenge);
      assert.match(res.json?.error?.message ?? '', why);
    });
  }

  it('a token without the required scope: 403 insufficient_scope', async () => {
    const res = await request(listener.url, { body: initializeBody(), headers: bearer(await issuer.mint({ sub: 'alice', scope: 'other' }, listener.url)) });
    assert.equal(res.status, 403);
    assert.equal(res.headers.get('www-authenticate'), `Bearer error="insufficient_scope", scope="mcp:tools", resource_metadata="${metadataUrl(listener)}"`);
  });

  it('a valid token: the SDK client connects and calls', async () => {
    const session = await connectStreamableV1(listener, { headers: bearer(await mint({ sub: 'dora' })) });
    try {
      assertNotDenied(await session.client.callTool({ name: 'list_conversations', arguments: {} }));
    } finally {
      await session.close();
    }
  });

  it('a session is its subject\'s: another subject\'s token on it is refused with 403, a refreshed token of the same subject is not', async () => {
    const init = await request(listener.url, { body: initializeBody(), headers: bearer(await mint({ sub: 'erin' })) });
    assert.equal(init.status, 200, init.text);
    const sid = init.headers.get('mcp-session-id')!;
    const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    const other = await request(listener.url, { body: list, headers: { ...bearer(await mint({ sub: 'mallory' })), 'Mcp-Session-Id': sid } });
    assert.equal(other.status, 403, other.text);
    assert.match(other.json?.error?.message ?? '', /another subject/);
    const refreshed = await request(listener.url, { body: list, headers: { ...bearer(await mint({ sub: 'erin', jti: 'second' })), 'Mcp-Session-Id': sid } });
    assert.equal(refreshed.status, 200, refreshed.text);
  });

  it('follows a key rotation: a token of the new key is accepted once the keys are fetched again', async () => {
    assert.equal((await request(listener.url, { body: initializeBody(), headers: bearer(await mint({ sub: 'alice' })) })).status, 200);
    await issuer.rotate();
    const fresh = await mint({ sub: 'alice' });
    // jose fetches the keys again for an unknown kid, at most once per 30 s cooldown.
    await eventually(async () => ((await request(listener.url, { body: initializeBody(), headers: bearer(fresh) })).status === 200 ? true : undefined), 60_000, 1_000);
  });
});

describe('per-person limits and claims', TIMEOUT, () => {
  let listener: Listener;
  let events: string;
  before(async () => {
    events = join(dir.path, 'events');
    listener = await startListener(policy, servers.demo(), { flags: ['--oauth-issuer', issuer.url, '--state-dir', join(dir.path, 'state'), '--events-dir', events] });
  });
  after(async () => {
    await listener?.stop();
  });
  const connect = async (sub: string, groups: string[]) => connectStreamableV1(listener, { headers: bearer(await issuer.mint({ sub, groups }, listener.url)) });
  const list = (s: Awaited<ReturnType<typeof connect>>) => s.client.callTool({ name: 'list_conversations', arguments: {} });
  const create = (s: Awaited<ReturnType<typeof connect>>) => s.client.callTool({ name: 'create_conversation', arguments: { friendly_name: 'q3' } });

  it("alice's two sessions share her limits; bob has his own; only finance may create", async () => {
    const [aliceOne, aliceTwo, bob, carol] = await Promise.all([connect('alice', ['finance']), connect('alice', ['finance']), connect('bob', ['ops']), connect('carol', ['finance'])]);
    try {
      // scope: identity
      assertNotDenied(await list(aliceOne));
      assertNotDenied(await list(aliceTwo));
      assertDenied(await list(aliceOne), { kind: 'rate_limit' });
      assertNotDenied(await list(bob));
      // scope: session, kept per subject by default with OAuth
      assertNotDenied(await create(aliceOne));
      assertNotDenied(await create(aliceTwo));
      assertDenied(await create(aliceTwo), { kind: 'rate_limit', rule: 'two per session' });
      assertNotDenied(await create(carol));
      // the claims rule
      assertDenied(await create(bob), { kind: 'condition', rule: 'finance only', message: 'Only finance may open conversations' });
    } finally {
      await Promise.all([aliceOne, aliceTwo, bob, carol].map((s) => s.close()));
    }
  });

  it('the log and the trail name the subject of each call', async () => {
    const lines = await eventually(() => {
      const found = listener.stderr().split('\n').filter((l) => / (allowed|denied) tool=/.test(l));
      return found.length >= 9 ? found : undefined;
    });
    assert.ok(lines.every((l) => / subject=(alice|bob|carol)(\s|$)/.test(l)), lines.join('\n'));
    const calls = await eventually(async () => {
      const found = toolCalls(await trailRecords(events));
      return found.length >= 9 ? found : undefined;
    });
    assert.deepEqual(new Set(calls.map((r) => r.subject)), new Set(['alice', 'bob', 'carol']));
  });
});

describe('stateless 2026-07-28 clients', TIMEOUT, () => {
  let listener: Listener;
  before(async () => {
    const modernPolicy = await writePolicy(dir.path, 'tools:\n  echo:\n    rules:\n      - action: allow\n        rate_limit: { max: 1, window: 3600, scope: identity }\n', 'modern.yaml');
    listener = await startListener(modernPolicy, servers.modern(), { flags: ['--oauth-issuer', issuer.url, '--no-events'] });
  });
  after(async () => {
    await listener?.stop();
  });

  it('each request is decided as its subject\'s', async () => {
    const connect = async (sub: string) =>
      connectStreamableV2(listener, { headers: bearer(await issuer.mint({ sub }, listener.url)), versionNegotiation: { mode: { pin: MODERN } } });
    const [aliceOne, aliceTwo, bob] = await Promise.all([connect('alice'), connect('alice'), connect('bob')]);
    try {
      assert.equal(aliceOne.client.getNegotiatedProtocolVersion(), MODERN);
      const echo = (s: typeof bob) => s.client.callTool({ name: 'echo', arguments: { message: 'hi' } });
      assertNotDenied(await echo(aliceOne));
      assertDenied(await echo(aliceTwo), { kind: 'rate_limit' });
      assertNotDenied(await echo(bob));
    } finally {
      await Promise.all([aliceOne, aliceTwo, bob].map((s) => s.close()));
    }
  });
});

describe('legacy HTTP+SSE', TIMEOUT, () => {
  let listener: Listener;
  before(async () => {
    listener = await startListener(policy, servers.demo(), { transport: 'sse', flags: ['--oauth-issuer', issuer.url, '--no-events'] });
  });
  after(async () => {
    await listener?.stop();
  });

  it('checks the token on the stream and on every POST', async () => {
    const res = await fetch(listener.url, { headers: { Accept: 'text/event-stream' } });
    await res.body?.cancel();
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Bearer resource_metadata="${new URL(listener.url).origin}/.well-known/oauth-protected-resource/sse"`);
    const post = await request(`${new URL(listener.url).origin}/message?sessionId=x`, { body: '{}' });
    assert.equal(post.status, 401);

    const session = await connectSseV1(listener, { headers: bearer(await issuer.mint({ sub: 'alice', groups: ['finance'] }, listener.url)) });
    try {
      assertNotDenied(await session.client.callTool({ name: 'create_conversation', arguments: { friendly_name: 'q3' } }));
    } finally {
      await session.close();
    }
  });
});

describe('the upstream never sees the client\'s token', TIMEOUT, () => {
  let upstream: HttpServer;
  let recorder: Recorder;
  let listener: Listener;
  before(async () => {
    upstream = await startEverything('streamableHttp');
    recorder = await startRecorder(upstream.origin);
    listener = await startListener(policy, undefined, {
      upstream: recorder.url('/mcp'),
      flags: ['--oauth-issuer', issuer.url, '--header', 'Authorization: Bearer upstream-own', '--no-events'],
    });
  });
  after(async () => {
    await listener?.stop();
    await recorder?.stop();
    await upstream?.stop();
  });

  it('forwards calls with the --header credentials only', async () => {
    const token = await issuer.mint({ sub: 'alice' }, listener.url);
    const session = await connectStreamableV1(listener, { headers: bearer(token) });
    try {
      assertNotDenied(await session.client.callTool({ name: 'echo', arguments: { message: 'hi' } }));
    } finally {
      await session.close();
    }
    assert.ok(recorder.methods().includes('tools/call'), recorder.methods().join(' '));
    for (const exchange of recorder.exchanges) {
      assert.equal(exchange.headers.authorization, 'Bearer upstream-own');
      assert.ok(!JSON.stringify(exchange).includes(token), `the client's token reached the upstream: ${exchange.method} ${exchange.path}`);
    }
  });
});

describe('flags', () => {
  const cases: [string, string[], RegExp][] = [
    ['OAuth on stdio', ['--oauth-issuer', 'https://as.example'], /requires --transport http/],
    ['OAuth with --auth-token', ['--transport', 'http', '--oauth-issuer', 'https://as.example', '--auth-token', 't'], /cannot be used together/],
    ['--jwks-url alone', ['--transport', 'http', '--jwks-url', 'https://as.example/jwks'], /requires --oauth-issuer/],
    ['an issuer that is not a URL', ['--transport', 'http', '--oauth-issuer', 'as.example'], /--oauth-issuer must be an http/],
    ['a wildcard bind without --oauth-resource', ['--transport', 'http', '--bind', '0.0.0.0', '--oauth-issuer', 'https://as.example'], /--oauth-resource is required/],
    ['a scope with a space', ['--transport', 'http', '--oauth-issuer', 'https://as.example', '--oauth-required-scope', 'a b'], /one scope/],
  ];
  for (const [what, flags, message] of cases) {
    it(`refuses ${what} as a usage error`, async () => {
      const run = await runIntercept(['-c', policy, ...flags, '--', 'true']);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
    });
  }
});
