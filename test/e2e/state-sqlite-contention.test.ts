// A proxy whose SQLite file is locked by another process keeps serving: a call that needs a
// reservation waits for the lock on a timer, while pings and other calls flow past it; once
// the lock is free the call is counted and answered. Two proxies contending for one file
// admit exactly the limit between them, pings answered throughout.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { isRecord } from '../support/messages.js';
import { startProxy, type RawProxy } from '../support/raw-proxy.js';
import { everythingCommand } from '../support/servers.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';

interface RawDb {
  exec(sql: string): void;
  close(): void;
}
const RawDatabase = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => RawDb;

const POLICY = `tools:
  echo:
    rules:
      - action: allow
        rate_limit: { max: 30, window: 3600, scope: global }
`;

let dir: TempDir;
let policy: string;
const proxies: RawProxy[] = [];
before(async () => {
  dir = await makeTempDir();
  policy = await writePolicy(dir.path, POLICY);
});
after(async () => {
  await Promise.all(proxies.map((p) => p.close().catch(() => {})));
  await dir?.cleanup();
});

function start(stateDir: string): RawProxy {
  const proxy = startProxy(['-c', policy, '--state-dir', stateDir, '--', ...everythingCommand()]);
  proxies.push(proxy);
  return proxy;
}

const isAnswer = (m: unknown, id: number) => isRecord(m) && m.id === id && !('method' in m);

describe('SQLite under contention', { timeout: 120_000 }, () => {
  it('relays pings and uncounted traffic while a reservation waits for another process’s lock', async () => {
    const stateDir = join(dir.path, 'locked');
    const proxy = start(stateDir);
    await proxy.initialize();
    // One counted call first, so the file and its tables exist.
    assert.ok(isRecord((await proxy.callTool('echo', { message: 'first' })).result));

    const other = new RawDatabase(join(stateDir, 'intercept.sqlite'));
    other.exec('BEGIN IMMEDIATE'); // another proxy, mid-reservation, holding the write lock
    const callId = proxy.freshId();
    proxy.sendJson({ jsonrpc: '2.0', id: callId, method: 'tools/call', params: { name: 'echo', arguments: { message: 'waiting' } } });
    try {
      // While the call waits, three pings and a tools/list go all the way through the server.
      for (let i = 0; i < 3; i++) await proxy.barrier();
      const listed = await proxy.request('tools/list', {});
      assert.ok(isRecord(listed.result));
      assert.equal(proxy.pending().some((m) => isAnswer(m, callId)), false, 'the call was answered while the lock was held');
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    const answer = await proxy.response(callId);
    assert.ok(isRecord(answer.result) && answer.result.isError !== true, JSON.stringify(answer));
  });

  it('two proxies on one file admit exactly the limit between them, pings answered throughout', async () => {
    const stateDir = join(dir.path, 'shared');
    const a = start(stateDir);
    const b = start(stateDir);
    await Promise.all([a.initialize(), b.initialize()]);
    /** How each call was answered: "allowed", or the denial's kind. */
    const calls = async (proxy: RawProxy): Promise<string[]> => {
      const ids = Array.from({ length: 25 }, () => proxy.freshId());
      for (const id of ids) proxy.sendJson({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } } });
      const pings = Array.from({ length: 5 }, () => proxy.barrier());
      const outcomes: string[] = [];
      for (const id of ids) {
        const answer = await proxy.response(id, 60_000);
        const result = isRecord(answer.result) ? answer.result : undefined;
        const meta = isRecord(result?._meta) ? result._meta : undefined;
        const denial = isRecord(meta?.['intercept/denial']) ? meta['intercept/denial'] : undefined;
        outcomes.push(result && result.isError !== true ? 'allowed' : String(denial?.kind ?? JSON.stringify(answer).slice(0, 200)));
      }
      await Promise.all(pings);
      return outcomes;
    };
    const outcomes = (await Promise.all([calls(a), calls(b)])).flat();
    const tally = (kind: string) => outcomes.filter((o) => o === kind).length;
    assert.equal(tally('allowed'), 30, JSON.stringify(outcomes));
    assert.equal(tally('rate_limit'), 20, JSON.stringify(outcomes));
  });
});
