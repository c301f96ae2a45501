// 2026-07-28 requests over HTTP: how to tell one, and the check that its routing headers say
// what its body says. The gate decides on the parsed body; a header that disagrees with it is
// refused (HeaderMismatch) so nothing downstream can route on a different tool name.
import type { IncomingHttpHeaders } from 'node:http';
import { decodeHeaderValue, modernVersionOf } from '../jsonrpc/eras.js';
import { isObject } from '../jsonrpc/message.js';

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export interface Mismatch {
  header: string;
  expected: string | undefined;
  actual: string | undefined;
}

/** The first routing header that does not match the body of a 2026-07-28 request. */
export function headerMismatch(headers: IncomingHttpHeaders, message: Record<string, unknown>): Mismatch | undefined {
  const version = modernVersionOf(message);
  const versionHeader = header(headers, 'mcp-protocol-version');
  if (versionHeader !== version) return { header: 'MCP-Protocol-Version', expected: version, actual: versionHeader };
  const method = typeof message.method === 'string' ? message.method : undefined;
  const methodHeader = header(headers, 'mcp-method');
  if (method !== undefined && methodHeader !== method) return { header: 'Mcp-Method', expected: method, actual: methodHeader };
  const params = isObject(message.params) ? message.params : {};
  const name =
    method === 'tools/call' || method === 'prompts/get' ? params.name : method === 'resources/read' ? params.uri : undefined;
  if (name !== undefined) {
    const nameHeader = header(headers, 'mcp-name');
    const actual = nameHeader === undefined ? undefined : decodeHeaderValue(nameHeader);
    const expected = typeof name === 'string' ? name : JSON.stringify(name);
    if (actual !== expected) return { header: 'Mcp-Name', expected, actual };
  }
  return undefined;
}
