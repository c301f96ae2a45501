// The trail summarised as `intercept status` and the dashboard show it: the records of one
// directory since a time, the startups of proxies that began before it, and whether each proxy
// on this host still runs.
import { hostname } from 'node:os';
import type { AuditRecord } from './event.js';
import { readStartups, readTrail } from './reader.js';
import { summarise, type StartupRecord, type StatusSummary } from './summary.js';

export interface TrailSummary {
  summary: StatusSummary;
  records: AuditRecord[];
  /** Lines that could not be read (reader.ts TrailRead.problems). */
  problems: string[];
}

/** Reads the trail in `dir` from `since` (ms) and summarises it as of `now`. A directory that
 * exists but cannot be listed throws. */
export async function summariseTrail(dir: string, opts: { since: number; now: number }): Promise<TrailSummary> {
  const { records, problems } = await readTrail(dir, { since: opts.since });
  const startups = await readStartups(dir, instancesWithoutStartup(records)).catch(() => []);
  const summary = summarise(records, { now: opts.now, isRunning: runningHere, startups });
  return { summary, records, problems };
}

/** Whether a proxy on this host is still running: its pid answers signal 0. EPERM means the
 * process exists (another user's); another host's proxy cannot be told. A reused pid reads as
 * running: the trail cannot tell the two apart. */
export function runningHere(startup: StartupRecord): boolean | undefined {
  if (startup.host !== hostname()) return undefined;
  if (startup.pid === process.pid) return false; // this process is the one reading
  try {
    process.kill(startup.pid, 0);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EPERM' ? true : code === 'ESRCH' ? false : undefined;
  }
}

function instancesWithoutStartup(records: readonly AuditRecord[]): string[] {
  const all = new Set<string>();
  const started = new Set<string>();
  for (const r of records) {
    all.add(r.instance);
    if (r.type === 'startup') started.add(r.instance);
  }
  return [...all].filter((i) => !started.has(i));
}

/** The sessions of the records' calls, the most recently seen first, at most `max`: those
 * whose session-scoped counters are worth reading. */
export function recentSessions(records: readonly AuditRecord[], max: number): string[] {
  const sessions: string[] = [];
  const seen = new Set<string>();
  for (let i = records.length - 1; i >= 0 && sessions.length < max; i--) {
    const r = records[i]!;
    if (r.type !== 'tool_call' || seen.has(r.session)) continue;
    seen.add(r.session);
    sessions.push(r.session);
  }
  return sessions;
}
