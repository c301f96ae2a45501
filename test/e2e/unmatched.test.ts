// A policy that names tools the server does not offer, as its user finds out: the proxy warns
// on stderr and in the audit trail once it has seen the server's tools (and again for an edited
// policy), and `intercept validate` against the live server lists the same entries. Real
// servers: server-everything, and @twilio-alpha/mcp (a devDependency) with fake credentials,
// which lists its tools from the specs it ships, offline. Needs the build (dist/).
import assert from 'node:assert/strict';
import { rename, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { join } from 'node:path';
import { ROOT } from '../support/paths.js';
import { connectStreamableV1, startListener } from '../support/listener.js';
import { connectV1, proxyParams, type Session } from '../support/sdk-clients.js';
import { everythingCommand, servers, startEverything, type ServerCommand } from '../support/servers.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { intercept, trailRecords } from '../support/trail.js';
import { eventually } from '../support/wait.js';
import type { Json } from '../support/messages.js';

const TYPOS = `tools:
  echoo:
    rules: [{action: deny}]
  get_sum:
    rules: [{action: deny}]
  echo:
    rules: []
`;

/** The proxy's warning lines about entries that match no tool. */
const unmatchedLines = (stderr: string) => stderr.split('\n').filter((l) => l.includes(' WARN ') && l.includes('matches no tool the server offers'));

const unmatchedRecords = async (dir: string) => (await trailRecords(dir)).filter((r) => r.type === 'policy_unmatched');

/** The three Twilio examples of the seed catalogue pages (catalogue spelling). */
const SEED_TWILIO = join(ROOT, 'test', 'fixtures', 'policies', 'seed-twilio.yaml');
/** The server loads only its core API unless told which other specs to load. */
const TWILIO_SERVICES = ['twilio_conversations_v1', 'twilio_studio_v2'];

describe('the proxy warns about policy entries that match no tool', { timeout: 60_000 }, () => {
  let dir: TempDir;
  let policy: string;
  let proxy: Session<Client>;
  before(async () => {
    dir = await makeTempDir('intercept-unmatched-');
    policy = await writePolicy(dir.path, TYPOS);
    proxy = await connectV1(proxyParams(policy, servers.everything(), { flags: ['--events-dir', dir.file('events')] }));
  });
  after(async () => {
    await proxy?.close();
    await dir?.cleanup();
  });

  it('on stderr, one line per entry with its line and a did-you-mean, once the tools are listed', async () => {
    assert.deepEqual(unmatchedLines(proxy.stderr()), [], 'nothing is said before the tools are listed');
    await proxy.client.listTools();
    const lines = await eventually(() => {
      const found = unmatchedLines(proxy.stderr());
      return found.length >= 2 ? found : undefined;
    });
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.ok(lines[0]!.endsWith(`${policy}:2:3: tools.echoo matches no tool the server offers; did you mean "echo"?`), lines[0]);
    assert.ok(lines[1]!.endsWith(`${policy}:4:3: tools.get_sum matches no tool the server offers; did you mean "get-sum"?`), lines[1]);
  });

  it('in the audit trail, as policy_unmatched events', async () => {
    const records = await eventually(async () => {
      const found = await unmatchedRecords(dir.file('events'));
      return found.length >= 2 ? found : undefined;
    });
    assert.deepEqual(
      records.map((r) => [r.name, r.line, r.section, r.suggestion, r.file]),
      [
        ['echoo', 2, 'tools', 'echo', policy],
        ['get_sum', 4, 'tools', 'get-sum', policy],
      ],
    );
    const logs = await intercept('logs', '--events-dir', dir.file('events'), '--type', 'policy_unmatched');
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /tools\.echoo matches none of \d+ tools suggestion=echo/);
  });

  it('once per policy: listing again says nothing more', async () => {
    await proxy.client.listTools();
    // A denied call is logged after anything the listing made the proxy say.
    await proxy.client.callTool({ name: 'echoo', arguments: {} });
    await eventually(() => (proxy.stderr().includes(' INFO denied tool=echoo') ? true : undefined));
    assert.equal(unmatchedLines(proxy.stderr()).length, 2);
  });

  it('again for an edited policy, against the tools already listed', async () => {
    // Saved whole (written beside it, then renamed over it), so no half-written file is loaded.
    await writeFile(`${policy}.new`, `${TYPOS}  get_tiny_image:\n    rules: []\n`);
    await rename(`${policy}.new`, policy);
    const line = await eventually(() => unmatchedLines(proxy.stderr()).find((l) => l.includes('get_tiny_image')));
    assert.ok(line.endsWith(`${policy}:8:3: tools.get_tiny_image matches no tool the server offers; did you mean "get-tiny-image"?`), line);
    // The new policy names echoo and get_sum again: they are told again, for it.
    assert.equal(unmatchedLines(proxy.stderr()).length, 5);
  });
});

describe('the HTTP listener', { timeout: 60_000 }, () => {
  it('warns once for the proxy, not once per session', async () => {
    const dir = await makeTempDir('intercept-unmatched-http-');
    const listener = await startListener(await writePolicy(dir.path, TYPOS), servers.everything());
    try {
      for (let n = 1; n <= 2; n++) {
        const session = await connectStreamableV1(listener);
        await session.client.listTools();
        // A denied call is logged after anything the listing made the proxy say.
        await session.client.callTool({ name: 'echoo', arguments: {} });
        await eventually(() => (listener.stderr().split(' INFO denied ').length > n ? true : undefined));
        await session.close();
      }
      assert.equal(unmatchedLines(listener.stderr()).length, 2, listener.stderr());
    } finally {
      await listener.stop();
      await dir.cleanup();
    }
  });
});

describe('intercept validate against a live server', { timeout: 60_000 }, () => {
  let dir: TempDir;
  before(async () => {
    dir = await makeTempDir('intercept-unmatched-validate-');
  });
  after(async () => {
    await dir?.cleanup();
  });

  it('prints the entries that match no tool; --strict makes them fail', async () => {
    const policy = await writePolicy(dir.path, TYPOS);
    const plain = await intercept('validate', '-c', policy, '--', ...everythingCommand());
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /tools\.echoo matches no tool the server offers; did you mean "echo"\?/);
    assert.match(plain.stdout, /tools\.get_sum matches no tool the server offers; did you mean "get-sum"\?/);
    assert.match(plain.stdout, /2 entries match no tool of /);

    const strict = await intercept('validate', '-c', policy, '--strict', '--', ...everythingCommand());
    assert.equal(strict.code, 1, strict.stdout);

    const json = await intercept('validate', '-c', policy, '--strict', '--format', 'json', '--', ...everythingCommand());
    assert.equal(json.code, 1);
    const report = JSON.parse(json.stdout) as Json;
    assert.deepEqual(
      (report.unmatched as Json[]).map((u) => [u.name, u.line, u.suggestion]),
      [
        ['echoo', 2, 'echo'],
        ['get_sum', 4, 'get-sum'],
      ],
    );
  });

  it('reaches a remote server with --upstream', async () => {
    const remote = await startEverything('streamableHttp');
    try {
      const run = await intercept('validate', '-c', await writePolicy(dir.path, TYPOS, 'remote.yaml'), '--strict', '--upstream', `${remote.origin}/mcp`, '--header', 'X-Test: 1');
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stdout, /tools\.echoo matches no tool the server offers; did you mean "echo"\?/);
    } finally {
      await remote.stop();
    }
  });

  it('exits 0 under --strict when every entry matches a tool', async () => {
    const policy = await writePolicy(dir.path, 'tools:\n  echo: {rules: []}\n  "get-*": {rules: []}\nhide: [get-env]\n', 'good.yaml');
    const run = await intercept('validate', '-c', policy, '--strict', '--', ...everythingCommand());
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /Every entry matches a tool of /);
  });

  it('refuses --strict without a server, and a server given twice', async () => {
    const policy = await writePolicy(dir.path, TYPOS, 'usage.yaml');
    assert.equal((await intercept('validate', '-c', policy, '--strict')).code, 2);
    assert.equal((await intercept('validate', '-c', policy, '--upstream', 'http://127.0.0.1:9/mcp', '--', ...everythingCommand())).code, 2);
  });
});

describe('the seed Twilio policy in front of the real Twilio MCP server', { timeout: 120_000 }, () => {
  const twilio: ServerCommand = servers.twilio(TWILIO_SERVICES);
  // The catalogue names, and the server's tools they mean.
  const MEANT: Record<string, string> = {
    create_conversation: 'TwilioConversationsV1--CreateConversation',
    send_conversation_message: 'TwilioConversationsV1--CreateConversationMessage',
    create_execution: 'TwilioStudioV2--CreateExecution',
  };
  let dir: TempDir;
  let proxy: Session<Client>;
  let offered: string[];
  before(async () => {
    dir = await makeTempDir('intercept-unmatched-twilio-');
    proxy = await connectV1(proxyParams(SEED_TWILIO, twilio, { flags: ['--events-dir', dir.file('events')] }));
    offered = (await proxy.client.listTools()).tools.map((t) => t.name);
  });
  after(async () => {
    await proxy?.close();
    await dir?.cleanup();
  });

  it('the server offers none of the catalogue names, and every tool they mean', () => {
    assert.ok(offered.length > 100, `${offered.length} tools`);
    for (const [name, meant] of Object.entries(MEANT)) {
      assert.ok(!offered.includes(name), name);
      assert.ok(offered.includes(meant), meant);
    }
  });

  it('warns about every name, each with the tool it means', async () => {
    const records = await eventually(async () => {
      const found = await unmatchedRecords(dir.file('events'));
      return found.length >= 3 ? found : undefined;
    });
    assert.deepEqual(Object.fromEntries(records.map((r) => [r.name, r.suggestion])), MEANT);
    assert.ok(records.every((r) => r.tools === offered.length));
    // The log and the trail are written apart: each is waited for.
    const lines = await eventually(() => {
      const found = unmatchedLines(proxy.stderr());
      return found.length >= 3 ? found : undefined;
    });
    assert.equal(lines.length, 3, lines.join('\n'));
    for (const [name, meant] of Object.entries(MEANT)) assert.ok(lines.some((l) => l.includes(`tools.${name} matches no tool the server offers; did you mean "${meant}"?`)), name);
  });

  it('the catalogue policy written by scan matches every tool of the default server', async () => {
    const run = await intercept('validate', '-c', join(ROOT, 'policies', 'twilio.yaml'), '--strict', '--', servers.twilio().command, ...servers.twilio().args);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /Every entry matches a tool of twilio-server/);
  });

  it('intercept validate says the same', async () => {
    const run = await intercept('validate', '-c', SEED_TWILIO, '--format', 'json', '--', twilio.command, ...twilio.args);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as Json;
    assert.equal((report.server as Json).tools, offered.length);
    assert.deepEqual(Object.fromEntries((report.unmatched as Json[]).map((u) => [u.name, u.suggestion])), MEANT);
  });
});
