// Several proxy processes sharing one Redis server: reservations from all of them together
// never exceed a limit. Each process has its own RedisCounterStore (its own connection) and
// fires its reservations concurrently; the server's Lua scripts are the only serialisation.
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RedisCounterStore } from '../../src/state/redis.js';
import type { ReserveItem } from '../../src/state/store.js';
import type { Window } from '../../src/policy/model.js';
import { redisSkipReason, startRedis, type RedisHandle } from '../support/redis-server.js';

const HAMMER = fileURLToPath(new URL('../fixtures/redis-hammer.ts', import.meta.url));
const PROCESSES = 4;
const EACH = 250;
const LIMIT = 100;

interface Tally {
  admitted: number;
  refused: number;
  failed: number;
}

/** Starts every process, releases them together once all are connected, and collects tallies. */
async function hammer(url: string, prefix: string, items: ReserveItem[], now: number): Promise<Tally[]> {
  const children = Array.from({ length: PROCESSES }, () =>
    spawn(process.execPath, ['--import', 'tsx', HAMMER, url, prefix, String(EACH), String(now), JSON.stringify(items)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  const outputs = children.map((child) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c.toString()));
    child.stderr.on('data', (c) => (err += c.toString()));
    const ready = new Promise<void>((resolve, reject) => {
      const check = () => (out.startsWith('ready\n') ? resolve() : undefined);
      child.stdout.on('data', check);
      child.once('exit', (code) => reject(new Error(`a process exited (${code}) before it was ready: ${err}`)));
    });
    const done = new Promise<Tally>((resolve, reject) => {
      child.once('exit', (code) => {
        const last = out.trim().split('\n').at(-1) ?? '';
        if (code !== 0) reject(new Error(`a process exited with ${code}: ${err}`));
        else resolve(JSON.parse(last) as Tally);
      });
    });
    done.catch(() => {}); // awaited below only once every process is ready
    return { ready, done };
  });
  try {
    await Promise.all(outputs.map((o) => o.ready));
    for (const child of children) child.stdin.end('go\n');
    return await Promise.all(outputs.map((o) => o.done));
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
  }
}

if (redisSkipReason) {
  test('Redis counters shared by several processes', { skip: redisSkipReason }, () => {});
} else {
  describe('Redis counters shared by several processes', () => {
    let server: RedisHandle;
    before(async () => {
      server = await startRedis();
    });
    after(async () => {
      await server.stop();
    });

    const MINUTE: Window = { kind: 'calendar', unit: 'minute' };
    const ROLL60: Window = { kind: 'rolling', seconds: 60 };
    const limit = [{ value: LIMIT, inclusive: true }];
    const cases: { name: string; items: ReserveItem[] }[] = [
      { name: 'a calendar counter', items: [{ key: 'g:send.minute', window: MINUTE, amount: 1, limits: limit }] },
      { name: 'a rolling counter', items: [{ key: 'g:send.rolling', window: ROLL60, amount: 1, limits: limit }] },
      {
        name: 'a calendar and a rolling counter in one reservation',
        items: [
          { key: 'g:send.minute', window: MINUTE, amount: 1, limits: [{ value: LIMIT + 50, inclusive: true }] },
          { key: 's:agent:send.rolling', window: ROLL60, amount: 1, limits: limit },
        ],
      },
    ];

    for (const { name, items } of cases) {
      it(`${PROCESSES} processes × ${EACH} concurrent calls against a limit of ${LIMIT} on ${name}: exactly ${LIMIT} admitted`, async () => {
        const prefix = `fleet-${process.pid}-${Date.now()}`;
        // One `now` for every process: the test must not straddle a minute boundary.
        const now = Date.now();
        const tallies = await hammer(server.url, prefix, items, now);
        const total = tallies.reduce((a, t) => ({ admitted: a.admitted + t.admitted, refused: a.refused + t.refused, failed: a.failed + t.failed }));
        assert.deepEqual(total, { admitted: LIMIT, refused: PROCESSES * EACH - LIMIT, failed: 0 });
        // Every process took part.
        assert.ok(tallies.every((t) => t.admitted + t.refused === EACH), JSON.stringify(tallies));

        const store = await RedisCounterStore.connect(server.url, { prefix });
        try {
          const values = await store.read(items.map(({ key, window }) => ({ key, window })), now + 10);
          assert.deepEqual(values, items.map(() => LIMIT));
        } finally {
          await store.close();
        }
      });
    }
  });
}
