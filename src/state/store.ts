// The counter store contract. Every backend (memory, SQLite, Redis) implements it, and one
// contract test suite runs against each. Calls are async so that persistent and shared
// backends fit without changing callers; `now` is passed in so tests control time.
import type { Limit, Window } from '../policy/model.js';

/** One counter to charge in a reservation. `key` is the full storage key (scope and session
 * already applied, see keys.ts). */
export interface ReserveItem {
  key: string;
  window: Window;
  /** Finite and >= 0. */
  amount: number;
  /** All must hold after adding `amount`; empty means count without a cap. */
  limits: Limit[];
}

/** A granted reservation: the counters were charged and stay charged unless rolled back. */
export interface Reservation {
  readonly items: readonly ReserveItem[];
  /** Backend-specific handle (e.g. the rolling-window entry ids). */
  readonly handle: unknown;
  /** When it was granted (ms since the epoch); calendar rollbacks only undo within that window. */
  readonly at: number;
}

export type ReserveOutcome =
  | { ok: true; reservation: Reservation }
  | {
      ok: false;
      /** Index into the items of the first counter that would exceed a limit. */
      index: number;
      /** That counter's value before this call. */
      current: number;
      /** How long until the call could fit, when that can be known. */
      retryAfterMs?: number;
    };

export interface CounterRead {
  key: string;
  window: Window;
}

export interface CounterStore {
  /** Atomically checks every item's limits and, only if all hold, charges every item. */
  reserve(items: ReserveItem[], now: number): Promise<ReserveOutcome>;
  /** The upstream executed the call: the charge is final. */
  commit(reservation: Reservation, now: number): Promise<void>;
  /** The upstream answered with a JSON-RPC error: undo the charge (a calendar charge is only
   * undone while its window is still current). */
  rollback(reservation: Reservation, now: number): Promise<void>;
  /** Current values within each counter's window (0 when absent or expired). */
  read(counters: CounterRead[], now: number): Promise<number[]>;
  close(): Promise<void>;
}
