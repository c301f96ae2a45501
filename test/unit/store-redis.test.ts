import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import { CLOCK_SKEW_MARGIN_MS, RedisCounterStore } from '../../src/state/redis.js';
import { bucketAt, bucketExpiry, rollingGeometry } from '../../src/state/rolling.js';
import { calendarWindowEnd } from '../../src/state/windows.js';
import { eventually, freePort } from '../support/wait.js';
import { redisSkipReason, startRedis, type RedisHandle } from '../support/redis-server.js';
import { MINUTE, HOUR, DAY, ROLL60, T0, lte, one, recordingLogger } from '../support/counters.js';
import { counterStoreContract } from './store-contract.js';

// Redis Cluster's slot function (CRC16 of the hash tag, mod 16384), as ioredis uses it.
const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;


if (redisSkipReason) {
  test('RedisCounterStore', { skip: redisSkipReason }, () => {});
} else {
  let server: RedisHandle;
  /** Outage tests need a server they can stop and start. */
  const external = process.env['REDIS_URL'] ? 'REDIS_URL is set: the tests cannot stop or start that server' : false;
  let seq = 0;
  const prefix = (label: string) => `${label}-${process.pid}-${Date.now()}-${++seq}`;

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });

  counterStoreContract('RedisCounterStore', () => RedisCounterStore.connect(server.url, { prefix: prefix('contract') }));

  describe('RedisCounterStore specifics', () => {
    it('keeps prefixes apart and shares a prefix between stores', async () => {
      const p = prefix('iso');
      const alpha = await RedisCounterStore.connect(server.url, { prefix: `${p}-alpha` });
      const beta = await RedisCounterStore.connect(server.url, { prefix: `${p}-beta` });
      const alphaToo = await RedisCounterStore.connect(server.url, { prefix: `${p}-alpha` });
      // A brace in a prefix must not end the namespace early: `${p}-alpha}g:` + `k` and
      // `${p}-alpha` + `g:k}...` would otherwise name the same key.
      const braced = await RedisCounterStore.connect(server.url, { prefix: `${p}-alpha}g:k` });
      for (const window of [MINUTE, ROLL60]) {
        for (let i = 0; i < 3; i++) await alpha.reserve([one('g:k', window)], T0);
        await beta.reserve([one('g:k', window)], T0);
        assert.deepEqual(await alpha.read([{ key: 'g:k', window }], T0), [3]);
        assert.deepEqual(await beta.read([{ key: 'g:k', window }], T0), [1]);
        assert.deepEqual(await alphaToo.read([{ key: 'g:k', window }], T0), [3]);
        await alpha.reserve([one('g:k}g:k', window)], T0);
        assert.deepEqual(await braced.read([{ key: 'g:k', window }], T0), [0]);
        // The limit is shared by every store of the namespace.
        assert.equal((await alphaToo.reserve([one('g:k', window, [lte(3)])], T0)).ok, false);
        assert.equal((await beta.reserve([one('g:k', window, [lte(3)])], T0)).ok, true);
      }
      await Promise.all([alpha.close(), beta.close(), alphaToo.close(), braced.close()]);
    });

    it('puts every key of a reservation in one hash slot, and sets TTLs to the window end', async () => {
      const p = prefix('slot');
      const store = await RedisCounterStore.connect(server.url, { prefix: p });
      const now = Date.now();
      const items = [
        one('g:tool.minute', MINUTE),
        one('s:session-1:tool.hour', HOUR),
        one('s:other:tool.day', DAY),
        one('g:tool.rolling', ROLL60),
        one('s:x:{odd}.key', { kind: 'rolling', seconds: 5 }),
      ];
      assert.equal((await store.reserve(items, now)).ok, true);
      const keys = items.map((i) => store.keyOf(i.key, i.window, now));
      const raw = new Redis(server.url);
      const slots = new Set(keys.map(keySlot));
      assert.equal(slots.size, 1, `keys in several slots: ${keys.join(', ')}`);
      assert.deepEqual([...slots], [keySlot(`intercept:${p}`)]);
      for (const [index, item] of items.entries()) {
        const key = keys[index]!;
        const pttl = await raw.pttl(key);
        const w = item.window;
        // A rolling counter lives until its newest bucket stops counting (rolling.ts).
        const rolling = w.kind === 'rolling' ? rollingGeometry(w.seconds) : undefined;
        const untilEnd =
          w.kind === 'calendar' ? calendarWindowEnd(w.unit, now) - now : bucketExpiry(bucketAt(now, rolling!.bucketMs).end, rolling!.windowMs) - now;
        // Set to the window's end (or the bucket's expiry) plus the clock-skew margin; a little has elapsed since.
        assert.ok(pttl > 0 && pttl <= untilEnd + CLOCK_SKEW_MARGIN_MS, `${key}: PTTL ${pttl}`);
        assert.ok(pttl > untilEnd + CLOCK_SKEW_MARGIN_MS - 5_000, `${key}: PTTL ${pttl} is far below the window end`);
      }
      await raw.quit();
      await store.close();
    });

    it('keeps at most a window of buckets per rolling counter, however many calls: 20,000 in a day', async () => {
      const p = prefix('bounded');
      const store = await RedisCounterStore.connect(server.url, { prefix: p });
      const dayRolling = { kind: 'rolling', seconds: 86_400 } as const;
      for (let i = 0; i < 20_000; i++) assert.ok((await store.reserve([one('g:busy', dayRolling)], T0 + i * 8_640)).ok);
      const raw = new Redis(server.url);
      const buckets = await raw.hlen(store.keyOf('g:busy', dayRolling, T0));
      assert.ok(buckets <= 61, `${buckets} buckets`);
      await raw.quit();
      await store.close();
    });

    it('keeps rolling entries of different stores apart: a rollback removes only its own', async () => {
      const p = prefix('members');
      const a = await RedisCounterStore.connect(server.url, { prefix: p });
      const b = await RedisCounterStore.connect(server.url, { prefix: p });
      const ra = await a.reserve([one('g:k', ROLL60)], T0);
      await b.reserve([one('g:k', ROLL60)], T0);
      assert.deepEqual(await a.read([{ key: 'g:k', window: ROLL60 }], T0), [2]);
      assert.ok(ra.ok);
      await a.rollback(ra.reservation, T0);
      assert.deepEqual(await b.read([{ key: 'g:k', window: ROLL60 }], T0), [1]);
      // A store ignores a reservation it did not make.
      const rb = await b.reserve([one('g:k', MINUTE)], T0);
      assert.ok(rb.ok);
      await a.rollback(rb.reservation, T0);
      assert.deepEqual(await b.read([{ key: 'g:k', window: MINUTE }], T0), [1]);
      await Promise.all([a.close(), b.close()]);
    });

    for (const amount of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      it(`rejects amount ${amount} with a RangeError without charging anything`, async () => {
        const store = await RedisCounterStore.connect(server.url, { prefix: prefix('bad') });
        await assert.rejects(store.reserve([one('ok', MINUTE), one('bad', MINUTE, [], amount)], T0), RangeError);
        assert.deepEqual(await store.read([{ key: 'ok', window: MINUTE }], T0), [0]);
        await store.close();
      });
    }

    it('refuses to work once closed, and closes twice without complaint', async () => {
      const store = await RedisCounterStore.connect(server.url, { prefix: prefix('closed') });
      await store.close();
      await store.close();
      await assert.rejects(store.reserve([one('k', MINUTE)], T0), /closed/);
      await assert.rejects(store.read([{ key: 'k', window: MINUTE }], T0), /closed/);
    });

    it('rejects a DSN that is not a Redis URL, without echoing it', async () => {
      for (const dsn of ['http://user:secret@host:6379', 'localhost:6379', '', 'redis://']) {
        await assert.rejects(RedisCounterStore.connect(dsn), (err: Error) => {
          assert.match(err.message, /redis:\/\//);
          assert.doesNotMatch(err.message, /secret/);
          return true;
        });
      }
    });

    it('rejects calls while the server does not answer, and works again once it does', async () => {
      // A script that keeps the server busy for 1.5 s: every other client waits.
      const store = await RedisCounterStore.connect(server.url, { prefix: prefix('busy'), commandTimeoutMs: 300 });
      const blocker = new Redis(server.url);
      const busy = blocker.eval(
        "local t = redis.call('TIME'); local start = t[1] * 1e6 + t[2]; repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - start > 1.5e6; return 1",
        0,
      );
      await new Promise((r) => setTimeout(r, 100));
      await assert.rejects(store.reserve([one('k', MINUTE)], T0), /timed out/);
      await busy;
      await blocker.quit();
      // The timed-out reservation may still have been applied once the server got to it:
      // over-counting is the only possible error.
      await eventually(() => store.reserve([one('k', MINUTE)], T0));
      assert.ok((await store.read([{ key: 'k', window: MINUTE }], T0))[0]! >= 1);
      await store.close();
    });

    it('survives an outage: calls reject while the server is down and work again after it returns', { skip: external }, async () => {
      const { log, lines } = recordingLogger();
      const store = await RedisCounterStore.connect(server.url, { prefix: prefix('outage'), log });
      const before = await store.reserve([one('k', MINUTE)], T0);
      assert.ok(before.ok);

      await server.kill();
      await assert.rejects(store.reserve([one('k', MINUTE)], T0), /counter store \(redis\)/);
      await assert.rejects(store.read([{ key: 'k', window: MINUTE }], T0), /counter store \(redis\)/);
      await assert.rejects(store.rollback(before.reservation, T0), /counter store \(redis\)/);
      // Reconnect attempts keep failing for a while; they are logged once, not each time.
      await new Promise((r) => setTimeout(r, 1_500));
      await assert.rejects(store.reserve([one('k', MINUTE)], T0));

      await server.restart();
      // The same store object works again (the restarted server is empty: no persistence).
      const after = await eventually(() => store.reserve([one('k', MINUTE, [lte(1)])], T0));
      assert.equal(after.ok, true);
      assert.deepEqual(await store.read([{ key: 'k', window: MINUTE }], T0), [1]);
      await store.close();

      const warns = lines.filter((l) => l.includes(' WARN '));
      assert.equal(warns.length, 1, lines.join(''));
      assert.ok(lines.some((l) => l.includes(' INFO ') && l.includes('reachable again')), lines.join(''));
    });

    it('starts without a server: connect warns, calls reject, and work once a server appears', { skip: external }, async () => {
      const port = await freePort();
      const { log, lines } = recordingLogger();
      const store = await RedisCounterStore.connect(`redis://127.0.0.1:${port}`, { prefix: prefix('late'), log });
      assert.equal(lines.filter((l) => l.includes(' WARN ')).length, 1, lines.join(''));
      assert.match(lines.join(''), /unreachable/);
      await assert.rejects(store.reserve([one('k', MINUTE)], T0), /not reachable/);
      const late = await startRedis({ port });
      try {
        const outcome = await eventually(() => store.reserve([one('k', ROLL60, [lte(1)])], T0));
        assert.equal(outcome.ok, true);
        assert.deepEqual(await store.read([{ key: 'k', window: ROLL60 }], T0), [1]);
      } finally {
        await store.close();
        await late.stop();
      }
    });
  });
}
