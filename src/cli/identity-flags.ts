// `--identity KEY=VALUE` (repeatable): who the calls are made by, for the stdio proxy and for
// `intercept explain`, so that a policy with `identity.*` conditions and `scope: identity`
// counters behaves there as behind a listener that verifies tokens.
//
//   sub=alice                 the subject
//   client_id=cli             the OAuth client
//   scopes="read write"       the scopes, space-separated (as an OAuth `scope` claim)
//   claims.groups=finance,ops a claim: a string, or with a comma a list of strings (`finance,`
//                             is a list of one); dots nest (`claims.org.role=admin`)
import type { Identity } from '../engine/types.js';
import { suggest } from '../policy/suggest.js';

const KEYS = ['sub', 'client_id', 'scopes', 'claims.'] as const;
const MAX_FLAGS = 100;
const MAX_VALUE_CHARS = 8192;
const MAX_CLAIM_DEPTH = 16;

/** The identity the flags describe, or what is wrong with them (for a usage error). */
export function parseIdentityFlags(values: readonly string[]): Identity | string {
  if (values.length > MAX_FLAGS) return `--identity is given ${values.length} times; at most ${MAX_FLAGS}`;
  const identity: Identity = { scopes: [], claims: {} };
  const given = new Set<string>();
  for (const raw of values) {
    const eq = raw.indexOf('=');
    const key = eq < 0 ? raw : raw.slice(0, eq);
    const value = eq < 0 ? undefined : raw.slice(eq + 1);
    if (value === undefined) return `--identity must look like KEY=VALUE (sub=alice, scopes="read write", claims.groups=finance), got ${JSON.stringify(raw)}`;
    if (value.length > MAX_VALUE_CHARS) return `--identity ${key}: the value is longer than ${MAX_VALUE_CHARS} characters`;
    if (given.has(key)) return `--identity ${key} is given more than once`;
    given.add(key);
    if (key === 'sub' || key === 'client_id') {
      if (value === '') return `--identity ${key} must not be empty`;
      identity[key] = value;
    } else if (key === 'scopes') {
      identity.scopes = value.split(/\s+/).filter((s) => s !== '');
    } else if (key.startsWith('claims.')) {
      const problem = setClaim(identity.claims, key.slice('claims.'.length).split('.'), claimValue(value));
      if (problem) return `--identity ${key}: ${problem}`;
    } else {
      const guess = key === 'claims' ? 'claims.' : suggest(key, KEYS, 2);
      const hint = guess === 'claims.' ? ' (name the claim: claims.<name>=value)' : guess ? ` (did you mean ${JSON.stringify(guess)}?)` : '';
      return `--identity takes sub=, client_id=, scopes= or claims.<name>=, got ${JSON.stringify(key)}${hint}`;
    }
  }
  return identity;
}

/** A string, or with a comma a list of its non-empty parts. */
function claimValue(value: string): string | string[] {
  return value.includes(',') ? value.split(',').filter((part) => part !== '') : value;
}

/** Sets the claim at `path`, making the maps on the way; why not, when it cannot. Own
 * properties only, so `claims.__proto__.x` is a claim named `__proto__` like any other. */
function setClaim(claims: Record<string, unknown>, path: string[], value: unknown): string | undefined {
  if (path.includes('')) return 'a claim name must not be empty';
  if (path.length > MAX_CLAIM_DEPTH) return `claims may nest at most ${MAX_CLAIM_DEPTH} levels deep`;
  let map = claims;
  for (let i = 0; i < path.length; i++) {
    const name = path[i]!;
    const last = i === path.length - 1;
    const existing = Object.hasOwn(map, name) ? map[name] : undefined;
    if (last) {
      if (existing !== undefined) return `claims.${path.slice(0, i + 1).join('.')} has claims of its own under it`;
      define(map, name, value);
      return undefined;
    }
    if (existing === undefined) define(map, name, {});
    else if (typeof existing !== 'object' || existing === null || Array.isArray(existing)) return `claims.${path.slice(0, i + 1).join('.')} is given a value already`;
    map = map[name] as Record<string, unknown>;
  }
  return undefined;
}

function define(map: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(map, name, { value, enumerable: true, writable: true, configurable: true });
}
