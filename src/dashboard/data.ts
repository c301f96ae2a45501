// What the dashboard's API answers with: the trail's summary (as `intercept status` makes it),
// and, with the proxy's policy file, its pending approvals and counters read from the proxy's
// own stores. The stores are opened on first use and again after a failure (the store may
// come back); a decision goes through the approval store wrapped so it is recorded in the
// trail by this process, as `intercept approvals approve` records its own.
import { stat } from 'node:fs/promises';
import { localDecider } from '../approval/decider.js';
import { lazyApprovalStore } from '../approval/lazy.js';
import { APPROVAL_STATUSES, type ApprovalStatus, type ApprovalStore, type ChangeOutcome } from '../approval/types.js';
import { approvalView } from '../approval/view.js';
import type { EventSink } from '../audit/event.js';
import { observedApprovals } from '../audit/observed-approvals.js';
import { recentSessions, summariseTrail } from '../audit/trail-summary.js';
import type { StatusSummary } from '../audit/summary.js';
import type { CounterUsage } from '../audit/usage.js';
import type { Logger } from '../log.js';
import { openCounterStore, type StateFlags } from '../state/open.js';
import type { CounterStore } from '../state/store.js';
import { loadCountersPolicy, proxyState, readUsage, type CountersPolicy, type ProxyStoreFlags } from './proxy-stores.js';

/** Session-scoped counters are read for at most this many sessions, the most recent. */
const MAX_SESSIONS = 100;
const MAX_REASON_CHARS = 2000;

export interface SummaryAnswer extends StatusSummary {
  eventsDir: string;
  /** ISO times: the window summarised, and when. */
  from: string;
  at: string;
  unreadableLines: number;
  /** The proxy's policy file, when the dashboard was given one (-c). */
  policy?: string;
  /** With -c: every counter with a limit, most used first; else why they are not shown. */
  counters?: CounterUsage[];
  countersProblem?: string;
}

export type ApprovalsAnswer =
  | { enabled: false; problem: string }
  | { enabled: true; approvals: Record<string, unknown>[] }
  | { enabled: true; problem: string };

export type DecideAnswer =
  | { status: 200; approval: Record<string, unknown> }
  | { status: 400 | 404 | 409 | 503; error: string; approval?: Record<string, unknown> };

export interface DataOptions {
  eventsDir: string;
  stores?: ProxyStoreFlags;
  /** Where this process records its decisions (an EventLog of its own instance). */
  trail: EventSink;
  log: Logger;
  now: () => number;
}

const NO_STORES = 'start the dashboard with the proxy\'s policy file (-c, and its --state-dir, --state-dsn or --state-prefix) to see them';

export class DashboardData {
  private readonly approvals?: ApprovalStore;
  private readonly deciding?: ApprovalStore;
  private readonly counters?: LazyCounterStore;
  private policy?: { key: string; loaded: CountersPolicy };

  constructor(private readonly opts: DataOptions) {
    if (opts.stores === undefined) return;
    const state = proxyState(opts.stores, opts.log);
    this.approvals = lazyApprovalStore(state);
    this.deciding = observedApprovals(this.approvals, opts.trail);
    this.counters = new LazyCounterStore(state);
  }

  async summary(sinceMs: number): Promise<SummaryAnswer> {
    const now = this.opts.now();
    const from = now - sinceMs;
    const read = await summariseTrail(this.opts.eventsDir, { since: from, now });
    const answer: SummaryAnswer = { ...read.summary, eventsDir: this.opts.eventsDir, from: new Date(from).toISOString(), at: new Date(now).toISOString(), unreadableLines: read.problems.length };
    const stores = this.opts.stores;
    if (stores === undefined) return { ...answer, countersProblem: `Counters: ${NO_STORES}.` };
    answer.policy = stores.config;
    const loaded = await this.countersPolicy(stores.config);
    if (!loaded.ok) return { ...answer, countersProblem: loaded.problem };
    try {
      answer.counters = await readUsage(loaded.policy, await this.counters!.store(), recentSessions(read.records, MAX_SESSIONS), now);
    } catch (err) {
      answer.countersProblem = `cannot read the counter store: ${(err as Error).message}`;
    }
    return answer;
  }

  /** `status` undefined: the pending ones. */
  async listApprovals(status: string | undefined): Promise<ApprovalsAnswer | { badStatus: string }> {
    if (this.approvals === undefined) return { enabled: false, problem: `Approvals: ${NO_STORES}.` };
    if (status !== undefined && status !== 'all' && !(APPROVAL_STATUSES as readonly string[]).includes(status)) {
      return { badStatus: `status must be all or one of ${APPROVAL_STATUSES.join(', ')}` };
    }
    const filter = status === 'all' ? undefined : { status: (status ?? 'pending') as ApprovalStatus };
    try {
      return { enabled: true, approvals: (await this.approvals.list(this.opts.now(), filter)).map(approvalView) };
    } catch (err) {
      return { enabled: true, problem: `cannot read the approval store: ${(err as Error).message}` };
    }
  }

  /** Decides as `intercept approvals approve|deny` does: the store's atomic decide, recorded
   * in the trail; by the OS user running the dashboard, via `dashboard`. */
  async decide(id: string, approve: boolean, body: unknown): Promise<DecideAnswer> {
    if (this.deciding === undefined) return { status: 404, error: `No approval store: ${NO_STORES}` };
    const reason = reasonOf(body);
    if (typeof reason === 'object') return { status: 400, error: reason.error };
    let out: ChangeOutcome;
    try {
      out = await this.deciding.decide(id, { approve, by: localDecider(), via: 'dashboard', reason }, this.opts.now());
    } catch (err) {
      this.opts.log.error('the approval store failed while deciding', { id, error: String(err) });
      return { status: 503, error: 'The approval store is unavailable' };
    }
    if (!out.ok) {
      if (out.reason === 'not_found') return { status: 404, error: `No approval request ${JSON.stringify(id)}` };
      const r = out.record;
      return { status: 409, error: `Request ${r.id} is ${r.status}${r.decidedBy ? ` (by ${r.decidedBy} via ${r.via})` : ''}; it can no longer be ${approve ? 'approved' : 'denied'}`, approval: approvalView(r) };
    }
    this.opts.log.info(`approval ${approve ? 'approved' : 'denied'} from the dashboard`, { id, tool: out.record.tool, rule: out.record.rule });
    return { status: 200, approval: approvalView(out.record) };
  }

  async close(): Promise<void> {
    await Promise.all([this.approvals?.close(), this.counters?.close()].map((p) => p?.catch(() => {})));
  }

  /** The policy compiled again only when its file changed (by size and modification time). */
  private async countersPolicy(file: string): Promise<CountersPolicy> {
    const key = await stat(file).then((s) => `${s.size}:${s.mtimeMs}`, () => '');
    if (this.policy === undefined || key === '' || this.policy.key !== key) {
      const loaded = await loadCountersPolicy(file);
      if (!loaded.ok && this.policy?.loaded.ok !== false) this.opts.log.warn(loaded.problem);
      this.policy = { key, loaded };
    }
    return this.policy.loaded;
  }
}

/** The optional `{"reason": "..."}` of a decision, or what is wrong with the body. */
function reasonOf(body: unknown): string | undefined | { error: string } {
  if (body === undefined) return undefined;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { error: 'The body must be a JSON object' };
  const { reason } = body as Record<string, unknown>;
  if (reason === undefined || reason === null) return undefined;
  if (typeof reason !== 'string') return { error: 'reason must be a string' };
  if (reason.length > MAX_REASON_CHARS) return { error: `reason must be at most ${MAX_REASON_CHARS} characters` };
  const trimmed = reason.trim();
  return trimmed === '' ? undefined : trimmed;
}

/** The counter store, opened on first use and again on the next use after a failed open. */
class LazyCounterStore {
  private opening?: Promise<CounterStore>;

  constructor(private readonly state: StateFlags) {}

  store(): Promise<CounterStore> {
    if (this.opening === undefined) {
      this.opening = openCounterStore(this.state).then(
        (opened) => {
          this.state.log.info('counter store opened', { store: opened.description });
          return opened.store;
        },
        (err: unknown) => {
          this.opening = undefined;
          throw err;
        },
      );
    }
    return this.opening;
  }

  async close(): Promise<void> {
    await (await this.opening?.catch(() => undefined))?.close();
  }
}
