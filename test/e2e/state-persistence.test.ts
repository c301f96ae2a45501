// Counters through the real proxy and its default SQLite store: global counters survive a
// restart and a kill -9 (a call the server ran is never uncounted), session counters start
// fresh with a new session, and two proxies on one file never admit more than the limit.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { INTERCEPT_BIN } from '../support/paths.js';
import { freshHome, makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { assertDenied, textOf } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { connectV1, proxyParams } from '../support/sdk-clients.js';
import { setTimeout as sleep } from 'node:timers/promises';

const TIMEOUT = { timeout: 90_000 };

const POLICY = `
version: "1"
tools:
  create_conversation:
    rules:
      - name: "three a day"
        rate_limit: 3/day
  send_conversation_message:
    rules:
      - action: allow
        rate_limit: { max: 3, window: 3600, scope: global }
  list_conversations:
    rules:
      - action: allow
        rate_limit: { max: 2, window: 3600 }
`;

const utcDay = () => new Date().toISOString().slice(0, 10);

async function proxy(policy: string, home: string) {
  return connectV1(proxyParams(policy, servers.demo(), { env: { HOME: home } }));
}

const call = (client: Client, name: string, args: Record<string, unknown> = {}) => client.callTool({ name, arguments: args });

describe('counters in the default SQLite store', TIMEOUT, () => {
  let tmp: TempDir;
  let policy: string;
  before(async () => {
    tmp = await makeTempDir();
    policy = await writePolicy(tmp.path, POLICY);
  });
  after(() => tmp?.cleanup());

  it('global counters survive a restart; session counters start fresh', async (t) => {
    const home = freshHome();
    const day = utcDay();
    const first = await proxy(policy, home);
    try {
      for (const n of [1, 2]) assert.match(textOf(await call(first.client, 'create_conversation', { friendly_name: `c${n}` })), /Created conversation/);
      assert.match(textOf(await call(first.client, 'send_conversation_message', { conversation_sid: 'CH0001', body: 'hi' })), /Sent message/);
      for (let n = 0; n < 2; n++) assert.doesNotMatch(textOf(await call(first.client, 'list_conversations')), /DENIED/);
      assertDenied(await call(first.client, 'list_conversations'), { kind: 'rate_limit' });
    } finally {
      await first.close();
    }

    const second = await proxy(policy, home);
    try {
      if (utcDay() !== day) return t.skip('the UTC day changed during the test');
      // 2 of 3 used before the restart: one more, then the limit.
      assert.match(textOf(await call(second.client, 'create_conversation', { friendly_name: 'c3' })), /Created conversation/);
      assertDenied(await call(second.client, 'create_conversation', { friendly_name: 'c4' }), {
        kind: 'rate_limit',
        message: 'Rate limit of 3 per day reached. Try again later.',
      });
      // The global rolling counter remembers its one message: two more pass, the third does not.
      for (let n = 0; n < 2; n++) assert.match(textOf(await call(second.client, 'send_conversation_message', { conversation_sid: 'CH0001', body: 'again' })), /Sent message/);
      assertDenied(await call(second.client, 'send_conversation_message', { conversation_sid: 'CH0001', body: 'over' }), { kind: 'rate_limit' });
      // A new session starts its own session-scoped count.
      assert.doesNotMatch(textOf(await call(second.client, 'list_conversations')), /DENIED/);
    } finally {
      await second.close();
    }
  });

  it('a kill -9 after the server answered does not lose the charge', async (t) => {
    const home = freshHome();
    const day = utcDay();
    const victim = spawn(process.execPath, [INTERCEPT_BIN, '-c', policy, '--', ...[servers.demo().command, ...servers.demo().args]], {
      env: { ...process.env, HOME: home },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    // Whatever happens below, the proxy does not outlive the test.
    t.after(() => void victim.kill('SIGKILL'));
    const lines: string[] = [];
    let buffered = '';
    victim.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts);
    });
    const send = (msg: unknown) => victim.stdin.write(JSON.stringify(msg) + '\n');
    const answer = async (id: number) => {
      for (let i = 0; i < 400; i++) {
        const line = lines.find((l) => l.includes(`"id":${id}`));
        if (line) return JSON.parse(line) as { result?: { isError?: boolean } };
        await sleep(25);
      }
      throw new Error(`no answer to request ${id}`);
    };
    send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'kill-test', version: '1' } } });
    await answer(1);
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    for (const id of [2, 3]) {
      send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'create_conversation', arguments: {} } });
      assert.notEqual((await answer(id)).result?.isError, true);
    }
    const exited = new Promise((resolve) => victim.once('exit', resolve));
    victim.kill('SIGKILL');
    await exited;

    const next = await proxy(policy, home);
    try {
      if (utcDay() !== day) return t.skip('the UTC day changed during the test');
      assert.match(textOf(await call(next.client, 'create_conversation')), /Created conversation/);
      assertDenied(await call(next.client, 'create_conversation'), { kind: 'rate_limit' });
    } finally {
      await next.close();
    }
  });

  it('two proxies on one file admit exactly the limit between them', async (t) => {
    const home = freshHome();
    const day = utcDay();
    const shared = await writePolicy(tmp.path, 'version: "1"\ntools:\n  create_conversation:\n    rules:\n      - name: "twenty a day"\n        rate_limit: 20/day\n', 'shared.yaml');
    // Connected one by one, so that a failure to start the second still closes the first.
    const a = await proxy(shared, home);
    let b: Awaited<ReturnType<typeof proxy>> | undefined;
    try {
      b = await proxy(shared, home);
      const results = await Promise.all(
        [a, b].flatMap((p) => Array.from({ length: 30 }, (_, i) => call(p.client, 'create_conversation', { friendly_name: `x${i}` }))),
      );
      if (utcDay() !== day) return t.skip('the UTC day changed during the test');
      const admitted = results.filter((r) => /Created conversation/.test(textOf(r))).length;
      const denied = results.filter((r) => /Rate limit of 20 per day reached/.test(textOf(r))).length;
      assert.equal(admitted, 20);
      assert.equal(denied, 40);
    } finally {
      await Promise.all([a.close(), b?.close()]);
    }
  });
});
