// The two protocol eras as the proxy tells them apart. The 2025 revisions open a session with
// `initialize`; 2026-07-28 and later are stateless: every request carries its protocol
// version, capabilities and client info in `_meta`, and over HTTP mirrors its routing in
// headers (MCP-Protocol-Version, Mcp-Method, Mcp-Name), whose non-ASCII values travel encoded.
import { isObject } from './message.js';

/** The first stateless revision. */
export const MODERN_VERSION = '2026-07-28';

/** The `_meta` members a 2026-07-28 request carries. */
export const PROTOCOL_VERSION_META = 'io.modelcontextprotocol/protocolVersion';
export const CLIENT_CAPABILITIES_META = 'io.modelcontextprotocol/clientCapabilities';
export const CLIENT_INFO_META = 'io.modelcontextprotocol/clientInfo';
/** All of them: what the proxy copies onto its own requests made on behalf of such a call. */
export const MODERN_META_KEYS = [PROTOCOL_VERSION_META, CLIENT_CAPABILITIES_META, CLIENT_INFO_META] as const;

/** The `_meta` object of a request's params, if it has one. */
export function metaOf(params: unknown): Record<string, unknown> | undefined {
  return isObject(params) && isObject(params._meta) ? params._meta : undefined;
}

/** The protocol version a 2026-07-28 message claims in its `_meta`, if any. */
export function modernVersionOf(message: unknown): string | undefined {
  const v = isObject(message) ? metaOf(message.params)?.[PROTOCOL_VERSION_META] : undefined;
  return typeof v === 'string' ? v : undefined;
}

/** Whether a request's params claim the stateless era. */
export function isModernParams(params: unknown): boolean {
  return typeof metaOf(params)?.[PROTOCOL_VERSION_META] === 'string';
}

/** Whether a protocol version (header or `_meta`) names the stateless era (2026-07-28 or later). */
export function isModernVersion(version: string | undefined): boolean {
  return version !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= MODERN_VERSION;
}

const SENTINEL_PREFIX = '=?base64?';
const SENTINEL_SUFFIX = '?=';

/** A header value as the spec encodes it: plain when it is printable ASCII without edge
 * spaces, else `=?base64?<base64 of UTF-8>?=` (also for literals that look like the sentinel). */
export function encodeHeaderValue(value: string): string {
  const plain =
    value.length > 0 &&
    value === value.trim() &&
    /^[\t\x20-\x7e]*$/.test(value) &&
    !(value.startsWith(SENTINEL_PREFIX) && value.endsWith(SENTINEL_SUFFIX));
  return plain ? value : `${SENTINEL_PREFIX}${Buffer.from(value, 'utf8').toString('base64')}${SENTINEL_SUFFIX}`;
}

/** The inverse of `encodeHeaderValue`. */
export function decodeHeaderValue(value: string): string {
  const m = /^=\?base64\?([A-Za-z0-9+/=]*)\?=$/.exec(value);
  return m ? Buffer.from(m[1]!, 'base64').toString('utf8') : value;
}
