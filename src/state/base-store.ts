// What the three counter stores share around their own reserve and read: refusing use after
// close, issuing reservations, settling each one once (commit, rollback), and calendar undos.
import type { CalendarUnit } from '../policy/model.js';
import type { CounterRead, CounterStore, Reservation, ReserveItem, ReserveOutcome } from './store.js';
import { calendarWindowStart } from './windows.js';

/** Whether a calendar charge made at `chargedAt` may still be undone at `now`: only while its
 * window is the current one, so a rollback never takes quota from (or gives it back to) a
 * newer window. `chargedAt` may be any instant of the charged window, e.g. its start. */
export function calendarUndoApplies(unit: CalendarUnit, chargedAt: number, now: number): boolean {
  return calendarWindowStart(unit, now) === calendarWindowStart(unit, chargedAt);
}

/** When rollback marks a reservation settled.
 * - 'before-undo': before undoing, so it is attempted at most once. For a store whose undo may
 *   fail after it was applied (a timed-out network call): trying again could undo twice.
 * - 'after-undo': only once undone, so a rollback that failed (e.g. a busy lock) may be tried
 *   again. For a store whose undo either applies or fails whole (one local transaction). A
 *   second rollback of the same reservation while one is in progress waits for that one. */
export type SettleRollback = 'before-undo' | 'after-undo';

export type Granted = Extract<ReserveOutcome, { ok: true }>;

/** A counter store minus its storage: subclasses implement reserve, read, close and `undo`, and
 * issue reservations through `grant`. `H` is what their `Reservation.handle` points at. */
export abstract class BaseCounterStore<H extends object> implements CounterStore {
  /** Handles this store issued that commit or rollback have not settled yet: a rollback after
   * a commit, or a second rollback, must do nothing (and so must one this store did not issue). */
  private readonly unsettled = new WeakSet<object>();
  /** Rollbacks in progress, by handle: a second one waits for the first. */
  private readonly undoing = new WeakMap<object, Promise<void>>();
  private isClosed = false;

  protected constructor(private readonly settleRollback: SettleRollback) {}

  abstract reserve(items: ReserveItem[], now: number): Promise<ReserveOutcome>;
  abstract read(counters: CounterRead[], now: number): Promise<number[]>;
  abstract close(): Promise<void>;

  /** Undoes the charges of an open reservation this store issued. */
  protected abstract undo(reservation: Reservation, handle: H, now: number): void | Promise<void>;

  async commit(reservation: Reservation, _now: number): Promise<void> {
    this.assertOpen();
    // The charge already counts; committing only means it can no longer be rolled back.
    this.settle(reservation.handle);
  }

  async rollback(reservation: Reservation, now: number): Promise<void> {
    this.assertOpen();
    const handle = reservation.handle;
    if (!this.isUnsettled(handle)) return;
    const running = this.undoing.get(handle);
    if (running) return running;
    if (this.settleRollback === 'before-undo') this.settle(handle);
    const work = (async () => {
      await this.undo(reservation, handle, now);
      this.settle(handle);
    })();
    this.undoing.set(handle, work);
    try {
      await work;
    } finally {
      this.undoing.delete(handle);
    }
  }

  /** The granted outcome for `items` (copied), open until commit or rollback settles it. */
  protected grant(items: readonly ReserveItem[], handle: H, now: number): Granted {
    this.unsettled.add(handle);
    return { ok: true, reservation: { items: [...items], handle, at: now } };
  }

  protected get closed(): boolean {
    return this.isClosed;
  }

  /** Marks the store closed; false when it already was. */
  protected markClosed(): boolean {
    if (this.isClosed) return false;
    this.isClosed = true;
    return true;
  }

  protected assertOpen(): void {
    if (this.isClosed) throw new Error('counter store is closed');
  }

  private isUnsettled(handle: unknown): handle is H {
    return typeof handle === 'object' && handle !== null && this.unsettled.has(handle);
  }

  private settle(handle: unknown): void {
    if (typeof handle === 'object' && handle !== null) this.unsettled.delete(handle);
  }
}
