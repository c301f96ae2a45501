// The benchmark suite: the proxy end to end (stdio and HTTP, next to their floors and to other
// proxies), the listener against open sessions, per-call cost as a long rolling window fills,
// the decision engine, the counter stores.
//   npm run bench [-- --quick] [-- --json FILE] [-- --only proxy,sessions,growth,engine,state]
// Each part runs in a process of its own (nothing warmed or allocated by one part is seen by
// the next); their tables are printed in turn and their figures gathered into one JSON file.
// Options not listed here (--rounds, --profile, --only for the proxy's modes; --calls,
// --budget for growth; --levels for sessions) go to each part when it is run by itself.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HERE, jsonFile, quick } from './cli.js';

const PARTS = ['proxy', 'sessions', 'growth', 'engine', 'state'] as const;

const onlyIndex = process.argv.indexOf('--only');
const only = onlyIndex > 0 ? process.argv[onlyIndex + 1]!.split(',') : [...PARTS];

function run(part: string, json: string): Promise<void> {
  const args = ['--import', 'tsx', join(HERE, `${part}.ts`), '--json', json, ...(quick ? ['--quick'] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench/${part}.ts exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), 'intercept-bench-'));
  const figures: Record<string, unknown> = {};
  const seconds: Record<string, number> = {};
  try {
    for (const part of PARTS.filter((p) => only.includes(p))) {
      process.stdout.write(`\n== ${part} ==\n`);
      const file = join(tmp, `${part}.json`);
      const t0 = Date.now();
      await run(part, file);
      seconds[part] = Math.round((Date.now() - t0) / 1000);
      figures[part] = JSON.parse(readFileSync(file, 'utf8'));
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const machine = {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverage: (await import('node:os')).loadavg(),
  };
  const parts = Object.entries(seconds).map(([part, s]) => `${part} ${s} s`).join(', ');
  process.stdout.write(`\n${machine.nproc} × ${machine.cpu}, Node ${machine.node}, load average ${machine.loadAverage.map((l) => l.toFixed(1)).join(' ')}; ${((Date.now() - started) / 1000).toFixed(0)} s (${parts})\n`);
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ date: new Date().toISOString(), quick, machine, seconds, ...figures }, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
