// What `intercept status` shows, worked out from the audit trail's records: the proxies, how
// many calls were allowed and denied, by which rules, what became of the calls let through,
// and what happened to approvals and reloads. Pure: no I/O, the time is passed in, so the same
// records always give the same summary.
import { CALL_OUTCOMES, type AuditRecord, type CallOutcome } from './event.js';

type Rec<T extends AuditRecord['type']> = AuditRecord & { type: T };
export type StartupRecord = Rec<'startup'>;

export interface ProxySummary {
  /** The writing process's name (host, pid and a few random characters). */
  instance: string;
  /** From its startup event; absent when the summary had no startup for the instance (it
   * started before the records given, and its first file is gone). */
  pid?: number;
  host?: string;
  version?: string;
  /** The policy file. */
  policy?: string;
  transport?: 'stdio' | 'http' | 'sse';
  /** The server command or URL. */
  upstream?: string;
  /** ISO time of its startup event. */
  startedAt?: string;
  /** ISO time of its shutdown event. */
  endedAt?: string;
  /** The exit status its shutdown event announced. */
  exitCode?: number;
  dryRun?: true;
  /** `exited`: a shutdown event follows its startup, or its process is gone; `running`: its
   * process is alive; `unknown`: neither can be told (another host, or no startup known). */
  state: 'running' | 'exited' | 'unknown';
  /** Its tool_call events among the records. */
  calls: number;
  /** ISO time of its last record. */
  lastSeen: string;
}

export interface NameCount {
  name: string;
  count: number;
}

export interface DenialSummary {
  ts: string;
  tool: string;
  kind?: string;
  rule?: string;
  message?: string;
  session: string;
  /** Who made the call, when the transport identified the caller. */
  subject?: string;
  instance: string;
  /** --dry-run: the call was forwarded; the policy would have denied it. */
  dryRun?: true;
}

export interface StatusSummary {
  /** ISO time of the first and the last record summarised; absent when there were none. */
  since?: string;
  until?: string;
  /** Records summarised, of every type. */
  records: number;
  /** One per instance seen (a startup, or any record), newest start first. */
  proxies: ProxySummary[];
  calls: {
    total: number;
    /** Forwarded upstream (under --dry-run, would-be denials included). */
    allowed: number;
    /** Answered with a denial. */
    denied: number;
    /** Withdrawn by the client before they were decided (neither allowed nor denied). */
    cancelled: number;
    /** denied / total, 0..1 (0 when there were no calls). */
    deniedShare: number;
    /** --dry-run: forwarded although the policy would have denied them. */
    dryRunWouldDeny: number;
  };
  /** Calls per minute over the last CALLS_PER_MINUTE_SPAN minutes before `now` (not the
   * whole window): their average and each minute's count, oldest first. A minute is the 60 s
   * ending a whole number of minutes before `now`. */
  callsPerMinute: {
    minutes: number;
    average: number;
    byMinute: { start: string; calls: number; denied: number }[];
  };
  /** The rules (or, without a rule, the denial's kind in parentheses) and tools that denied
   * most, most first; dry-run would-be denials are counted with the denials. */
  topDeniedRules: NameCount[];
  topDeniedTools: NameCount[];
  /** The callers (identity `sub`) denied most, most first; anonymous calls are not counted. */
  topDeniedSubjects: NameCount[];
  /** The latest denials (dry-run would-be denials included, marked), newest first. */
  recentDenials: DenialSummary[];
  /** What became of the calls let through, by outcome (every outcome present, 0 included). */
  outcomes: Record<CallOutcome, number>;
  /** Approval events by what happened. */
  approvals: { requested: number; approved: number; denied: number; expired: number; withdrawn: number; used: number };
  /** Policy and lock reloads, taken and rejected. */
  reloads: { ok: number; failed: number };
  /** Times a store could not be reached. */
  stateUnavailable: number;
  /** Events the writers could not write (the `lost` counts on the records after each gap). */
  eventsLost: number;
}

export interface SummaryOptions {
  /** ms since the epoch. */
  now: number;
  /** How many denials `recentDenials` keeps (default 10). */
  recentDenials?: number;
  /** How long the top lists are (default 5). */
  top?: number;
  /** Whether a proxy without a shutdown event is still running; undefined: cannot tell. */
  isRunning?: (startup: StartupRecord) => boolean | undefined;
  /** Startups from before the records (reader.ts readStartups), for proxies that started
   * before the window: they fill in the proxies table only. */
  startups?: readonly StartupRecord[];
}

export const CALLS_PER_MINUTE_SPAN = 10;
const MINUTE_MS = 60_000;

export function summarise(records: readonly AuditRecord[], opts: SummaryOptions): StatusSummary {
  const top = opts.top ?? 5;
  const recentMax = opts.recentDenials ?? 10;
  const span = CALLS_PER_MINUTE_SPAN;
  const spanStart = opts.now - span * MINUTE_MS;
  const byMinute = Array.from({ length: span }, (_, i) => ({ start: new Date(spanStart + i * MINUTE_MS).toISOString(), calls: 0, denied: 0 }));

  const calls = { total: 0, allowed: 0, denied: 0, cancelled: 0, deniedShare: 0, dryRunWouldDeny: 0 };
  const outcomes = Object.fromEntries(CALL_OUTCOMES.map((o) => [o, 0])) as Record<CallOutcome, number>;
  const approvals = { requested: 0, approved: 0, denied: 0, expired: 0, withdrawn: 0, used: 0 };
  const reloads = { ok: 0, failed: 0 };
  const deniedRules = new Map<string, number>();
  const deniedTools = new Map<string, number>();
  const deniedSubjects = new Map<string, number>();
  const denials: DenialSummary[] = [];
  let stateUnavailable = 0;
  let eventsLost = 0;
  let first: string | undefined;
  let last: string | undefined;

  interface Seen {
    startup?: StartupRecord;
    shutdown?: Rec<'shutdown'>;
    calls: number;
    last: string;
  }
  const instances = new Map<string, Seen>();
  const seen = (r: AuditRecord): Seen => {
    let s = instances.get(r.instance);
    if (s === undefined) {
      s = { calls: 0, last: r.ts };
      instances.set(r.instance, s);
    }
    if (r.ts > s.last) s.last = r.ts;
    return s;
  };
  for (const startup of opts.startups ?? []) {
    const s = seen(startup);
    s.startup ??= startup;
  }

  // Decisions are also recorded by processes that are not proxies (the approvals command, the
  // dashboard): a writer of nothing else is not listed among the proxies.
  for (const r of records) {
    const s = r.type === 'approval_decided' && !instances.has(r.instance) ? { calls: 0, last: r.ts } : seen(r);
    if (first === undefined || r.ts < first) first = r.ts;
    if (last === undefined || r.ts > last) last = r.ts;
    const lost = (r as { lost?: unknown }).lost;
    if (typeof lost === 'number') eventsLost += lost;
    switch (r.type) {
      case 'startup':
        s.startup = r;
        break;
      case 'shutdown':
        if (s.shutdown === undefined || r.seq > s.shutdown.seq) s.shutdown = r;
        break;
      case 'tool_call': {
        s.calls++;
        calls.total++;
        const denied = r.decision === 'deny';
        if (denied) calls.denied++;
        else if (r.decision === 'cancelled') calls.cancelled++;
        else {
          calls.allowed++;
          if (r.outcome !== undefined && r.outcome in outcomes) outcomes[r.outcome]++;
        }
        if (r.dryRun) calls.dryRunWouldDeny++;
        const t = Date.parse(r.ts);
        if (t >= spanStart && t < opts.now) {
          const minute = byMinute[Math.floor((t - spanStart) / MINUTE_MS)]!;
          minute.calls++;
          if (denied) minute.denied++;
        }
        if (denied || r.dryRun) {
          const rule = r.rule ?? `(${r.kind ?? 'unknown'})`;
          deniedRules.set(rule, (deniedRules.get(rule) ?? 0) + 1);
          deniedTools.set(r.tool, (deniedTools.get(r.tool) ?? 0) + 1);
          const d: DenialSummary = { ts: r.ts, tool: r.tool, session: r.session, instance: r.instance };
          if (typeof r.subject === 'string') {
            deniedSubjects.set(r.subject, (deniedSubjects.get(r.subject) ?? 0) + 1);
            d.subject = r.subject;
          }
          if (r.kind !== undefined) d.kind = r.kind;
          if (r.rule !== undefined) d.rule = r.rule;
          if (r.message !== undefined) d.message = r.message;
          if (r.dryRun) d.dryRun = true;
          denials.push(d);
        }
        break;
      }
      case 'approval_requested':
        approvals.requested++;
        break;
      case 'approval_decided':
        if (r.approved) approvals.approved++;
        else approvals.denied++;
        break;
      case 'approval_expired':
        approvals.expired++;
        break;
      case 'approval_withdrawn':
        approvals.withdrawn++;
        break;
      case 'approval_used':
        approvals.used++;
        break;
      case 'config_reload':
        if (r.ok) reloads.ok++;
        else reloads.failed++;
        break;
      case 'state_unavailable':
        stateUnavailable++;
        break;
    }
  }
  calls.deniedShare = calls.total === 0 ? 0 : calls.denied / calls.total;

  const proxies: ProxySummary[] = [];
  for (const [instance, s] of instances) {
    const p: ProxySummary = { instance, state: 'unknown', calls: s.calls, lastSeen: s.last };
    const st = s.startup;
    if (st !== undefined) {
      Object.assign(p, { pid: st.pid, host: st.host, version: st.version, policy: st.policy, transport: st.transport, upstream: st.upstream, startedAt: st.ts });
      if (st.dryRun) p.dryRun = true;
    }
    // The instance is one process: a shutdown after its startup is its end.
    if (s.shutdown !== undefined && (st === undefined || s.shutdown.seq > st.seq)) {
      p.state = 'exited';
      p.endedAt = s.shutdown.ts;
      p.exitCode = s.shutdown.code;
    } else if (st !== undefined) {
      const running = opts.isRunning?.(st);
      if (running !== undefined) p.state = running ? 'running' : 'exited';
    }
    proxies.push(p);
  }
  proxies.sort((a, b) => cmpDesc(a.startedAt ?? a.lastSeen, b.startedAt ?? b.lastSeen) || (a.instance < b.instance ? -1 : 1));

  denials.sort((a, b) => cmpDesc(a.ts, b.ts));
  const average = byMinute.reduce((n, m) => n + m.calls, 0) / span;
  return {
    since: first,
    until: last,
    records: records.length,
    proxies,
    calls,
    callsPerMinute: { minutes: span, average, byMinute },
    topDeniedRules: topOf(deniedRules, top),
    topDeniedTools: topOf(deniedTools, top),
    topDeniedSubjects: topOf(deniedSubjects, top),
    recentDenials: denials.slice(0, recentMax),
    outcomes,
    approvals,
    reloads,
    stateUnavailable,
    eventsLost,
  };
}

function cmpDesc(a: string, b: string): number {
  return a === b ? 0 : a < b ? 1 : -1;
}

/** Most first; ties by name, so the list is the same every time. */
function topOf(counts: Map<string, number>, n: number): NameCount[] {
  return [...counts]
    .map(([name, count]) => ({ name, count }))
    .sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .slice(0, n);
}
