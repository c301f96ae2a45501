// A fleet sharing Redis, through the real proxy: four proxies hammering one limit admit exactly
// the limit between them; while Redis is down, --state-fail-mode closed denies the calls that
// need a counter (and only those) and open lets them through; when Redis is back, counting
// resumes without a restart.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { assertDenied, textOf } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { connectV1, proxyParams } from '../support/sdk-clients.js';
import { redisSkipReason, startRedis, type RedisHandle } from '../support/redis-server.js';

const OPTIONS = { timeout: 120_000, skip: redisSkipReason };

const call = (client: Client, name: string, args: Record<string, unknown> = {}) => client.callTool({ name, arguments: args });
const created = (result: unknown) => /Created conversation/.test(textOf(result));

const POLICY = `
tools:
  create_conversation:
    rules:
      - action: allow
        rate_limit: { max: 25, window: 3600, scope: global }
`;

describe('four proxies sharing one redis-server', OPTIONS, () => {
  let redis: RedisHandle;
  let tmp: TempDir;
  before(async () => {
    redis = await startRedis();
    tmp = await makeTempDir();
  });
  after(async () => {
    await redis?.stop();
    await tmp?.cleanup();
  });

  it('admit exactly the limit between them', async () => {
    const policy = await writePolicy(tmp.path, POLICY);
    const flags = ['--state-dsn', redis.url, '--state-prefix', `fleet-${Date.now()}`];
    const proxies = await Promise.all(Array.from({ length: 4 }, () => connectV1(proxyParams(policy, servers.demo(), { flags }))));
    try {
      const results = await Promise.all(proxies.flatMap((p) => Array.from({ length: 20 }, (_, i) => call(p.client, 'create_conversation', { friendly_name: `c${i}` }))));
      assert.equal(results.filter(created).length, 25);
      for (const denied of results.filter((r) => !created(r))) assertDenied(denied, { kind: 'rate_limit' });
    } finally {
      await Promise.all(proxies.map((p) => p.close()));
    }
  });
});

describe('a Redis outage', OPTIONS, () => {
  let redis: RedisHandle;
  let tmp: TempDir;
  let policy: string;
  before(async () => {
    redis = await startRedis();
    tmp = await makeTempDir();
    policy = await writePolicy(tmp.path, POLICY);
  });
  after(async () => {
    await redis?.stop();
    await tmp?.cleanup();
  });

  it('fails closed by default, touches no call without a counter, and recovers', { skip: redisSkipReason ?? (process.env['REDIS_URL'] ? 'needs a redis-server the tests control' : undefined) }, async () => {
    const proxy = await connectV1(proxyParams(policy, servers.demo(), { flags: ['--state-dsn', redis.url, '--state-prefix', `outage-${Date.now()}`] }));
    try {
      assert.ok(created(await call(proxy.client, 'create_conversation')));
      await redis.kill();
      assertDenied(await call(proxy.client, 'create_conversation'), { kind: 'state_unavailable' });
      // No counter involved: unaffected by the outage.
      assert.match(textOf(await call(proxy.client, 'list_conversations')), /conversation/);
      await redis.restart();
      let result: unknown;
      for (let attempt = 0; attempt < 100; attempt++) {
        result = await call(proxy.client, 'create_conversation');
        if (created(result)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(created(result), `calls did not resume after Redis came back: ${textOf(result)}`);
    } finally {
      await proxy.close();
    }
  });

  it('fails open when asked to, and says so in its log', { skip: redisSkipReason ?? (process.env['REDIS_URL'] ? 'needs a redis-server the tests control' : undefined) }, async () => {
    await redis.kill();
    const proxy = await connectV1(
      proxyParams(policy, servers.demo(), { flags: ['--state-dsn', redis.url, '--state-fail-mode', 'open', '--state-prefix', `open-${Date.now()}`] }),
    );
    try {
      for (let i = 0; i < 3; i++) assert.ok(created(await call(proxy.client, 'create_conversation')));
      assert.match(proxy.stderr(), /counter store unavailable/);
    } finally {
      await proxy.close();
      await redis.restart();
    }
  });
});
