// JSON-RPC 2.0 message shapes as MCP uses them, and the one place messages are classified.
// Classification is strict: what the gate relies on (method, id) must be unambiguous.
import { impersonatedMethod } from './methods.js';

export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: JsonRpcId;
  method: string;
  params?: unknown;
}

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: unknown;
}

export interface JsonRpcError {
  code: number;
  message: string;
  data?: unknown;
}

export interface JsonRpcResponse {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  result?: unknown;
  error?: JsonRpcError;
}

export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

export type Classified =
  | { kind: 'request'; msg: JsonRpcRequest }
  | { kind: 'notification'; msg: JsonRpcNotification }
  | { kind: 'response'; msg: JsonRpcResponse }
  | { kind: 'invalid'; reason: string; id: JsonRpcId | null };

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isId(v: unknown): v is JsonRpcId {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

const ENVELOPE = new Set(['jsonrpc', 'id', 'method', 'params', 'result', 'error']);

/** Case- and compatibility-folded form of a key. Some JSON decoders (Go's encoding/json among
 * them) match member names case-insensitively, so `"Method"` or `"\u212Aey"` could mean
 * something else to the upstream than to us. */
export function foldKey(key: string): string {
  return ASCII.test(key) ? key.toLowerCase() : key.normalize('NFKC').toLowerCase();
}
const ASCII = /^[\x00-\x7f]*$/;

/** The first member whose folded name is `reserved` but which is not spelt exactly so. */
export function ambiguousKey(obj: Record<string, unknown>, reserved: ReadonlySet<string>): string | undefined {
  for (const key of Object.keys(obj)) {
    if (!reserved.has(key) && reserved.has(foldKey(key))) return key;
  }
  return undefined;
}

export function classify(value: unknown): Classified {
  if (!isObject(value)) return { kind: 'invalid', reason: 'a message must be a JSON object', id: null };
  const id = Object.hasOwn(value, 'id') ? value.id : undefined;
  const usableId = isId(id) ? id : null;
  const odd = ambiguousKey(value, ENVELOPE);
  if (odd !== undefined) {
    return { kind: 'invalid', reason: `member ${JSON.stringify(odd)} is ambiguous (it differs from a JSON-RPC member only in case)`, id: usableId };
  }
  if (value.jsonrpc !== '2.0') return { kind: 'invalid', reason: 'jsonrpc must be "2.0"', id: usableId };
  if (Object.hasOwn(value, 'method')) {
    if (typeof value.method !== 'string' || value.method === '') {
      return { kind: 'invalid', reason: 'method must be a non-empty string', id: usableId };
    }
    const impersonated = impersonatedMethod(value.method);
    if (impersonated !== undefined) {
      const reason = `method ${JSON.stringify(value.method)} is ambiguous (it differs from "${impersonated}" only in case, spacing or Unicode form)`;
      return { kind: 'invalid', reason, id: usableId };
    }
    if (value.params !== undefined && typeof value.params !== 'object') {
      return { kind: 'invalid', reason: 'params must be an object or an array', id: usableId };
    }
    if (id === undefined) return { kind: 'notification', msg: value as unknown as JsonRpcNotification };
    if (!isId(id)) return { kind: 'invalid', reason: 'id must be a string or a number', id: null };
    return { kind: 'request', msg: value as unknown as JsonRpcRequest };
  }
  const hasResult = Object.hasOwn(value, 'result');
  const hasError = Object.hasOwn(value, 'error');
  if (hasResult === hasError) {
    return { kind: 'invalid', reason: 'a message needs a method, or exactly one of result and error', id: usableId };
  }
  if (id !== null && !isId(id)) return { kind: 'invalid', reason: 'id must be a string or a number', id: null };
  if (hasError && !isObject(value.error)) return { kind: 'invalid', reason: 'error must be an object', id: usableId };
  return { kind: 'response', msg: value as unknown as JsonRpcResponse };
}

/** A Map key for an id that keeps 1 and "1" apart. */
export function idKey(id: JsonRpcId): string {
  return typeof id === 'number' ? `n:${id}` : `s:${id}`;
}

/** The id an idKey was made from. */
export function idFromKey(key: string): JsonRpcId {
  return key.startsWith('n:') ? Number(key.slice(2)) : key.slice(2);
}
