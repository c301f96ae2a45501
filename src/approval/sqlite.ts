// The SQLite approval store: requests in their own file (approvals.sqlite beside the counter
// store's intercept.sqlite), shared by every process on the machine: the proxies that ask and
// the CLI that decides. Status rules are in transitions.ts; behaviour matches the memory store.
//
// Schema (version 1, in PRAGMA user_version; application_id "IAPR" marks the file):
//   approvals (prefix, id) -> binding, status, requested_at, expires_at, final_at, record
//     `record` is the whole ApprovalRecord as JSON; the other columns repeat what queries need.
//     `final_at` is when the request became final or, while open, the latest it can
//     (expires_at), so one indexed column says when a row is past retention. `prefix` is the
//     namespace: several policies share the file. Ties of requested_at are ordered by rowid,
//     i.e. by creation.
//
// Atomicity: every change of status (decide, withdraw, expire, claim) is one `BEGIN IMMEDIATE`
// transaction that reads the row's current status and writes only if it allows the change, so
// of two processes deciding (or claiming) the same request, exactly one succeeds.
//
// Reads take no lock (WAL). A pending or approved request past expires_at reads as expired;
// storing that is best effort (one short attempt at the lock, else the next reader or writer
// does it): every reader computes the same expired record, so nothing depends on the write.
//
// Locking, durability: as the counter store (state/sqlite.ts). WAL with synchronous=NORMAL; a
// writer that finds the lock taken waits at most SYNC_BUSY_MS inside SQLite, then retries on a
// timer until busyTimeoutMs, so the event loop is never blocked for long.
//
// Cleanup: rows past retention are hidden from reads at once, and deleted at open and every
// SWEEP_EVERY writes, at most SWEEP_BATCH at a time (whatever their prefix).
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { newApprovalId } from './ids.js';
import { applyChange, asOf, isOpen, newStored, type Change, type StoredApproval } from './transitions.js';
import { RETENTION_MS, type ApprovalRecord, type ApprovalStatus, type ApprovalStore, type ChangeOutcome, type Decision, type NewApproval } from './types.js';

const SCHEMA_VERSION = 1;
/** "IAPR": an Intercept approval store; a counter store or a foreign database is refused. */
const APPLICATION_ID = 0x49415052;
const SWEEP_EVERY = 100;
const SWEEP_BATCH = 1000;
const DEFAULT_BUSY_TIMEOUT_MS = 5000;
/** How long SQLite itself may block the event loop waiting for another process's lock. */
const SYNC_BUSY_MS = 2;
const MAX_RETRY_PAUSE_MS = 25;

// ---------------------------------------------------------------- better-sqlite3 (minimal types)

interface Statement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  pluck(toggle?: boolean): Statement;
}

interface TransactionFn<A extends unknown[], R> {
  (...args: A): R;
  immediate(...args: A): R;
}

interface Database {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): TransactionFn<A, R>;
  close(): void;
}

type DatabaseConstructor = new (path: string, options?: { timeout?: number }) => Database;

let DatabaseClass: DatabaseConstructor | undefined;
function loadDatabaseClass(): DatabaseConstructor {
  DatabaseClass ??= createRequire(import.meta.url)('better-sqlite3') as DatabaseConstructor;
  return DatabaseClass;
}

// ---------------------------------------------------------------- the store

export interface SqliteApprovalStoreOptions {
  /** Namespace of every row (the proxy's --state-prefix). */
  prefix?: string;
  /** How long a write waits in all for another process's lock before rejecting (ms). */
  busyTimeoutMs?: number;
  /** The clock for the sweep at open (other calls are given `now`); defaults to Date.now. */
  now?: () => number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS approvals (
    prefix TEXT NOT NULL,
    id TEXT NOT NULL,
    binding TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    final_at INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (prefix, id)
  );
  CREATE INDEX IF NOT EXISTS approvals_by_time ON approvals (prefix, requested_at);
  CREATE INDEX IF NOT EXISTS approvals_by_binding ON approvals (prefix, binding, requested_at);
  CREATE INDEX IF NOT EXISTS approvals_by_final ON approvals (final_at);
`;

interface Row {
  record: string;
  final_at: number;
}

const stored = (row: Row): StoredApproval => ({ record: JSON.parse(row.record) as ApprovalRecord, finalAt: row.final_at });

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class SqliteApprovalStore implements ApprovalStore {
  private closed = false;
  private writesSinceSweep = 0;
  private readonly sql: {
    insert: Statement;
    row: Statement;
    update: Statement;
    remove: Statement;
    list: Statement;
    open: Statement;
    sweep: Statement;
    count: Statement;
  };
  private readonly createTx: TransactionFn<[NewApproval], ApprovalRecord>;
  private readonly changeTx: TransactionFn<[string, Change, number], ChangeOutcome>;
  private readonly settleTx: TransactionFn<[string[], number], void>;

  /**
   * Opens (creating if needed) the store at `path`, e.g. `<state-dir>/approvals.sqlite`; a new
   * directory gets mode 0700 and a new file 0600. Throws an Error naming the path when the file
   * cannot be opened or is not an approval store.
   */
  static open(path: string, options: SqliteApprovalStoreOptions = {}): SqliteApprovalStore {
    let db: Database | undefined;
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      closeSync(openSync(path, 'a', 0o600));
      db = new (loadDatabaseClass())(path, { timeout: busyTimeoutMs });
      const store = new SqliteApprovalStore(db, path, busyTimeoutMs, options.prefix ?? '');
      store.sweepQuietly((options.now ?? Date.now)());
      return store;
    } catch (err) {
      try {
        db?.close();
      } catch {
        // The first error is the one to report.
      }
      throw new Error(`cannot open the approval store at ${path}: ${messageOf(err)}`, { cause: err });
    }
  }

  private constructor(
    private readonly db: Database,
    readonly path: string,
    private readonly busyTimeoutMs: number,
    private readonly prefix: string,
  ) {
    // Opening may wait for the lock as long as it takes: nothing else runs yet.
    db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.transaction(() => this.migrate()).immediate();
    db.pragma(`busy_timeout = ${SYNC_BUSY_MS}`);

    const cols = 'record, final_at';
    this.sql = {
      insert: db.prepare(
        `INSERT INTO approvals (prefix, id, binding, status, requested_at, expires_at, final_at, record)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      row: db.prepare(`SELECT ${cols} FROM approvals WHERE prefix = ? AND id = ?`),
      update: db.prepare('UPDATE approvals SET status = ?, final_at = ?, record = ? WHERE prefix = ? AND id = ?'),
      remove: db.prepare('DELETE FROM approvals WHERE prefix = ? AND id = ?'),
      list: db.prepare(`SELECT ${cols} FROM approvals WHERE prefix = ? AND final_at > ? ORDER BY requested_at DESC, rowid DESC`),
      open: db.prepare(
        `SELECT ${cols} FROM approvals WHERE prefix = ? AND binding = ? AND status IN ('pending', 'approved') AND expires_at > ?
         ORDER BY requested_at DESC, rowid DESC LIMIT 1`,
      ),
      sweep: db.prepare(
        `DELETE FROM approvals WHERE rowid IN (SELECT rowid FROM approvals WHERE final_at <= ? LIMIT ${SWEEP_BATCH})`,
      ),
      count: db.prepare('SELECT count(*) FROM approvals').pluck(),
    };

    this.createTx = db.transaction((request: NewApproval) => {
      for (;;) {
        const fresh = newStored(request, newApprovalId());
        const r = fresh.record;
        // An id already taken (80 random bits: practically never) is drawn again.
        if (this.sql.row.get(this.prefix, r.id) !== undefined) continue;
        this.sql.insert.run(this.prefix, r.id, r.binding, r.status, r.requestedAt, r.expiresAt, fresh.finalAt, JSON.stringify(r));
        return r;
      }
    });
    this.changeTx = db.transaction((id: string, change: Change, now: number) => {
      const row = this.sql.row.get(this.prefix, id) as Row | undefined;
      if (row === undefined) return { ok: false, reason: 'not_found' } as const;
      const { outcome, write } = applyChange(stored(row), change, now);
      if (outcome.ok === false && outcome.reason === 'not_found') this.sql.remove.run(this.prefix, id);
      else if (write) this.write(write);
      return outcome;
    });
    // Stores the lazy expiry of rows read as expired, re-reading each under the lock.
    this.settleTx = db.transaction((ids: string[], now: number) => {
      for (const id of ids) {
        const row = this.sql.row.get(this.prefix, id) as Row | undefined;
        if (row === undefined) continue;
        const before = stored(row);
        const current = asOf(before, now);
        if (current !== undefined && current !== before) this.write(current);
      }
    });
  }

  async create(request: NewApproval, now: number): Promise<ApprovalRecord> {
    this.assertOpen();
    const record = await this.retrying(() => this.createTx.immediate(request));
    this.wrote(now);
    return record;
  }

  async get(id: string, now: number): Promise<ApprovalRecord | undefined> {
    this.assertOpen();
    const row = await this.retrying(() => this.sql.row.get(this.prefix, id) as Row | undefined);
    return row && this.view([stored(row)], now)[0];
  }

  async list(now: number, filter: { status?: ApprovalStatus } = {}): Promise<ApprovalRecord[]> {
    this.assertOpen();
    const rows = await this.retrying(() => this.sql.list.all(this.prefix, now - RETENTION_MS) as Row[]);
    const records = this.view(rows.map(stored), now);
    return filter.status === undefined ? records : records.filter((r) => r.status === filter.status);
  }

  decide(id: string, decision: Decision, now: number): Promise<ChangeOutcome> {
    return this.change(id, { kind: 'decide', decision }, now);
  }

  withdraw(id: string, now: number): Promise<ChangeOutcome> {
    return this.change(id, { kind: 'withdraw' }, now);
  }

  expire(id: string, now: number): Promise<ChangeOutcome> {
    return this.change(id, { kind: 'expire' }, now);
  }

  claim(id: string, now: number): Promise<ChangeOutcome> {
    return this.change(id, { kind: 'claim' }, now);
  }

  async findOpen(binding: string, now: number): Promise<ApprovalRecord | undefined> {
    this.assertOpen();
    // Only rows open and unexpired as of now qualify: nothing to expire on the way.
    const row = await this.retrying(() => this.sql.open.get(this.prefix, binding, now) as Row | undefined);
    return row && (JSON.parse(row.record) as ApprovalRecord);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.guard(() => this.db.close());
  }

  /** Deletes up to one batch of rows past retention (any prefix); returns how many. */
  async sweep(now: number): Promise<number> {
    this.assertOpen();
    this.writesSinceSweep = 0;
    return this.retrying(() => this.sql.sweep.run(now - RETENTION_MS).changes);
  }

  /** Rows in the file, past retention or not, of every prefix (for tests and metrics). */
  async rowCount(): Promise<number> {
    this.assertOpen();
    return this.guard(() => this.sql.count.get() as number);
  }

  // -------------------------------------------------------------- internals

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    const appId = this.db.pragma('application_id', { simple: true }) as number;
    if (version === 0) {
      const tables = this.db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").pluck().get() as number;
      if (tables > 0 && appId !== APPLICATION_ID) throw new Error('the file is an SQLite database of another application');
      this.db.exec(SCHEMA);
      this.db.pragma(`application_id = ${APPLICATION_ID}`);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
      return;
    }
    if (appId !== APPLICATION_ID) throw new Error('the file is an SQLite database of another application');
    if (version > SCHEMA_VERSION) {
      throw new Error(`the file has schema version ${version}; this version of Intercept reads up to ${SCHEMA_VERSION}`);
    }
  }

  private async change(id: string, change: Change, now: number): Promise<ChangeOutcome> {
    this.assertOpen();
    const outcome = await this.retrying(() => this.changeTx.immediate(id, change, now));
    this.wrote(now);
    return outcome;
  }

  private write(s: StoredApproval): void {
    this.sql.update.run(s.record.status, s.finalAt, JSON.stringify(s.record), this.prefix, s.record.id);
  }

  /** The records as of `now`, past retention left out; stores any lazy expiry, best effort. */
  private view(rows: StoredApproval[], now: number): ApprovalRecord[] {
    const out: ApprovalRecord[] = [];
    const expired: string[] = [];
    for (const row of rows) {
      const current = asOf(row, now);
      if (current === undefined) continue;
      if (current !== row && isOpen(row.record.status)) expired.push(row.record.id);
      out.push(current.record);
    }
    if (expired.length > 0) {
      try {
        this.settleTx.immediate(expired, now);
      } catch {
        // Busy (or failing): every reader sees the same expiry; the next write stores it.
      }
    }
    return out;
  }

  private wrote(now: number): void {
    if (++this.writesSinceSweep >= SWEEP_EVERY) this.sweepQuietly(now);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('approval store is closed');
  }

  /** Runs a database operation, naming the file in any error it raises. */
  private guard<T>(op: () => T): T {
    try {
      return op();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const wrapped = new Error(`approval store ${this.path}: ${messageOf(err)}`, { cause: err });
      if (typeof code === 'string') Object.assign(wrapped, { code });
      throw wrapped;
    }
  }

  /** Runs a transaction; while another process holds the write lock, tries again on a timer
   * (pauses growing to MAX_RETRY_PAUSE_MS) until busyTimeoutMs has passed. */
  private async retrying<T>(op: () => T): Promise<T> {
    const deadline = performance.now() + this.busyTimeoutMs;
    let pause = 1;
    for (;;) {
      try {
        return this.guard(op);
      } catch (err) {
        const left = deadline - performance.now();
        if (!isBusy(err) || left <= 0 || this.closed) throw err;
        await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
        pause = Math.min(pause * 2, MAX_RETRY_PAUSE_MS);
      }
    }
  }

  private sweepQuietly(now: number): void {
    this.writesSinceSweep = 0;
    try {
      this.sql.sweep.run(now - RETENTION_MS);
    } catch {
      // Cleanup only; the next sweep tries again.
    }
  }
}
