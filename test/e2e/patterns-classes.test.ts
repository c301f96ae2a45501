// Rules by name pattern and by risk class, end to end: the proxy in front of
// @modelcontextprotocol/server-everything with a short policy that governs its tools by
// pattern and class only, driven by the v1 SDK client. The proxy learns each tool's class from
// the server's own tools/list.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { assertDenied, assertNotDenied, textOf } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { connectV1, proxyParams, type Session } from '../support/sdk-clients.js';

const POLICY = `default: deny
hide: ["toggle-*"]
tools:
  "get-*": {rules: [{action: deny, reason: "getters are off"}]}
  "get-s*": {}
classes:
  read: {rules: [{action: allow, rate_limit: {max: 2, window: 60}}]}
  execute: {rules: [{action: deny, reason: "nothing runs"}]}
`;

describe('patterns and classes in front of server-everything (v1 client)', { timeout: 60_000 }, () => {
  let dir: TempDir;
  let proxy: Session<Client>;
  before(async () => {
    dir = await makeTempDir('intercept-classes-');
    proxy = await connectV1(proxyParams(await writePolicy(dir.path, POLICY), servers.everything()));
  });
  after(async () => {
    await proxy?.close();
    await dir?.cleanup();
  });

  it('lists what a pattern or a class with rules governs, minus hidden patterns', async () => {
    const names = (await proxy.client.listTools()).tools.map((t) => t.name);
    // Hidden by "toggle-*"; gzip-file-as-resource is a write tool and write has no entry.
    for (const gone of ['toggle-simulated-logging', 'toggle-subscriber-updates', 'gzip-file-as-resource']) assert.ok(!names.includes(gone), gone);
    for (const kept of ['echo', 'get-sum', 'get-env', 'trigger-long-running-operation']) assert.ok(names.includes(kept), kept);
  });

  it('a more specific pattern wins over a broader one', async () => {
    const sum = await proxy.client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
    assertNotDenied(sum);
    assert.match(textOf(sum), /5/);
    assertDenied(await proxy.client.callTool({ name: 'get-env', arguments: {} }), { kind: 'deny_rule', message: 'getters are off' });
  });

  it('a tool no key matches takes the rules of its class', async () => {
    assertNotDenied(await proxy.client.callTool({ name: 'echo', arguments: { message: 'a' } }));
    assertNotDenied(await proxy.client.callTool({ name: 'echo', arguments: { message: 'b' } }));
    assertDenied(await proxy.client.callTool({ name: 'echo', arguments: { message: 'c' } }), { kind: 'rate_limit', rule: 'class:read#1' });
    assertDenied(await proxy.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 1 } }), {
      kind: 'deny_rule',
      message: 'nothing runs',
    });
  });

  it('hidden patterns and unlisted classes are refused', async () => {
    assertDenied(await proxy.client.callTool({ name: 'toggle-simulated-logging', arguments: {} }), { kind: 'hidden' });
    assertDenied(await proxy.client.callTool({ name: 'gzip-file-as-resource', arguments: {} }), { kind: 'not_listed' });
    assertDenied(await proxy.client.callTool({ name: 'no-such-tool', arguments: {} }), { kind: 'not_listed' });
  });
});

describe('a class decided before the agent ever listed the tools', { timeout: 60_000 }, () => {
  let dir: TempDir;
  let proxy: Session<Client>;
  before(async () => {
    dir = await makeTempDir('intercept-classes-');
    proxy = await connectV1(proxyParams(await writePolicy(dir.path, POLICY), servers.everything()));
  });
  after(async () => {
    await proxy?.close();
    await dir?.cleanup();
  });

  it('the proxy lists the tools itself to learn the class', async () => {
    assertDenied(await proxy.client.callTool({ name: 'simulate-research-query', arguments: { topic: 'x' } }), { kind: 'deny_rule', message: 'nothing runs' });
    assert.ok(!proxy.wire.sent.some((m) => m.method === 'tools/list'), 'the client never listed');
  });
});
