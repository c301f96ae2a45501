// What a grant is bound to. A retried call finds its request again by this digest, so it must
// change whenever the tool, the arguments, the rule's version or (for session scope) the
// session does, and no two different tuples may give the same text before hashing.
import { createHash } from 'node:crypto';
import { canonicalDigest } from '../engine/canonical-json.js';
import type { Scope } from '../policy/model.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** sha256 hex of the arguments' canonical JSON: key order and whitespace do not matter. */
export function argumentsHash(args: Record<string, unknown>): string {
  return canonicalDigest(args);
}

export interface BindingParts {
  tool: string;
  argumentsHash: string;
  ruleVersion: string;
  scope: Scope;
  session: string;
}

/** sha256 hex of a JSON array of the parts (JSON quoting keeps every boundary unambiguous).
 * The session is `*` under global scope; the scope is in the array too, so a session that is
 * literally named `*` still does not share a global grant. */
export function approvalBinding(parts: BindingParts): string {
  const who = parts.scope === 'session' ? parts.session : '*';
  return sha256(JSON.stringify([parts.tool, parts.argumentsHash, parts.ruleVersion, parts.scope, who]));
}
