// Storage keys for counters. A key names the scope, whose count it is (the session for session
// scope, the caller's subject for identity scope) and the counter id, and two different
// (scope, owner, id) triples never give the same key:
//   global   -> <prefix>g:<id>
//   session  -> <prefix>s:<session>:<id>
//   identity -> <prefix>i:<subject>:<id>
// The session id and the subject are escaped so that they hold no ':' (and '%' is escaped so the
// escaping is reversible); the first ':' after `s:` or `i:` therefore ends them, whatever either
// part contains. Each scope has its own letter, so no subject meets a session of the same name.
//
// The namespace (--state-prefix) is the store's own: the SQLite store puts it before every key
// (one file is shared by every policy on a machine), the Redis store makes it the keys' hash
// tag, and the memory store, one per process, needs none. `prefix` here is for callers that
// share one store between namespaces themselves.
import type { CounterRef } from '../engine/types.js';

function escapePart(text: string): string {
  return text.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
}

/** Throws for an identity-scoped ref without its subject: the engine never hands one out (a
 * caller without a subject is refused, see decide.ts), so such a ref is a bug, not a bucket. */
export function storageKey(ref: CounterRef, sessionId: string, prefix = ''): string {
  switch (ref.scope) {
    case 'global':
      return `${prefix}g:${ref.id}`;
    case 'session':
      return `${prefix}s:${escapePart(sessionId)}:${ref.id}`;
    case 'identity':
      if (ref.subject === undefined) throw new Error(`counter ${ref.id} is kept per caller and has no subject`);
      return `${prefix}i:${escapePart(ref.subject)}:${ref.id}`;
  }
}
