// The upstream fails: a stdio server crashes mid-call (by exit status or by signal), a remote
// server's connection drops or the server dies, and a server never answers. Every request is
// answered exactly once, with a JSON-RPC error saying what happened; a call the server never
// answered because it went away is given its charge back, a call that timed out keeps it; the
// proxy's exit status is the server's; the audit trail records each call's fate. Upstream:
// test/fixtures/faulty-server.ts, cued by the tool called. Needs the build (dist/).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectV1, proxyParams } from '../support/sdk-clients.js';
import { startProxy, type RawProxy } from '../support/raw-proxy.js';
import { callsRan, callsReceived, faultyArgv, faultyLog, faultyServer, startFaultyHttp } from '../support/faulty.js';
import { addFigure } from '../support/figures.js';
import { errorOf, resultText, textOf, type Json } from '../support/messages.js';
import { intercept, toolCalls, trailRecords } from '../support/trail.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { eventually } from '../support/wait.js';

const OPTIONS = { timeout: 90_000 };
const INTERNAL_ERROR = -32603;
const REQUEST_TIMEOUT = -32001;

// One global counter over every tool, so that `intercept status` shows what was charged.
const POLICY = `version: "1"
tools:
  "*":
    rules:
      - name: every call
        rate_limit: { max: 1000, window: 3600, scope: global }
`;

let tmp: TempDir;
let runs = 0;

before(async () => {
  tmp = await makeTempDir('intercept-faults-upstream-');
});
after(async () => {
  await tmp?.cleanup();
});

/** A fresh policy file, state directory, trail directory and server log. */
async function scene() {
  const n = ++runs;
  const policy = await writePolicy(tmp.path, POLICY, `policy-${n}.yaml`);
  const state = tmp.file(`state-${n}`);
  const events = tmp.file(`events-${n}`);
  return { policy, state, events, log: tmp.file(`server-${n}.jsonl`), flags: ['--state-dir', state, '--events-dir', events] };
}

/** The value of the policy's one counter, as `intercept status` reads it from the store. */
async function counterValue(policy: string, stateFlags: string[]): Promise<number> {
  const run = await intercept('status', '-c', policy, ...stateFlags, '--json');
  assert.equal(run.code, 0, run.stderr);
  const counters = (JSON.parse(run.stdout) as { counters?: Array<{ value: number }> }).counters;
  assert.ok(counters && counters.length === 1, run.stdout);
  return counters[0]!.value;
}

/** Records how many of `ids` the proxy never answered, and asserts there are none. */
function assertAllAnswered(proxy: RawProxy, ids: unknown[]): void {
  const answered = new Set(
    proxy.stdoutLines.flatMap((line) => {
      try {
        const m = JSON.parse(line) as Json;
        return 'method' in m ? [] : [JSON.stringify(m.id)];
      } catch {
        return [];
      }
    }),
  );
  const missing = ids.filter((id) => !answered.has(JSON.stringify(id)));
  addFigure('requests unanswered', missing.length);
  assert.deepEqual(missing, [], 'every request is answered');
}

/** How many answers each id got; every one must have exactly one. */
function answersPerId(proxy: RawProxy): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of proxy.stdoutLines) {
    const m = JSON.parse(line) as Json;
    if (!('method' in m)) counts.set(JSON.stringify(m.id), (counts.get(JSON.stringify(m.id)) ?? 0) + 1);
  }
  return counts;
}

describe('a stdio server that crashes mid-call', OPTIONS, () => {
  for (const [label, args, status, words] of [
    ['exits with status 3', { code: 3 }, 3, /exited with status 3/],
    ['is killed by SIGKILL', { signal: 'SIGKILL' }, 137, /was killed by SIGKILL/],
  ] as const) {
    it(`${label}: the call, and the requests after it, are answered with an error naming it; the proxy exits ${status}`, async () => {
      const s = await scene();
      const proxy = startProxy(['-c', s.policy, ...s.flags, '--', ...faultyArgv(s.log)]);
      await proxy.initialize();
      for (const message of ['one', 'two']) assert.equal(resultText(await proxy.callTool('echo', { message })), `Echo: ${message}`);
      // The crash is cued; while the server is dying (it answers nothing more) a ping and
      // another call reach it too.
      proxy.sendJson({ jsonrpc: '2.0', id: 'crash', method: 'tools/call', params: { name: 'crash', arguments: { ...args, delay_ms: 1000 } } });
      await eventually(async () => (callsReceived(await faultyLog(s.log), 'crash').length === 1 ? true : undefined));
      proxy.sendJson({ jsonrpc: '2.0', id: 'ping-after', method: 'ping' });
      proxy.sendJson({ jsonrpc: '2.0', id: 'call-after', method: 'tools/call', params: { name: 'echo', arguments: { message: 'three' } } });
      addFigure('faults injected', 1);
      const exit = await proxy.waitForExit();
      assertAllAnswered(proxy, ['crash', 'ping-after', 'call-after']);
      for (const id of ['crash', 'ping-after', 'call-after']) {
        const error = errorOf(await proxy.response(id));
        assert.ok(error, `${id} is answered with an error`);
        assert.equal(error.code, INTERNAL_ERROR);
        assert.match(error.message, words, id);
      }
      assert.equal(exit.code, status, proxy.stderr);

      // Only the calls that ran are charged: the crash and the call after it are given back.
      const ran = callsRan(await faultyLog(s.log)).length;
      assert.equal(ran, 2);
      const charged = await counterValue(s.policy, ['--state-dir', s.state, '--events-dir', s.events]);
      addFigure('counted calls lost', Math.max(0, ran - charged));
      assert.equal(charged, ran, 'the counter holds exactly the calls that ran');

      const records = await trailRecords(s.events);
      const calls = toolCalls(records);
      assert.deepEqual(calls.map((c) => c.outcome), ['result', 'result', 'transport_failure', 'transport_failure']);
      assert.match(String(calls[2]!.error), words);
      assert.deepEqual(records.at(-1), { ...records.at(-1), type: 'shutdown', code: status });
    });
  }

  it('with the official SDK client: the call and a ping sent after it reject with the error', async () => {
    const s = await scene();
    const session = await connectV1(proxyParams(s.policy, faultyServer(s.log), { flags: s.flags }));
    try {
      const crash = session.client.callTool({ name: 'crash', arguments: { code: 5, delay_ms: 1000 } });
      await eventually(async () => (callsReceived(await faultyLog(s.log), 'crash').length === 1 ? true : undefined));
      const [call, ping] = await Promise.allSettled([crash, session.client.ping()]);
      addFigure('faults injected', 1);
      for (const settled of [call, ping]) {
        assert.equal(settled.status, 'rejected');
        const err = (settled as PromiseRejectedResult).reason as { code?: number; message: string };
        assert.equal(err.code, INTERNAL_ERROR, err.message);
        assert.match(err.message, /The MCP server behind the proxy exited with status 5/);
      }
    } finally {
      await session.close();
    }
  });
});

describe('a remote server that fails', OPTIONS, () => {
  it('a dropped connection and a dead server are answered with errors, given back, and the proxy carries on once it is back', async () => {
    const s = await scene();
    const server = await startFaultyHttp(s.log);
    const proxy = startProxy(['-c', s.policy, ...s.flags, '--upstream', server.url]);
    try {
      await proxy.initialize();
      assert.equal(resultText(await proxy.callTool('echo', { message: 'before' })), 'Echo: before');

      const dropped = errorOf(await proxy.callTool('drop', {}, 'drop'));
      assert.ok(dropped, 'the dropped call is answered with an error');
      assert.equal(dropped.code, INTERNAL_ERROR);
      assert.match(dropped.message, new RegExp(`Upstream http://127\\.0\\.0\\.1:${server.port}/mcp`));
      assert.equal(resultText(await proxy.callTool('echo', { message: 'still here' })), 'Echo: still here');

      // The server dies with a call in flight; the ping after it finds nobody.
      proxy.sendJson({ jsonrpc: '2.0', id: 'hang', method: 'tools/call', params: { name: 'hang', arguments: {} } });
      await eventually(async () => (callsReceived(await faultyLog(s.log), 'hang').length === 1 ? true : undefined));
      await server.kill();
      addFigure('faults injected', 2);
      const lost = errorOf(await proxy.response('hang'));
      assert.ok(lost, 'the call in flight is answered with an error');
      const ping = errorOf(await proxy.request('ping', undefined, 'ping-after'));
      assert.ok(ping, 'a request after the crash is answered with an error');
      assert.match(ping.message, /could not be reached/);
      assert.ok(proxy.running, 'the proxy keeps running: a remote server may come back');

      await server.restart();
      assert.equal(resultText(await proxy.callTool('echo', { message: 'after' })), 'Echo: after');
      assertAllAnswered(proxy, ['drop', 'hang', 'ping-after']);
      assert.ok([...answersPerId(proxy).values()].every((n) => n === 1), 'no request is answered twice');

      const exit = await proxy.close();
      assert.equal(exit.code, 0, proxy.stderr);
      const ran = callsRan(await faultyLog(s.log)).length;
      const charged = await counterValue(s.policy, ['--state-dir', s.state, '--events-dir', s.events]);
      addFigure('counted calls lost', Math.max(0, ran - charged));
      assert.equal(charged, ran, 'the calls that never ran are given back');
    } finally {
      if (proxy.running) proxy.child.kill('SIGKILL');
      await server.kill();
    }
  });
});

describe('a server that never answers: --call-timeout', OPTIONS, () => {
  it('answers with -32001, cancels the call upstream, keeps its charge, drops the late answer and records "timeout"', async () => {
    const s = await scene();
    const proxy = startProxy(['-c', s.policy, ...s.flags, '--call-timeout', '1s', '--', ...faultyArgv(s.log)]);
    try {
      await proxy.initialize();
      addFigure('faults injected', 2);
      const hung = errorOf(await proxy.callTool('hang', {}, 'hang'));
      assert.ok(hung);
      assert.equal(hung.code, REQUEST_TIMEOUT);
      assert.match(hung.message, /did not answer the call to "hang" within 1 second/);
      const cancelled = await eventually(async () => (await faultyLog(s.log)).find((e) => e.event === 'cancelled' && e.requestId === 'hang'));
      assert.match(String(cancelled.reason), /did not answer/);

      // An answer that comes after the timeout does not reach the client.
      const late = errorOf(await proxy.callTool('slow', { ms: 1500 }, 'late'));
      assert.equal(late?.code, REQUEST_TIMEOUT);
      await eventually(async () => (callsRan(await faultyLog(s.log), 'slow').length === 1 ? true : undefined));
      await proxy.barrier();
      assert.equal(answersPerId(proxy).get('"late"'), 1, 'the late answer was dropped');

      assert.equal(resultText(await proxy.callTool('echo', { message: 'served' })), 'Echo: served');
      const exit = await proxy.close();
      assert.equal(exit.code, 0, proxy.stderr);
      // Both timed-out calls keep their charge (they may have run); so does the echo.
      assert.equal(await counterValue(s.policy, ['--state-dir', s.state, '--events-dir', s.events]), 3);
      const calls = toolCalls(await trailRecords(s.events));
      assert.deepEqual(calls.map((c) => [c.tool, c.outcome]), [['hang', 'timeout'], ['slow', 'timeout'], ['echo', 'result']]);
      assert.match(String(calls[0]!.error), /within 1 second/);
    } finally {
      if (proxy.running) proxy.child.kill('SIGKILL');
    }
  });

  it('through the SDK client, the timeout rejects the call with the error; 0 turns it off; a bad value is a usage error', async () => {
    const s = await scene();
    const session = await connectV1(proxyParams(s.policy, faultyServer(s.log), { flags: [...s.flags, '--call-timeout', '500ms'] }));
    try {
      await assert.rejects(session.client.callTool({ name: 'hang', arguments: {} }), (err: { code?: number; message: string }) => {
        assert.equal(err.code, REQUEST_TIMEOUT, err.message);
        return true;
      });
      addFigure('faults injected', 1);
    } finally {
      await session.close();
    }
    const off = await scene();
    const patient = await connectV1(proxyParams(off.policy, faultyServer(off.log), { flags: [...off.flags, '--call-timeout', '0'] }));
    try {
      // Longer than the timeouts above: still answered by the server.
      assert.equal(textOf(await patient.client.callTool({ name: 'slow', arguments: { ms: 1200 } })), 'slept 1200');
    } finally {
      await patient.close();
    }
    for (const bad of ['soon', '-1s', '5 minutes']) {
      const run = await intercept('-c', s.policy, '--call-timeout', bad, '--', process.execPath, '-e', '');
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /--call-timeout must be a duration/);
    }
  });
});

describe('a listener session whose server crashes', OPTIONS, () => {
  it('answers the call with an error naming the exit, and records it', async () => {
    const { startListener, connectStreamableV1 } = await import('../support/listener.js');
    const s = await scene();
    const listener = await startListener(s.policy, faultyServer(s.log), { flags: s.flags });
    try {
      const session = await connectStreamableV1(listener);
      await assert.rejects(session.client.callTool({ name: 'crash', arguments: { code: 4 } }), /exited with status 4/);
      addFigure('faults injected', 1);
      await session.close().catch(() => {});
      const calls = await eventually(async () => {
        const found = toolCalls(await trailRecords(s.events));
        return found.length === 1 ? found : undefined;
      });
      assert.equal(calls[0]!.outcome, 'transport_failure');
      assert.equal(await counterValue(s.policy, ['--state-dir', s.state, '--events-dir', s.events]), 0, 'the crashed call is given back');
    } finally {
      assert.equal(await listener.stop(), 0);
    }
  });
});
