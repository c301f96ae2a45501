// A short policy governing the real Twilio MCP server's 197 tools by name pattern and risk class,
// in front of `npx @twilio-alpha/mcp` started with fake credentials. Only denials and tools/list
// are checked: an allowed call would reach Twilio's API. The server is a devDependency.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { assertDenied } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { connectV1, proxyParams, type Session } from '../support/sdk-clients.js';

const POLICY = `default: deny
hide: ["*--Delete*"]
tools:
  "TwilioApiV2010--Update*": {rules: [{action: deny, reason: "no updates"}]}
classes: {read: {}, write: {rules: [{action: deny, reason: "writes need a person"}]}}
`;

describe('patterns and classes in front of the Twilio MCP server', { timeout: 120_000 }, () => {
  let dir: TempDir;
  let proxy: Session<Client>;
  before(async () => {
    dir = await makeTempDir('intercept-twilio-');
    proxy = await connectV1(proxyParams(await writePolicy(dir.path, POLICY), servers.twilio()));
  });
  after(async () => {
    await proxy?.close();
    await dir?.cleanup();
  });

  it('lists read and write tools, not the deletes (hidden) nor the financial ones (no entry)', async () => {
    const names = (await proxy.client.listTools()).tools.map((t) => t.name);
    assert.ok(!names.some((n) => n.includes('--Delete')));
    for (const kept of ['TwilioApiV2010--FetchCall', 'TwilioApiV2010--CreateMessage', 'TwilioApiV2010--UpdateCall']) assert.ok(names.includes(kept), kept);
    // 197 tools: 32 deletes hidden; of the 3 financial ones, one is an Update* (its pattern
    // governs it, so it is offered) and two have no entry.
    assert.equal(names.length, 197 - 32 - 2);
  });

  it('decides by hide pattern, then tool pattern, then class', async () => {
    assertDenied(await proxy.client.callTool({ name: 'TwilioApiV2010--DeleteCall', arguments: { Sid: 'CA1' } }), { kind: 'hidden' });
    assertDenied(await proxy.client.callTool({ name: 'TwilioApiV2010--UpdateCall', arguments: { Sid: 'CA1' } }), { kind: 'deny_rule', message: 'no updates' });
    assertDenied(await proxy.client.callTool({ name: 'TwilioApiV2010--CreateMessage', arguments: { To: '+15550000000' } }), {
      kind: 'deny_rule',
      message: 'writes need a person',
    });
  });
});
