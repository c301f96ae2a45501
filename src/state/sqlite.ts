// The SQLite counter store: the embedded default. Counters live in one file and survive
// restarts, and several proxy processes on one machine may share the file: every reservation
// is a single `BEGIN IMMEDIATE` transaction (one writer at a time across processes) that reads
// each counter, checks every limit and writes every charge, or writes nothing. Behaviour
// matches the memory store (memory.ts) call for call; the contract suite pins it down.
//
// Schema (version 2, kept in PRAGMA user_version so later versions can migrate):
//   calendar_counters (key, unit, window_start) -> value, expires_at
//     One row per key and calendar window. A charge adds to the row of the window it falls
//     in, so a rollback targets exactly the window it charged and a newer window is never
//     touched. `unit` is part of the key so that a counter whose window changes (after a
//     policy reload) starts again instead of reading another unit's value.
//   rolling_buckets (key, bucket_start) -> bucket_end, amount, expires_at
//     A rolling window's sub-window buckets (rolling.ts): at most ROLLING_BUCKETS + 1 rows
//     count for a key, whatever the limit and however many calls the window saw; a counter's
//     value is the sum of its rows whose end is within the window. A charge also deletes the
//     key's buckets that no longer count, so an active key never holds more.
//     (Version 1 kept one row per call in rolling_entries; opening such a file turns each of
//     its rows into a 1 ms bucket, which counts exactly as long as the row did.)
//   Every row carries `expires_at` (window end, or bucket end + window length), so the sweep
//   deletes expired rows without knowing any window; both tables are indexed on it.
//
// Cleanup: at open and every SWEEP_EVERY reservations, at most SWEEP_BATCH expired rows per
// table are deleted (bounded work; a backlog drains over several sweeps).
//
// Opening, durability and locking are those of every SQLite file here (sqlite-file.ts): WAL
// with synchronous=NORMAL, survives `kill -9`; a writer that finds another process's lock
// retries on a timer, never blocking the event loop, and after `busyTimeoutMs` (default 5 s)
// the call rejects and the proxy's state fail mode decides.
//
// Arithmetic: amounts are REAL. Calendar values and buckets grow by one IEEE addition per
// charge, exactly as in memory. Rolling sums use SQLite's total(), which sums with error
// compensation, so for amounts that binary floating point cannot represent exactly the result
// may differ from a naive sum in the last bit; exact fractions agree exactly.
import { SqliteFile, type Database, type SqliteSchema, type Statement, type TransactionFn } from './sqlite-file.js';
import type { CounterRead, Reservation, ReserveItem, ReserveOutcome } from './store.js';
import type { CalendarUnit, Window } from '../policy/model.js';
import { calendarWindowEnd, calendarWindowStart } from './windows.js';
import { checkItems, findRefusal, retryAfterMs } from './reservations.js';
import { BaseCounterStore, calendarUndoApplies } from './base-store.js';
import { bucketAt, bucketExpiry, rollingGeometry } from './rolling.js';

const SWEEP_EVERY = 200;
const SWEEP_BATCH = 2000;

export interface SqliteStoreOptions {
  /** Namespace put before every key (the proxy's --state-prefix): every policy on a machine
   * shares the default file, and no two may share a counter. */
  prefix?: string;
  /** How long a call waits in all for another process's write lock before rejecting (ms); the
   * event loop is not blocked meanwhile. */
  busyTimeoutMs?: number;
  /** The clock for the sweep at open (other calls are given `now`); defaults to Date.now. */
  now?: () => number;
}

/** What rollback needs for one item: the calendar window or the rolling bucket it charged
 * (nothing for an amount of 0 on a rolling window: nothing was added). */
type Charge =
  | { kind: 'calendar'; key: string; unit: CalendarUnit; windowStart: number; amount: number }
  | { kind: 'rolling'; key: string; bucketStart: number; amount: number }
  | undefined;

/** What `Reservation.handle` points at. */
interface Handle {
  charges: Charge[];
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS calendar_counters (
    key TEXT NOT NULL,
    unit TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    value REAL NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key, unit, window_start)
  );
  CREATE INDEX IF NOT EXISTS calendar_counters_expiry ON calendar_counters (expires_at);
`;

const ROLLING_SCHEMA = `
  CREATE TABLE IF NOT EXISTS rolling_buckets (
    key TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    bucket_end INTEGER NOT NULL,
    amount REAL NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key, bucket_start)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS rolling_buckets_expiry ON rolling_buckets (expires_at);
`;

/** Version 1's exact log, one row per call, as 1 ms buckets (each counts as long as its row). */
const MIGRATE_1_TO_2 = `
  INSERT INTO rolling_buckets (key, bucket_start, bucket_end, amount, expires_at)
    SELECT key, at, at + 1, total(amount), max(expires_at) + 1 FROM rolling_entries GROUP BY key, at;
  DROP TABLE rolling_entries;
`;

const COUNTER_FILE: SqliteSchema = {
  name: 'counter store',
  /** "ICPT": an Intercept counter store, so a foreign database is refused. */
  applicationId: 0x49435054,
  version: 2,
  create: (db) => db.exec(SCHEMA + ROLLING_SCHEMA),
  upgrade: (db) => db.exec(ROLLING_SCHEMA + MIGRATE_1_TO_2), // from 1, the only older version
};

export class SqliteCounterStore extends BaseCounterStore<Handle> {
  private reservesSinceSweep = 0;

  private readonly sql: {
    calendarValue: Statement;
    calendarCharge: Statement;
    calendarUndo: Statement;
    rollingSum: Statement;
    rollingBuckets: Statement;
    rollingCharge: Statement;
    rollingTrim: Statement;
    rollingUndo: Statement;
    sweepCalendar: Statement;
    sweepRolling: Statement;
    countCalendar: Statement;
    countRolling: Statement;
  };
  private readonly reserveTx: TransactionFn<[ReserveItem[], number], ReserveOutcome>;
  private readonly rollbackTx: TransactionFn<[Handle, number], void>;
  private readonly readTx: TransactionFn<[CounterRead[], number], number[]>;
  private readonly sweepTx: TransactionFn<[number], number>;

  /**
   * Opens (creating if needed) the store at `path`, e.g. `<state-dir>/intercept.sqlite`.
   * Missing parent directories are created with mode 0700 and a new file with mode 0600.
   * Throws an Error naming the path when the file cannot be opened or is not a counter store.
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteCounterStore {
    return SqliteFile.open(path, COUNTER_FILE, options.busyTimeoutMs, (file) => {
      const store = new SqliteCounterStore(file, options.prefix ?? '');
      store.sweepQuietly((options.now ?? Date.now)());
      return store;
    });
  }

  private constructor(
    private readonly file: SqliteFile,
    private readonly prefix: string,
  ) {
    // Undo is one transaction: a rollback that failed (e.g. busy) may be tried again.
    super('after-undo');
    const db: Database = file.db;
    this.sql = {
      calendarValue: db
        .prepare('SELECT value FROM calendar_counters WHERE key = ? AND unit = ? AND window_start = ?')
        .pluck(),
      calendarCharge: db.prepare(
        `INSERT INTO calendar_counters (key, unit, window_start, value, expires_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (key, unit, window_start) DO UPDATE SET value = value + excluded.value`,
      ),
      calendarUndo: db.prepare(
        'UPDATE calendar_counters SET value = max(0, value - ?) WHERE key = ? AND unit = ? AND window_start = ?',
      ),
      // The buckets that still count: their end is within the last window.
      rollingSum: db.prepare('SELECT total(amount) FROM rolling_buckets WHERE key = ? AND bucket_end > ?').pluck(),
      rollingBuckets: db.prepare(
        'SELECT bucket_end AS at, amount FROM rolling_buckets WHERE key = ? AND bucket_end > ? ORDER BY bucket_end',
      ),
      rollingCharge: db.prepare(
        `INSERT INTO rolling_buckets (key, bucket_start, bucket_end, amount, expires_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (key, bucket_start) DO UPDATE SET amount = amount + excluded.amount,
           bucket_end = max(bucket_end, excluded.bucket_end), expires_at = max(expires_at, excluded.expires_at)`,
      ),
      rollingTrim: db.prepare('DELETE FROM rolling_buckets WHERE key = ? AND bucket_end <= ?'),
      rollingUndo: db.prepare(
        'UPDATE rolling_buckets SET amount = max(0, amount - ?) WHERE key = ? AND bucket_start = ? AND expires_at > ?',
      ),
      sweepCalendar: db.prepare(
        `DELETE FROM calendar_counters WHERE rowid IN
           (SELECT rowid FROM calendar_counters WHERE expires_at <= ? LIMIT ${SWEEP_BATCH})`,
      ),
      sweepRolling: db.prepare(
        `DELETE FROM rolling_buckets WHERE (key, bucket_start) IN
           (SELECT key, bucket_start FROM rolling_buckets WHERE expires_at <= ? LIMIT ${SWEEP_BATCH})`,
      ),
      countCalendar: db.prepare('SELECT count(*) FROM calendar_counters').pluck(),
      countRolling: db.prepare('SELECT count(*) FROM rolling_buckets').pluck(),
    };

    this.reserveTx = db.transaction((items: ReserveItem[], now: number) => this.reserveNow(items, now));
    this.rollbackTx = db.transaction((handle: Handle, now: number) => this.undoNow(handle, now));
    this.readTx = db.transaction((counters: CounterRead[], now: number) =>
      counters.map((c) => this.valueAt(c.key, c.window, now)),
    );
    this.sweepTx = db.transaction((now: number) => {
      return this.sql.sweepCalendar.run(now).changes + this.sql.sweepRolling.run(now).changes;
    });
  }

  async reserve(items: ReserveItem[], now: number): Promise<ReserveOutcome> {
    this.assertOpen();
    checkItems(items);
    const scoped = this.prefix === '' ? items : items.map((item) => ({ ...item, key: this.prefix + item.key }));
    const outcome = await this.file.retrying(() => this.reserveTx.immediate(scoped, now));
    if (++this.reservesSinceSweep >= SWEEP_EVERY) this.sweepQuietly(now);
    return outcome;
  }

  async read(counters: CounterRead[], now: number): Promise<number[]> {
    this.assertOpen();
    if (counters.length === 0) return [];
    // One read transaction: every value comes from the same snapshot.
    const scoped = this.prefix === '' ? counters : counters.map((c) => ({ ...c, key: this.prefix + c.key }));
    return this.file.retrying(() => this.readTx.deferred(scoped, now));
  }

  async close(): Promise<void> {
    if (!this.markClosed()) return;
    this.file.close();
  }

  protected async undo(_reservation: Reservation, handle: Handle, now: number): Promise<void> {
    await this.file.retrying(() => this.rollbackTx.immediate(handle, now));
  }

  /** Deletes up to one batch of expired rows per table; returns how many were deleted. */
  async sweep(now: number): Promise<number> {
    this.assertOpen();
    this.reservesSinceSweep = 0;
    return this.file.retrying(() => this.sweepTx.immediate(now));
  }

  /** Rows currently held, expired or not (for tests and metrics). */
  async rowCount(): Promise<{ calendar: number; rolling: number }> {
    this.assertOpen();
    return this.file.guard(() => ({
      calendar: this.sql.countCalendar.get() as number,
      rolling: this.sql.countRolling.get() as number,
    }));
  }

  // -------------------------------------------------------------- inside transactions

  private reserveNow(items: ReserveItem[], now: number): ReserveOutcome {
    const refusal = findRefusal(
      items,
      (item) => this.valueAt(item.key, item.window, now),
      (item, current, need) =>
        retryAfterMs(item, current, need, now, () =>
          item.window.kind === 'rolling'
            ? (this.sql.rollingBuckets.all(item.key, now - item.window.seconds * 1000) as { at: number; amount: number }[])
            : [],
        ),
    );
    if (refusal) return refusal;

    // Charge.
    return this.grant(items, { charges: items.map((item) => this.charge(item, now)) }, now);
  }

  private valueAt(key: string, window: Window, now: number): number {
    if (window.kind === 'calendar') {
      const value = this.sql.calendarValue.get(key, window.unit, calendarWindowStart(window.unit, now));
      return typeof value === 'number' ? value : 0;
    }
    return this.sql.rollingSum.get(key, now - window.seconds * 1000) as number;
  }

  private charge(item: ReserveItem, now: number): Charge {
    const { key, window, amount } = item;
    if (window.kind === 'calendar') {
      const windowStart = calendarWindowStart(window.unit, now);
      this.sql.calendarCharge.run(key, window.unit, windowStart, amount, calendarWindowEnd(window.unit, now));
      return { kind: 'calendar', key, unit: window.unit, windowStart, amount };
    }
    if (amount === 0) return undefined; // adds nothing to the sum
    const { windowMs, bucketMs } = rollingGeometry(window.seconds);
    const { start, end } = bucketAt(now, bucketMs);
    // What no longer counts goes first, so an active key holds no more than a window of buckets.
    this.sql.rollingTrim.run(key, now - windowMs);
    this.sql.rollingCharge.run(key, start, end, amount, bucketExpiry(end, windowMs));
    return { kind: 'rolling', key, bucketStart: start, amount };
  }

  private undoNow(handle: Handle, now: number): void {
    for (const charge of handle.charges) {
      if (charge === undefined) continue;
      if (charge.kind === 'calendar') {
        if (!calendarUndoApplies(charge.unit, charge.windowStart, now)) continue;
        this.sql.calendarUndo.run(charge.amount, charge.key, charge.unit, charge.windowStart);
      } else {
        // A bucket that no longer counts (or was swept) is left alone.
        this.sql.rollingUndo.run(charge.amount, charge.key, charge.bucketStart, now);
      }
    }
  }

  /** A sweep whose failure (e.g. another process holding the lock) is left to the next one. */
  private sweepQuietly(now: number): void {
    this.reservesSinceSweep = 0;
    try {
      this.sweepTx.immediate(now);
    } catch {
      // Cleanup only; the next sweep tries again.
    }
  }
}
