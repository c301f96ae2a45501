// The bearer-token verifier of the HTTP listener (src/proxy/oauth.ts) against a local issuer
// (test/support/oauth-issuer.ts): what it accepts, what it refuses with which challenge, and
// how it follows the issuer's keys. The listener's side of it is in test/e2e/oauth.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { OAuthVerifier, metadataUrls, type OAuthSettings, type Verdict } from '../../src/proxy/oauth.js';
import { startIssuer, type Issuer } from '../support/oauth-issuer.js';

const RESOURCE = 'http://127.0.0.1:9999/mcp';
const METADATA = 'http://127.0.0.1:9999/.well-known/oauth-protected-resource/mcp';
const log = createLogger('error');

let issuer: Issuer;
before(async () => {
  issuer = await startIssuer();
});
after(async () => {
  await issuer?.stop();
});

function verifier(settings: Partial<OAuthSettings> = {}): OAuthVerifier {
  return new OAuthVerifier({ issuer: issuer.url, requiredScopes: [], ...settings }, RESOURCE, log);
}

function refused(verdict: Verdict): Extract<Verdict, { ok: false }> {
  assert.equal(verdict.ok, false, 'the token was accepted');
  return verdict as Extract<Verdict, { ok: false }>;
}

describe('issuer metadata locations (RFC 8414, and OpenID Connect)', () => {
  it('an issuer without a path: both well-known documents at its root', () => {
    assert.deepEqual(metadataUrls('https://as.example/'), ['https://as.example/.well-known/oauth-authorization-server', 'https://as.example/.well-known/openid-configuration']);
  });
  it('an issuer with a path: inserted before the path, then OpenID Connect appended', () => {
    assert.deepEqual(metadataUrls('https://as.example/tenant/1'), [
      'https://as.example/.well-known/oauth-authorization-server/tenant/1',
      'https://as.example/.well-known/openid-configuration/tenant/1',
      'https://as.example/tenant/1/.well-known/openid-configuration',
    ]);
  });
});

describe('OAuthVerifier', () => {
  it('accepts a valid token and reads the identity from it', async () => {
    const token = await issuer.mint({ sub: 'alice', azp: 'cli', scope: 'read  write', groups: ['finance'] }, RESOURCE);
    const verdict = await verifier().verify(token);
    assert.ok(verdict.ok);
    assert.equal(verdict.identity.sub, 'alice');
    assert.equal(verdict.identity.client_id, 'cli');
    assert.deepEqual(verdict.identity.scopes, ['read', 'write']);
    assert.deepEqual(verdict.identity.claims.groups, ['finance']);
    assert.equal(verdict.identity.claims.iss, issuer.url);
  });

  it('reads scopes from an scp list, and client_id before azp', async () => {
    const token = await issuer.mint({ sub: 'svc', client_id: 'robot', azp: 'other', scp: ['a', 7, 'b'] }, RESOURCE);
    const verdict = await verifier().verify(token);
    assert.ok(verdict.ok);
    assert.equal(verdict.identity.client_id, 'robot');
    assert.deepEqual(verdict.identity.scopes, ['a', 'b']);
  });

  it('accepts an audience list that contains the resource, and a configured audience', async () => {
    assert.ok((await verifier().verify(await issuer.mint({ sub: 'a' }, RESOURCE, { audience: ['other', RESOURCE] }))).ok);
    assert.ok((await verifier({ audience: 'api://tools' }).verify(await issuer.mint({ sub: 'a' }, 'api://tools'))).ok);
  });

  it('no token: 401 with the resource metadata and no error', async () => {
    const v = refused(await verifier().verify(undefined));
    assert.equal(v.status, 401);
    assert.equal(v.challenge, `Bearer resource_metadata="${METADATA}"`);
  });

  const bad: [string, () => Promise<string>, RegExp][] = [
    ['expired beyond the clock tolerance', () => issuer.mint({ sub: 'a' }, RESOURCE, { expiresIn: -60 }), /expired/],
    ['not valid yet', () => issuer.mint({ sub: 'a' }, RESOURCE, { notBefore: 120 }), /not valid yet/],
    ['from another issuer', () => issuer.mint({ sub: 'a' }, RESOURCE, { issuer: 'https://evil.example' }), /another issuer/],
    ['for another audience', () => issuer.mint({ sub: 'a' }, 'http://127.0.0.1:9999/other'), /another audience/],
    ['unsigned (alg none)', () => issuer.mint({ sub: 'a' }, RESOURCE, { forge: 'none' }), /algorithm/],
    ['HS256 keyed with the public key', () => issuer.mint({ sub: 'a' }, RESOURCE, { forge: 'HS256-public-key' }), /algorithm/],
    ['without a subject', () => issuer.mint({}, RESOURCE), /sub/],
    ['not a JWT', () => Promise.resolve('abc.def'), /malformed/],
  ];
  for (const [what, token, why] of bad) {
    it(`refuses a token ${what}: 401 invalid_token`, async () => {
      const v = refused(await verifier().verify(await token()));
      assert.equal(v.status, 401);
      assert.match(v.challenge ?? '', /^Bearer error="invalid_token", error_description="[^"]+", resource_metadata="http:\/\/127\.0\.0\.1:9999\/\.well-known\/oauth-protected-resource\/mcp"$/);
      assert.match(v.message, why);
    });
  }

  it('accepts a token expired within the 30 s clock tolerance', async () => {
    assert.ok((await verifier().verify(await issuer.mint({ sub: 'a' }, RESOURCE, { expiresIn: -5 }))).ok);
  });

  it('a missing required scope: 403 insufficient_scope naming the scopes needed', async () => {
    const v = refused(await verifier({ requiredScopes: ['mcp:tools', 'read'] }).verify(await issuer.mint({ sub: 'a', scope: 'read' }, RESOURCE)));
    assert.equal(v.status, 403);
    assert.equal(v.challenge, `Bearer error="insufficient_scope", scope="mcp:tools read", resource_metadata="${METADATA}"`);
  });

  it('fetches the keys again for an unknown kid, and follows a rotation', async () => {
    const v = verifier({ jwksCooldownMs: 0 });
    assert.ok((await v.verify(await issuer.mint({ sub: 'a' }, RESOURCE))).ok);
    const before = issuer.jwksFetches();
    assert.match(refused(await v.verify(await issuer.mint({ sub: 'a' }, RESOURCE, { unpublishedKey: true }))).message, /unknown key/);
    assert.ok(issuer.jwksFetches() > before, 'an unknown kid did not refresh the keys');
    await issuer.rotate();
    assert.ok((await v.verify(await issuer.mint({ sub: 'a' }, RESOURCE))).ok, 'a token of the new key was refused');
  });

  it('the keys cannot be had: 503, not a verdict on the token', async () => {
    const v = refused(await verifier({ jwksUrl: 'http://127.0.0.1:1/jwks' }).verify(await issuer.mint({ sub: 'a' }, RESOURCE)));
    assert.equal(v.status, 503);
    const other = refused(await verifier({ issuer: `${issuer.url}/tenant` }).verify('x.y.z'));
    assert.equal(other.status, 503);
    assert.match(other.message, /no metadata/);
  });

  it('serves RFC 9728 metadata naming the resource and the issuer', () => {
    const v = verifier({ requiredScopes: ['mcp:tools'] });
    assert.deepEqual(v.metadata(), { resource: RESOURCE, authorization_servers: [issuer.url], scopes_supported: ['mcp:tools'], bearer_methods_supported: ['header'] });
    assert.ok(v.isMetadataPath('/.well-known/oauth-protected-resource', '/mcp'));
    assert.ok(v.isMetadataPath('/.well-known/oauth-protected-resource/mcp', '/mcp'));
    assert.ok(!v.isMetadataPath('/.well-known/oauth-protected-resource/other', '/mcp'));
  });
});
