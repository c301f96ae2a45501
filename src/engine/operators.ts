// The condition operators and their coercion rules.
//
// `actual` is a JSON value from the call (or a counter value); `expected` is the YAML value
// from the policy. The rules, chosen to be predictable and to fail closed:
//
// - A path that does not resolve is MISSING. `exists v` passes when
//   `(present && value !== null) === v`, so JSON null counts as absent. Every other operator
//   on a MISSING value is false, `neq` and `not_in` included: a missing argument denies.
// - `eq`: two numbers compare with `===`. A number and a strictly numeric string
//   (`-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?`: no whitespace, no sign `+`, no hex, no
//   Infinity/NaN) compare as numbers, so `"5"` eq `5` and `"1000000"` eq `1000000`. A boolean
//   and the string "true"/"false" compare as strings. null eq null only. Strings compare
//   exactly (case-sensitive). Arrays and objects never equal a scalar; two arrays are equal
//   element by element, two objects key by key (same `eq` rules). Anything else is unequal.
// - `neq` is `!eq` on a present value.
// - `in` / `not_in`: some / no element of the list is `eq` to the value.
// - `lt lte gt gte`: the value must be a finite number or a strictly numeric string;
//   anything else (booleans, null, other strings, arrays) is false.
// - `regex`: the value must be a string; RE2 (the Go reference's dialect, linear time),
//   unanchored. A string RE2 cannot take (e.g. a lone UTF-16 surrogate) does not match.
// - `contains`: a string value and a string expected → substring (case-sensitive); an array
//   value → some element `eq` expected; anything else is false.
// - What the caller holds as a list (`identity.scopes`, a list-valued claim such as groups) is a
//   set: `in` passes when some element is in the policy's list, `not_in` when none is
//   (applyToCaller). An argument's list is one value, compared as a whole.
import type RE2 from 're2';
import type { Operator, PolicyValue } from '../policy/model.js';
import { compileRegex } from '../policy/regex.js';
import { MISSING, type Resolved } from './paths.js';

const NUMERIC = /^-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** The number a value stands for under the rules above, or NaN. */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') return Number.isFinite(value) ? value : NaN;
  if (typeof value === 'string' && NUMERIC.test(value)) {
    const n = Number(value);
    return Number.isFinite(n) ? n : NaN;
  }
  return NaN;
}

/** `eq` without the MISSING case. */
export function looseEquals(actual: unknown, expected: unknown): boolean {
  switch (typeof actual) {
    case 'number':
      if (typeof expected === 'number') return actual === expected;
      if (typeof expected === 'string') return NUMERIC.test(expected) && Number(expected) === actual;
      return false;
    case 'string':
      if (typeof expected === 'string') return actual === expected;
      if (typeof expected === 'number') return NUMERIC.test(actual) && Number(actual) === expected;
      if (typeof expected === 'boolean') return actual === (expected ? 'true' : 'false');
      return false;
    case 'boolean':
      if (typeof expected === 'boolean') return actual === expected;
      if (typeof expected === 'string') return expected === (actual ? 'true' : 'false');
      return false;
    case 'object':
      if (actual === null) return expected === null;
      if (expected === null || typeof expected !== 'object') return false;
      if (Array.isArray(actual)) {
        if (!Array.isArray(expected) || actual.length !== expected.length) return false;
        for (let i = 0; i < actual.length; i++) if (!looseEquals(actual[i], expected[i])) return false;
        return true;
      }
      if (Array.isArray(expected)) return false;
      return objectsEqual(actual as Record<string, unknown>, expected as Record<string, unknown>);
    default:
      return false;
  }
}

function objectsEqual(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) {
    if (!Object.hasOwn(b, key) || !looseEquals(a[key], b[key])) return false;
  }
  return true;
}

function includesEqual(list: readonly unknown[], value: unknown): boolean {
  for (let i = 0; i < list.length; i++) if (looseEquals(value, list[i])) return true;
  return false;
}

/** A condition's operator with its operand prepared once per policy load. */
export interface CompiledOperator {
  readonly op: Operator;
  readonly expected: PolicyValue;
  /** For lt/lte/gt/gte. */
  readonly number: number;
  /** For in/not_in. */
  readonly list: readonly PolicyValue[];
  /** For regex. */
  readonly regex: RE2 | undefined;
}

const NO_LIST: readonly PolicyValue[] = Object.freeze([]);

/** Prepares an operand. Throws when the value does not suit the operator: the loader checks
 * that, so this is a programmer error. */
export function compileOperator(op: Operator, expected: PolicyValue): CompiledOperator {
  let number = NaN;
  let list = NO_LIST;
  let regex: RE2 | undefined;
  switch (op) {
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte':
      if (typeof expected !== 'number' || !Number.isFinite(expected)) {
        throw new Error(`operator "${op}" needs a finite number, got ${JSON.stringify(expected)}`);
      }
      number = expected;
      break;
    case 'in':
    case 'not_in':
      if (!Array.isArray(expected)) throw new Error(`operator "${op}" needs a list, got ${JSON.stringify(expected)}`);
      list = expected;
      break;
    case 'regex':
      if (typeof expected !== 'string') throw new Error(`operator "regex" needs a string, got ${JSON.stringify(expected)}`);
      regex = compileRegex(expected);
      break;
    case 'exists':
      if (typeof expected !== 'boolean') throw new Error(`operator "exists" needs a boolean, got ${JSON.stringify(expected)}`);
      break;
    case 'eq':
    case 'neq':
    case 'contains':
      break;
    default:
      throw new Error(`unknown operator ${JSON.stringify(op satisfies never)}`);
  }
  return { op, expected, number, list, regex };
}

/** Applies an operator to a resolved value (MISSING when the path did not resolve). */
export function applyOperator(c: CompiledOperator, actual: Resolved): boolean {
  if (c.op === 'exists') return (actual !== MISSING && actual !== null) === c.expected;
  if (actual === MISSING) return false;
  switch (c.op) {
    case 'eq':
      return looseEquals(actual, c.expected);
    case 'neq':
      return !looseEquals(actual, c.expected);
    case 'in':
      return includesEqual(c.list, actual);
    case 'not_in':
      return !includesEqual(c.list, actual);
    case 'lt':
      return toNumber(actual) < c.number;
    case 'lte':
      return toNumber(actual) <= c.number;
    case 'gt':
      return toNumber(actual) > c.number;
    case 'gte':
      return toNumber(actual) >= c.number;
    case 'regex':
      return typeof actual === 'string' && c.regex!.test(actual);
    case 'contains':
      if (typeof actual === 'string') return typeof c.expected === 'string' && actual.includes(c.expected);
      if (Array.isArray(actual)) {
        for (let i = 0; i < actual.length; i++) if (looseEquals(actual[i], c.expected)) return true;
      }
      return false;
    default:
      return false;
  }
}

/** applyOperator for a value of the caller's identity: a list there is a set of scopes, groups
 * or roles, so `in` asks whether the caller holds one of the listed values and `not_in`
 * whether it holds none. (Compared as one value, a list would never be `in` a list of scalars
 * and always `not_in` it: `not_in [admin]` would let an admin through.) */
export function applyToCaller(c: CompiledOperator, actual: Resolved): boolean {
  if (Array.isArray(actual) && (c.op === 'in' || c.op === 'not_in')) {
    let held = false;
    for (let i = 0; i < actual.length && !held; i++) held = includesEqual(c.list, actual[i]);
    return c.op === 'in' ? held : !held;
  }
  return applyOperator(c, actual);
}
