// The audit trail's writer and verifier on real files: the chain across a day's rollover, the
// line format, retention, a directory that cannot be created, a disk that is full (/dev/full)
// and comes back, and what `verifyTrail` says about each kind of damage at the file level.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runStatus, type StatusReport } from '../../src/cli/status.js';
import { capture } from '../support/trail-writer.js';
import { mkdir, readdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GENESIS, openLine, sha256 } from '../../src/audit/chain.js';
import type { ProxyEvent } from '../../src/audit/event.js';
import { verifyTrail } from '../../src/audit/verify.js';
import { EventLog, FILE_NAME, instanceName } from '../../src/audit/writer.js';
import { createLogger, type Logger } from '../../src/log.js';
import { makeTempDir, type TempDir } from '../support/temp.js';

const DAY = 86_400_000;
const shutdown = (code: number): ProxyEvent => ({ type: 'shutdown', code });

/** A logger that keeps what it is told (the writer reports a failure through it). */
function recordingLog(): Logger & { lines: string[] } {
  const base = createLogger('error');
  const lines: string[] = [];
  return Object.assign(Object.create(base) as Logger, { lines, error: (msg: string) => lines.push(msg), warn: (msg: string) => lines.push(msg), info: (msg: string) => lines.push(msg) });
}

let tmp: TempDir;
before(async () => {
  tmp = await makeTempDir('intercept-writer-');
});
after(async () => {
  await tmp?.cleanup();
});

async function linesOf(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
}

describe('EventLog', () => {
  it('writes one JSON line per event, chained, each ending in the hash of its own text', async () => {
    const dir = join(tmp.path, 'plain');
    let now = Date.parse('2026-03-01T10:00:00Z');
    const log = await EventLog.open({ dir, instance: 'host-1-aaaaaa', log: createLogger('error'), now: () => now });
    log.emit({ type: 'startup', pid: 1, host: 'h', version: '0', policy: 'p.yaml', policyHash: 'x', transport: 'stdio', upstream: 'srv', counters: 'memory' });
    now += 5;
    log.emit(shutdown(0));
    await log.close();
    assert.deepEqual(await readdir(dir), ['2026-03-01.host-1-aaaaaa.jsonl']);
    const lines = await linesOf(join(dir, '2026-03-01.host-1-aaaaaa.jsonl'));
    assert.equal(lines.length, 2);
    const [a, b] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual([a!.ts, a!.instance, a!.seq, a!.type, a!.prev], ['2026-03-01T10:00:00.000Z', 'host-1-aaaaaa', 1, 'startup', GENESIS]);
    assert.equal(b!.prev, a!.hash);
    assert.equal(b!.seq, 2);
    // The hash is of the line's text without its hash member.
    const body = lines[0]!.replace(/,"hash":"[0-9a-f]{64}"\}$/, '}');
    assert.equal(a!.hash, sha256(body));
    assert.ok(openLine(lines[0]!).ok);
    assert.equal(log.health.written, 2);
  });

  it('starts a new file each UTC day; the first record of the next file names the previous one and its last hash', async () => {
    const dir = join(tmp.path, 'rollover');
    let now = Date.parse('2026-03-01T23:59:59Z');
    const log = await EventLog.open({ dir, instance: 'host-2-bbbbbb', log: createLogger('error'), now: () => now });
    log.emit(shutdown(1));
    now += 2000;
    log.emit(shutdown(2));
    await log.close();
    const files = (await readdir(dir)).sort();
    assert.deepEqual(files, ['2026-03-01.host-2-bbbbbb.jsonl', '2026-03-02.host-2-bbbbbb.jsonl']);
    const first = JSON.parse((await linesOf(join(dir, files[0]!)))[0]!) as Record<string, unknown>;
    const second = JSON.parse((await linesOf(join(dir, files[1]!)))[0]!) as Record<string, unknown>;
    assert.equal(second.prev, first.hash);
    assert.equal(second.prevFile, files[0]);
    assert.equal(second.seq, 2);
    const report = await verifyTrail(dir, { retentionDays: 0, now });
    assert.deepEqual(report.problems, []);
    assert.equal(report.records, 2);
  });

  it('names itself after the host, the pid and a few random characters, safe in a file name', () => {
    const name = instanceName('my host.example/x');
    assert.match(name, new RegExp(`^my-host-example-x-${process.pid}-[0-9a-f]{6}$`));
    assert.ok(FILE_NAME.test(`2026-01-01.${name}.jsonl`));
    assert.notEqual(instanceName(), instanceName());
  });

  it('deletes trail files older than the retention, and nothing else', async () => {
    const dir = join(tmp.path, 'prune');
    await mkdir(dir);
    const now = Date.parse('2026-03-31T12:00:00Z');
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const old = `${day(now - 40 * DAY)}.h-1-cccccc.jsonl`;
    const kept = `${day(now - 10 * DAY)}.h-1-cccccc.jsonl`;
    for (const name of [old, kept, 'notes.txt', '2020-01-01.not a trail.jsonl']) await writeFile(join(dir, name), '');
    const log = await EventLog.open({ dir, retentionDays: 30, log: createLogger('error'), now: () => now });
    await log.prune();
    await log.close();
    const left = await readdir(dir);
    assert.ok(!left.includes(old));
    assert.ok(left.includes(kept));
    assert.ok(left.includes('notes.txt'));
    assert.ok(left.includes('2020-01-01.not a trail.jsonl'));
  });

  it('keeps going when the directory cannot be created: reported once, every event counted as lost', async () => {
    const log = recordingLog();
    const file = join(tmp.path, 'a-file');
    await writeFile(file, '');
    const writer = await EventLog.open({ dir: join(file, 'events'), log });
    for (let i = 0; i < 5; i++) writer.emit(shutdown(i));
    await writer.close();
    assert.equal(log.lines.filter((l) => /cannot write the audit trail/.test(l)).length, 1);
    assert.equal(writer.health.writeErrors, 1);
    assert.equal(writer.health.lost, 5);
    assert.equal(writer.health.written, 0);
  });

  it('on a full disk reports once and counts; once it can write again, the next record says how many were lost', { skip: !existsSync('/dev/full') && 'this system has no /dev/full' }, async () => {
    const dir = join(tmp.path, 'full');
    await mkdir(dir);
    const instance = 'host-3-dddddd';
    let now = Date.parse('2026-03-05T08:00:00Z');
    const file = join(dir, `2026-03-05.${instance}.jsonl`);
    await symlink('/dev/full', file);
    const log = recordingLog();
    const writer = await EventLog.open({ dir, instance, retentionDays: 0, log, now: () => now });
    writer.emit(shutdown(1));
    await waitFor(() => writer.health.writeErrors > 0);
    writer.emit(shutdown(2));
    writer.emit(shutdown(3));
    // The first was sealed before its write failed: it is lost too.
    await waitFor(() => writer.health.lost === 3);
    assert.equal(log.lines.length, 1);
    assert.match(log.lines[0]!, /cannot write the audit trail/);

    // Space again, and later than the retry delay.
    await unlink(file);
    now += 31_000;
    writer.emit(shutdown(4));
    await waitFor(() => writer.health.written === 1);
    assert.match(log.lines.at(-1)!, /the audit trail is written again/);
    await writer.close();
    const lines = await linesOf(file);
    assert.equal(lines.length, 1);
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(record.lost, 3);
    assert.equal(record.code, 4);
    const report = await verifyTrail(dir, { retentionDays: 0, now });
    assert.equal(report.problems.length, 1);
    assert.match(report.problems[0]!.problem, /3 event\(s\) before this line were lost to write errors/);
    // And status says so.
    const json = await capture(() => runStatus({ eventsDir: dir, since: '3650d', json: true }));
    assert.equal((JSON.parse(json.stdout) as StatusReport).eventsLost, 3);
    const text = await capture(() => runStatus({ eventsDir: dir, since: '3650d', color: false }));
    assert.match(text.stdout, /^3 event\(s\) could not be written by the proxies$/m);
  });
});

async function waitFor(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(predicate(), 'condition not reached');
}

describe('verifyTrail at the level of files', () => {
  /** Three days of one instance's trail in a fresh directory. */
  async function threeDays(name: string): Promise<{ dir: string; files: string[]; now: number }> {
    const dir = join(tmp.path, name);
    let now = Date.parse('2026-03-10T12:00:00Z');
    const writer = await EventLog.open({ dir, instance: 'host-4-eeeeee', retentionDays: 0, log: createLogger('error'), now: () => now });
    for (let d = 0; d < 3; d++) {
      writer.emit(shutdown(d));
      writer.emit(shutdown(d + 10));
      now += DAY;
    }
    await writer.close();
    return { dir, files: (await readdir(dir)).sort(), now };
  }

  it('passes an intact trail spread over several days', async () => {
    const { dir, now } = await threeDays('intact');
    const report = await verifyTrail(dir, { retentionDays: 30, now });
    assert.deepEqual(report.problems, []);
    assert.deepEqual([report.files, report.records, report.instances], [3, 6, 1]);
  });

  it('names a missing file between two others', async () => {
    const { dir, files, now } = await threeDays('gap');
    await rm(join(dir, files[1]!));
    const report = await verifyTrail(dir, { retentionDays: 30, now });
    assert.equal(report.problems.length, 1);
    assert.equal(report.problems[0]!.file, files[2]);
    assert.match(report.problems[0]!.problem, new RegExp(`does not follow the last line of ${files[0]!.replace(/\./g, '\\.')}`));
  });

  it('accepts a chain starting after a file older than the retention, and notes it; a younger missing file is a problem', async () => {
    const { dir, files, now } = await threeDays('pruned');
    await rm(join(dir, files[0]!));
    const lenient = await verifyTrail(dir, { retentionDays: 1, now });
    assert.deepEqual(lenient.problems, []);
    assert.match(lenient.notes[0]!.problem, /older than the retention and was pruned/);
    const strict = await verifyTrail(dir, { retentionDays: 30, now });
    assert.match(strict.problems[0]!.problem, /which is missing/);
    // A retention of 0 keeps everything, so nothing can have been pruned.
    const keepAll = await verifyTrail(dir, { retentionDays: 0, now });
    assert.match(keepAll.problems[0]!.problem, /which is missing/);
  });

  it('notes a last line still being written, without calling it tampering', async () => {
    const { dir, files, now } = await threeDays('torn');
    const file = join(dir, files[2]!);
    await writeFile(file, (await readFile(file, 'utf8')) + '{"ts":"2026-03-12T13:00:00.000Z","inst');
    const report = await verifyTrail(dir, { retentionDays: 30, now });
    assert.deepEqual(report.problems, []);
    assert.match(report.notes[0]!.problem, /last line is incomplete/);
  });

  it('names a record moved into another instance\'s file', async () => {
    const { dir, files, now } = await threeDays('moved');
    const file = join(dir, files[1]!);
    await writeFile(join(dir, files[1]!.replace('host-4-eeeeee', 'host-5-ffffff')), await readFile(file, 'utf8'));
    const report = await verifyTrail(dir, { retentionDays: 30, now });
    assert.ok(report.problems.some((p) => /names instance "host-4-eeeeee"/.test(p.problem)));
  });
});
