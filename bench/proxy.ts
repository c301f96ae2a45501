// What a proxy costs per tools/call, next to the physical limit and next to another proxy:
//   node --import tsx bench/proxy.ts [--quick] [--json FILE] [--rounds N] [--only mode,mode] [--profile DIR]
// Every mode is started once and kept running; the rounds then visit the modes in turn (the
// order rotating each round), so slow drift of a shared machine lands on every mode alike.
// Per mode and round: latency of one call at a time (p50, p99) and throughput with 64 in
// flight; figures are medians over rounds, and so are the ratios to the direct connection
// and to the byte relay, which are taken within each round. The HTTP modes are also compared
// with the HTTP floor (http-floor.ts, the HTTP analogue of the relay) and with each other, the
// same way. supergateway's default, stateless mode (a new server process per request) is
// measured once after the rounds, on its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/support/wait.js';
import { redisSkipReason, startRedis, type RedisHandle } from '../test/support/redis-server.js';
import { HttpDriver, StdioDriver, type Driver } from './drivers.js';
import { cell, median, peakRssMiB, percentile } from './stats.js';
import { ECHO, HERE, INTERCEPT, NODE, ROOT, flag, jsonFile, quick } from './cli.js';

const MCP_PROXY = join(ROOT, 'node_modules', 'mcp-proxy', 'dist', 'bin', 'mcp-proxy.mjs');
const SUPERGATEWAY = join(ROOT, 'node_modules', 'supergateway', 'dist', 'index.js');
const REALISTIC = join(HERE, 'policies', 'realistic.yaml');
const EMPTY = join(HERE, 'policies', 'empty.yaml');

const ROUNDS = Number(flag('--rounds') ?? (quick ? 3 : 7));
const SEQUENTIAL = quick ? 400 : 3_000;
const CONCURRENT = quick ? 3_000 : 20_000;
const WARMUP = quick ? 1_000 : 5_000;
const IN_FLIGHT = 64;
/** supergateway without --stateful spawns the server for every request: a few calls only. */
const STATELESS_SEQUENTIAL = quick ? 10 : 30;
const STATELESS_CONCURRENT = quick ? 24 : 64;
const STATELESS_IN_FLIGHT = 8;
const only = flag('--only')?.split(',');
/** `--profile DIR`: Intercept's processes write CPU profiles there (node --cpu-prof). */
const profileDir = flag('--profile');
const NODE_PROFILE = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];

/** The calls made, in turn: each meets different rules of the realistic policy (a regex and a
 * rolling limit; `in`, a calendar limit and required arguments; a rolling limit; none), and
 * every call also meets the `*` rule's hourly limit. */
const CALLS: { name: string; arguments: Record<string, unknown> }[] = [
  { name: 'create_issue', arguments: { repo: 'acme/web', title: 'Flaky test in checkout', body: 'Seen three times this week.' } },
  { name: 'create_pull_request', arguments: { repo: 'acme/web', title: 'Fix checkout', head: 'fix/checkout', base: 'main' } },
  { name: 'search_code', arguments: { query: 'useCheckout repo:acme/web', per_page: 20 } },
  { name: 'get_file_contents', arguments: { repo: 'acme/web', path: 'src/checkout.ts', ref: 'main' } },
];
const SERVER = [NODE, ECHO, ...CALLS.map((c) => c.name)];
/** The same command as one line, for supergateway (which runs it with a shell). */
const SERVER_LINE = SERVER.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
/** The modes served over HTTP, compared with the HTTP floor and with each other. */
const HTTP_MODES = ['http-floor', 'http', 'mcp-proxy', 'supergateway'];

interface Started {
  driver: Driver;
  /** The process whose peak RSS is reported (the proxy), when there is one. */
  pid?: number;
  stop(): Promise<void>;
}

interface Mode {
  name: string;
  what: string;
  start(): Promise<Started>;
  skipped?: string;
}

interface Sample {
  p50: number;
  p99: number;
  callsPerSec: number;
}

export interface ModeResult {
  mode: string;
  what: string;
  skipped?: string;
  /** Medians over rounds; latency in µs. */
  p50us?: number;
  p99us?: number;
  callsPerSec?: number;
  peakRssMiB?: number;
  p50VsDirect?: number;
  p50VsRelay?: number;
  throughputVsDirect?: number;
  throughputVsRelay?: number;
  /** HTTP modes: against the HTTP floor, within each round. */
  p50VsHttpFloor?: number;
  throughputVsHttpFloor?: number;
  /** HTTP modes: Intercept's listener (mode http) against this mode, within each round. */
  interceptThroughputRatio?: number;
  interceptP50Ratio?: number;
  rounds?: Sample[];
}

/** supergateway in its default (stateless) mode, measured once after the rounds. */
export interface StatelessResult {
  what: string;
  skipped?: string;
  sequential: number;
  concurrent: number;
  inFlight: number;
  p50us?: number;
  meanUs?: number;
  callsPerSec?: number;
  /** Intercept's listener (median over the rounds) against this. */
  interceptThroughputRatio?: number;
  interceptP50Ratio?: number;
}

export interface ProxyResults {
  modes: ModeResult[];
  supergatewayStateless?: StatelessResult;
}

async function stdioMode(command: string[]): Promise<Started> {
  const driver = await StdioDriver.start(command[0]!, command.slice(1));
  return { driver, pid: driver.child.pid, stop: () => driver.close() };
}

function interceptMode(policy: string, state: string[]): Promise<Started> {
  return stdioMode([NODE, ...NODE_PROFILE, INTERCEPT, '-c', policy, '--no-watch', ...state, '--', ...SERVER]);
}

/** Starts a process that listens on `url`, and a session with it. */
async function httpMode(command: string[], url: string): Promise<Started> {
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.resume();
  child.stderr!.resume();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let driver: HttpDriver;
  try {
    driver = await HttpDriver.connect(url);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    driver,
    pid: child.pid,
    stop: async () => {
      await driver.close();
      await stopProcess(child, exited);
    },
  };
}

async function stopProcess(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function supergateway(port: number, stateful: boolean): string[] {
  // Its defaults otherwise (log level info: every message is logged, as Intercept logs every
  // decision). It listens on every interface; the client uses 127.0.0.1.
  return [NODE, SUPERGATEWAY, '--stdio', SERVER_LINE, '--outputTransport', 'streamableHttp', ...(stateful ? ['--stateful'] : []), '--port', String(port)];
}

async function modes(tmp: string, redis: RedisHandle | undefined, relay: string, httpFloor: string): Promise<Mode[]> {
  // Every Intercept mode keeps its audit trail, as a proxy does by default, in the run's own
  // directory; `no-trail` shows what the trail costs.
  const trail = ['--events-dir', join(tmp, 'events')];
  const intercept = (policy: string, state: string[]) => interceptMode(policy, [...state, ...trail]);
  return [
    { name: 'direct', what: 'client → echo server (stdio)', start: () => stdioMode(SERVER) },
    { name: 'relay', what: 'byte relay, no parsing (stdio)', start: () => stdioMode([NODE, relay, ...SERVER]) },
    { name: 'empty', what: 'Intercept, empty policy, memory: (stdio)', start: () => intercept(EMPTY, ['--state-dsn', 'memory:']) },
    { name: 'memory', what: 'Intercept, realistic policy, memory: (stdio)', start: () => intercept(REALISTIC, ['--state-dsn', 'memory:']) },
    { name: 'no-trail', what: 'the same, --no-events (no audit trail)', start: () => interceptMode(REALISTIC, ['--state-dsn', 'memory:', '--no-events']) },
    {
      name: 'sqlite',
      what: 'Intercept, realistic policy, SQLite (stdio)',
      start: () => {
        const dir = join(tmp, `sqlite-${Date.now()}`);
        mkdirSync(dir);
        return intercept(REALISTIC, ['--state-dir', dir]);
      },
    },
    {
      name: 'redis',
      what: 'Intercept, realistic policy, Redis (stdio)',
      skipped: redis ? undefined : redisSkipReason,
      start: () => intercept(REALISTIC, ['--state-dsn', redis!.url, '--state-prefix', `bench-${Date.now()}`]),
    },
    {
      name: 'http-floor',
      what: 'HTTP floor: POST body → echo server over stdio → answer, no parsing',
      start: async () => {
        const port = await freePort();
        return httpMode([NODE, httpFloor, String(port), ...SERVER], `http://127.0.0.1:${port}/mcp`);
      },
    },
    {
      name: 'http',
      what: 'Intercept --transport http, realistic policy, memory:',
      start: async () => {
        const port = await freePort();
        return httpMode(
          [NODE, ...NODE_PROFILE, INTERCEPT, '-c', REALISTIC, '--no-watch', '--state-dsn', 'memory:', ...trail, '--transport', 'http', '--port', String(port), '--', ...SERVER],
          `http://127.0.0.1:${port}/mcp`,
        );
      },
    },
    {
      name: 'http-no-trail',
      what: 'the same, --no-events (no audit trail)',
      start: async () => {
        const port = await freePort();
        return httpMode(
          [NODE, ...NODE_PROFILE, INTERCEPT, '-c', REALISTIC, '--no-watch', '--state-dsn', 'memory:', '--no-events', '--transport', 'http', '--port', String(port), '--', ...SERVER],
          `http://127.0.0.1:${port}/mcp`,
        );
      },
    },
    {
      name: 'mcp-proxy',
      what: 'mcp-proxy (npm) --server stream, no policy',
      start: async () => {
        const port = await freePort();
        return httpMode([NODE, MCP_PROXY, '--host', '127.0.0.1', '--port', String(port), '--server', 'stream', '--', ...SERVER], `http://127.0.0.1:${port}/mcp`);
      },
    },
    {
      name: 'supergateway',
      what: 'supergateway (npm) --outputTransport streamableHttp --stateful, no policy',
      start: async () => {
        const port = await freePort();
        return httpMode(supergateway(port, true), `http://127.0.0.1:${port}/mcp`);
      },
    },
  ];
}

function callAt(i: number): Record<string, unknown> {
  return CALLS[i % CALLS.length]!;
}

async function warm(driver: Driver): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < WARMUP) await driver.call('tools/call', callAt(next++));
    }),
  );
}

async function measure(driver: Driver, sequential = SEQUENTIAL, concurrent = CONCURRENT, inFlight = IN_FLIGHT): Promise<Sample & { mean: number }> {
  const samples: number[] = new Array(sequential);
  for (let i = 0; i < sequential; i++) {
    const t0 = performance.now();
    await driver.call('tools/call', callAt(i));
    samples[i] = (performance.now() - t0) * 1000;
  }
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  samples.sort((a, b) => a - b);

  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < concurrent) await driver.call('tools/call', callAt(next++));
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), callsPerSec: concurrent / seconds, mean };
}

/** A hop (relay.ts, http-floor.ts) as plain JavaScript, so neither a transpiler nor its memory
 * sits in it. */
async function buildHop(tmp: string, name: string): Promise<string> {
  const { readFileSync } = await import('node:fs');
  const esbuild = await import('esbuild');
  const out = join(tmp, `${name}.mjs`);
  const { code } = esbuild.transformSync(readFileSync(join(HERE, `${name}.ts`), 'utf8'), { loader: 'ts', format: 'esm', target: 'node20' });
  writeFileSync(out, code);
  return out;
}

/** supergateway's default mode, once: a few calls one at a time and a few in flight. */
async function measureStateless(http: ModeResult | undefined): Promise<StatelessResult> {
  const result: StatelessResult = {
    what: 'supergateway (npm) --outputTransport streamableHttp (its default, stateless: the server is spawned for each request)',
    sequential: STATELESS_SEQUENTIAL,
    concurrent: STATELESS_CONCURRENT,
    inFlight: STATELESS_IN_FLIGHT,
  };
  const port = await freePort();
  let started: Started | undefined;
  try {
    started = await httpMode(supergateway(port, false), `http://127.0.0.1:${port}/mcp`);
    await started.driver.call('tools/call', callAt(0));
    const s = await measure(started.driver, STATELESS_SEQUENTIAL, STATELESS_CONCURRENT, STATELESS_IN_FLIGHT);
    result.p50us = s.p50;
    result.meanUs = s.mean;
    result.callsPerSec = s.callsPerSec;
    if (http?.callsPerSec !== undefined) result.interceptThroughputRatio = http.callsPerSec / s.callsPerSec;
    if (http?.p50us !== undefined) result.interceptP50Ratio = http.p50us / s.p50;
  } catch (err) {
    result.skipped = `failed: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    await started?.stop().catch(() => {});
  }
  return result;
}

export async function runProxyBench(): Promise<ProxyResults> {
  const tmp = mkdtempSync(join(tmpdir(), 'intercept-bench-proxy-'));
  let redis: RedisHandle | undefined;
  if (redisSkipReason === undefined) redis = await startRedis();
  const running = new Map<string, Started>();
  const results: ModeResult[] = [];
  let stateless: StatelessResult | undefined;
  try {
    // Direct and the relay always run; the HTTP floor runs with any HTTP mode.
    const wanted = (name: string) =>
      !only || only.includes(name) || name === 'direct' || name === 'relay' || (name === 'http-floor' && only.some((m) => HTTP_MODES.includes(m)));
    const all = (await modes(tmp, redis, await buildHop(tmp, 'relay'), await buildHop(tmp, 'http-floor'))).filter((m) => wanted(m.name));
    const active: Mode[] = [];
    for (const mode of all) {
      if (mode.skipped) {
        results.push({ mode: mode.name, what: mode.what, skipped: mode.skipped });
        continue;
      }
      const started = await mode.start();
      running.set(mode.name, started);
      await warm(started.driver);
      active.push(mode);
    }

    const rounds = new Map<string, Sample[]>(active.map((m) => [m.name, []]));
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate who goes first, so no mode always follows the same neighbour.
      const order = active.map((_, i) => active[(i + r) % active.length]!);
      for (const mode of order) rounds.get(mode.name)!.push(await measure(running.get(mode.name)!.driver));
      process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
    }

    const direct = rounds.get('direct')!;
    const relay = rounds.get('relay')!;
    const floor = rounds.get('http-floor');
    const intercept = rounds.get('http');
    const ratio = (samples: Sample[], base: Sample[], f: (s: Sample) => number) => median(samples.map((s, i) => f(s) / f(base[i]!)));
    const p50 = (s: Sample) => s.p50;
    const rate = (s: Sample) => s.callsPerSec;
    for (const mode of active) {
      const samples = rounds.get(mode.name)!;
      const started = running.get(mode.name)!;
      const http = HTTP_MODES.includes(mode.name);
      results.push({
        mode: mode.name,
        what: mode.what,
        p50us: median(samples.map((s) => s.p50)),
        p99us: median(samples.map((s) => s.p99)),
        callsPerSec: median(samples.map((s) => s.callsPerSec)),
        // Direct has no proxy process: the figure would be the server's.
        peakRssMiB: mode.name === 'direct' ? undefined : await peakRssMiB(started.pid),
        p50VsDirect: ratio(samples, direct, (s) => s.p50),
        p50VsRelay: ratio(samples, relay, (s) => s.p50),
        throughputVsDirect: ratio(samples, direct, (s) => s.callsPerSec),
        throughputVsRelay: ratio(samples, relay, (s) => s.callsPerSec),
        p50VsHttpFloor: http && floor ? ratio(samples, floor, p50) : undefined,
        throughputVsHttpFloor: http && floor ? ratio(samples, floor, rate) : undefined,
        interceptThroughputRatio: http && intercept ? ratio(intercept, samples, rate) : undefined,
        interceptP50Ratio: http && intercept ? ratio(intercept, samples, p50) : undefined,
        rounds: samples,
      });
    }
    // Keep the table in the order modes were declared.
    const order = all.map((m) => m.name);
    results.sort((a, b) => order.indexOf(a.mode) - order.indexOf(b.mode));
    if (active.some((m) => m.name === 'supergateway')) {
      // The other modes are stopped first: it spawns a process per request and should not
      // share the machine with idle proxies.
      await Promise.all([...running.values()].map((s) => s.stop().catch(() => {})));
      running.clear();
      stateless = await measureStateless(results.find((r) => r.mode === 'http'));
    }
  } finally {
    await Promise.all([...running.values()].map((s) => s.stop().catch(() => {})));
    await redis?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  return { modes: results, supergatewayStateless: stateless };
}

export function proxyTable({ modes: results, supergatewayStateless: stateless }: ProxyResults): string {
  const lines = [
    `tools/call through each mode: ${SEQUENTIAL} calls one at a time, ${CONCURRENT} with ${IN_FLIGHT} in flight; median of ${ROUNDS} interleaved rounds`,
    'mode          p50 µs   p99 µs    calls/s  peak RSS MiB  p50 × direct  p50 × relay  calls/s ÷ direct  calls/s ÷ relay',
  ];
  for (const r of results) {
    if (r.skipped) {
      lines.push(`${r.mode.padEnd(12)}  skipped: ${r.skipped}`);
      continue;
    }
    lines.push(
      `${r.mode.padEnd(12)} ${cell(r.p50us, 1, 7)}  ${cell(r.p99us, 1, 7)}  ${cell(r.callsPerSec, 0, 9)}  ${cell(r.peakRssMiB, 1, 12)}  ${cell(r.p50VsDirect, 2, 12)}  ${cell(r.p50VsRelay, 2, 11)}  ${cell(r.throughputVsDirect, 2, 16)}  ${cell(r.throughputVsRelay, 2, 15)}`,
    );
  }
  const httpRows = results.filter((r) => HTTP_MODES.includes(r.mode) && !r.skipped);
  if (httpRows.length > 1) {
    lines.push(
      '',
      'HTTP modes: ratios within each round (median over rounds); "Intercept ÷" is Intercept\'s listener (http) against the mode',
      'mode          p50 µs    calls/s  p50 × floor  calls/s ÷ floor  Intercept calls/s ÷  Intercept p50 ÷',
    );
    for (const r of httpRows) {
      lines.push(
        `${r.mode.padEnd(12)} ${cell(r.p50us, 1, 7)}  ${cell(r.callsPerSec, 0, 9)}  ${cell(r.p50VsHttpFloor, 2, 11)}  ${cell(r.throughputVsHttpFloor, 2, 15)}  ${cell(r.interceptThroughputRatio, 2, 19)}  ${cell(r.interceptP50Ratio, 2, 15)}`,
      );
    }
    const http = results.find((r) => r.mode === 'http');
    const vs = (mode: string) => {
      const r = results.find((x) => x.mode === mode);
      return r?.interceptThroughputRatio === undefined ? undefined : `${r.interceptThroughputRatio.toFixed(2)}× ${mode}'s`;
    };
    const parts = [vs('mcp-proxy'), vs('supergateway'), http?.throughputVsHttpFloor === undefined ? undefined : `${http.throughputVsHttpFloor.toFixed(2)}× the HTTP floor's`].filter((x) => x !== undefined);
    if (parts.length > 0) lines.push(`HTTP throughput: Intercept ${parts.join(', ')}`);
  }
  if (stateless) {
    if (stateless.skipped) lines.push(`supergateway, stateless: ${stateless.skipped}`);
    else {
      lines.push(
        `supergateway, stateless (its default; measured once after the rounds): p50 ${cell(stateless.p50us, 0, 0)} µs one at a time (${stateless.sequential} calls), ${cell(stateless.callsPerSec, 1, 0)} calls/s with ${stateless.inFlight} in flight (${stateless.concurrent} calls); Intercept ${cell(stateless.interceptThroughputRatio, 0, 0)}× its throughput`,
      );
    }
  }
  lines.push('modes:', ...results.map((r) => `  ${r.mode.padEnd(12)} ${r.what}`));
  if (stateless) lines.push(`  ${'(stateless)'.padEnd(12)} ${stateless.what}`);
  return lines.join('\n');
}

export const proxySettings = { sequential: SEQUENTIAL, concurrent: CONCURRENT, inFlight: IN_FLIGHT, rounds: ROUNDS, warmup: WARMUP };

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runProxyBench()
    .then((results) => {
      process.stdout.write(proxyTable(results) + '\n');
      if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ ...proxySettings, ...results }, null, 2) + '\n');
    })
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    });
}
