// The HTTP listener's front door: which requests are let in at all. Browsers can be made to
// send requests to a local port (a foreign Origin, or a DNS-rebound Host), so both are checked
// before anything else; then the bearer token, then the size of the body.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';

/** Writes an HTTP error with a JSON-RPC error body (id null: it answers the HTTP request, not a
 * JSON-RPC message). */
export function sendHttpError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  headers: Record<string, string> = {},
  data?: unknown,
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const error = data === undefined ? { code, message } : { code, message, data };
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error, id: null }));
}

// ------------------------------------------------------------------------------ addresses

/** Whether an address only accepts connections from this machine. */
export function isLoopback(address: string): boolean {
  const a = address.replace(/^\[|\]$/g, '').toLowerCase();
  if (a === 'localhost' || a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  if (isIP(a) === 4) return a.startsWith('127.');
  if (a.startsWith('::ffff:')) return a.slice(7).startsWith('127.');
  return false;
}

/** The host name of a Host header or origin authority, without port or IPv6 brackets. */
function hostnameOf(authority: string): string {
  const a = authority.trim().toLowerCase();
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    return end === -1 ? a : a.slice(1, end);
  }
  const colon = a.lastIndexOf(':');
  return colon === -1 ? a : a.slice(0, colon);
}

const LOCAL_NAMES = new Set(['localhost', '127.0.0.1', '::1']);

/** DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 reaches a
 * loopback listener with `Host: evil.example`. On loopback only local names (and the bind
 * address itself) are accepted. On other addresses the names the listener is reached by are
 * not known, so the Host is not checked there (the token is what protects it). */
export function hostAllowed(host: string | undefined, bind: string): boolean {
  if (!isLoopback(bind)) return true;
  if (!host) return false;
  const name = hostnameOf(host);
  return LOCAL_NAMES.has(name) || name === bind.replace(/^\[|\]$/g, '').toLowerCase();
}

// ------------------------------------------------------------------------------ origins

/** An origin in the form browsers send it: scheme://host[:port], lower-cased, no path. */
function normaliseOrigin(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    return `${url.protocol}//${url.host}`.toLowerCase();
  } catch {
    return undefined;
  }
}

export class OriginPolicy {
  private readonly extra: Set<string>;

  constructor(allowed: readonly string[]) {
    this.extra = new Set(allowed.map((o) => normaliseOrigin(o) ?? o.toLowerCase()));
  }

  /** A request without Origin is not from a browser page and is allowed; a browser page must
   * be served from this machine (any port) or be one of --allowed-origin. */
  allows(origin: string | undefined): boolean {
    if (origin === undefined) return true;
    const normal = normaliseOrigin(origin);
    if (normal === undefined) return false;
    if (this.extra.has(normal)) return true;
    const host = hostnameOf(new URL(normal).host);
    return LOCAL_NAMES.has(host);
  }
}

/** Checks the argument of --allowed-origin; an error message, or undefined when it is usable. */
export function checkOrigin(origin: string): string | undefined {
  return normaliseOrigin(origin) === undefined ? `--allowed-origin must be an origin such as https://app.example.com, got ${JSON.stringify(origin)}` : undefined;
}

// ------------------------------------------------------------------------------ tokens

/** The bearer token of a request, if it has one. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** A stable, non-reversible name for a token (for counter keys and logs). */
export function tokenHash(token: string): string {
  return digest(token).toString('hex').slice(0, 32);
}

/** Compares the presented token with the expected one in constant time: both are hashed
 * first, so neither the content nor the length leaks through timing. */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(digest(presented), digest(expected));
}

// ------------------------------------------------------------------------------ bodies

export type Body = { kind: 'ok'; text: string } | { kind: 'too_large' } | { kind: 'aborted' };

/** Reads a request body, stopping as soon as it exceeds `limit` bytes (a declared
 * Content-Length over the limit is refused without reading). */
export function readBody(req: IncomingMessage, limit: number): Promise<Body> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve({ kind: 'too_large' });
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (body: Body) => {
      if (done) return;
      done = true;
      resolve(body);
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        // Stop buffering; the rest is read and discarded so the answer can still be sent.
        parts.length = 0;
        finish({ kind: 'too_large' });
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => finish({ kind: 'ok', text: Buffer.concat(parts, size).toString('utf8') }));
    req.on('error', () => finish({ kind: 'aborted' }));
    req.on('close', () => finish({ kind: 'aborted' }));
  });
}
