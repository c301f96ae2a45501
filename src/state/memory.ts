// The in-memory counter store: one process, nothing survives a restart. It is the reference
// behaviour the contract suite pins down for every other backend.
//
// Calendar windows keep one number per key plus the window it belongs to; a key whose window
// is over reads as 0 and starts again on its next charge.
//
// Rolling windows are an exact sliding log: every admitted call records (time, amount) and
// the value is the sum of the entries newer than `now - seconds`. Memory is O(calls in the
// window) per counter; nothing is approximated, so a limit of N per 60 seconds never admits
// N+1 calls in any 60-second span.
//
// Memory stays bounded: stale state is dropped when a key is touched, and every
// SWEEP_EVERY reservations a sweep drops the keys whose windows are over.
import type { CounterRead, Reservation, ReserveItem, ReserveOutcome } from './store.js';
import type { CalendarUnit, Window } from '../policy/model.js';
import { calendarWindowEnd, calendarWindowStart } from './windows.js';
import { checkItems, findRefusal, retryAfterMs } from './reservations.js';
import { BaseCounterStore, calendarUndoApplies } from './base-store.js';

const SWEEP_EVERY = 1000;

interface CalendarEntry {
  kind: 'calendar';
  unit: CalendarUnit;
  /** Start and (exclusive) end of the window the value belongs to. */
  start: number;
  end: number;
  value: number;
}

interface LogEntry {
  id: number;
  at: number;
  amount: number;
}

interface RollingEntry {
  kind: 'rolling';
  /** The window length last used with this key (for the sweep). */
  ms: number;
  /** Sorted by `at`. */
  log: LogEntry[];
  /** The sum of the log's amounts, kept as entries come and go so a read need not walk the
   * log (which holds every call of the window). Trusted only while `exact`. */
  sum: number;
  /** Every amount logged since the log was last empty was a safe integer, so `sum` has no
   * rounding error; otherwise reads add the log up as before. */
  exact: boolean;
}

type Entry = CalendarEntry | RollingEntry;

/** What `Reservation.handle` points at: per item, the rolling log entry it added. */
interface Handle {
  logIds: (number | undefined)[];
}

export class MemoryCounterStore extends BaseCounterStore<Handle> {
  private readonly entries = new Map<string, Entry>();
  private nextLogId = 1;
  private reservesSinceSweep = 0;

  constructor() {
    // Undo is synchronous and cannot fail, so either order would do.
    super('before-undo');
  }

  /** Number of keys currently held (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  async reserve(items: ReserveItem[], now: number): Promise<ReserveOutcome> {
    this.assertOpen();
    // Everything from here to the return is synchronous: no other reserve can interleave
    // between the check and the charge.
    if (++this.reservesSinceSweep >= SWEEP_EVERY) this.sweep(now);
    checkItems(items);
    const refusal = findRefusal(
      items,
      (item) => this.valueAt(item.key, item.window, now),
      (item, current, need) => retryAfterMs(item, current, need, now, () => this.logOf(item.key)),
    );
    if (refusal) return refusal;

    // Charge.
    const logIds: (number | undefined)[] = [];
    for (const item of items) logIds.push(this.charge(item, now));
    return this.grant(items, { logIds }, now);
  }

  async read(counters: CounterRead[], now: number): Promise<number[]> {
    this.assertOpen();
    return counters.map((c) => this.valueAt(c.key, c.window, now));
  }

  async close(): Promise<void> {
    this.markClosed();
    this.entries.clear();
  }

  protected undo(reservation: Reservation, handle: Handle, now: number): void {
    reservation.items.forEach((item, i) => {
      const entry = this.entries.get(item.key);
      if (!entry) return;
      if (item.window.kind === 'calendar') {
        // The entry must still hold the reservation's window (not a newer one started since).
        const { unit } = item.window;
        if (
          entry.kind === 'calendar' &&
          entry.unit === unit &&
          entry.start === calendarWindowStart(unit, reservation.at) &&
          calendarUndoApplies(unit, reservation.at, now)
        ) {
          entry.value = Math.max(0, entry.value - item.amount);
        }
      } else {
        const id = handle.logIds[i];
        if (entry.kind !== 'rolling' || id === undefined) return;
        const at = entry.log.findLastIndex((e) => e.id === id);
        if (at >= 0) entry.sum -= entry.log.splice(at, 1)[0]!.amount;
        if (entry.log.length === 0) this.entries.delete(item.key);
      }
    });
  }

  /** The key's value within `window` at `now`; drops state that is over. */
  private valueAt(key: string, window: Window, now: number): number {
    const entry = this.entries.get(key);
    if (!entry) return 0;
    if (window.kind === 'calendar') {
      if (entry.kind !== 'calendar' || entry.unit !== window.unit) return 0;
      if (entry.start === calendarWindowStart(window.unit, now)) return entry.value;
      if (entry.end <= now) this.entries.delete(key);
      return 0;
    }
    if (entry.kind !== 'rolling') return 0;
    const ms = window.seconds * 1000;
    this.prune(entry, now - ms);
    if (entry.log.length === 0) {
      this.entries.delete(key);
      return 0;
    }
    if (entry.exact && Number.isSafeInteger(entry.sum)) return entry.sum;
    let sum = 0;
    for (const e of entry.log) sum += e.amount;
    return sum;
  }

  /** Adds the item's amount; returns the rolling log entry id, if one was added. */
  private charge(item: ReserveItem, now: number): number | undefined {
    const { key, window, amount } = item;
    const entry = this.entries.get(key);
    if (window.kind === 'calendar') {
      const start = calendarWindowStart(window.unit, now);
      if (entry && entry.kind === 'calendar' && entry.unit === window.unit && entry.start === start) {
        entry.value += amount;
      } else {
        const end = calendarWindowEnd(window.unit, now);
        this.entries.set(key, { kind: 'calendar', unit: window.unit, start, end, value: amount });
      }
      return undefined;
    }
    if (amount === 0) return undefined; // adds nothing to the sum, so nothing to log
    const ms = window.seconds * 1000;
    let rolling: RollingEntry;
    if (entry && entry.kind === 'rolling') {
      rolling = entry;
      rolling.ms = ms;
    } else {
      rolling = { kind: 'rolling', ms, log: [], sum: 0, exact: true };
      this.entries.set(key, rolling);
    }
    const logEntry: LogEntry = { id: this.nextLogId++, at: now, amount };
    // Keep the log sorted by time even if the clock steps back.
    const log = rolling.log;
    let i = log.length;
    while (i > 0 && log[i - 1]!.at > now) i--;
    log.splice(i, 0, logEntry);
    rolling.sum += amount;
    if (!Number.isSafeInteger(amount)) rolling.exact = false;
    return logEntry.id;
  }

  /** A rolling key's live log, oldest first (empty for other keys). */
  private logOf(key: string): LogEntry[] {
    const entry = this.entries.get(key);
    return entry?.kind === 'rolling' ? entry.log : [];
  }

  /** Drops log entries at or before `cutoff` (they are no longer newer than now - window). */
  private prune(entry: RollingEntry, cutoff: number): void {
    const log = entry.log;
    let n = 0;
    let dropped = 0;
    while (n < log.length && log[n]!.at <= cutoff) dropped += log[n++]!.amount;
    if (n === 0) return;
    log.splice(0, n);
    entry.sum -= dropped;
    if (log.length === 0) {
      entry.sum = 0;
      entry.exact = true;
    }
  }

  /** Drops every key whose window is over. */
  private sweep(now: number): void {
    this.reservesSinceSweep = 0;
    for (const [key, entry] of this.entries) {
      if (entry.kind === 'calendar') {
        if (entry.end <= now) this.entries.delete(key);
      } else {
        this.prune(entry, now - entry.ms);
        if (entry.log.length === 0) this.entries.delete(key);
      }
    }
  }
}
