// `intercept logs` (src/cli/logs.ts): runLogs over trails written by the real EventLog into a
// temporary directory, its stdout and stderr captured in this process. What a user sees: the
// merged order of several proxies, --json as stored, the filters, --since, the notes and
// warnings on stderr, the text format, and --follow picking up what proxies append.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '../../src/audit/chain.js';
import type { AuditRecord } from '../../src/audit/event.js';
import { EventLog } from '../../src/audit/writer.js';
import { formatRecord, localTime, runLogs, shortInstance } from '../../src/cli/logs.js';
import { silentLogger } from '../../src/log.js';
import { makeTempDir } from '../support/temp.js';
import { approvalEvent, capture, captureOutput, denial, startupEvent, toolCall, writeProxy } from '../support/trail-writer.js';
import { eventually, waitUntil } from '../support/wait.js';

const MINUTE = 60_000;

/** The trail's lines, file by file, as stored. */
async function storedLines(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const text = await readFile(join(dir, name), 'utf8');
    out.push(...text.split('\n').filter((l) => l !== ''));
  }
  return out;
}

/** Output lines (without the final newline). */
const linesOf = (text: string): string[] => (text === '' ? [] : text.replace(/\n$/, '').split('\n'));

/** What --json printed, as records. */
const parsed = (stdout: string) => linesOf(stdout).map((l) => JSON.parse(l) as AuditRecord & Record<string, unknown>);

/** A record's label for comparing what was kept: its tool (or its type), and what it was. */
const label = (r: AuditRecord): string => {
  if (r.type === 'tool_call') return `${r.tool}:${r.dryRun ? 'dry-run' : r.decision}`;
  if ('tool' in r) return `${r.type}:${r.tool}`;
  return r.type;
};

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('intercept logs', () => {
  it('shows the records of two proxies in one directory merged in time order, one line each', async () => {
    const tmp = await makeTempDir('intercept-logs-');
    try {
      const now = Date.now();
      await writeProxy(tmp.path, 'hosta-1-aaaaaa', [
        [now - 10 * MINUTE, toolCall('a1')],
        [now - 7 * MINUTE, toolCall('a2')],
        [now - 3 * MINUTE, toolCall('a3')],
      ]);
      await writeProxy(tmp.path, 'hostb-2-bbbbbb', [
        [now - 9 * MINUTE, toolCall('b1')],
        [now - 5 * MINUTE, denial('b2', 'deny_rule', 'no')],
        [now - 1 * MINUTE, toolCall('b3')],
      ]);
      assert.equal((await readdir(tmp.path)).length >= 2, true);

      const run = await capture(() => runLogs({ eventsDir: tmp.path }));
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, '');
      const lines = linesOf(run.stdout);
      assert.equal(lines.length, 6);
      assert.deepEqual(lines.map((l) => /(?:ALLOW|DENY) +(\S+)/.exec(l)?.[1]), ['a1', 'b1', 'a2', 'b2', 'a3', 'b3']);
      // Each line names its proxy by pid and suffix, and starts with its local time.
      assert.deepEqual(lines.map((l) => / (\d-[a-z]{6}) /.exec(l)?.[1]), ['1-aaaaaa', '2-bbbbbb', '1-aaaaaa', '2-bbbbbb', '1-aaaaaa', '2-bbbbbb']);
      const offsets = [10, 9, 7, 5, 3, 1];
      lines.forEach((l, i) => assert.ok(l.startsWith(`${localTime(new Date(now - offsets[i]! * MINUTE).toISOString())}  `), l));
    } finally {
      await tmp.cleanup();
    }
  });

  it('--json prints each record exactly as stored, one per line, in time order, and nothing else', async () => {
    const tmp = await makeTempDir('intercept-logs-');
    try {
      const now = Date.now();
      await writeProxy(tmp.path, 'hosta-1-aaaaaa', [
        [now - 10 * MINUTE, startupEvent(11)],
        [now - 8 * MINUTE, toolCall('read_file', { args: { path: '/tmp/é ✓ "quoted"' } })],
        [now - 2 * MINUTE, denial('delete_repo', 'deny_rule', 'never delete')],
      ]);
      await writeProxy(tmp.path, 'hostb-2-bbbbbb', [
        [now - 9 * MINUTE, startupEvent(22)],
        [now - 5 * MINUTE, approvalEvent('approval_decided', { approved: true, by: 'alice', via: 'cli' })],
      ]);
      // A line as another writer may have spelt it (spaces, an escaped character): still a
      // valid record, and re-serialising it would change it.
      const ts = new Date(now - 3 * MINUTE).toISOString();
      const text = `{"ts": "${ts}", "instance": "hostc-3-cccccc", "seq": 1, "type": "tool_call", "session": "s1", "tool": "caf\\u00e9", "decision": "allow", "decisionMs": 1, "outcome": "result", "argsHash": "${'a'.repeat(64)}", "prev": "${'0'.repeat(64)}"}`;
      await writeFile(join(tmp.path, `${ts.slice(0, 10)}.hostc-3-cccccc.jsonl`), `${text.slice(0, -1)},"hash":"${sha256(text)}"}\n`);
      const stored = await storedLines(tmp.path);
      assert.equal(stored.length, 6);
      // The stored lines in time order (the times are distinct).
      const expected = [...stored].sort((a, b) => Date.parse(JSON.parse(a).ts) - Date.parse(JSON.parse(b).ts));

      const run = await capture(() => runLogs({ eventsDir: tmp.path, json: true }));
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, '');
      assert.equal(run.stdout, `${expected.join('\n')}\n`);

      // What jq sees: the chain fields of each proxy's records, linked.
      const records = parsed(run.stdout);
      assert.deepEqual(records.map((r) => r.instance), ['hosta-1-aaaaaa', 'hostb-2-bbbbbb', 'hosta-1-aaaaaa', 'hostb-2-bbbbbb', 'hostc-3-cccccc', 'hosta-1-aaaaaa']);
      assert.equal(records[4]!.type === 'tool_call' && records[4]!.tool, 'café');
      for (const instance of ['hosta-1-aaaaaa', 'hostb-2-bbbbbb']) {
        const own = records.filter((r) => r.instance === instance);
        assert.equal(own[0]!.prev, '0'.repeat(64));
        own.forEach((r, i) => {
          assert.equal(r.seq, i + 1);
          assert.match(r.hash, /^[0-9a-f]{64}$/);
          if (i > 0) assert.equal(r.prev, own[i - 1]!.hash);
        });
      }
    } finally {
      await tmp.cleanup();
    }
  });

  it('--denied keeps only tool_call denials and dry-run calls that would have been denied', async () => {
    const tmp = await makeTempDir('intercept-logs-');
    try {
      const now = Date.now();
      await writeProxy(tmp.path, 'h-1-aaaaaa', [
        [now - 10 * MINUTE, startupEvent(1)],
        [now - 9 * MINUTE, toolCall('read_file')],
        [now - 8 * MINUTE, denial('delete_repo', 'deny_rule', 'never delete')],
        [now - 7 * MINUTE, toolCall('pay', { kind: 'deny_rule', rule: 'no pay', message: 'no pay', dryRun: true })],
        [now - 6 * MINUTE, toolCall('search', { outcome: 'tool_error' })],
        [now - 5 * MINUTE, toolCall('pay', { decision: 'cancelled', outcome: 'cancelled' })],
        [now - 4 * MINUTE, approvalEvent('approval_decided', { approved: false, by: 'bob', via: 'cli' })],
        [now - 3 * MINUTE, approvalEvent('approval_expired')],
        [now - 2 * MINUTE, denial('send_sms', 'rate_limit', 'sms per hour')],
        [now - 1 * MINUTE, { type: 'shutdown', code: 1 }],
      ]);
      const run = await capture(() => runLogs({ eventsDir: tmp.path, json: true, denied: true }));
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(parsed(run.stdout).map(label), ['delete_repo:deny', 'pay:dry-run', 'send_sms:deny']);

      // The same in text.
      const text = await capture(() => runLogs({ eventsDir: tmp.path, denied: true }));
      assert.equal(text.code, 0);
      const lines = linesOf(text.stdout);
      assert.equal(lines.length, 3);
      assert.match(lines[0]!, /DENY +delete_repo /);
      assert.match(lines[1]!, /ALLOW \(dry-run, would deny\) pay /);
      assert.match(lines[2]!, /DENY +send_sms /);
    } finally {
      await tmp.cleanup();
    }
  });

  it('--tool takes an exact name or a glob, and leaves out records without a tool', async () => {
    const tmp = await makeTempDir('intercept-logs-');
    try {
      const now = Date.now();
      await writeProxy(tmp.path, 'h-1-aaaaaa', [
        [now - 10 * MINUTE, startupEvent(1)],
        [now - 9 * MINUTE, toolCall('pay')],
        [now - 8 * MINUTE, toolCall('payment')],
        [now - 7 * MINUTE, toolCall('prepay')],
        [now - 6 * MINUTE, denial('pay', 'deny_rule', 'no pay')],
        [now - 5 * MINUTE, approvalEvent('approval_requested', { mode: 'hold', scope: 'call', argsHash: 'a'.repeat(64), expiresAt: new Date(now).toISOString() })],
        [now - 4 * MINUTE, toolCall('pa')],
        [now - 3 * MINUTE, toolCall('PAYMENT')],
      ]);
      const exact = await capture(() => runLogs({ eventsDir: tmp.path, json: true, tool: 'pay' }));
      assert.equal(exact.code, 0, exact.stderr);
      assert.deepEqual(parsed(exact.stdout).map(label), ['pay:allow', 'pay:deny', 'approval_requested:pay']);

      const glob = await capture(() => runLogs({ eventsDir: tmp.path, json: true, tool: 'pay*' }));
      assert.equal(glob.code, 0, glob.stderr);
      assert.deepEqual(parsed(glob.stdout).map(label), ['pay:allow', 'payment:allow', 'pay:deny', 'approval_requested:pay']);

      const one = await capture(() => runLogs({ eventsDir: tmp.path, json: true, tool: 'pa?' }));
      assert.deepEqual(parsed(one.stdout).map(label), ['pay:allow', 'pay:deny', 'approval_requested:pay']);

      // A name matching nothing: no lines, and the note.
      const none = await capture(() => runLogs({ eventsDir: tmp.path, tool: 'refund' }));
      assert.equal(none.code, 0);
      assert.equal(none.stdout, '');
      assert.match(none.stderr, /no matching events/);
    } finally {
      await tmp.cleanup();
    }
  });

  it('--type keeps one type of event, and combines with --tool and --denied', async () => {
    const tmp = await makeTempDir('intercept-logs-');
    try {
      const now = Date.now();
      await writeProxy(tmp.path, 'h-1-aaaaaa', [
        [now - 10 * MINUTE, startupEvent(1)],
        [now - 9 * MINUTE, approvalEvent('approval_requested', { mode: 'hold', scope: 'call', argsHash: 'a'.repeat(64), expiresAt: new Date(now).toISOString() })],
        [now - 8 * MINUTE, approvalEvent('approval_decided', { approved: true, by: 'alice', via: 'cli' })],
        [now - 7 * MINUTE, approvalEvent('approval_used')],
        [now - 6 * MINUTE, approvalEvent('approval_decided', { tool: 'refund', approved: false, by: 'bob', via: 'http' })],
        [now - 5 * MINUTE, denial('pay', 'approval_denied', 'ask')],
        [now - 4 * MINUTE, denial('payment', 'deny_rule', 'no payment')],
        [now - 3 * MINUTE, denial('refund', 'deny_rule', 'no refund')],
        [now - 2 * MINUTE, toolCall('pay')],
      ]);
      const decided = await capture(() => runLogs({ eventsDir: tmp.path, json: true, type: 'approval_decided' }));
      assert.equal(decided.code, 0, decided.stderr);
      assert.deepEqual(parsed(decided.stdout).map(label), ['approval_decided:pay', 'approval_decided:refund']);

      const decidedPay = await capture(() => runLogs({ eventsDir: tmp.path, json: true, type: 'approval_decided', tool: 'pay' }));
      assert.deepEqual(parsed(decidedPay.stdout).map(label), ['approval_decided:pay']);

      const deniedPay = await capture(() => runLogs({ eventsDir: tmp.path, json: true, denied: true, tool: 'pay*' }));
      assert.deepEqual(parsed(deniedPay.stdout).map(label), ['pay:deny', 'payment:deny']);

      const all3 = await capture(() => runLogs({ eventsDir: tmp.path, json: true, denied: true, tool: 'pay*', type: 'tool_call' }));
      assert.deepEqual(parsed(all3.stdout).map(label), ['pay:deny', 'payment:deny']);

      // --denied is about calls: with another type, nothing is left.
      const contradictory = await capture(() => runLogs({ eventsDir: tmp.path, denied: true, type: 'approval_decided' }));
      assert.equal(contradictory.code, 0);
      assert.equal(contradictory.stdout, '');
      assert.match(contradictory.stderr, /no matching events/);
    } finally {
      await tmp.cleanup();
    }
  });

  it('--since leaves out older records; without it, the last hour', async () => {
    const tmp = await makeTempDir('intercept-logs-');
    try {
      const now = Date.now();
      await writeProxy(tmp.path, 'h-1-aaaaaa', [
        [now - 170 * MINUTE, toolCall('three_hours')],
        [now - 90 * MINUTE, toolCall('ninety_minutes')],
        [now - 45 * MINUTE, toolCall('forty_five_minutes')],
        [now - 1 * MINUTE, toolCall('a_minute')],
      ]);
      const tools = async (since?: string) => {
        const run = await capture(() => runLogs({ eventsDir: tmp.path, json: true, ...(since === undefined ? {} : { since }) }));
        assert.equal(run.code, 0, run.stderr);
        return parsed(run.stdout).map((r) => ('tool' in r ? r.tool : r.type));
      };
      assert.deepEqual(await tools(), ['forty_five_minutes', 'a_minute']);
      assert.deepEqual(await tools('1h'), ['forty_five_minutes', 'a_minute']);
      assert.deepEqual(await tools('2h'), ['ninety_minutes', 'forty_five_minutes', 'a_minute']);
      assert.deepEqual(await tools('3h'), ['three_hours', 'ninety_minutes', 'forty_five_minutes', 'a_minute']);
      assert.deepEqual(await tools('30m'), ['a_minute']);
      assert.deepEqual(await tools('1d'), ['three_hours', 'ninety_minutes', 'forty_five_minutes', 'a_minute']);

      // Text too: the older records are not printed.
      const text = await capture(() => runLogs({ eventsDir: tmp.path, since: '1h' }));
      assert.equal(linesOf(text.stdout).length, 2);
      assert.doesNotMatch(text.stdout, /ninety_minutes|three_hours/);
    } finally {
      await tmp.cleanup();
    }
  });

  it('refuses a bad --since or --type with exit 2 and a message naming the flag', async () => {
    const tmp = await makeTempDir('intercept-logs-');
    try {
      await writeProxy(tmp.path, 'h-1-aaaaaa', [[Date.now() - MINUTE, toolCall('read_file')]]);
      for (const since of ['yesterday', '0m', '-1h', '1 h', '']) {
        const run = await capture(() => runLogs({ eventsDir: tmp.path, since }));
        assert.equal(run.code, 2, `--since ${JSON.stringify(since)}`);
        assert.equal(run.stdout, '');
        assert.match(run.stderr, new RegExp(`^intercept logs: --since must be a duration.*${escape(JSON.stringify(since))}\\n$`));
      }
      for (const type of ['tool_calls', 'TOOL_CALL', 'denied']) {
        const run = await capture(() => runLogs({ eventsDir: tmp.path, type, json: true }));
        assert.equal(run.code, 2, `--type ${type}`);
        assert.equal(run.stdout, '');
        assert.match(run.stderr, new RegExp(`^intercept logs: --type must be one of .*tool_call.*approval_decided.*${escape(JSON.stringify(type))}\\n$`));
      }
      // Refused before anything is followed.
      const follow = await capture(() => runLogs({ eventsDir: tmp.path, follow: true, since: 'soon' }));
      assert.equal(follow.code, 2);
      assert.equal(follow.stdout, '');
      assert.match(follow.stderr, /--since/);
    } finally {
      await tmp.cleanup();
    }
  });

  it('with no events directory: nothing on stdout, a note on stderr, exit 0', async () => {
    const tmp = await makeTempDir('intercept-logs-');
    try {
      const dir = tmp.file('no-such-dir');
      const run = await capture(() => runLogs({ eventsDir: dir, since: '30m' }));
      assert.equal(run.code, 0);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, new RegExp(`^intercept logs: no matching events in ${escape(dir)} since \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}\\.\\d{3}\\n$`));

      // --json keeps both streams for records: no lines and no note.
      const json = await capture(() => runLogs({ eventsDir: dir, json: true }));
      assert.equal(json.code, 0);
      assert.equal(json.stdout, '');
      assert.equal(json.stderr, '');
    } finally {
      await tmp.cleanup();
    }
  });

  it('skips an unreadable line with a warning on stderr and shows the rest', async () => {
    const tmp = await makeTempDir('intercept-logs-');
    try {
      const now = Date.now();
      await writeProxy(tmp.path, 'h-1-aaaaaa', [
        [now - 3 * MINUTE, toolCall('before')],
        [now - 2 * MINUTE, toolCall('middle')],
        [now - 1 * MINUTE, toolCall('after')],
      ]);
      // A line that is no record, after the middle one (in whichever day's file that is).
      let name = '';
      let lineNo = 0;
      for (const n of await readdir(tmp.path)) {
        const lines = linesOf(await readFile(join(tmp.path, n), 'utf8'));
        const i = lines.findIndex((l) => l.includes('"tool":"middle"'));
        if (i === -1) continue;
        lines.splice(i + 1, 0, 'this is not a record');
        await writeFile(join(tmp.path, n), `${lines.join('\n')}\n`);
        name = n;
        lineNo = i + 2;
      }
      assert.notEqual(name, '');

      const text = await capture(() => runLogs({ eventsDir: tmp.path }));
      assert.equal(text.code, 0);
      assert.deepEqual(linesOf(text.stdout).map((l) => /ALLOW (\S+)/.exec(l)?.[1]), ['before', 'middle', 'after']);
      assert.equal(linesOf(text.stderr).length, 1);
      assert.match(text.stderr, new RegExp(`skipped 1 unreadable line\\(s\\), the first ${escape(name)}:${lineNo}: `));

      const json = await capture(() => runLogs({ eventsDir: tmp.path, json: true }));
      assert.equal(json.code, 0);
      assert.deepEqual(parsed(json.stdout).map((r) => ('tool' in r ? r.tool : r.type)), ['before', 'middle', 'after']);
      assert.doesNotMatch(json.stdout, /not a record/);
      assert.match(json.stderr, /skipped 1 unreadable line/);
    } finally {
      await tmp.cleanup();
    }
  });

  it('prints one readable line per event: time, proxy, type, and what matters of it', async () => {
    const tmp = await makeTempDir('intercept-logs-');
    try {
      const now = Date.now();
      const at = (m: number) => now - m * MINUTE;
      await writeProxy(tmp.path, 'some-long-host-name-7-abcdef', [
        [at(10), startupEvent(4242)],
        [at(9), toolCall('read_file')],
        [at(8), denial('delete_repo', 'deny_rule', 'never delete', { session: 'alice' })],
        [at(7), toolCall('pay', { kind: 'deny_rule', rule: 'no-pay', message: 'no pay', dryRun: true })],
        [at(6), toolCall('search', { outcome: 'jsonrpc_error', error: 'bad query' })],
        [at(5), approvalEvent('approval_decided', { approved: false, by: 'bob', via: 'http', reason: 'too much' })],
        [at(4), toolCall('pay', { decision: 'cancelled', outcome: 'cancelled' })],
        [at(3), { type: 'shutdown', code: 3 }],
      ]);
      const run = await capture(() => runLogs({ eventsDir: tmp.path }));
      assert.equal(run.code, 0, run.stderr);
      const head = (m: number, type: string) => `${localTime(new Date(at(m)).toISOString())}  ${'7-abcdef'.padEnd(13)}  ${type.padEnd(18)}  `;
      assert.deepEqual(linesOf(run.stdout), [
        `${head(10, 'startup')}pid 4242 on h version=0.1.0 policy=/etc/p.yaml transport=stdio upstream="node server.js" counters=memory`,
        `${head(9, 'tool_call')}ALLOW read_file outcome=result session=s1`,
        `${head(8, 'tool_call')}DENY  delete_repo kind=deny_rule rule="never delete" message="no delete_repo" session=alice`,
        `${head(7, 'tool_call')}ALLOW (dry-run, would deny) pay kind=deny_rule rule=no-pay message="no pay" session=s1`,
        `${head(6, 'tool_call')}ALLOW search outcome=jsonrpc_error error="bad query" session=s1`,
        `${head(5, 'approval_decided')}apr_x pay denied by=bob via=http rule=ask reason="too much"`,
        // Withdrawn by the client before it was decided: neither allowed nor denied.
        `${head(4, 'tool_call')}CANCELLED pay outcome=cancelled session=s1`,
        `${head(3, 'shutdown')}exit code 3`,
      ]);
    } finally {
      await tmp.cleanup();
    }
  });

  it('formats times in local time, names proxies by pid and suffix, and shows unknown types as they are', () => {
    const saved = process.env.TZ;
    try {
      process.env.TZ = 'UTC';
      assert.equal(localTime('2026-01-10T12:00:00.042Z'), '2026-01-10 12:00:00.042');
      process.env.TZ = 'Asia/Kolkata'; // +05:30, no daylight saving
      assert.equal(localTime('2026-01-10T20:45:07.005Z'), '2026-01-11 02:15:07.005');
      assert.equal(localTime('not a time'), 'not a time');
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
    assert.equal(shortInstance('myhost-4242-k3f9ab'), '4242-k3f9ab');
    assert.equal(shortInstance('short'), 'short');
    assert.equal(shortInstance('averyveryverylongname'), 'averyveryver…');

    const future = { ts: '2026-01-10T12:00:00.000Z', instance: 'h-1-aaaaaa', seq: 1, prev: '0'.repeat(64), hash: 'c'.repeat(64), type: 'quota_changed', quota: 5 };
    assert.match(formatRecord(future as unknown as AuditRecord), /quota_changed {5} {2}\{"ts":.*"quota":5.*\}$/);
  });

  it('--follow prints what is there, then records appended later and records of a proxy started later, until aborted', async () => {
    const tmp = await makeTempDir('intercept-logs-');
    const dir = tmp.file('events');
    const a = await EventLog.open({ dir, instance: 'ha-1-aaaaaa', retentionDays: 0, log: silentLogger });
    let b: EventLog | undefined;
    const stop = new AbortController();
    const sigint = process.listenerCount('SIGINT');
    const sigterm = process.listenerCount('SIGTERM');
    let out: ReturnType<typeof captureOutput> | undefined;
    let running: Promise<number> | undefined;
    try {
      a.emit(toolCall('read_file'));
      a.emit(toolCall('pay'));
      await waitUntil(async () => (await storedLines(dir).catch(() => [])).length === 2, undefined, 'the first records to be written');

      out = captureOutput();
      const lines = () => linesOf(out!.stdout());
      running = runLogs({ eventsDir: dir, follow: true, json: true, tool: 'pay*' }, stop.signal);
      await eventually(() => (lines().length >= 1 ? true : undefined));
      const stored = await storedLines(dir);
      assert.deepEqual(lines(), [stored[1]]);

      // Appended to the file of the running proxy.
      a.emit(denial('pay', 'deny_rule', 'no pay'));
      await eventually(() => (lines().length >= 2 ? true : undefined));
      const aLines = (await storedLines(dir)).filter((l) => l.includes('"instance":"ha-1-aaaaaa"'));
      assert.equal(aLines.length, 3);
      assert.deepEqual(lines(), [aLines[1], aLines[2]]);

      // A second proxy starts: a new file.
      b = await EventLog.open({ dir, instance: 'hb-2-bbbbbb', retentionDays: 0, log: silentLogger });
      b.emit(toolCall('search'));
      b.emit(toolCall('payment'));
      await eventually(() => (lines().length >= 3 ? true : undefined));
      const bLines = (await storedLines(dir)).filter((l) => l.includes('"instance":"hb-2-bbbbbb"'));
      assert.equal(bLines.length, 2);
      assert.deepEqual(lines(), [aLines[1], aLines[2], bLines[1]]);

      stop.abort();
      assert.equal(await running, 0);
      running = undefined;
      assert.equal(out.stdout(), `${[aLines[1], aLines[2], bLines[1]].join('\n')}\n`);
      assert.equal(out.stderr(), '');
      // The interrupt handlers it installed are gone.
      assert.equal(process.listenerCount('SIGINT'), sigint);
      assert.equal(process.listenerCount('SIGTERM'), sigterm);
    } finally {
      stop.abort();
      await running?.catch(() => {});
      out?.restore();
      await a.close();
      await b?.close();
      await tmp.cleanup();
    }
  });

  it('--follow in text: warns about an unreadable line and goes on; an already aborted signal ends it at once', async () => {
    const tmp = await makeTempDir('intercept-logs-');
    const a = await EventLog.open({ dir: tmp.path, instance: 'ha-1-aaaaaa', retentionDays: 0, log: silentLogger });
    const stop = new AbortController();
    let out: ReturnType<typeof captureOutput> | undefined;
    let running: Promise<number> | undefined;
    try {
      a.emit(toolCall('first'));
      await waitUntil(async () => (await storedLines(tmp.path)).length === 1, undefined, 'the first record to be written');
      const file = a.currentFile!;

      out = captureOutput();
      const lines = () => linesOf(out!.stdout());
      running = runLogs({ eventsDir: tmp.path, follow: true }, stop.signal);
      await eventually(() => (lines().length >= 1 ? true : undefined));
      assert.match(lines()[0]!, /ALLOW first /);

      // Damage between two records of the running proxy (another process wrote into its file).
      await appendFile(file, 'garbage\n');
      a.emit(toolCall('second'));
      await eventually(() => (lines().length >= 2 ? true : undefined));
      assert.match(lines()[1]!, /ALLOW second /);
      assert.equal(lines().length, 2);
      assert.match(out.stderr(), /^intercept logs: skipped an unreadable line: .*\.jsonl:2: /);

      stop.abort();
      assert.equal(await running, 0);
      running = undefined;

      // Aborted before it starts: it prints nothing and ends with 0.
      const before = out.stdout().length;
      const done = new AbortController();
      done.abort();
      assert.equal(await runLogs({ eventsDir: tmp.path, follow: true }, done.signal), 0);
      assert.equal(out.stdout().length, before);
    } finally {
      stop.abort();
      await running?.catch(() => {});
      out?.restore();
      await a.close();
      await tmp.cleanup();
    }
  });
});
