// JSON-RPC messages and tool results as the tests build and read them: the wire constants,
// request bodies (2025, 2026-07-28, and nesting deeper than JSON.stringify can make), and the
// readers and assertions for results, policy denials and errors.
//
// Exports:
//   Json, isRecord(v)                      a JSON object, and the check for one
//   DENIAL_PREFIX, DENIAL_META_KEY, MODERN what a denial's text starts with, where its detail
//                                          sits in `_meta`, the stateless protocol revision
//   initializeBody(id?)                    a 2025 initialize request, as text
//   modernBody(id, method, params?)        a 2026-07-28 request (with `_meta` as the v2 client sends it)
//   modernHeaders(body)                    the routing headers of a 2026-07-28 request
//   deepText(depth), DEPTHS                JSON text of an array nesting `depth` levels, and the depths tried
//   ToolResult, textOf(result)             a tools/call result as either SDK returns it, and its text
//   DenialView, denialOf(result)           the policy denial a result carries, if any
//   ExpectedDenial, assertDenied, assertNotDenied   asserting a result is (not) a policy denial
//   isDenial(response)                     whether a whole JSON-RPC response is a policy denial
//   errorCode(response)                    the JSON-RPC error code of a response, if any
//   errorOf(message)                       the JSON-RPC error (code and message) of a message, if any
//   resultText(message)                    the first text block of a tools/call response
//   calledTool(line)                       the tool name of a tools/call, as an upstream logged it
import assert from 'node:assert/strict';

export type Json = Record<string, unknown>;

/** A JSON object (not null, not an array). */
export function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ------------------------------------------------------------------------------ constants

/** What every denial's text starts with. */
export const DENIAL_PREFIX = '[INTERCEPT POLICY DENIED] ';
/** Where a denial's machine-readable detail sits in the result's `_meta`. */
export const DENIAL_META_KEY = 'intercept/denial';
/** The stateless protocol revision. */
export const MODERN = '2026-07-28';

// ------------------------------------------------------------------------------ request bodies

/** A 2025 initialize request body. */
export function initializeBody(id: number | string = 1): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
}

/** A 2026-07-28 request body (`_meta` as the v2 client sends it). */
export function modernBody(id: number, method: string, params: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id,
    method,
    params: {
      ...params,
      _meta: {
        'io.modelcontextprotocol/protocolVersion': MODERN,
        'io.modelcontextprotocol/clientCapabilities': {},
        'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
      },
    },
  };
}

/** The routing headers of a 2026-07-28 request for `body`. */
export function modernHeaders(body: Record<string, unknown>): Record<string, string> {
  const headers: Record<string, string> = { 'MCP-Protocol-Version': MODERN, 'Mcp-Method': String(body.method) };
  const params = body.params as Record<string, unknown>;
  if (typeof params.name === 'string') headers['Mcp-Name'] = params.name;
  return headers;
}

/** JSON text of an array nesting `depth` levels (JSON.stringify cannot make one that deep). */
export function deepText(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

export const DEPTHS = [100, 1_000, 10_000, 100_000];

// ------------------------------------------------------------------------------ tool results

/** A tools/call result as either SDK returns it. */
export interface ToolResult {
  content?: unknown;
  isError?: boolean;
  _meta?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The text blocks of a result, joined with newlines. */
export function textOf(result: unknown): string {
  const content = (result as ToolResult).content;
  if (!Array.isArray(content)) return '';
  return content
    .filter((b): b is { type: 'text'; text: string } => typeof b === 'object' && b !== null && b.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text)
    .join('\n');
}

/** A policy denial as the agent sees it. */
export interface DenialView {
  /** The text after the prefix. */
  message: string;
  kind: string;
  rule?: string;
  retryAfterSeconds?: number;
  /** The whole `_meta["intercept/denial"]` object. */
  detail: Record<string, unknown>;
}

/** The denial carried by a result, or undefined when the result is not a policy denial. */
export function denialOf(result: unknown): DenialView | undefined {
  const r = result as ToolResult;
  const detail = r._meta?.[DENIAL_META_KEY];
  if (typeof detail !== 'object' || detail === null) return undefined;
  const d = detail as Record<string, unknown>;
  const text = textOf(r);
  const view: DenialView = {
    message: text.startsWith(DENIAL_PREFIX) ? text.slice(DENIAL_PREFIX.length) : text,
    kind: String(d.kind),
    detail: d,
  };
  if (typeof d.rule === 'string') view.rule = d.rule;
  if (typeof d.retryAfterSeconds === 'number') view.retryAfterSeconds = d.retryAfterSeconds;
  return view;
}

export interface ExpectedDenial {
  kind: string;
  rule?: string;
  /** The whole message after the prefix, or a pattern it must match. */
  message?: string | RegExp;
}

/** Asserts the shape every denial has (isError, one text block behind the prefix, the detail
 * under `_meta`) and the expected kind, rule and message. Returns the denial for more checks. */
export function assertDenied(result: unknown, expected: ExpectedDenial): DenialView {
  const r = result as ToolResult;
  assert.equal(r.isError, true, `expected a denial, got ${JSON.stringify(result)}`);
  assert.ok(Array.isArray(r.content) && r.content.length === 1, `a denial has one content block: ${JSON.stringify(result)}`);
  const text = textOf(r);
  assert.ok(text.startsWith(DENIAL_PREFIX), `denial text must start with the prefix: ${JSON.stringify(text)}`);
  const denial = denialOf(r);
  assert.ok(denial, `expected _meta["${DENIAL_META_KEY}"] on ${JSON.stringify(result)}`);
  assert.equal(denial.kind, expected.kind, `denial kind (message: ${denial.message})`);
  if (expected.rule !== undefined) assert.equal(denial.rule, expected.rule, 'denial rule');
  if (typeof expected.message === 'string') assert.equal(denial.message, expected.message);
  else if (expected.message) assert.match(denial.message, expected.message);
  return denial;
}

/** Asserts the result came from the server, not from the policy. */
export function assertNotDenied(result: unknown): void {
  assert.equal(denialOf(result), undefined, `unexpected denial: ${JSON.stringify(result)}`);
  assert.ok(!textOf(result).startsWith(DENIAL_PREFIX), `unexpected denial text: ${textOf(result)}`);
}

// ------------------------------------------------------------------------------ raw responses

/** True when a whole response is a policy denial (a tool result with isError and the denial
 * text; unlike denialOf, the `_meta` detail is not required). */
export function isDenial(response: unknown): boolean {
  if (!isRecord(response) || !isRecord(response.result)) return false;
  const result = response.result;
  const content = Array.isArray(result.content) ? result.content : [];
  const first = content[0];
  return result.isError === true && isRecord(first) && typeof first.text === 'string' && first.text.startsWith(DENIAL_PREFIX);
}

/** The JSON-RPC error code of a response, or undefined (the message may be anything). */
export function errorCode(response: unknown): number | undefined {
  if (!isRecord(response) || !isRecord(response.error)) return undefined;
  return typeof response.error.code === 'number' ? response.error.code : undefined;
}

/** The JSON-RPC error of a message, when it has both a numeric code and a text message. */
export function errorOf(m: Json | undefined): { code: number; message: string } | undefined {
  const e = m?.error as { code?: unknown; message?: unknown } | undefined;
  return e && typeof e.code === 'number' && typeof e.message === 'string' ? { code: e.code, message: e.message } : undefined;
}

/** The first text block of a tools/call response's result. */
export function resultText(m: Json | undefined): string | undefined {
  const result = m?.result as { content?: Array<{ text?: unknown }> } | undefined;
  const text = result?.content?.[0]?.text;
  return typeof text === 'string' ? text : undefined;
}

/** A tools/call as the upstream saw it: its tool name, or undefined when the line is not one. */
export function calledTool(line: unknown): string | undefined {
  if (!isRecord(line) || line.method !== 'tools/call' || !isRecord(line.params)) return undefined;
  return typeof line.params.name === 'string' ? line.params.name : undefined;
}
