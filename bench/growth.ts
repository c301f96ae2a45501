// Whether a call gets dearer as a long rolling window fills up, on each counter store:
//   node --import tsx bench/growth.ts [--quick] [--json FILE] [--calls N] [--budget SECONDS]
//                                     [--warmup N] [--only memory,sqlite,redis]
// One stdio proxy per store (memory:, SQLite in a fresh --state-dir, Redis on a private
// redis-server) in front of the echo server, with bench/policies/growth.yaml: the called tool
// has `rate_limit: {max: 1000000, window: 86400, scope: global}`, so every call is admitted and
// adds to one counter whose window outlasts the run. 100,000 calls (10,000 with --quick) are
// made one at a time on each proxy; the proxies take turns in blocks of 100 calls, so a slow or
// busy moment of the machine falls on every store alike. Reported per store: the mean and p50
// of the first 10% and of the last 10% of the calls, and last / first.
// Before the measured calls, each proxy is warmed up on another tool whose rule has a counter
// of its own, so the measured counter starts empty. A store whose calls have taken longer than
// the budget (300 s, 20 s with --quick) stops there, so that a store whose cost grows with the
// window cannot hold the run for hours; its row says so, and its tenths are of the calls made.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { redisSkipReason, startRedis, type RedisHandle } from '../test/support/redis-server.js';
import { StdioDriver } from './drivers.js';
import { cell, peakRssMiB, percentile } from './stats.js';
import { ECHO, HERE, INTERCEPT, NODE, flag, jsonFile, quick } from './cli.js';

const POLICY = join(HERE, 'policies', 'growth.yaml');
const SERVER = [NODE, ECHO, 'grow', 'warm'];

const CALLS = Number(flag('--calls') ?? (quick ? 10_000 : 100_000));
const WARMUP = Number(flag('--warmup') ?? (quick ? 3_000 : 5_000));
const BLOCK = 100;
const BUDGET_SECONDS = Number(flag('--budget') ?? (quick ? 20 : 300));
const only = flag('--only')?.split(',');

const GROW = { name: 'grow', arguments: { repo: 'acme/web', title: 'Growth' } };
const WARM = { name: 'warm', arguments: { repo: 'acme/web', title: 'Warm-up' } };

interface Part {
  meanUs: number;
  p50us: number;
}

export interface GrowthRow {
  store: string;
  what: string;
  skipped?: string;
  calls?: number;
  first?: Part;
  last?: Part;
  /** last 10% / first 10% */
  meanRatio?: number;
  p50Ratio?: number;
  /** Set when the store ran out of time before `calls` calls: the calls it made. */
  stoppedAt?: number;
  /** p50 of each tenth of the calls, in order (µs). */
  tenthsP50us?: number[];
  peakRssMiB?: number;
  seconds?: number;
}

interface Running {
  row: GrowthRow;
  driver: StdioDriver;
  samples: Float64Array;
  busySeconds: number;
  /** Calls made so far. */
  done: number;
}

function summary(samples: Float64Array, from: number, to: number): Part {
  const part = Array.from(samples.subarray(from, to));
  const mean = part.reduce((a, b) => a + b, 0) / part.length;
  part.sort((a, b) => a - b);
  return { meanUs: mean, p50us: percentile(part, 50) };
}

async function call(driver: StdioDriver, params: Record<string, unknown>): Promise<void> {
  const result = (await driver.call('tools/call', params)) as { isError?: boolean } | undefined;
  if (result?.isError) throw new Error(`a call was refused: ${JSON.stringify(result)}`);
}

export async function runGrowthBench(): Promise<GrowthRow[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'intercept-bench-growth-'));
  let redis: RedisHandle | undefined;
  const rows: GrowthRow[] = [];
  const running: Running[] = [];
  try {
    const stores: { store: string; what: string; state: () => Promise<string[]>; skipped?: string }[] = [
      { store: 'memory', what: '--state-dsn memory:', state: async () => ['--state-dsn', 'memory:'] },
      {
        store: 'sqlite',
        what: 'SQLite (the default), a fresh --state-dir',
        state: async () => {
          const dir = join(tmp, 'sqlite');
          mkdirSync(dir);
          return ['--state-dir', dir];
        },
      },
      {
        store: 'redis',
        what: '--state-dsn redis://…, a private redis-server',
        skipped: redisSkipReason,
        state: async () => {
          redis = await startRedis();
          return ['--state-dsn', redis.url, '--state-prefix', `bench-growth-${Date.now()}`];
        },
      },
    ];
    for (const s of stores.filter((x) => !only || only.includes(x.store))) {
      const row: GrowthRow = { store: s.store, what: s.what };
      rows.push(row);
      if (s.skipped) {
        row.skipped = s.skipped;
        continue;
      }
      const driver = await StdioDriver.start(NODE, [INTERCEPT, '-c', POLICY, '--no-watch', ...(await s.state()), '--', ...SERVER]);
      running.push({ row, driver, samples: new Float64Array(CALLS), busySeconds: 0, done: 0 });
      for (let i = 0; i < WARMUP; i++) await call(driver, WARM);
    }

    // The stores take turns, a block of calls each, the first of each turn rotating.
    const blocks = Math.ceil(CALLS / BLOCK);
    for (let b = 0; b < blocks; b++) {
      for (let k = 0; k < running.length; k++) {
        const r = running[(b + k) % running.length]!;
        if (r.busySeconds > BUDGET_SECONDS) continue;
        const end = Math.min(CALLS, (b + 1) * BLOCK);
        const started = performance.now();
        for (let i = b * BLOCK; i < end; i++) {
          const t0 = performance.now();
          await call(r.driver, GROW);
          r.samples[i] = (performance.now() - t0) * 1000;
        }
        r.busySeconds += (performance.now() - started) / 1000;
        r.done = end;
        if (r.busySeconds > BUDGET_SECONDS && end < CALLS) {
          process.stderr.write(`growth: ${r.row.store} stopped after ${end} calls (${r.busySeconds.toFixed(0)} s, over the budget of ${BUDGET_SECONDS} s)\n`);
        }
      }
      if (running.every((r) => r.busySeconds > BUDGET_SECONDS || r.done === CALLS)) break;
      if ((b + 1) % Math.ceil(blocks / 10) === 0) process.stderr.write(`growth: ${Math.min(CALLS, (b + 1) * BLOCK)}/${CALLS} calls on each store\n`);
    }

    for (const r of running) {
      const n = r.done;
      const tenth = Math.max(1, Math.floor(n / 10));
      const first = summary(r.samples, 0, tenth);
      const last = summary(r.samples, n - tenth, n);
      Object.assign(r.row, {
        calls: n,
        stoppedAt: n < CALLS ? n : undefined,
        first,
        last,
        meanRatio: last.meanUs / first.meanUs,
        p50Ratio: last.p50us / first.p50us,
        tenthsP50us: Array.from({ length: 10 }, (_, i) => summary(r.samples, i * tenth, i === 9 ? n : (i + 1) * tenth).p50us),
        peakRssMiB: await peakRssMiB(r.driver.child.pid),
        seconds: r.busySeconds,
      } satisfies Partial<GrowthRow>);
    }
  } finally {
    await Promise.all(running.map((r) => r.driver.close().catch(() => {})));
    await (redis as RedisHandle | undefined)?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}

export function growthTable(rows: GrowthRow[]): string {
  const lines = [
    `growth: ${CALLS} calls one at a time on each store${quick ? ` (--quick: ${CALLS} calls, the full run makes 100000)` : ''}, all on one global rolling counter of 86400 s; first and last 10% of the calls`,
    'store    first mean µs  first p50 µs  last mean µs  last p50 µs  last/first mean  last/first p50  peak RSS MiB  seconds',
  ];
  for (const r of rows) {
    if (r.skipped) {
      lines.push(`${r.store.padEnd(8)} skipped: ${r.skipped}`);
      continue;
    }
    lines.push(
      `${r.store.padEnd(8)} ${cell(r.first?.meanUs, 1, 13)}  ${cell(r.first?.p50us, 1, 12)}  ${cell(r.last?.meanUs, 1, 12)}  ${cell(r.last?.p50us, 1, 11)}  ${cell(r.meanRatio, 2, 15)}  ${cell(r.p50Ratio, 2, 14)}  ${cell(r.peakRssMiB, 1, 12)}  ${cell(r.seconds, 1, 7)}`,
    );
  }
  for (const r of rows) {
    if (r.stoppedAt !== undefined) lines.push(`  ${r.store.padEnd(7)} stopped after ${r.stoppedAt} of ${CALLS} calls: over the budget of ${BUDGET_SECONDS} s; its figures are of the calls made`);
  }
  for (const r of rows) {
    if (r.tenthsP50us) lines.push(`  ${r.store.padEnd(7)} p50 µs by tenth of the run: ${r.tenthsP50us.map((v) => v.toFixed(0)).join(' ')}`);
  }
  return lines.join('\n');
}

export const growthSettings = { calls: CALLS, warmup: WARMUP, block: BLOCK, budgetSeconds: BUDGET_SECONDS, quick };

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runGrowthBench()
    .then((rows) => {
      process.stdout.write(growthTable(rows) + '\n');
      if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ ...growthSettings, stores: rows }, null, 2) + '\n');
    })
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    });
}
