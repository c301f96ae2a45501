// The CounterStore contract, as tests every backend must pass. A backend's test file calls
// `counterStoreContract('<backend>', () => makeStore())`; each test gets a fresh store and
// closes it afterwards. Time is always passed in, never read from the clock.
//
// Amounts in these tests are fractions that binary floating point represents exactly
// (0.25, 0.5, ...) so that every backend's arithmetic agrees to the last bit.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CounterStore, Reservation, ReserveItem, ReserveOutcome } from '../../src/state/store.js';
import type { CalendarUnit, Limit, Window } from '../../src/policy/model.js';
import type { CounterRef } from '../../src/engine/types.js';
import { storageKey } from '../../src/state/keys.js';

const MINUTE: Window = { kind: 'calendar', unit: 'minute' };
const HOUR: Window = { kind: 'calendar', unit: 'hour' };
const DAY: Window = { kind: 'calendar', unit: 'day' };
const ROLL60: Window = { kind: 'rolling', seconds: 60 };
/** A 60-second rolling window is kept as 1-second sub-windows: a charge counts until its
 * sub-window is a whole window old, i.e. for 60 to 61 seconds (src/state/rolling.ts). */
const SUB = 1000;

/** 2026-01-15T10:00:00.000Z: the start of a minute, an hour (not of a day). */
const T0 = Date.UTC(2026, 0, 15, 10, 0, 0, 0);

const lte = (value: number): Limit => ({ value, inclusive: true });
const lt = (value: number): Limit => ({ value, inclusive: false });

function item(key: string, window: Window, limits: Limit[] = [], amount = 1): ReserveItem {
  return { key, window, amount, limits };
}

function granted(outcome: ReserveOutcome): Reservation {
  assert.equal(outcome.ok, true, `expected the reservation to be granted, got ${JSON.stringify(outcome)}`);
  if (!outcome.ok) throw new Error('unreachable');
  return outcome.reservation;
}

function refused(outcome: ReserveOutcome): { index: number; current: number; retryAfterMs?: number } {
  assert.equal(outcome.ok, false, 'expected the reservation to be refused');
  if (outcome.ok) throw new Error('unreachable');
  return outcome;
}

export function counterStoreContract(name: string, makeStore: () => Promise<CounterStore>): void {
  describe(name, () => {
    let store: CounterStore;
    let seq = 0;
    /** A key no other test uses, so that shared backends need no cleanup between tests. */
    let k: (label: string) => string;

    beforeEach(async () => {
      store = await makeStore();
      const run = `${process.pid}-${Date.now()}-${++seq}`;
      k = (label) => `contract:${run}:${label}`;
    });
    afterEach(async () => {
      await store.close();
    });

    const value = async (key: string, window: Window, now: number): Promise<number> =>
      (await store.read([{ key, window }], now))[0]!;

    /** Reserves `n` single-item calls, asserting each is granted. */
    async function fill(key: string, window: Window, n: number, now: number, amount = 1): Promise<Reservation[]> {
      const out: Reservation[] = [];
      for (let i = 0; i < n; i++) out.push(granted(await store.reserve([item(key, window, [], amount)], now)));
      return out;
    }

    it('reserve charges the counter; commit keeps it and is idempotent', async () => {
      for (const window of [MINUTE, ROLL60]) {
        const key = k(`single-${window.kind}`);
        const r = granted(await store.reserve([item(key, window, [lte(5)])], T0));
        assert.equal(r.at, T0);
        assert.equal(await value(key, window, T0), 1);
        await store.commit(r, T0 + 10);
        await store.commit(r, T0 + 20);
        assert.equal(await value(key, window, T0 + 30), 1);
      }
    });

    it('reads absent keys as 0', async () => {
      assert.deepEqual(
        await store.read(
          [
            { key: k('absent-a'), window: MINUTE },
            { key: k('absent-b'), window: DAY },
            { key: k('absent-c'), window: ROLL60 },
          ],
          T0,
        ),
        [0, 0, 0],
      );
      assert.deepEqual(await store.read([], T0), []);
    });

    it('read returns one value per counter, in order', async () => {
      await fill(k('order-a'), MINUTE, 2, T0);
      await fill(k('order-c'), ROLL60, 3, T0);
      assert.deepEqual(
        await store.read(
          [
            { key: k('order-a'), window: MINUTE },
            { key: k('order-b'), window: MINUTE },
            { key: k('order-c'), window: ROLL60 },
          ],
          T0 + 1,
        ),
        [2, 0, 3],
      );
    });

    for (const window of [MINUTE, HOUR, DAY, ROLL60]) {
      const label = window.kind === 'calendar' ? window.unit : `rolling ${window.seconds}s`;
      it(`admits exactly N calls at a limit of N and leaves the counter unchanged when refusing (${label})`, async () => {
        const key = k('limit');
        for (let i = 0; i < 5; i++) granted(await store.reserve([item(key, window, [lte(5)])], T0 + i));
        const denied = refused(await store.reserve([item(key, window, [lte(5)])], T0 + 5));
        assert.equal(denied.index, 0);
        assert.equal(denied.current, 5);
        assert.equal(await value(key, window, T0 + 6), 5);
        refused(await store.reserve([item(key, window, [lte(5)])], T0 + 7));
        assert.equal(await value(key, window, T0 + 8), 5);
      });
    }

    const boundCases: { limit: Limit; admitted: number }[] = [
      { limit: lte(3), admitted: 3 },
      { limit: lt(3), admitted: 2 },
      { limit: lte(1), admitted: 1 },
      { limit: lt(1), admitted: 0 },
      { limit: lte(0), admitted: 0 },
      { limit: lte(2.5), admitted: 2 },
      { limit: lt(2.5), admitted: 2 },
    ];
    for (const { limit, admitted } of boundCases) {
      it(`${limit.inclusive ? 'lte' : 'lt'} ${limit.value} admits ${admitted} calls of 1`, async () => {
        const key = k('bound');
        let n = 0;
        for (let i = 0; i < 10; i++) {
          if ((await store.reserve([item(key, MINUTE, [limit])], T0 + i)).ok) n++;
        }
        assert.equal(n, admitted);
        assert.equal(await value(key, MINUTE, T0 + 10), admitted);
      });
    }

    it('checks every limit of an item', async () => {
      const key = k('two-limits');
      const limits = [lte(10), lt(3)];
      await fill(key, MINUTE, 2, T0);
      refused(await store.reserve([item(key, MINUTE, limits)], T0));
      granted(await store.reserve([item(key, MINUTE, [lte(10), lte(3)])], T0));
    });

    it('counts without a cap when an item has no limits', async () => {
      const key = k('uncapped');
      await fill(key, ROLL60, 300, T0);
      assert.equal(await value(key, ROLL60, T0), 300);
    });

    it('admits amount 0 exactly when the current value satisfies the limit', async () => {
      const key = k('zero');
      await fill(key, MINUTE, 3, T0);
      granted(await store.reserve([item(key, MINUTE, [lte(3)], 0)], T0));
      const denied = refused(await store.reserve([item(key, MINUTE, [lt(3)], 0)], T0));
      assert.equal(denied.current, 3);
      assert.equal(await value(key, MINUTE, T0), 3);
      const rkey = k('zero-rolling');
      await fill(rkey, ROLL60, 3, T0);
      granted(await store.reserve([item(rkey, ROLL60, [lte(3)], 0)], T0));
      refused(await store.reserve([item(rkey, ROLL60, [lt(3)], 0)], T0));
      assert.equal(await value(rkey, ROLL60, T0), 3);
    });

    it('is all or nothing: an item over its limit means no item is charged', async () => {
      const a = k('multi-a');
      const b = k('multi-b');
      const c = k('multi-c');
      await fill(b, ROLL60, 1, T0);
      const denied = refused(
        await store.reserve(
          [item(a, MINUTE, [lte(10)]), item(b, ROLL60, [lte(1)]), item(c, HOUR, [lte(10)])],
          T0 + 1,
        ),
      );
      assert.equal(denied.index, 1);
      assert.equal(denied.current, 1);
      assert.deepEqual(
        await store.read(
          [
            { key: a, window: MINUTE },
            { key: b, window: ROLL60 },
            { key: c, window: HOUR },
          ],
          T0 + 2,
        ),
        [0, 1, 0],
      );
    });

    it('charges every item of a granted multi-item reservation', async () => {
      const a = k('multi-ok-a');
      const b = k('multi-ok-b');
      granted(await store.reserve([item(a, MINUTE, [lte(10)], 2), item(b, ROLL60, [lte(10)], 3)], T0));
      assert.deepEqual(
        await store.read(
          [
            { key: a, window: MINUTE },
            { key: b, window: ROLL60 },
          ],
          T0,
        ),
        [2, 3],
      );
    });

    it('reports the first item that does not fit', async () => {
      const a = k('first-a');
      const b = k('first-b');
      const c = k('first-c');
      await fill(b, MINUTE, 2, T0);
      await fill(c, MINUTE, 2, T0);
      const denied = refused(
        await store.reserve([item(a, MINUTE, [lte(5)]), item(b, MINUTE, [lte(2)]), item(c, MINUTE, [lte(2)])], T0),
      );
      assert.equal(denied.index, 1);
    });

    for (const window of [MINUTE, ROLL60]) {
      it(`charges the same key twice in one reservation and checks it cumulatively (${window.kind})`, async () => {
        const key = k('twice');
        granted(await store.reserve([item(key, window, [lte(3)]), item(key, window, [lte(3)])], T0));
        assert.equal(await value(key, window, T0), 2);
        // 2 + 1 fits, 2 + 1 + 1 does not: the second item is the one refused.
        const denied = refused(
          await store.reserve([item(key, window, [lte(3)]), item(key, window, [lte(3)])], T0 + 1),
        );
        assert.equal(denied.index, 1);
        assert.equal(denied.current, 2);
        assert.equal(await value(key, window, T0 + 1), 2);
        granted(await store.reserve([item(key, window, [lte(3)])], T0 + 2));
        assert.equal(await value(key, window, T0 + 2), 3);
      });
    }

    it('rolling back a reservation of the same key twice undoes both charges', async () => {
      for (const window of [MINUTE, ROLL60]) {
        const key = k(`twice-rollback-${window.kind}`);
        await fill(key, window, 1, T0);
        const r = granted(await store.reserve([item(key, window, [], 2), item(key, window, [], 3)], T0));
        assert.equal(await value(key, window, T0), 6);
        await store.rollback(r, T0 + 1);
        assert.equal(await value(key, window, T0 + 1), 1);
      }
    });

    for (const window of [MINUTE, ROLL60]) {
      it(`rollback frees the quota, once (${window.kind})`, async () => {
        const key = k('rollback');
        const [r1] = await Promise.all([
          store.reserve([item(key, window, [lte(2)])], T0).then(granted),
          store.reserve([item(key, window, [lte(2)])], T0 + 1).then(granted),
        ]);
        refused(await store.reserve([item(key, window, [lte(2)])], T0 + 2));
        await store.rollback(r1!, T0 + 3);
        assert.equal(await value(key, window, T0 + 3), 1);
        await store.rollback(r1!, T0 + 4); // a second rollback does not undo again
        assert.equal(await value(key, window, T0 + 4), 1);
        granted(await store.reserve([item(key, window, [lte(2)])], T0 + 5));
        assert.equal(await value(key, window, T0 + 5), 2);
      });

      it(`rollback after commit does nothing (${window.kind})`, async () => {
        const key = k('commit-then-rollback');
        const r = granted(await store.reserve([item(key, window, [lte(2)], 2)], T0));
        await store.commit(r, T0 + 1);
        await store.rollback(r, T0 + 2);
        assert.equal(await value(key, window, T0 + 3), 2);
        refused(await store.reserve([item(key, window, [lte(2)])], T0 + 4));
      });
    }

    it('rollback never goes below 0 and never touches other keys', async () => {
      const a = k('floor-a');
      const b = k('floor-b');
      const r = granted(await store.reserve([item(a, MINUTE, [], 3)], T0));
      await fill(b, MINUTE, 2, T0);
      await store.rollback(r, T0 + 1);
      assert.deepEqual(
        await store.read(
          [
            { key: a, window: MINUTE },
            { key: b, window: MINUTE },
          ],
          T0 + 1,
        ),
        [0, 2],
      );
    });

    it('a calendar rollback after the window rolled over does not touch the new window', async () => {
      const key = k('rollover');
      const last = T0 + 59_999; // the last ms of the 10:00 minute
      const old = granted(await store.reserve([item(key, MINUTE, [lte(5)], 2)], last));
      await fill(key, MINUTE, 1, T0 + 60_000);
      await store.rollback(old, T0 + 60_001);
      assert.equal(await value(key, MINUTE, T0 + 60_002), 1);
      // Nor when the new window had no charge of its own yet.
      const key2 = k('rollover-empty');
      const old2 = granted(await store.reserve([item(key2, HOUR, [lte(5)], 2)], T0 + 3_599_999));
      await store.rollback(old2, T0 + 3_600_000);
      assert.equal(await value(key2, HOUR, T0 + 3_600_000), 0);
      await fill(key2, HOUR, 1, T0 + 3_600_001);
      assert.equal(await value(key2, HOUR, T0 + 3_600_002), 1);
    });

    it('a calendar rollback later in the same window undoes the charge', async () => {
      const key = k('same-window');
      await fill(key, DAY, 1, T0);
      const r = granted(await store.reserve([item(key, DAY, [], 4)], T0 + 1));
      await store.rollback(r, T0 + 13 * 3_600_000); // 23:00 the same day
      assert.equal(await value(key, DAY, T0 + 13 * 3_600_000), 1);
    });

    const calendarCases: { unit: CalendarUnit; window: Window; end: number }[] = [
      { unit: 'minute', window: MINUTE, end: T0 + 60_000 },
      { unit: 'hour', window: HOUR, end: T0 + 3_600_000 },
      { unit: 'day', window: DAY, end: Date.UTC(2026, 0, 16) },
    ];
    for (const { unit, window, end } of calendarCases) {
      it(`a ${unit} counter expires exactly at the UTC boundary, and a refusal says how long until then`, async () => {
        const key = k('boundary');
        await fill(key, window, 3, T0 + 1);
        assert.equal(await value(key, window, end - 1), 3);
        const denied = refused(await store.reserve([item(key, window, [lte(3)])], end - 1000));
        assert.equal(denied.retryAfterMs, 1000);
        assert.equal(refused(await store.reserve([item(key, window, [lte(3)])], end - 1)).retryAfterMs, 1);
        assert.equal(await value(key, window, end), 0);
        granted(await store.reserve([item(key, window, [lte(3)])], end));
        assert.equal(await value(key, window, end), 1);
      });
    }

    it('a calendar refusal that no window could admit has no retryAfterMs', async () => {
      const denied = refused(await store.reserve([item(k('too-big'), MINUTE, [lte(3)], 4)], T0));
      assert.equal(denied.current, 0);
      assert.equal(denied.retryAfterMs, undefined);
    });

    it('a rolling charge counts until its sub-window is a window old, and retryAfterMs says when', async () => {
      const key = k('rolling');
      await fill(key, ROLL60, 1, T0);
      await fill(key, ROLL60, 1, T0 + 10_000);
      await fill(key, ROLL60, 1, T0 + 20_000);
      // Full: the T0 charge is the first to leave, once its sub-window [T0, T0 + 1 s) is 60 s old.
      let denied = refused(await store.reserve([item(key, ROLL60, [lte(3)])], T0 + 30_000));
      assert.equal(denied.current, 3);
      assert.equal(denied.retryAfterMs, 30_000 + SUB);
      denied = refused(await store.reserve([item(key, ROLL60, [lte(3)])], T0 + 60_000 + SUB - 1));
      assert.equal(denied.retryAfterMs, 1);
      assert.equal(await value(key, ROLL60, T0 + 60_000 + SUB - 1), 3);
      assert.equal(await value(key, ROLL60, T0 + 60_000 + SUB), 2);
      granted(await store.reserve([item(key, ROLL60, [lte(3)])], T0 + 60_000 + SUB));
      assert.equal(await value(key, ROLL60, T0 + 70_000 + SUB), 2);
      assert.equal(await value(key, ROLL60, T0 + 120_000 + 2 * SUB), 0);
    });

    it('rolling retryAfterMs waits for as many old charges as the amount needs', async () => {
      const key = k('rolling-amounts');
      await fill(key, ROLL60, 1, T0, 4);
      await fill(key, ROLL60, 1, T0 + 10_000, 3);
      await fill(key, ROLL60, 1, T0 + 20_000, 3);
      // 10 used, 5 wanted, limit 10: the 4 leaving at T0+61s is not enough (6+5 > 10);
      // once the 3 of T0+10s leaves too (T0+71s), 3+5 fits.
      const denied = refused(await store.reserve([item(key, ROLL60, [lte(10)], 5)], T0 + 30_000));
      assert.equal(denied.current, 10);
      assert.equal(denied.retryAfterMs, 40_000 + SUB);
      // Asking for 4: with lt, 6+4 < 10 fails at T0+61s and 3+4 < 10 holds at T0+71s;
      // with lte, 6+4 <= 10 already holds at T0+61s.
      assert.equal(refused(await store.reserve([item(key, ROLL60, [lt(10)], 4)], T0 + 30_000)).retryAfterMs, 40_000 + SUB);
      assert.equal(refused(await store.reserve([item(key, ROLL60, [lte(10)], 4)], T0 + 30_000)).retryAfterMs, 30_000 + SUB);
      // An amount that exceeds the limit on its own can never fit.
      assert.equal(refused(await store.reserve([item(key, ROLL60, [lte(10)], 11)], T0 + 30_000)).retryAfterMs, undefined);
      assert.equal(await value(key, ROLL60, T0 + 30_000), 10);
    });

    it('rolling rollback removes only that call’s charge', async () => {
      const key = k('rolling-rollback');
      await fill(key, ROLL60, 1, T0, 1);
      const r = granted(await store.reserve([item(key, ROLL60, [], 2)], T0 + 10_000));
      await fill(key, ROLL60, 1, T0 + 20_000, 4);
      await store.rollback(r, T0 + 30_000);
      assert.equal(await value(key, ROLL60, T0 + 30_000), 5);
      // The T0 charge still leaves at T0+61s and the T0+20s one at T0+81s.
      assert.equal(await value(key, ROLL60, T0 + 60_000 + SUB), 4);
      assert.equal(await value(key, ROLL60, T0 + 80_000 + SUB), 0);
    });

    it('a rolling rollback after the charge expired changes nothing', async () => {
      const key = k('rolling-late-rollback');
      const r = granted(await store.reserve([item(key, ROLL60, [], 2)], T0));
      await fill(key, ROLL60, 1, T0 + 70_000, 1);
      await store.rollback(r, T0 + 71_000);
      assert.equal(await value(key, ROLL60, T0 + 71_000), 1);
    });

    it('a 1-second rolling window frees up after 1 second and one sub-window (1/60 s)', async () => {
      const short: Window = { kind: 'rolling', seconds: 1 };
      const key = k('short');
      await fill(key, short, 2, T0);
      refused(await store.reserve([item(key, short, [lte(2)])], T0 + 999));
      granted(await store.reserve([item(key, short, [lte(2)])], T0 + 1000 + Math.ceil(1000 / 60)));
    });

    it('never admits more than the limit in any window-long span, and frees a charge at most one sub-window late', async () => {
      // Calls at pseudo-random times over five windows against 7 per 60 s; every admitted
      // call is checked against the admitted calls of the 60 s before it.
      const key = k('rolling-spans');
      const admitted: number[] = [];
      let t = T0 + 123;
      let seed = 42;
      for (let i = 0; i < 400; i++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        t += seed % 1500;
        const outcome = await store.reserve([item(key, ROLL60, [lte(7)])], t);
        const inSpan = admitted.filter((a) => a > t - 60_000).length;
        if (outcome.ok) {
          assert.ok(inSpan < 7, `admitted an 8th call within 60 s at +${t - T0} ms`);
          admitted.push(t);
        } else {
          // Refused only when exactness would refuse too, or a charge is still within its
          // last sub-window of counting.
          const lenient = admitted.filter((a) => a > t - 60_000 - SUB).length;
          assert.ok(lenient >= 7, `refused at +${t - T0} ms with only ${inSpan} calls in the last 60 s`);
        }
      }
      assert.ok(admitted.length > 20, `only ${admitted.length} admitted`);
    });

    it('costs the same however full a long window is: 20,000 charges in a day-long window', async () => {
      const DAY_ROLLING: Window = { kind: 'rolling', seconds: 86_400 };
      const key = k('rolling-full');
      const limit = [lte(20_000)];
      for (let i = 0; i < 20_000; i++) {
        // Spread over 20 hours, one every 3.6 s.
        granted(await store.reserve([item(key, DAY_ROLLING, limit)], T0 + i * 3600));
      }
      const end = T0 + 20_000 * 3600;
      assert.equal(await value(key, DAY_ROLLING, end), 20_000);
      const denied = refused(await store.reserve([item(key, DAY_ROLLING, limit)], end));
      assert.equal(denied.current, 20_000);
      // The first sub-window (24 min wide) holds the first 400 calls; it leaves a day after its end.
      assert.equal(denied.retryAfterMs, T0 + 1_440_000 + 86_400_000 - end);
      assert.equal(await value(key, DAY_ROLLING, T0 + 1_440_000 + 86_400_000), 20_000 - 400);
    });

    it('handles fractional amounts', async () => {
      const key = k('fraction');
      for (let i = 0; i < 4; i++) granted(await store.reserve([item(key, MINUTE, [lte(1)], 0.25)], T0));
      assert.equal(await value(key, MINUTE, T0), 1);
      assert.equal(refused(await store.reserve([item(key, MINUTE, [lte(1)], 0.25)], T0)).current, 1);
      granted(await store.reserve([item(key, MINUTE, [lte(1)], 0)], T0));

      const half = k('fraction-lt');
      granted(await store.reserve([item(half, ROLL60, [lt(1)], 0.5)], T0));
      refused(await store.reserve([item(half, ROLL60, [lt(1)], 0.5)], T0)); // 0.5 + 0.5 is not < 1
      granted(await store.reserve([item(half, ROLL60, [lt(1)], 0.375)], T0));
      assert.equal(await value(half, ROLL60, T0), 0.875);

      const rb = k('fraction-rollback');
      await fill(rb, MINUTE, 1, T0, 1.5);
      const r = granted(await store.reserve([item(rb, MINUTE, [], 0.75)], T0));
      assert.equal(await value(rb, MINUTE, T0), 2.25);
      await store.rollback(r, T0);
      assert.equal(await value(rb, MINUTE, T0), 1.5);
    });

    it('handles large amounts exactly', async () => {
      for (const window of [DAY, ROLL60]) {
        const key = k(`large-${window.kind}`);
        const amount = 1e15;
        for (let i = 0; i < 5; i++) granted(await store.reserve([item(key, window, [lte(5e15)], amount)], T0));
        const denied = refused(await store.reserve([item(key, window, [lte(5e15)], 1)], T0));
        assert.equal(denied.current, 5e15);
        assert.equal(await value(key, window, T0), 5e15);
        granted(await store.reserve([item(key, window, [lte(9_007_199_254_740_991)], 4e15)], T0));
        assert.equal(await value(key, window, T0), 9e15);
      }
    });

    for (const window of [MINUTE, ROLL60]) {
      it(`200 concurrent reservations against a limit of 50 admit exactly 50 (${window.kind})`, async () => {
        const key = k('concurrent');
        const outcomes = await Promise.all(
          Array.from({ length: 200 }, (_, i) => store.reserve([item(key, window, [lte(50)])], T0 + (i % 7))),
        );
        assert.equal(outcomes.filter((o) => o.ok).length, 50);
        assert.equal(await value(key, window, T0 + 10), 50);
      });
    }

    it('200 concurrent two-counter reservations keep both counters consistent', async () => {
      const a = k('concurrent-a');
      const b = k('concurrent-b');
      const outcomes = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          store.reserve([item(a, MINUTE, [lte(80)]), item(b, ROLL60, [lte(50)])], T0 + (i % 5)),
        ),
      );
      assert.equal(outcomes.filter((o) => o.ok).length, 50);
      assert.deepEqual(
        await store.read(
          [
            { key: a, window: MINUTE },
            { key: b, window: ROLL60 },
          ],
          T0 + 10,
        ),
        [50, 50],
      );
    });

    it('isolates scopes and sessions through storageKey', async () => {
      const prefix = k('scopes') + '/';
      const ref = (scope: 'global' | 'session', id = 'create_issue.hourly'): CounterRef => ({ id, owner: 'create_issue', scope, window: HOUR });
      const keys = {
        global: storageKey(ref('global'), 'one', prefix),
        one: storageKey(ref('session'), 'one', prefix),
        two: storageKey(ref('session'), 'two', prefix),
        // Ids and session ids holding the separator must still not meet.
        colonSession: storageKey(ref('session', 'c'), 'a:b', prefix),
        colonId: storageKey(ref('session', 'b:c'), 'a', prefix),
        globalLookalike: storageKey(ref('global', 's:one:create_issue.hourly'), 'x', prefix),
      };
      await fill(keys.one, HOUR, 3, T0);
      await fill(keys.two, HOUR, 1, T0);
      await fill(keys.colonSession, HOUR, 4, T0);
      const names = Object.keys(keys) as (keyof typeof keys)[];
      const values = await store.read(
        names.map((n) => ({ key: keys[n], window: HOUR })),
        T0,
      );
      assert.deepEqual(Object.fromEntries(names.map((n, i) => [n, values[i]])), {
        global: 0,
        one: 3,
        two: 1,
        colonSession: 4,
        colonId: 0,
        globalLookalike: 0,
      });
      // A limit on one session's counter does not hold another session back.
      refused(await store.reserve([item(keys.one, HOUR, [lte(3)])], T0));
      granted(await store.reserve([item(keys.two, HOUR, [lte(3)])], T0));
      granted(await store.reserve([item(keys.global, HOUR, [lte(3)])], T0));
    });
  });
}
