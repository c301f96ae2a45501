// What a proxy run tells about itself: the audit trail (--events-dir, --events-retention,
// --no-events, --log-args), Prometheus metrics (--metrics-port, --metrics-bind), OpenTelemetry
// traces (the OTEL_* variables), --dry-run, and the stores wrapped so that approvals and outages
// are recorded. One event stream feeds every observer.
import { hostname } from 'node:os';
import type { ApprovalStore } from '../approval/types.js';
import { fanOut, type EventSink, type StartupEvent } from '../audit/event.js';
import { observedApprovals } from '../audit/observed-approvals.js';
import { reportingApprovalStore, reportingCounterStore } from '../audit/store-trouble.js';
import { auditArgRules, redactArgs } from '../audit/redact.js';
import { DEFAULT_EVENTS_DIR, DEFAULT_RETENTION_DAYS, EventLog, instanceName } from '../audit/writer.js';
import type { CompiledPolicy } from '../engine/compile.js';
import type { Logger } from '../log.js';
import type { Observers } from '../proxy/call-trail.js';
import type { CounterStore } from '../state/store.js';
import type { MetricsServer } from '../audit/metrics-server.js';

export interface ObservabilityFlags {
  /** false with --no-events. */
  events: boolean;
  eventsDir?: string;
  eventsRetention?: string;
  logArgs?: boolean;
  dryRun?: boolean;
  metricsPort?: string;
  metricsBind?: string;
}

/** The --metrics-port number, undefined when not given, or what is wrong with it. */
export function parseMetricsPort(value: string | undefined): number | undefined | string {
  if (value === undefined) return undefined;
  const port = Number(value);
  return Number.isInteger(port) && port >= 0 && port <= 65535 ? port : `--metrics-port must be a port number, got ${JSON.stringify(value)}`;
}

/** Days in `--events-retention` (`30`, `30d`; 0 keeps everything), or what is wrong with it. */
export function parseRetention(value: string | undefined): number | string {
  if (value === undefined) return DEFAULT_RETENTION_DAYS;
  const m = /^(\d+)d?$/.exec(value);
  if (!m || !Number.isSafeInteger(Number(m[1]))) return `--events-retention must be a number of days such as 30 or 30d (0 keeps everything), got ${JSON.stringify(value)}`;
  return Number(m[1]);
}

export interface Observability {
  observers: Observers;
  events: EventSink;
  trail?: EventLog;
  counters: CounterStore;
  approvals: ApprovalStore;
  /** Records the startup. */
  started(event: Omit<StartupEvent, 'type' | 'pid' | 'host' | 'dryRun'>): void;
  /** Records the shutdown and closes the trail. */
  stopped(code: number): Promise<void>;
}

export interface ObservedParts {
  counters: CounterStore;
  approvals: ApprovalStore & { readonly isOpen: boolean };
  failMode: 'open' | 'closed';
  /** The policy in force now (it changes on reload). */
  policy: () => CompiledPolicy;
  /** Where the OTEL_* variables are read. */
  env: NodeJS.ProcessEnv;
  version: string;
}

/** Session-scoped counters are shown in the metrics for this many sessions, the last seen. */
const METRIC_SESSIONS = 100;

/** Throws when the metrics endpoint cannot listen (the message names the address). */
export async function openObservability(flags: ObservabilityFlags, parts: ObservedParts, log: Logger): Promise<Observability> {
  const retentionDays = parseRetention(flags.eventsRetention);
  if (typeof retentionDays === 'string') throw new Error(retentionDays);
  const metricsPort = parseMetricsPort(flags.metricsPort);
  if (typeof metricsPort === 'string') throw new Error(metricsPort);
  const instance = instanceName();
  const trail = flags.events ? await EventLog.open({ dir: flags.eventsDir ?? DEFAULT_EVENTS_DIR, instance, retentionDays, log }) : undefined;
  const sessions = new RecentSessions(METRIC_SESSIONS);
  let metrics: { sink: EventSink; server: MetricsServer } | undefined;
  if (metricsPort !== undefined) {
    const { createMetrics } = await import('../audit/metrics.js');
    const { serveMetrics } = await import('../audit/metrics-server.js');
    const created = createMetrics({
      log,
      // Counted only once something opened the store: a scrape must not create an approval file.
      pendingApprovals: async () => (parts.approvals.isOpen ? (await parts.approvals.list(Date.now(), { status: 'pending' })).length : 0),
      auditHealth: () => trail?.health,
      counterUsage: () => highestUsage(parts.policy(), parts.counters, sessions.list()),
    });
    const server = await serveMetrics(created, { port: metricsPort, bind: flags.metricsBind ?? '127.0.0.1', log });
    metrics = { sink: created.sink, server };
  }
  const tracer = await (await import('../audit/tracing.js')).openTracer({ env: parts.env, log, serviceVersion: parts.version, instance });
  const events = fanOut([trail, metrics?.sink, metrics && sessions]);
  const observers: Observers = { events, tracer, dryRun: flags.dryRun === true };
  if (flags.logArgs) observers.argsFor = (call, toolClass) => redactArgs(call.args, auditArgRules(parts.policy(), call.name, toolClass));
  return {
    observers,
    events,
    trail,
    counters: reportingCounterStore(parts.counters, events, parts.failMode),
    approvals: observedApprovals(reportingApprovalStore(parts.approvals, events), events),
    started(event) {
      events.emit({ type: 'startup', pid: process.pid, host: hostname(), ...event, ...(observers.dryRun && { dryRun: true as const }) });
      if (trail?.currentFile !== undefined) log.info('audit trail', { file: trail.currentFile });
    },
    async stopped(code) {
      events.emit({ type: 'shutdown', code });
      await Promise.all([trail?.close(), metrics?.server.close(), tracer?.close()]);
    },
  };
}

/** The sessions of the last calls, for reading session-scoped counters. */
class RecentSessions implements EventSink {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}

  emit(event: { type: string; session?: string }): void {
    if (event.type !== 'tool_call' || event.session === undefined) return;
    // Re-inserted, so the set's order is the order last seen.
    this.seen.delete(event.session);
    this.seen.add(event.session);
    if (this.seen.size > this.max) this.seen.delete(this.seen.values().next().value as string);
  }

  list(): string[] {
    return [...this.seen];
  }
}

/** Each counter's use of its limit; a session-scoped one by its most used session. */
async function highestUsage(policy: CompiledPolicy, store: CounterStore, sessions: string[]): Promise<{ counter: string; ratio: number }[]> {
  const { counterUsage } = await import('../audit/usage.js');
  const highest = new Map<string, number>();
  for (const u of await counterUsage({ policy, store, prefix: '', sessions, now: Date.now() })) {
    highest.set(u.counter, Math.max(highest.get(u.counter) ?? 0, u.ratio));
  }
  return [...highest].map(([counter, ratio]) => ({ counter, ratio }));
}
