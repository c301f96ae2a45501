// The 2026-07-28 era end to end: the v2 client pinned to 2026-07-28, the proxy, and the v2
// fixture server (test/fixtures/modern-server.ts). No handshake: every request carries its own
// `_meta`, denials carry `resultType: "complete"`, and the proxy's own tools/list must carry
// the `_meta` the server requires. The same server in the 2025 era closes the file.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/client';
import { fixturePolicy } from '../support/paths.js';
import { assertDenied, assertNotDenied, MODERN, textOf } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { connectV2, proxyParams, type Session } from '../support/sdk-clients.js';

const PROTOCOL_VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';
const TIMEOUT = { timeout: 60_000 };

function connectModern(): Promise<Session<Client>> {
  return connectV2(proxyParams(fixturePolicy('modern.yaml'), servers.modern()), { versionNegotiation: { mode: { pin: MODERN } } });
}

/** The calls the fixture server has executed, one `<tool> <arguments JSON>` per line. */
async function seen(session: Session<Client>): Promise<string[]> {
  const text = textOf(await session.client.callTool({ name: 'seen', arguments: {} }));
  return text === '' ? [] : text.split('\n');
}

/** Asserts the session really runs in the 2026-07-28 era, so no test can pass in the old one. */
function assertModern(session: Session<Client>): void {
  assert.equal(session.client.getProtocolEra(), 'modern');
  assert.equal(session.client.getNegotiatedProtocolVersion(), MODERN);
  const methods = session.wire.methodsSent();
  assert.ok(!methods.includes('initialize'), `an initialize was sent: ${methods.join(',')}`);
  for (const m of session.wire.sent.filter((m) => m.method === 'tools/call')) {
    assert.equal((m.params?._meta as Record<string, unknown> | undefined)?.[PROTOCOL_VERSION_KEY], MODERN);
  }
}

describe('the 2026-07-28 era through the proxy (v2 client pinned)', TIMEOUT, () => {
  let proxy: Session<Client>;
  before(async () => {
    proxy = await connectModern();
  });
  after(async () => {
    await proxy?.close();
  });
  const call = (name: string, args: Record<string, unknown> = {}) => proxy.client.callTool({ name, arguments: args });

  it('is the modern era, not a fallback to the 2025 handshake', async () => {
    await call('seen');
    assertModern(proxy);
  });

  it("returns the server's result for an allowed call", async () => {
    const result = await call('add', { a: 2, b: 40 });
    assertNotDenied(result);
    assert.equal(textOf(result), '2 + 40 = 42');
    assert.equal(proxy.wire.responseToLastCall('add')?.result?.resultType, 'complete');
  });

  it('denies a call with a complete result carrying the denial, and the server never runs it', async () => {
    assertDenied(await call('delete_all'), { kind: 'deny_rule', rule: 'never delete', message: 'Deleting everything is not allowed' });
    const raw = proxy.wire.responseToLastCall('delete_all');
    assert.equal(raw?.result?.resultType, 'complete');
    assert.equal(raw?.result?.isError, true);
    assert.ok(!(await seen(proxy)).some((line) => line.startsWith('delete_all')));
  });

  it('removes a hidden tool from tools/list and denies calling it', async () => {
    const names = (await proxy.client.listTools()).tools.map((t) => t.name);
    assert.deepEqual(names.sort(), ['add', 'delete_all', 'echo', 'seen']);
    assertDenied(await call('secret_admin'), { kind: 'hidden', message: 'Tool "secret_admin" is hidden by policy' });
    assert.equal(proxy.wire.responseToLastCall('secret_admin')?.result?.resultType, 'complete');
    assert.ok(!(await seen(proxy)).some((line) => line.startsWith('secret_admin')));
  });

  it('rate-limits, counting a call the server ran and reported as isError', async () => {
    // Two echoes an hour. A message of the wrong type runs and comes back isError.
    const failed = await call('echo', { message: 42 });
    assertNotDenied(failed);
    assert.equal(failed.isError, true);
    assert.equal(textOf(await call('echo', { message: 'second' })), 'Echo: second');
    const denial = assertDenied(await call('echo', { message: 'third' }), {
      kind: 'rate_limit',
      rule: 'echo#1',
      message: /^Rate limit of 2 calls per hour reached for "echo"; try again in \d+ seconds?\.$/,
    });
    // At most an hour and one 1-minute sub-window (src/state/rolling.ts).
    assert.ok(denial.retryAfterSeconds !== undefined && denial.retryAfterSeconds > 0 && denial.retryAfterSeconds <= 3660);
    assert.equal(proxy.wire.responseToLastCall('echo')?.result?.resultType, 'complete');
    assert.ok(!(await seen(proxy)).includes('echo {"message":"third"}'));
  });

  it('gives the charge back when the server answers with a JSON-RPC error', async () => {
    // One call an hour to a tool the server does not have: each call fails upstream with
    // -32602, so none uses the allowance up and none is denied by the proxy.
    for (let i = 0; i < 3; i++) {
      await assert.rejects(call('ghost'), (err: { code?: number; message?: string }) => err.code === -32602 && /ghost/.test(String(err.message)));
    }
  });
});

describe('required arguments in the 2026-07-28 era when the client never listed tools', TIMEOUT, () => {
  let proxy: Session<Client>;
  before(async () => {
    proxy = await connectModern();
  });
  after(async () => {
    await proxy?.close();
  });
  const call = (name: string, args: Record<string, unknown> = {}) => proxy.client.callTool({ name, arguments: args });

  it('denies a call missing a required argument, using a tools/list the proxy made itself', async () => {
    const denial = assertDenied(await call('add', { a: 1 }), {
      kind: 'missing_args',
      rule: 'both operands',
      message: 'Missing required argument "b" for tool "add"',
    });
    assert.deepEqual(denial.detail.missing, ['b']);
    assert.equal(proxy.wire.responseToLastCall('add')?.result?.resultType, 'complete');
  });

  it('passes the call with every required argument, and only that one reaches the server', async () => {
    assert.equal(textOf(await call('add', { a: 1, b: 2 })), '1 + 2 = 3');
    assert.deepEqual(await seen(proxy), ['add {"a":1,"b":2}']);
  });

  it("keeps the proxy's own request out of the client's sight", () => {
    assertModern(proxy);
    assert.ok(!proxy.wire.methodsSent().includes('tools/list'), proxy.wire.methodsSent().join(','));
    assert.deepEqual(proxy.wire.strayResponses(), []);
  });
});

describe('the same server in the 2025 era (v2 client, default negotiation)', TIMEOUT, () => {
  let proxy: Session<Client>;
  before(async () => {
    proxy = await connectV2(proxyParams(fixturePolicy('modern.yaml'), servers.modern()));
  });
  after(async () => {
    await proxy?.close();
  });
  const call = (name: string, args: Record<string, unknown> = {}) => proxy.client.callTool({ name, arguments: args });

  it('negotiates a 2025 revision with initialize', () => {
    assert.equal(proxy.client.getProtocolEra(), 'legacy');
    assert.ok(proxy.wire.methodsSent().includes('initialize'));
  });

  it('enforces the same policy, with denials that carry no resultType', async () => {
    assert.equal(textOf(await call('add', { a: 3, b: 4 })), '3 + 4 = 7');
    assertDenied(await call('delete_all'), { kind: 'deny_rule', rule: 'never delete' });
    const raw = proxy.wire.responseToLastCall('delete_all');
    assert.equal(raw?.result?.isError, true);
    assert.equal(raw?.result && 'resultType' in raw.result, false);
    assertDenied(await call('add', { b: 4 }), { kind: 'missing_args', message: 'Missing required argument "a" for tool "add"' });
    const names = (await proxy.client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('add') && !names.includes('secret_admin'), names.join(','));
  });
});
