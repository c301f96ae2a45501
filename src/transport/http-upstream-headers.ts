// The per-request headers a 2026-07-28 request carries on Streamable HTTP, derived from its
// body: MCP-Protocol-Version (the `_meta` claim), Mcp-Method, and Mcp-Name for the methods
// that name their target. Legacy messages (no `_meta` claim) get none: their version header
// comes from the session, set after initialize.
import { classify, isObject } from '../jsonrpc/message.js';

const PROTOCOL_VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';

/** Which params member Mcp-Name mirrors, per method. */
const NAME_SOURCE: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};

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

/** Lower-case header names and their values for one outgoing message; empty for anything but
 * a 2026-07-28 request. */
export function modernHeaders(message: unknown): Record<string, string> {
  const c = classify(message);
  if (c.kind !== 'request' || !isObject(c.msg.params)) return {};
  const params = c.msg.params;
  const meta = isObject(params._meta) ? params._meta : undefined;
  const version = meta?.[PROTOCOL_VERSION_KEY];
  if (typeof version !== 'string') return {};
  const headers: Record<string, string> = {
    'mcp-protocol-version': version,
    'mcp-method': c.msg.method,
  };
  const source = Object.hasOwn(NAME_SOURCE, c.msg.method) ? NAME_SOURCE[c.msg.method] : undefined;
  const name = source === undefined ? undefined : params[source];
  if (typeof name === 'string') headers['mcp-name'] = encodeHeaderValue(name);
  return headers;
}
