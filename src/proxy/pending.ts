// The interceptor's table of client requests in flight, and of the ones it answered itself
// (a call that timed out, a request given up at shutdown), so that the server's late answer
// to one of those is dropped instead of reaching the client a second time.
import type { Reservation } from '../state/store.js';
import type { CallTrail } from './call-trail.js';

/** How the proxy ended a request before the server answered it (see Interceptor). */
export interface Ending {
  /** What the client was told, and the trail's `error`. */
  reason: string;
  outcome: 'cancelled' | 'transport_failure';
}

/** A client request that has not been answered yet. */
export interface Pending {
  method: string;
  /** tools/call only: the counters charged for it. */
  reservation?: Reservation;
  /** Set while the call is still being decided; a cancellation during that time drops it. */
  gating?: boolean;
  cancelled?: boolean;
  /** Held for a human's approval (gating meanwhile). */
  held?: boolean;
  /** Answered by the proxy while it was still being decided: the gate's verdict is not used. */
  ending?: Ending;
  /** The request's `_meta.progressToken`, which the upstream's progress notifications carry. */
  progressToken?: string;
  /** tools/call only: what its observers are told. */
  trail?: CallTrail;
  /** tools/list only: the page asked for. */
  cursor?: string;
  /** --call-timeout, once the call is forwarded. */
  timer?: NodeJS.Timeout;
}

/** Ids answered here are remembered up to this many (the oldest are forgotten first). */
const ANSWERED_HERE_MAX = 10_000;

export class PendingTable implements Iterable<[string, Pending]> {
  private readonly entries = new Map<string, Pending>();
  private readonly answeredHere = new Set<string>();
  private idleWaiters: (() => void)[] = [];

  get size(): number {
    return this.entries.size;
  }

  get(key: string): Pending | undefined {
    return this.entries.get(key);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** A request arrives; an id used again starts afresh (its old late answer can no longer be
   * told from the new one's). */
  set(key: string, entry: Pending): void {
    this.entries.set(key, entry);
    this.answeredHere.delete(key);
  }

  /** Removes `key` (only while it is still `entry`, when one is given: a request that was
   * answered early may have been followed by a new one with the same id). */
  delete(key: string, entry?: Pending): boolean {
    const current = this.entries.get(key);
    if (current === undefined || (entry !== undefined && current !== entry)) return false;
    clearTimeout(current.timer);
    this.entries.delete(key);
    if (this.entries.size === 0) this.wake();
    return true;
  }

  /** Removes `key` and remembers that the proxy answered it, so a late answer is dropped. */
  answerHere(key: string, entry?: Pending): boolean {
    if (!this.delete(key, entry)) return false;
    this.answeredHere.add(key);
    if (this.answeredHere.size > ANSWERED_HERE_MAX) this.answeredHere.delete(this.answeredHere.values().next().value!);
    return true;
  }

  /** Whether an answer for `key` comes after the proxy answered the request itself (true once). */
  lateAnswer(key: string): boolean {
    return this.answeredHere.delete(key);
  }

  [Symbol.iterator](): Iterator<[string, Pending]> {
    return this.entries[Symbol.iterator]();
  }

  /** A copy, for going through while answering (and so removing) entries. */
  snapshot(): [string, Pending][] {
    return [...this.entries];
  }

  /** Resolves once no request is in flight. */
  idle(): Promise<void> {
    if (this.entries.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wake(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
