// One SQLite file as both SQLite stores use it: the counter store (sqlite.ts, intercept.sqlite)
// and the approval store (approval/sqlite.ts, approvals.sqlite).
//
// Opening: a missing directory is made with mode 0700 and the file with 0600 (SQLite gives the
// -wal and -shm files the same). The file's application_id says which store it is, so a
// foreign database or the other store's file is refused; PRAGMA user_version holds the schema
// version, migrated forward inside one transaction, and a newer one is refused.
//
// Durability: WAL with synchronous=NORMAL. A committed transaction is in the WAL file before
// COMMIT returns, so it survives the process being killed (even `kill -9`); a power loss or OS
// crash may lose the last transactions before a checkpoint syncs them.
//
// Locking: better-sqlite3 is synchronous, so within one process no two calls interleave. Across
// processes a writer that finds the lock taken does not block: SQLite waits at most
// SYNC_BUSY_MS, then `retrying` tries again on a timer with growing pauses, so the event loop
// keeps serving every other message. After `busyTimeoutMs` in all the last error stands.
// Readers never wait (WAL).
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

export const DEFAULT_BUSY_TIMEOUT_MS = 5000;
/** How long SQLite itself may block the event loop waiting for another process's lock. */
const SYNC_BUSY_MS = 2;
/** The longest pause between two attempts while the lock is taken. */
const MAX_RETRY_PAUSE_MS = 25;

// ---------------------------------------------------------------- better-sqlite3 (minimal types)
// The package ships no types; this is the part of its API used here.

export interface Statement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  /** Return only the first column of each row. */
  pluck(toggle?: boolean): Statement;
}

export interface TransactionFn<A extends unknown[], R> {
  (...args: A): R;
  deferred(...args: A): R;
  immediate(...args: A): R;
}

export interface Database {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): TransactionFn<A, R>;
  close(): void;
}

type DatabaseConstructor = new (path: string, options?: { timeout?: number }) => Database;

/** Loaded on first open, so that importing a store never fails where the native addon is
 * missing and SQLite is not used. */
let DatabaseClass: DatabaseConstructor | undefined;
function loadDatabaseClass(): DatabaseConstructor {
  DatabaseClass ??= createRequire(import.meta.url)('better-sqlite3') as DatabaseConstructor;
  return DatabaseClass;
}

// ---------------------------------------------------------------- the file

/** What a store keeps in its file. */
export interface SqliteSchema {
  /** In messages: "counter store", "approval store". */
  name: string;
  /** PRAGMA application_id of the store's files. */
  applicationId: number;
  /** The current schema version. */
  version: number;
  /** Creates the current schema in an empty file. */
  create(db: Database): void;
  /** Brings a file of an older version (>= 1) to the current one. */
  upgrade?(db: Database, from: number): void;
}

/** SQLITE_BUSY and its extended codes: another connection holds the lock. */
function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class SqliteFile {
  private closed = false;

  private constructor(
    readonly db: Database,
    /** The file, for error messages. */
    readonly path: string,
    private readonly name: string,
    private readonly busyTimeoutMs: number,
  ) {}

  /**
   * Opens (creating and migrating if needed) the file at `path` and gives it to `make`, which
   * builds the store on it. Throws an Error naming the path when the file cannot be opened, is
   * not this store's, or `make` fails; the database is closed then.
   */
  static open<T>(path: string, schema: SqliteSchema, busyTimeoutMs: number | undefined, make: (file: SqliteFile) => T): T {
    const busy = busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    let db: Database | undefined;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // Create the file ourselves for its mode.
      closeSync(openSync(path, 'a', 0o600));
      db = new (loadDatabaseClass())(path, { timeout: busy });
      // Opening (and migrating) may wait for the lock as long as it takes: nothing else runs yet.
      db.pragma(`busy_timeout = ${Math.trunc(busy)}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      const opened = db;
      db.transaction(() => migrate(opened, schema)).immediate();
      // From here on a taken lock is waited for on a timer (see `retrying`), not in SQLite.
      db.pragma(`busy_timeout = ${SYNC_BUSY_MS}`);
      return make(new SqliteFile(db, path, schema.name, busy));
    } catch (err) {
      try {
        db?.close();
      } catch {
        // Already failing; the first error is the one to report.
      }
      throw new Error(`cannot open the ${schema.name} at ${path}: ${messageOf(err)}`, { cause: err });
    }
  }

  /** Runs a database operation, naming the file in any error it raises (its code kept). */
  guard<T>(op: () => T): T {
    try {
      return op();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const wrapped = new Error(`${this.name} ${this.path}: ${messageOf(err)}`, { cause: err });
      if (typeof code === 'string') Object.assign(wrapped, { code });
      throw wrapped;
    }
  }

  /** Runs an operation; while another process holds the write lock, tries again on a timer
   * (pauses growing to MAX_RETRY_PAUSE_MS) until busyTimeoutMs has passed, so the event loop
   * keeps serving other messages. Then the last error stands. */
  async retrying<T>(op: () => T): Promise<T> {
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

  close(): void {
    this.closed = true;
    this.guard(() => this.db.close());
  }
}

/** Creates the schema in a new file; refuses a file of another application or a newer version. */
function migrate(db: Database, schema: SqliteSchema): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  const appId = db.pragma('application_id', { simple: true }) as number;
  const foreign = 'the file is an SQLite database of another application';
  if (version === 0) {
    const tables = db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").pluck().get() as number;
    if (tables > 0 && appId !== schema.applicationId) throw new Error(foreign);
    schema.create(db);
    db.pragma(`application_id = ${schema.applicationId}`);
  } else {
    if (appId !== schema.applicationId) throw new Error(foreign);
    if (version > schema.version) {
      throw new Error(`the file has schema version ${version}; this version of Intercept reads up to ${schema.version}`);
    }
    if (version === schema.version) return;
    schema.upgrade?.(db, version);
  }
  db.pragma(`user_version = ${schema.version}`);
}
