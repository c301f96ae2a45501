// Storage keys for counters. A key names the scope, the session (for session scope) and the
// counter id, and two different (scope, session, id) triples never give the same key:
//   global  -> <prefix>g:<id>
//   session -> <prefix>s:<session>:<id>
// The session id is escaped so that it holds no ':' (and '%' is escaped so the escaping is
// reversible); the first ':' after `s:` therefore ends it, whatever either id contains.
//
// The namespace prefix (--state-prefix) is applied here and nowhere else: memory and SQLite
// store the key as is, and the Redis store (keysHavePrefix) moves the prefix into its hash tag.
import type { CounterRef } from '../engine/types.js';

function escapeSession(sessionId: string): string {
  return sessionId.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
}

export function storageKey(ref: CounterRef, sessionId: string, prefix = ''): string {
  return ref.scope === 'global' ? `${prefix}g:${ref.id}` : `${prefix}s:${escapeSession(sessionId)}:${ref.id}`;
}
