// The counter store fails: a real redis-server is stopped and started again on the same port
// while four agents' calls run; the state directory cannot be made; the disk fills up under
// SQLite while the proxy runs. The fail mode is honoured during the outage (closed denies the
// calls that need a counter with state_unavailable, open lets them through), the proxy
// recovers without a restart, nothing is counted twice or lost once the store is back, calls
// without counters never notice, and a start-up failure names the path. Upstream:
// test/fixtures/faulty-server.ts, which logs every call that reached it. Needs the build.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectV1, proxyParams, type StdioParams } from '../support/sdk-clients.js';
import { runIntercept, runProxyRaw } from '../support/raw-proxy.js';
import { callsReceived, faultyArgv, faultyLog, faultyServer } from '../support/faulty.js';
import { addFigure } from '../support/figures.js';
import { denialOf, textOf } from '../support/messages.js';
import { redisSkipReason, startRedis, type RedisHandle } from '../support/redis-server.js';
import { intercept, trailRecords } from '../support/trail.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { eventually } from '../support/wait.js';

const OPTIONS = { timeout: 120_000 };
const REDIS = { ...OPTIONS, skip: redisSkipReason ?? (process.env['REDIS_URL'] ? 'needs a redis-server the tests can stop and start' : undefined) };

// echo needs a counter; slow does not.
const POLICY = `version: "1"
tools:
  echo:
    rules:
      - name: counted
        rate_limit: { max: 100000, window: 3600, scope: global }
`;

let tmp: TempDir;
let policy: string;
let runs = 0;

before(async () => {
  tmp = await makeTempDir('intercept-faults-store-');
  policy = await writePolicy(tmp.path, POLICY);
});
after(async () => {
  await tmp?.cleanup();
});

const echo = (client: Client, message: string) => client.callTool({ name: 'echo', arguments: { message } });

/** What became of one call of the load. */
interface Call {
  message: string;
  /** When it was sent: before the outage, while the server was being stopped, during the
   * outage, while it was started again, after the proxy said it reached it again. */
  phase: Phase;
  /** `ran`: the server's answer; otherwise the denial's kind, or `error`. */
  result: string;
}
type Phase = 'before' | 'stopping' | 'outage' | 'restarting' | 'recovered';

/** Four agents calling echo in a loop until `stop`; every call and its fate is kept. */
function load(client: Client, phase: () => Phase) {
  const calls: Call[] = [];
  let stopped = false;
  let n = 0;
  const worker = async (w: number) => {
    while (!stopped) {
      const call: Call = { message: `w${w}-${n++}`, phase: phase(), result: 'pending' };
      calls.push(call);
      try {
        const result = await echo(client, call.message);
        call.result = textOf(result) === `Echo: ${call.message}` ? 'ran' : (denialOf(result)?.kind ?? 'unexpected');
      } catch {
        call.result = 'error';
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const workers = Promise.all([0, 1, 2, 3].map(worker));
  return {
    calls,
    done: (p: Phase, result?: string) => calls.filter((c) => c.phase === p && c.result !== 'pending' && (result === undefined || c.result === result)).length,
    async stop() {
      stopped = true;
      await workers;
    },
  };
}

/** The counter's value, as `intercept status` reads it from the store. */
async function counted(stateFlags: string[]): Promise<number> {
  const run = await intercept('status', '-c', policy, ...stateFlags, '--events-dir', tmp.file('no-events'), '--json');
  assert.equal(run.code, 0, run.stderr);
  const counters = (JSON.parse(run.stdout) as { counters?: Array<{ value: number }> }).counters;
  assert.ok(counters?.length === 1, run.stdout);
  return counters[0]!.value;
}

describe('redis-server restarted on the same port under load', REDIS, () => {
  let redis: RedisHandle;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  for (const mode of ['closed', 'open'] as const) {
    it(`--state-fail-mode ${mode}: honoured during the outage, recovered without a restart, nothing counted twice`, async () => {
      const n = ++runs;
      const log = tmp.file(`server-${n}.jsonl`);
      const events = tmp.file(`events-${n}`);
      const state = ['--state-dsn', redis.url, '--state-prefix', `restart-${mode}-${Date.now()}`];
      const proxy = await connectV1(proxyParams(policy, faultyServer(log), { flags: [...state, '--state-fail-mode', mode, '--events-dir', events] }));
      let phase: Phase = 'before';
      const running = load(proxy.client, () => phase);
      try {
        await eventually(() => (running.done('before', 'ran') >= 20 ? true : undefined), 20_000);
        phase = 'stopping';
        await redis.stop();
        phase = 'outage';
        addFigure('faults injected', 1);
        await eventually(() => (running.done('outage') >= 8 ? true : undefined), 20_000);
        // Calls without a counter never notice.
        assert.equal(textOf(await proxy.client.callTool({ name: 'slow', arguments: { ms: 1 } })), 'slept 1');
        phase = 'restarting';
        await redis.restart();
        await eventually(() => (/counter store \(redis\) reachable again/.test(proxy.stderr()) ? true : undefined), 20_000);
        phase = 'recovered';
        await eventually(() => (running.done('recovered', 'ran') >= 20 ? true : undefined), 20_000);
      } finally {
        await running.stop();
      }
      try {
        const { calls } = running;
        const unanswered = calls.filter((c) => c.result === 'error' || c.result === 'pending');
        addFigure('requests unanswered', unanswered.length);
        assert.deepEqual(unanswered, [], 'every call is answered');
        const results = new Set(calls.map((c) => c.result));
        assert.deepEqual([...results].filter((r) => r !== 'ran' && r !== 'state_unavailable'), [], 'a call runs or is denied for the outage');
        const outage = calls.filter((c) => c.phase === 'outage');
        if (mode === 'closed') {
          assert.ok(outage.some((c) => c.result === 'state_unavailable'), 'closed: calls needing the store are denied while it is down');
          assert.ok(!outage.some((c) => c.result === 'ran'), 'closed: no call that needs the store runs while it is down');
        } else {
          assert.ok(!results.has('state_unavailable'), 'open: nothing is denied for the outage');
          assert.ok(outage.some((c) => c.result === 'ran'), 'open: calls run while the store is down');
          assert.match(proxy.stderr(), /counter store unavailable/);
        }

        // What reached the server is exactly what was let through, each once.
        const received = callsReceived(await faultyLog(log), 'echo').map((e) => String(e.arguments?.message));
        const ran = calls.filter((c) => c.result === 'ran').map((c) => c.message);
        const forwardedDenied = calls.filter((c) => c.result !== 'ran' && received.includes(c.message));
        addFigure('denied calls forwarded', forwardedDenied.length);
        assert.deepEqual(forwardedDenied, []);
        assert.deepEqual([...received].sort(), [...ran].sort(), 'every call let through reached the server once');

        // The restarted server starts empty: it holds the calls charged after it came back, at
        // least those sent once the proxy said it reached it, at most those sent since the stop.
        const value = await counted(state);
        const surely = calls.filter((c) => c.phase === 'recovered' && c.result === 'ran').length;
        const atMost = calls.filter((c) => c.phase !== 'before' && c.result === 'ran').length;
        addFigure('counted calls lost', Math.max(0, surely - value));
        assert.ok(value >= surely, `counted ${value}, but ${surely} calls ran after the proxy reached the server again`);
        assert.ok(value <= atMost, `counted ${value}, but only ${atMost} calls ran since the server was stopped: some were counted twice`);
        // And from now on, each call exactly once.
        for (let i = 0; i < 20; i++) assert.equal(textOf(await echo(proxy.client, `after-${i}`)), `Echo: after-${i}`);
        const later = await counted(state);
        addFigure('counted calls lost', Math.max(0, value + 20 - later));
        assert.equal(later, value + 20);

        const outages = (await trailRecords(events)).filter((r) => r.type === 'state_unavailable');
        assert.ok(outages.length >= 1 && outages.every((r) => r.store === 'counters' && r.failMode === mode), JSON.stringify(outages));
      } finally {
        await proxy.close();
      }
    });
  }
});

describe('a state directory that cannot be made', OPTIONS, () => {
  it('is a start-up error naming the path (exit 1), for --state-dir and for the default under HOME', async () => {
    const file = tmp.file('a-regular-file');
    await writeFile(file, 'not a directory\n');
    const log = tmp.file('never.jsonl');
    for (const dir of [join(file, 'state'), '/dev/full']) {
      const run = await runIntercept(['-c', policy, '--state-dir', dir, '--', ...faultyArgv(log)]);
      addFigure('faults injected', 1);
      assert.equal(run.code, 1, run.stderr);
      assert.equal(run.stdout, '');
      assert.ok(run.stderr.includes(`cannot open the counter store at ${join(dir, 'intercept.sqlite')}`), run.stderr);
    }
    // A new user's default, ~/.intercept/state, under a HOME that is a file.
    const run = await runProxyRaw(proxyParams(policy, faultyServer(log), { env: { HOME: file } }), []);
    addFigure('faults injected', 1);
    assert.equal(run.code, 1, run.stderr);
    assert.ok(run.stderr.includes(join(file, '.intercept', 'state', 'intercept.sqlite')), run.stderr);
    assert.match(run.stderr, /not a directory/);
  });
});

describe('the disk fills up under SQLite while the proxy runs', OPTIONS, () => {
  /** The proxy with a small limit on the size of every file it writes (RLIMIT_FSIZE): SQLite's
   * log file reaches it after a few calls, and each write beyond it fails as on a full disk. */
  function cramped(params: StdioParams): StdioParams {
    return { ...params, command: '/bin/sh', args: ['-c', 'ulimit -f 256 && exec "$0" "$@"', params.command, ...params.args] };
  }

  for (const mode of ['closed', 'open'] as const) {
    it(`--state-fail-mode ${mode}: ${mode === 'closed' ? 'calls needing a counter are denied with state_unavailable' : 'calls are let through, and the log says so'}; the proxy carries on`, async () => {
      const n = ++runs;
      const log = tmp.file(`server-${n}.jsonl`);
      const dir = tmp.file(`cramped-${n}`);
      const proxy = await connectV1(cramped(proxyParams(policy, faultyServer(log), { flags: ['--state-dir', dir, '--state-fail-mode', mode, '--no-events'] })));
      try {
        const denied: string[] = [];
        let i = 0;
        for (; i < 3000 && !/counter store unavailable/.test(proxy.stderr()); i++) {
          const result = await echo(proxy.client, `m${i}`);
          if (denialOf(result)) denied.push(`m${i}`);
          if (mode === 'closed' && denied.length > 0) break;
          if (mode === 'open') assert.equal(textOf(result), `Echo: m${i}`);
        }
        addFigure('faults injected', 1);
        assert.ok(i < 3000, 'the file size limit was reached');
        const named = `counter store ${join(dir, 'intercept.sqlite')}: `;
        await eventually(() => (proxy.stderr().includes(named) ? true : undefined), 10_000).catch(() => assert.fail(`the log names the file:\n${proxy.stderr()}`));
        if (mode === 'closed') {
          assert.equal(denialOf(await echo(proxy.client, 'still full'))?.kind, 'state_unavailable');
          denied.push('still full');
        } else {
          for (let k = 0; k < 5; k++) assert.equal(textOf(await echo(proxy.client, `open-${k}`)), `Echo: open-${k}`);
          assert.deepEqual(denied, []);
        }
        // A call without a counter is served as ever.
        assert.equal(textOf(await proxy.client.callTool({ name: 'slow', arguments: { ms: 1 } })), 'slept 1');
        const received = new Set(callsReceived(await faultyLog(log), 'echo').map((e) => String(e.arguments?.message)));
        const forwarded = denied.filter((m) => received.has(m));
        addFigure('denied calls forwarded', forwarded.length);
        assert.deepEqual(forwarded, []);
      } finally {
        await proxy.close();
      }
    });
  }
});
