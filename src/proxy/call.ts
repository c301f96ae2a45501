// Turns the params of a tools/call into the ToolCall the policy evaluates, refusing anything
// an upstream could read differently from us. The object evaluated here is the very object
// that is serialised and forwarded, so what the policy saw is what the server gets.
import { ambiguousKey, foldKey, isObject } from '../jsonrpc/message.js';
import type { ToolCall } from '../engine/types.js';

export type ParsedCall = { ok: true; call: ToolCall } | { ok: false; message: string };

const CALL_PARAMS = new Set(['name', 'arguments']);

export function parseToolCall(params: unknown): ParsedCall {
  if (!isObject(params)) return { ok: false, message: 'tools/call params must be an object' };
  const odd = ambiguousKey(params, CALL_PARAMS);
  if (odd !== undefined) {
    return { ok: false, message: `tools/call params member ${JSON.stringify(odd)} is ambiguous (it differs from "name" or "arguments" only in case)` };
  }
  const name = params.name;
  if (typeof name !== 'string' || name === '') return { ok: false, message: 'tools/call params.name must be a non-empty string' };
  let args = params.arguments;
  if (args === undefined) {
    args = {};
  } else if (!isObject(args)) {
    return { ok: false, message: 'tools/call params.arguments must be an object' };
  }
  const problem = checkArguments(args as Record<string, unknown>);
  if (problem) return { ok: false, message: problem };
  return { ok: true, call: { name, args: args as Record<string, unknown> } };
}

/** Rejects values that serialise differently from how they were evaluated (numbers beyond
 * double range parse as Infinity but serialise as null) and objects whose keys differ only in
 * case (case-insensitive decoders would pick one the policy did not check). Iterative, so
 * deeply nested input cannot overflow the stack. */
function checkArguments(root: Record<string, unknown>): string | undefined {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return 'tools/call arguments contain a number outside the range of a double';
    } else if (Array.isArray(value)) {
      for (const item of value) stack.push(item);
    } else if (typeof value === 'object' && value !== null) {
      const seen = new Map<string, string>();
      for (const [key, item] of Object.entries(value)) {
        const folded = foldKey(key);
        const other = seen.get(folded);
        if (other !== undefined) {
          return `tools/call arguments contain keys that differ only in case (${JSON.stringify(other)} and ${JSON.stringify(key)})`;
        }
        seen.set(folded, key);
        if (typeof item === 'object' || typeof item === 'number') stack.push(item);
      }
    }
  }
  return undefined;
}
