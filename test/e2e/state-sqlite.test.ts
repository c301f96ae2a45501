// The SQLite counter store shared by real processes: several processes reserving against one
// global counter together never admit more than its limit, and a charge a process committed
// survives that process being killed.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('../fixtures/sqlite-worker.ts', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'intercept-sqlite-e2e-'));
/** Every worker started, so that none outlives the tests, whatever happens. */
const started = new Set<ChildProcessWithoutNullStreams>();
after(() => {
  for (const child of started) child.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

/** A worker process and the JSON lines it prints, one at a time. */
class Worker {
  readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], { stdio: 'pipe' });
    started.add(this.child);
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  async next<T>(): Promise<T> {
    const line = await this.lines.next();
    if (line.done) {
      const { code, signal } = await this.exited;
      throw new Error(`worker ended (code ${code}, signal ${signal}) without output; stderr:\n${this.stderr}`);
    }
    return JSON.parse(line.value) as T;
  }
}

describe('SQLite counter store across processes', () => {
  const PROCESSES = 3;
  const EACH = 300;
  const LIMIT = 100;

  for (const windowName of ['calendar-day', 'rolling-3600']) {
    it(`${PROCESSES} processes × ${EACH} concurrent reservations against a limit of ${LIMIT} admit exactly ${LIMIT} (${windowName})`, { timeout: 60_000 }, async () => {
      // A file no process has created yet: they also race to create it.
      const file = join(root, windowName, 'intercept.sqlite');
      const now = Date.now();
      const workers = Array.from(
        { length: PROCESSES },
        () => new Worker(['hammer', file, windowName, 'g:hammer', String(EACH), String(LIMIT), String(now)]),
      );
      try {
        for (const w of workers) assert.deepEqual(await w.next(), { ready: true });
        for (const w of workers) w.child.stdin.write('go\n');
        const results = await Promise.all(workers.map((w) => w.next<{ admitted: number; refused: number }>()));
        const admitted = results.reduce((sum, r) => sum + r.admitted, 0);
        const refused = results.reduce((sum, r) => sum + r.refused, 0);
        assert.equal(admitted, LIMIT, `admitted per process: ${results.map((r) => r.admitted).join(', ')}`);
        assert.equal(refused, PROCESSES * EACH - LIMIT);
        for (const w of workers) assert.deepEqual(await w.exited, { code: 0, signal: null });

        const reader = new Worker(['read', file, 'g:hammer', String(now)]);
        const values = await reader.next<{ day: number; rolling: number }>();
        assert.equal(windowName === 'calendar-day' ? values.day : values.rolling, LIMIT);
      } finally {
        for (const w of workers) w.child.kill('SIGKILL');
      }
    });
  }

  it('a charge survives kill -9 of the process that made it', { timeout: 60_000 }, async () => {
    const file = join(root, 'killed', 'intercept.sqlite');
    const now = Date.now();
    const holder = new Worker(['reserve-and-wait', file, 'g:survivor', '7', String(now)]);
    try {
      assert.deepEqual(await holder.next(), { reserved: true });
      holder.child.kill('SIGKILL');
      assert.deepEqual(await holder.exited, { code: null, signal: 'SIGKILL' });
    } finally {
      holder.child.kill('SIGKILL');
    }
    const reader = new Worker(['read', file, 'g:survivor', String(now + 1)]);
    assert.deepEqual(await reader.next(), { day: 7, rolling: 7 });
  });
});
