// Storage keys for counters. A key names the scope, the session (for session scope) and the
// counter id, and two different (scope, session, id) triples never give the same key:
//   global  -> <prefix>g:<id>
//   session -> <prefix>s:<session>:<id>
// The session id is escaped so that it holds no ':' (and '%' is escaped so the escaping is
// reversible); the first ':' after `s:` therefore ends it, whatever either id contains.
//
// The namespace (--state-prefix) is the store's own: the SQLite store puts it before every key
// (one file is shared by every policy on a machine), the Redis store makes it the keys' hash
// tag, and the memory store, one per process, needs none. `prefix` here is for callers that
// share one store between namespaces themselves.
import type { CounterRef } from '../engine/types.js';

function escapeSession(sessionId: string): string {
  return sessionId.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
}

export function storageKey(ref: CounterRef, sessionId: string, prefix = ''): string {
  return ref.scope === 'global' ? `${prefix}g:${ref.id}` : `${prefix}s:${escapeSession(sessionId)}:${ref.id}`;
}
