// The interceptor between two recording channels: what the client is told and what the
// upstream receives, for each kind of input, without any process or transport.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compile, type CompiledPolicy } from '../../src/engine/compile.js';
import { silentLogger } from '../../src/log.js';
import { parsePolicy } from '../../src/policy/load.js';
import { Interceptor } from '../../src/proxy/interceptor.js';
import { MemoryCounterStore } from '../../src/state/memory.js';
import type { Channel } from '../../src/transport/channel.js';
import type { JsonRpcId } from '../../src/jsonrpc/message.js';

/** A channel that keeps every line it would have written, and the request each relates to. */
class Recorder implements Channel {
  readonly lines: string[] = [];
  readonly related: (JsonRpcId | undefined)[] = [];
  send(message: unknown, related?: JsonRpcId): void {
    this.lines.push(JSON.stringify(message));
    this.related.push(related);
  }
  sendRaw(text: string, _message: unknown, related?: JsonRpcId): void {
    this.lines.push(text);
    this.related.push(related);
  }
  /** Every line written since the last take, parsed. */
  take(): unknown[] {
    return this.lines.splice(0).map((l) => JSON.parse(l) as unknown);
  }
  takeRaw(): string[] {
    return this.lines.splice(0);
  }
}

const POLICY = `version: "1"
default: allow
hide: [secret]
tools:
  blocked:
    rules:
      - name: never
        action: deny
        on_deny: "Blocked by policy"
  limited:
    rules:
      - name: twice
        rate_limit:
          max: 2
          window: 3600
`;

function policyOf(text: string): CompiledPolicy {
  const loaded = parsePolicy(text, 'policy.yaml');
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
  return compile(loaded.policy);
}

function setup(text = POLICY) {
  const client = new Recorder();
  const upstream = new Recorder();
  const interceptor = new Interceptor({
    client,
    upstream,
    policy: () => policyOf(text),
    store: new MemoryCounterStore(),
    sessionId: 'session-1',
    log: silentLogger,
  });
  const fromClient = (text: string) => interceptor.fromClient({ kind: 'message', value: JSON.parse(text), raw: text });
  const fromUpstream = (text: string) => interceptor.fromUpstream({ kind: 'message', value: JSON.parse(text), raw: text });
  return { client, upstream, interceptor, fromClient, fromUpstream };
}

/** Lets the gate's promise chain run to its end (the store is in memory: no real I/O). */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

const call = (id: unknown, name: string, args: unknown = {}) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

function denialText(m: unknown): string | undefined {
  const r = (m as { result?: { isError?: boolean; content?: Array<{ text?: string }> } }).result;
  return r?.isError ? r.content?.[0]?.text : undefined;
}

describe('Interceptor: the gate', () => {
  it('forwards an allowed call as the serialisation of what was evaluated', async () => {
    const { client, upstream, fromClient } = setup();
    const raw = '{"jsonrpc":"2.0", "id":1, "method":"tools/call", "params":{"name":"blocked","name":"echo","arguments":{"m":"\\u0078"}}}';
    fromClient(raw);
    await flush();
    assert.deepEqual(upstream.takeRaw(), ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"m":"x"}}}']);
    assert.deepEqual(client.take(), []);
  });

  it('answers a denied call itself and forwards nothing', async () => {
    const { client, upstream, fromClient } = setup();
    fromClient(call(2, 'blocked'));
    fromClient(call('s', 'secret'));
    await flush();
    assert.deepEqual(upstream.take(), []);
    const answers = client.take() as Array<{ id: unknown }>;
    assert.deepEqual(
      answers.map((a) => [a.id, denialText(a)]),
      [
        [2, '[INTERCEPT POLICY DENIED] Blocked by policy'],
        ['s', '[INTERCEPT POLICY DENIED] Tool "secret" is hidden by policy'],
      ],
    );
  });

  it('passes other requests and notifications through unchanged', async () => {
    const { client, upstream, fromClient } = setup();
    const lines = ['{"jsonrpc":"2.0","id":1,"method":"resources/list","params":{}}', '{"jsonrpc":"2.0","method":"notifications/initialized"}'];
    for (const l of lines) fromClient(l);
    await flush();
    assert.deepEqual(upstream.takeRaw(), lines);
    assert.deepEqual(client.take(), []);
  });

  const refusals: Array<[string, string, unknown, number]> = [
    ['malformed params', '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":5}}', 3, -32602],
    ['case-variant params', '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","Name":"blocked"}}', 4, -32602],
    ['1e400 in arguments', '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"n":1e400}}}', 5, -32602],
    ['an invalid envelope', '{"jsonrpc":"1.0","id":6,"method":"tools/call","params":{"name":"echo"}}', 6, -32600],
    ['a case-variant envelope', '{"jsonrpc":"2.0","id":7,"method":"ping","METHOD":"tools/call"}', 7, -32600],
  ];
  for (const [label, line, id, code] of refusals) {
    it(`refuses ${label} with ${code}`, async () => {
      const { client, upstream, fromClient } = setup();
      fromClient(line);
      await flush();
      assert.deepEqual(upstream.take(), []);
      const [answer] = client.take() as Array<{ id: unknown; error?: { code: number } }>;
      assert.deepEqual([answer?.id, answer?.error?.code], [id, code]);
    });
  }

  it('drops a tools/call notification without answering', async () => {
    const { client, upstream, fromClient } = setup();
    fromClient('{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo"}}');
    await flush();
    assert.deepEqual(upstream.take(), []);
    assert.deepEqual(client.take(), []);
  });

  it('answers a parse error with -32700 and an oversized message with -32600, both with id null', () => {
    const { client, upstream, interceptor } = setup();
    interceptor.fromClient({ kind: 'parse_error', detail: 'Unexpected token' });
    interceptor.fromClient({ kind: 'oversize', bytes: 2000, limit: 1024 });
    assert.deepEqual(upstream.take(), []);
    const answers = client.take() as Array<{ id: unknown; error: { code: number; message: string } }>;
    assert.deepEqual(
      answers.map((a) => [a.id, a.error.code]),
      [
        [null, -32700],
        [null, -32600],
      ],
    );
    assert.match(answers[1]!.error.message, /2000 bytes.*1024 bytes/);
  });
});

describe('Interceptor: batches', () => {
  const cases: Array<[string, string, unknown]> = [
    ['one error per request element, with its id', `[${call(1, 'blocked')},${call('b', 'echo')},{"jsonrpc":"2.0","method":"notifications/initialized"}]`, [[1, -32600], ['b', -32600]]],
    ['notifications only: one error with id null', '[{"jsonrpc":"2.0","method":"tools/call","params":{"name":"blocked"}}]', [null, -32600]],
    ['an empty batch: one error with id null', '[]', [null, -32600]],
    ['invalid elements only: one error with id null', '[1,"x",null]', [null, -32600]],
  ];
  for (const [label, line, want] of cases) {
    it(label, async () => {
      const { client, upstream, fromClient } = setup();
      fromClient(line);
      await flush();
      assert.deepEqual(upstream.take(), []);
      const answers = client.take();
      assert.equal(answers.length, 1, 'one line');
      const answer = answers[0] as Array<{ id: unknown; error: { code: number } }> | { id: unknown; error: { code: number } };
      const got = Array.isArray(answer) ? answer.map((a) => [a.id, a.error.code]) : [answer.id, answer.error.code];
      assert.deepEqual(got, want);
    });
  }
});

describe('Interceptor: ids', () => {
  it('refuses a request whose id is in flight, and frees the id once answered', async () => {
    const { client, upstream, fromClient, fromUpstream } = setup();
    fromClient(call(9, 'echo'));
    await flush();
    fromClient('{"jsonrpc":"2.0","id":9,"method":"ping"}');
    await flush();
    assert.equal(upstream.take().length, 1, 'only the first was forwarded');
    const [refusal] = client.take() as Array<{ id: unknown; error?: { code: number; message: string } }>;
    assert.deepEqual([refusal?.id, refusal?.error?.code], [9, -32600]);
    assert.match(refusal!.error!.message, /in flight/);

    fromUpstream('{"jsonrpc":"2.0","id":9,"result":{"content":[]}}');
    assert.deepEqual(client.takeRaw(), ['{"jsonrpc":"2.0","id":9,"result":{"content":[]}}']);
    fromClient('{"jsonrpc":"2.0","id":9,"method":"ping"}');
    await flush();
    assert.equal(upstream.take().length, 1, 'the id is free again');
  });

  it('treats 1 and "1" as different ids', async () => {
    const { client, upstream, fromClient } = setup();
    fromClient('{"jsonrpc":"2.0","id":1,"method":"ping"}');
    fromClient('{"jsonrpc":"2.0","id":"1","method":"ping"}');
    await flush();
    assert.equal(upstream.take().length, 2);
    assert.deepEqual(client.take(), []);
  });
});

describe('Interceptor: counters settle on the answer', () => {
  /** Sends a call to `limited`, answers it from the upstream with `answer`, returns whether it was forwarded. */
  async function round(s: ReturnType<typeof setup>, id: number, answer?: string): Promise<boolean> {
    s.fromClient(call(id, 'limited'));
    await flush();
    const forwarded = s.upstream.take().length === 1;
    if (forwarded && answer) s.fromUpstream(answer.replace('ID', String(id)));
    await flush();
    s.client.take();
    return forwarded;
  }
  const ok = '{"jsonrpc":"2.0","id":ID,"result":{"content":[]}}';
  const toolError = '{"jsonrpc":"2.0","id":ID,"result":{"content":[],"isError":true}}';
  const rpcError = '{"jsonrpc":"2.0","id":ID,"error":{"code":-32603,"message":"boom"}}';

  it('a successful call keeps its charge', async () => {
    const s = setup();
    assert.deepEqual([await round(s, 1, ok), await round(s, 2, ok), await round(s, 3, ok)], [true, true, false]);
  });

  it('a result with isError ran, so it keeps its charge', async () => {
    const s = setup();
    assert.deepEqual([await round(s, 1, toolError), await round(s, 2, toolError), await round(s, 3, ok)], [true, true, false]);
  });

  it('a JSON-RPC error from the upstream gives the charge back', async () => {
    const s = setup();
    assert.deepEqual([await round(s, 1, rpcError), await round(s, 2, rpcError), await round(s, 3, ok), await round(s, 4, ok), await round(s, 5, ok)], [true, true, true, true, false]);
  });

  it('a call still in flight counts against the limit', async () => {
    const s = setup();
    assert.deepEqual([await round(s, 1), await round(s, 2), await round(s, 3)], [true, true, false]);
  });
});

describe('Interceptor: tools/list and list_changed', () => {
  it('removes hidden tools from a tools/list result, keeping the other members', async () => {
    const { client, fromClient, fromUpstream } = setup();
    fromClient('{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}');
    await flush();
    fromUpstream('{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"secret"},{"name":"blocked"}],"nextCursor":"c2","cacheScope":"public","_meta":{"k":1}}}');
    assert.deepEqual(client.take(), [
      { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'echo' }, { name: 'blocked' }], nextCursor: 'c2', cacheScope: 'private', _meta: { k: 1 } } },
    ]);
  });

  it('relays a tools/list result with nothing hidden byte for byte', async () => {
    const { client, fromClient, fromUpstream } = setup();
    fromClient('{"jsonrpc":"2.0","id":1,"method":"tools/list"}');
    await flush();
    const raw = '{"jsonrpc":"2.0", "id":1, "result":{"tools":[{"name":"echo"}]}}';
    fromUpstream(raw);
    assert.deepEqual(client.takeRaw(), [raw]);
  });

  it('does not filter a result that answers some other request', async () => {
    const { client, fromClient, fromUpstream } = setup();
    fromClient('{"jsonrpc":"2.0","id":1,"method":"prompts/list"}');
    await flush();
    const raw = '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret"}]}}';
    fromUpstream(raw);
    assert.deepEqual(client.takeRaw(), [raw]);
  });

  for (const [label, capabilities, expected] of [
    ['declared tools.listChanged', { tools: { listChanged: true } }, 1],
    ['declared tools without listChanged', { tools: {} }, 0],
    ['declared no tools', {}, 0],
  ] as const) {
    it(`after a reload, notifies the client only when the upstream ${label}`, async () => {
      const { client, fromClient, fromUpstream, interceptor } = setup();
      fromClient('{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}');
      await flush();
      fromUpstream(JSON.stringify({ jsonrpc: '2.0', id: 0, result: { protocolVersion: '2025-06-18', capabilities, serverInfo: { name: 's', version: '1' } } }));
      client.take();
      interceptor.toolsChanged();
      const sent = client.take();
      assert.equal(sent.length, expected);
      if (expected) assert.deepEqual(sent[0], { jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    });
  }
});

describe('Interceptor: from the upstream', () => {
  it('relays server requests, notifications and unknown responses unchanged, and drops what is not JSON-RPC', () => {
    const { client, interceptor, fromUpstream } = setup();
    const lines = [
      '{"jsonrpc":"2.0","id":"srv-1","method":"sampling/createMessage","params":{}}',
      '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info"}}',
      '{"jsonrpc":"2.0","id":77,"result":{}}',
    ];
    for (const l of lines) fromUpstream(l);
    fromUpstream('{"not":"json-rpc"}');
    fromUpstream('[{"jsonrpc":"2.0","method":"x"}]');
    interceptor.fromUpstream({ kind: 'parse_error', detail: 'banner text' });
    assert.deepEqual(client.takeRaw(), lines);
  });

  it("passes the client's answers to server requests upstream", () => {
    const { upstream, fromClient } = setup();
    fromClient('{"jsonrpc":"2.0","id":"srv-1","result":{"roots":[]}}');
    assert.deepEqual(upstream.takeRaw(), ['{"jsonrpc":"2.0","id":"srv-1","result":{"roots":[]}}']);
  });
});

describe('which client request a server message belongs to', () => {
  it('progress notifications follow their token; other server messages the one request in flight', async () => {
    const { client, fromClient, fromUpstream } = setup();
    fromClient(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'prompts/get', params: { name: 'p', _meta: { progressToken: 'tok' } } }));
    fromClient(call(8, 'limited'));
    await flush();
    fromUpstream(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'tok', progress: 1 } }));
    // Two requests in flight: a sampling request cannot be tied to either.
    fromUpstream(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'sampling/createMessage', params: {} }));
    fromUpstream(JSON.stringify({ jsonrpc: '2.0', id: 7, result: { messages: [] } }));
    // Only the call is left in flight now.
    fromUpstream(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'elicitation/create', params: {} }));
    assert.deepEqual(client.related.slice(-4), [7, undefined, undefined, 8]);
  });

  it('a notification with no request in flight belongs to none', () => {
    const { client, fromUpstream } = setup();
    fromUpstream(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }));
    assert.deepEqual(client.related, [undefined]);
  });
});
