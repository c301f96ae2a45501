// SIGTERM and SIGINT with calls in flight, on stdio and on the HTTP listener: the proxy takes no
// new request (and no new session), withdraws the calls held for approval, gives the calls in
// flight --drain-timeout to be answered, answers the rest with an error (and asks the server to
// cancel them), records every call and the withdrawal, and only then writes its shutdown event
// and exits. A second signal ends the wait at once. Upstream: test/fixtures/faulty-server.ts.
// Needs the build (dist/).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type RawProxy } from '../support/raw-proxy.js';
import { callsRan, faultyArgv, faultyLog, faultyServer } from '../support/faulty.js';
import { addFigure } from '../support/figures.js';
import { connectStreamableV1, request, startListener } from '../support/listener.js';
import { errorOf, initializeBody, resultText, textOf, type Json } from '../support/messages.js';
import { toolCalls, trailRecords } from '../support/trail.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { eventually } from '../support/wait.js';

const OPTIONS = { timeout: 90_000 };

const POLICY = `version: "1"
tools:
  approve_me:
    rules:
      - name: a human says yes
        action: require_approval
        timeout: 10m
  "*":
    rules:
      - name: every call
        rate_limit: { max: 1000, window: 3600, scope: global }
`;

let tmp: TempDir;
let runs = 0;

before(async () => {
  tmp = await makeTempDir('intercept-faults-signals-');
});
after(async () => {
  await tmp?.cleanup();
});

async function scene() {
  const n = ++runs;
  const policy = await writePolicy(tmp.path, POLICY, `policy-${n}.yaml`);
  const events = tmp.file(`events-${n}`);
  return { policy, events, log: tmp.file(`server-${n}.jsonl`), flags: ['--state-dir', tmp.file(`state-${n}`), '--events-dir', events] };
}

/** What the trail must say after a stop with a slow call, a hung call and a held call in
 * flight: each call's fate, the withdrawal, and the shutdown last. */
async function assertRecorded(events: string, code: number): Promise<void> {
  const records = await trailRecords(events);
  const byTool = new Map(toolCalls(records).map((r) => [r.tool, r]));
  assert.equal(byTool.get('slow')?.outcome, 'result');
  assert.equal(byTool.get('hang')?.outcome, 'cancelled');
  assert.match(String(byTool.get('hang')?.error), /stopped before the MCP server answered/);
  const held = byTool.get('approve_me');
  assert.equal(held?.decision, 'cancelled');
  assert.match(String(held?.error), /held for approval/);
  const requested = records.find((r) => r.type === 'approval_requested');
  const withdrawn = records.find((r) => r.type === 'approval_withdrawn');
  assert.ok(requested && withdrawn, 'the held call\'s request is recorded as withdrawn');
  assert.equal(withdrawn.id, requested.id);
  assert.equal(held?.approval, requested.id);
  const last = records.at(-1)!;
  assert.equal(last.type, 'shutdown', 'the shutdown event comes after every call');
  assert.equal(last.code, code);
}

describe('a signal on stdio with calls in flight', OPTIONS, () => {
  for (const [signal, status] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`${signal}: answers what it can, withdraws the held call, answers the rest with an error, then stops the server (exit ${status})`, async () => {
      const s = await scene();
      const proxy = startProxy(['-c', s.policy, ...s.flags, '--drain-timeout', '2s', '--', ...faultyArgv(s.log)]);
      try {
        await proxy.initialize();
        proxy.sendJson({ jsonrpc: '2.0', id: 'held', method: 'tools/call', params: { name: 'approve_me', arguments: {} } });
        await proxy.waitForStderr(/approval requested/);
        proxy.sendJson({ jsonrpc: '2.0', id: 'slow', method: 'tools/call', params: { name: 'slow', arguments: { ms: 1000 } } });
        proxy.sendJson({ jsonrpc: '2.0', id: 'hang', method: 'tools/call', params: { name: 'hang', arguments: {} } });
        await eventually(async () => ((await faultyLog(s.log)).filter((e) => e.event === 'call').length === 2 ? true : undefined));

        proxy.child.kill(signal);
        addFigure('faults injected', 1);
        await proxy.waitForStderr(new RegExp(`received ${signal}`));
        const refused = errorOf(await proxy.request('tools/call', { name: 'echo', arguments: { message: 'too late' } }, 'late'));
        assert.match(String(refused?.message), /shutting down/);

        assert.match(String(errorOf(await proxy.response('held'))?.message), /stopped while the call was held for approval/);
        assert.equal(resultText(await proxy.response('slow')), 'slept 1000', 'a call answered within the wait gets its answer');
        const hang = errorOf(await proxy.response('hang'));
        assert.match(String(hang?.message), /stopped before the MCP server answered/);
        const exit = await proxy.waitForExit();
        assert.equal(exit.code, status, proxy.stderr);
        assertNothingLost(proxy, ['held', 'slow', 'hang', 'late']);

        // The signal follows the cancellation at once, so the server may not read it: what
        // reached it is checked on the listener, whose servers see their input end first.
        const log = await faultyLog(s.log);
        assert.ok(!log.some((e) => e.event === 'call' && e.tool === 'echo'), 'the call after the signal never reached the server');
        assert.equal(callsRan(log).length, 1);
        await assertRecorded(s.events, status);
      } finally {
        if (proxy.running) proxy.child.kill('SIGKILL');
      }
    });
  }

  it('a second signal ends the wait at once', async () => {
    const s = await scene();
    const proxy = startProxy(['-c', s.policy, ...s.flags, '--drain-timeout', '10m', '--', ...faultyArgv(s.log)]);
    try {
      await proxy.initialize();
      proxy.sendJson({ jsonrpc: '2.0', id: 'hang', method: 'tools/call', params: { name: 'hang', arguments: {} } });
      await eventually(async () => ((await faultyLog(s.log)).length === 1 ? true : undefined));
      proxy.child.kill('SIGTERM');
      await proxy.waitForStderr(/received SIGTERM/);
      proxy.child.kill('SIGTERM');
      addFigure('faults injected', 2);
      // Well before the ten minutes the first signal would have waited.
      const exit = await proxy.waitForExit(20_000);
      assert.equal(exit.code, 143, proxy.stderr);
      assert.match(String(errorOf(await proxy.response('hang'))?.message), /stopped before the MCP server answered/);
      assertNothingLost(proxy, ['hang']);
    } finally {
      if (proxy.running) proxy.child.kill('SIGKILL');
    }
  });
});

describe('SIGTERM to the HTTP listener with calls in flight', OPTIONS, () => {
  it('refuses new sessions and calls, answers or gives up on the calls in flight, withdraws the held one, exits 0', async () => {
    const s = await scene();
    const listener = await startListener(s.policy, faultyServer(s.log), { flags: [...s.flags, '--drain-timeout', '2s'] });
    const session = await connectStreamableV1(listener);
    try {
      const held = session.client.callTool({ name: 'approve_me', arguments: {} }).then(
        () => 'answered',
        (err: Error) => err.message,
      );
      await eventually(() => (/approval requested/.test(listener.stderr()) ? true : undefined));
      const slow = session.client.callTool({ name: 'slow', arguments: { ms: 1000 } });
      const hang = session.client.callTool({ name: 'hang', arguments: {} }).then(
        () => 'answered',
        (err: Error) => err.message,
      );
      await eventually(async () => ((await faultyLog(s.log)).filter((e) => e.event === 'call').length === 2 ? true : undefined));

      const exited = listener.stop();
      addFigure('faults injected', 1);
      await eventually(() => (/received SIGTERM/.test(listener.stderr()) ? true : undefined));
      const fresh = await request(listener.url, { body: initializeBody() });
      assert.equal(fresh.status, 503, 'no new session while stopping');
      await assert.rejects(session.client.callTool({ name: 'echo', arguments: { message: 'too late' } }), /shutting down/);

      assert.match(await held, /stopped while the call was held for approval/);
      assert.equal(textOf(await slow), 'slept 1000');
      assert.match(await hang, /stopped before the MCP server answered/);
      assert.equal(await exited, 0, listener.stderr());

      const log = await faultyLog(s.log);
      assert.ok(log.some((e) => e.event === 'cancelled'), 'the server was asked to cancel the call left over');
      assert.ok(!log.some((e) => e.event === 'call' && e.tool === 'echo'));
      await assertRecorded(s.events, 0);
    } finally {
      await session.close().catch(() => {});
      if (listener.proc.exitCode === null) listener.proc.kill('SIGKILL');
    }
  });
});

/** Every id answered exactly once (figures record what was not). */
function assertNothingLost(proxy: RawProxy, ids: string[]): void {
  const counts = new Map<string, number>();
  for (const line of proxy.stdoutLines) {
    const m = JSON.parse(line) as Json;
    if (!('method' in m)) counts.set(String(m.id), (counts.get(String(m.id)) ?? 0) + 1);
  }
  const unanswered = ids.filter((id) => !counts.has(id));
  addFigure('requests unanswered', unanswered.length);
  assert.deepEqual(unanswered, []);
  for (const id of ids) assert.equal(counts.get(id), 1, `${id} is answered exactly once`);
}
