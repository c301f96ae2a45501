// The per-request headers a 2026-07-28 request carries on Streamable HTTP, derived from its
// body: MCP-Protocol-Version (the `_meta` claim), Mcp-Method, and Mcp-Name for the methods
// that name their target. Legacy messages (no `_meta` claim) get none: their version header
// comes from the session, set after initialize.
import { encodeHeaderValue, metaOf, PROTOCOL_VERSION_META } from '../jsonrpc/eras.js';
import { classify, isObject } from '../jsonrpc/message.js';

/** Which params member Mcp-Name mirrors, per method. */
const NAME_SOURCE: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};

/** Lower-case header names and their values for one outgoing message; empty for anything but
 * a 2026-07-28 request. */
export function modernHeaders(message: unknown): Record<string, string> {
  const c = classify(message);
  if (c.kind !== 'request' || !isObject(c.msg.params)) return {};
  const params = c.msg.params;
  const version = metaOf(params)?.[PROTOCOL_VERSION_META];
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
