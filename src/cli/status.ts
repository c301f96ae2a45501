// `intercept status`: what the proxies writing to one events directory have been doing — which
// are running, how many calls they allowed and denied and by which rules — read from the audit
// trail; with -c, also the requests waiting for a human and the counters near their limits,
// read from the same stores the proxy uses (opened as `intercept approvals` opens them).
import { openApprovalStore } from '../approval/open.js';
import type { ApprovalStore } from '../approval/types.js';
import type { StatusSummary } from '../audit/summary.js';
import { recentSessions, summariseTrail } from '../audit/trail-summary.js';
import type { CounterUsage } from '../audit/usage.js';
import { DEFAULT_EVENTS_DIR } from '../audit/writer.js';
import { loadCountersPolicy, proxyState, readUsage } from '../dashboard/proxy-stores.js';
import { createLogger } from '../log.js';
import { sinceSeconds } from './since.js';
import { checkStateDsn, openCounterStore } from '../state/open.js';
import type { CounterStore } from '../state/store.js';
import { localTime, shortInstance } from './logs.js';
import { cut, paints, table } from './table.js';

export interface StatusFlags {
  eventsDir?: string;
  since?: string;
  json?: boolean;
  config?: string;
  stateDir?: string;
  stateDsn?: string;
  statePrefix?: string;
  color?: boolean;
}

/** A request waiting for a human, as status shows it. */
export interface PendingApproval {
  id: string;
  tool: string;
  rule: string;
  /** ISO times. */
  requestedAt: string;
  expiresAt: string;
}

/** What --json prints: the summary, where it was read from, and (with -c) the stores' view. */
export interface StatusReport extends StatusSummary {
  eventsDir: string;
  /** ISO time: records older than this were left out (--since). */
  from: string;
  /** ISO time the report was made. */
  at: string;
  /** Lines of the trail that could not be read (skipped). */
  unreadableLines: number;
  /** With -c, when the approval store could be opened: pending requests, newest first. */
  pendingApprovals?: PendingApproval[];
  /** With -c, when the counter store could be opened: every counter with a limit, most used
   * first (keyed counters are not listed: their buckets cannot be enumerated). */
  counters?: CounterUsage[];
}

const DEFAULT_SINCE = '24h';
/** Session-scoped counters are read for at most this many sessions, the most recent. */
const MAX_SESSIONS = 100;
/** The table lists counters used at least this much of their limit (--json lists all). */
const NEAR_LIMIT = 0.5;
const MESSAGE_CHARS = 72;

export async function runStatus(flags: StatusFlags): Promise<number> {
  const sinceText = flags.since ?? DEFAULT_SINCE;
  const seconds = sinceSeconds(sinceText);
  if (typeof seconds === 'string') return usage(seconds);
  const dsnProblem = flags.stateDsn === undefined ? undefined : checkStateDsn(flags.stateDsn);
  if (dsnProblem) return usage(dsnProblem);

  const dir = flags.eventsDir ?? DEFAULT_EVENTS_DIR;
  const now = Date.now();
  const from = now - seconds * 1000;
  let read;
  try {
    read = await summariseTrail(dir, { since: from, now });
  } catch (err) {
    process.stderr.write(`intercept status: cannot read the events directory ${JSON.stringify(dir)}: ${(err as Error).message}\n`);
    return 1;
  }
  if (read.problems.length > 0) {
    process.stderr.write(`intercept status: warning: skipped ${read.problems.length} unreadable line(s) of the trail, the first ${read.problems[0]} (intercept audit verify checks the trail)\n`);
  }
  const { records, summary } = read;
  const report: StatusReport = { ...summary, eventsDir: dir, from: new Date(from).toISOString(), at: new Date(now).toISOString(), unreadableLines: read.problems.length };
  if (flags.config !== undefined) Object.assign(report, await fromStores(flags, flags.config, recentSessions(records, MAX_SESSIONS), now));

  if (flags.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return 0;
  }
  const color = flags.color ?? (process.stdout.isTTY === true && !process.env.NO_COLOR);
  process.stdout.write(`${render(report, { color, since: sinceText, withStores: flags.config !== undefined })}\n`);
  return 0;
}

/** Pending approvals and counter usage; a store that cannot be opened or read is a warning,
 * and its part is left out. */
async function fromStores(flags: StatusFlags, config: string, sessions: string[], now: number): Promise<Pick<StatusReport, 'pendingApprovals' | 'counters'>> {
  const state = proxyState({ ...flags, config }, createLogger('warn'));
  const out: Pick<StatusReport, 'pendingApprovals' | 'counters'> = {};

  let approvals: ApprovalStore | undefined;
  try {
    approvals = (await openApprovalStore(state)).store;
    const pending = await approvals.list(now, { status: 'pending' });
    out.pendingApprovals = pending.map((r) => ({ id: r.id, tool: r.tool, rule: r.rule, requestedAt: new Date(r.requestedAt).toISOString(), expiresAt: new Date(r.expiresAt).toISOString() }));
  } catch (err) {
    warn(`cannot read the approval store: ${(err as Error).message}`);
  } finally {
    await approvals?.close().catch(() => {});
  }

  const loaded = await loadCountersPolicy(config);
  if (!loaded.ok) {
    warn(loaded.problem);
    return out;
  }
  let counters: CounterStore | undefined;
  try {
    counters = (await openCounterStore(state)).store;
    out.counters = await readUsage(loaded.policy, counters, sessions, now);
  } catch (err) {
    warn(`cannot read the counter store: ${(err as Error).message}`);
  } finally {
    await counters?.close().catch(() => {});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The text report

/** The report as text: a heading and aligned tables per section. */
export function render(report: StatusReport, opts: { color: boolean; since: string; withStores: boolean }): string {
  const p = paints(opts.color);
  const out: string[] = [];
  const section = (title: string) => out.push('', p.bold(title));
  const none = (what: string) => out.push(`  ${p.dim(what)}`);

  if (report.records === 0) {
    out.push(`no events in ${report.eventsDir} since ${localTime(report.from)} (the last ${opts.since})`);
  } else {
    out.push(`Audit trail ${report.eventsDir}: ${report.records} events from ${localTime(report.since!)} to ${localTime(report.until!)} (the last ${opts.since})`);
    if (report.eventsLost > 0) out.push(p.red(`${report.eventsLost} event(s) could not be written by the proxies`));

    section('Proxies');
    out.push(
      ...table(
        ['INSTANCE', 'STATE', 'PID', 'HOST', 'TRANSPORT', 'POLICY', 'UPSTREAM', 'STARTED', 'ENDED', 'CALLS'],
        report.proxies.map((x) => [
          shortInstance(x.instance),
          x.state,
          x.pid === undefined ? '?' : String(x.pid),
          x.host ?? '?',
          x.transport ?? '?',
          x.policy === undefined ? '?' : cut(x.policy, 40),
          x.upstream === undefined ? '?' : cut(x.upstream, 40),
          x.startedAt === undefined ? 'before the window' : localTime(x.startedAt).slice(0, 19),
          x.endedAt === undefined ? '' : `${localTime(x.endedAt).slice(0, 19)}${x.exitCode === undefined ? '' : ` (${x.exitCode})`}`,
          String(x.calls),
        ]),
        (row, col, text) => (col !== 1 ? text : row[1] === 'running' ? p.green(text) : row[1] === 'exited' ? p.dim(text) : p.yellow(text)),
      ),
    );

    section('Calls');
    const c = report.calls;
    const share = `${(c.deniedShare * 100).toFixed(1)}%`;
    out.push(`  total ${c.total}   allowed ${c.allowed}   denied ${c.denied > 0 ? p.red(String(c.denied)) : '0'} (${share} of calls)${c.cancelled > 0 ? `   cancelled ${c.cancelled}` : ''}${c.dryRunWouldDeny > 0 ? `   dry-run would deny ${p.yellow(String(c.dryRunWouldDeny))}` : ''}`);
    const outcomes = Object.entries(report.outcomes).filter(([, n]) => n > 0);
    if (outcomes.length > 0) out.push(`  outcomes of allowed calls: ${outcomes.map(([o, n]) => `${o} ${n}`).join(', ')}`);

    const m = report.callsPerMinute;
    section(`Calls per minute (the last ${m.minutes} minutes)`);
    out.push(`  average ${m.average.toFixed(1)}; each minute, oldest first: ${m.byMinute.map((b) => String(b.calls)).join(' ')}`);

    section('Top denial rules');
    if (report.topDeniedRules.length === 0) none('no denials');
    else out.push(...table(['RULE', 'DENIALS'], report.topDeniedRules.map((t) => [t.name, String(t.count)])));
    section('Top denied tools');
    if (report.topDeniedTools.length === 0) none('no denials');
    else out.push(...table(['TOOL', 'DENIALS'], report.topDeniedTools.map((t) => [t.name, String(t.count)])));

    section('Recent denials');
    if (report.recentDenials.length === 0) none('no denials');
    else {
      out.push(
        ...table(
          ['TIME', 'PROXY', 'TOOL', 'KIND', 'RULE', 'MESSAGE'],
          report.recentDenials.map((d) => [
            localTime(d.ts).slice(0, 19),
            shortInstance(d.instance),
            d.tool,
            `${d.kind ?? ''}${d.dryRun ? ' (dry-run)' : ''}`,
            d.rule ?? '',
            cut(d.message ?? '', MESSAGE_CHARS),
          ]),
          (_row, col, text) => (col === 3 ? p.red(text) : text),
        ),
      );
    }

    section('Approvals, reloads, stores');
    const a = report.approvals;
    out.push(`  approvals: requested ${a.requested}, approved ${a.approved}, denied ${a.denied}, expired ${a.expired}, withdrawn ${a.withdrawn}, used ${a.used}`);
    out.push(`  reloads: ${report.reloads.ok} taken, ${report.reloads.failed > 0 ? p.red(String(report.reloads.failed)) : '0'} rejected`);
    out.push(`  store unavailable: ${report.stateUnavailable > 0 ? p.red(String(report.stateUnavailable)) : '0'} time(s)`);
  }

  if (!opts.withStores) {
    if (report.records === 0) return out.join('\n');
    section('Pending approvals and counters');
    none('give the proxy\'s policy file with -c (and its --state-dir, --state-dsn or --state-prefix) to see them');
    return out.join('\n');
  }
  section('Pending approvals');
  if (report.pendingApprovals === undefined) none('the approval store could not be read');
  else if (report.pendingApprovals.length === 0) none('none');
  else {
    out.push(
      ...table(
        ['ID', 'TOOL', 'RULE', 'REQUESTED', 'EXPIRES'],
        report.pendingApprovals.map((r) => [r.id, r.tool, r.rule, localTime(r.requestedAt).slice(0, 19), localTime(r.expiresAt).slice(0, 19)]),
      ),
    );
  }
  section(`Counters near their limits (${NEAR_LIMIT * 100}% or more)`);
  const near = report.counters?.filter((u) => u.ratio >= NEAR_LIMIT);
  if (near === undefined) none('the counter store could not be read');
  else if (near.length === 0) none('none');
  else {
    out.push(
      ...table(
        ['COUNTER', 'SCOPE', 'SESSION', 'VALUE', 'MAX', 'WINDOW', 'USED'],
        near.map((u) => [u.counter, u.scope, u.session === undefined ? '' : cut(u.session, 24), trim(u.value), trim(u.max), u.window, `${Math.round(u.ratio * 100)}%`]),
        (row, col, text) => {
          if (col !== 6) return text;
          const ratio = Number.parseFloat(row[6]!) / 100;
          return ratio >= 0.9 ? p.red(text) : ratio >= 0.75 ? p.yellow(text) : text;
        },
      ),
    );
  }
  return out.join('\n');
}

/** 2.5 → "2.5", 3 → "3", 0.1 + 0.2 → "0.3". */
function trim(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toFixed(3)));
}

function warn(message: string): void {
  process.stderr.write(`intercept status: warning: ${message}\n`);
}

function usage(message: string): number {
  process.stderr.write(`intercept status: ${message}\n`);
  return 2;
}
