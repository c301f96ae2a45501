// Reads the audit trail back: every proxy's files in one directory, merged in time order. The
// reader is lenient: a line it cannot read is skipped and named, so `status` and `logs` show
// what can be shown; `audit verify` is the strict check of the chain. A proxy may be writing
// while the trail is read, so only complete lines (ending in a newline) count: a last line still
// being written is left for the next read.
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openLine } from './chain.js';
import type { AuditRecord } from './event.js';
import type { StartupRecord } from './summary.js';
import { FILE_NAME } from './writer.js';

export interface TrailRead {
  /** Sorted by `ts`, then `instance`, then `seq`. */
  records: AuditRecord[];
  /** One per line that could not be read: `<file>:<line>: <what>`. */
  problems: string[];
}

export interface ReadOptions {
  /** ms since the epoch: older records are left out (and files of earlier UTC days unread). */
  since?: number;
  /** Keep each record's line as stored, for `storedLine` (costs the text's memory again). */
  keepLines?: boolean;
}

const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;
const DEFAULT_POLL_MS = 250;

/** The line each record was read from, when it was read with `keepLines`. */
const lines = new WeakMap<AuditRecord, string>();

/** The record's text exactly as the trail holds it (read with `keepLines`), else undefined. */
export function storedLine(record: AuditRecord): string | undefined {
  return lines.get(record);
}

/** Every record of the trail in `dir` (see TrailRead). A missing directory is an empty trail;
 * a directory that exists but cannot be listed throws. */
export async function readTrail(dir: string, opts: ReadOptions = {}): Promise<TrailRead> {
  const problems: string[] = [];
  const records: AuditRecord[] = [];
  for (const name of await trailFiles(dir, opts.since)) {
    const file = new FileCursor(dir, name);
    await file.readNew((r) => records.push(r), (p) => problems.push(p), opts);
  }
  records.sort(byTime);
  return { records, problems };
}

export interface FollowOptions extends ReadOptions {
  signal: AbortSignal;
  /** How often the files are looked at again (default 250 ms). */
  pollMs?: number;
  /** A line that could not be read (see TrailRead.problems). */
  onProblem?: (problem: string) => void;
}

/** Emits the records already there (per `since`), in order, then each record appended to any
 * file of the trail, files created later included (a new proxy, a new day), until `signal`
 * aborts. The files are polled (stat, then read from the last offset): fs.watch misses or
 * doubles events on some platforms and file systems. Records that arrive in one poll are
 * emitted in time order. */
export async function followTrail(dir: string, onRecord: (r: AuditRecord) => void, opts: FollowOptions): Promise<void> {
  const { signal } = opts;
  const pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
  const onProblem = opts.onProblem ?? (() => {});
  const cursors = new Map<string, FileCursor>();
  while (!signal.aborted) {
    const batch: AuditRecord[] = [];
    for (const name of await trailFiles(dir, opts.since)) {
      let cursor = cursors.get(name);
      if (cursor === undefined) {
        cursor = new FileCursor(dir, name);
        cursors.set(name, cursor);
      }
      if (await cursor.grew()) await cursor.readNew((r) => batch.push(r), onProblem, opts);
    }
    batch.sort(byTime);
    for (const record of batch) {
      if (signal.aborted) return;
      onRecord(record);
    }
    try {
      await sleep(pollMs, undefined, { signal });
    } catch {
      return; // aborted
    }
  }
}

/** The first record of each named instance's earliest file, when it is its startup: for the
 * proxies that started before the window a summary covers. Instances whose first file is gone
 * (pruned) or does not begin with a startup are left out. */
export async function readStartups(dir: string, instances: Iterable<string>): Promise<StartupRecord[]> {
  const wanted = new Set(instances);
  if (wanted.size === 0) return [];
  const earliest = new Map<string, string>();
  for (const name of await trailFiles(dir, undefined)) {
    const m = FILE_NAME.exec(name)!;
    const instance = m[2]!;
    // Names sort by date, so the first seen is the earliest.
    if (wanted.has(instance) && !earliest.has(instance)) earliest.set(instance, name);
  }
  const found: StartupRecord[] = [];
  for (const name of earliest.values()) {
    const first = await new FileCursor(dir, name).firstRecord();
    if (first?.type === 'startup' && first.seq === 1) found.push(first as StartupRecord);
  }
  return found;
}

/** The trail's file names, sorted (by date, then instance); those of days before `since`'s
 * UTC day are left out. */
async function trailFiles(dir: string, since: number | undefined): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const fromDate = since === undefined || !Number.isFinite(since) ? undefined : new Date(since).toISOString().slice(0, 10);
  return names.filter((n) => {
    const m = FILE_NAME.exec(n);
    return m !== null && (fromDate === undefined || m[1]! >= fromDate);
  }).sort();
}

export function byTime(a: AuditRecord, b: AuditRecord): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  if (a.instance !== b.instance) return a.instance < b.instance ? -1 : 1;
  return a.seq - b.seq;
}

/** Where reading one file got to: the offset just after its last complete line. */
class FileCursor {
  private offset = 0;
  private lineNo = 0;
  private readonly path: string;

  constructor(
    dir: string,
    private readonly name: string,
  ) {
    this.path = join(dir, name);
  }

  /** Whether the file holds more than was read (a file that shrank was replaced: start over). */
  async grew(): Promise<boolean> {
    let size: number;
    try {
      size = (await stat(this.path)).size;
    } catch {
      return false; // pruned, or not there yet
    }
    if (size < this.offset) {
      this.offset = 0;
      this.lineNo = 0;
    }
    return size > this.offset;
  }

  /** Reads the complete lines after the offset; an incomplete last line stays unread. */
  async readNew(onRecord: (r: AuditRecord) => void, onProblem: (p: string) => void, opts: ReadOptions): Promise<void> {
    await this.scan((line) => {
      const opened = openRecord(line);
      if (typeof opened === 'string') return onProblem(`${this.name}:${this.lineNo}: ${opened}`);
      if (opts.since !== undefined && Date.parse(opened.ts) < opts.since) return;
      if (opts.keepLines) lines.set(opened, line);
      onRecord(opened);
    }, onProblem);
  }

  /** The file's first record, if its first line is complete and readable. */
  async firstRecord(): Promise<AuditRecord | undefined> {
    let first: AuditRecord | undefined;
    await this.scan((line) => {
      const opened = openRecord(line);
      if (typeof opened !== 'string') first = opened;
      return false;
    }, () => {});
    return first;
  }

  /** Calls `onLine` for each complete line from the offset (it may return false to stop), and
   * moves the offset past them. Lines are cut on bytes before decoding, so a character split
   * across two reads is never mangled. */
  private async scan(onLine: (line: string) => void | false, onProblem: (p: string) => void): Promise<void> {
    let handle;
    try {
      handle = await open(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onProblem(`${this.name}: cannot be read: ${(err as Error).message}`);
      return;
    }
    try {
      // `pending`: the bytes of an incomplete line, starting at the offset.
      let pending: Buffer = Buffer.alloc(0);
      let position = this.offset;
      const chunk = Buffer.alloc(CHUNK);
      for (;;) {
        const { bytesRead } = await handle.read(chunk, 0, CHUNK, position);
        if (bytesRead === 0) return;
        position += bytesRead;
        const data = pending.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([pending, chunk.subarray(0, bytesRead)]);
        let start = 0;
        for (let nl = data.indexOf(NEWLINE); nl !== -1; nl = data.indexOf(NEWLINE, start)) {
          const line = data.toString('utf8', start, nl);
          this.offset += nl + 1 - start;
          this.lineNo++;
          start = nl + 1;
          if (onLine(line) === false) return;
        }
        // Copied: `chunk` is reused by the next read.
        pending = Buffer.from(data.subarray(start));
      }
    } finally {
      await handle.close().catch(() => {});
    }
  }
}

/** A line as a record, or what is wrong with it. */
function openRecord(line: string): AuditRecord | string {
  if (line.length === 0) return 'is empty';
  const opened = openLine(line);
  if (!opened.ok) return opened.problem;
  const r = opened.record;
  if (typeof r.ts !== 'string' || Number.isNaN(Date.parse(r.ts))) return 'has no valid ts';
  if (typeof r.instance !== 'string') return 'has no instance';
  if (typeof r.seq !== 'number') return 'has no seq';
  if (typeof r.type !== 'string') return 'has no type';
  return r as unknown as AuditRecord;
}

