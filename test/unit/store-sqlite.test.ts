import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteCounterStore } from '../../src/state/sqlite.js';
import type { ReserveItem } from '../../src/state/store.js';
import type { Window } from '../../src/policy/model.js';
import { counterStoreContract } from './store-contract.js';

// A raw connection to the same file, for looking inside and for holding locks.
interface RawDb {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  prepare(sql: string): { run(...params: unknown[]): unknown; get(...params: unknown[]): unknown };
  exec(sql: string): void;
  close(): void;
}
const RawDatabase = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => RawDb;

const root = mkdtempSync(join(tmpdir(), 'intercept-sqlite-'));
after(() => rmSync(root, { recursive: true, force: true }));
let seq = 0;
/** A path in a directory that does not exist yet. */
const freshPath = (): string => join(root, `store-${++seq}`, 'state', 'intercept.sqlite');

counterStoreContract('SqliteCounterStore', async () => SqliteCounterStore.open(freshPath()));

const MINUTE: Window = { kind: 'calendar', unit: 'minute' };
const DAY: Window = { kind: 'calendar', unit: 'day' };
const ROLL60: Window = { kind: 'rolling', seconds: 60 };
const ROLL3600: Window = { kind: 'rolling', seconds: 3600 };
const T0 = Date.UTC(2026, 0, 15, 10, 0, 0, 0);

const item = (key: string, window: Window, amount = 1, limit?: number): ReserveItem => ({
  key,
  window,
  amount,
  limits: limit === undefined ? [] : [{ value: limit, inclusive: true }],
});

describe('SqliteCounterStore specifics', () => {
  it('creates the file, its private directory and a WAL database with a schema version', async () => {
    const path = freshPath();
    const store = SqliteCounterStore.open(path);
    await store.close();
    assert.equal(statSync(join(path, '..')).mode & 0o777, 0o700);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const raw = new RawDatabase(path);
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(raw.pragma('user_version', { simple: true }), 2);
    } finally {
      raw.close();
    }
  });

  it('keeps calendar and rolling counters across close and reopen', async () => {
    const path = freshPath();
    const now = Date.now();
    const first = SqliteCounterStore.open(path, { now: () => now });
    assert.ok((await first.reserve([item('day', DAY, 3), item('roll', ROLL3600, 2.5)], now)).ok);
    assert.ok((await first.reserve([item('roll', ROLL3600, 1)], now + 1)).ok);
    await first.close();

    const second = SqliteCounterStore.open(path, { now: () => now + 2 });
    assert.deepEqual(
      await second.read(
        [
          { key: 'day', window: DAY },
          { key: 'roll', window: ROLL3600 },
        ],
        now + 2,
      ),
      [3, 3.5],
    );
    // The limits still hold against what the first run charged.
    assert.equal((await second.reserve([item('day', DAY, 1, 3)], now + 3)).ok, false);
    assert.equal((await second.reserve([item('roll', ROLL3600, 1, 4.5)], now + 3)).ok, true);
    await second.close();
  });

  it('two stores on one file see and limit each other’s charges', async () => {
    const path = freshPath();
    const a = SqliteCounterStore.open(path);
    const b = SqliteCounterStore.open(path);
    for (const window of [MINUTE, ROLL60]) {
      const key = `shared-${window.kind}`;
      assert.ok((await a.reserve([item(key, window, 2, 3)], T0)).ok);
      assert.deepEqual(await b.read([{ key, window }], T0), [2]);
      const fromB = await b.reserve([item(key, window, 1, 3)], T0 + 1);
      assert.ok(fromB.ok);
      const refused = await a.reserve([item(key, window, 1, 3)], T0 + 2);
      assert.equal(refused.ok, false);
      assert.equal(!refused.ok && refused.current, 3);
      // B's rollback frees B's charge for A.
      await b.rollback(fromB.reservation, T0 + 3);
      assert.ok((await a.reserve([item(key, window, 1, 3)], T0 + 4)).ok);
    }
    await a.close();
    await b.close();
  });

  it('ignores a reservation made by another store on the same file', async () => {
    const path = freshPath();
    const a = SqliteCounterStore.open(path);
    const b = SqliteCounterStore.open(path);
    for (const window of [MINUTE, ROLL60]) {
      const key = `foreign-${window.kind}`;
      const fromA = await a.reserve([item(key, window)], T0);
      assert.ok(fromA.ok);
      await b.rollback(fromA.reservation, T0);
      assert.deepEqual(await b.read([{ key, window }], T0), [1]);
    }
    await a.close();
    await b.close();
  });

  it('sweeps expired rows every so many reservations and at open, keeping live ones', async () => {
    const path = freshPath();
    const store = SqliteCounterStore.open(path);
    // 3000 expired-to-be rows in each table, 100 counters per reservation.
    for (let r = 0; r < 30; r++) {
      const batch: ReserveItem[] = [];
      for (let i = 0; i < 100; i++) {
        batch.push(item(`cal${r}-${i}`, MINUTE), item(`roll${r}-${i}`, ROLL60));
      }
      assert.ok((await store.reserve(batch, T0)).ok);
    }
    assert.deepEqual(await store.rowCount(), { calendar: 3000, rolling: 3000 });

    const later = T0 + 120_000;
    await store.reserve([item('live-roll', ROLL60, 2)], later - 30_000);
    for (let i = 0; i < 400; i++) await store.reserve([item('live-cal', MINUTE)], later);
    const afterReserves = await store.rowCount();
    assert.ok(afterReserves.calendar < 3000, `calendar rows: ${afterReserves.calendar}`);
    assert.ok(afterReserves.rolling < 3000, `rolling rows: ${afterReserves.rolling}`);

    // Each sweep's work is bounded; repeated sweeps drain the rest.
    while ((await store.sweep(later)) > 0);
    assert.deepEqual(await store.rowCount(), { calendar: 1, rolling: 1 });
    assert.deepEqual(
      await store.read(
        [
          { key: 'live-cal', window: MINUTE },
          { key: 'live-roll', window: ROLL60 },
          { key: 'cal0-0', window: MINUTE },
        ],
        later,
      ),
      [400, 2, 0],
    );
    await store.close();

    // Opening sweeps too: by T0 + 1 h everything above has expired.
    const reopened = SqliteCounterStore.open(path, { now: () => T0 + 3_600_000 });
    assert.deepEqual(await reopened.rowCount(), { calendar: 0, rolling: 0 });
    await reopened.close();
  });

  it('keeps at most a window of rolling buckets per counter, however many calls: 20,000 in a day', async () => {
    const store = SqliteCounterStore.open(freshPath());
    const dayRolling: Window = { kind: 'rolling', seconds: 86_400 };
    for (let i = 0; i < 20_000; i++) assert.ok((await store.reserve([item('busy-day', dayRolling)], T0 + i * 8_640)).ok);
    // 20,000 calls over two days: only the last day's 24-minute buckets (and the one being filled) remain.
    const rows = (await store.rowCount()).rolling;
    assert.ok(rows <= 61, `${rows} rolling rows`);
    // The value: every call whose 24-minute bucket ends within the last day.
    const end = T0 + 20_000 * 8_640;
    const bucket = 1_440_000;
    let expected = 0;
    for (let i = 0; i < 20_000; i++) if ((Math.floor((T0 + i * 8_640) / bucket) + 1) * bucket > end - 86_400_000) expected++;
    assert.ok(expected >= 10_000 && expected <= 10_000 + 167, String(expected));
    assert.deepEqual(await store.read([{ key: 'busy-day', window: dayRolling }], end), [expected]);
    await store.close();
  });

  it('opens a version 1 file, keeping its rolling counts exactly', async () => {
    const path = freshPath();
    mkdirSync(join(path, '..'), { recursive: true });
    const raw = new RawDatabase(path);
    raw.exec(`
      CREATE TABLE calendar_counters (key TEXT NOT NULL, unit TEXT NOT NULL, window_start INTEGER NOT NULL,
        value REAL NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (key, unit, window_start));
      CREATE TABLE rolling_entries (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, at INTEGER NOT NULL,
        amount REAL NOT NULL, expires_at INTEGER NOT NULL);
      PRAGMA application_id = ${0x49435054};
      PRAGMA user_version = 1;
    `);
    const insert = raw.prepare('INSERT INTO rolling_entries (key, at, amount, expires_at) VALUES (?, ?, ?, ?)');
    insert.run('old', T0, 2, T0 + 60_000);
    insert.run('old', T0, 1, T0 + 60_000);
    insert.run('old', T0 + 30_000, 4, T0 + 90_000);
    raw.close();

    const store = SqliteCounterStore.open(path, { now: () => T0 + 31_000 });
    assert.deepEqual(await store.read([{ key: 'old', window: ROLL60 }], T0 + 31_000), [7]);
    // Each old entry still leaves when it did (a millisecond later at most).
    assert.deepEqual(await store.read([{ key: 'old', window: ROLL60 }], T0 + 60_001), [4]);
    assert.deepEqual(await store.read([{ key: 'old', window: ROLL60 }], T0 + 90_001), [0]);
    await store.close();
    const check = new RawDatabase(path);
    try {
      assert.equal(check.pragma('user_version', { simple: true }), 2);
      assert.deepEqual(check.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'rolling_entries'").get(), { n: 0 });
    } finally {
      check.close();
    }
  });

  it('waits for another process’s write lock without blocking the event loop', async () => {
    const path = freshPath();
    const store = SqliteCounterStore.open(path, { busyTimeoutMs: 30_000 });
    const other = new RawDatabase(path);
    other.exec('BEGIN IMMEDIATE'); // another process mid-reservation
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    const pending = store.reserve([item('contended', MINUTE, 1, 5)], T0);
    let settled = false;
    void pending.then(() => (settled = true));
    // Timers keep firing while the reservation waits: the loop is free.
    while (ticks < 20) await new Promise((r) => setTimeout(r, 1));
    assert.equal(settled, false, 'the reservation cannot have been made while the lock was held');
    other.exec('ROLLBACK');
    other.close();
    assert.ok((await pending).ok);
    clearInterval(ticker);
    assert.deepEqual(await store.read([{ key: 'contended', window: MINUTE }], T0), [1]);
    await store.close();
  });

  it('a late rolling rollback never removes another call’s entry, even after a sweep', async () => {
    const store = SqliteCounterStore.open(freshPath());
    const old = await store.reserve([item('late', ROLL60, 2)], T0);
    assert.ok(old.ok);
    await store.sweep(T0 + 61_000); // the entry is gone
    assert.ok((await store.reserve([item('late', ROLL60, 1)], T0 + 61_000)).ok);
    await store.rollback(old.reservation, T0 + 62_000);
    assert.deepEqual(await store.read([{ key: 'late', window: ROLL60 }], T0 + 62_000), [1]);
    await store.close();
  });

  describe('errors', () => {
    it('open names the path when its directory cannot be created', () => {
      const blocker = join(root, `blocker-${++seq}`);
      writeFileSync(blocker, 'a file, not a directory');
      const path = join(blocker, 'state', 'intercept.sqlite');
      assert.throws(() => SqliteCounterStore.open(path), (err: Error) => {
        assert.ok(err.message.startsWith(`cannot open the counter store at ${path}: `), err.message);
        return true;
      });
    });

    it('open names the path when the path is a directory', () => {
      const path = join(root, `dir-${++seq}`);
      mkdirSync(path);
      assert.throws(() => SqliteCounterStore.open(path), new RegExp(`cannot open the counter store at ${path}: `));
    });

    it(
      'open names the path when the directory is read-only',
      { skip: process.getuid?.() === 0 ? 'permissions do not bind root' : false },
      () => {
        const dir = join(root, `readonly-${++seq}`);
        mkdirSync(dir, { mode: 0o500 });
        chmodSync(dir, 0o500);
        const path = join(dir, 'intercept.sqlite');
        try {
          assert.throws(() => SqliteCounterStore.open(path), new RegExp(`cannot open the counter store at ${path}: `));
        } finally {
          chmodSync(dir, 0o700);
        }
      },
    );

    const badFiles: { name: string; write: (path: string) => void; message: RegExp }[] = [
      {
        name: 'a file that is not a database',
        write: (path) => writeFileSync(path, 'x'.repeat(4096)),
        message: /not a database/,
      },
      {
        name: 'another application’s database',
        write: (path) => {
          const raw = new RawDatabase(path);
          raw.exec('CREATE TABLE notes (body TEXT)');
          raw.close();
        },
        message: /another application/,
      },
      {
        name: 'a store written by a newer version',
        write: (path) => {
          SqliteCounterStore.open(path).close();
          const raw = new RawDatabase(path);
          raw.pragma('user_version = 99');
          raw.close();
        },
        message: /schema version 99/,
      },
    ];
    for (const bad of badFiles) {
      it(`open refuses ${bad.name}, naming the path`, () => {
        const path = join(root, `bad-${++seq}.sqlite`);
        bad.write(path);
        assert.throws(() => SqliteCounterStore.open(path), (err: Error) => {
          assert.ok(err.message.startsWith(`cannot open the counter store at ${path}: `), err.message);
          assert.match(err.message, bad.message);
          return true;
        });
      });
    }

    it('a lock held beyond the busy timeout rejects the call, charges nothing, and passes', async () => {
      const path = freshPath();
      const store = SqliteCounterStore.open(path, { busyTimeoutMs: 50 });
      const granted = await store.reserve([item('busy', MINUTE, 2)], T0);
      assert.ok(granted.ok);

      const other = new RawDatabase(path);
      other.exec('BEGIN IMMEDIATE'); // another process mid-reservation, stuck
      try {
        await assert.rejects(store.reserve([item('busy', MINUTE)], T0), (err: Error) => {
          assert.match(err.message, /database is locked/);
          assert.ok(err.message.includes(path), err.message);
          return true;
        });
        await assert.rejects(store.rollback(granted.reservation, T0), /database is locked/);
        // Readers are not blocked by a writer.
        assert.deepEqual(await store.read([{ key: 'busy', window: MINUTE }], T0), [2]);
      } finally {
        other.exec('ROLLBACK');
        other.close();
      }
      // The failed rollback can be retried, and the failed reserve charged nothing.
      await store.rollback(granted.reservation, T0);
      assert.deepEqual(await store.read([{ key: 'busy', window: MINUTE }], T0), [0]);
      assert.ok((await store.reserve([item('busy', MINUTE)], T0)).ok);
      assert.deepEqual(await store.read([{ key: 'busy', window: MINUTE }], T0), [1]);
      await store.close();
    });

    for (const amount of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      it(`rejects amount ${amount} without charging anything`, async () => {
        const store = SqliteCounterStore.open(freshPath());
        await assert.rejects(store.reserve([item('ok', MINUTE), item('bad', MINUTE, amount)], T0), RangeError);
        assert.deepEqual(await store.read([{ key: 'ok', window: MINUTE }], T0), [0]);
        await store.close();
      });
    }

    it('refuses to work once closed; closing twice is harmless', async () => {
      const store = SqliteCounterStore.open(freshPath());
      const r = await store.reserve([item('k', MINUTE)], T0);
      assert.ok(r.ok);
      await store.close();
      await store.close();
      await assert.rejects(store.reserve([item('k', MINUTE)], T0), /counter store is closed/);
      await assert.rejects(store.read([{ key: 'k', window: MINUTE }], T0), /counter store is closed/);
      await assert.rejects(store.commit(r.reservation, T0), /counter store is closed/);
      await assert.rejects(store.rollback(r.reservation, T0), /counter store is closed/);
    });
  });
});
