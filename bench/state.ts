// The cost of a reserve + commit on each counter store, side by side in one run:
//   node --import tsx bench/state.ts [--quick] [--json FILE]
// For each backend and window kind: latency of one reserve+commit at a time (p50, p99) and
// throughput with 64 in flight. Ratios are against the in-memory store. Redis runs when
// redis-server is installed (a private server on a free port) or REDIS_URL is set.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Window } from '../src/policy/model.js';
import { MemoryCounterStore } from '../src/state/memory.js';
import { RedisCounterStore } from '../src/state/redis.js';
import { SqliteCounterStore } from '../src/state/sqlite.js';
import type { CounterStore, ReserveItem } from '../src/state/store.js';
import { redisSkipReason, startRedis, type RedisHandle } from '../test/support/redis-server.js';

const quick = process.argv.includes('--quick');
const jsonIndex = process.argv.indexOf('--json');
const jsonFile = jsonIndex > 0 ? process.argv[jsonIndex + 1] : undefined;
const SEQUENTIAL = quick ? 2_000 : 20_000;
const CONCURRENT = quick ? 5_000 : 50_000;
const IN_FLIGHT = 64;

const WINDOWS: Record<string, Window> = {
  calendar: { kind: 'calendar', unit: 'day' },
  rolling: { kind: 'rolling', seconds: 60 },
};

interface Row {
  backend: string;
  window: string;
  p50us: number;
  p99us: number;
  opsPerSec: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function reserveCommit(store: CounterStore, item: ReserveItem, now: number): Promise<void> {
  const outcome = await store.reserve([item], now);
  if (!outcome.ok) throw new Error('benchmark limit reached');
  await store.commit(outcome.reservation, now);
}

async function measure(backend: string, store: CounterStore, windowName: string): Promise<Row> {
  const window = WINDOWS[windowName]!;
  // Distinct keys per phase keep rolling logs short, as many keys of real traffic would.
  const item = (phase: string, i: number): ReserveItem => ({ key: `bench:${backend}:${windowName}:${phase}:${i % 100}`, window, amount: 1, limits: [{ value: 1e12, inclusive: true }] });
  const now = Date.now();
  for (let i = 0; i < 200; i++) await reserveCommit(store, item('warm', i), now);

  const samples: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t0 = performance.now();
    await reserveCommit(store, item('seq', i), now);
    samples.push((performance.now() - t0) * 1000);
  }
  samples.sort((a, b) => a - b);

  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < CONCURRENT) await reserveCommit(store, item('par', next++), now);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { backend, window: windowName, p50us: percentile(samples, 50), p99us: percentile(samples, 99), opsPerSec: CONCURRENT / seconds };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'intercept-bench-state-'));
  let redis: RedisHandle | undefined;
  const backends: [string, () => Promise<CounterStore>][] = [
    ['memory', async () => new MemoryCounterStore()],
    ['sqlite', async () => SqliteCounterStore.open(join(dir, 'intercept.sqlite'))],
  ];
  if (redisSkipReason === undefined) {
    redis = await startRedis();
    const url = redis.url;
    backends.push(['redis', () => RedisCounterStore.connect(url, { prefix: 'bench' })]);
  } else {
    process.stderr.write(`redis skipped: ${redisSkipReason}\n`);
  }

  const rows: Row[] = [];
  try {
    for (const [name, open] of backends) {
      const store = await open();
      for (const windowName of Object.keys(WINDOWS)) rows.push(await measure(name, store, windowName));
      await store.close();
    }
  } finally {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const base = (w: string) => rows.find((r) => r.backend === 'memory' && r.window === w)!;
  const lines = [
    `reserve+commit, one at a time (${SEQUENTIAL}) and ${IN_FLIGHT} in flight (${CONCURRENT})`,
    'backend  window    p50 µs   p99 µs   ops/s     p50 × memory  ops/s ÷ memory',
    ...rows.map((r) => {
      const m = base(r.window);
      return `${r.backend.padEnd(8)} ${r.window.padEnd(9)} ${r.p50us.toFixed(1).padStart(7)}  ${r.p99us.toFixed(1).padStart(7)}  ${Math.round(r.opsPerSec).toString().padStart(8)}  ${(r.p50us / m.p50us).toFixed(1).padStart(12)}  ${(r.opsPerSec / m.opsPerSec).toFixed(3).padStart(14)}`;
    }),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ sequential: SEQUENTIAL, concurrent: CONCURRENT, inFlight: IN_FLIGHT, rows }, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
