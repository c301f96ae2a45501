// The in-memory counter store: one process, nothing survives a restart. It is the reference
// behaviour the contract suite pins down for every other backend.
//
// Calendar windows keep one number per key plus the window it belongs to; a key whose window
// is over reads as 0 and starts again on its next charge.
//
// Rolling windows are sub-window buckets (rolling.ts): at most ROLLING_BUCKETS + 1 per
// counter however many calls the window saw, and the value is the sum of those that still
// count, so a limit of N per 60 seconds never admits N+1 calls in any 60-second span.
//
// Memory stays bounded: stale state is dropped when a key is touched, and every
// SWEEP_EVERY reservations a sweep drops the keys whose windows are over.
import type { CounterRead, Reservation, ReserveItem, ReserveOutcome } from './store.js';
import type { CalendarUnit, Window } from '../policy/model.js';
import { calendarWindowEnd, calendarWindowStart } from './windows.js';
import { checkItems, findRefusal, retryAfterMs } from './reservations.js';
import { BaseCounterStore, calendarUndoApplies } from './base-store.js';
import { bucketAt, bucketCounts, rollingGeometry, type Bucket } from './rolling.js';

const SWEEP_EVERY = 1000;

interface CalendarEntry {
  kind: 'calendar';
  unit: CalendarUnit;
  /** Start and (exclusive) end of the window the value belongs to. */
  start: number;
  end: number;
  value: number;
}

interface RollingEntry {
  kind: 'rolling';
  /** The window length last used with this key (for the sweep). */
  windowMs: number;
  /** Sorted by start; a bucket leaves once it no longer counts. */
  buckets: Bucket[];
}

type Entry = CalendarEntry | RollingEntry;

/** What `Reservation.handle` points at: per item, the rolling bucket it charged (an undo of a
 * bucket that has left the list changes nothing). */
interface Handle {
  buckets: (Bucket | undefined)[];
}

export class MemoryCounterStore extends BaseCounterStore<Handle> {
  private readonly entries = new Map<string, Entry>();
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
      (item, current, need) => retryAfterMs(item, current, need, now, () => this.expiriesOf(item.key)),
    );
    if (refusal) return refusal;

    // Charge.
    const buckets: (Bucket | undefined)[] = [];
    for (const item of items) buckets.push(this.charge(item, now));
    return this.grant(items, { buckets }, now);
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
        const bucket = handle.buckets[i];
        if (entry.kind !== 'rolling' || bucket === undefined || !entry.buckets.includes(bucket)) return;
        bucket.amount = Math.max(0, bucket.amount - item.amount);
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
    this.prune(entry, now, window.seconds * 1000);
    if (entry.buckets.length === 0) {
      this.entries.delete(key);
      return 0;
    }
    let sum = 0;
    for (const b of entry.buckets) sum += b.amount;
    return sum;
  }

  /** Adds the item's amount; returns the rolling bucket charged, if any. */
  private charge(item: ReserveItem, now: number): Bucket | undefined {
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
    if (amount === 0) return undefined; // adds nothing to the sum
    const { windowMs, bucketMs } = rollingGeometry(window.seconds);
    let rolling: RollingEntry;
    if (entry && entry.kind === 'rolling') {
      rolling = entry;
      rolling.windowMs = windowMs;
    } else {
      rolling = { kind: 'rolling', windowMs, buckets: [] };
      this.entries.set(key, rolling);
    }
    const buckets = rolling.buckets;
    // The bucket `now` falls in is nearly always the newest; a clock that stepped back (or a
    // window that changed) may find an older one, or need one inserted in order.
    let i = buckets.length;
    while (i > 0 && buckets[i - 1]!.start > now) i--;
    const last = buckets[i - 1];
    if (last !== undefined && now < last.end) {
      last.amount += amount;
      return last;
    }
    const bounds = bucketAt(now, bucketMs);
    const bucket: Bucket = { start: Math.max(bounds.start, last?.end ?? -Infinity), end: bounds.end, amount };
    buckets.splice(i, 0, bucket);
    return bucket;
  }

  /** A rolling key's live buckets as (expiry, amount), oldest first (empty for other keys). */
  private expiriesOf(key: string): { at: number; amount: number }[] {
    const entry = this.entries.get(key);
    if (entry?.kind !== 'rolling') return [];
    // retryAfterMs adds the window to `at`: hand it the bucket ends.
    return entry.buckets.map((b) => ({ at: b.end, amount: b.amount })).sort((x, y) => x.at - y.at);
  }

  /** Drops the buckets that no longer count at `now`. */
  private prune(entry: RollingEntry, now: number, windowMs: number): void {
    // Nearly always nothing leaves: look before copying.
    if (entry.buckets.every((b) => bucketCounts(b.end, now, windowMs))) return;
    entry.buckets = entry.buckets.filter((b) => bucketCounts(b.end, now, windowMs));
  }

  /** Drops every key whose window is over. */
  private sweep(now: number): void {
    this.reservesSinceSweep = 0;
    for (const [key, entry] of this.entries) {
      if (entry.kind === 'calendar') {
        if (entry.end <= now) this.entries.delete(key);
      } else {
        this.prune(entry, now, entry.windowMs);
        if (entry.buckets.length === 0) this.entries.delete(key);
      }
    }
  }
}
