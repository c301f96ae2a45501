// Argument paths (`args.a.b`, `args.to.0`), split once when the policy is compiled and walked
// per call without allocating.
//
// A walk only ever follows the arguments' own properties (`Object.hasOwn`), so `args.__proto__`,
// `args.constructor` or `args.toString` resolve to MISSING unless the agent really sent such a
// key. A segment that is a non-negative integer indexes into an array; any other step into an
// array, or any step through a scalar or null, is MISSING.

import { GLOBAL_OWNER } from '../policy/model.js';

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

/** Splits `args.a.b`; `args` alone names the whole arguments object. Throws on any other root
 * (the loader only lets `args.` paths through). */
export function compileArgPath(text: string): ArgPath {
  if (text !== 'args' && !text.startsWith('args.')) {
    throw new Error(`not an argument path: ${JSON.stringify(text)}`);
  }
  const segments = text === 'args' ? [] : text.slice('args.'.length).split('.');
  const steps = segments.map((key): PathStep => {
    const index = INDEX.test(key) ? Number(key) : -1;
    return { key, index: Number.isSafeInteger(index) ? index : -1 };
  });
  return { text, steps };
}

/** Walks `path` from the arguments object; MISSING when any step does not resolve. JSON
 * `null` is returned as null (present): operators decide what null means. */
export function resolveArgPath(args: unknown, path: ArgPath): Resolved {
  let current: unknown = args;
  const steps = path.steps;
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
