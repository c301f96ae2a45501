// A fleet sharing a Redis Cluster, through the real proxy (--state-dsn redis+cluster://…): four
// proxies hammering one global limit admit exactly the limit between them; with every master
// killed, --state-fail-mode closed denies the calls that need a counter (and only those) and open
// lets them through; once the same nodes are back, counting resumes without a restart.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { assertDenied, denialOf, textOf } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { connectV1, proxyParams } from '../support/sdk-clients.js';
import { redisClusterSkipReason, startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster.js';

const OPTIONS = { timeout: 180_000, skip: redisClusterSkipReason };

const call = (client: Client, name: string, args: Record<string, unknown> = {}) => client.callTool({ name, arguments: args });
const created = (result: unknown) => /Created conversation/.test(textOf(result));

const policyOf = (max: number) => `
tools:
  create_conversation:
    rules:
      - action: allow
        rate_limit: { max: ${max}, window: 3600, scope: global }
`;

/** Calls until a call is created (the store answers again), at most `attempts` times. */
async function untilCreated(client: Client, attempts = 200): Promise<void> {
  let result: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    result = await call(client, 'create_conversation');
    if (created(result)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`calls did not resume after the cluster came back: ${textOf(result)}`);
}

describe('proxies sharing a Redis Cluster', OPTIONS, () => {
  let cluster: RedisClusterHandle;
  let tmp: TempDir;
  before(async () => {
    cluster = await startRedisCluster();
    tmp = await makeTempDir();
  });
  after(async () => {
    await cluster?.stop();
    await tmp?.cleanup();
  });

  it('four proxies admit exactly the limit between them', async () => {
    const policy = await writePolicy(tmp.path, policyOf(25), 'fleet.yaml');
    const prefix = `fleet-${Date.now()}`;
    // Three proxies each know one node of the cluster, the fourth all of them.
    const dsns = [...cluster.ports.map((port) => cluster.dsnOf(port)), cluster.dsn];
    const proxies = await Promise.all(dsns.map((dsn) => connectV1(proxyParams(policy, servers.demo(), { flags: ['--state-dsn', dsn, '--state-prefix', prefix] }))));
    try {
      const results = await Promise.all(proxies.flatMap((p) => Array.from({ length: 20 }, (_, i) => call(p.client, 'create_conversation', { friendly_name: `c${i}` }))));
      assert.equal(results.filter(created).length, 25);
      for (const denied of results.filter((r) => !created(r))) assertDenied(denied, { kind: 'rate_limit' });
      for (const p of proxies) assert.match(p.stderr(), /counters="?redis cluster redis\+cluster:\/\//);
    } finally {
      await Promise.all(proxies.map((p) => p.close()));
    }
  });

  it('with every master down, fails closed by default, touches no call without a counter, and counts again once the cluster is back', async () => {
    const policy = await writePolicy(tmp.path, policyOf(3), 'closed.yaml');
    const proxy = await connectV1(proxyParams(policy, servers.demo(), { flags: ['--state-dsn', cluster.dsn, '--state-prefix', `closed-${Date.now()}`] }));
    try {
      assert.ok(created(await call(proxy.client, 'create_conversation')));
      await cluster.kill();
      assertDenied(await call(proxy.client, 'create_conversation'), { kind: 'state_unavailable' });
      assertDenied(await call(proxy.client, 'create_conversation'), { kind: 'state_unavailable' });
      // No counter involved: unaffected by the outage.
      assert.match(textOf(await call(proxy.client, 'list_conversations')), /conversation/);

      await cluster.restart();
      await untilCreated(proxy.client);
      // Counting works again: the restarted nodes are empty (no persistence), so the limit of 3
      // admits two more calls, then refuses.
      assert.ok(created(await call(proxy.client, 'create_conversation')));
      assert.ok(created(await call(proxy.client, 'create_conversation')));
      assertDenied(await call(proxy.client, 'create_conversation'), { kind: 'rate_limit' });
    } finally {
      await proxy.close();
    }
  });

  it('with every master down, fails open when asked to and says so in its log; counts again once the cluster is back', async () => {
    const policy = await writePolicy(tmp.path, policyOf(3), 'open.yaml');
    await cluster.kill();
    // Started during the outage: the proxy starts anyway.
    const proxy = await connectV1(
      proxyParams(policy, servers.demo(), { flags: ['--state-dsn', cluster.dsn, '--state-fail-mode', 'open', '--state-prefix', `open-${Date.now()}`] }),
    );
    try {
      for (let i = 0; i < 5; i++) assert.ok(created(await call(proxy.client, 'create_conversation')));
      assert.match(proxy.stderr(), /counter store unavailable/);

      await cluster.restart();
      // Calls allowed open are not counted; once the store answers, the limit of 3 holds again.
      let denied: unknown;
      for (let attempt = 0; attempt < 200 && denied === undefined; attempt++) {
        const result = await call(proxy.client, 'create_conversation');
        if (denialOf(result)) denied = result;
        else await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(denied, 'the limit was never enforced after the cluster came back');
      assertDenied(denied, { kind: 'rate_limit' });
    } finally {
      await proxy.close();
    }
  });
});
