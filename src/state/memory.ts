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
import type { CounterRead, CounterStore, Reservation, ReserveItem, ReserveOutcome } from './store.js';
import type { CalendarUnit, Limit, Window } from '../policy/model.js';
import { calendarWindowEnd, calendarWindowStart } from './windows.js';

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
}

type Entry = CalendarEntry | RollingEntry;

/** What `Reservation.handle` points at: per item, the rolling log entry it added. */
interface Handle {
  logIds: (number | undefined)[];
}

function fits(value: number, limits: readonly Limit[]): boolean {
  return limits.every((l) => (l.inclusive ? value <= l.value : value < l.value));
}

function checkItem(item: ReserveItem): void {
  if (!Number.isFinite(item.amount) || item.amount < 0) {
    throw new RangeError(`counter ${item.key}: amount must be a finite number >= 0, got ${item.amount}`);
  }
  if (item.window.kind === 'rolling' && !(Number.isFinite(item.window.seconds) && item.window.seconds > 0)) {
    throw new RangeError(`counter ${item.key}: rolling window must be a positive number of seconds`);
  }
}

export class MemoryCounterStore implements CounterStore {
  private readonly entries = new Map<string, Entry>();
  /** Handles this store issued and not yet settled by commit or rollback. */
  private readonly open = new WeakSet<Handle>();
  private nextLogId = 1;
  private reservesSinceSweep = 0;
  private closed = false;

  /** Number of keys currently held (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  async reserve(items: ReserveItem[], now: number): Promise<ReserveOutcome> {
    this.assertOpen();
    // Everything from here to the return is synchronous: no other reserve can interleave
    // between the check and the charge.
    if (++this.reservesSinceSweep >= SWEEP_EVERY) this.sweep(now);
    items.forEach(checkItem);

    // Check: each item against its stored value plus what earlier items of this same
    // reservation add to the same key.
    const pending = new Map<string, number>();
    for (let index = 0; index < items.length; index++) {
      const item = items[index]!;
      const current = this.valueOf(item.key, item.window, now);
      const need = (pending.get(item.key) ?? 0) + item.amount;
      if (!fits(current + need, item.limits)) {
        const retryAfterMs = this.retryAfter(item, current, need, now);
        return retryAfterMs === undefined
          ? { ok: false, index, current }
          : { ok: false, index, current, retryAfterMs };
      }
      pending.set(item.key, need);
    }

    // Charge.
    const logIds: (number | undefined)[] = [];
    for (const item of items) logIds.push(this.charge(item, now));
    const handle: Handle = { logIds };
    this.open.add(handle);
    return { ok: true, reservation: { items: [...items], handle, at: now } };
  }

  async commit(reservation: Reservation, _now: number): Promise<void> {
    this.assertOpen();
    // The charge already counts; committing only means it can no longer be rolled back.
    const handle = reservation.handle as Handle;
    if (typeof handle === 'object' && handle !== null) this.open.delete(handle);
  }

  async rollback(reservation: Reservation, now: number): Promise<void> {
    this.assertOpen();
    const handle = reservation.handle as Handle;
    if (typeof handle !== 'object' || handle === null || !this.open.has(handle)) return;
    this.open.delete(handle);
    reservation.items.forEach((item, i) => {
      const entry = this.entries.get(item.key);
      if (!entry) return;
      if (item.window.kind === 'calendar') {
        // Only while the reservation's window is still the current one: never take quota
        // away from (or give it back to) a newer window.
        const start = calendarWindowStart(item.window.unit, reservation.at);
        if (
          entry.kind === 'calendar' &&
          entry.unit === item.window.unit &&
          entry.start === start &&
          calendarWindowStart(item.window.unit, now) === start
        ) {
          entry.value = Math.max(0, entry.value - item.amount);
        }
      } else {
        const id = handle.logIds[i];
        if (entry.kind !== 'rolling' || id === undefined) return;
        const at = entry.log.findLastIndex((e) => e.id === id);
        if (at >= 0) entry.log.splice(at, 1);
        if (entry.log.length === 0) this.entries.delete(item.key);
      }
    });
  }

  async read(counters: CounterRead[], now: number): Promise<number[]> {
    this.assertOpen();
    return counters.map((c) => this.valueOf(c.key, c.window, now));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.entries.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('counter store is closed');
  }

  /** The key's value within `window` at `now`; drops state that is over. */
  private valueOf(key: string, window: Window, now: number): number {
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
      rolling = { kind: 'rolling', ms, log: [] };
      this.entries.set(key, rolling);
    }
    const logEntry: LogEntry = { id: this.nextLogId++, at: now, amount };
    // Keep the log sorted by time even if the clock steps back.
    const log = rolling.log;
    let i = log.length;
    while (i > 0 && log[i - 1]!.at > now) i--;
    log.splice(i, 0, logEntry);
    return logEntry.id;
  }

  /** How long until `need` fits on top of what remains, or undefined if it never will. */
  private retryAfter(item: ReserveItem, current: number, need: number, now: number): number | undefined {
    if (!fits(need, item.limits)) return undefined; // would not fit even in an empty window
    const { window } = item;
    if (window.kind === 'calendar') return calendarWindowEnd(window.unit, now) - now;
    // Oldest entries expire first: find the first expiry after which the call fits.
    const entry = this.entries.get(item.key);
    if (!entry || entry.kind !== 'rolling') return undefined;
    const ms = window.seconds * 1000;
    let remaining = current;
    for (const e of entry.log) {
      remaining -= e.amount;
      if (fits(Math.max(0, remaining) + need, item.limits)) return Math.max(1, e.at + ms - now);
    }
    return undefined;
  }

  /** Drops log entries at or before `cutoff` (they are no longer newer than now - window). */
  private prune(entry: RollingEntry, cutoff: number): void {
    const log = entry.log;
    let n = 0;
    while (n < log.length && log[n]!.at <= cutoff) n++;
    if (n > 0) log.splice(0, n);
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
