// A local OAuth authorization server for the tests: it serves its RFC 8414 metadata and a JWKS
// over HTTP, and mints access tokens signed with its current key (keys made by jose's
// generateKeyPair). `rotate()` replaces the key, as an identity provider rotating its keys does;
// the forgeries (`alg: none`, HS256 keyed with the public key) are minted here too.
//
// Exports:
//   Issuer, startIssuer(opts?)   the server (url = its issuer identifier), mint(), rotate(),
//                                jwksFetches(), stop()
//   MintOptions                  what a minted token's claims and header carry
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';

export interface MintOptions {
  /** Token lifetime in seconds from now (negative: already expired). Default 300. */
  expiresIn?: number;
  /** `nbf`, in seconds from now. */
  notBefore?: number;
  /** Defaults: the issuer's URL, the given audience. */
  issuer?: string;
  audience?: string | string[];
  /** Sign with a key the issuer does not publish (an unknown `kid`). */
  unpublishedKey?: boolean;
  /** Forgeries: `none` (unsigned), `HS256-public-key` (HMAC keyed with the public key's PEM). */
  forge?: 'none' | 'HS256-public-key';
}

export interface Issuer {
  /** The issuer identifier (http://127.0.0.1:PORT), as `iss` carries it. */
  url: string;
  /** A token with these claims (`sub`, `scope`, `groups`, …) for `audience`. */
  mint(claims: JWTPayload, audience: string, opts?: MintOptions): Promise<string>;
  /** Publishes a new key in place of the current one; tokens are signed with it from now on. */
  rotate(): Promise<void>;
  /** How often the JWKS was fetched. */
  jwksFetches(): number;
  stop(): Promise<void>;
}

interface Key {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

let keyCount = 0;
async function newKey(): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid: `key-${++keyCount}`, privateKey, publicKey };
}

export async function startIssuer(): Promise<Issuer> {
  let current = await newKey();
  const unpublished = await newKey();
  let fetches = 0;
  const server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (path === '/.well-known/oauth-authorization-server') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ issuer: url, jwks_uri: `${url}/jwks`, authorization_endpoint: `${url}/authorize`, token_endpoint: `${url}/token`, response_types_supported: ['code'] }));
        return;
      }
      if (path === '/jwks') {
        fetches++;
        const jwk = await exportJWK(current.publicKey);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ keys: [{ ...jwk, kid: current.kid, alg: 'ES256', use: 'sig' }] }));
        return;
      }
      res.writeHead(404).end();
    })();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    async mint(claims, audience, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: JWTPayload = { iss: opts.issuer ?? url, aud: opts.audience ?? audience, iat: now, exp: now + (opts.expiresIn ?? 300), ...claims };
      if (opts.notBefore !== undefined) payload.nbf = now + opts.notBefore;
      if (opts.forge === 'none') return new UnsecuredJWT(payload).encode();
      if (opts.forge === 'HS256-public-key') {
        const secret = new TextEncoder().encode(await exportSPKI(current.publicKey));
        return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: current.kid }).sign(secret);
      }
      const key = opts.unpublishedKey ? unpublished : current;
      return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' }).sign(key.privateKey);
    },
    async rotate() {
      current = await newKey();
    },
    jwksFetches: () => fetches,
    async stop() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
