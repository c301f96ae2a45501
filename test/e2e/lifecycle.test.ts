// The proxy as a process: exit status, signals, stdin EOF, what goes to stdout and stderr,
// and how the command line refuses what it cannot do. Needs the build (dist/).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EVERYTHING_SERVER, ROOT } from '../support/paths.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { isRecord } from '../support/messages.js';
import { runIntercept, startProxy, type RawProxy } from '../support/raw-proxy.js';

const POLICY = `version: "1"
default: allow
tools:
  get-tiny-image:
    rules:
      - name: no images
        action: deny
`;

let tmp: TempDir;
let policy: string;
const node = process.execPath;

before(async () => {
  tmp = await makeTempDir();
  policy = await writePolicy(tmp.path, POLICY);
});
after(async () => {
  await tmp?.cleanup();
});

/** Starts the proxy; the test must end it. */
function proxyFor(command: string[], flags: string[] = []): RawProxy {
  return startProxy(['-c', policy, ...flags, '--', ...command]);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('exit status', { timeout: 60_000 }, () => {
  const cases: Array<[string, string, number]> = [
    ['the child exits 0', 'process.exit(0)', 0],
    ["the child's own status", 'process.exit(3)', 3],
    ['a high status', 'process.exit(255)', 255],
    ['a child killed by SIGKILL: 128+9', "process.kill(process.pid, 'SIGKILL')", 137],
    ['a child killed by SIGTERM: 128+15', "process.kill(process.pid, 'SIGTERM')", 143],
  ];
  for (const [label, script, code] of cases) {
    it(`exits with ${code} when ${label}`, async () => {
      const run = await runIntercept(['-c', policy, '--', node, '-e', script]);
      assert.equal(run.code, code, run.stderr);
      assert.equal(run.stdout, '', 'nothing on stdout');
    });
  }

  it('exits 127 with a clear message when the command does not exist', async () => {
    const run = await runIntercept(['-c', policy, '--', 'intercept-no-such-command', '--flag']);
    assert.equal(run.code, 127);
    assert.match(run.stderr, /intercept-no-such-command/);
    assert.match(run.stderr, /command not found/);
    assert.equal(run.stdout, '');
  });

  it('exits 126 when the command is not executable', async () => {
    const script = join(tmp.path, 'not-executable.sh');
    await writeFile(script, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const run = await runIntercept(['-c', policy, '--', script]);
    assert.equal(run.code, 126, run.stderr);
    assert.match(run.stderr, /permission denied/);
  });

  it('passes the arguments after -- to the server untouched, even ones that look like our flags', async () => {
    const script = join(tmp.path, 'args.mjs');
    await writeFile(script, 'process.exit(process.argv.slice(2).join(" ") === "-c validate --help -- --upstream x" ? 5 : 6);\n');
    const run = await runIntercept(['-c', policy, '--', node, script, '-c', 'validate', '--help', '--', '--upstream', 'x']);
    assert.equal(run.code, 5, run.stderr);
  });
});

describe('stdin, signals and shutdown', { timeout: 60_000 }, () => {
  it('closing its stdin closes the server (which exits by itself) and the proxy exits with its status', async () => {
    const pidFile = join(tmp.path, 'eof.pid');
    const script = `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));
      process.stdin.resume();
      process.stdin.on('end', () => process.exit(4));`;
    const proxy = proxyFor([node, '-e', script]);
    const pid = await waitForPid(pidFile);
    proxy.child.stdin.end();
    const exit = await proxy.waitForExit();
    assert.equal(exit.code, 4, proxy.stderr);
    assert.ok(!isAlive(pid), 'the server is gone');
  });

  it('a server that ignores stdin EOF is sent SIGTERM after the grace period', async () => {
    const pidFile = join(tmp.path, 'stubborn.pid');
    const script = `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));
      process.stdin.resume();
      process.on('SIGTERM', () => { console.error('server: SIGTERM'); process.exit(9); });
      setInterval(() => {}, 1000);`;
    const proxy = proxyFor([node, '-e', script]);
    const pid = await waitForPid(pidFile);
    proxy.child.stdin.end();
    const exit = await proxy.waitForExit(20_000);
    assert.equal(exit.code, 9, proxy.stderr);
    assert.match(proxy.stderr, /server: SIGTERM/);
    assert.ok(!isAlive(pid));
  });

  it('closing stdin in front of a real MCP server ends both cleanly', async () => {
    const proxy = proxyFor([node, EVERYTHING_SERVER, 'stdio']);
    await proxy.initialize();
    const exit = await proxy.close();
    assert.equal(exit.code, 0, proxy.stderr);
  });

  for (const [signal, status] of [
    ['SIGTERM', 7],
    ['SIGINT', 8],
  ] as const) {
    it(`forwards ${signal} to the server and exits with the server's status`, async () => {
      const script = `process.on(${JSON.stringify(signal)}, () => { console.error('server: got ${signal}'); process.exit(${status}); });
        process.stdin.resume();
        console.error('server: ready');`;
      const proxy = proxyFor([node, '-e', script]);
      await proxy.waitForStderr(/server: ready/);
      proxy.child.kill(signal);
      const exit = await proxy.waitForExit();
      assert.equal(exit.code, status, proxy.stderr);
      assert.match(proxy.stderr, new RegExp(`server: got ${signal}`));
    });
  }

  it('SIGTERM to the proxy ends a server that does not handle it: 128+15', async () => {
    const script = `process.stdin.resume(); console.error('server: ready');`;
    const proxy = proxyFor([node, '-e', script]);
    await proxy.waitForStderr(/server: ready/);
    proxy.child.kill('SIGTERM');
    const exit = await proxy.waitForExit();
    assert.equal(exit.code, 143, proxy.stderr);
  });
});

describe('stdout is the protocol, stderr the log', { timeout: 60_000 }, () => {
  it('writes only JSON-RPC lines to stdout, even when the server prints a banner there; logs go to stderr', async () => {
    // The everything server, preceded by a line of plain text on its stdout.
    const script = `console.log('Welcome to the server!'); await import(${JSON.stringify(pathToFileURL(EVERYTHING_SERVER).href)});`;
    const proxy = proxyFor([node, '--input-type=module', '-e', script], ['--log-level', 'debug']);
    await proxy.initialize();
    const allowed = await proxy.callTool('echo', { message: 'hi' });
    assert.match(JSON.stringify(allowed.result), /Echo: hi/);
    const denied = await proxy.callTool('get-tiny-image');
    assert.match(JSON.stringify(denied.result), /INTERCEPT POLICY DENIED/);
    proxy.send('not json');
    await proxy.response(null);
    const exit = await proxy.close();
    assert.equal(exit.code, 0, proxy.stderr);

    assert.ok(proxy.stdoutLines.length >= 4);
    for (const line of proxy.stdoutLines) {
      const value = JSON.parse(line) as unknown;
      assert.ok(isRecord(value) && value.jsonrpc === '2.0', `not a JSON-RPC message on stdout: ${line}`);
    }
    assert.ok(!proxy.stdoutLines.some((l) => l.includes('Welcome')), 'the banner is not relayed');
    assert.match(proxy.stderr, /intercept INFO starting/);
    assert.match(proxy.stderr, /intercept INFO denied tool=get-tiny-image/);
    assert.match(proxy.stderr, /intercept WARN/);
  });
});

describe('a policy that does not load', { timeout: 60_000 }, () => {
  const BAD = `version: "1"
default: maybe
tools:
  echo:
    rules:
      - name: r1
        conditions:
          - path: args.x
            op: lessthan
            value: 3
      - name: r2
        action: evaluate
`;

  it('exits 1 without starting the server, with every error as file:line:col on stderr', async () => {
    const file = await writePolicy(tmp.path, BAD, 'bad.yaml');
    const marker = join(tmp.path, 'server-started');
    const run = await runIntercept(['-c', file, '--', node, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, '')`]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stdout, '');
    assert.ok(!existsSync(marker), 'the server was not started');
    const located = run.stderr.split('\n').filter((l) => l.startsWith(`${file}:`));
    assert.deepEqual(
      located.map((l) => /^.*?:(\d+:\d+): /.exec(l)?.[1]),
      ['2:10', '9:17', '11:9'],
      run.stderr,
    );
    assert.match(located[0]!, /default must be "allow" or "deny", got "maybe"/);
    assert.match(located[1]!, /unknown operator "lessthan"/);
    assert.match(located[2]!, /evaluate rules must have at least one condition/);
    assert.match(run.stderr, /3 error\(s\)/);
  });

  it('exits 1 when the policy file cannot be read', async () => {
    const run = await runIntercept(['-c', join(tmp.path, 'missing.yaml'), '--', node, '-e', '']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /missing\.yaml/);
  });

  it('exits 1 on YAML that does not parse, pointing at the line', async () => {
    const file = await writePolicy(tmp.path, 'tools:\n  echo:\n    rules: [\n', 'broken.yaml');
    const run = await runIntercept(['-c', file, '--', node, '-e', '']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`${escape(file)}:\\d+:\\d+: `));
  });
});

describe('usage errors exit 2', { timeout: 60_000 }, () => {
  const cases: Array<[string, () => string[], RegExp]> = [
    ['no policy file', () => ['--', node, '-e', ''], /policy file is required/],
    ['--header without --upstream', () => ['-c', policy, '--header', 'Authorization: Bearer x', '--', node, '-e', ''], /--header requires --upstream/],
    ['both a command and --upstream', () => ['-c', policy, '--upstream', 'http://127.0.0.1:1/mcp', '--', node, '-e', ''], /cannot specify both/],
    ['neither a command nor --upstream', () => ['-c', policy], /specify either a server command/],
    ['an empty command after --', () => ['-c', policy, '--'], /specify either a server command/],
    ['--bind with stdio', () => ['-c', policy, '--bind', '0.0.0.0', '--', node, '-e', ''], /--bind, --port.* require --transport http/],
    ['--port with stdio', () => ['-c', policy, '--port', '8080', '--', node, '-e', ''], /--bind, --port.* require --transport http/],
    ['a bad --state-fail-mode', () => ['-c', policy, '--state-fail-mode', 'maybe', '--', node, '-e', ''], /state-fail-mode.*maybe/],
    ['a bad --log-level', () => ['-c', policy, '--log-level', 'loud', '--', node, '-e', ''], /log-level.*loud/],
    ['a bad --transport', () => ['-c', policy, '--transport', 'carrier-pigeon', '--', node, '-e', ''], /transport.*carrier-pigeon/],
    ['a bad --max-message-size', () => ['-c', policy, '--max-message-size', 'lots', '--', node, '-e', ''], /--max-message-size/],
    ['--state-dir with --state-dsn', () => ['-c', policy, '--state-dir', tmp.path, '--state-dsn', 'redis://127.0.0.1:1', '--', node, '-e', ''], /cannot be used together/],
    ['a --state-dsn of an unknown kind', () => ['-c', policy, '--state-dsn', 'postgres://127.0.0.1/x', '--', node, '-e', ''], /--state-dsn must be redis:/],
    ['an unknown flag', () => ['-c', policy, '--no-such-flag', '--', node, '-e', ''], /unknown option/],
  ];
  for (const [label, args, message] of cases) {
    it(label, async () => {
      const run = await runIntercept(args());
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.equal(run.stdout, '');
    });
  }
});

describe('help', { timeout: 60_000 }, () => {
  it('intercept --help lists every flag of the command line and exits 0', async () => {
    const run = await runIntercept(['--help']);
    assert.equal(run.code, 0, run.stderr);
    for (const flag of ['-c', '--config', '--upstream', '--header', '--transport', '--bind', '--port', '--state-dir', '--state-dsn', '--state-prefix', '--state-fail-mode', '--log-level']) {
      assert.match(run.stdout, new RegExp(`(^|[\\s,])${escape(flag)}\\b`), `--help does not mention ${flag}`);
    }
    for (const command of ['validate', 'explain', 'scan', 'status']) {
      assert.match(run.stdout, new RegExp(`^\\s+${command}\\b`, 'm'), `--help does not list ${command}`);
    }
  });

  it('intercept with no arguments prints the help and exits 0', async () => {
    const run = await runIntercept([]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /--config/);
  });

  it('intercept --version prints the version', async () => {
    const run = await runIntercept(['--version']);
    assert.equal(run.code, 0);
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(run.stdout.trim(), pkg.version);
  });
});

// ------------------------------------------------------------------ helpers

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function waitForPid(file: string, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text !== '') return Number(text);
    if (Date.now() > deadline) throw new Error(`the server did not write ${file}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
