// `intercept status` and what it is built from: the summary of the trail (src/audit/summary.ts),
// counter usage read from a real store (src/audit/usage.ts), and runStatus (src/cli/status.ts)
// over files written by the real EventLog and stores opened as the proxy opens them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { openApprovalStore } from '../../src/approval/open.js';
import type { ProxyEvent } from '../../src/audit/event.js';
import { readTrail } from '../../src/audit/reader.js';
import { summarise, type StartupRecord } from '../../src/audit/summary.js';
import { counterUsage } from '../../src/audit/usage.js';
import { runStatus, type StatusReport } from '../../src/cli/status.js';
import { compile, type CompiledPolicy } from '../../src/engine/compile.js';
import type { ToolCall } from '../../src/engine/types.js';
import { silentLogger } from '../../src/log.js';
import { parsePolicy } from '../../src/policy/load.js';
import { storageKey } from '../../src/state/keys.js';
import { MemoryCounterStore } from '../../src/state/memory.js';
import { openCounterStore, policyNamespace } from '../../src/state/open.js';
import type { CounterStore } from '../../src/state/store.js';
import { makeTempDir, writePolicy } from '../support/temp.js';
import { approvalEvent, denial, startupEvent, toolCall, writeProxy } from '../support/trail-writer.js';

const MINUTE = 60_000;
/** 2026-01-10T12:00:00Z */
const T = Date.UTC(2026, 0, 10, 12, 0, 0);


/** runStatus's exit code and what it wrote. */
async function capture(run: () => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (err.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    const code = await run();
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  }
}

/** Charges a call's counters the way the gate does: read what the policy reads, decide, then
 * reserve every charge under storageKey(ref, session). */
async function charge(policy: CompiledPolicy, store: CounterStore, call: ToolCall, session: string, now: number): Promise<boolean> {
  const reads = policy.requirements(call).reads;
  const values = await store.read(reads.map((ref) => ({ key: storageKey(ref, session), window: ref.window })), now);
  const decision = policy.decide({ call, now, counters: new Map(reads.map((ref, i) => [ref.id, values[i]!])) });
  if (!decision.allowed) return false;
  const items = decision.charges.map((c) => ({ key: storageKey(c.ref, session), window: c.ref.window, amount: c.amount, limits: c.limits }));
  return (await store.reserve(items, now)).ok;
}

const POLICY = `
tools:
  create_issue:
    rules:
      - name: "hourly issue limit"
        rate_limit: 5/hour
  search:
    rules:
      - name: searches
        rate_limit: { max: 10, window: 30s }
  send_sms:
    rules:
      - action: allow
        rate_limit: { max: 3, window: 1h, key: [args.to] }
  "*":
    rules:
      - name: "daily budget"
        conditions:
          - path: state._global.units
            op: lt
            value: 1000
        state:
          counter: units
          window: day
          increment: 2.5
          scope: session
`;

function compiled(yaml = POLICY): CompiledPolicy {
  const loaded = parsePolicy(yaml, 'policy.yaml');
  assert.ok(loaded.ok, JSON.stringify(!loaded.ok && loaded.issues));
  return compile(loaded.policy);
}

describe('summarise', () => {
  it('counts calls, denials, outcomes, approvals and reloads, and tells running proxies from exited ones', async () => {
    const tmp = await makeTempDir('intercept-status-');
    try {
      const now = T + 30 * MINUTE;
      await writeProxy(tmp.path, 'ha-10-aaaaaa', [
        [T, startupEvent(10)],
        [T + 1 * MINUTE, toolCall('read_file')],
        [T + 2 * MINUTE, toolCall('read_file', { outcome: 'tool_error' })],
        [T + 3 * MINUTE, denial('delete_file', 'deny_rule', 'no deletes')],
        [T + 4 * MINUTE, denial('delete_file', 'deny_rule', 'no deletes')],
        [T + 5 * MINUTE, denial('shell', 'not_listed')],
        // Withdrawn before it was decided: neither allowed nor denied.
        [T + 5 * MINUTE, toolCall('pay', { decision: 'cancelled', outcome: 'cancelled', upstreamMs: undefined })],
        [T + 6 * MINUTE, toolCall('pay', { dryRun: true, kind: 'condition', rule: 'small amounts', message: 'args.amount must be lte 10, got 50' })],
        [T + 7 * MINUTE, approvalEvent('approval_requested', { mode: 'hold', scope: 'session', argsHash: 'c'.repeat(64), expiresAt: new Date(T + 12 * MINUTE).toISOString() })],
        [T + 8 * MINUTE, approvalEvent('approval_used')],
        [T + 9 * MINUTE, { type: 'config_reload', file: 'p.yaml', what: 'policy', oldHash: 'd'.repeat(64), newHash: 'e'.repeat(64), ok: true }],
        [T + 9 * MINUTE, { type: 'config_reload', file: 'p.yaml', what: 'policy', oldHash: 'e'.repeat(64), newHash: 'f'.repeat(64), ok: false, error: 'bad' }],
        [T + 10 * MINUTE, { type: 'state_unavailable', store: 'counters', error: 'ECONNREFUSED', failMode: 'closed' }],
        [T + 11 * MINUTE, { type: 'shutdown', code: 0 }],
      ]);
      await writeProxy(tmp.path, 'hb-20-bbbbbb', [
        [T + MINUTE, startupEvent(20)],
        // In the last 10 minutes before `now`: minute 5 of 10 (0-based 4), and the last one.
        [now - 5.5 * MINUTE, toolCall('search', { session: 's2', outcome: 'jsonrpc_error' })],
        [now - 5.5 * MINUTE, denial('search', 'rate_limit', 'searches', { session: 's2' })],
        [now - 0.5 * MINUTE, toolCall('search', { session: 's2' })],
      ]);
      // The approvals command records its decision in a file of its own: not a proxy.
      await writeProxy(tmp.path, 'cli-h-50-eeeeee', [[T + 8 * MINUTE, approvalEvent('approval_decided', { approved: true, by: 'ops', via: 'cli' })]]);
      await writeProxy(tmp.path, 'hc-30-cccccc', [[T + 2 * MINUTE, startupEvent(30, 'elsewhere')]]);
      await writeProxy(tmp.path, 'hd-40-dddddd', [[T + 3 * MINUTE, startupEvent(40)]]);
      const { records, problems } = await readTrail(tmp.path);
      assert.deepEqual(problems, []);

      const asked: number[] = [];
      const isRunning = (s: StartupRecord) => {
        asked.push(s.pid);
        return s.host === 'elsewhere' ? undefined : s.pid === 20;
      };
      const sum = summarise(records, { now, isRunning, recentDenials: 3, top: 2 });

      assert.deepEqual(sum.calls, { total: 10, allowed: 5, denied: 4, cancelled: 1, deniedShare: 4 / 10, dryRunWouldDeny: 1 });
      assert.deepEqual(sum.outcomes, { result: 3, tool_error: 1, jsonrpc_error: 1, input_required: 0, transport_failure: 0, timeout: 0, cancelled: 0 });
      assert.deepEqual(sum.topDeniedRules, [
        { name: 'no deletes', count: 2 },
        { name: '(not_listed)', count: 1 },
      ]);
      assert.deepEqual(sum.topDeniedTools, [
        { name: 'delete_file', count: 2 },
        { name: 'pay', count: 1 },
      ]);
      assert.deepEqual(
        sum.recentDenials.map((d) => [d.tool, d.kind, d.rule, d.instance, d.dryRun]),
        [
          ['search', 'rate_limit', 'searches', 'hb-20-bbbbbb', undefined],
          ['pay', 'condition', 'small amounts', 'ha-10-aaaaaa', true],
          ['shell', 'not_listed', undefined, 'ha-10-aaaaaa', undefined],
        ],
      );
      assert.equal(sum.recentDenials[0]!.session, 's2');
      assert.equal(sum.recentDenials[0]!.message, 'no search');
      assert.deepEqual(sum.approvals, { requested: 1, approved: 1, denied: 0, expired: 0, withdrawn: 0, used: 1 });
      assert.deepEqual(sum.reloads, { ok: 1, failed: 1 });
      assert.equal(sum.stateUnavailable, 1);
      assert.equal(sum.records, records.length);
      assert.equal(sum.since, new Date(T).toISOString());
      assert.equal(sum.until, new Date(now - 0.5 * MINUTE).toISOString());

      assert.equal(sum.callsPerMinute.minutes, 10);
      assert.deepEqual(sum.callsPerMinute.byMinute.map((m) => m.calls), [0, 0, 0, 0, 2, 0, 0, 0, 0, 1]);
      assert.deepEqual(sum.callsPerMinute.byMinute.map((m) => m.denied), [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
      assert.equal(sum.callsPerMinute.average, 0.3);
      assert.equal(sum.callsPerMinute.byMinute[0]!.start, new Date(now - 10 * MINUTE).toISOString());

      const byInstance = Object.fromEntries(sum.proxies.map((p) => [p.instance, p]));
      assert.equal(byInstance['ha-10-aaaaaa']!.state, 'exited');
      assert.equal(byInstance['ha-10-aaaaaa']!.endedAt, new Date(T + 11 * MINUTE).toISOString());
      assert.equal(byInstance['ha-10-aaaaaa']!.exitCode, 0);
      assert.equal(byInstance['ha-10-aaaaaa']!.calls, 7);
      assert.equal(byInstance['hb-20-bbbbbb']!.state, 'running');
      assert.equal(byInstance['hb-20-bbbbbb']!.calls, 3);
      assert.equal(byInstance['hc-30-cccccc']!.state, 'unknown');
      assert.equal(byInstance['hd-40-dddddd']!.state, 'exited');
      assert.equal(byInstance['hd-40-dddddd']!.endedAt, undefined);
      assert.deepEqual(
        { pid: byInstance['hb-20-bbbbbb']!.pid, host: byInstance['hb-20-bbbbbb']!.host, transport: byInstance['hb-20-bbbbbb']!.transport, upstream: byInstance['hb-20-bbbbbb']!.upstream, policy: byInstance['hb-20-bbbbbb']!.policy, startedAt: byInstance['hb-20-bbbbbb']!.startedAt },
        { pid: 20, host: 'h', transport: 'stdio', upstream: 'node server.js', policy: '/etc/p.yaml', startedAt: new Date(T + MINUTE).toISOString() },
      );
      // A proxy that announced its shutdown is not asked about.
      assert.deepEqual(asked.sort(), [20, 30, 40]);
      // Newest start first.
      assert.deepEqual(sum.proxies.map((p) => p.instance), ['hd-40-dddddd', 'hc-30-cccccc', 'hb-20-bbbbbb', 'ha-10-aaaaaa']);
    } finally {
      await tmp.cleanup();
    }
  });

  it('summarises no records as zeros', () => {
    const sum = summarise([], { now: T });
    assert.equal(sum.since, undefined);
    assert.deepEqual(sum.calls, { total: 0, allowed: 0, denied: 0, cancelled: 0, deniedShare: 0, dryRunWouldDeny: 0 });
    assert.deepEqual(sum.proxies, []);
    assert.equal(sum.callsPerMinute.average, 0);
  });
});

describe('counterUsage', () => {
  it('reads the counters the gate charged, global once and session ones per session, most used first', async () => {
    const policy = compiled();
    const store = new MemoryCounterStore();
    try {
      const now = T;
      for (let i = 0; i < 4; i++) assert.ok(await charge(policy, store, { name: 'create_issue', args: {} }, 's1', now));
      for (let i = 0; i < 6; i++) assert.ok(await charge(policy, store, { name: 'search', args: {} }, 's1', now));
      assert.ok(await charge(policy, store, { name: 'search', args: {} }, 's:2', now)); // a ':' is escaped in keys
      assert.ok(await charge(policy, store, { name: 'send_sms', args: { to: '+1555' } }, 's1', now));

      const usage = await counterUsage({ policy, store, prefix: '', sessions: ['s1', 's:2', 'idle'], now });
      assert.deepEqual(
        usage.map((u) => [u.counter, u.scope, u.session, u.value, u.max, u.window]),
        [
          ['create_issue._rate_hour', 'global', undefined, 4, 5, 'hour'],
          ['search._rate:searches', 'session', 's1', 6, 10, '30s'],
          ['search._rate:searches', 'session', 's:2', 1, 10, '30s'],
          ['_global.units', 'session', 's1', 27.5, 1000, 'day'],
          ['_global.units', 'session', 's:2', 2.5, 1000, 'day'],
          ['_global.units', 'session', 'idle', 0, 1000, 'day'],
          ['search._rate:searches', 'session', 'idle', 0, 10, '30s'],
        ],
      );
      assert.equal(usage[0]!.ratio, 0.8);
      assert.equal(usage[1]!.ratio, 0.6);
      // The keyed send_sms counter has no single value: it is not listed.
      assert.ok(!usage.some((u) => u.counter.startsWith('send_sms.')));

      // Past the hour, the calendar counter reads 0 again.
      const later = await counterUsage({ policy, store, prefix: '', now: T + 3600_000 });
      assert.deepEqual(later.map((u) => [u.counter, u.value]), [['create_issue._rate_hour', 0]]);
    } finally {
      await store.close();
    }
  });

  it('lets a failing store throw', async () => {
    const store = new MemoryCounterStore();
    await store.close();
    await assert.rejects(counterUsage({ policy: compiled(), store, prefix: '', now: T }));
  });
});

/** A pid that was a process a moment ago and is no more. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const pid = child.pid!;
  await once(child, 'exit');
  return pid;
}

describe('runStatus', () => {
  it('--json with -c: the trail\'s counts, the proxies\' states, pending approvals and counters, as the stores hold them', async () => {
    const tmp = await makeTempDir('intercept-status-');
    try {
      const events = tmp.file('events');
      const stateDir = tmp.file('state');
      const policyFile = await writePolicy(tmp.path, POLICY);
      const now = Date.now();
      const host = hostname();
      const gone = await deadPid();
      const written: [number, ProxyEvent][] = [
        [now - 20 * MINUTE, startupEvent(process.ppid, host)],
        [now - 19 * MINUTE, toolCall('create_issue', { session: 'alice' })],
        [now - 18 * MINUTE, denial('delete_repo', 'deny_rule', 'never delete', { session: 'alice' })],
        [now - 2 * MINUTE, toolCall('search', { session: 'bob' })],
      ];
      await writeProxy(events, 'here-1-aaaaaa', written);
      await writeProxy(events, 'here-2-bbbbbb', [
        [now - 15 * MINUTE, startupEvent(gone, host)],
        [now - 14 * MINUTE, denial('delete_repo', 'deny_rule', 'never delete', { session: 'carol' })],
      ]);
      await writeProxy(events, 'here-3-cccccc', [
        [now - 10 * MINUTE, startupEvent(process.ppid, host)],
        [now - 9 * MINUTE, { type: 'shutdown', code: 3 }],
      ]);
      // Older than --since: left out.
      await writeProxy(events, 'old-4-dddddd', [[now - 3 * 3600_000, toolCall('create_issue')]]);

      // The stores, as a proxy started with this policy file and --state-dir would have them.
      const prefix = policyNamespace(policyFile);
      const counters = (await openCounterStore({ stateDir, prefix, log: silentLogger })).store;
      const policy = compiled();
      for (let i = 0; i < 4; i++) assert.ok(await charge(policy, counters, { name: 'create_issue', args: {} }, 'alice', now));
      assert.ok(await charge(policy, counters, { name: 'search', args: {} }, 'bob', now));
      await counters.close();
      const approvals = (await openApprovalStore({ stateDir, prefix, log: silentLogger })).store;
      const pending = await approvals.create(
        { tool: 'pay', arguments: { amount: 5 }, argumentsHash: 'a'.repeat(64), rule: 'ask', ruleVersion: 'v', mode: 'hold', scope: 'session', session: 'alice', binding: 'b', onTimeout: 'deny', requestedAt: now - MINUTE, expiresAt: now + 4 * MINUTE },
        now - MINUTE,
      );
      await approvals.close();

      const run = await capture(() => runStatus({ eventsDir: events, since: '1h', json: true, config: policyFile, stateDir }));
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, '');
      const report = JSON.parse(run.stdout) as StatusReport;

      assert.deepEqual(report.calls, { total: 4, allowed: 2, denied: 2, cancelled: 0, deniedShare: 0.5, dryRunWouldDeny: 0 });
      assert.deepEqual(report.topDeniedRules, [{ name: 'never delete', count: 2 }]);
      assert.deepEqual(report.recentDenials.map((d) => d.session), ['carol', 'alice']);
      assert.equal(report.records, 8);
      assert.equal(report.eventsDir, events);
      const states = Object.fromEntries(report.proxies.map((p) => [p.instance, p.state]));
      assert.deepEqual(states, { 'here-1-aaaaaa': 'running', 'here-2-bbbbbb': 'exited', 'here-3-cccccc': 'exited' });
      assert.equal(report.proxies.find((p) => p.instance === 'here-3-cccccc')!.exitCode, 3);

      assert.deepEqual(report.pendingApprovals, [
        { id: pending.id, tool: 'pay', rule: 'ask', requestedAt: new Date(now - MINUTE).toISOString(), expiresAt: new Date(now + 4 * MINUTE).toISOString() },
      ]);
      const usage = Object.fromEntries(report.counters!.map((u) => [`${u.counter}/${u.session ?? ''}`, u.value]));
      // Sessions are those of the trail's calls (alice, bob, carol); all counters, near or not.
      assert.deepEqual(usage, {
        'create_issue._rate_hour/': 4,
        'search._rate:searches/bob': 1,
        'search._rate:searches/alice': 0,
        'search._rate:searches/carol': 0,
        '_global.units/alice': 10,
        '_global.units/bob': 2.5,
        '_global.units/carol': 0,
      });
    } finally {
      await tmp.cleanup();
    }
  });

  it('prints a readable report: tables, denial share, the note about -c; colour only when asked', async () => {
    const tmp = await makeTempDir('intercept-status-');
    try {
      const now = Date.now();
      await writeProxy(tmp.path, 'box-7-abcdef', [
        [now - 5 * MINUTE, startupEvent(12345, 'elsewhere')],
        [now - 4 * MINUTE, toolCall('read_file')],
        [now - 3 * MINUTE, denial('delete_file', 'deny_rule', 'no deletes')],
      ]);
      const plain = await capture(() => runStatus({ eventsDir: tmp.path, color: false }));
      assert.equal(plain.code, 0);
      const text = plain.stdout;
      assert.doesNotMatch(text, /\x1b\[/);
      for (const heading of ['Proxies', 'Calls', 'Calls per minute (the last 10 minutes)', 'Top denial rules', 'Top denied tools', 'Recent denials']) {
        assert.match(text, new RegExp(`^${heading.replace(/[()]/g, '\\$&')}$`, 'm'));
      }
      assert.match(text, /^ {2}7-abcdef +unknown +12345 +elsewhere +stdio /m);
      assert.match(text, /total 2 {3}allowed 1 {3}denied 1 \(50\.0% of calls\)/);
      assert.match(text, /^ {2}no deletes +1$/m);
      assert.match(text, /delete_file +deny_rule +no deletes +no delete_file$/m);
      assert.match(text, /give the proxy's policy file with -c/);

      const coloured = await capture(() => runStatus({ eventsDir: tmp.path, color: true }));
      assert.match(coloured.stdout, /\x1b\[1mProxies\x1b\[0m/);
      const json = await capture(() => runStatus({ eventsDir: tmp.path, color: true, json: true }));
      assert.doesNotMatch(json.stdout, /\x1b\[/);
    } finally {
      await tmp.cleanup();
    }
  });

  it('says plainly when there are no events, and exits 0', async () => {
    const tmp = await makeTempDir('intercept-status-');
    try {
      const run = await capture(() => runStatus({ eventsDir: tmp.file('none'), since: '30m', color: false }));
      assert.equal(run.code, 0);
      assert.match(run.stdout, new RegExp(`^no events in ${tmp.file('none').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} since \\d{4}-\\d{2}-\\d{2} `));
      assert.equal(run.stderr, '');
    } finally {
      await tmp.cleanup();
    }
  });

  it('refuses a bad --since with exit 2, and warns once about unreadable lines', async () => {
    const tmp = await makeTempDir('intercept-status-');
    try {
      const bad = await capture(() => runStatus({ eventsDir: tmp.path, since: 'yesterday' }));
      assert.equal(bad.code, 2);
      assert.equal(bad.stdout, '');
      assert.match(bad.stderr, /--since must be a duration.*"yesterday"/);

      const now = Date.now();
      await writeProxy(tmp.path, 'box-7-abcdef', [[now - MINUTE, toolCall('read_file')]]);
      const file = join(tmp.path, `${new Date(now - MINUTE).toISOString().slice(0, 10)}.box-7-abcdef.jsonl`);
      await appendFile(file, 'garbage\nmore garbage\n');
      const run = await capture(() => runStatus({ eventsDir: tmp.path, json: true }));
      assert.equal(run.code, 0);
      assert.equal(run.stderr.trim().split('\n').length, 1);
      assert.match(run.stderr, /skipped 2 unreadable line/);
      const report = JSON.parse(run.stdout) as StatusReport;
      assert.equal(report.calls.total, 1);
      assert.equal(report.unreadableLines, 2);
    } finally {
      await tmp.cleanup();
    }
  });

  it('with stores that cannot be opened: a warning, and the rest of the report', async () => {
    const tmp = await makeTempDir('intercept-status-');
    try {
      const now = Date.now();
      await writeProxy(tmp.file('events'), 'box-7-abcdef', [[now - MINUTE, toolCall('read_file')]]);
      const policyFile = await writePolicy(tmp.path, POLICY);
      // A file where the state directory should be: neither SQLite file can be opened.
      const notADir = tmp.file('state');
      await writeFile(notADir, 'not a directory');
      const run = await capture(() => runStatus({ eventsDir: tmp.file('events'), json: true, config: policyFile, stateDir: notADir }));
      assert.equal(run.code, 0);
      assert.match(run.stderr, /warning: cannot read the approval store/);
      assert.match(run.stderr, /warning: cannot read the counter store/);
      const report = JSON.parse(run.stdout) as StatusReport;
      assert.equal(report.calls.total, 1);
      assert.equal(report.pendingApprovals, undefined);
      assert.equal(report.counters, undefined);

      const text = await capture(() => runStatus({ eventsDir: tmp.file('events'), color: false, config: policyFile, stateDir: notADir }));
      assert.equal(text.code, 0);
      assert.match(text.stdout, /Pending approvals\n {2}the approval store could not be read/);
      assert.match(text.stdout, /Counters near their limits \(50% or more\)\n {2}the counter store could not be read/);
    } finally {
      await tmp.cleanup();
    }
  });
});
