// A short policy governing the real Twilio MCP server's 197 tools by name pattern and risk class,
// in front of `npx @twilio-alpha/mcp` started with fake credentials. Only denials and tools/list
// are checked: an allowed call would reach Twilio's API. Skipped when the package is not in the
// npm cache (the test does not download it).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { assertDenied, connectV1, makeTempDir, proxyParams, writePolicy, type ServerCommand, type Session, type TempDir } from './helpers.js';

const POLICY = `default: deny
hide: ["*--Delete*"]
tools:
  "TwilioApiV2010--Update*": {rules: [{action: deny, reason: "no updates"}]}
classes: {read: {}, write: {rules: [{action: deny, reason: "writes need a person"}]}}
`;

// The proxy runs with a fresh HOME, so point npx at the user's npm cache.
const npmCache = execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
const twilio: ServerCommand = {
  command: 'npx',
  args: ['--offline', '-y', '@twilio-alpha/mcp', `AC${'0'.repeat(32)}/SK${'0'.repeat(32)}:not-a-secret`],
  env: { npm_config_cache: npmCache },
};

function cached(): boolean {
  try {
    execFileSync('npx', ['--offline', '-y', '-p', '@twilio-alpha/mcp', 'node', '-e', ''], { stdio: 'pipe', timeout: 60_000 });
    return true;
  } catch {
    return false;
  }
}

describe('patterns and classes in front of the Twilio MCP server', { timeout: 120_000, skip: cached() ? false : '@twilio-alpha/mcp is not in the npm cache' }, () => {
  let dir: TempDir;
  let proxy: Session<Client>;
  before(async () => {
    dir = await makeTempDir('intercept-twilio-');
    proxy = await connectV1(proxyParams(await writePolicy(dir.path, POLICY), twilio));
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
