// Canonical JSON: object keys sorted (recursively), no whitespace, numbers as JavaScript
// writes them, so the same data always gives the same text. Keyed counters hash it into
// bucket ids, and lock files hash tool definitions with it (stored digests depend on it: its
// output for JSON data must never change).

import { createHash } from 'node:crypto';

/** A token of structure in the work stack of `canonicalJson`, told apart from data values. */
class Token {
  constructor(readonly text: string) {}
}
const OPEN_ARRAY = new Token('[');
const CLOSE_ARRAY = new Token(']');
const OPEN_OBJECT = new Token('{');
const CLOSE_OBJECT = new Token('}');
const COMMA = new Token(',');

/** `value` as canonical JSON. Iterative, so deeply nested arguments cannot overflow the stack.
 * Values JSON cannot hold are written as JSON.stringify would (an `undefined` member is left
 * out, an `undefined` array element is null); they only occur in arguments built in code. */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  const work: unknown[] = [value];
  while (work.length > 0) {
    const item = work.pop();
    if (item instanceof Token) {
      out.push(item.text);
    } else if (Array.isArray(item)) {
      // Pushed in reverse: the stack pops them in order.
      work.push(CLOSE_ARRAY);
      for (let i = item.length - 1; i >= 0; i--) {
        const element: unknown = item[i];
        work.push(isWritable(element) ? element : null);
        if (i > 0) work.push(COMMA);
      }
      work.push(OPEN_ARRAY);
    } else if (typeof item === 'object' && item !== null) {
      const record = item as Record<string, unknown>;
      const keys = Object.keys(record)
        .filter((k) => isWritable(record[k]))
        .sort();
      work.push(CLOSE_OBJECT);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        work.push(record[key]);
        work.push(new Token(`${JSON.stringify(key)}:`));
        if (i > 0) work.push(COMMA);
      }
      work.push(OPEN_OBJECT);
    } else if (typeof item === 'bigint') {
      out.push(item.toString());
    } else {
      // Strings, finite numbers (-0 is written 0), booleans, null; a non-finite number is null.
      out.push(JSON.stringify(item) ?? 'null');
    }
  }
  return out.join('');
}

function isWritable(value: unknown): boolean {
  return value !== undefined && typeof value !== 'function' && typeof value !== 'symbol';
}

/** SHA-256, in hex, of the value's canonical JSON: what a call's arguments are recorded and bound
 * by (the trail's `argsHash`, an approval's binding, `--log-args`'s hashed values). */
export function canonicalDigest(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}
