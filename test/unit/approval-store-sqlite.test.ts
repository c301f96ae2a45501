import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryApprovalStore } from '../../src/approval/memory.js';
import { openApprovalStore } from '../../src/approval/open.js';
import { SqliteApprovalStore } from '../../src/approval/sqlite.js';
import { RETENTION_MS } from '../../src/approval/types.js';
import { SqliteCounterStore } from '../../src/state/sqlite.js';
import { recordingLogger } from '../support/counters.js';
import { approvalStoreContract, request, T0 } from './approval-store-contract.js';

// A raw connection to the same file, for looking inside and for holding locks.
interface RawDb {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  prepare(sql: string): { get(...params: unknown[]): unknown; run(...params: unknown[]): unknown };
  exec(sql: string): void;
  close(): void;
}
const RawDatabase = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => RawDb;

const root = mkdtempSync(join(tmpdir(), 'intercept-approvals-'));
after(() => rmSync(root, { recursive: true, force: true }));
let seq = 0;
/** A path in a directory that does not exist yet. */
const freshPath = (): string => join(root, `store-${++seq}`, 'state', 'approvals.sqlite');

// One file per test; every store a test opens shares it, as processes on one machine do.
approvalStoreContract('SqliteApprovalStore', {
  shared: true,
  fresh: () => {
    const path = freshPath();
    // The sweep at open reads the clock: the contract's clock, not the wall's.
    return async (prefix) => SqliteApprovalStore.open(path, { prefix, now: () => T0 });
  },
});

const ALICE = { approve: true, by: 'alice', via: 'cli' } as const;

function rawStatus(path: string, id: string): unknown {
  const raw = new RawDatabase(path);
  try {
    return (raw.prepare('SELECT status FROM approvals WHERE id = ?').get(id) as { status: string } | undefined)?.status;
  } finally {
    raw.close();
  }
}

describe('SqliteApprovalStore specifics', () => {
  it('creates a private WAL file of its own kind and version', async () => {
    const path = freshPath();
    await SqliteApprovalStore.open(path).close();
    assert.equal(statSync(join(path, '..')).mode & 0o777, 0o700);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const raw = new RawDatabase(path);
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(raw.pragma('user_version', { simple: true }), 1);
      assert.equal(raw.pragma('application_id', { simple: true }), 0x49415052);
    } finally {
      raw.close();
    }
  });

  it('refuses the counter store’s file and the counter store refuses it: neither is mistaken for the other', () => {
    const counters = join(root, `side-${++seq}`, 'intercept.sqlite');
    const approvals = join(counters, '..', 'approvals.sqlite');
    SqliteCounterStore.open(counters).close();
    assert.throws(() => SqliteApprovalStore.open(counters), new RegExp(`cannot open the approval store at ${counters}: .*another application`));
    void SqliteApprovalStore.open(approvals).close(); // async close: the file is written by open
    assert.throws(() => SqliteCounterStore.open(approvals), /another application/);
  });

  it('refuses a file written by a newer version, naming the path', async () => {
    const path = freshPath();
    await SqliteApprovalStore.open(path).close();
    const raw = new RawDatabase(path);
    raw.pragma('user_version = 7');
    raw.close();
    assert.throws(() => SqliteApprovalStore.open(path), (err: Error) => {
      assert.ok(err.message.startsWith(`cannot open the approval store at ${path}: `), err.message);
      assert.match(err.message, /schema version 7/);
      return true;
    });
  });

  it('stores the expiry of a request read past expiresAt', async () => {
    const path = freshPath();
    const store = SqliteApprovalStore.open(path);
    const r = await store.create(request(), T0);
    assert.equal(rawStatus(path, r.id), 'pending');
    assert.equal((await store.get(r.id, r.expiresAt))?.status, 'expired');
    assert.equal(rawStatus(path, r.id), 'expired');
    await store.close();
  });

  it('two stores on one file: of concurrent claims from both, exactly one wins', async () => {
    const path = freshPath();
    const a = SqliteApprovalStore.open(path, { prefix: 'p:' });
    const b = SqliteApprovalStore.open(path, { prefix: 'p:' });
    const { id } = await a.create(request(), T0);
    assert.equal((await b.decide(id, ALICE, T0 + 1)).ok, true);
    const claims = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).claim(id, T0 + 2)));
    assert.equal(claims.filter((c) => c.ok).length, 1);
    assert.equal((await a.get(id, T0 + 3))?.status, 'used');
    await Promise.all([a.close(), b.close()]);
  });

  it('waits for another process’s write lock without blocking the event loop', async () => {
    const path = freshPath();
    const store = SqliteApprovalStore.open(path, { busyTimeoutMs: 30_000 });
    const { id } = await store.create(request(), T0);
    const other = new RawDatabase(path);
    other.exec('BEGIN IMMEDIATE'); // another process mid-change
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    let settled = false;
    const pending = store.decide(id, ALICE, T0 + 1);
    void pending.then(() => (settled = true));
    try {
      while (ticks < 20) await new Promise((r) => setTimeout(r, 1));
      assert.equal(settled, false, 'the decision cannot have been written while the lock was held');
      // Readers are not blocked meanwhile.
      assert.equal((await store.get(id, T0 + 1))?.status, 'pending');
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    assert.equal((await pending).ok, true);
    clearInterval(ticker);
    assert.equal((await store.get(id, T0 + 2))?.status, 'approved');
    await store.close();
  });

  it('a lock held beyond the busy timeout rejects the change, which changed nothing and can be made again', async () => {
    const path = freshPath();
    const store = SqliteApprovalStore.open(path, { busyTimeoutMs: 50 });
    const { id } = await store.create(request(), T0);
    const other = new RawDatabase(path);
    other.exec('BEGIN IMMEDIATE');
    try {
      await assert.rejects(store.decide(id, ALICE, T0 + 1), (err: Error) => {
        assert.match(err.message, /database is locked/);
        assert.ok(err.message.includes(path), err.message);
        return true;
      });
      assert.equal((await store.get(id, T0 + 1))?.status, 'pending');
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    assert.equal((await store.decide(id, ALICE, T0 + 2)).ok, true);
    await store.close();
  });

  it('deletes rows past retention by sweeping and at open, keeping the rest', async () => {
    const path = freshPath();
    const store = SqliteApprovalStore.open(path, { prefix: 'a:', now: () => T0 });
    const other = SqliteApprovalStore.open(path, { prefix: 'b:', now: () => T0 });
    for (let i = 0; i < 10; i++) {
      const { id } = await store.create(request(), T0);
      await store.withdraw(id, T0 + 1);
    }
    const lasting = await other.create(request({ at: T0 + RETENTION_MS }), T0 + RETENTION_MS);
    assert.equal(await store.rowCount(), 11);
    assert.equal(await store.sweep(T0 + RETENTION_MS), 0);
    assert.equal(await store.sweep(T0 + 1 + RETENTION_MS), 10);
    assert.equal(await store.rowCount(), 1);
    const { id } = await store.create(request(), T0);
    await store.withdraw(id, T0 + 1);
    await Promise.all([store.close(), other.close()]);

    const reopened = SqliteApprovalStore.open(path, { prefix: 'b:', now: () => T0 + 1 + RETENTION_MS });
    assert.equal(await reopened.rowCount(), 1);
    assert.deepEqual(await reopened.get(lasting.id, T0 + 1 + RETENTION_MS), lasting);
    await reopened.close();
  });

  it('open names the path when the path is a directory', () => {
    const path = join(root, `dir-${++seq}`);
    mkdirSync(path);
    assert.throws(() => SqliteApprovalStore.open(path), new RegExp(`cannot open the approval store at ${path}: `));
  });
});

describe('openApprovalStore', () => {
  it('opens approvals.sqlite in the state directory, shared with a store opened on that file', async () => {
    const dir = join(root, `state-${++seq}`);
    const { log } = recordingLogger();
    const opened = await openApprovalStore({ stateDir: dir, prefix: 'p:', log });
    const path = join(dir, 'approvals.sqlite');
    assert.equal(opened.description, `sqlite ${path}`);
    const r = await opened.store.create(request({ at: Date.now() }), Date.now());
    const direct = SqliteApprovalStore.open(path, { prefix: 'p:' });
    assert.equal((await direct.get(r.id, Date.now()))?.id, r.id);
    await Promise.all([opened.store.close(), direct.close()]);
  });

  it('keeps nothing for --state-dsn memory:', async () => {
    const { log } = recordingLogger();
    const opened = await openApprovalStore({ stateDsn: 'memory:', prefix: '', log });
    assert.equal(opened.description, 'memory (this process only)');
    assert.ok(opened.store instanceof MemoryApprovalStore);
    await opened.store.close();
  });
});
