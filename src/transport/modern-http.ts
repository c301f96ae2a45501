// 2026-07-28 requests over HTTP: how to tell one, and the check that its routing headers say
// what its body says. The gate decides on the parsed body; a header that disagrees with it is
// refused (HeaderMismatch, -32020) so nothing downstream can route on a different tool name.
import type { IncomingHttpHeaders } from 'node:http';
import { isObject } from '../jsonrpc/message.js';

export const MODERN_VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';
export const HEADER_MISMATCH = -32020;

/** The `_meta` protocol version a 2026-07-28 request claims, if any. */
export function modernVersionOf(message: unknown): string | undefined {
  if (!isObject(message) || !isObject(message.params) || !isObject(message.params._meta)) return undefined;
  const v = message.params._meta[MODERN_VERSION_KEY];
  return typeof v === 'string' ? v : undefined;
}

/** Whether a protocol version header names the stateless era (2026-07-28 or later). */
export function isModernVersion(version: string | undefined): boolean {
  return version !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= '2026-07-28';
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Header values that are not plain ASCII travel as `=?base64?<UTF-8 base64>?=`. */
export function decodeHeaderValue(value: string): string {
  const m = /^=\?base64\?([A-Za-z0-9+/=]*)\?=$/.exec(value);
  return m ? Buffer.from(m[1]!, 'base64').toString('utf8') : value;
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
