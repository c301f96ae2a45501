// The audit trail as an operator meets it: server-everything behind the proxy (through a tee
// that logs what reaches it), the official SDK client as the agent, and the trail read straight
// from its files. Every decision and outcome is one tool_call record; the proxy's life, reloads
// and approvals are records too; `intercept audit verify` passes the trail as written and names
// each edited, deleted, inserted or reordered line; two proxies write side by side; --dry-run
// forwards what it would deny and says so.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { argumentsHash } from '../../src/approval/binding.js';
import { approvalsCli, callsReaching } from '../support/approvals-cli.js';
import { assertDenied, assertNotDenied, type Json } from '../support/messages.js';
import { teeCommand } from '../support/servers.js';
import { connectV1, proxyParams, type Session } from '../support/sdk-clients.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { intercept, toolCalls, trailFiles, trailRecords } from '../support/trail.js';
import { eventually } from '../support/wait.js';

const TIMEOUT = { timeout: 120_000 };

const POLICY = `version: "1"
default: allow
tools:
  get-env:
    rules:
      - name: "no environment"
        action: deny
        on_deny: "Not the environment"
  get-sum:
    rules:
      - name: "two sums"
        action: allow
        rate_limit: { max: 2, window: 3600 }
  get-tiny-image:
    rules:
      - name: "images need a yes"
        action: require_approval
        timeout: 60s
`;

let dir: TempDir;
before(async () => {
  dir = await makeTempDir('intercept-audit-');
});
after(async () => {
  await dir?.cleanup();
});

function proxyWith(policy: string, tee: string, flags: string[]): Promise<Session<Client>> {
  const [command, ...args] = teeCommand(tee);
  return connectV1(proxyParams(policy, { command: command!, args }, { flags }));
}

const byTool = (records: Json[], tool: string) => toolCalls(records).filter((r) => r.tool === tool);

describe('the audit trail of one proxy', TIMEOUT, () => {
  let events: string;
  let records: Json[];
  let policy: string;
  let stateDir: string;

  before(async () => {
    events = join(dir.path, 'events');
    stateDir = join(dir.path, 'state');
    policy = await writePolicy(dir.path, POLICY);
    const proxy = await proxyWith(policy, join(dir.path, 'one.log'), ['--events-dir', events, '--state-dir', stateDir]);
    try {
      const c = proxy.client;
      assertNotDenied(await c.callTool({ name: 'echo', arguments: { message: 'hello trail' } }));
      for (let i = 0; i < 3; i++) await c.callTool({ name: 'get-sum', arguments: { a: i, b: 1 } });
      assertDenied(await c.callTool({ name: 'get-env', arguments: {} }), { kind: 'deny_rule', rule: 'no environment' });
      // The server refuses arguments that do not fit the tool's schema: the tool ran and failed.
      await c.callTool({ name: 'get-sum', arguments: { a: 'x', b: 1 } }).catch(() => undefined);
      // An unknown tool reaches the server (default: allow), which answers with an error.
      await c.callTool({ name: 'no-such-tool', arguments: {} }).catch(() => undefined);
      // Cancelled by the client after it was forwarded.
      const abort = new AbortController();
      const long = c.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 } }, CallToolResultSchema, { signal: abort.signal });
      await eventually(async () => ((await callsReaching('trigger-long-running-operation', join(dir.path, 'one.log'))) > 0 ? true : undefined));
      abort.abort();
      await assert.rejects(long);
      // Held for approval and approved from another process.
      const cli = approvalsCli(policy, stateDir);
      const held = c.callTool({ name: 'get-tiny-image', arguments: {} });
      const request = await cli.requestFor('get-tiny-image', '');
      assert.equal((await cli.run('approve', String(request.id), '--events-dir', events, '--reason', 'fine')).code, 0);
      assertNotDenied(await held);
    } finally {
      await proxy.close();
    }
    records = await eventually(async () => {
      const all = await trailRecords(events);
      return all.some((r) => r.type === 'shutdown') ? all : undefined;
    });
  });

  it('opens with startup and ends with shutdown, naming the policy by its hash', async () => {
    const startup = records.find((r) => r.type === 'startup')!;
    const own = records.filter((r) => r.instance === startup.instance);
    assert.equal(own[0], startup);
    assert.equal(startup.type, 'startup');
    assert.equal(startup.policy, policy);
    assert.match(String(startup.policyHash), /^[0-9a-f]{64}$/);
    assert.equal(startup.transport, 'stdio');
    assert.equal(typeof startup.pid, 'number');
    assert.equal(own.at(-1)!.type, 'shutdown');
    assert.deepEqual(
      own.map((r) => r.seq),
      own.map((_, i) => i + 1),
    );
  });

  it('records each call once with its decision, kind, rule, timings and arguments hash, never the arguments', () => {
    const echo = byTool(records, 'echo');
    assert.equal(echo.length, 1);
    assert.equal(echo[0]!.decision, 'allow');
    assert.equal(echo[0]!.outcome, 'result');
    assert.equal(echo[0]!.argsHash, argumentsHash({ message: 'hello trail' }));
    assert.equal(echo[0]!.args, undefined);
    assert.ok(!JSON.stringify(records).includes('hello trail'), 'arguments are not stored without --log-args');
    assert.equal(typeof echo[0]!.decisionMs, 'number');
    assert.equal(typeof echo[0]!.upstreamMs, 'number');

    const sums = byTool(records, 'get-sum');
    assert.deepEqual(
      sums.map((r) => [r.decision, r.kind ?? null]),
      [
        ['allow', null],
        ['allow', null],
        ['deny', 'rate_limit'],
        ['deny', 'rate_limit'],
      ],
    );
    assert.equal(sums[2]!.rule, 'two sums');
    assert.equal(sums[2]!.upstreamMs, undefined);
    assert.ok(Array.isArray(sums[0]!.counters) && sums[0]!.counters.length === 1, JSON.stringify(sums[0]));
    assert.match(String((sums[0]!.counters as unknown[])[0]), /^get-sum\..+\+1$/);

    const env = byTool(records, 'get-env')[0]!;
    assert.deepEqual([env.decision, env.kind, env.rule, env.message], ['deny', 'deny_rule', 'no environment', 'Not the environment']);
    assert.equal(env.outcome, undefined);
  });

  it('records the real outcome of forwarded calls: a tool error, a JSON-RPC error, a cancellation', () => {
    const unknown = byTool(records, 'no-such-tool')[0]!;
    assert.equal(unknown.decision, 'allow');
    assert.ok(unknown.outcome === 'jsonrpc_error' || unknown.outcome === 'tool_error', `outcome ${String(unknown.outcome)}`);
    if (unknown.outcome === 'jsonrpc_error') assert.match(String(unknown.error), /no-such-tool|not found/i);
    const cancelled = byTool(records, 'trigger-long-running-operation')[0]!;
    assert.equal(cancelled.decision, 'allow');
    assert.equal(cancelled.outcome, 'cancelled');
  });

  it('records the approval: requested by the proxy, decided by the operator with their reason, used by the call', () => {
    const approvals = records.filter((r) => String(r.type).startsWith('approval_'));
    assert.deepEqual(
      approvals.map((r) => r.type),
      ['approval_requested', 'approval_decided', 'approval_used'],
    );
    const [requested, decided, used] = approvals as [Json, Json, Json];
    assert.equal(requested.id, decided.id);
    assert.equal(used.id, decided.id);
    assert.equal(decided.approved, true);
    assert.equal(decided.via, 'cli');
    assert.equal(decided.reason, 'fine');
    assert.notEqual(decided.instance, requested.instance, 'the decision is recorded by the process that made it');
    const call = byTool(records, 'get-tiny-image')[0]!;
    assert.equal(call.approval, decided.id);
    assert.equal(call.outcome, 'result');
  });

  it('passes `intercept audit verify` as written', async () => {
    const out = await intercept('audit', 'verify', '--events-dir', events);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.match(out.stdout, /^ok: \d+ record\(s\) in 2 file\(s\) from 2 process\(es\)/m);
  });

  describe('tampering', () => {
    /** A copy of the trail with the proxy's file changed by `edit` (on its lines). */
    async function tampered(name: string, edit: (lines: string[]) => string[]): Promise<string> {
      const copy = join(dir.path, `tampered-${name}`);
      await cp(events, copy, { recursive: true });
      const instance = String(records.find((r) => r.type === 'startup')!.instance);
      const file = join(copy, (await trailFiles(copy)).find((f) => f.includes(instance))!);
      const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
      await writeFile(file, edit(lines).join('\n') + '\n');
      return copy;
    }
    const lineOf = (needle: string) => {
      const instance = records.find((r) => r.type === 'startup')!.instance;
      return records.filter((r) => r.instance === instance).findIndex((r) => JSON.stringify(r).includes(needle));
    };

    it('names an edited line', async () => {
      const at = lineOf('"kind":"deny_rule"');
      const copy = await tampered('edit', (lines) => lines.map((l, i) => (i === at ? l.replace('"decision":"deny"', '"decision":"allow"') : l)));
      const out = await intercept('audit', 'verify', '--events-dir', copy);
      assert.equal(out.code, 1);
      assert.match(out.stdout, new RegExp(`:${at + 1}: the line was changed after it was written`));
    });

    it('names the place of a deleted line', async () => {
      const at = lineOf('"kind":"deny_rule"');
      const copy = await tampered('delete', (lines) => lines.filter((_, i) => i !== at));
      const out = await intercept('audit', 'verify', '--events-dir', copy);
      assert.equal(out.code, 1);
      assert.match(out.stdout, new RegExp(`:${at + 1}: does not follow line ${at}`));
    });

    it('names an inserted line', async () => {
      const copy = await tampered('insert', (lines) => [...lines.slice(0, 3), lines[1]!, ...lines.slice(3)]);
      const out = await intercept('audit', 'verify', '--events-dir', copy);
      assert.equal(out.code, 1);
      assert.match(out.stdout, /:4: does not follow line 3/);
    });

    it('names reordered lines', async () => {
      const copy = await tampered('swap', (lines) => [lines[0]!, lines[2]!, lines[1]!, ...lines.slice(3)]);
      const out = await intercept('audit', 'verify', '--events-dir', copy);
      assert.equal(out.code, 1);
      assert.match(out.stdout, /:2: does not follow line 1/);
    });

    it('names a line that is not JSON any more', async () => {
      const copy = await tampered('garbage', (lines) => [lines[0]!, 'not json at all', ...lines.slice(1)]);
      const out = await intercept('audit', 'verify', '--events-dir', copy);
      assert.equal(out.code, 1);
      assert.match(out.stdout, /:2: the line has no hash at its end/);
    });
  });
});

describe('reloads in the trail', TIMEOUT, () => {
  it('records a taken reload with the old and new policy hashes, and a rejected one', async () => {
    const events = join(dir.path, 'reload-events');
    const policy = await writePolicy(dir.path, POLICY, 'reload.yaml');
    const proxy = await proxyWith(policy, join(dir.path, 'reload.log'), ['--events-dir', events, '--state-dir', join(dir.path, 'reload-state')]);
    try {
      await writeFile(policy, POLICY.replace('Not the environment', 'Still not the environment'));
      await eventually(() => (/policy reloaded/.test(proxy.stderr()) ? true : undefined));
      await writeFile(policy, 'version: "1"\ntools:\n  echo:\n    rules:\n      - action: nonsense\n');
      await eventually(() => (/policy reload rejected/.test(proxy.stderr()) ? true : undefined));
    } finally {
      await proxy.close();
    }
    const records = await trailRecords(events);
    const startup = records.find((r) => r.type === 'startup')!;
    const reloads = records.filter((r) => r.type === 'config_reload');
    assert.equal(reloads.length, 2);
    const [taken, rejected] = reloads as [Json, Json];
    assert.equal(taken.ok, true);
    assert.equal(taken.oldHash, startup.policyHash);
    assert.notEqual(taken.newHash, taken.oldHash);
    assert.equal(rejected.ok, false);
    assert.equal(rejected.oldHash, taken.newHash, 'the policy in force stays the last good one');
    assert.match(String(rejected.error), /action/);
  });
});

describe('lock file reloads in the trail', TIMEOUT, () => {
  it('records a changed lock file, and not a save that changed nothing', async () => {
    const events = join(dir.path, 'lock-events');
    const lock = join(dir.path, 'reload.lock');
    const policy = await writePolicy(dir.path, POLICY, 'lock.yaml');
    const [command, ...args] = teeCommand(join(dir.path, 'lock-scan.log'));
    const scanned = await intercept('scan', '--lock', '-o', lock, '--', command!, ...args);
    assert.equal(scanned.code, 0, scanned.stderr);
    const proxy = await proxyWith(policy, join(dir.path, 'lock.log'), ['--events-dir', events, '--state-dir', join(dir.path, 'lock-state'), '--lock', lock]);
    try {
      const text = await readFile(lock, 'utf8');
      await writeFile(lock, text);
      // Time for the watcher to see the save (it reports nothing: that is what is checked below).
      await new Promise((r) => setTimeout(r, 1000));
      const pinned = JSON.parse(text) as { tools: Record<string, unknown> };
      delete pinned.tools.echo;
      await writeFile(lock, JSON.stringify(pinned, null, 2));
      await eventually(() => (/lock file reloaded/.test(proxy.stderr()) ? true : undefined));
    } finally {
      await proxy.close();
    }
    const reloads = (await trailRecords(events)).filter((r) => r.type === 'config_reload');
    assert.deepEqual(reloads.map((r) => [r.what, r.ok]), [['lock', true]]);
    assert.notEqual(reloads[0]!.oldHash, reloads[0]!.newHash);
  });
});

describe('two proxies on one events directory', TIMEOUT, () => {
  it('write a file each, interleaved in time, and both chains verify', async () => {
    const events = join(dir.path, 'shared-events');
    const policy = await writePolicy(dir.path, POLICY, 'shared.yaml');
    const flags = ['--events-dir', events, '--state-dir', join(dir.path, 'shared-state')];
    const proxies = await Promise.all(['a', 'b'].map((n) => proxyWith(policy, join(dir.path, `shared-${n}.log`), flags)));
    try {
      await Promise.all(proxies.flatMap((p, n) => Array.from({ length: 25 }, (_, i) => p.client.callTool({ name: 'echo', arguments: { message: `p${n} #${i}` } }))));
    } finally {
      await Promise.all(proxies.map((p) => p.close()));
    }
    const files = await trailFiles(events);
    assert.equal(files.length, 2);
    const records = await trailRecords(events);
    assert.equal(toolCalls(records).length, 50);
    const out = await intercept('audit', 'verify', '--events-dir', events);
    assert.equal(out.code, 0, out.stdout);
  });
});

describe('--dry-run', TIMEOUT, () => {
  it('forwards a call the policy denies, and records what it would have been', async () => {
    const events = join(dir.path, 'dry-events');
    const tee = join(dir.path, 'dry.log');
    const policy = await writePolicy(dir.path, POLICY, 'dry.yaml');
    const proxy = await proxyWith(policy, tee, ['--events-dir', events, '--state-dir', join(dir.path, 'dry-state'), '--dry-run']);
    try {
      assertNotDenied(await proxy.client.callTool({ name: 'get-env', arguments: {} }));
      assertNotDenied(await proxy.client.callTool({ name: 'get-tiny-image', arguments: {} }));
      await eventually(() => (/dry run: would deny; forwarded/.test(proxy.stderr()) ? true : undefined));
    } finally {
      await proxy.close();
    }
    assert.equal(await callsReaching('"get-env"', tee), 1);
    const records = await trailRecords(events);
    assert.equal(records.find((r) => r.type === 'startup')!.dryRun, true);
    const env = byTool(records, 'get-env')[0]!;
    assert.deepEqual([env.decision, env.dryRun, env.kind, env.rule, env.outcome], ['allow', true, 'deny_rule', 'no environment', 'result']);
    const image = byTool(records, 'get-tiny-image')[0]!;
    assert.deepEqual([image.decision, image.dryRun, image.kind], ['allow', true, 'approval_pending']);
    assert.equal(records.filter((r) => r.type === 'approval_requested').length, 0, 'a dry run asks nobody');
  });
});

describe('a held call nobody answers', TIMEOUT, () => {
  it('records the request, its expiry once, and the call denied as expired', async () => {
    const events = join(dir.path, 'expiry-events');
    const tee = join(dir.path, 'expiry.log');
    const policy = await writePolicy(dir.path, POLICY.replace('timeout: 60s', 'timeout: 1s'), 'expiry.yaml');
    const proxy = await proxyWith(policy, tee, ['--events-dir', events, '--state-dir', join(dir.path, 'expiry-state')]);
    try {
      assertDenied(await proxy.client.callTool({ name: 'get-tiny-image', arguments: {} }), { kind: 'approval_expired' });
    } finally {
      await proxy.close();
    }
    assert.equal(await callsReaching('"get-tiny-image"', tee), 0);
    const records = await trailRecords(events);
    const approvals = records.filter((r) => String(r.type).startsWith('approval_'));
    assert.deepEqual(approvals.map((r) => r.type), ['approval_requested', 'approval_expired']);
    assert.equal(approvals[0]!.id, approvals[1]!.id);
    const call = byTool(records, 'get-tiny-image')[0]!;
    assert.deepEqual([call.decision, call.kind, call.approval], ['deny', 'approval_expired', approvals[0]!.id]);
  });
});
