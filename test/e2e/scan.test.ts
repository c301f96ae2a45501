// `intercept scan` as a user runs it, against real MCP servers from npm. Needs the build (dist/).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { connectV1, directParams, INTERCEPT_BIN, makeTempDir, ROOT, servers, type ServerCommand, type TempDir } from './helpers.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function intercept(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [INTERCEPT_BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

/** What the official SDK client sees when it lists the server's tools itself. */
async function directToolNames(server: ServerCommand): Promise<string[]> {
  const session = await connectV1(directParams(server));
  try {
    const names: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await session.client.listTools(cursor === undefined ? {} : { cursor });
      names.push(...page.tools.map((t) => t.name));
      cursor = page.nextCursor;
    } while (cursor);
    return names.sort();
  } finally {
    await session.close();
  }
}

function policyToolNames(yamlText: string): string[] {
  return Object.keys((parse(yamlText) as { tools: Record<string, unknown> }).tools).sort();
}

let tmp: TempDir;
before(async () => {
  tmp = await makeTempDir('intercept-scan-');
});
after(async () => {
  await tmp.cleanup();
});

describe('intercept scan against real servers', () => {
  const cases: { label: string; server: () => ServerCommand }[] = [
    { label: 'everything', server: () => servers.everything() },
    { label: 'filesystem', server: () => servers.filesystem(tmp.path) },
    { label: 'memory', server: () => servers.memory(tmp.file('memory.jsonl')) },
  ];
  for (const { label, server } of cases) {
    it(`${label}: lists every tool the server has, as a policy that validates`, async () => {
      const cmd = server();
      const run = await intercept(['scan', '--', cmd.command, ...cmd.args], cmd.env);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(policyToolNames(run.stdout), await directToolNames(cmd));
      assert.match(run.stderr, /starting/);
      assert.match(run.stderr, /connected to \S+ \S+/);
      assert.match(run.stderr, /\d+ tools/);

      const file = tmp.file(`${label}/nested/policy.yaml`);
      const written = await intercept(['scan', '--recommended', '-o', file, '--', cmd.command, ...cmd.args], cmd.env);
      assert.equal(written.code, 0, written.stderr);
      assert.equal(written.stdout, '');
      const text = await readFile(file, 'utf8');
      assert.deepEqual(policyToolNames(text), policyToolNames(run.stdout));
      const validate = await intercept(['validate', '-c', file]);
      assert.equal(validate.code, 0, validate.stdout + validate.stderr);
      assert.match(validate.stdout, /Policy file is valid/);
    });
  }

  it('--format json lists every tool with its classification', async () => {
    const cmd = servers.memory(tmp.file('memory-json.jsonl'));
    const run = await intercept(['scan', '--format', 'json', '--', cmd.command, ...cmd.args], cmd.env);
    assert.equal(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout) as { server: { name: string }; tools: { name: string; category: string; recommended: { rules: unknown[] } }[] };
    assert.equal(doc.server.name, 'memory-server');
    assert.deepEqual(doc.tools.map((t) => t.name).sort(), await directToolNames(cmd));
    const byName = new Map(doc.tools.map((t) => [t.name, t]));
    assert.equal(byName.get('delete_entities')?.category, 'destructive');
    assert.equal(byName.get('read_graph')?.category, 'read');
    assert.equal(byName.get('create_entities')?.category, 'write');
  });
});

describe('intercept scan failures', () => {
  it('a command that does not exist: exit 1, naming it', async () => {
    const run = await intercept(['scan', '--', 'no-such-mcp-server-xyz', '--arg']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /command not found: no-such-mcp-server-xyz/);
    assert.equal(run.stdout, '');
  });

  it('a server that exits early: exit 1, naming the command', async () => {
    const run = await intercept(['scan', '--', process.execPath, '-e', 'console.error("boom: no token"); process.exit(3)']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /exited before completing the MCP handshake/);
    assert.match(run.stderr, /boom: no token/);
  });

  it('a server that never answers: --timeout 1s gives up with "timed out"', async () => {
    const run = await intercept(['scan', '--timeout', '1s', '--', process.execPath, '-e', 'setInterval(() => {}, 1e9)']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /timed out after 1s/);
    assert.match(run.stderr, /setInterval/);
    assert.ok(run.ms < 15_000, `took ${run.ms} ms`);
  });

  it('--upstream is not available yet: exit 2', async () => {
    const run = await intercept(['scan', '--upstream', 'https://example.com/mcp']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /intercept scan --upstream is not available in this version yet/);
  });

  it('no command: exit 2 with usage', async () => {
    const run = await intercept(['scan']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /needs the server command after "--"/);
  });

  it('a bad --timeout: exit 2', async () => {
    const run = await intercept(['scan', '--timeout', 'soon', '--', 'x']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--timeout/);
  });
});
