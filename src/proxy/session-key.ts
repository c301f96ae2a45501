// Who the agent is, for `scope: session` counters on the HTTP listener (--session-key).
//   session      the Mcp-Session-Id of a 2025 session (so a reconnect starts afresh); for a
//                stateless 2026-07-28 client, the bearer token's hash, else the client info
//                in `_meta`, else one key shared by every such client
//   header:Name  the value of that request header (required on every request)
//   token        a hash of the bearer token (required)
//   client-info  the client's name and version (initialize's clientInfo, or `_meta`'s)
// Any key but the Mcp-Session-Id survives reconnects: counters are keyed by it, not by the
// connection.
import type { IncomingMessage } from 'node:http';
import { CLIENT_INFO_META, metaOf } from '../jsonrpc/eras.js';
import { isObject } from '../jsonrpc/message.js';
import { bearerToken, tokenHash } from '../transport/http-guard.js';

export type SessionKeySpec = { kind: 'session' } | { kind: 'header'; name: string } | { kind: 'token' } | { kind: 'client-info' };

/** Parses --session-key; a usage message when it cannot be understood. */
export function parseSessionKey(text: string): SessionKeySpec | string {
  if (text === 'session' || text === 'token' || text === 'client-info') return { kind: text };
  const m = /^header:([!#$%&'*+.^_`|~0-9A-Za-z-]+)$/.exec(text);
  if (m) return { kind: 'header', name: m[1]!.toLowerCase() };
  return `--session-key must be session, token, client-info or header:<Name>, got ${JSON.stringify(text)}`;
}

/** The client's declared name and version: initialize's clientInfo or the 2026 `_meta` one. */
export function clientInfoOf(message: unknown): string | undefined {
  if (!isObject(message) || !isObject(message.params)) return undefined;
  const info = message.method === 'initialize' ? message.params.clientInfo : metaOf(message.params)?.[CLIENT_INFO_META];
  if (!isObject(info) || typeof info.name !== 'string') return undefined;
  return typeof info.version === 'string' ? `${info.name}@${info.version}` : info.name;
}

export type KeyResult = { ok: true; key: string } | { ok: false; message: string };

/** The counter key for a request. `sessionId` is the transport session's id (undefined for
 * stateless requests); `message` is the JSON-RPC body, for client info. */
export function sessionKeyFor(spec: SessionKeySpec, req: IncomingMessage, message: unknown, sessionId: string | undefined): KeyResult {
  switch (spec.kind) {
    case 'header': {
      const raw = req.headers[spec.name];
      const value = Array.isArray(raw) ? raw[0] : raw;
      if (value === undefined || value.trim() === '') return { ok: false, message: `this proxy identifies agents by the ${spec.name} header, and the request has none` };
      return { ok: true, key: `header:${spec.name}=${value.trim()}` };
    }
    case 'token': {
      const token = bearerToken(req);
      if (token === undefined) return { ok: false, message: 'this proxy identifies agents by their bearer token, and the request has none' };
      return { ok: true, key: `token:${tokenHash(token)}` };
    }
    case 'client-info': {
      const info = clientInfoOf(message);
      if (info === undefined) return { ok: false, message: 'this proxy identifies agents by their client info, and the request has none' };
      return { ok: true, key: `client:${info}` };
    }
    case 'session': {
      if (sessionId !== undefined) return { ok: true, key: sessionId };
      const token = bearerToken(req);
      if (token !== undefined) return { ok: true, key: `token:${tokenHash(token)}` };
      const info = clientInfoOf(message);
      return { ok: true, key: info !== undefined ? `client:${info}` : 'shared' };
    }
  }
}
