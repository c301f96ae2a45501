// The Redis counter store on a real Redis Cluster (three masters, test/support/redis-cluster.ts):
// the whole CounterStore contract; a namespace's keys in one slot while namespaces spread over
// the masters; a namespace whose slot moves to another master (MOVED followed, counters kept);
// credentials used on every node and never logged; the loss of every master and its return.
// The DSN forms are checked first, without a cluster.
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisCounterStore } from '../../src/state/redis.js';
import { parseRedisDsn } from '../../src/state/redis-dsn.js';
import { checkStateDsn, maskDsn } from '../../src/state/open.js';
import { eventually, freePort } from '../support/wait.js';
import { redisClusterSkipReason, startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster.js';
import { MINUTE, HOUR, ROLL60, T0, lte, one, recordingLogger } from '../support/counters.js';
import { counterStoreContract } from './store-contract.js';


describe('cluster DSNs', () => {
  it('reads the nodes, the credentials and TLS, with the port defaulting to 6379', () => {
    assert.deepEqual(parseRedisDsn('redis+cluster://10.0.0.1:7000,10.0.0.2:7001,cache.internal,[::1]:7002/'), {
      kind: 'cluster',
      tls: false,
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: 'cache.internal', port: 6379 },
        { host: '::1', port: 7002 },
      ],
      endpoint: 'redis+cluster://10.0.0.1:7000,10.0.0.2:7001,cache.internal:6379,[::1]:7002',
    });
    const tls = parseRedisDsn('rediss+cluster://intercept:p%40ss:w@rd@h1:7000,h2:7000');
    assert.equal(tls.kind, 'cluster');
    if (tls.kind !== 'cluster') return;
    assert.equal(tls.tls, true);
    assert.equal(tls.username, 'intercept');
    assert.equal(tls.password, 'p@ss:w@rd'); // everything up to the last @, split at the first :
    assert.equal(tls.endpoint, 'rediss+cluster://h1:7000,h2:7000');
    assert.deepEqual(parseRedisDsn('redis://u:secret@h:6379/2'), { kind: 'server', dsn: 'redis://u:secret@h:6379/2', endpoint: 'redis://h:6379/2' });
  });

  it('refuses malformed cluster DSNs without echoing the credentials', () => {
    for (const dsn of [
      'redis+cluster://',
      'redis+cluster://u:secret@',
      'redis+cluster://u:secret@h1:7000,',
      'redis+cluster://u:secret@h1:port',
      'redis+cluster://u:secret@h1:70000',
      'redis+cluster://u:secret@h1:7000/2',
      'redis+cluster://u:secret@h1:7000?tls=1',
      'redis+cluster://u:secret@h 1:7000',
      'redis+cluster://u:%zzsecret@h1:7000',
    ]) {
      assert.throws(() => parseRedisDsn(dsn), (err: Error) => {
        assert.match(err.message, /redis\+cluster:\/\/\[user:pass@\]host:port\[,host:port…\]/, dsn);
        assert.doesNotMatch(err.message, /secret/, dsn);
        return true;
      });
      const usage = checkStateDsn(dsn) ?? '';
      assert.ok(usage.startsWith('--state-dsn'), dsn);
      assert.doesNotMatch(usage, /secret/);
    }
  });

  it('is accepted by --state-dsn, listed in its error, and masked in logs', () => {
    assert.equal(checkStateDsn('redis+cluster://127.0.0.1:7000,127.0.0.1:7001'), undefined);
    assert.equal(checkStateDsn('rediss+cluster://u:p@h:7000'), undefined);
    const usage = checkStateDsn('postgres://u:secret@h/db');
    assert.match(usage ?? '', /redis:\/\/.*rediss:\/\/.*redis\+cluster:\/\/\[user:pass@\]host:port\[,host:port…\].*rediss\+cluster:\/\/.*memory:/);
    assert.doesNotMatch(usage ?? '', /secret/);
    assert.equal(maskDsn('redis+cluster://intercept:secret@h1:7000,h2:7001'), 'redis+cluster://intercept:***@h1:7000,h2:7001');
    assert.equal(maskDsn('redis+cluster://intercept:se/cr@et@h1:7000,h2:7001'), 'redis+cluster://intercept:***@h1:7000,h2:7001');
    assert.equal(maskDsn('rediss+cluster://intercept:secret@h1:7000'), 'rediss+cluster://intercept:***@h1:7000');
    assert.equal(maskDsn('redis+cluster://h1:7000,h2:7001'), 'redis+cluster://h1:7000,h2:7001');
  });
});

if (redisClusterSkipReason) {
  test('RedisCounterStore on a Redis Cluster', { skip: redisClusterSkipReason }, () => {});
} else {
  // The cluster's hooks belong to this suite only: the DSN tests above run whatever happens here.
  describe('on a Redis Cluster of three masters', () => {
    let cluster: RedisClusterHandle;
    let seq = 0;
    const prefix = (label: string) => `${label}-${process.pid}-${Date.now()}-${++seq}`;

    before(async () => {
      cluster = await startRedisCluster();
    });
    after(async () => {
      await cluster?.stop();
    });

    counterStoreContract('RedisCounterStore (Redis Cluster)', () => RedisCounterStore.connect(cluster.dsn, { prefix: prefix('contract') }));

    describe('RedisCounterStore on a Redis Cluster', () => {
      /** A prefix whose namespace lives on the master of `port`, or (with `not`) on another one. */
      async function prefixOn(label: string, want: (port: number) => boolean): Promise<{ prefix: string; slot: number; port: number }> {
        for (let i = 0; i < 200; i++) {
          const p = prefix(label);
          const slot = await cluster.keySlot(`{intercept:${p}}`);
          const port = await cluster.masterOf(slot);
          if (want(port)) return { prefix: p, slot, port };
        }
        throw new Error('no prefix found on the wanted master');
      }

      it('keeps every key of a namespace in one slot; two namespaces on different masters both work', async () => {
        const a = await prefixOn('slot-a', () => true);
        const b = await prefixOn('slot-b', (port) => port !== a.port);
        const alpha = await RedisCounterStore.connect(cluster.dsn, { prefix: a.prefix });
        const beta = await RedisCounterStore.connect(cluster.dsn, { prefix: b.prefix });
        try {
          const now = Date.now();
          const items = [one('g:tool.minute', MINUTE, [lte(2)]), one('s:session-1:tool.hour', HOUR), one('g:tool.rolling', ROLL60, [lte(2)]), one('s:x:{odd}.key', { kind: 'rolling', seconds: 5 })];
          for (const [store, ns] of [[alpha, a], [beta, b]] as const) {
            assert.equal((await store.reserve(items, now)).ok, true);
            assert.equal((await store.reserve(items, now)).ok, true);
            // The limit of 2 holds, all or nothing, in either namespace.
            assert.equal((await store.reserve(items, now)).ok, false);
            assert.deepEqual(await store.read(items.map(({ key, window }) => ({ key, window })), now), [2, 2, 2, 2]);
            const keys = items.map((i) => store.keyOf(i.key, i.window, now));
            const slots = await Promise.all(keys.map((key) => cluster.keySlot(key)));
            assert.deepEqual(new Set(slots), new Set([ns.slot]), `keys in several slots: ${keys.join(', ')}`);
            // The keys are on the master that owns the slot (EXISTS: that node answers, no MOVED),
            // and on no other.
            assert.equal(Number(await cluster.command(ns.port, 'EXISTS', ...keys)), keys.length);
            for (const port of cluster.ports) {
              const count = Number(await cluster.command(port, 'CLUSTER', 'COUNTKEYSINSLOT', ns.slot));
              assert.equal(count, port === ns.port ? keys.length : 0, `port ${port}: ${count} keys of ${ns.prefix}`);
            }
          }
          assert.notEqual(a.port, b.port);
        } finally {
          await Promise.all([alpha.close(), beta.close()]);
        }
      });

      it('connects through any one listed node and shares counters with stores listing others', async () => {
        const p = prefix('via');
        const stores = await Promise.all(cluster.ports.map((port) => RedisCounterStore.connect(cluster.dsnOf(port), { prefix: p })));
        try {
          for (const store of stores) for (let i = 0; i < 2; i++) assert.equal((await store.reserve([one('g:k', ROLL60, [lte(6)])], T0)).ok, true);
          for (const store of stores) assert.equal((await store.reserve([one('g:k', ROLL60, [lte(6)])], T0)).ok, false);
          for (const store of stores) assert.deepEqual(await store.read([{ key: 'g:k', window: ROLL60 }], T0), [6]);
        } finally {
          await Promise.all(stores.map((s) => s.close()));
        }
      });

      it('follows the namespace when its slot moves to another master (MOVED), keeping its counters', async () => {
        const { prefix: p, slot, port: from } = await prefixOn('moved', () => true);
        const to = cluster.ports.find((port) => port !== from)!;
        const store = await RedisCounterStore.connect(cluster.dsn, { prefix: p });
        try {
          for (let i = 0; i < 3; i++) assert.equal((await store.reserve([one('g:k', MINUTE, [lte(5)]), one('g:r', ROLL60, [lte(5)])], T0)).ok, true);
          const keys = [store.keyOf('g:k', MINUTE, T0), store.keyOf('g:r', ROLL60, T0)];

          // Reshard the slot by hand, as redis-cli --cluster reshard does.
          const fromId = String(await cluster.command(from, 'CLUSTER', 'MYID'));
          const toId = String(await cluster.command(to, 'CLUSTER', 'MYID'));
          await cluster.command(to, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
          await cluster.command(from, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
          const inSlot = (await cluster.command(from, 'CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
          assert.deepEqual(new Set(inSlot), new Set(keys));
          await cluster.command(from, 'MIGRATE', '127.0.0.1', to, '', 0, 5000, 'KEYS', ...inSlot);
          for (const port of [to, from, ...cluster.ports.filter((q) => q !== to && q !== from)]) {
            await cluster.command(port, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
          }
          assert.equal(await cluster.masterOf(slot), to);

          // The store still thinks the slot is on `from`: it is told MOVED, and follows.
          assert.equal((await store.reserve([one('g:k', MINUTE, [lte(5)]), one('g:r', ROLL60, [lte(5)])], T0)).ok, true);
          assert.deepEqual(await store.read([{ key: 'g:k', window: MINUTE }, { key: 'g:r', window: ROLL60 }], T0), [4, 4]);
          assert.equal(Number(await cluster.command(to, 'EXISTS', ...keys)), 2);
          assert.equal(Number(await cluster.command(from, 'CLUSTER', 'COUNTKEYSINSLOT', slot)), 0);
        } finally {
          await store.close();
        }
      });

      it('uses the credentials on every node and never logs the password', async () => {
        const password = `pw-${process.pid}-secret`;
        for (const port of cluster.ports) await cluster.command(port, 'ACL', 'SETUSER', 'intercept-test', 'on', `>${password}`, '~*', '+@all');
        const [host1, host2, host3] = cluster.ports.map((port) => `127.0.0.1:${port}`);
        const { log, lines } = recordingLogger();
        try {
          // Namespaces on every master: each needs its own authenticated connection.
          const good = await RedisCounterStore.connect(`redis+cluster://intercept-test:${password}@${host1},${host2},${host3}`, { prefix: prefix('auth'), log });
          try {
            for (const port of cluster.ports) {
              const { prefix: p } = await prefixOn('auth-ns', (q) => q === port);
              const store = await RedisCounterStore.connect(`redis+cluster://intercept-test:${password}@${host2}`, { prefix: p, log });
              try {
                assert.equal((await store.reserve([one('g:k', MINUTE)], T0)).ok, true);
              } finally {
                await store.close();
              }
            }
            assert.equal((await good.reserve([one('g:k', MINUTE)], T0)).ok, true);
          } finally {
            await good.close();
          }
          // A wrong password: the store starts, warns, and its calls reject; nothing says the password.
          const wrong = `${password}-wrong`;
          const bad = await RedisCounterStore.connect(`redis+cluster://intercept-test:${wrong}@${host1}`, { prefix: prefix('auth-bad'), log, commandTimeoutMs: 300 });
          try {
            await assert.rejects(bad.reserve([one('g:k', MINUTE)], T0), (err: Error) => {
              assert.match(err.message, /counter store \(redis\) at redis\+cluster:\/\/127\.0\.0\.1:\d+/);
              assert.doesNotMatch(err.message, /secret/);
              return true;
            });
          } finally {
            await bad.close();
          }
          assert.ok(lines.some((l) => l.includes(' WARN ') && l.includes('unreachable')), lines.join(''));
          assert.doesNotMatch(lines.join(''), /secret/);
        } finally {
          for (const port of cluster.ports) await cluster.command(port, 'ACL', 'DELUSER', 'intercept-test');
        }
      });

      it('starts without a cluster: connect warns once, and calls reject promptly', async () => {
        const ports = [await freePort(), await freePort()];
        const { log, lines } = recordingLogger();
        const started = Date.now();
        const store = await RedisCounterStore.connect(`redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}`, { prefix: prefix('none'), log });
        try {
          assert.ok(Date.now() - started < 5_000);
          assert.equal(lines.filter((l) => l.includes(' WARN ')).length, 1, lines.join(''));
          assert.match(lines.join(''), /unreachable/);
          const t = Date.now();
          await assert.rejects(store.reserve([one('k', MINUTE)], T0), /counter store \(redis\) at redis\+cluster:\/\/127\.0\.0\.1:\d+,127\.0\.0\.1:\d+ is not reachable/);
          assert.ok(Date.now() - t < 500);
        } finally {
          await store.close();
        }
      });

      it('starts while the cluster is down (cluster_state:fail): connect returns within its timeout, and calls work once it is ok', async () => {
        // Uncover one master's slots: every node then says cluster_state:fail, and ioredis's own
        // connect would wait for as long as that lasts.
        const [from, to, [, ownerPort]] = ((await cluster.command(cluster.ports[0]!, 'CLUSTER', 'SLOTS')) as [number, number, [string, number]][])[0]!;
        for (const port of cluster.ports) await cluster.command(port, 'CLUSTER', 'DELSLOTSRANGE', from, to);
        const { log, lines } = recordingLogger();
        let store: RedisCounterStore | undefined;
        try {
          await eventually(async () => (/^cluster_state:fail\r?$/m.test(String(await cluster.command(cluster.ports[0]!, 'CLUSTER', 'INFO'))) ? true : undefined));
          const started = Date.now();
          store = await RedisCounterStore.connect(cluster.dsn, { prefix: prefix('state-fail'), log });
          assert.ok(Date.now() - started < 4_000, `connect took ${Date.now() - started} ms`);
          assert.match(lines.join(''), /WARN counter store \(redis\) is unreachable/);
          await assert.rejects(store.reserve([one('k', MINUTE)], T0), /counter store \(redis\)/);
        } finally {
          await cluster.command(Number(ownerPort), 'CLUSTER', 'ADDSLOTSRANGE', from, to);
          await cluster.formed();
        }
        try {
          const outcome = await eventually(() => store!.reserve([one('k', MINUTE, [lte(1)])], T0), 20_000);
          assert.equal(outcome.ok, true);
          assert.ok(lines.some((l) => l.includes(' INFO ') && l.includes('reachable again')), lines.join(''));
        } finally {
          await store?.close();
        }
      });

      it('survives the loss of every master: calls reject while it is down and work again after it returns', async () => {
        const { log, lines } = recordingLogger();
        const store = await RedisCounterStore.connect(cluster.dsn, { prefix: prefix('outage'), log });
        try {
          const before = await store.reserve([one('k', MINUTE)], T0);
          assert.ok(before.ok);

          await cluster.kill();
          await assert.rejects(store.reserve([one('k', MINUTE)], T0), /counter store \(redis\)/);
          await assert.rejects(store.read([{ key: 'k', window: MINUTE }], T0), /counter store \(redis\)/);
          await assert.rejects(store.rollback(before.reservation, T0), /counter store \(redis\)/);
          // Reconnect attempts keep failing for a while; they are logged once, not each time.
          await new Promise((r) => setTimeout(r, 1_500));
          const t = Date.now();
          await assert.rejects(store.reserve([one('k', MINUTE)], T0));
          assert.ok(Date.now() - t < 1_500, 'a call during the outage took longer than the command timeout');

          await cluster.restart();
          // The same store object works again (the restarted nodes are empty: no persistence).
          const after = await eventually(() => store.reserve([one('k', MINUTE, [lte(1)])], T0), 20_000);
          assert.equal(after.ok, true);
          assert.deepEqual(await store.read([{ key: 'k', window: MINUTE }], T0), [1]);
        } finally {
          await store.close();
        }
        const warns = lines.filter((l) => l.includes(' WARN '));
        assert.equal(warns.length, 1, lines.join(''));
        assert.ok(lines.some((l) => l.includes(' INFO ') && l.includes('reachable again')), lines.join(''));
      });
    });
  });
}
