// The rules by which a client of a remote MCP server chooses between Streamable HTTP and the
// legacy HTTP+SSE transport, and reads what the server said when it refused a POST. Pure: no
// I/O, no state, so the proxy's upstream and the scanner (`scan --upstream`) share them
// without the scanner loading the stateful upstream.
import { HEADER_MISMATCH, MISSING_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION } from '../jsonrpc/errors.js';
import { isObject } from '../jsonrpc/message.js';

/** JSON-RPC errors by which a 2026-07-28 server answers a request it understood the era of
 * (header mismatch, missing capability, unsupported version): not a sign of an old server. */
export const MODERN_ERROR_CODES: ReadonlySet<number> = new Set([HEADER_MISMATCH, MISSING_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION]);

/** What the upstream said when it refused a POST. */
export interface Refusal {
  status: number;
  statusText: string;
  /** The JSON-RPC error in the body, when there was one. */
  error?: { code: number; message: string; data?: unknown };
  /** The request carried a session id (so a 404 means the session is gone). */
  hadSession: boolean;
}

/** Where a URL points, without credentials or query, for logs and error messages. */
export function describeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** The legacy HTTP+SSE endpoints to try for a Streamable HTTP URL: the URL itself, then its
 * `sse` sibling (`/mcp` → `/sse`). */
export function sseCandidates(url: URL): URL[] {
  const sibling = new URL('sse', url);
  return sibling.href === url.href ? [url] : [url, sibling];
}

/** Whether the legacy HTTP+SSE transport is used from the start: asked for, or (in auto mode)
 * a URL whose path ends in `/sse`, the legacy transport's usual endpoint. */
export function startsWithSse(url: URL, mode: 'auto' | 'streamable' | 'sse'): boolean {
  return mode === 'sse' || (mode === 'auto' && /\/sse\/?$/.test(url.pathname));
}

/** Whether a refused first POST is a 2026-07-28 server's answer (it understood the request's
 * era and refused it): not a sign of a legacy HTTP+SSE server. */
export function isModernRefusal(refusal: Refusal): boolean {
  return refusal.error !== undefined && MODERN_ERROR_CODES.has(refusal.error.code);
}

/** Whether a refused first POST says "this server does not speak Streamable HTTP". */
export function speaksLegacySse(refusal: Refusal): boolean {
  if (refusal.status === 405) return true;
  if (refusal.status === 404) return refusal.error === undefined;
  if (refusal.status === 400) return !isModernRefusal(refusal);
  return false;
}

/** The JSON-RPC error a refusal's body holds, if it holds a well-formed one. */
export function jsonRpcErrorOf(text: string): Refusal['error'] {
  const body = parseJson(text);
  if (!isObject(body) || !isObject(body.error)) return undefined;
  const { code, message, data } = body.error;
  if (typeof code !== 'number' || typeof message !== 'string') return undefined;
  return data === undefined ? { code, message } : { code, message, data };
}

/** JSON text as a value, or undefined when it is not JSON (bodies are the peer's to get wrong). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Error texts of the SDK can hold a whole response body: logs keep its first line. */
export function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** An error's message with its network code (`fetch failed (ECONNREFUSED)`), on one line. */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return firstLine(String(err));
  const cause = (err as { cause?: unknown }).cause;
  const code = isObject(cause) && typeof cause.code === 'string' ? cause.code : undefined;
  return firstLine(code ? `${err.message} (${code})` : err.message);
}
