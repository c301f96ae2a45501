// Buckets of keyed counters. A counter with a `key` keeps one count per key value: the values
// at its `args.` paths (or the whole arguments, for `key: args`), written as canonical JSON and
// hashed, so that a bucket's id has a fixed length whatever the arguments hold.
//
// JSON text that parses to the same value gives the same bucket (see canonical-json.ts):
// `{"a":1,"b":2}` and `{"b":2,"a":1}`, `1` and `1.0` and `1e0`. Different values give
// different buckets, up to the 64 bits of the digest; `5` and `"5"` are different values.
import { createHash } from 'node:crypto';
import { GLOBAL_OWNER } from '../policy/model.js';
import { canonicalJson } from './canonical-json.js';
import { MISSING, resolveArgPath, type ArgPath } from './paths.js';
import type { BucketKey, CounterRef, ToolCall } from './types.js';

/** A counter's key, compiled: the whole arguments, or these paths. */
export type CompiledKey = { readonly all: true } | { readonly all: false; readonly paths: readonly ArgPath[] };

/** Hex characters of the sha256 kept in a bucket id (64 bits). */
const DIGEST_CHARS = 16;

/** The first 16 hex characters of the sha256 of `text`. */
export function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, DIGEST_CHARS);
}

/** The values a key picks from the arguments: each path's value in order, a missing path as
 * null (so a missing argument and an explicit null share a bucket). */
export function keyValues(paths: readonly ArgPath[], args: Record<string, unknown>): unknown[] {
  return paths.map((path) => {
    const value = resolveArgPath(args, path);
    return value === MISSING ? null : value;
  });
}

/** The bucket of `counter` (a keyed counter's declared ref) that `call` falls in: its ref,
 * with id `<owner>.<name>[<digest>]`, and the key values that chose it.
 *
 * For `key: args` the digest covers the arguments; under `"*"` (the `_global` owner) it covers
 * the tool's name as well, so that identical arguments sent to two tools are two buckets. */
export function bucketOf(counter: CounterRef, key: CompiledKey, call: ToolCall): { ref: CounterRef; key: BucketKey } {
  let text: string;
  let bucketKey: BucketKey;
  if (key.all) {
    text = canonicalJson(counter.owner === GLOBAL_OWNER ? [call.name, call.args] : call.args);
    bucketKey = { all: true, tool: call.name };
  } else {
    const values = keyValues(key.paths, call.args);
    text = canonicalJson(values);
    bucketKey = { paths: key.paths.map((p) => p.text), values };
  }
  const ref: CounterRef = {
    id: `${counter.id}[${digestOf(text)}]`,
    owner: counter.owner,
    counter: counter.id,
    scope: counter.scope,
    window: counter.window,
  };
  if (counter.subject !== undefined) ref.subject = counter.subject;
  return { ref, key: bucketKey };
}
