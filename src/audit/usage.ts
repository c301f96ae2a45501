// How close the policy's counters are to their limits, read from the counter store the proxies
// charge. The keys are made as the gate makes them (storageKey of the counter's ref and the
// session), so the values are the very ones the next call's reservation will check.
import { durationShort } from '../engine/messages.js';
import { counterRef, declaredCounters, type CompiledPolicy } from '../engine/compile.js';
import type { CounterRef } from '../engine/types.js';
import type { Limit, Policy } from '../policy/model.js';
import { storageKey } from '../state/keys.js';
import type { CounterRead, CounterStore } from '../state/store.js';

export interface CounterUsage {
  /** The counter's id (CounterRef.id): `<owner>.<name>`. */
  counter: string;
  scope: 'global' | 'session';
  /** The session whose count this is (session scope only). */
  session?: string;
  /** The count in the current window. */
  value: number;
  /** The tightest limit's value. Under an exclusive limit (`lt`) the count stays below it. */
  max: number;
  /** `minute`, `hour` or `day` for a calendar window; `30s`, `1h`, … for a rolling one. */
  window: string;
  /** value / max (1 under a limit of 0 or less, which no call passes). */
  ratio: number;
}

export interface UsageOptions {
  policy: CompiledPolicy;
  store: CounterStore;
  /** The storageKey prefix the proxy's gate uses, which is '' (a store opened with
   * --state-prefix applies that namespace itself: passing it here too would read keys nobody
   * charges). */
  prefix: string;
  /** The sessions whose session-scoped counters are read. */
  sessions?: readonly string[];
  now: number;
}

interface Limited {
  ref: CounterRef;
  max: number;
}

/** One entry per counter that has a limit: once for a global one, once per session given for a
 * session one; most used first. Keyed counters (a bucket per argument value) are left out: a
 * bucket's id is a digest of the values that chose it, and the store cannot list them. A store
 * that fails throws. */
export async function counterUsage(opts: UsageOptions): Promise<CounterUsage[]> {
  const counters = limitedCounters(opts.policy.policy);
  const sessions = [...new Set(opts.sessions ?? [])];
  const wanted: { limited: Limited; session?: string }[] = [];
  for (const limited of counters) {
    if (limited.ref.scope === 'global') wanted.push({ limited });
    else for (const session of sessions) wanted.push({ limited, session });
  }
  if (wanted.length === 0) return [];
  const reads: CounterRead[] = wanted.map((w) => ({ key: storageKey(w.limited.ref, w.session ?? '', opts.prefix), window: w.limited.ref.window }));
  const values = await opts.store.read(reads, opts.now);
  const usage = wanted.map((w, i): CounterUsage => {
    const value = values[i] ?? 0;
    const { ref, max } = w.limited;
    const u: CounterUsage = { counter: ref.id, scope: ref.scope as CounterUsage['scope'], value, max, window: windowText(ref), ratio: max > 0 ? value / max : 1 };
    if (w.session !== undefined) u.session = w.session;
    return u;
  });
  return usage.sort((a, b) => b.ratio - a.ratio || cmp(a.counter, b.counter) || cmp(a.session ?? '', b.session ?? ''));
}

/** The policy's counters with a limit and no key. Per-caller ones (`scope: identity`) are left
 * out too: which callers have counts is not known here. */
function limitedCounters(policy: Policy): Limited[] {
  const out: Limited[] = [];
  for (const [id, c] of declaredCounters(policy)) {
    if (c.key === undefined && c.scope !== 'identity' && c.limits.length > 0) out.push({ ref: counterRef(id, c), max: tightest(c.limits) });
  }
  return out;
}

function tightest(limits: readonly Limit[]): number {
  return Math.min(...limits.map((l) => l.value));
}

function windowText(ref: CounterRef): string {
  return ref.window.kind === 'calendar' ? ref.window.unit : durationShort(ref.window.seconds);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
