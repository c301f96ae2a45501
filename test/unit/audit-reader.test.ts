// Reading the audit trail back (src/audit/reader.ts): files written by the real EventLog, read
// in time order across proxies, with torn and damaged lines, `since`, and following appends.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sealLine, GENESIS } from '../../src/audit/chain.js';
import type { AuditRecord, ProxyEvent } from '../../src/audit/event.js';
import { followTrail, readStartups, readTrail, storedLine } from '../../src/audit/reader.js';
import { EventLog } from '../../src/audit/writer.js';
import { silentLogger } from '../../src/log.js';
import { makeTempDir } from '../support/temp.js';
import { eventually } from '../support/wait.js';

/** 2026-01-10T12:00:00Z */
const T = Date.UTC(2026, 0, 10, 12, 0, 0);
const DAY = 86_400_000;

const call = (tool: string, decision: 'allow' | 'deny' = 'allow'): ProxyEvent => ({
  type: 'tool_call',
  session: 's1',
  tool,
  decision,
  decisionMs: 1,
  argsHash: 'a'.repeat(64),
  ...(decision === 'allow' ? { outcome: 'result' as const } : { kind: 'deny_rule' as const, rule: 'no', message: 'Denied by rule "no"' }),
});

/** A writer whose clock the test sets before each event. */
async function writer(dir: string, instance: string) {
  let at = T;
  const log = await EventLog.open({ dir, instance, log: silentLogger, retentionDays: 0, now: () => at });
  return {
    log,
    emit(ms: number, event: ProxyEvent) {
      at = ms;
      log.emit(event);
    },
  };
}

const tools = (records: readonly AuditRecord[]) => records.map((r) => ('tool' in r ? r.tool : r.type));

describe('readTrail', () => {
  it('merges two proxies\' files in time order, ties broken by instance then seq', async () => {
    const tmp = await makeTempDir('intercept-reader-');
    try {
      const a = await writer(tmp.path, 'hosta-1-aaaaaa');
      const b = await writer(tmp.path, 'hostb-2-bbbbbb');
      a.emit(T + 1000, call('a1'));
      b.emit(T + 2000, call('b1'));
      a.emit(T + 3000, call('a2'));
      b.emit(T + 3000, call('b2')); // same ts as a2: instance decides
      b.emit(T + 3000, call('b3')); // same ts and instance: seq decides
      a.emit(T + 4000, call('a3'));
      await a.log.close();
      await b.log.close();
      assert.equal((await readdir(tmp.path)).length, 2);

      const read = await readTrail(tmp.path);
      assert.deepEqual(read.problems, []);
      assert.deepEqual(tools(read.records), ['a1', 'b1', 'a2', 'b2', 'b3', 'a3']);
      assert.equal(read.records[0]!.instance, 'hosta-1-aaaaaa');
      assert.equal(read.records[0]!.ts, new Date(T + 1000).toISOString());
    } finally {
      await tmp.cleanup();
    }
  });

  it('skips a torn last line silently, and names a damaged line with its file and number', async () => {
    const tmp = await makeTempDir('intercept-reader-');
    try {
      const a = await writer(tmp.path, 'h-1-aaaaaa');
      a.emit(T, call('one'));
      a.emit(T + 1, call('two'));
      await a.log.close();
      const file = join(tmp.path, '2026-01-10.h-1-aaaaaa.jsonl');
      // A proxy in the middle of writing its next line.
      await appendFile(file, '{"ts":"2026-01-10T12:00:01.000Z","instance":"h-1-aa');
      let read = await readTrail(tmp.path);
      assert.deepEqual(tools(read.records), ['one', 'two']);
      assert.deepEqual(read.problems, []);

      // The same half line, now followed by a newline and a good record: a damaged line 3.
      const good = sealLine({ ts: new Date(T + 5).toISOString(), instance: 'h-1-aaaaaa', seq: 3, ...call('three'), prev: GENESIS });
      await appendFile(file, `\n${good.line}\n`);
      read = await readTrail(tmp.path);
      assert.deepEqual(tools(read.records), ['one', 'two', 'three']);
      assert.equal(read.problems.length, 1);
      assert.match(read.problems[0]!, /^2026-01-10\.h-1-aaaaaa\.jsonl:3: /);

      // An edited line fails its hash and is named, not shown.
      const text = await readFile(file, 'utf8');
      await writeFile(file, text.replace('"tool":"two"', '"tool":"TWO"'));
      read = await readTrail(tmp.path);
      assert.deepEqual(tools(read.records), ['one', 'three']);
      assert.equal(read.problems.length, 2);
      assert.match(read.problems[0]!, /:2: was changed after it was written/);
    } finally {
      await tmp.cleanup();
    }
  });

  it('since leaves out older records, and does not open files of earlier days', async () => {
    const tmp = await makeTempDir('intercept-reader-');
    try {
      const a = await writer(tmp.path, 'h-1-aaaaaa');
      a.emit(T - DAY, call('yesterday'));
      a.emit(T, call('noon'));
      a.emit(T + 60_000, call('later'));
      await a.log.close();
      assert.deepEqual((await readdir(tmp.path)).sort(), ['2026-01-09.h-1-aaaaaa.jsonl', '2026-01-10.h-1-aaaaaa.jsonl']);
      // Garbage in yesterday's file: a reader that opened it would report it.
      await appendFile(join(tmp.path, '2026-01-09.h-1-aaaaaa.jsonl'), 'not a record\n');

      const all = await readTrail(tmp.path);
      assert.deepEqual(tools(all.records), ['yesterday', 'noon', 'later']);
      assert.equal(all.problems.length, 1);

      const recent = await readTrail(tmp.path, { since: T + 1 });
      assert.deepEqual(tools(recent.records), ['later']);
      assert.deepEqual(recent.problems, []);
    } finally {
      await tmp.cleanup();
    }
  });

  it('reads a file far larger than one read, characters of several bytes included', async () => {
    const tmp = await makeTempDir('intercept-reader-');
    try {
      const a = await writer(tmp.path, 'h-1-aaaaaa');
      const n = 3000;
      for (let i = 0; i < n; i++) a.emit(T + i, call(`é✓ツール-${i}`));
      await a.log.close();
      const read = await readTrail(tmp.path);
      assert.deepEqual(read.problems, []);
      assert.equal(read.records.length, n);
      assert.deepEqual(tools(read.records), Array.from({ length: n }, (_, i) => `é✓ツール-${i}`));
    } finally {
      await tmp.cleanup();
    }
  });

  it('reads a missing directory as an empty trail', async () => {
    const tmp = await makeTempDir('intercept-reader-');
    try {
      assert.deepEqual(await readTrail(join(tmp.path, 'nothing-here')), { records: [], problems: [] });
    } finally {
      await tmp.cleanup();
    }
  });

  it('keepLines gives back each record\'s line exactly as stored', async () => {
    const tmp = await makeTempDir('intercept-reader-');
    try {
      const a = await writer(tmp.path, 'h-1-aaaaaa');
      a.emit(T, call('one'));
      a.emit(T + 1, call('two', 'deny'));
      await a.log.close();
      const text = await readFile(join(tmp.path, '2026-01-10.h-1-aaaaaa.jsonl'), 'utf8');
      const read = await readTrail(tmp.path, { keepLines: true });
      assert.equal(read.records.map((r) => storedLine(r)).join('\n') + '\n', text);
      assert.equal(storedLine((await readTrail(tmp.path)).records[0]!), undefined);
    } finally {
      await tmp.cleanup();
    }
  });

  it('readStartups finds the startup of a proxy that started on an earlier day', async () => {
    const tmp = await makeTempDir('intercept-reader-');
    try {
      const a = await writer(tmp.path, 'h-1-aaaaaa');
      a.emit(T - DAY, { type: 'startup', pid: 4242, host: 'h', version: '0.1.0', policy: 'p.yaml', policyHash: 'b'.repeat(64), transport: 'stdio', upstream: 'node server.js', counters: 'memory' });
      a.emit(T, call('today'));
      await a.log.close();
      const startups = await readStartups(tmp.path, ['h-1-aaaaaa', 'gone-9-zzzzzz']);
      assert.equal(startups.length, 1);
      assert.equal(startups[0]!.pid, 4242);
      assert.equal(startups[0]!.ts, new Date(T - DAY).toISOString());
    } finally {
      await tmp.cleanup();
    }
  });
});

describe('followTrail', () => {
  it('emits what is there, then lines appended to a file and files created later, complete lines only', async () => {
    const tmp = await makeTempDir('intercept-reader-');
    const stop = new AbortController();
    const seen: AuditRecord[] = [];
    let following: Promise<void> | undefined;
    try {
      const now = Date.now();
      const a = await writer(tmp.path, 'h-1-aaaaaa');
      a.emit(now - 2 * 3600_000, call('too-old'));
      a.emit(now - 1000, call('existing'));
      await new Promise<void>((resolve) => setImmediate(resolve));
      following = followTrail(tmp.path, (r) => seen.push(r), { signal: stop.signal, since: now - 3600_000, pollMs: 20 });
      await eventually(() => (seen.length >= 1 ? true : undefined));
      assert.deepEqual(tools(seen), ['existing']);

      // Appended to the same, open file.
      a.emit(now, call('appended'));
      await eventually(() => (seen.length >= 2 ? true : undefined));
      assert.deepEqual(tools(seen), ['existing', 'appended']);

      // Half a line in a file of a new proxy, then a whole line from another new proxy: once the
      // whole one is seen, the half one has been looked at and must not have been emitted.
      const late = sealLine({ ts: new Date(now + 1).toISOString(), instance: 'h-3-cccccc', seq: 1, ...call('half-then-whole'), prev: GENESIS });
      const date = new Date(now + 1).toISOString().slice(0, 10);
      const halfFile = join(tmp.path, `${date}.h-3-cccccc.jsonl`);
      await writeFile(halfFile, late.line.slice(0, 40));
      const b = await writer(tmp.path, 'h-2-bbbbbb');
      b.emit(now + 2, call('new-file'));
      await eventually(() => (seen.length >= 3 ? true : undefined));
      assert.deepEqual(tools(seen), ['existing', 'appended', 'new-file']);

      await appendFile(halfFile, `${late.line.slice(40)}\n`);
      await eventually(() => (seen.length >= 4 ? true : undefined));
      assert.deepEqual(tools(seen), ['existing', 'appended', 'new-file', 'half-then-whole']);
      await a.log.close();
      await b.log.close();
    } finally {
      stop.abort();
      await following;
      await tmp.cleanup();
    }
    // Every record once, none after the abort.
    assert.equal(new Set(seen.map((r) => `${r.instance}/${r.seq}`)).size, seen.length);
  });

  it('resolves when its signal aborts, also on a directory that does not exist yet', async () => {
    const tmp = await makeTempDir('intercept-reader-');
    try {
      const stop = new AbortController();
      const seen: AuditRecord[] = [];
      const dir = join(tmp.path, 'later');
      const following = followTrail(dir, (r) => seen.push(r), { signal: stop.signal, pollMs: 20 });
      const a = await writer(dir, 'h-1-aaaaaa');
      a.emit(Date.now(), call('first'));
      await eventually(() => (seen.length >= 1 ? true : undefined));
      await a.log.close();
      stop.abort();
      await following;
      assert.deepEqual(tools(seen), ['first']);
    } finally {
      await tmp.cleanup();
    }
  });
});
