// Races against the counters, through the real CLI. Many calls at once against a limit of 3
// let exactly 3 through, on every store (memory, SQLite, a real redis-server), on stdio and on
// the listener with several sessions of both eras sharing a global limit. And cancellations
// sent before a call, while the gate decides it, after it was forwarded and after the server
// answered leave the counter where docs/policy.md (5.7) says: a call cancelled while it is
// still being decided is never forwarded and its charge is released; once forwarded, the
// charge stands, since the tool may have run. The servers sit behind the tee, so every count
// is checked against what they really received.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { eventually } from '../support/wait.js';
import { denialOf, isDenial, isRecord, resultText, type Json } from '../support/messages.js';
import { readLogLines, servers } from '../support/servers.js';
import { redisSkipReason, startRedis, type RedisHandle } from '../support/redis-server.js';
import { asHttp, asStdio, openFront, rogueServer, stdioReceived, withTally, type Front, type FrontKind, type Tally } from '../support/bypass.js';

const TIMEOUT = { timeout: 180_000 };
const LIMIT = 3;

const RACE_POLICY = `version: "1"
tools:
  echo:
    rules:
      - name: three in all
        rate_limit: { max: ${LIMIT}, window: 3600, scope: global }
`;

let dir: TempDir;
let racePolicy: string;
let redis: RedisHandle | undefined;
before(async () => {
  dir = await makeTempDir('intercept-races-');
  racePolicy = await writePolicy(dir.path, RACE_POLICY, 'race.yaml');
  if (!redisSkipReason) redis = await startRedis();
});
after(async () => {
  await redis?.stop();
  await dir?.cleanup();
});

type Store = 'memory' | 'sqlite' | 'redis';
const STORES: Store[] = ['memory', 'sqlite', 'redis'];
let stores = 0;

/** The flags that put the counters in `store` (a fresh SQLite directory, a fresh Redis namespace). */
function storeFlags(store: Store): string[] {
  stores++;
  if (store === 'memory') return ['--state-dsn', 'memory:'];
  if (store === 'sqlite') return ['--state-dir', dir.file(`state-${stores}`)];
  return ['--state-dsn', redis!.url, '--state-prefix', `race-${process.pid}-${stores}`];
}

/** The echo calls the server received, however many upstream processes logged to `logFile`. */
async function echoesReceived(logFile: string, marker: string): Promise<number> {
  return (await readLogLines(logFile)).filter((l) => l.includes('"tools/call"') && l.includes(marker)).length;
}

/** Exactly LIMIT results from the server and a rate_limit denial for every other call, each
 * call answered once; what passed the limit is counted as leaked. */
function assertExactlyLimit(tally: Tally, answers: Json[], sent: number, received: number): void {
  tally.leak(Math.max(0, received - LIMIT));
  assert.equal(answers.length, sent, 'every call answered once');
  const ran = answers.filter((a) => isRecord(a.result) && !isDenial(a));
  const denied = answers.filter((a) => isDenial(a));
  assert.equal(ran.length, LIMIT, `${ran.length} calls ran`);
  assert.deepEqual([...new Set(denied.map((a) => denialOf(a.result)?.kind))], ['rate_limit']);
  assert.equal(denied.length, sent - LIMIT);
  assert.equal(received, LIMIT, 'the server received exactly the calls that ran');
}

for (const store of STORES) {
  const skip = store === 'redis' ? redisSkipReason : undefined;
  describe(`many concurrent calls against a limit of ${LIMIT}, counters in ${store}`, { ...TIMEOUT, skip }, () => {
    it('stdio: exactly 3 pass', () =>
      withTally([], async (tally) => {
        const log = dir.file(`race-stdio-${store}.log`);
        const front = await openFront('stdio', racePolicy, log, { flags: storeFlags(store) });
        try {
          const proxy = asStdio(front);
          const marker = `race-stdio-${store}`;
          const lines = Array.from({ length: 30 }, (_, i) => front.callText(`r${i}`, 'echo', { message: `${marker} ${i}` }));
          for (const line of lines) tally.input(line);
          proxy.write(lines.join('\n') + '\n'); // all in one write: the proxy sees them at once
          const answers = await Promise.all(lines.map((_, i) => proxy.response(`r${i}`, 20_000)));
          assertExactlyLimit(tally, answers, lines.length, await echoesReceived(log, marker));
        } finally {
          await front.close();
        }
      }));

    it('listener: three 2025 sessions and two 2026-07-28 clients share the global limit, exactly 3 pass', () =>
      withTally([], async (tally) => {
        const log = dir.file(`race-http-${store}.log`);
        const first = asHttp(await openFront('http', racePolicy, log, { flags: storeFlags(store), server: servers.modern() }));
        try {
          const marker = `race-http-${store}`;
          const agents = [first, await first.sibling('http'), await first.sibling('http'), await first.sibling('http-2026', 'agent-a'), await first.sibling('http-2026', 'agent-b')];
          const posts: Array<Promise<Json | undefined>> = [];
          let n = 0;
          for (const agent of agents) {
            for (let i = 0; i < (agent.era === '2025' ? 7 : 5); i++) {
              const id = n++;
              const text = agent.callText(id, 'echo', { message: `${marker} ${id}` });
              tally.input(text);
              posts.push(agent.open(text).then((s) => s.next((m) => m.id === id && !('method' in m), 20_000)));
            }
          }
          // Every call is answered, and the tee logs a call before the server reads it: the log
          // is complete once the last answer is in.
          const answers = (await Promise.all(posts)).filter((a): a is Json => a !== undefined);
          assertExactlyLimit(tally, answers, posts.length, await echoesReceived(log, marker));
        } finally {
          await first.close();
        }
      }));
  });
}

// ------------------------------------------------------------------------------ cancellation

const CANCEL_POLICY = `version: "1"
tools:
  slow:
    rules:
      - name: three slow calls
        rate_limit: { max: ${LIMIT}, window: 3600 }
  guarded:
    rules:
      - name: three checked calls
        rate_limit: { max: ${LIMIT}, window: 3600 }
        validate: { required_args: true }
`;

/** A call left running: whether (and how) it has been answered yet, and how to give up on it. */
interface Running {
  answered(): Json | undefined;
  answer(timeoutMs?: number): Promise<Json | undefined>;
  /** Over HTTP, closes its response stream (the 2026-07-28 way to cancel). */
  close(): void;
}

function start(front: Front, tally: Tally, id: string | number, name: string, args: Json): Running {
  const text = front.callText(id, name, args);
  tally.input(text);
  if (front.kind === 'stdio') {
    asStdio(front).send(text);
    const answered = () => stdioReceived(front).find((m) => isRecord(m) && m.id === id && !('method' in m));
    return { answered, answer: (timeoutMs) => eventually(answered, timeoutMs), close: () => {} };
  }
  const abort = new AbortController();
  let got: Json | undefined;
  const done = asHttp(front)
    .open(text, {}, abort.signal)
    .then((s) => s.next((m) => m.id === id && !('method' in m), 30_000))
    .then((m) => (got = m))
    .catch(() => undefined);
  return { answered: () => got, answer: () => done, close: () => abort.abort() };
}

/** The client's notifications/cancelled for `id`. */
async function cancel(front: Front, tally: Tally, id: string | number): Promise<void> {
  const reply = await tally.send(front, front.requestText(undefined, 'notifications/cancelled', { requestId: id, reason: 'changed my mind' }));
  assert.deepEqual(reply.messages, []);
}

/** The tools/call lines the server received whose arguments carry `marker`. */
async function callsWith(front: Front, marker: string): Promise<Json[]> {
  return (await front.upstreamLines()).filter((l) => l.includes('"tools/call"') && l.includes(marker)).map((l) => JSON.parse(l) as Json);
}

async function release(front: Front, tally: Tally): Promise<void> {
  const id = `release-${Math.random().toString(36).slice(2)}`;
  const reply = await tally.send(front, front.callText(id, 'release', {}));
  assert.match(resultText(reply.messages.find((m) => m.id === id)) ?? '', /^released \d+$/);
}

/** How many of LIMIT more calls to `tool` the counter still lets through (held ones are
 * released first); each call is answered once, and the server got exactly the ones that ran. */
async function quotaLeft(front: Front, tally: Tally, tool: 'slow' | 'guarded', label: string): Promise<number> {
  const calls: Running[] = [];
  const marker = `probe-${label}`;
  let forwarded = 0;
  for (let i = 0; i < LIMIT; i++) {
    const args = tool === 'slow' ? { label: `${marker}-${i}` } : { path: `${marker}-${i}` };
    const call = start(front, tally, front.era === '2026' ? 900 + i : `${marker}-${i}`, tool, args);
    calls.push(call);
    // Either it is denied at once, or it reaches the server.
    const outcome = await eventually(async () => (call.answered() && isDenial(call.answered()) ? 'denied' : (await callsWith(front, `${marker}-${i}"`)).length > 0 ? 'forwarded' : undefined), 20_000);
    if (outcome === 'forwarded') forwarded++;
  }
  if (tool === 'slow') await release(front, tally);
  const answers = await Promise.all(calls.map((c) => c.answer(20_000)));
  const ran = answers.filter((a) => a !== undefined && !isDenial(a));
  assert.equal(ran.length, forwarded, `every forwarded call answered by the server: ${JSON.stringify(answers)}`);
  assert.ok(answers.every((a) => a !== undefined && (!isDenial(a) || denialOf(a.result)?.kind === 'rate_limit')), JSON.stringify(answers));
  return ran.length;
}

/** Waits until the proxy logged `pattern` on stderr. */
const logged = (front: Front, pattern: RegExp) => eventually(() => (pattern.test(front.stderr()) ? true : undefined), 20_000);

const KINDS: FrontKind[] = ['stdio', 'http', 'http-2026'];

for (const kind of KINDS) {
  describe(`cancellation races on ${kind}`, TIMEOUT, () => {
    let policy: string;
    let front: Front;
    let scenario = 0;
    before(async () => {
      policy = await writePolicy(dir.path, CANCEL_POLICY, 'cancel.yaml');
    });
    /** A fresh proxy (and so fresh session counters) for each scenario. */
    async function fresh(): Promise<Front> {
      front = await openFront(kind, policy, dir.file(`cancel-${kind}-${++scenario}.log`), { server: rogueServer(), client: `client-${scenario}` });
      return front;
    }
    after(async () => {
      await front?.close();
    });
    const idOf = (name: string) => (kind === 'http-2026' ? 500 + scenario : `${name}-${scenario}`);

    it('sent before the call: the call is another matter, runs and is charged (2 of 3 left)', () =>
      withTally([], async (tally) => {
        const f = await fresh();
        try {
          const id = idOf('early');
          await cancel(f, tally, id);
          const call = start(f, tally, id, 'slow', { label: 'early' });
          await eventually(async () => ((await callsWith(f, '"early"')).length === 1 ? true : undefined), 20_000);
          await release(f, tally);
          assert.equal(resultText(await call.answer(20_000)), 'slow early finished');
          assert.equal(await quotaLeft(f, tally, 'slow', 'early'), LIMIT - 1);
        } finally {
          await f.close();
        }
      }));

    it('sent while the gate decides: never forwarded, never answered, and not charged (3 of 3 left)', () =>
      withTally(['guarded'], async (tally) => {
        const f = await fresh();
        try {
          const cue = await tally.send(f, f.callText('cue', 'cue', { list: 'hold' }));
          assert.ok(cue.messages.some((m) => resultText(m) === 'cued'));
          const id = idOf('undecided');
          const call = start(f, tally, id, 'guarded', { path: 'undecided' });
          // The proxy is listing the tools to decide, and the server holds the answer.
          await eventually(async () => ((await f.upstreamLines()).some((l) => l.includes('"tools/list"') && l.includes('"intercept-')) ? true : undefined), 20_000);
          if (kind === 'http-2026') {
            call.close();
            await logged(f, /the client closed a response stream; cancelling the request/);
          } else {
            await cancel(f, tally, id);
          }
          await release(f, tally);
          await logged(f, /call cancelled by the client before it was forwarded/);
          const ran = await callsWith(f, '"undecided"');
          tally.leak(ran.length);
          assert.deepEqual(ran, [], 'the cancelled call never reached the server');
          await f.barrier();
          assert.equal(call.answered(), undefined, 'and was never answered');
          call.close();
          assert.equal(await quotaLeft(f, tally, 'guarded', 'undecided'), LIMIT);
        } finally {
          await f.close();
        }
      }));

    it('sent after the call was forwarded: the server is told, never answers, and the charge stands (2 of 3 left)', () =>
      withTally([], async (tally) => {
        const f = await fresh();
        try {
          const id = idOf('running');
          const call = start(f, tally, id, 'slow', { label: 'running' });
          const [forwarded] = await eventually(async () => {
            const calls = await callsWith(f, '"running"');
            return calls.length === 1 ? calls : undefined;
          }, 20_000);
          if (kind === 'http-2026') call.close();
          else await cancel(f, tally, id);
          // The server got the cancellation for the id it was sent (the proxy's own, in 2026-07-28).
          await eventually(async () => ((await f.upstreamLines()).some((l) => l.includes('notifications/cancelled') && l.includes(JSON.stringify(forwarded!.id))) ? true : undefined), 20_000);
          await release(f, tally);
          await f.barrier();
          assert.equal(call.answered(), undefined, 'a cancelled call gets no answer');
          call.close();
          assert.equal(await quotaLeft(f, tally, 'slow', 'running'), LIMIT - 1);
        } finally {
          await f.close();
        }
      }));

    it('sent after the server answered: changes nothing, the charge stands (2 of 3 left)', () =>
      withTally([], async (tally) => {
        const f = await fresh();
        try {
          const id = idOf('answered');
          const call = start(f, tally, id, 'slow', { label: 'answered' });
          await eventually(async () => ((await callsWith(f, '"answered"')).length === 1 ? true : undefined), 20_000);
          await release(f, tally);
          assert.equal(resultText(await call.answer(20_000)), 'slow answered finished');
          await cancel(f, tally, id);
          assert.equal(await quotaLeft(f, tally, 'slow', 'answered'), LIMIT - 1);
        } finally {
          await f.close();
        }
      }));
  });
}
