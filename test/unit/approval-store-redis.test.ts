import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import { openApprovalStore } from '../../src/approval/open.js';
import { RedisApprovalStore } from '../../src/approval/redis.js';
import { RETENTION_MS } from '../../src/approval/types.js';
import { CLOCK_SKEW_MARGIN_MS } from '../../src/state/redis.js';
import { freePort } from '../support/wait.js';
import { recordingLogger } from '../support/counters.js';
import { redisSkipReason, startRedis, type RedisHandle } from '../support/redis-server.js';
import { approvalStoreContract, request, T0 } from './approval-store-contract.js';

// Redis Cluster's slot function (CRC16 of the hash tag, mod 16384), as ioredis uses it.
const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

if (redisSkipReason) {
  test('RedisApprovalStore', { skip: redisSkipReason }, () => {});
} else {
  let server: RedisHandle;
  let seq = 0;
  const prefix = (label: string) => `${label}-${process.pid}-${Date.now()}-${++seq}`;
  /** The documented hash tag of a namespace: braces (and %) in the prefix are %-escaped. */
  const tagOf = (p: string) => `{intercept:${p.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}}`;

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });

  approvalStoreContract('RedisApprovalStore', { shared: true, fresh: () => (p) => RedisApprovalStore.connect(server.url, { prefix: p }) });

  describe('RedisApprovalStore specifics', () => {
    const ALICE = { approve: true, by: 'alice', via: 'cli' } as const;

    it('keeps every key of a namespace in one hash slot, even with braces in the prefix', async () => {
      const label = prefix('slot');
      const p = `${label}}{odd}`;
      const store = await RedisApprovalStore.connect(server.url, { prefix: p });
      const raw = new Redis(server.url);
      try {
        const r = await store.create(request(), T0);
        const keys = (await raw.keys(`*${label}*`)).sort();
        const tag = tagOf(p);
        assert.deepEqual(keys, [`${tag}apr:${r.id}`, `${tag}apr:bind:${r.binding}`, `${tag}apr:index`, `${tag}apr:seq`].sort());
        assert.equal(store.recordKey(r.id), `${tag}apr:${r.id}`);
        assert.deepEqual(new Set(keys.map(keySlot)), new Set([keySlot(tag.slice(1, -1))]));
      } finally {
        await raw.quit();
        await store.close();
      }
    });

    it('sets TTLs so a request vanishes RETENTION_MS after it became final (after expiresAt while open)', async () => {
      const p = prefix('ttl');
      const store = await RedisApprovalStore.connect(server.url, { prefix: p });
      const raw = new Redis(server.url);
      const near = (actual: number, expected: number) =>
        assert.ok(actual <= expected && actual > expected - 5_000, `TTL ${actual} ms, expected about ${expected}`);
      try {
        const open = await store.create(request(), T0);
        near(await raw.pttl(store.recordKey(open.id)), open.expiresAt - T0 + RETENTION_MS + CLOCK_SKEW_MARGIN_MS);
        await store.decide(open.id, ALICE, T0 + 1_000);
        // Approved is still open: the TTL stays.
        near(await raw.pttl(store.recordKey(open.id)), open.expiresAt - T0 + RETENTION_MS + CLOCK_SKEW_MARGIN_MS);
        await store.claim(open.id, T0 + 2_000);
        near(await raw.pttl(store.recordKey(open.id)), RETENTION_MS + CLOCK_SKEW_MARGIN_MS);
        const keys = await raw.keys(`*${p}*`);
        assert.equal(keys.length, 4, keys.join(', '));
        for (const key of keys) assert.ok((await raw.pttl(key)) > 0, `${key} has no TTL`);
      } finally {
        await raw.quit();
        await store.close();
      }
    });

    it('reads past retention delete the request and drop it from the index', async () => {
      const p = prefix('gone');
      const store = await RedisApprovalStore.connect(server.url, { prefix: p });
      const raw = new Redis(server.url);
      try {
        const r = await store.create(request(), T0);
        await store.withdraw(r.id, T0 + 1);
        assert.deepEqual(await store.list(T0 + 1 + RETENTION_MS), []);
        assert.equal(await raw.exists(store.recordKey(r.id)), 0);
        assert.equal(await raw.zcard(`${tagOf(p)}apr:index`), 0);
      } finally {
        await raw.quit();
        await store.close();
      }
    });

    it('two stores sharing the server claim a grant once', async () => {
      const p = prefix('two');
      const a = await RedisApprovalStore.connect(server.url, { prefix: p });
      const b = await RedisApprovalStore.connect(server.url, { prefix: p });
      try {
        const { id } = await a.create(request(), T0);
        assert.equal((await b.decide(id, ALICE, T0 + 1)).ok, true);
        const claims = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).claim(id, T0 + 2)));
        assert.equal(claims.filter((c) => c.ok).length, 1);
        assert.equal((await a.get(id, T0 + 3))?.status, 'used');
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('openApprovalStore uses Redis for a Redis DSN, sharing requests with a direct store', async () => {
      const p = prefix('opened');
      const { log } = recordingLogger();
      const opened = await openApprovalStore({ stateDsn: server.url, prefix: p, log });
      const direct = await RedisApprovalStore.connect(server.url, { prefix: p });
      try {
        assert.equal(opened.description, `redis ${server.url}`);
        const r = await opened.store.create(request(), T0);
        assert.equal((await direct.get(r.id, T0))?.id, r.id);
      } finally {
        await Promise.all([opened.store.close(), direct.close()]);
      }
    });

    it('rejects a DSN that is not a Redis URL, without echoing it', async () => {
      await assert.rejects(RedisApprovalStore.connect('http://user:secret@host:6379'), (err: Error) => {
        assert.match(err.message, /redis:\/\//);
        assert.doesNotMatch(err.message, /secret/);
        return true;
      });
    });

    it('starts without a server: connect warns, and calls reject saying so', async () => {
      const { log, lines } = recordingLogger();
      const store = await RedisApprovalStore.connect(`redis://127.0.0.1:${await freePort()}`, { prefix: prefix('down'), log });
      try {
        assert.equal(lines.filter((l) => l.includes(' WARN ')).length, 1, lines.join(''));
        await assert.rejects(store.create(request(), T0), /approval store \(redis\) at .* is not reachable/);
        await assert.rejects(store.claim('apr_aaaaaaaaaaaaaaaa', T0), /not reachable/);
      } finally {
        await store.close();
      }
    });
  });
}
