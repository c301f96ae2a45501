// The test command: node's own test runner, run as is, with the suite's figures (fuzz cases run,
// bypass cases tried, faults injected, and the counts that must be 0) printed just before the
// runner's closing summary, which stays the last thing printed. The figures come from the test
// files (test/support/figures.ts) through a file named in INTERCEPT_FIGURES. A figure that must be
// 0 and is not fails the run, whatever the tests said.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { MUST_BE_ZERO, type Figure } from './figures.js';

const ORDER: Figure[] = ['fuzz cases run', 'bypass cases tried', 'faults injected', 'denied calls forwarded', 'requests unanswered', 'counted calls lost'];
/** The first line of the runner's closing summary, in the TAP and the spec reporters. */
const SUMMARY = /^(# |ℹ )tests \d+$/;

const figuresFile = join(tmpdir(), `intercept-figures-${process.pid}.jsonl`);
rmSync(figuresFile, { force: true });
const reporter = process.stdout.isTTY ? ['--test-reporter=spec'] : [];
// Each test process gets a blocking stdout, so that no result is lost at its forced exit.
const BLOCKING_STDOUT = new URL('./blocking-stdout.ts', import.meta.url).pathname;
const child = spawn(process.execPath, ['--import', 'tsx', '--import', BLOCKING_STDOUT, '--test', ...reporter, ...process.argv.slice(2)], {
  stdio: ['inherit', 'pipe', 'inherit'],
  env: { ...process.env, INTERCEPT_FIGURES: figuresFile },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));

const held: string[] = [];
const lines = createInterface({ input: child.stdout });
lines.on('line', (line) => {
  if (held.length > 0 || SUMMARY.test(line)) held.push(line);
  else process.stdout.write(`${line}\n`);
});

const drained = new Promise((resolve) => lines.once('close', resolve));
const code = await new Promise<number>((resolve) => child.on('close', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
await drained;

const totals = new Map<Figure, number>(ORDER.map((f) => [f, 0]));
let text = '';
try {
  text = readFileSync(figuresFile, 'utf8');
} catch {
  // No test recorded a figure.
}
for (const line of text.split('\n')) {
  if (line === '') continue;
  const { figure, count } = JSON.parse(line) as { figure: Figure; count: number };
  totals.set(figure, (totals.get(figure) ?? 0) + count);
}
rmSync(figuresFile, { force: true });

const prefix = held[0]?.startsWith('ℹ') ? 'ℹ ' : '# ';
const broken = [...MUST_BE_ZERO].filter((f) => totals.get(f)! > 0);
process.stdout.write(`${prefix}figures of this run\n`);
for (const figure of ORDER) process.stdout.write(`${prefix}  ${figure} ${totals.get(figure)}${MUST_BE_ZERO.has(figure) ? ' (must be 0)' : ''}\n`);
if (broken.length > 0) process.stdout.write(`${prefix}FAILED: ${broken.join(', ')} not 0\n`);
for (const line of held) process.stdout.write(`${line}\n`);
process.exitCode = code !== 0 ? code : broken.length > 0 ? 1 : 0;
