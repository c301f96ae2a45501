// The HTTP listener as an OAuth 2.1 resource server (the MCP authorization specification): every
// request carries a bearer JWT issued by one authorization server for this listener, verified
// here against the issuer's published keys; what it says becomes the session's `Identity`.
//   RFC 6750  the WWW-Authenticate challenges (invalid_token, insufficient_scope)
//   RFC 8414  finding the issuer's metadata, and so its JWKS
//   RFC 8707  the token's audience is this listener's resource URL
//   RFC 9728  the protected resource metadata served at /.well-known/oauth-protected-resource
// The client's token is checked here and goes no further: the upstream never sees it.
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import type { Identity } from '../engine/types.js';
import type { Logger } from '../log.js';

/** Asymmetric algorithms only: `none`, and HMAC keyed with a public key, are refused. */
export const ALLOWED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
/** Leeway for `exp` and `nbf`, for clocks that are not quite in step. */
export const CLOCK_TOLERANCE_S = 30;
export const METADATA_PATH = '/.well-known/oauth-protected-resource';
const DISCOVERY_TIMEOUT_MS = 5_000;
const MAX_METADATA_BYTES = 1 << 20;
/** A failed discovery is tried again at most this often (not on every request). */
const RETRY_DISCOVERY_MS = 10_000;

export interface OAuthSettings {
  /** The authorization server: `iss` must be exactly this. */
  issuer: string;
  /** Where its keys are; otherwise found in the issuer's metadata. */
  jwksUrl?: string;
  /** The URL clients reach the listener by (behind a reverse proxy, its public URL); by default
   * the listener's own URL. */
  resource?: string;
  /** `aud` must contain this; by default the resource URL. */
  audience?: string;
  /** Every one of these scopes is needed, or the request is refused with 403. */
  requiredScopes: string[];
  /** How soon an unknown `kid` may fetch the keys again (jose's default, 30 s, unless given). */
  jwksCooldownMs?: number;
}

/** A verified caller: an identity that always has a subject. */
export type Caller = Identity & { sub: string };

export type Verdict =
  | { ok: true; identity: Caller }
  | { ok: false; status: 401 | 403 | 503; message: string; challenge?: string };

/** The metadata documents an issuer may publish, in the order the MCP specification tries them:
 * RFC 8414 inserts the well-known name before the issuer's path, OpenID Connect appends it. */
export function metadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  if (path === '') return [`${url.origin}/.well-known/oauth-authorization-server`, `${url.origin}/.well-known/openid-configuration`];
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}/.well-known/openid-configuration${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`,
  ];
}

/** Why a URL flag cannot be used (http or https, no fragment), or undefined. */
export function checkUrlFlag(name: string, value: string): string | undefined {
  try {
    const url = new URL(value);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.hash === '') return undefined;
  } catch {
    // fall through
  }
  return `${name} must be an http:// or https:// URL without a fragment, got ${JSON.stringify(value)}`;
}

/** A value that may stand in a quoted-string of a challenge (RFC 6750 §3: no `"` or `\`). */
function quoted(text: string): string {
  return `"${text.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, ' ')}"`;
}

export class OAuthVerifier {
  readonly resource: string;
  readonly audience: string;
  /** The URL of this resource's metadata, as RFC 9728 §3.1 derives it from the resource. */
  readonly metadataUrl: string;
  private jwks?: ReturnType<typeof createRemoteJWKSet>;
  private finding?: Promise<ReturnType<typeof createRemoteJWKSet>>;
  private failedAt = 0;
  private lastFailure = '';

  constructor(
    private readonly settings: OAuthSettings,
    listenerUrl: string,
    private readonly log: Logger,
  ) {
    this.resource = settings.resource ?? listenerUrl;
    this.audience = settings.audience ?? this.resource;
    const r = new URL(this.resource);
    this.metadataUrl = `${r.origin}${METADATA_PATH}${r.pathname === '/' ? '' : r.pathname.replace(/\/+$/, '')}`;
  }

  /** Whether `path` (as the listener receives it) asks for the metadata: the bare form, or
   * suffixed with the listener's own path or the public resource's path. */
  isMetadataPath(path: string, localPath: string): boolean {
    return path === METADATA_PATH || path === METADATA_PATH + localPath || path === new URL(this.metadataUrl).pathname;
  }

  /** The RFC 9728 document. */
  metadata(): Record<string, unknown> {
    return {
      resource: this.resource,
      authorization_servers: [this.settings.issuer],
      ...(this.settings.requiredScopes.length > 0 ? { scopes_supported: this.settings.requiredScopes } : {}),
      bearer_methods_supported: ['header'],
    };
  }

  /** Finds the keys now, so that a misconfigured issuer shows at start rather than on the first
   * request; a failure is logged and tried again when a request needs the keys. */
  async prepare(): Promise<void> {
    try {
      await this.keys();
    } catch (err) {
      this.log.warn(`cannot find the keys of the authorization server yet: ${(err as Error).message}`, { issuer: this.settings.issuer });
    }
  }

  /** Checks the bearer token of one request (`undefined`: the request has none). */
  async verify(token: string | undefined): Promise<Verdict> {
    if (token === undefined) {
      return { ok: false, status: 401, message: 'Unauthorized: a bearer token is required', challenge: this.challenge() };
    }
    let keys;
    try {
      keys = await this.keys();
    } catch (err) {
      return { ok: false, status: 503, message: `Service Unavailable: the authorization server's keys cannot be fetched (${(err as Error).message})` };
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: this.settings.issuer,
        audience: this.audience,
        algorithms: ALLOWED_ALGORITHMS,
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      if (unavailable(err)) {
        return { ok: false, status: 503, message: `Service Unavailable: the authorization server's keys cannot be fetched (${(err as Error).message})` };
      }
      const why = reason(err);
      return { ok: false, status: 401, message: `Unauthorized: ${why}`, challenge: this.challenge('invalid_token', why) };
    }
    const identity = identityOf(payload);
    if (identity === undefined) {
      const why = 'the token has no subject (sub)';
      return { ok: false, status: 401, message: `Unauthorized: ${why}`, challenge: this.challenge('invalid_token', why) };
    }
    const missing = this.settings.requiredScopes.filter((s) => !identity.scopes.includes(s));
    if (missing.length > 0) {
      return {
        ok: false,
        status: 403,
        message: `Forbidden: the token lacks the scope ${missing.join(' ')}`,
        challenge: `Bearer error="insufficient_scope", scope=${quoted(this.settings.requiredScopes.join(' '))}, resource_metadata=${quoted(this.metadataUrl)}`,
      };
    }
    return { ok: true, identity };
  }

  /** `Bearer resource_metadata="…"`, with the error when a token was given. */
  private challenge(error?: string, description?: string): string {
    const parts = error === undefined ? [] : [`error=${quoted(error)}`, `error_description=${quoted(description ?? error)}`];
    parts.push(`resource_metadata=${quoted(this.metadataUrl)}`);
    return `Bearer ${parts.join(', ')}`;
  }

  /** The key set, found once (a failed discovery is retried, not more often than every few
   * seconds). jose caches the keys and fetches them again for an unknown `kid`. */
  private keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.jwks) return Promise.resolve(this.jwks);
    if (this.finding) return this.finding;
    if (Date.now() - this.failedAt < RETRY_DISCOVERY_MS) return Promise.reject(new Error(this.lastFailure));
    this.finding = (async () => {
      const url = this.settings.jwksUrl ?? (await discoverJwksUri(this.settings.issuer));
      const cooldown = this.settings.jwksCooldownMs;
      this.jwks = createRemoteJWKSet(new URL(url), cooldown === undefined ? {} : { cooldownDuration: cooldown });
      this.log.info('verifying bearer tokens', { issuer: this.settings.issuer, jwks: url, audience: this.audience });
      return this.jwks;
    })();
    this.finding.catch((err: unknown) => {
      this.failedAt = Date.now();
      this.lastFailure = (err as Error).message;
    });
    void this.finding.finally(() => (this.finding = undefined)).catch(() => {});
    return this.finding;
  }
}

/** The `jwks_uri` of the issuer's metadata: the first document found whose `issuer` is exactly
 * the configured one (RFC 8414 §3.3: a document naming another issuer is not this one's). */
export async function discoverJwksUri(issuer: string): Promise<string> {
  const tried: string[] = [];
  for (const url of metadataUrls(issuer)) {
    const doc = await fetchJson(url).catch((err: unknown) => {
      tried.push(`${url}: ${(err as Error).message}`);
      return undefined;
    });
    if (doc === undefined) continue;
    if (doc.issuer !== issuer) {
      tried.push(`${url}: names the issuer ${JSON.stringify(doc.issuer)}, not ${JSON.stringify(issuer)}`);
      continue;
    }
    const jwks = doc.jwks_uri;
    if (typeof jwks !== 'string' || checkUrlFlag('jwks_uri', jwks) !== undefined) {
      tried.push(`${url}: has no usable jwks_uri`);
      continue;
    }
    return jwks;
  }
  throw new Error(`no metadata of ${issuer} with a jwks_uri was found (${tried.join('; ')})`);
}

async function fetchJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, { headers: { Accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS) });
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > MAX_METADATA_BYTES) {
    await res.body?.cancel();
    throw new Error('the document is too large');
  }
  const text = await res.text();
  if (text.length > MAX_METADATA_BYTES) throw new Error('the document is too large');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
  return value as Record<string, unknown>;
}

/** Who the token says calls: `sub`; `client_id` (or `azp`); the scopes from `scope`
 * (space-separated) or `scp` (a list); every claim. Undefined without a subject. */
export function identityOf(payload: JWTPayload): Caller | undefined {
  const { sub } = payload;
  if (typeof sub !== 'string' || sub === '') return undefined;
  const client = typeof payload.client_id === 'string' ? payload.client_id : typeof payload.azp === 'string' ? payload.azp : undefined;
  const scopes =
    typeof payload.scope === 'string'
      ? payload.scope.split(' ').filter((s) => s !== '')
      : Array.isArray(payload.scp)
        ? payload.scp.filter((s): s is string => typeof s === 'string')
        : [];
  return { sub, ...(client === undefined ? {} : { client_id: client }), scopes, claims: { ...payload } };
}

/** The keys could not be had: not the token's fault. */
function unavailable(err: unknown): boolean {
  if (!(err instanceof errors.JOSEError)) return true;
  return err.code === 'ERR_JWKS_TIMEOUT' || err.code === 'ERR_JWKS_INVALID' || err.code === 'ERR_JOSE_GENERIC';
}

/** A short description of what is wrong with a token, for `error_description`. */
function reason(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'the token is not valid yet';
    if (err.claim === 'iss') return 'the token is from another issuer';
    if (err.claim === 'aud') return 'the token is for another audience';
    return `the token's ${err.claim} claim is missing or invalid`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the token is signed with an algorithm that is not accepted';
  if (err instanceof errors.JWKSNoMatchingKey) return 'the token is signed with an unknown key';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature is invalid';
  return 'the token is malformed';
}
