// `intercept audit verify`: walks every instance's chain through its files and names each place
// where the trail is not as it was written: a line whose hash does not match its text (edited),
// a line that does not follow the one before it (inserted, deleted or moved), a file missing
// between two others, events the writer itself lost. What it cannot see: a chain recomputed
// from scratch by someone who can write the files; see docs/observability.md.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GENESIS, openLine } from './chain.js';
import { FILE_NAME } from './writer.js';

export interface VerifyProblem {
  file: string;
  /** 1-based; absent for a problem with the file as a whole. */
  line?: number;
  problem: string;
}

export interface VerifyReport {
  files: number;
  records: number;
  instances: number;
  problems: VerifyProblem[];
  /** Things worth knowing that are not tampering (a last line still being written, the start
   * of a chain whose earlier files were pruned). */
  notes: VerifyProblem[];
}

interface TrailFile {
  name: string;
  date: string;
  instance: string;
}

/** Checks the trail in `dir`. `retentionDays`: files older than this may have been pruned, so a
 * chain may start after one of them (0: nothing is pruned). */
export async function verifyTrail(dir: string, opts: { retentionDays: number; now?: number }): Promise<VerifyReport> {
  const names = await readdir(dir);
  const byInstance = new Map<string, TrailFile[]>();
  for (const name of names) {
    const m = FILE_NAME.exec(name);
    if (!m) continue;
    const file = { name, date: m[1]!, instance: m[2]! };
    byInstance.set(file.instance, [...(byInstance.get(file.instance) ?? []), file]);
  }
  const report: VerifyReport = { files: 0, records: 0, instances: byInstance.size, problems: [], notes: [] };
  // A retention of 0 keeps everything: then no file is missing because it was pruned.
  const oldestKept = opts.retentionDays === 0 ? '' : new Date((opts.now ?? Date.now()) - opts.retentionDays * 86_400_000).toISOString().slice(0, 10);
  for (const files of byInstance.values()) {
    files.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
    let prev: { hash: string; file: string; seq: number } | undefined;
    for (const file of files) {
      report.files++;
      prev = await verifyFile(dir, file, prev, oldestKept, report);
    }
  }
  return report;
}

async function verifyFile(
  dir: string,
  file: TrailFile,
  before: { hash: string; file: string; seq: number } | undefined,
  oldestKept: string,
  report: VerifyReport,
): Promise<{ hash: string; file: string; seq: number } | undefined> {
  const text = await readFile(join(dir, file.name), 'utf8');
  const lines = text.split('\n');
  const complete = text.endsWith('\n');
  if (complete) lines.pop();
  let prev = before;
  const problem = (line: number | undefined, what: string) => report.problems.push({ file: file.name, line, problem: what });
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const opened = openLine(lines[i]!);
    if (!opened.ok) {
      if (i === lines.length - 1 && !complete) {
        report.notes.push({ file: file.name, line: n, problem: 'the last line is incomplete (still being written, or cut off)' });
        break;
      }
      problem(n, `the line ${opened.problem}`);
      // Resynchronise on the next line: its own checks still run.
      prev = undefined;
      continue;
    }
    report.records++;
    const { record, hash } = opened;
    if (record.instance !== file.instance) problem(n, `the record names instance ${JSON.stringify(record.instance)}, not the file's ${JSON.stringify(file.instance)}`);
    if (typeof record.lost === 'number') problem(n, `${record.lost} event(s) before this line were lost to write errors`);
    if (i === 0) checkStart(file, record, prev, oldestKept, report, problem);
    else if (prev !== undefined && record.prev !== prev.hash && typeof record.lost !== 'number') {
      problem(n, `does not follow line ${n - 1}: a line was inserted, deleted or moved here`);
    } else if (prev !== undefined && typeof record.seq === 'number' && record.seq !== prev.seq + 1 && typeof record.lost !== 'number') {
      problem(n, `its sequence number is ${record.seq}, expected ${prev.seq + 1}`);
    }
    prev = { hash, file: file.name, seq: typeof record.seq === 'number' ? record.seq : NaN };
  }
  if (lines.length === 0) report.notes.push({ file: file.name, problem: 'the file is empty' });
  return prev;
}

/** The first record of a file: the chain's start, or the continuation of the previous file. */
function checkStart(
  file: TrailFile,
  record: Record<string, unknown>,
  prev: { hash: string; file: string } | undefined,
  oldestKept: string,
  report: VerifyReport,
  problem: (line: number, what: string) => void,
): void {
  if (typeof record.lost === 'number') return;
  if (prev === undefined) {
    if (record.prev === GENESIS) return;
    const named = typeof record.prevFile === 'string' ? record.prevFile : undefined;
    const namedDate = named === undefined ? undefined : FILE_NAME.exec(named)?.[1];
    if (namedDate !== undefined && namedDate < oldestKept) {
      report.notes.push({ file: file.name, line: 1, problem: `the chain continues from ${named}, which is older than the retention and was pruned` });
    } else {
      problem(1, named !== undefined ? `the chain continues from ${named}, which is missing` : 'the first record does not start a chain: the lines before it are missing');
    }
    return;
  }
  if (record.prev !== prev.hash) problem(1, `does not follow the last line of ${prev.file}: lines are missing between the files`);
  else if (record.prevFile !== prev.file) problem(1, `names ${JSON.stringify(record.prevFile)} as the previous file, not ${prev.file}`);
}
