// Prometheus metrics for the proxy: counters and histograms fed by the proxy's events (an
// EventSink), and gauges read at scrape time from the approval store, the counter store and the
// audit trail's writer. Everything lives in a registry of its own, never prom-client's global
// one, so two proxies in one process (or a test) never share a series.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { EventSink, ProxyEvent, ToolCallEvent } from './event.js';
import type { EventLogHealth } from './writer.js';

export interface MetricsOptions {
  /** Requests waiting for a human now. */
  pendingApprovals?: () => Promise<number>;
  /** Each counter's use of its limit (0..1, above 1 when over). */
  counterUsage?: () => Promise<ReadonlyArray<{ counter: string; ratio: number }>>;
  /** The audit trail's writer's health; undefined when there is no trail. */
  auditHealth?: () => EventLogHealth | undefined;
  log: Logger;
  /** Distinct `tool` label values kept before new names are counted as `_other` (default 200). */
  maxToolLabels?: number;
  /** How long a scrape waits for one source before leaving it out (default 2 s). */
  sourceTimeoutMs?: number;
}

export interface Metrics {
  /** Feed it every event the proxy emits. */
  sink: EventSink;
  registry: Registry;
  /** The exposition text, and the content type to serve it with. */
  render(): Promise<{ contentType: string; body: string }>;
}

export const DEFAULT_MAX_TOOL_LABELS = 200;
/** The `tool` label of names beyond the cap. */
export const OTHER_TOOL = '_other';
/** Longer label values are cut: a tool name comes from the agent and could be megabytes. */
export const MAX_LABEL_LENGTH = 128;
const DEFAULT_SOURCE_TIMEOUT_MS = 2_000;
/** A failing source is reported at most this often. */
const WARN_EVERY_MS = 60_000;

// Seconds. A decision is sub-millisecond to a few ms; an approval wait, minutes to an hour.
const DECISION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 60, 300, 900, 3600];
// Seconds. An upstream call is a few ms to tens of seconds.
const UPSTREAM_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

// Control, format, surrogate (a lone half of a pair), private-use and unassigned code points.
const UNPRINTABLE = /\p{C}/gu;

/** A label value safe to show: no unprintable characters, at most MAX_LABEL_LENGTH code points
 * (cut on a code point, never inside a surrogate pair). */
export function labelValue(raw: string): string {
  let s = String(raw).replace(UNPRINTABLE, '_');
  if (s.length > MAX_LABEL_LENGTH) s = Array.from(s).slice(0, MAX_LABEL_LENGTH).join('');
  return s;
}

export function createMetrics(opts: MetricsOptions): Metrics {
  const register = new Registry();
  collectDefaultMetrics({ register });
  const registers = [register];
  const log = opts.log;
  const maxTools = opts.maxToolLabels ?? DEFAULT_MAX_TOOL_LABELS;
  const timeoutMs = opts.sourceTimeoutMs ?? DEFAULT_SOURCE_TIMEOUT_MS;

  const toolCalls = new Counter({
    name: 'intercept_tool_calls_total',
    help: 'tools/call requests decided, by tool, decision, denial kind ("" when allowed) and dry run',
    labelNames: ['tool', 'decision', 'kind', 'dry_run'] as const,
    registers,
  });
  const outcomes = new Counter({
    name: 'intercept_tool_call_outcomes_total',
    help: 'What became of the calls the policy let through',
    labelNames: ['tool', 'outcome'] as const,
    registers,
  });
  const decisionSeconds = new Histogram({
    name: 'intercept_decision_duration_seconds',
    help: "From a call's arrival to its forwarding or denial, approval waits included",
    labelNames: ['decision'] as const,
    buckets: DECISION_BUCKETS,
    registers,
  });
  const upstreamSeconds = new Histogram({
    name: 'intercept_upstream_duration_seconds',
    help: "From a call's forwarding to the server's answer",
    labelNames: ['tool'] as const,
    buckets: UPSTREAM_BUCKETS,
    registers,
  });
  const approvalEvents = new Counter({
    name: 'intercept_approval_events_total',
    help: 'Approval requests made, decided, expired, withdrawn and used',
    labelNames: ['type'] as const,
    registers,
  });
  const storeErrors = new Counter({
    name: 'intercept_store_errors_total',
    help: 'Times a store (counters or approvals) could not be reached',
    labelNames: ['store'] as const,
    registers,
  });
  const reloads = new Counter({
    name: 'intercept_config_reloads_total',
    help: 'Policy and lock file reloads, taken (ok) or rejected',
    labelNames: ['what', 'result'] as const,
    registers,
  });
  const startTime = new Gauge({
    name: 'intercept_proxy_start_time_seconds',
    help: 'When the proxy started, in seconds since the epoch',
    registers,
  });
  // Absent until the proxy says it started: a 0 would read as 1970.
  startTime.remove();

  // Pulled at scrape time. A source that fails is left out of this scrape and reported, at most
  // once a minute each, so a store that is down neither breaks the scrape nor floods the log.
  const lastWarned = new Map<string, number>();
  async function read<T>(source: string, get: () => T | Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const value = await Promise.race([
        Promise.resolve().then(get),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          timer.unref();
        }),
      ]);
      return { ok: true, value };
    } catch (err) {
      const now = Date.now();
      const last = lastWarned.get(source);
      if (last === undefined || now - last >= WARN_EVERY_MS) {
        lastWarned.set(source, now);
        log.warn('a metrics source failed; its metrics are left out of this scrape', { source, error: err instanceof Error ? err.message : String(err) });
      }
      return { ok: false };
    } finally {
      clearTimeout(timer);
    }
  }

  const pending = opts.pendingApprovals;
  new Gauge({
    name: 'intercept_approvals_pending',
    help: 'Approval requests waiting for a decision',
    registers,
    async collect() {
      const r = pending ? await read('pendingApprovals', pending) : { ok: false as const };
      if (r.ok && Number.isFinite(r.value)) this.set(r.value);
      else this.remove();
    },
  });

  const usage = opts.counterUsage;
  new Gauge({
    name: 'intercept_counter_usage_ratio',
    help: "Each counter's current value over its limit",
    labelNames: ['counter'] as const,
    registers,
    async collect() {
      const r = usage ? await read('counterUsage', usage) : { ok: false as const };
      // Reset only once the values are in, so a concurrent scrape never sees a half-filled set;
      // resetting each time drops the counters that left the policy.
      this.reset();
      if (!r.ok) return;
      for (const { counter, ratio } of r.value) {
        if (Number.isFinite(ratio)) this.set({ counter: labelValue(counter) }, ratio);
      }
    },
  });

  // The writer keeps its own counts; these restate them at each scrape. A prom-client Counter
  // cannot be set, but it can be reset and incremented by the count inside collect(): that
  // keeps the exposition type `counter` (so rate() and linters treat the _total names right),
  // which a Gauge named _total would not. The writer's counts only grow, as a counter must.
  const health = opts.auditHealth;
  const auditCounter = (name: string, help: string, pick: (h: EventLogHealth) => number) =>
    new Counter({
      name,
      help,
      registers,
      async collect() {
        const r = health ? await read('auditHealth', health) : { ok: false as const };
        this.reset();
        if (r.ok && r.value !== undefined && Number.isFinite(pick(r.value))) this.inc(Math.max(0, pick(r.value)));
        else this.remove();
      },
    });
  auditCounter('intercept_audit_events_written_total', 'Events written to the audit trail', (h) => h.written);
  auditCounter('intercept_audit_write_errors_total', 'Failed writes to the audit trail', (h) => h.writeErrors);
  auditCounter('intercept_audit_events_lost_total', 'Events not written because the audit trail could not be written', (h) => h.lost);

  // Tool names come from the agent: past the cap, new names share one label value, so an agent
  // cannot grow the registry (and every scrape) without bound.
  const tools = new Set<string>();
  let capReported = false;
  function toolLabel(raw: string): string {
    const name = labelValue(raw);
    if (tools.has(name)) return name;
    if (tools.size < maxTools) {
      tools.add(name);
      return name;
    }
    if (!capReported) {
      capReported = true;
      log.warn('too many distinct tool names for metrics; further ones are counted as _other', { max: maxTools });
    }
    return OTHER_TOOL;
  }

  const seconds = (ms: number | undefined) => (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms / 1000 : undefined);

  function onToolCall(e: ToolCallEvent): void {
    const tool = toolLabel(e.tool);
    toolCalls.inc({ tool, decision: e.decision, kind: e.kind ?? '', dry_run: e.dryRun === true ? 'true' : 'false' });
    if (e.decision === 'allow' && e.outcome !== undefined) outcomes.inc({ tool, outcome: e.outcome });
    const decided = seconds(e.decisionMs);
    if (decided !== undefined) decisionSeconds.observe({ decision: e.decision }, decided);
    const upstream = seconds(e.upstreamMs);
    if (upstream !== undefined) upstreamSeconds.observe({ tool }, upstream);
  }

  function onEvent(e: ProxyEvent): void {
    switch (e.type) {
      case 'tool_call':
        return onToolCall(e);
      case 'approval_requested':
      case 'approval_decided':
      case 'approval_expired':
      case 'approval_withdrawn':
      case 'approval_used':
        return void approvalEvents.inc({ type: e.type });
      case 'state_unavailable':
        return void storeErrors.inc({ store: e.store });
      case 'config_reload':
        return void reloads.inc({ what: e.what, result: e.ok ? 'ok' : 'rejected' });
      case 'startup':
        return void startTime.set(Date.now() / 1000);
      case 'shutdown':
        return;
    }
  }

  return {
    sink: {
      emit(event) {
        try {
          onEvent(event);
        } catch (err) {
          // Emitting never throws (EventSink): a malformed event costs its metric, not the call.
          log.debug('an event could not be counted', { type: String(event?.type), error: err instanceof Error ? err.message : String(err) });
        }
      },
    },
    registry: register,
    async render() {
      return { contentType: register.contentType, body: await register.metrics() };
    },
  };
}
