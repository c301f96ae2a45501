// The reservation arithmetic every counter store shares: checking items, the all-or-nothing
// limit check and how long a refused call must wait (the Redis scripts mirror it in Lua).
import type { Limit } from '../policy/model.js';
import { calendarWindowEnd } from './windows.js';
import type { ReserveItem, ReserveOutcome } from './store.js';

export function fits(value: number, limits: readonly Limit[]): boolean {
  return limits.every((l) => (l.inclusive ? value <= l.value : value < l.value));
}

/** Refuses amounts and windows no backend can count (RangeError; nothing is charged). */
export function checkItems(items: readonly ReserveItem[]): void {
  for (const item of items) {
    if (!Number.isFinite(item.amount) || item.amount < 0) {
      throw new RangeError(`counter ${item.key}: amount must be a finite number >= 0, got ${item.amount}`);
    }
    if (item.window.kind === 'rolling' && !(Number.isFinite(item.window.seconds) && item.window.seconds > 0)) {
      throw new RangeError(`counter ${item.key}: rolling window must be a positive number of seconds`);
    }
  }
}

export type Refusal = Extract<ReserveOutcome, { ok: false }>;

/** The first item that does not fit, checking each against its current value plus what earlier
 * items of the same reservation add to the same key; undefined when all fit. */
export function findRefusal(
  items: readonly ReserveItem[],
  valueOf: (item: ReserveItem) => number,
  retryAfter: (item: ReserveItem, current: number, need: number) => number | undefined,
): Refusal | undefined {
  const pending = new Map<string, number>();
  for (let index = 0; index < items.length; index++) {
    const item = items[index]!;
    const current = valueOf(item);
    const need = (pending.get(item.key) ?? 0) + item.amount;
    if (!fits(current + need, item.limits)) {
      const retryAfterMs = retryAfter(item, current, need);
      return retryAfterMs === undefined ? { ok: false, index, current } : { ok: false, index, current, retryAfterMs };
    }
    pending.set(item.key, need);
  }
  return undefined;
}

/** How long until `need` fits, or undefined if it never will. `entries` are a rolling window's
 * live entries, oldest first (unused for calendar windows). */
export function retryAfterMs(
  item: ReserveItem,
  current: number,
  need: number,
  now: number,
  entries: () => Iterable<{ at: number; amount: number }>,
): number | undefined {
  if (!fits(need, item.limits)) return undefined; // would not fit even in an empty window
  const { window } = item;
  if (window.kind === 'calendar') return calendarWindowEnd(window.unit, now) - now;
  // Oldest entries expire first: find the first expiry after which the call fits.
  const ms = window.seconds * 1000;
  let remaining = current;
  for (const e of entries()) {
    remaining -= e.amount;
    if (fits(Math.max(0, remaining) + need, item.limits)) return Math.max(1, e.at + ms - now);
  }
  return undefined;
}

