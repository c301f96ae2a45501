// The listener's front-door checks and request classification, case by case.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { OriginPolicy, hostAllowed, isLoopback, tokenMatches } from '../../src/transport/http-guard.js';
import { decodeHeaderValue } from '../../src/jsonrpc/eras.js';
import { headerMismatch } from '../../src/transport/modern-http.js';
import { parseSessionKey, sessionKeyFor } from '../../src/proxy/session-key.js';

describe('Origin', () => {
  const policy = new OriginPolicy(['https://app.example.com/']);
  const cases: Array<[string | undefined, boolean]> = [
    [undefined, true],
    ['http://localhost:5173', true],
    ['http://127.0.0.1', true],
    ['http://[::1]:8080', true],
    ['https://app.example.com', true],
    ['https://APP.example.com', true],
    ['https://app.example.com:8443', false],
    ['http://evil.example', false],
    ['http://localhost.evil.example', false],
    ['null', false],
    ['file://', false],
  ];
  for (const [origin, allowed] of cases) {
    it(`${String(origin)} -> ${allowed ? 'allowed' : 'refused'}`, () => assert.equal(policy.allows(origin), allowed));
  }
});

describe('Host on a loopback bind', () => {
  const cases: Array<[string | undefined, string, boolean]> = [
    ['127.0.0.1:8080', '127.0.0.1', true],
    ['localhost:8080', '127.0.0.1', true],
    ['[::1]:8080', '::1', true],
    ['evil.example:8080', '127.0.0.1', false],
    [undefined, '127.0.0.1', false],
    ['evil.example', '0.0.0.0', true],
    ['10.0.0.5:80', '10.0.0.5', true],
  ];
  for (const [host, bind, allowed] of cases) {
    it(`Host ${String(host)} on ${bind} -> ${allowed}`, () => assert.equal(hostAllowed(host, bind), allowed));
  }
  it('knows which addresses are loopback', () => {
    assert.deepEqual(['127.0.0.1', '127.1.2.3', '::1', 'localhost', '0.0.0.0', '10.0.0.1', '::'].map(isLoopback), [true, true, true, true, false, false, false]);
  });
});

describe('bearer tokens', () => {
  it('matches only the exact token', () => {
    assert.equal(tokenMatches('abc', 'abc'), true);
    assert.equal(tokenMatches('abd', 'abc'), false);
    assert.equal(tokenMatches('abcd', 'abc'), false);
    assert.equal(tokenMatches(undefined, 'abc'), false);
  });
});

describe('2026-07-28 routing headers', () => {
  const body = {
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: 'delete_file', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } },
  };
  const ok = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'delete_file' };
  const cases: Array<[string, Record<string, string>, string | undefined]> = [
    ['all matching', ok, undefined],
    ['base64-encoded name', { ...ok, 'mcp-name': '=?base64?ZGVsZXRlX2ZpbGU=?=' }, undefined],
    ['another tool name', { ...ok, 'mcp-name': 'read_file' }, 'Mcp-Name'],
    ['no name', { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' }, 'Mcp-Name'],
    ['another method', { ...ok, 'mcp-method': 'tools/list' }, 'Mcp-Method'],
    ['another version', { ...ok, 'mcp-protocol-version': '2025-06-18' }, 'MCP-Protocol-Version'],
  ];
  for (const [name, headers, mismatch] of cases) {
    it(name, () => assert.equal(headerMismatch(headers, body)?.header, mismatch));
  }
  it('decodes only the base64 sentinel form', () => {
    assert.equal(decodeHeaderValue('=?base64?w6k=?='), 'é');
    assert.equal(decodeHeaderValue('plain'), 'plain');
  });
});

describe('--session-key', () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { clientInfo: { name: 'ide', version: '9' } } };
  it('parses each form and refuses others', () => {
    assert.deepEqual(parseSessionKey('header:X-Agent-Id'), { kind: 'header', name: 'x-agent-id' });
    assert.deepEqual(parseSessionKey('token'), { kind: 'token' });
    assert.equal(typeof parseSessionKey('header:'), 'string');
    assert.equal(typeof parseSessionKey('cookie'), 'string');
  });
  it('derives keys from the request', () => {
    const header = { kind: 'header', name: 'x-agent-id' } as const;
    assert.deepEqual(sessionKeyFor(header, req({ 'x-agent-id': 'a7' }), init, 'sid'), { ok: true, key: 'header:x-agent-id=a7' });
    assert.equal(sessionKeyFor(header, req({}), init, 'sid').ok, false);
    assert.deepEqual(sessionKeyFor({ kind: 'client-info' }, req({}), init, 'sid'), { ok: true, key: 'client:ide@9' });
    assert.deepEqual(sessionKeyFor({ kind: 'session' }, req({}), init, 'sid'), { ok: true, key: 'sid' });
    assert.deepEqual(sessionKeyFor({ kind: 'session' }, req({}), {}, undefined), { ok: true, key: 'shared' });
    const t1 = sessionKeyFor({ kind: 'session' }, req({ authorization: 'Bearer t1' }), {}, undefined);
    const t2 = sessionKeyFor({ kind: 'token' }, req({ authorization: 'Bearer t1' }), {}, 'sid');
    assert.ok(t1.ok && t2.ok && t1.key === t2.key && !t1.key.includes('t1'));
  });
});
