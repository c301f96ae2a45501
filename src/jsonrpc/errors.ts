// Standard JSON-RPC error codes and builders for the errors the proxy answers itself.
import type { JsonRpcId, JsonRpcResponse } from './message.js';

export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const METHOD_NOT_FOUND = -32601;
export const INVALID_PARAMS = -32602;
export const INTERNAL_ERROR = -32603;

// Implementation-defined codes (-32000..-32019), as the MCP SDKs use them.
/** A transport-level refusal (HTTP status errors carry it). */
export const TRANSPORT_ERROR = -32000;
/** An HTTP session id that does not exist (any more). */
export const SESSION_NOT_FOUND = -32001;
/** A request the peer did not answer in time: the SDKs' `ErrorCode.RequestTimeout`, the same
 * number as SESSION_NOT_FOUND (which only ever comes with an HTTP 404). */
export const REQUEST_TIMEOUT = -32001;

// Codes the 2026-07-28 revision reserves (-32020..-32099).
/** A routing header disagrees with the body (or is missing). */
export const HEADER_MISMATCH = -32020;
/** The request needs a client capability its `_meta` does not declare. */
export const MISSING_CLIENT_CAPABILITY = -32021;
/** The requested protocol version is not supported. */
export const UNSUPPORTED_PROTOCOL_VERSION = -32022;

export function errorResponse(id: JsonRpcId | null, code: number, message: string, data?: unknown): JsonRpcResponse {
  const error = data === undefined ? { code, message } : { code, message, data };
  return { jsonrpc: '2.0', id, error };
}
