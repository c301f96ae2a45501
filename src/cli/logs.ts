// `intercept logs`: the audit trail of every proxy writing to one events directory, in time
// order, one line per event (or, with --json, each record exactly as stored, for jq). With
// --follow it keeps printing what the proxies append until interrupted.
import { once } from 'node:events';
import type { AuditRecord, EventType } from '../audit/event.js';
import { EVENT_TYPES } from '../audit/event.js';
import { followTrail, readTrail, storedLine } from '../audit/reader.js';
import { DEFAULT_EVENTS_DIR } from '../audit/writer.js';
import { compileGlob, globMatches } from '../engine/glob.js';
import { sinceSeconds } from './since.js';

export interface LogsFlags {
  eventsDir?: string;
  follow?: boolean;
  denied?: boolean;
  tool?: string;
  since?: string;
  json?: boolean;
  type?: string;
}

const DEFAULT_SINCE = '1h';
/** Text gathered before one write to stdout. */
const FLUSH_BYTES = 64 * 1024;

export async function runLogs(flags: LogsFlags, signal?: AbortSignal): Promise<number> {
  const sinceText = flags.since ?? DEFAULT_SINCE;
  const seconds = sinceSeconds(sinceText);
  if (typeof seconds === 'string') return usage(seconds);
  if (flags.type !== undefined && !(EVENT_TYPES as readonly string[]).includes(flags.type)) {
    return usage(`--type must be one of ${EVENT_TYPES.join(', ')}, got ${JSON.stringify(flags.type)}`);
  }
  const dir = flags.eventsDir ?? DEFAULT_EVENTS_DIR;
  const since = Date.now() - seconds * 1000;
  const keep = recordFilter(flags);
  const show = flags.json ? (r: AuditRecord) => storedLine(r) ?? JSON.stringify(r) : formatRecord;
  const out = new Output();
  try {
    if (flags.follow) return await follow(dir, since, keep, show, out, signal);
    let read;
    try {
      read = await readTrail(dir, { since, keepLines: flags.json === true });
    } catch (err) {
      process.stderr.write(`intercept logs: cannot read the events directory ${JSON.stringify(dir)}: ${(err as Error).message}\n`);
      return 1;
    }
    warnProblems(read.problems);
    let shown = 0;
    for (const record of read.records) {
      if (!keep(record)) continue;
      shown++;
      if (!(await out.line(show(record)))) break;
    }
    await out.flush();
    if (out.failure !== undefined) return failed(out.failure);
    if (shown === 0 && !flags.json) process.stderr.write(`intercept logs: no matching events in ${dir} since ${localTime(new Date(since).toISOString())}\n`);
    return 0;
  } finally {
    out.release();
  }
}

async function follow(
  dir: string,
  since: number,
  keep: (r: AuditRecord) => boolean,
  show: (r: AuditRecord) => string,
  out: Output,
  signal: AbortSignal | undefined,
): Promise<number> {
  const stop = new AbortController();
  const abort = () => stop.abort();
  signal?.addEventListener('abort', abort, { once: true });
  if (signal?.aborted) abort();
  // While following, an interrupt ends the command (exit 0) rather than the process.
  process.on('SIGINT', abort);
  process.on('SIGTERM', abort);
  out.onBroken = abort;
  try {
    await followTrail(
      dir,
      (record) => {
        if (keep(record)) out.now(show(record));
      },
      { signal: stop.signal, since, keepLines: true, onProblem: (p) => process.stderr.write(`intercept logs: skipped an unreadable line: ${p}\n`) },
    );
  } catch (err) {
    if (out.failure === undefined) {
      process.stderr.write(`intercept logs: cannot read the events directory ${JSON.stringify(dir)}: ${(err as Error).message}\n`);
      return 1;
    }
  } finally {
    signal?.removeEventListener('abort', abort);
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
  }
  return out.failure === undefined ? 0 : failed(out.failure);
}

/** What --denied, --tool and --type keep. */
function recordFilter(flags: LogsFlags): (r: AuditRecord) => boolean {
  const type = flags.type as EventType | undefined;
  const tool = flags.tool;
  // `*` and `?` as in the policy's tool keys; otherwise the exact name.
  const glob = tool !== undefined && /[*?]/.test(tool) ? compileGlob(tool) : undefined;
  return (r) => {
    if (type !== undefined && r.type !== type) return false;
    if (flags.denied && !(r.type === 'tool_call' && (r.decision === 'deny' || r.dryRun === true))) return false;
    if (tool !== undefined) {
      const name = 'tool' in r && typeof r.tool === 'string' ? r.tool : undefined;
      if (name === undefined || !(glob ? globMatches(glob, name) : name === tool)) return false;
    }
    return true;
  };
}

/** One readable line: local time, the instance (short), the type, and what matters of it. */
export function formatRecord(r: AuditRecord): string {
  const head = `${localTime(String(r.ts))}  ${shortInstance(String(r.instance)).padEnd(13)}  ${String(r.type).padEnd(18)}`;
  let text: string;
  try {
    text = details(r);
  } catch {
    // A record missing a field its type should have (another writer's): shown as it is.
    text = JSON.stringify(r);
  }
  return `${head}  ${text}`.trimEnd();
}

function details(r: AuditRecord): string {
  switch (r.type) {
    case 'tool_call': {
      // `cancelled`: the client withdrew the call before it was decided; it was never allowed.
      const verdict = r.decision === 'deny' ? 'DENY ' : r.decision === 'cancelled' ? 'CANCELLED' : r.dryRun ? 'ALLOW (dry-run, would deny)' : 'ALLOW';
      const f: Fields = r.decision === 'deny' || r.dryRun
        ? { kind: r.kind, rule: r.rule, message: r.message }
        : { outcome: r.outcome, error: r.error, rule: r.rule };
      return `${verdict} ${r.tool}${fields({ ...f, subject: r.subject, session: short(r.session, 12), approval: r.approval })}`;
    }
    case 'startup':
      return `pid ${r.pid} on ${r.host}${fields({ version: r.version, policy: r.policy, transport: r.transport, upstream: r.upstream, counters: r.counters, dryRun: r.dryRun })}`;
    case 'shutdown':
      return `exit code ${r.code}`;
    case 'config_reload':
      return `${r.what} ${r.ok ? 'reloaded' : 'rejected'}${fields({ file: r.file, from: r.oldHash.slice(0, 12), to: r.newHash.slice(0, 12), error: r.error })}`;
    case 'approval_requested':
      return `${r.id} ${r.tool}${fields({ rule: r.rule, mode: r.mode, scope: r.scope, expires: r.expiresAt })}`;
    case 'approval_decided':
      return `${r.id} ${r.tool} ${r.approved ? 'approved' : 'denied'}${fields({ by: r.by, via: r.via, rule: r.rule, reason: r.reason })}`;
    case 'approval_expired':
    case 'approval_withdrawn':
    case 'approval_used':
      return `${r.id} ${r.tool}${fields({ rule: r.rule })}`;
    case 'state_unavailable':
      return `${r.store} store unavailable${fields({ failMode: r.failMode, error: r.error })}`;
    case 'policy_unmatched':
      return `${r.section}${r.section === 'tools' ? '.' : ' '}${r.name} matches none of ${r.tools} tools${fields({ suggestion: r.suggestion, or: r.alternatives?.join(','), file: r.line === undefined ? r.file : `${r.file}:${r.line}` })}`;
    default:
      // A type this version does not know (a newer writer): its fields as they are.
      return JSON.stringify(r);
  }
}

type Fields = Record<string, string | number | boolean | undefined>;

/** ` key=value` for each field present; values with spaces or quotes are quoted. */
function fields(f: Fields): string {
  let out = '';
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined) continue;
    const s = String(v);
    out += ` ${k}=${/^[\w.:/@#*+-]+$/.test(s) ? s : JSON.stringify(s)}`;
  }
  return out;
}

/** `myhost-4242-k3f9ab` → `4242-k3f9ab`: host names are long and shared; pid and suffix tell
 * the proxies apart. */
export function shortInstance(instance: string): string {
  const m = /-(\d+-[0-9a-z]+)$/i.exec(instance);
  return m ? m[1]! : short(instance, 13);
}

function short(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** An ISO time as local `YYYY-MM-DD HH:MM:SS.mmm`. */
export function localTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function warnProblems(problems: readonly string[]): void {
  if (problems.length === 0) return;
  process.stderr.write(`intercept logs: skipped ${problems.length} unreadable line(s), the first ${problems[0]} (intercept audit verify checks the trail)\n`);
}

/** The Output being written, for the one stdout error listener. */
let current: Output | undefined;
let listening = false;

/** Writes to stdout, in batches, waiting when it is full. A reader that goes away (EPIPE, as
 * when piped into `head`) ends the output quietly. */
class Output {
  private pending = '';
  /** Set when stdout failed: EPIPE is a normal end, anything else is reported. */
  failure?: Error;
  onBroken?: () => void;

  constructor() {
    current = this;
    // Installed once and kept: an error of a write still queued when the command ends must
    // not become an uncaught exception.
    if (!listening) {
      listening = true;
      process.stdout.on('error', (err: Error) => current?.failed(err));
    }
  }

  failed(err: Error): void {
    this.failure ??= err;
    this.onBroken?.();
  }

  /** Queues a line; false once stdout is gone. */
  async line(text: string): Promise<boolean> {
    if (this.failure !== undefined) return false;
    this.pending += `${text}\n`;
    if (this.pending.length >= FLUSH_BYTES) await this.flush();
    return this.failure === undefined;
  }

  /** Writes a line at once (following: each record as it arrives). */
  now(text: string): void {
    if (this.failure === undefined) this.write(`${text}\n`);
  }

  /** Writes what is queued, then lets a turn of the event loop pass, so that a write error
   * (reported as an event) is known before going on. */
  async flush(): Promise<void> {
    if (this.pending !== '' && this.failure === undefined) {
      const text = this.pending;
      this.pending = '';
      if (!this.write(text)) {
        try {
          await once(process.stdout, 'drain');
        } catch (err) {
          this.failed(err as Error);
        }
      }
    }
    await new Promise((resolve) => setImmediate(resolve));
  }

  private write(text: string): boolean {
    try {
      return process.stdout.write(text);
    } catch (err) {
      this.failed(err as Error);
      return true;
    }
  }

  release(): void {
    if (current === this) current = undefined;
  }
}

function failed(err: Error): number {
  if ((err as NodeJS.ErrnoException).code === 'EPIPE') return 0;
  process.stderr.write(`intercept logs: cannot write the output: ${err.message}\n`);
  return 1;
}

function usage(message: string): number {
  process.stderr.write(`intercept logs: ${message}\n`);
  return 2;
}
