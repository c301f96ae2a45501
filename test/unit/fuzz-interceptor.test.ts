// Property-based fuzzing of the interceptor between two recording channels, fed what a hostile
// client could send: calls to denied, hidden and look-alike tool names, ids of every JSON type
// (colliding ones too), arguments of any shape, duplicate keys in the raw text, method variants,
// batches, notifications and garbage. The upstream answers every request it receives. Whatever
// the input: nothing throws, no denied or hidden call reaches the upstream, the rate limit holds,
// what goes upstream is the serialisation of what was evaluated, and every request is answered
// exactly once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compile } from '../../src/engine/compile.js';
import { silentLogger } from '../../src/log.js';
import { parsePolicy } from '../../src/policy/load.js';
import { Interceptor } from '../../src/proxy/interceptor.js';
import { MemoryCounterStore } from '../../src/state/memory.js';
import { parseFrame, type Channel } from '../../src/transport/channel.js';
import { addFigure } from '../support/figures.js';
import { checkProperty } from '../support/fuzz.js';

const POLICY = `version: "1"
default: allow
hide: [secret]
tools:
  blocked:
    rules:
      - name: never
        action: deny
  limited:
    rules:
      - name: twice
        rate_limit: { max: 2, window: 3600 }
  checked:
    rules:
      - name: small
        action: allow
        conditions:
          - path: args.amount
            op: lte
            value: 10
`;
const loaded = parsePolicy(POLICY, 'policy.yaml');
if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
const policy = compile(loaded.policy);

/** Names a denied call must never reach the upstream under. */
const NEVER_FORWARDED = new Set(['blocked', 'secret']);
const LIMIT = 2;
const TOOLS = ['echo', 'limited', 'blocked', 'secret', 'checked'].map((name) => ({ name, inputSchema: { type: 'object' } }));

type Json = Record<string, unknown>;

/** The upstream: records what it receives and answers every request it is sent. */
class AnsweringUpstream implements Channel {
  readonly lines: string[] = [];
  answer?: (text: string) => void;
  send(message: unknown): void {
    this.receive(JSON.stringify(message));
  }
  sendRaw(text: string): void {
    this.receive(text);
  }
  private receive(text: string): void {
    this.lines.push(text);
    const msg = JSON.parse(text) as Json;
    if (typeof msg.method !== 'string' || !('id' in msg)) return;
    const result = msg.method === 'tools/list' ? { tools: TOOLS } : msg.method === 'tools/call' ? { content: [{ type: 'text', text: 'ran' }] } : {};
    const reply = JSON.stringify({ jsonrpc: '2.0', id: msg.id, result });
    setImmediate(() => this.answer?.(reply));
  }
}

class ClientRecorder implements Channel {
  readonly messages: Json[] = [];
  send(message: unknown): void {
    this.messages.push(JSON.parse(JSON.stringify(message)) as Json);
  }
  sendRaw(text: string): void {
    this.messages.push(JSON.parse(text) as Json);
  }
}

// ------------------------------------------------------------------------------ inputs

const toolName = fc.oneof(
  fc.constantFrom('echo', 'limited', 'blocked', 'secret', 'checked', 'Blocked', 'BLOCKED', 'blocked ', ' blocked', 'blocked\u200b', 'bl\u00adocked', 'secret\u00a0', 'blocked\u0000', 'ｂｌｏｃｋｅｄ', 'bloсked'),
  fc.string({ maxLength: 12 }),
);
const id = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -3, max: 12 }) },
  { weight: 3, arbitrary: fc.constantFrom('1', 'a', '', 'intercept-0-1', '__proto__', 'constructor') },
  { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.boolean(), fc.double(), fc.constant({}), fc.constant([1]), fc.constant(1.5)) },
);
const args = fc.oneof(
  { weight: 3, arbitrary: fc.record({ amount: fc.oneof(fc.integer({ min: -5, max: 50 }), fc.string({ maxLength: 4 }), fc.constant(null)) }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom({ __proto__: { amount: 1 } }, JSON.parse('{"__proto__":{"amount":1}}') as unknown, { constructor: { prototype: {} } }) },
);
const method = fc.oneof(
  { weight: 8, arbitrary: fc.constant('tools/call') },
  { weight: 2, arbitrary: fc.constantFrom('tools/list', 'ping', 'resources/list') },
  { weight: 2, arbitrary: fc.constantFrom('Tools/call', 'tools/call ', 'tools/call\u200b', '/tools/call', 'tools/CALL', 'tools／call') },
);

/** One frame of text as a client could send it. */
const frame: fc.Arbitrary<string> = fc.oneof(
  // A request, sometimes with extra members.
  { weight: 10, arbitrary: fc.record({ id, method, name: toolName, args, extra: fc.boolean() }).map((r) =>
      JSON.stringify({ jsonrpc: '2.0', id: r.id, method: r.method, params: { name: r.name, arguments: r.args, ...(r.extra && { _meta: { progressToken: 7 } }) } })) },
  // The same name twice: JSON.parse keeps the last; the first must not be what is forwarded.
  { weight: 3, arbitrary: fc.record({ id: fc.integer({ min: 0, max: 12 }), first: toolName, last: toolName }).map((r) =>
      `{"jsonrpc":"2.0","id":${r.id},"method":"tools/call","params":{"name":${JSON.stringify(r.first)},"arguments":{},"name":${JSON.stringify(r.last)}}}`) },
  // A method spelt twice, or a member name that case-folds onto one.
  { weight: 2, arbitrary: fc.record({ id: fc.integer({ min: 0, max: 12 }), name: toolName }).map((r) =>
      `{"jsonrpc":"2.0","id":${r.id},"method":"ping","method":"tools/call","params":{"name":${JSON.stringify(r.name)}},"Method":"ping"}`) },
  // A request without an id is a notification.
  { weight: 1, arbitrary: toolName.map((name) => JSON.stringify({ jsonrpc: '2.0', method: 'tools/call', params: { name, arguments: {} } })) },
  // A batch.
  { weight: 1, arbitrary: fc.array(fc.record({ id: fc.integer({ min: 0, max: 12 }), name: toolName }), { maxLength: 3 }).map((items) =>
      JSON.stringify(items.map((r) => ({ jsonrpc: '2.0', id: r.id, method: 'tools/call', params: { name: r.name, arguments: {} } })))) },
  // Anything at all.
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

// ------------------------------------------------------------------------------ the run

/** Lets every promise chain and scheduled answer run out. */
async function settle(upstream: AnsweringUpstream, client: ClientRecorder): Promise<void> {
  let quiet = 0;
  let seen = -1;
  while (quiet < 5) {
    await new Promise((r) => setImmediate(r));
    const now = upstream.lines.length + client.messages.length;
    quiet = now === seen ? quiet + 1 : 0;
    seen = now;
  }
}

interface Run {
  upstream: AnsweringUpstream;
  client: ClientRecorder;
  sent: string[];
}

async function run(frames: string[]): Promise<Run> {
  const client = new ClientRecorder();
  const upstream = new AnsweringUpstream();
  const interceptor = new Interceptor({ client, upstream, policy: () => policy, store: new MemoryCounterStore(), sessionId: 'fuzz', log: silentLogger });
  upstream.answer = (text) => interceptor.fromUpstream(parseFrame(text, 64));
  for (const text of frames) interceptor.fromClient(parseFrame(text, 64));
  await settle(upstream, client);
  return { upstream, client, sent: frames };
}

const idKey = (v: unknown): string | undefined => (typeof v === 'string' ? `s:${v}` : typeof v === 'number' ? `n:${v}` : undefined);

/** Requests the client sent (top-level objects with a method and a string or number id), per id. */
function requestsById(frames: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of frames) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      continue;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) continue;
    const m = v as Json;
    const key = idKey(m.id);
    if (key === undefined || !('method' in m)) continue;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

function forwardedCalls(upstream: AnsweringUpstream): { line: string; msg: Json }[] {
  return upstream.lines.map((line) => ({ line, msg: JSON.parse(line) as Json })).filter((f) => f.msg.method === 'tools/call');
}

describe('fuzzing the interceptor', () => {
  it('never forwards a denied or hidden call, never passes the limit, forwards what it evaluated, and answers every request once', async () => {
    let checked = 0;
    await checkProperty(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 25 }), async (frames) => {
        const { upstream, client } = await run(frames);
        const calls = forwardedCalls(upstream);
        const leaked = calls.filter((c) => NEVER_FORWARDED.has(String((c.msg.params as Json | undefined)?.name)));
        addFigure('denied calls forwarded', leaked.length);
        assert.deepEqual(leaked.map((c) => c.line), [], 'a denied or hidden call reached the upstream');
        assert.ok(calls.filter((c) => (c.msg.params as Json).name === 'limited').length <= LIMIT, 'the rate limit was passed');
        for (const c of calls) {
          const params = c.msg.params as Json;
          if (params.name === 'checked') {
            const amount = (params.arguments as Json | undefined)?.amount;
            assert.ok(typeof amount === 'number' && amount <= 10, `a call failing its condition was forwarded: ${c.line}`);
          }
          assert.equal(c.line, JSON.stringify(c.msg), 'what went upstream is not the serialisation of one parsed object');
        }
        // Every request answered exactly once (no cancellations are sent here).
        const answers = new Map<string, number>();
        for (const m of client.messages) {
          const key = idKey(m.id);
          if (key !== undefined && ('result' in m || 'error' in m)) answers.set(key, (answers.get(key) ?? 0) + 1);
        }
        const unanswered: string[] = [];
        for (const [key, count] of requestsById(frames)) if ((answers.get(key) ?? 0) !== count) unanswered.push(`${key}: ${count} sent, ${answers.get(key) ?? 0} answered`);
        addFigure('requests unanswered', unanswered.length);
        assert.deepEqual(unanswered, [], 'a request was not answered exactly once');
        checked++;
      }),
      300,
    );
    assert.ok(checked > 0);
  });

  it('survives cancellations racing the gate and the answer: no throw, no denied call forwarded', async () => {
    const withCancel = fc.oneof(
      { weight: 4, arbitrary: frame },
      { weight: 2, arbitrary: fc.record({ id, reason: fc.option(fc.string({ maxLength: 5 })) }).map((r) =>
          JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: r.id, reason: r.reason } })) },
    );
    await checkProperty(
      fc.asyncProperty(fc.array(withCancel, { minLength: 1, maxLength: 25 }), async (frames) => {
        const { upstream } = await run(frames);
        const leaked = forwardedCalls(upstream).filter((c) => NEVER_FORWARDED.has(String((c.msg.params as Json | undefined)?.name)));
        addFigure('denied calls forwarded', leaked.length);
        assert.equal(leaked.length, 0);
      }),
      200,
    );
  });
});
