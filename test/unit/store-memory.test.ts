import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryCounterStore } from '../../src/state/memory.js';
import { storageKey } from '../../src/state/keys.js';
import type { CounterRef } from '../../src/engine/types.js';
import type { Window } from '../../src/policy/model.js';
import { counterStoreContract } from './store-contract.js';

counterStoreContract('MemoryCounterStore', async () => new MemoryCounterStore());

const MINUTE: Window = { kind: 'calendar', unit: 'minute' };
const ROLL60: Window = { kind: 'rolling', seconds: 60 };
const T0 = Date.UTC(2026, 0, 15, 10, 0, 0, 0);

describe('MemoryCounterStore specifics', () => {
  it('sweeps keys whose windows are over, keeping live ones', async () => {
    const store = new MemoryCounterStore();
    for (let i = 0; i < 1500; i++) await store.reserve([{ key: `cal${i}`, window: MINUTE, amount: 1, limits: [] }], T0);
    for (let i = 0; i < 500; i++) await store.reserve([{ key: `roll${i}`, window: ROLL60, amount: 1, limits: [] }], T0);
    assert.equal(store.size, 2000);
    const later = T0 + 120_000;
    await store.reserve([{ key: 'live-roll', window: ROLL60, amount: 2, limits: [] }], later - 30_000);
    for (let i = 0; i < 1000; i++) await store.reserve([{ key: 'live-cal', window: MINUTE, amount: 1, limits: [] }], later);
    assert.equal(store.size, 2);
    assert.deepEqual(
      await store.read(
        [
          { key: 'live-cal', window: MINUTE },
          { key: 'live-roll', window: ROLL60 },
          { key: 'cal0', window: MINUTE },
        ],
        later,
      ),
      [1000, 2, 0],
    );
    await store.close();
  });

  it('drops an expired key when it is next touched', async () => {
    const store = new MemoryCounterStore();
    await store.reserve([{ key: 'a', window: MINUTE, amount: 1, limits: [] }], T0);
    await store.reserve([{ key: 'b', window: ROLL60, amount: 1, limits: [] }], T0);
    assert.equal(store.size, 2);
    await store.read(
      [
        { key: 'a', window: MINUTE },
        { key: 'b', window: ROLL60 },
      ],
      T0 + 61_000, // the rolling charge's 1-second sub-window is then a whole window old
    );
    assert.equal(store.size, 0);
    await store.close();
  });

  const badAmounts = [-1, Number.NaN, Number.POSITIVE_INFINITY];
  for (const amount of badAmounts) {
    it(`rejects amount ${amount} without charging anything`, async () => {
      const store = new MemoryCounterStore();
      await assert.rejects(
        store.reserve(
          [
            { key: 'ok', window: MINUTE, amount: 1, limits: [] },
            { key: 'bad', window: MINUTE, amount, limits: [] },
          ],
          T0,
        ),
        RangeError,
      );
      assert.deepEqual(await store.read([{ key: 'ok', window: MINUTE }], T0), [0]);
      await store.close();
    });
  }

  it('ignores a reservation made by another store', async () => {
    const a = new MemoryCounterStore();
    const b = new MemoryCounterStore();
    const item = { key: 'k', window: MINUTE, amount: 1, limits: [] };
    const fromA = await a.reserve([item], T0);
    await b.reserve([item], T0);
    assert.ok(fromA.ok);
    await b.rollback(fromA.reservation, T0);
    assert.deepEqual(await b.read([{ key: 'k', window: MINUTE }], T0), [1]);
    await a.close();
    await b.close();
  });

  it('refuses to work once closed', async () => {
    const store = new MemoryCounterStore();
    await store.close();
    await assert.rejects(store.reserve([{ key: 'k', window: MINUTE, amount: 1, limits: [] }], T0), /closed/);
    await assert.rejects(store.read([{ key: 'k', window: MINUTE }], T0), /closed/);
  });
});

describe('storageKey', () => {
  const ref = (scope: 'global' | 'session', id: string): CounterRef => ({ id, owner: 'tool', scope, window: MINUTE });

  const cases: { name: string; ref: CounterRef; session: string; prefix?: string; key: string }[] = [
    { name: 'global', ref: ref('global', 'create_issue.hourly'), session: 'abc', key: 'g:create_issue.hourly' },
    { name: 'global ignores the session', ref: ref('global', 'x.y'), session: 'other', key: 'g:x.y' },
    { name: 'session', ref: ref('session', '_global._rate_minute'), session: 'abc', key: 's:abc:_global._rate_minute' },
    { name: 'prefix', ref: ref('session', 'x.y'), session: 'abc', prefix: 'intercept:', key: 'intercept:s:abc:x.y' },
    { name: 'colon in session', ref: ref('session', 'x.y'), session: 'a:b', key: 's:a%3Ab:x.y' },
    { name: 'percent in session', ref: ref('session', 'x.y'), session: '50%', key: 's:50%25:x.y' },
    { name: 'colon in id', ref: ref('session', 'a:b'), session: 's', key: 's:s:a:b' },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.key}`, () => {
      assert.equal(storageKey(c.ref, c.session, c.prefix), c.key);
    });
  }

  it('never gives two different (scope, session, id) triples the same key', () => {
    const parts = ['', ':', 'a', 'a:b', 'b:c', '%', '%3A', 'a%3Ab', 'g:', 's:', 's:a', 'g:a:b', 'c'];
    const seen = new Map<string, string>();
    for (const id of parts) {
      for (const session of parts) {
        for (const scope of ['global', 'session'] as const) {
          const key = storageKey(ref(scope, id), session, 'p');
          // A global key does not depend on the session.
          const triple = scope === 'global' ? `global|${id}` : `session|${session}|${id}`;
          const before = seen.get(key);
          assert.ok(before === undefined || before === triple, `${triple} and ${before} share ${key}`);
          seen.set(key, triple);
        }
      }
    }
    assert.equal(seen.size, parts.length + parts.length * parts.length);
  });
});
