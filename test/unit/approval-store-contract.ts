// The ApprovalStore contract, as tests every backend must pass. A backend's test file calls
// `approvalStoreContract('<backend>', backend)`; each test opens its stores through the
// backend with a prefix no other test uses (so shared backends need no cleanup) and closes them
// afterwards. Time is always passed in, never read from the clock.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RETENTION_MS, type ApprovalRecord, type ApprovalStore, type ChangeOutcome, type Decision, type NewApproval } from '../../src/approval/types.js';
import { approvalBinding, argumentsHash } from '../../src/approval/binding.js';

export interface ApprovalBackend {
  /** Whether two stores opened for one prefix share their requests, as two processes on one
   * file or one Redis do, and keep them across close and reopen. The memory store does not. */
  shared: boolean;
  /** Called before each test: how to open stores on it (a new file, say). Every store a test
   * opens through it is on the same backend. */
  fresh(): (prefix: string) => Promise<ApprovalStore>;
}

/** 2026-01-15T10:00:00.000Z. */
export const T0 = Date.UTC(2026, 0, 15, 10, 0, 0, 0);
const MINUTE = 60_000;

const ALICE: Decision = { approve: true, by: 'alice', via: 'cli', reason: 'looks fine' };
const BOB_NO: Decision = { approve: false, by: 'bob', via: 'http', reason: 'not today' };

/** A request made at `at`, open for five minutes. */
export function request(over: Partial<NewApproval> & { at?: number } = {}): NewApproval {
  const { at = T0, ...rest } = over;
  const args = rest.arguments ?? { path: '/etc/hosts', mode: 'w' };
  const tool = rest.tool ?? 'write_file';
  const hash = argumentsHash(args);
  const base: NewApproval = {
    tool,
    arguments: args,
    argumentsHash: hash,
    rule: 'writes-need-a-human',
    ruleVersion: 'v1-fingerprint',
    mode: 'hold',
    scope: 'session',
    session: 'session-1',
    binding: approvalBinding({ tool, argumentsHash: hash, ruleVersion: 'v1-fingerprint', scope: 'session', session: 'session-1' }),
    onTimeout: 'deny',
    requestedAt: at,
    expiresAt: at + 5 * MINUTE,
  };
  return { ...base, ...rest };
}

function ok(outcome: ChangeOutcome): ApprovalRecord {
  assert.equal(outcome.ok, true, `expected the change to succeed, got ${JSON.stringify(outcome)}`);
  if (!outcome.ok) throw new Error('unreachable');
  return outcome.record;
}

function conflict(outcome: ChangeOutcome): ApprovalRecord {
  assert.ok(!outcome.ok && outcome.reason === 'conflict', `expected a conflict, got ${JSON.stringify(outcome)}`);
  return outcome.record;
}

const ids = (records: ApprovalRecord[]) => records.map((r) => r.id);

export function approvalStoreContract(name: string, backend: ApprovalBackend): void {
  describe(name, () => {
    let openOn: (prefix: string) => Promise<ApprovalStore>;
    let opened: ApprovalStore[];
    let prefix: string;
    let store: ApprovalStore;
    let seq = 0;
    /** Another store of the backend (another process, when shared). */
    const open = async (p = prefix): Promise<ApprovalStore> => {
      const s = await openOn(p);
      opened.push(s);
      return s;
    };

    beforeEach(async () => {
      openOn = backend.fresh();
      opened = [];
      prefix = `apr-contract-${process.pid}-${Date.now()}-${++seq}:`;
      store = await open();
    });
    afterEach(async () => {
      await Promise.all(opened.map((s) => s.close()));
    });

    it('creates a pending request with an id, and gets it back exactly', async () => {
      const args = { path: '/tmp/ä ✓', n: 0.1 + 0.2, big: 2 ** 53 - 1, neg: -1.5e-7, list: [], empty: {}, nested: [{ deep: [null, true, 'x'] }] };
      const asked = request({ arguments: args, mode: 'retry', scope: 'global', onTimeout: 'allow' });
      const created = await store.create(asked, T0);
      assert.match(created.id, /^apr_[a-z2-7]{16}$/);
      assert.deepEqual(created, { ...asked, id: created.id, status: 'pending' });
      assert.deepEqual(await store.get(created.id, T0 + 1), created);
      assert.equal(await store.get('apr_aaaaaaaaaaaaaaaa', T0), undefined);
      const other = await store.create(asked, T0);
      assert.notEqual(other.id, created.id);
    });

    it('hands out copies: changing a returned record changes nothing stored', async () => {
      const asked = request();
      const created = await store.create(asked, T0);
      (asked.arguments as Record<string, unknown>)['path'] = '/changed-after-create';
      created.status = 'approved';
      (created.arguments as Record<string, unknown>)['mode'] = 'changed';
      const read = await store.get(created.id, T0);
      assert.equal(read?.status, 'pending');
      assert.deepEqual(read?.arguments, { path: '/etc/hosts', mode: 'w' });
    });

    it('lists newest first (ties: the later created first) and filters by status', async () => {
      const a = await store.create(request({ at: T0 }), T0);
      const b = await store.create(request({ at: T0 + 2 }), T0 + 2);
      const c = await store.create(request({ at: T0 + 1 }), T0 + 2);
      const d = await store.create(request({ at: T0 + 2 }), T0 + 3);
      assert.deepEqual(ids(await store.list(T0 + 4)), [d.id, b.id, c.id, a.id]);
      ok(await store.decide(b.id, ALICE, T0 + 5));
      ok(await store.decide(a.id, BOB_NO, T0 + 5));
      assert.deepEqual(ids(await store.list(T0 + 6, { status: 'pending' })), [d.id, c.id]);
      assert.deepEqual(ids(await store.list(T0 + 6, { status: 'approved' })), [b.id]);
      assert.deepEqual(ids(await store.list(T0 + 6, { status: 'denied' })), [a.id]);
      assert.deepEqual(await store.list(T0 + 6, { status: 'used' }), []);
      const all = await store.list(T0 + 6);
      assert.deepEqual(
        all.map((r) => r.status),
        ['pending', 'approved', 'pending', 'denied'],
      );
      assert.deepEqual(all[1], await store.get(b.id, T0 + 6));
    });

    it('approves a pending request once; a second decider gets a conflict with the winner’s record', async () => {
      const { id } = await store.create(request(), T0);
      const approved = ok(await store.decide(id, ALICE, T0 + 10));
      assert.equal(approved.status, 'approved');
      assert.equal(approved.decidedAt, T0 + 10);
      assert.equal(approved.decidedBy, 'alice');
      assert.equal(approved.via, 'cli');
      assert.equal(approved.reason, 'looks fine');
      assert.equal(approved.usedAt, undefined);
      assert.deepEqual(await store.get(id, T0 + 11), approved);
      assert.deepEqual(conflict(await store.decide(id, BOB_NO, T0 + 12)), approved);
      assert.deepEqual(conflict(await store.decide(id, ALICE, T0 + 13)), approved);
    });

    it('denies a pending request; it cannot be approved or claimed afterwards', async () => {
      const { id } = await store.create(request(), T0);
      const denied = ok(await store.decide(id, BOB_NO, T0 + 10));
      assert.deepEqual(
        { status: denied.status, at: denied.decidedAt, by: denied.decidedBy, via: denied.via, reason: denied.reason },
        { status: 'denied', at: T0 + 10, by: 'bob', via: 'http', reason: 'not today' },
      );
      assert.equal(conflict(await store.decide(id, ALICE, T0 + 11)).status, 'denied');
      assert.equal(conflict(await store.claim(id, T0 + 12)).status, 'denied');
      assert.deepEqual(await store.get(id, T0 + 13), denied);
    });

    it('a decision without a reason records none', async () => {
      const { id } = await store.create(request(), T0);
      const approved = ok(await store.decide(id, { approve: true, by: 'client', via: 'client' }, T0 + 1));
      assert.equal('reason' in approved, false);
      const read = await store.get(id, T0 + 2);
      assert.equal(read !== undefined && 'reason' in read, false);
      assert.equal(read?.via, 'client');
    });

    it('of concurrent deciders exactly one wins, and the others see what it decided', async () => {
      const { id } = await store.create(request(), T0);
      const deciders: Decision[] = Array.from({ length: 8 }, (_, i) => ({ approve: i % 2 === 0, by: `human-${i}`, via: 'http' }));
      const outcomes = await Promise.all(deciders.map((d) => store.decide(id, d, T0 + 5)));
      const winners = outcomes.filter((o) => o.ok);
      assert.equal(winners.length, 1, JSON.stringify(outcomes));
      const winner = ok(winners[0]!);
      for (const o of outcomes.filter((x) => !x.ok)) assert.deepEqual(conflict(o), winner);
      assert.deepEqual(await store.get(id, T0 + 6), winner);
    });

    it('withdraws a pending request only', async () => {
      const { id } = await store.create(request(), T0);
      const withdrawn = ok(await store.withdraw(id, T0 + 7));
      assert.equal(withdrawn.status, 'withdrawn');
      assert.equal(withdrawn.decidedAt, T0 + 7);
      assert.equal(conflict(await store.withdraw(id, T0 + 8)).status, 'withdrawn');
      assert.equal(conflict(await store.decide(id, ALICE, T0 + 8)).status, 'withdrawn');
      const approved = await store.create(request(), T0);
      ok(await store.decide(approved.id, ALICE, T0 + 1));
      assert.equal(conflict(await store.withdraw(approved.id, T0 + 2)).status, 'approved');
    });

    it('expires a pending request by timeout, early or late, but not a decided one', async () => {
      const early = await store.create(request(), T0);
      const expired = ok(await store.expire(early.id, T0 + MINUTE));
      assert.deepEqual(
        { status: expired.status, at: expired.decidedAt, by: expired.decidedBy, via: expired.via },
        { status: 'expired', at: T0 + MINUTE, by: 'timeout', via: 'timeout' },
      );
      assert.equal(conflict(await store.expire(early.id, T0 + MINUTE)).status, 'expired');
      assert.equal(conflict(await store.decide(early.id, ALICE, T0 + MINUTE)).status, 'expired');

      // A waiter noticing the timeout after it was due still records it.
      const late = await store.create(request(), T0);
      const lateExpired = ok(await store.expire(late.id, late.expiresAt + 250));
      assert.equal(lateExpired.status, 'expired');
      assert.equal(lateExpired.via, 'timeout');

      const approved = await store.create(request(), T0);
      ok(await store.decide(approved.id, ALICE, T0 + 1));
      assert.equal(conflict(await store.expire(approved.id, T0 + 2)).status, 'approved');
    });

    it('claims an approved request once, recording when', async () => {
      const { id } = await store.create(request(), T0);
      assert.equal(conflict(await store.claim(id, T0 + 1)).status, 'pending');
      const approved = ok(await store.decide(id, ALICE, T0 + 2));
      const used = ok(await store.claim(id, T0 + 3));
      assert.deepEqual(used, { ...approved, status: 'used', usedAt: T0 + 3 });
      assert.deepEqual(conflict(await store.claim(id, T0 + 4)), used);
      assert.deepEqual(await store.get(id, T0 + 5), used);
      assert.equal(conflict(await store.decide(id, BOB_NO, T0 + 6)).status, 'used');
    });

    it('of many concurrent claims of one grant exactly one succeeds', async () => {
      const { id } = await store.create(request(), T0);
      ok(await store.decide(id, ALICE, T0 + 1));
      const outcomes = await Promise.all(Array.from({ length: 25 }, (_, i) => store.claim(id, T0 + 2 + i)));
      assert.equal(outcomes.filter((o) => o.ok).length, 1, JSON.stringify(outcomes.map((o) => o.ok)));
      const used = (await store.get(id, T0 + 100))!;
      assert.equal(used.status, 'used');
      for (const o of outcomes.filter((x) => !x.ok)) assert.deepEqual(conflict(o), used);
    });

    it('a pending request past expiresAt reads as expired, is listed so, and cannot be decided', async () => {
      const r = await store.create(request(), T0);
      assert.equal((await store.get(r.id, r.expiresAt - 1))?.status, 'pending');
      const expired = await store.get(r.id, r.expiresAt);
      assert.deepEqual(expired, { ...r, status: 'expired', decidedAt: r.expiresAt, decidedBy: 'timeout', via: 'timeout' });
      // Still expired when read with an earlier clock afterwards: it was stored so.
      assert.equal((await store.get(r.id, r.expiresAt - 1))?.status, 'expired');
      assert.deepEqual(ids(await store.list(r.expiresAt + 1, { status: 'expired' })), [r.id]);
      assert.deepEqual(await store.list(r.expiresAt + 1, { status: 'pending' }), []);
      assert.deepEqual(conflict(await store.decide(r.id, ALICE, r.expiresAt + 2)), expired);
      assert.equal(conflict(await store.withdraw(r.id, r.expiresAt + 2)).status, 'expired');
    });

    it('a decision arriving after expiresAt finds the request expired, never decided', async () => {
      const r = await store.create(request(), T0);
      assert.equal(conflict(await store.decide(r.id, ALICE, r.expiresAt + 1)).status, 'expired');
      const read = await store.get(r.id, r.expiresAt + 2);
      assert.equal(read?.status, 'expired');
      assert.equal(read?.decidedBy, 'timeout');
    });

    it('an approved request not used before expiresAt expires, keeping who approved it, and cannot be claimed', async () => {
      const r = await store.create(request(), T0);
      ok(await store.decide(r.id, ALICE, T0 + 1));
      assert.equal((await store.get(r.id, r.expiresAt - 1))?.status, 'approved');
      const expired = conflict(await store.claim(r.id, r.expiresAt));
      assert.deepEqual(
        { status: expired.status, by: expired.decidedBy, at: expired.decidedAt, via: expired.via },
        { status: 'expired', by: 'alice', at: T0 + 1, via: 'cli' },
      );
      assert.equal(expired.usedAt, undefined);
      assert.deepEqual(await store.get(r.id, r.expiresAt + 1), expired);
    });

    it('findOpen returns the newest open request of a binding, ignoring final, expired and other ones', async () => {
      const mine = request().binding;
      const otherBinding = request({ session: 'session-2', binding: 'another-binding' });
      assert.equal(await store.findOpen(mine, T0), undefined);

      const older = await store.create(request({ at: T0 }), T0);
      const newer = await store.create(request({ at: T0 + 10 }), T0 + 10);
      await store.create({ ...otherBinding, requestedAt: T0 + 20, expiresAt: T0 + 20 + 5 * MINUTE }, T0 + 20);
      assert.deepEqual(await store.findOpen(mine, T0 + 30), newer);

      // A final one is skipped: the older open one is found.
      ok(await store.decide(newer.id, BOB_NO, T0 + 40));
      assert.deepEqual(await store.findOpen(mine, T0 + 41), older);

      // An approved one is open until it is used.
      const approved = ok(await store.decide(older.id, ALICE, T0 + 50));
      assert.deepEqual(await store.findOpen(mine, T0 + 51), approved);
      ok(await store.claim(older.id, T0 + 52));
      assert.equal(await store.findOpen(mine, T0 + 53), undefined);

      // One past expiresAt is not open, though nobody read it since; a newer short one is.
      const lapsing = await store.create(request({ at: T0 + 60, expiresAt: T0 + 1000 }), T0 + 60);
      assert.deepEqual(await store.findOpen(mine, T0 + 999), lapsing);
      assert.equal(await store.findOpen(mine, T0 + 1000), undefined);
      const withdrawn = await store.create(request({ at: T0 + 2000 }), T0 + 2000);
      ok(await store.withdraw(withdrawn.id, T0 + 2001));
      assert.equal(await store.findOpen(mine, T0 + 2002), undefined);
      assert.equal((await store.findOpen('another-binding', T0 + 2002))?.session, 'session-2');
    });

    it('every change of an unknown id is not_found', async () => {
      const id = 'apr_zzzzzzzzzzzzzzzz';
      for (const outcome of [
        await store.decide(id, ALICE, T0),
        await store.withdraw(id, T0),
        await store.expire(id, T0),
        await store.claim(id, T0),
      ]) {
        assert.deepEqual(outcome, { ok: false, reason: 'not_found' });
      }
    });

    it(`keeps final requests for RETENTION_MS after they became final, then they are gone`, async () => {
      const denied = await store.create(request(), T0);
      ok(await store.decide(denied.id, BOB_NO, T0 + 100));
      const used = await store.create(request(), T0);
      ok(await store.decide(used.id, ALICE, T0 + 100));
      ok(await store.claim(used.id, T0 + 200));
      const lapsed = await store.create(request(), T0); // never decided: final at expiresAt
      const unusedGrant = await store.create(request(), T0);
      ok(await store.decide(unusedGrant.id, ALICE, T0 + 300)); // final at expiresAt too

      const visible = async (now: number) => new Set(ids(await store.list(now)));
      let seen = await visible(T0 + 100 + RETENTION_MS - 1);
      assert.deepEqual([denied, used, lapsed, unusedGrant].map((r) => seen.has(r.id)), [true, true, true, true]);
      seen = await visible(T0 + 100 + RETENTION_MS);
      assert.deepEqual([denied, used, lapsed, unusedGrant].map((r) => seen.has(r.id)), [false, true, true, true]);
      assert.equal(await store.get(denied.id, T0 + 100 + RETENTION_MS), undefined);
      assert.deepEqual(await store.decide(denied.id, ALICE, T0 + 100 + RETENTION_MS), { ok: false, reason: 'not_found' });
      seen = await visible(T0 + 200 + RETENTION_MS);
      assert.deepEqual([used, lapsed, unusedGrant].map((r) => seen.has(r.id)), [false, true, true]);
      const expiresAt = lapsed.expiresAt;
      assert.equal((await store.get(lapsed.id, expiresAt + RETENTION_MS - 1))?.status, 'expired');
      assert.equal((await store.get(unusedGrant.id, expiresAt + RETENTION_MS - 1))?.status, 'expired');
      assert.deepEqual(await store.list(expiresAt + RETENTION_MS), []);
      assert.equal(await store.get(lapsed.id, expiresAt + RETENTION_MS), undefined);
      assert.equal(await store.get(unusedGrant.id, expiresAt + RETENTION_MS), undefined);
    });

    it('a pending request never read is gone RETENTION_MS after it expired', async () => {
      const r = await store.create(request(), T0);
      assert.equal(await store.get(r.id, r.expiresAt + RETENTION_MS), undefined);
      assert.deepEqual(await store.expire(r.id, r.expiresAt + RETENTION_MS), { ok: false, reason: 'not_found' });
      assert.deepEqual(await store.list(r.expiresAt + RETENTION_MS), []);
    });

    it('refuses to work once closed, and closes twice without complaint', async () => {
      const s = await open();
      const { id } = await s.create(request(), T0);
      await s.close();
      await s.close();
      await assert.rejects(s.get(id, T0), /approval store is closed/);
      await assert.rejects(s.create(request(), T0), /approval store is closed/);
      await assert.rejects(s.claim(id, T0), /approval store is closed/);
      await assert.rejects(s.list(T0), /approval store is closed/);
    });

    // Only backends that several store objects can share (memory keeps requests in one object).
    if (backend.shared) describe('stores sharing the backend', () => {
      it('see each other’s requests and decisions', async () => {
        const proxy = store;
        const cli = await open();
        const r = await proxy.create(request(), T0);
        assert.deepEqual(await cli.get(r.id, T0 + 1), r);
        assert.deepEqual(ids(await cli.list(T0 + 1, { status: 'pending' })), [r.id]);
        const approved = ok(await cli.decide(r.id, ALICE, T0 + 2));
        assert.deepEqual(await proxy.get(r.id, T0 + 3), approved);
        assert.deepEqual(await proxy.findOpen(r.binding, T0 + 3), approved);
        assert.deepEqual(conflict(await proxy.decide(r.id, BOB_NO, T0 + 4)), approved);
      });

      it('claim a grant exactly once between them, however many try at once', async () => {
        const a = store;
        const b = await open();
        for (let round = 0; round < 3; round++) {
          const { id } = await a.create(request(), T0);
          ok(await b.decide(id, ALICE, T0 + 1));
          const claims = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).claim(id, T0 + 2)));
          assert.equal(claims.filter((o) => o.ok).length, 1, `round ${round}: ${JSON.stringify(claims.map((o) => o.ok))}`);
        }
      });

      it('keep requests across close and reopen', async () => {
        const r = await store.create(request(), T0);
        const approved = ok(await store.decide(r.id, ALICE, T0 + 1));
        await store.close();
        const reopened = await open();
        assert.deepEqual(await reopened.get(r.id, T0 + 2), approved);
        ok(await reopened.claim(r.id, T0 + 3));
        assert.deepEqual(ids(await reopened.list(T0 + 4, { status: 'used' })), [r.id]);
      });

      it('keep prefixes apart', async () => {
        const here = await store.create(request(), T0);
        const elsewhere = await open(`${prefix}other`);
        const there = await elsewhere.create(request(), T0 + 1);
        assert.equal(await elsewhere.get(here.id, T0 + 2), undefined);
        assert.deepEqual(ids(await elsewhere.list(T0 + 2)), [there.id]);
        assert.deepEqual(ids(await store.list(T0 + 2)), [here.id]);
        assert.deepEqual(await elsewhere.findOpen(here.binding, T0 + 2), there);
        assert.deepEqual(await elsewhere.decide(here.id, ALICE, T0 + 3), { ok: false, reason: 'not_found' });
        assert.equal((await store.get(here.id, T0 + 4))?.status, 'pending');
      });
    });
  });
}
