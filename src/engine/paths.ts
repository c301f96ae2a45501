// Argument paths (`args.a.b`, `args.to.0`) and identity paths (`identity.sub`,
// `identity.claims.org.role`), split once when the policy is compiled and walked per call
// without allocating.
//
// A walk only ever follows own properties (`Object.hasOwn`), so `args.__proto__`,
// `args.constructor` or `identity.claims.toString` resolve to MISSING unless the agent sent (or
// the token carried) such a key. A segment that is a non-negative integer indexes into an
// array; any other step into an array, or any step through a scalar or null, is MISSING.

import { GLOBAL_OWNER } from '../policy/model.js';
import { IDENTITY_FIELDS, type IdentityField } from '../policy/spelling.js';
import type { Identity } from './types.js';

/** What a walk returns when the path does not resolve. */
export const MISSING: unique symbol = Symbol('missing');
export type Resolved = unknown | typeof MISSING;

export interface PathStep {
  /** The segment as written (the property name for objects). */
  readonly key: string;
  /** The array index when the segment is a non-negative integer, else -1. */
  readonly index: number;
}

export interface ArgPath {
  /** As written, e.g. `args.to.0`. */
  readonly text: string;
  readonly steps: readonly PathStep[];
}

const INDEX = /^(0|[1-9][0-9]*)$/;

function stepsOf(segments: readonly string[]): PathStep[] {
  return segments.map((key): PathStep => {
    const index = INDEX.test(key) ? Number(key) : -1;
    return { key, index: Number.isSafeInteger(index) ? index : -1 };
  });
}

/** Splits `args.a.b`; `args` alone names the whole arguments object. Throws on any other root
 * (the loader only lets `args.` paths through). */
export function compileArgPath(text: string): ArgPath {
  if (text !== 'args' && !text.startsWith('args.')) {
    throw new Error(`not an argument path: ${JSON.stringify(text)}`);
  }
  const segments = text === 'args' ? [] : text.slice('args.'.length).split('.');
  return { text, steps: stepsOf(segments) };
}

/** Walks `path` from the arguments object; MISSING when any step does not resolve. JSON
 * `null` is returned as null (present): operators decide what null means. */
export function resolveArgPath(args: unknown, path: ArgPath): Resolved {
  return walk(args, path.steps);
}

/** `identity.<field>`, and for a claim the steps below `identity.claims`. */
export interface IdentityPath {
  /** As written, e.g. `identity.claims.org.role`. */
  readonly text: string;
  readonly field: IdentityField;
  /** For `claims`: the steps into the claims (never empty); for the other fields, none. */
  readonly steps: readonly PathStep[];
}

/** Splits an identity path. Throws on what the loader refuses: another field, a field other
 * than `claims` with steps after it, `claims` without a claim. */
export function compileIdentityPath(text: string): IdentityPath {
  const [root, field, ...rest] = text.split('.');
  const known = (IDENTITY_FIELDS as readonly (string | undefined)[]).includes(field);
  if (root !== 'identity' || !known || (field === 'claims') !== rest.length > 0 || rest.includes('')) {
    throw new Error(`not an identity path: ${JSON.stringify(text)}`);
  }
  return { text, field: field as IdentityField, steps: stepsOf(rest) };
}

const NO_SCOPES: readonly string[] = Object.freeze([]);

/** What an identity path finds; an absent identity is the anonymous caller. `sub` and
 * `client_id` are MISSING when not set; `scopes` is always a list (empty when none); a claim
 * that is not there is MISSING, as an argument that was not sent is. */
export function resolveIdentityPath(identity: Identity | undefined, path: IdentityPath): Resolved {
  switch (path.field) {
    case 'sub':
      return identity?.sub === undefined ? MISSING : identity.sub;
    case 'client_id':
      return identity?.client_id === undefined ? MISSING : identity.client_id;
    case 'scopes':
      return identity?.scopes ?? NO_SCOPES;
    case 'claims':
      return identity === undefined ? MISSING : walk(identity.claims, path.steps);
  }
}

function walk(root: unknown, steps: readonly PathStep[]): Resolved {
  let current: unknown = root;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    if (current === null || typeof current !== 'object') return MISSING;
    if (Array.isArray(current)) {
      if (step.index < 0 || step.index >= current.length || !Object.hasOwn(current, step.index)) return MISSING;
      current = current[step.index];
    } else {
      if (!Object.hasOwn(current, step.key)) return MISSING;
      current = (current as Record<string, unknown>)[step.key];
    }
    // Not a JSON value; only reachable when arguments were built in code.
    if (current === undefined) return MISSING;
  }
  return current;
}

/** `state.<owner>.<counter>` split as the reference does: the owner ends at the first dot after
 * `state.` (`*` means `_global`), the counter name is the rest and may contain dots.
 * Undefined when the path has fewer than three parts. */
export function splitStatePath(text: string): { owner: string; counter: string } | undefined {
  if (!text.startsWith('state.')) return undefined;
  const rest = text.slice('state.'.length);
  const dot = rest.indexOf('.');
  if (dot <= 0 || dot === rest.length - 1) return undefined;
  const owner = rest.slice(0, dot);
  return { owner: owner === '*' ? GLOBAL_OWNER : owner, counter: rest.slice(dot + 1) };
}
