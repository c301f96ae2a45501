// Pinning a remote server: `intercept scan --lock --upstream URL` pins server-everything over
// Streamable HTTP and over the legacy HTTP+SSE transport with the same digests as over stdio,
// and records the URL without its query; `intercept lock --upstream URL` says nothing changed,
// names a tool whose pinned digest differs (exit 1) and accepts it with --update; the proxy in
// front of the same URL with `--lock` hides and refuses that tool. `--header` reaches the
// server, and a bad or unreachable URL is a clear error. Needs the build (dist/).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { assertDenied, assertNotDenied, textOf } from '../support/messages.js';
import { connectV1, upstreamParams, type Session } from '../support/sdk-clients.js';
import { everythingCommand, startEverything, startRecorder, type HttpServer, type Recorder } from '../support/servers.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { intercept } from '../support/trail.js';
import { freePort } from '../support/wait.js';

interface LockFile {
  lockVersion: number;
  server: { name: string; version: string; url?: string };
  pinnedAt: string;
  tools: Record<string, { sha256: string; fields: Record<string, string> }>;
}

const readLock = async (file: string) => JSON.parse(await readFile(file, 'utf8')) as LockFile;

/** The lock as if the server had changed `echo`'s description since it was pinned. */
async function tamperEcho(from: string, to: string): Promise<void> {
  const lock = await readLock(from);
  const fake = 'sha256:' + '0'.repeat(64);
  lock.tools.echo = { sha256: fake, fields: { ...lock.tools.echo!.fields, description: fake } };
  await writeFile(to, JSON.stringify(lock, null, 2) + '\n');
}

describe('pinning a remote server', { timeout: 180_000 }, () => {
  let dir: TempDir;
  let streamable: HttpServer;
  let sse: HttpServer;
  /** What `scan --lock -- <command>` pins for server-everything over stdio. */
  let stdioLock: LockFile;
  const endpoints = () => [
    { label: 'Streamable HTTP', url: `${streamable.origin}/mcp`, flags: [] as string[] },
    { label: 'HTTP+SSE', url: `${sse.origin}/sse`, flags: ['--upstream-transport', 'sse'] },
  ];

  before(async () => {
    dir = await makeTempDir('intercept-lock-remote-');
    [streamable, sse] = await Promise.all([startEverything('streamableHttp'), startEverything('sse')]);
    const out = await intercept('scan', '--lock', '-o', dir.file('stdio.lock'), '--', ...everythingCommand());
    assert.equal(out.code, 0, out.stderr);
    stdioLock = await readLock(dir.file('stdio.lock'));
    assert.ok(Object.keys(stdioLock.tools).includes('echo'), 'server-everything offers echo');
  });
  after(async () => {
    await Promise.all([streamable?.stop(), sse?.stop()]);
    await dir?.cleanup();
  });

  it('scan --lock --upstream pins the definitions stdio pins, and records the URL without its query', async () => {
    for (const { label, url, flags } of endpoints()) {
      const file = dir.file(`${label}.lock`);
      const out = await intercept('scan', '--lock', '-o', file, '--upstream', `${url}?key=query-secret-1`, ...flags);
      assert.equal(out.code, 0, `${label}: ${out.stderr}`);
      assert.match(out.stderr, new RegExp(`pinned ${Object.keys(stdioLock.tools).length} tools of ${stdioLock.server.name}`), label);
      const lock = await readLock(file);
      assert.deepEqual(lock.tools, stdioLock.tools, label);
      assert.deepEqual(lock.server, { ...stdioLock.server, url }, label);
      assert.doesNotMatch(await readFile(file, 'utf8'), /query-secret-1/, label);
    }
  });

  it('lock --upstream: exit 0 when nothing changed', async () => {
    for (const { label, url, flags } of endpoints()) {
      const out = await intercept('lock', '--lock', dir.file(`${label}.lock`), '--upstream', url, ...flags);
      assert.equal(out.code, 0, `${label}: ${out.stderr}`);
      assert.equal(out.stdout, '', label);
      assert.match(out.stderr, /no changes: the \d+ tools of .* match /, label);
    }
  });

  it('lock --upstream against a lock pinned from another URL says so', async () => {
    const out = await intercept('lock', '--lock', dir.file('Streamable HTTP.lock'), '--upstream', `${sse.origin}/sse`);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, new RegExp(`was pinned from ${streamable.origin}/mcp`));
  });

  it('lock --upstream names a tool whose definition differs (exit 1) and leaves the file alone', async () => {
    for (const { label, url, flags } of endpoints()) {
      const file = dir.file(`${label}-changed.lock`);
      await tamperEcho(dir.file(`${label}.lock`), file);
      const before = await readFile(file, 'utf8');
      const out = await intercept('lock', '--lock', file, '--upstream', url, ...flags);
      assert.equal(out.code, 1, `${label}: ${out.stderr}`);
      assert.equal(out.stdout, 'changed  echo (description)\n', label);
      assert.match(out.stderr, /run intercept lock --update to accept them/, label);
      assert.equal(await readFile(file, 'utf8'), before, label);
    }
  });

  it('lock --update --upstream rewrites the file with the current definitions', async () => {
    for (const { label, url, flags } of endpoints()) {
      const file = dir.file(`${label}-update.lock`);
      await tamperEcho(dir.file(`${label}.lock`), file);
      const out = await intercept('lock', '--update', '--lock', file, '--upstream', url, ...flags);
      assert.equal(out.code, 0, `${label}: ${out.stderr}`);
      assert.equal(out.stdout, 'changed  echo (description)\n', label);
      assert.match(out.stderr, /updated /, label);
      const lock = await readLock(file);
      assert.deepEqual(lock.tools, stdioLock.tools, label);
      assert.equal(lock.server.url, url, label);
      const again = await intercept('lock', '--lock', file, '--upstream', url, ...flags);
      assert.equal(again.code, 0, `${label}: ${again.stderr}`);
    }
  });

  describe('the proxy in front of the URL with --lock', () => {
    const sessions: Session<Client>[] = [];
    after(async () => {
      await Promise.all(sessions.map((s) => s.close()));
    });

    it('serves the pinned tools and hides and refuses the one whose definition differs', async () => {
      const policy = await writePolicy(dir.path, 'default: allow\n');
      for (const { label, url, flags } of endpoints()) {
        const file = dir.file(`${label}-proxy.lock`);
        await tamperEcho(dir.file(`${label}.lock`), file);
        const proxy = await connectV1(upstreamParams(policy, url, { flags: ['--lock', file, ...flags] }));
        sessions.push(proxy);
        const names = (await proxy.client.listTools()).tools.map((t) => t.name).sort();
        assert.deepEqual(names, Object.keys(stdioLock.tools).filter((n) => n !== 'echo'), label);
        assertDenied(await proxy.client.callTool({ name: 'echo', arguments: { message: 'hi' } }), {
          kind: 'unpinned',
          message: `Tool "echo" changed since it was pinned in ${file} (description); run intercept lock --update to accept it`,
        });
        const sum = await proxy.client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
        assertNotDenied(sum);
        assert.match(textOf(sum), /5/, label);
      }
    });

    it('serves every tool of the lock scan --lock --upstream wrote', async () => {
      const policy = await writePolicy(dir.path, 'default: allow\n', 'all.yaml');
      const { url, flags } = endpoints()[0]!;
      const proxy = await connectV1(upstreamParams(policy, url, { flags: ['--lock', dir.file('Streamable HTTP.lock'), ...flags] }));
      sessions.push(proxy);
      assert.deepEqual((await proxy.client.listTools()).tools.map((t) => t.name).sort(), Object.keys(stdioLock.tools));
      const echo = await proxy.client.callTool({ name: 'echo', arguments: { message: 'pinned' } });
      assertNotDenied(echo);
      assert.match(textOf(echo), /pinned/);
    });
  });

  describe('--header', () => {
    let recorder: Recorder;
    before(async () => {
      recorder = await startRecorder(streamable.origin);
    });
    after(async () => {
      await recorder?.stop();
    });

    it('reaches the server on every request of scan --lock and lock, and stays out of the file', async () => {
      const file = dir.file('header.lock');
      const header = ['--header', 'Authorization: Bearer lock-secret-9'];
      const scan = await intercept('scan', '--lock', '-o', file, '--upstream', recorder.url('/mcp'), ...header);
      assert.equal(scan.code, 0, scan.stderr);
      const check = await intercept('lock', '--lock', file, '--upstream', recorder.url('/mcp'), ...header);
      assert.equal(check.code, 0, check.stderr);
      assert.equal(recorder.methods().filter((m) => m === 'initialize').length, 2, 'two runs, two sessions');
      assert.ok(recorder.methods().includes('tools/list'));
      for (const e of recorder.exchanges) assert.equal(e.headers.authorization, 'Bearer lock-secret-9', `${e.method} ${e.path}`);
      assert.doesNotMatch(await readFile(file, 'utf8'), /lock-secret-9/);
    });
  });

  describe('errors', () => {
    const usage: { label: string; args: string[]; message: RegExp }[] = [
      { label: 'a URL that is not one', args: ['--upstream', 'not a url'], message: /--upstream must be an http:\/\/ or https:\/\/ URL, got "not a url"/ },
      { label: 'a URL of another scheme', args: ['--upstream', 'ftp://127.0.0.1/mcp'], message: /--upstream must be an http:\/\/ or https:\/\/ URL/ },
      { label: 'credentials in the URL', args: ['--upstream', 'http://me:pw@127.0.0.1:9/mcp'], message: /--upstream cannot carry credentials .*--header "Authorization/ },
      { label: 'both a command and --upstream', args: ['--upstream', 'http://127.0.0.1:9/mcp', '--', 'node', 'x.js'], message: /cannot (scan|lock) both a server command/ },
      { label: '--header without --upstream', args: ['--header', 'A: b', '--', 'node', 'x.js'], message: /--header requires --upstream/ },
      { label: 'a malformed --header', args: ['--upstream', 'http://127.0.0.1:9/mcp', '--header', 'no colon'], message: /--header must look like "Name: Value"/ },
    ];
    for (const { label, args, message } of usage) {
      it(`${label}: exit 2 from scan --lock and from lock`, async () => {
        const [flags, tail] = args.includes('--') ? [args.slice(0, args.indexOf('--')), args.slice(args.indexOf('--'))] : [args, []];
        for (const command of [['scan', '--lock', '-o', dir.file('never.lock')], ['lock', '--lock', dir.file('stdio.lock')]]) {
          const out = await intercept(...command, ...flags, ...tail);
          assert.equal(out.code, 2, `${command[0]}: ${out.stderr}`);
          assert.match(out.stderr, message, command[0]);
        }
        await assert.rejects(readFile(dir.file('never.lock')), 'no lock file is written');
      });
    }

    it('nothing listening at the URL: exit 1, "cannot reach", the lock file untouched', async () => {
      const url = `http://127.0.0.1:${await freePort()}/mcp`;
      const scan = await intercept('scan', '--lock', '-o', dir.file('never.lock'), '--upstream', url);
      assert.equal(scan.code, 1, scan.stderr);
      assert.match(scan.stderr, new RegExp(`cannot reach ${url.replace(/[.]/g, '\\.')}`));
      await assert.rejects(readFile(dir.file('never.lock')));

      const file = dir.file('Streamable HTTP.lock');
      const before = await readFile(file, 'utf8');
      const update = await intercept('lock', '--update', '--lock', file, '--upstream', url);
      assert.equal(update.code, 1, update.stderr);
      assert.match(update.stderr, /cannot reach/);
      assert.equal(await readFile(file, 'utf8'), before);
    });

    it('no lock file to compare with: exit 1, saying how to make one for the URL', async () => {
      const out = await intercept('lock', '--lock', dir.file('missing.lock'), '--upstream', `${streamable.origin}/mcp`);
      assert.equal(out.code, 1, out.stderr);
      assert.match(out.stderr, /cannot read the lock file .*missing\.lock.*intercept scan --lock -o .*missing\.lock --upstream <url>/);
    });
  });
});
