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
// Opening, locking, durability: those of every SQLite file here (state/sqlite-file.ts).
//
// Cleanup: rows past retention are hidden from reads at once, and deleted at open and every
// SWEEP_EVERY writes, at most SWEEP_BATCH at a time (whatever their prefix).
import { SqliteFile, type Database, type SqliteSchema, type Statement, type TransactionFn } from '../state/sqlite-file.js';
import { newApprovalId } from './ids.js';
import { applyChange, asOf, isOpen, newStored, type Change, type StoredApproval } from './transitions.js';
import { RETENTION_MS, type ApprovalRecord, type ApprovalStatus, type ApprovalStore, type ChangeOutcome, type Decision, type NewApproval } from './types.js';

const SWEEP_EVERY = 100;
const SWEEP_BATCH = 1000;

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

const APPROVAL_FILE: SqliteSchema = {
  name: 'approval store',
  /** "IAPR": an Intercept approval store, so a counter store or a foreign database is refused. */
  applicationId: 0x49415052,
  version: 1,
  create: (db) => db.exec(SCHEMA),
};

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
    return SqliteFile.open(path, APPROVAL_FILE, options.busyTimeoutMs, (file) => {
      const store = new SqliteApprovalStore(file, options.prefix ?? '');
      store.sweepQuietly((options.now ?? Date.now)());
      return store;
    });
  }

  private constructor(
    private readonly file: SqliteFile,
    private readonly prefix: string,
  ) {
    const db: Database = file.db;
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
    const record = await this.file.retrying(() => this.createTx.immediate(request));
    this.wrote(now);
    return record;
  }

  async get(id: string, now: number): Promise<ApprovalRecord | undefined> {
    this.assertOpen();
    const row = await this.file.retrying(() => this.sql.row.get(this.prefix, id) as Row | undefined);
    return row && this.view([stored(row)], now)[0];
  }

  async list(now: number, filter: { status?: ApprovalStatus } = {}): Promise<ApprovalRecord[]> {
    this.assertOpen();
    const rows = await this.file.retrying(() => this.sql.list.all(this.prefix, now - RETENTION_MS) as Row[]);
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
    const row = await this.file.retrying(() => this.sql.open.get(this.prefix, binding, now) as Row | undefined);
    return row && (JSON.parse(row.record) as ApprovalRecord);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.file.close();
  }

  /** Deletes up to one batch of rows past retention (any prefix); returns how many. */
  async sweep(now: number): Promise<number> {
    this.assertOpen();
    this.writesSinceSweep = 0;
    return this.file.retrying(() => this.sql.sweep.run(now - RETENTION_MS).changes);
  }

  /** Rows in the file, past retention or not, of every prefix (for tests and metrics). */
  async rowCount(): Promise<number> {
    this.assertOpen();
    return this.file.guard(() => this.sql.count.get() as number);
  }

  // -------------------------------------------------------------- internals

  private async change(id: string, change: Change, now: number): Promise<ChangeOutcome> {
    this.assertOpen();
    const outcome = await this.file.retrying(() => this.changeTx.immediate(id, change, now));
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

  private sweepQuietly(now: number): void {
    this.writesSinceSweep = 0;
    try {
      this.sql.sweep.run(now - RETENTION_MS);
    } catch {
      // Cleanup only; the next sweep tries again.
    }
  }
}
