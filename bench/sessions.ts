// What open HTTP sessions cost Intercept's listener: its memory, and the latency of the one
// session in use, with 1, 100 and 1,000 idle sessions open beside it:
//   node --import tsx bench/sessions.ts [--quick] [--json FILE] [--levels 1,100,1000] [--rounds N]
// One listener per level (`intercept --transport http`, the realistic policy, memory:, no idle
// timeout), all running at once. In each, the active session is opened first and warmed up;
// then the idle sessions are opened, each the 2025 way (an initialize POST without
// Mcp-Session-Id, then notifications/initialized) and kept: never used again, never deleted.
// They are opened 8 at a time over a few connections that are closed afterwards, so the
// listener holds sessions, not sockets. Once every level is open and a second has passed, each
// listener's VmRSS (/proc/<pid>/status) is read; then rounds visit the listeners in turn (the
// first rotating), making calls one at a time on the active session. Latency figures are
// medians over rounds, and so are the ratios to the first level, taken within each round.
// Every 2025 session has an upstream of its own: the active one is the echo server, the idle
// ones a shell loop (bench/session-upstream.sh).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/support/wait.js';
import { HttpDriver } from './drivers.js';
import { cell, median, percentile } from './stats.js';
import { ECHO, HERE, INTERCEPT, NODE, flag, jsonFile, quick } from './cli.js';

const UPSTREAM = join(HERE, 'session-upstream.sh');
const REALISTIC = join(HERE, 'policies', 'realistic.yaml');

const LEVELS = (flag('--levels') ?? '1,100,1000').split(',').map(Number);
const CALLS = quick ? 200 : 1_000;
const ROUNDS = Number(flag('--rounds') ?? (quick ? 3 : 7));
const WARMUP = quick ? 1_000 : 5_000;
const OPEN_AT_ONCE = 8;
const SETTLE_MS = 1_000;

/** The same four calls as bench/proxy.ts, in turn. */
const CALL_PARAMS: Record<string, unknown>[] = [
  { name: 'create_issue', arguments: { repo: 'acme/web', title: 'Flaky test in checkout', body: 'Seen three times this week.' } },
  { name: 'create_pull_request', arguments: { repo: 'acme/web', title: 'Fix checkout', head: 'fix/checkout', base: 'main' } },
  { name: 'search_code', arguments: { query: 'useCheckout repo:acme/web', per_page: 20 } },
  { name: 'get_file_contents', arguments: { repo: 'acme/web', path: 'src/checkout.ts', ref: 'main' } },
];
const SERVER = [NODE, ECHO, ...CALL_PARAMS.map((c) => String(c['name']))];

export interface SessionRow {
  idle: number;
  /** The listener's resident set at this level (VmRSS), MiB. */
  rssMiB?: number;
  /** Child processes of the listener (one upstream per session): a check that the sessions exist. */
  upstreams?: number;
  /** Wall time to open each idle session (8 at a time), ms. */
  openMsEach?: number;
  p50us: number;
  p99us: number;
  meanUs: number;
  /** Against the first level, within each round. */
  p50VsFirst: number;
  rounds: Sample[];
}

function statusField(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function children(pid: number): number | undefined {
  try {
    let n = 0;
    for (const task of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)) if (task !== '') n++;
    return n;
  } catch {
    return undefined;
  }
}

async function openIdle(url: string, count: number): Promise<HttpDriver[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: OPEN_AT_ONCE });
  const opened: HttpDriver[] = [];
  let left = count;
  try {
    await Promise.all(
      Array.from({ length: OPEN_AT_ONCE }, async () => {
        while (left > 0) {
          left--;
          const driver = await HttpDriver.connect(url, { agent, timeoutMs: 30_000 });
          if (driver.sessionId === undefined) throw new Error('the listener gave no Mcp-Session-Id');
          opened.push(driver);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return opened;
}

interface Listener {
  idle: number;
  pid: number;
  /** Wall time to open the idle sessions, 8 at a time, per session (ms). */
  openMsEach?: number;
  active: HttpDriver;
  stop(): Promise<void>;
}

/** Starts a listener, opens its active session (the echo server's) and warms it up. */
async function startListener(tmp: string, idle: number): Promise<Listener> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/mcp`;
  const child = spawn(
    NODE,
    [INTERCEPT, '-c', REALISTIC, '--no-watch', '--state-dsn', 'memory:', '--transport', 'http', '--port', String(port), '--session-idle-timeout', '0', '--', 'sh', UPSTREAM, ...SERVER],
    // The first session's upstream wins this mkdir and becomes the echo server.
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, INTERCEPT_BENCH_ACTIVE: join(tmp, `active-${idle}`) } },
  );
  child.stdout!.resume();
  child.stderr!.resume();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let active: HttpDriver | undefined;
  const stop = async () => {
    await active?.close().catch(() => {});
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    // The listener ends every session and waits for each upstream to exit.
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    active = await HttpDriver.connect(url);
    const first = (await active.call('tools/call', CALL_PARAMS[0]!)) as { content?: { text?: string }[] };
    if (!first.content?.[0]?.text?.includes('acme/web')) throw new Error(`the active session is not the echo server's: ${JSON.stringify(first)}`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < WARMUP) await active!.call('tools/call', CALL_PARAMS[next++ % CALL_PARAMS.length]!);
      }),
    );
    const t0 = performance.now();
    await openIdle(url, idle);
    const ms = performance.now() - t0;
    process.stderr.write(`sessions: ${idle} idle open (in ${(ms / 1000).toFixed(1)} s)\n`);
    return { idle, pid: child.pid!, active, stop, openMsEach: idle > 0 ? ms / idle : undefined };
  } catch (err) {
    await stop();
    throw err;
  }
}

interface Sample {
  p50: number;
  p99: number;
  mean: number;
}

async function measure(driver: HttpDriver): Promise<Sample> {
  const samples: number[] = new Array(CALLS);
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    await driver.call('tools/call', CALL_PARAMS[i % CALL_PARAMS.length]!);
    samples[i] = (performance.now() - t0) * 1000;
  }
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), mean };
}

export async function runSessionsBench(): Promise<SessionRow[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'intercept-bench-sessions-'));
  const listeners: Listener[] = [];
  const rows: SessionRow[] = [];
  try {
    for (const idle of LEVELS) listeners.push(await startListener(tmp, idle));
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const memory = listeners.map((l) => ({ rssMiB: statusField(l.pid, 'VmRSS'), upstreams: children(l.pid) }));

    const rounds: Sample[][] = listeners.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < listeners.length; k++) {
        const i = (r + k) % listeners.length;
        rounds[i]!.push(await measure(listeners[i]!.active));
      }
    }
    listeners.forEach((l, i) => {
      const own = rounds[i]!;
      rows.push({
        idle: l.idle,
        ...memory[i]!,
        openMsEach: l.openMsEach,
        p50us: median(own.map((s) => s.p50)),
        p99us: median(own.map((s) => s.p99)),
        meanUs: median(own.map((s) => s.mean)),
        p50VsFirst: median(own.map((s, j) => s.p50 / rounds[0]![j]!.p50)),
        rounds: own,
      });
    });
  } finally {
    await Promise.all(listeners.map((l) => l.stop()));
    rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}

export function sessionsTable(rows: SessionRow[]): string {
  const lines = [
    `open HTTP sessions: one listener per level, idle 2025 sessions open; ${CALLS} calls one at a time on its active session; median of ${ROUNDS} interleaved rounds`,
    'idle sessions  listener RSS MiB  upstreams  open ms each   p50 µs   p99 µs  mean µs  p50 × first',
    ...rows.map(
      (r) =>
        `${String(r.idle).padStart(13)}  ${cell(r.rssMiB, 1, 16)}  ${cell(r.upstreams, 0, 9)}  ${cell(r.openMsEach, 1, 12)}  ${cell(r.p50us, 1, 7)}  ${cell(r.p99us, 1, 7)}  ${cell(r.meanUs, 1, 7)}  ${cell(r.p50VsFirst, 2, 11)}`,
    ),
  ];
  const a = rows[0];
  const b = rows[rows.length - 1];
  if (a && b && b.idle > a.idle && a.rssMiB !== undefined && b.rssMiB !== undefined) {
    lines.push(`RSS per idle session, ${a.idle} → ${b.idle}: ${(((b.rssMiB - a.rssMiB) * 1024) / (b.idle - a.idle)).toFixed(1)} KiB`);
  }
  return lines.join('\n');
}

export const sessionsSettings = { levels: LEVELS, calls: CALLS, rounds: ROUNDS, warmup: WARMUP, openAtOnce: OPEN_AT_ONCE, settleMs: SETTLE_MS };

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runSessionsBench()
    .then((rows) => {
      process.stdout.write(sessionsTable(rows) + '\n');
      if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ ...sessionsSettings, rows }, null, 2) + '\n');
    })
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    });
}
