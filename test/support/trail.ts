// The audit trail as a test reads it: straight from the files (not through the project's own
// reader), and `intercept audit verify` and friends run as their own processes.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { INTERCEPT_BIN, ROOT } from './paths.js';
import type { Json } from './messages.js';

const run = promisify(execFile);

/** The trail files in `dir` (`<day>.<instance>.jsonl`), sorted by name. */
export async function trailFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.jsonl')).sort();
}

/** Every record in `dir`, parsed, in time order (each file's own order where times tie). */
export async function trailRecords(dir: string): Promise<Json[]> {
  const out: Json[] = [];
  for (const name of await trailFiles(dir)) {
    const text = await readFile(join(dir, name), 'utf8');
    for (const line of text.split('\n')) if (line.trim() !== '') out.push(JSON.parse(line) as Json);
  }
  return out.sort((a, b) => (String(a.ts) < String(b.ts) ? -1 : String(a.ts) > String(b.ts) ? 1 : 0));
}

/** The tool_call records, in the order they were written. */
export const toolCalls = (records: Json[]) => records.filter((r) => r.type === 'tool_call');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `intercept <args>` as its own process. */
export async function intercept(...args: string[]): Promise<CliRun> {
  try {
    const { stdout, stderr } = await run(process.execPath, [INTERCEPT_BIN, ...args], { cwd: ROOT, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
