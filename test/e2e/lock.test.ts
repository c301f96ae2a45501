// Tool pinning end to end: `intercept scan --lock` pins a server's tools; the proxy run with
// `--lock` serves them while they stay as pinned; when the server changes a tool's description
// and adds a tool mid-session (and says so with notifications/tools/list_changed), both vanish
// from tools/list and calls to them are refused; `intercept lock` reports the change and
// `intercept lock --update` accepts it, which the running proxy picks up.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { INTERCEPT_BIN, ROOT } from '../support/paths.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { DEFAULT_TIMEOUT_MS, waitUntil } from '../support/wait.js';
import { assertDenied, assertNotDenied, textOf } from '../support/messages.js';
import type { ServerCommand } from '../support/servers.js';
import { connectV1, proxyParams, type Session } from '../support/sdk-clients.js';

const run = promisify(execFile);
const TIMEOUT = { timeout: 90_000 };

const mutating: ServerCommand = {
  command: process.execPath,
  args: ['--import', 'tsx', join(ROOT, 'test', 'fixtures', 'mutating-server.ts')],
};

async function intercept(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [INTERCEPT_BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function toolNames(client: Client): Promise<string[]> {
  return (await client.listTools()).tools.map((t) => t.name).sort();
}

describe('tool pinning against a server whose tools change while it runs', TIMEOUT, () => {
  let dir: TempDir;
  let lockFile: string;
  let proxy: Session<Client>;
  let listChanged = 0;

  before(async () => {
    dir = await makeTempDir('intercept-lock-');
    lockFile = join(dir.path, 'intercept.lock');
  });
  after(async () => {
    await proxy?.close();
    await dir?.cleanup();
  });

  it('scan --lock pins every tool of the server', async () => {
    const out = await intercept(['scan', '--lock', '-o', lockFile, '--', mutating.command, ...mutating.args]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /pinned 3 tools of mutating-server 1\.0\.0/);
    const lock = JSON.parse(await readFile(lockFile, 'utf8'));
    assert.equal(lock.lockVersion, 1);
    assert.deepEqual(lock.server, { name: 'mutating-server', version: '1.0.0' });
    assert.deepEqual(Object.keys(lock.tools), ['echo', 'get_time', 'mutate']);
    assert.match(lock.tools.echo.sha256, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(Object.keys(lock.tools.echo.fields), ['name', 'description', 'inputSchema']);
    assert.ok(!Number.isNaN(Date.parse(lock.pinnedAt)));
  });

  it('serves the pinned tools as they are', async () => {
    const policy = await writePolicy(dir.path, 'default: allow\n');
    proxy = await connectV1(proxyParams(policy, mutating, { flags: ['--lock', lockFile] }), {
      setup: (client) => client.setNotificationHandler(ToolListChangedNotificationSchema, () => void listChanged++),
    });
    assert.deepEqual(await toolNames(proxy.client), ['echo', 'get_time', 'mutate']);
    const result = await proxy.client.callTool({ name: 'echo', arguments: { message: 'hi' } });
    assertNotDenied(result);
    assert.equal(textOf(result), 'echo: hi');
  });

  it('hides and refuses a tool whose description changed, and a tool that appeared', async () => {
    assertNotDenied(await proxy.client.callTool({ name: 'mutate', arguments: {} }));
    await waitUntil(async () => listChanged > 0, DEFAULT_TIMEOUT_MS, 'notifications/tools/list_changed');
    assert.deepEqual(await toolNames(proxy.client), ['get_time', 'mutate']);

    for (let i = 0; i < 2; i++) {
      assertDenied(await proxy.client.callTool({ name: 'echo', arguments: { message: 'hi' } }), {
        kind: 'unpinned',
        message: `Tool "echo" changed since it was pinned in ${lockFile} (description); run intercept lock --update to accept it`,
      });
    }
    assertDenied(await proxy.client.callTool({ name: 'exfiltrate', arguments: { data: 'x' } }), {
      kind: 'unpinned',
      message: `Tool "exfiltrate" is not pinned in ${lockFile}; run intercept lock --update to accept it`,
    });
    assertNotDenied(await proxy.client.callTool({ name: 'get_time', arguments: {} }));
    // Logged once per changed definition, not per list or call.
    const warnings = proxy.stderr().split('\n').filter((l) => l.includes('tool hidden by the lock file: Tool "echo" changed'));
    assert.equal(warnings.length, 1, proxy.stderr());
  });

  it('lock reports the change and refuses to accept it without --update', async () => {
    const out = await intercept(['lock', '--lock', lockFile, '--', mutating.command, ...mutating.args], { MUTATED: '1' });
    assert.equal(out.code, 1, out.stderr);
    assert.deepEqual(out.stdout.trim().split('\n'), ['added    exfiltrate', 'changed  echo (description)']);
    const lock = JSON.parse(await readFile(lockFile, 'utf8'));
    assert.deepEqual(Object.keys(lock.tools), ['echo', 'get_time', 'mutate']);
  });

  it('lock --update accepts the current definitions, and the running proxy follows', async () => {
    const out = await intercept(['lock', '--update', '--lock', lockFile, '--', mutating.command, ...mutating.args], { MUTATED: '1' });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /updated /);
    const lock = JSON.parse(await readFile(lockFile, 'utf8'));
    assert.deepEqual(Object.keys(lock.tools), ['echo', 'exfiltrate', 'get_time', 'mutate']);

    await waitUntil(async () => (await toolNames(proxy.client)).includes('echo'), DEFAULT_TIMEOUT_MS, 'echo to be offered again');
    assert.deepEqual(await toolNames(proxy.client), ['echo', 'exfiltrate', 'get_time', 'mutate']);
    const result = await proxy.client.callTool({ name: 'echo', arguments: { message: 'again' } });
    assertNotDenied(result);
    assert.equal(textOf(result), 'echo: again');

    const again = await intercept(['lock', '--lock', lockFile, '--', mutating.command, ...mutating.args], { MUTATED: '1' });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /no changes/);
  });

  it('refuses to start with a lock file that cannot be read', async () => {
    const policy = await writePolicy(dir.path, 'default: allow\n', 'other.yaml');
    const out = await intercept(['-c', policy, '--lock', join(dir.path, 'missing.lock'), '--', mutating.command, ...mutating.args]);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /cannot read the lock file .*missing\.lock.*; not starting/);
  });
});
