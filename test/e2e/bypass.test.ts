// The key property, against a real server: a call the policy denies never reaches the
// upstream, whatever the client sends. The upstream is the "everything" server behind a tee
// that records every line it receives, so each case checks both what the client was told and
// what the server actually got. Needs the build (dist/).
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { calledTool, errorCode, isDenial, isRecord, type Json } from '../support/messages.js';
import { addFigure } from '../support/figures.js';
import { readLogLines } from '../support/servers.js';
import { startTeeProxy, type RawProxy, type TeeSession } from '../support/raw-proxy.js';

const DENIED = 'get-tiny-image';
const HIDDEN = 'get-env';

const POLICY = `version: "1"
default: allow
hide:
  - ${HIDDEN}
tools:
  ${DENIED}:
    rules:
      - name: no images
        action: deny
        on_deny: "Images are not allowed"
  get-sum:
    rules:
      - name: small numbers
        conditions:
          - path: args.a
            op: lte
            value: 10
        on_deny: "a must be at most 10"
  get-annotated-message:
    rules:
      - name: approved by alice
        conditions:
          - path: args.approval.by
            op: eq
            value: alice
        on_deny: "Needs alice's approval"
  get-resource-links:
    rules:
      - name: needs a constructor argument
        conditions:
          - path: args.constructor
            op: exists
            value: true
        on_deny: "Needs a constructor argument"
`;

let tmp: TempDir;
let session: TeeSession;
let proxy: RawProxy;

/** The raw text of the lines the last `forwardedDuring` saw reach the upstream. */
let lastForwardedRaw: string[] = [];

/** What the current test sent (each distinct input once) and the denied calls that reached
 * the upstream, added to the suite's figures after each test. */
const tried = new Set<string>();
let leaked = 0;

/** Runs `act`, then a ping barrier; returns what reached the upstream meanwhile, parsed (the
 * barrier's own ping left out). What `act` writes is counted as tried. */
async function forwardedDuring(act: () => Promise<void> | void): Promise<unknown[]> {
  const mark = (await readLogLines(session.logFile)).length;
  const write = proxy.write;
  proxy.write = (data) => {
    tried.add(typeof data === 'string' ? data : data.toString('base64'));
    write.call(proxy, data);
  };
  try {
    await act();
  } finally {
    proxy.write = write;
  }
  const barrierId = await proxy.barrier();
  const barrier = JSON.stringify({ jsonrpc: '2.0', id: barrierId, method: 'ping' });
  lastForwardedRaw = (await readLogLines(session.logFile)).slice(mark).filter((l) => l !== barrier);
  // A line that is not JSON stays a string, so an assertion shows it as it was.
  const forwarded = lastForwardedRaw.map((l) => {
    try {
      return JSON.parse(l) as unknown;
    } catch {
      return l;
    }
  });
  leaked += forwarded.filter((l) => [DENIED, HIDDEN].includes(calledTool(l) ?? '')).length;
  return forwarded;
}

/** Sends one raw line and returns the answer with `id`, and what reached the upstream. */
async function sendAndAnswer(line: string, id: unknown): Promise<{ answer: Json; forwarded: unknown[] }> {
  let answer!: Json;
  const forwarded = await forwardedDuring(async () => {
    proxy.send(line);
    answer = await proxy.response(id);
  });
  return { answer, forwarded };
}

function assertRefused(answer: Json, code: number, id: unknown): void {
  assert.equal(errorCode(answer), code, `expected error ${code}, got ${JSON.stringify(answer)}`);
  assert.deepEqual(answer.id, id);
}

function assertDenied(answer: Json, id: unknown): void {
  assert.ok(isDenial(answer), `expected a policy denial, got ${JSON.stringify(answer)}`);
  assert.deepEqual(answer.id, id);
}

/** Asserts that an allowed call reached the upstream once, as exactly the serialisation of
 * what JSON.parse makes of what the client sent, and that the server really ran it. */
function assertForwardedAsEvaluated(forwarded: unknown[], sent: string, answer: Json): void {
  assert.equal(forwarded.length, 1, `expected exactly one forwarded line, got ${JSON.stringify(forwarded)}`);
  assert.equal(lastForwardedRaw[0], asEvaluated(sent));
  assert.ok(isRecord(answer.result) && !isDenial(answer), `expected the server's result, got ${JSON.stringify(answer)}`);
}

/** The line the upstream should receive for `text`: the serialisation of what JSON.parse
 * makes of it (duplicate members collapse to the last, escapes and whitespace are gone). */
function asEvaluated(text: string): string {
  return JSON.stringify(JSON.parse(text));
}

const call = (id: unknown, name: unknown, args: unknown = {}) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

describe('a denied call never reaches the upstream', { timeout: 120_000 }, () => {
  afterEach(() => {
    addFigure('bypass cases tried', tried.size);
    addFigure('denied calls forwarded', leaked);
    tried.clear();
    leaked = 0;
  });

  before(async () => {
    tmp = await makeTempDir();
    const policy = await writePolicy(tmp.path, POLICY);
    session = startTeeProxy(policy, join(tmp.path, 'upstream.log'), ['--max-message-size', '1KiB', '--log-level', 'debug']);
    proxy = session.proxy;
    await proxy.initialize();
    await proxy.barrier();
    proxy.drain();
  });

  after(async () => {
    if (proxy?.running) {
      const exit = await proxy.close();
      assert.equal(exit.code, 0, `the proxy should exit cleanly\n${proxy.stderr}`);
    }
    await tmp?.cleanup();
  });

  describe('controls', () => {
    it('an allowed call reaches the upstream exactly as sent, and a denied one does not', async () => {
      const allowed = call(1, 'echo', { message: 'hello' });
      const a = await sendAndAnswer(allowed, 1);
      assertForwardedAsEvaluated(a.forwarded, allowed, a.answer);

      const d = await sendAndAnswer(call(2, DENIED), 2);
      assertDenied(d.answer, 2);
      assert.match(JSON.stringify(d.answer), /Images are not allowed/);
      assert.deepEqual(d.forwarded, []);
    });
  });

  describe('batches', () => {
    it('refuses a batch holding a denied and an allowed call: one error per request, nothing upstream', async () => {
      const batch = `[${call(10, DENIED)},${call(11, 'echo', { message: 'in a batch' })}]`;
      let answer: unknown;
      const forwarded = await forwardedDuring(async () => {
        proxy.send(batch);
        answer = await proxy.waitFor((m) => Array.isArray(m), undefined, 'the batch answer');
      });
      assert.ok(Array.isArray(answer));
      assert.deepEqual(
        answer.map((r: Json) => [r.id, errorCode(r)]),
        [
          [10, -32600],
          [11, -32600],
        ],
      );
      assert.deepEqual(forwarded, []);
    });

    it('answers a batch of notifications only with one error whose id is null', async () => {
      const batch = JSON.stringify([
        { jsonrpc: '2.0', method: 'tools/call', params: { name: DENIED } },
        { jsonrpc: '2.0', method: 'notifications/initialized' },
      ]);
      let answer!: Json;
      const forwarded = await forwardedDuring(async () => {
        proxy.send(batch);
        answer = await proxy.response(null);
      });
      assertRefused(answer, -32600, null);
      assert.deepEqual(forwarded, []);
      assert.deepEqual(proxy.drain(), [], 'exactly one answer');
    });

    it('keeps serving after batches', async () => {
      const allowed = call(12, 'echo', { message: 'after the batch' });
      const a = await sendAndAnswer(allowed, 12);
      assertForwardedAsEvaluated(a.forwarded, allowed, a.answer);
    });
  });

  describe('tools/call as a notification', () => {
    for (const name of [DENIED, 'echo']) {
      it(`drops a tools/call of ${name} without an id: nothing upstream, no answer`, async () => {
        const forwarded = await forwardedDuring(() =>
          proxy.sendJson({ jsonrpc: '2.0', method: 'tools/call', params: { name, arguments: { message: 'x' } } }),
        );
        assert.deepEqual(forwarded, []);
        assert.deepEqual(proxy.drain(), []);
        assert.ok(proxy.running);
      });
    }
  });

  describe('malformed input', () => {
    const cases: Array<[string, string | Buffer]> = [
      ['truncated JSON', '{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"echo"'],
      ['a lone ]', ']'],
      ['a bare word', 'tools/call'],
      ['binary garbage', garbage()],
      ['a NUL byte before the message', '\u0000' + call(21, 'echo', { message: 'x' })],
      ['two messages on one line', call(22, 'echo', { message: 'a' }) + call(23, DENIED)],
    ];
    for (const [label, line] of cases) {
      it(`answers ${label} with -32700 and id null, forwards nothing, and keeps serving`, async () => {
        let answer!: Json;
        const forwarded = await forwardedDuring(async () => {
          proxy.write(Buffer.concat([Buffer.from(line), Buffer.from('\n')]));
          answer = await proxy.response(null);
        });
        assertRefused(answer, -32700, null);
        assert.deepEqual(forwarded, []);
        assert.deepEqual(proxy.drain(), []);

        const next = call(24, 'echo', { message: 'still here' });
        const a = await sendAndAnswer(next, 24);
        assertForwardedAsEvaluated(a.forwarded, next, a.answer);
      });
    }

    it('ignores empty and blank lines', async () => {
      const forwarded = await forwardedDuring(() => proxy.write('\n\n   \n\t\r\n'));
      assert.deepEqual(forwarded, []);
      assert.deepEqual(proxy.drain(), [], 'no answer to an empty line');
    });

    it('accepts \\r\\n line endings', async () => {
      const allowed = call(25, 'echo', { message: 'crlf' });
      let answer!: Json;
      const forwarded = await forwardedDuring(async () => {
        proxy.write(allowed + '\r\n');
        answer = await proxy.response(25);
      });
      assertForwardedAsEvaluated(forwarded, allowed, answer);

      const denied = await sendAndAnswer(call(26, DENIED) + '\r', 26);
      assertDenied(denied.answer, 26);
      assert.deepEqual(denied.forwarded, []);
    });

    it('accepts a message split across many writes', async () => {
      const allowed = call(27, 'echo', { message: 'in pieces ✓' });
      const bytes = Buffer.from(allowed + '\n');
      let answer!: Json;
      const forwarded = await forwardedDuring(async () => {
        for (let i = 0; i < bytes.length; i += 7) proxy.write(bytes.subarray(i, i + 7));
        answer = await proxy.response(27);
      });
      assertForwardedAsEvaluated(forwarded, allowed, answer);
    });
  });

  describe('message size', () => {
    it('refuses a message over --max-message-size with -32600, forwards nothing, and serves the next', async () => {
      const big = call(30, 'echo', { message: 'x'.repeat(2048) });
      let answer!: Json;
      const forwarded = await forwardedDuring(async () => {
        proxy.send(big);
        answer = await proxy.response(null);
      });
      assertRefused(answer, -32600, null);
      assert.match(JSON.stringify(answer), /1024/);
      assert.deepEqual(forwarded, []);

      const next = call(31, 'echo', { message: 'small again' });
      const a = await sendAndAnswer(next, 31);
      assertForwardedAsEvaluated(a.forwarded, next, a.answer);
    });

    it('a message just under the limit still passes', async () => {
      const base = call(32, 'echo', { message: '' });
      const fits = call(32, 'echo', { message: 'y'.repeat(1024 - Buffer.byteLength(base)) });
      assert.equal(Buffer.byteLength(fits), 1024);
      const a = await sendAndAnswer(fits, 32);
      assertForwardedAsEvaluated(a.forwarded, fits, a.answer);
    });

    it('survives a 20 MiB line sent in chunks: one refusal, nothing upstream, still serving', async () => {
      let answer!: Json;
      const forwarded = await forwardedDuring(async () => {
        proxy.write(`{"jsonrpc":"2.0","id":33,"method":"tools/call","params":{"name":"echo","arguments":{"message":"`);
        const chunk = Buffer.alloc(1024 * 1024, 'z');
        for (let i = 0; i < 20; i++) proxy.write(chunk);
        proxy.write('"}}}\n');
        answer = await proxy.response(null, 30_000);
      });
      assertRefused(answer, -32600, null);
      assert.deepEqual(forwarded, []);
      assert.deepEqual(proxy.drain(), [], 'one answer for one oversized line');

      const next = call(34, 'echo', { message: 'after the flood' });
      const a = await sendAndAnswer(next, 34);
      assertForwardedAsEvaluated(a.forwarded, next, a.answer);
    });
  });

  describe('duplicate keys', () => {
    it('evaluates what JSON.parse gives (the last name wins) and forwards exactly that', async () => {
      const line = `{"jsonrpc":"2.0","id":40,"method":"tools/call","params":{"name":"${DENIED}","name":"echo","arguments":{"message":"dup"}}}`;
      const { answer, forwarded } = await sendAndAnswer(line, 40);
      assertForwardedAsEvaluated(forwarded, line, answer);
      assert.equal(calledTool(forwarded[0]), 'echo');
      // The raw line the server read holds one name, the one that was evaluated.
      const raw = (await readLogLines(session.logFile)).filter((l) => l.includes('"dup"'));
      assert.equal(raw.length, 1);
      assert.equal(raw[0]!.match(/"name"/g)?.length, 1, raw[0]);
      assert.ok(!raw[0]!.includes(DENIED), raw[0]);
    });

    it('denies the reverse order, where the denied name comes last', async () => {
      const line = `{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"echo","name":"${DENIED}","arguments":{"message":"dup"}}}`;
      const { answer, forwarded } = await sendAndAnswer(line, 41);
      assertDenied(answer, 41);
      assert.deepEqual(forwarded, []);
    });

    it('duplicate method: the last wins, whichever way round', async () => {
      const toCall = `{"jsonrpc":"2.0","id":42,"method":"ping","method":"tools/call","params":{"name":"${DENIED}"}}`;
      const denied = await sendAndAnswer(toCall, 42);
      assertDenied(denied.answer, 42);
      assert.deepEqual(denied.forwarded, []);

      const toPing = `{"jsonrpc":"2.0","id":43,"method":"tools/call","method":"ping","params":{"name":"${DENIED}"}}`;
      const pinged = await sendAndAnswer(toPing, 43);
      assert.equal(pinged.forwarded.length, 1);
      assert.equal(lastForwardedRaw[0], asEvaluated(toPing));
      assert.equal(calledTool(pinged.forwarded[0]), undefined);
    });

    it('duplicate arguments: the value the policy checked is the value forwarded', async () => {
      const over = `{"jsonrpc":"2.0","id":44,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":1,"b":2,"a":999}}}`;
      const denied = await sendAndAnswer(over, 44);
      assertDenied(denied.answer, 44);
      assert.deepEqual(denied.forwarded, []);

      const under = `{"jsonrpc":"2.0","id":45,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":999,"b":2,"a":1}}}`;
      const allowed = await sendAndAnswer(under, 45);
      assertForwardedAsEvaluated(allowed.forwarded, under, allowed.answer);
      assert.match(JSON.stringify(allowed.answer.result), /\b3\b/);
    });
  });

  describe('keys that differ only in case (or by Unicode compatibility)', () => {
    const envelope: Array<[string, string, number]> = [
      ['"Method" beside method', `{"jsonrpc":"2.0","id":50,"method":"ping","Method":"tools/call","params":{"name":"${DENIED}"}}`, 50],
      ['"Method" alone', `{"jsonrpc":"2.0","id":51,"Method":"tools/call","params":{"name":"${DENIED}"}}`, 51],
      ['"PARAMS" beside params', `{"jsonrpc":"2.0","id":52,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}},"PARAMS":{"name":"${DENIED}"}}`, 52],
      ['"ID"', `{"jsonrpc":"2.0","id":53,"ID":54,"method":"tools/call","params":{"name":"${DENIED}"}}`, 53],
      ['"JsonRpc"', `{"jsonrpc":"2.0","JsonRpc":"2.0","id":55,"method":"tools/call","params":{"name":"${DENIED}"}}`, 55],
      ['the long s \\u017f in "paramſ"', `{"jsonrpc":"2.0","id":56,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}},"param\\u017f":{"name":"${DENIED}"}}`, 56],
    ];
    for (const [label, line, id] of envelope) {
      it(`refuses an envelope with ${label}: -32600, nothing upstream`, async () => {
        const { answer, forwarded } = await sendAndAnswer(line, id);
        assertRefused(answer, -32600, id);
        assert.deepEqual(forwarded, []);
      });
    }

    const params: Array<[string, string, number]> = [
      ['"Name" beside name', `{"jsonrpc":"2.0","id":60,"method":"tools/call","params":{"name":"echo","Name":"${DENIED}","arguments":{"message":"x"}}}`, 60],
      ['"NAME" before name', `{"jsonrpc":"2.0","id":61,"method":"tools/call","params":{"NAME":"${DENIED}","name":"echo","arguments":{"message":"x"}}}`, 61],
      ['"Arguments" beside arguments', `{"jsonrpc":"2.0","id":62,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":1,"b":2},"Arguments":{"a":999,"b":2}}}`, 62],
      ['arguments {"a":1,"A":999}', `{"jsonrpc":"2.0","id":63,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":1,"A":999,"b":2}}}`, 63],
      ['arguments {"amount":1,"AMOUNT":999}', `{"jsonrpc":"2.0","id":64,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x","amount":1,"AMOUNT":999}}}`, 64],
      ['the Kelvin sign \\u212a in an argument key', `{"jsonrpc":"2.0","id":65,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x","kind":"safe","\\u212Aind":"evil"}}}`, 65],
      ['case-folded keys nested in an argument', `{"jsonrpc":"2.0","id":66,"method":"tools/call","params":{"name":"get-annotated-message","arguments":{"messageType":"success","approval":{"by":"alice","By":"mallory"}}}}`, 66],
    ];
    for (const [label, line, id] of params) {
      it(`refuses tools/call params with ${label}: -32602, nothing upstream`, async () => {
        const { answer, forwarded } = await sendAndAnswer(line, id);
        assertRefused(answer, -32602, id);
        assert.deepEqual(forwarded, []);
      });
    }
  });

  describe('numbers and prototype keys', () => {
    for (const n of ['1e400', '-1e400']) {
      it(`refuses ${n} in the arguments (it would be evaluated as Infinity and forwarded as null)`, async () => {
        const line = `{"jsonrpc":"2.0","id":70,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":${n},"b":1}}}`;
        const { answer, forwarded } = await sendAndAnswer(line, 70);
        assertRefused(answer, -32602, 70);
        assert.deepEqual(forwarded, []);
      });
    }

    // Raw JSON text: a JavaScript object literal cannot hold a "__proto__" member.
    const protoCases: Array<[string, string]> = [
      ['__proto__ at the top', '{"messageType":"success","__proto__":{"approval":{"by":"alice"}}}'],
      ['__proto__ one level down', '{"messageType":"success","approval":{"__proto__":{"by":"alice"}}}'],
      ['constructor.prototype', '{"messageType":"success","constructor":{"prototype":{"approval":{"by":"alice"}}}}'],
      ['constructor one level down', '{"messageType":"success","approval":{"constructor":{"by":"alice"}}}'],
    ];
    for (const [label, args] of protoCases) {
      it(`${label} in the arguments does not satisfy a condition on args.approval.by`, async () => {
        const line = `{"jsonrpc":"2.0","id":71,"method":"tools/call","params":{"name":"get-annotated-message","arguments":${args}}}`;
        const { answer, forwarded } = await sendAndAnswer(line, 71);
        assertDenied(answer, 71);
        assert.match(JSON.stringify(answer), /alice's approval/);
        assert.deepEqual(forwarded, []);
      });
    }

    it('the real argument does satisfy it (control)', async () => {
      const line = call(72, 'get-annotated-message', { messageType: 'success', approval: { by: 'alice' } });
      const a = await sendAndAnswer(line, 72);
      assertForwardedAsEvaluated(a.forwarded, line, a.answer);
    });

    it('an inherited member name (args.constructor) resolves to nothing unless really sent', async () => {
      const missing = await sendAndAnswer(call(73, 'get-resource-links', { count: 1 }), 73);
      assertDenied(missing.answer, 73);
      assert.deepEqual(missing.forwarded, []);

      const sent = call(74, 'get-resource-links', { count: 1, constructor: 'yes' });
      const present = await sendAndAnswer(sent, 74);
      assertForwardedAsEvaluated(present.forwarded, sent, present.answer);
    });
  });

  describe('a hidden tool called directly', () => {
    const ids: Array<[string, string | number]> = [
      ['a number', 80],
      ['a string', 'call-81'],
      ['zero', 0],
      ['a negative number', -82],
      ['an empty string', ''],
      ['a fraction', 83.5],
    ];
    for (const [label, id] of ids) {
      it(`is denied under an id that is ${label}, with the id echoed`, async () => {
        const { answer, forwarded } = await sendAndAnswer(call(id, HIDDEN), id);
        assertDenied(answer, id);
        assert.match(JSON.stringify(answer), /hidden by policy/);
        assert.deepEqual(forwarded, []);
      });
    }

    it('is absent from tools/list although the server offers it', async () => {
      const list = await proxy.request('tools/list', {});
      const names = (isRecord(list.result) && Array.isArray(list.result.tools) ? list.result.tools : []).map((t: Json) => t.name);
      assert.ok(names.includes('echo'), JSON.stringify(names));
      assert.ok(names.includes(DENIED), 'denied but not hidden: still listed');
      assert.ok(!names.includes(HIDDEN), JSON.stringify(names));
    });
  });

  describe('ids', () => {
    it('refuses a request that re-uses the id of one in flight; the first still gets its own answer', async () => {
      const slow = JSON.stringify({
        jsonrpc: '2.0',
        id: 'busy',
        method: 'tools/call',
        params: { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 1 } },
      });
      const reuse = call('busy', 'echo', { message: 'same id' });
      let refusal!: Json;
      let first!: Json;
      const forwarded = await forwardedDuring(async () => {
        proxy.send(slow);
        proxy.send(reuse);
        refusal = await proxy.waitFor((m) => isRecord(m) && m.id === 'busy' && errorCode(m) !== undefined, undefined, 'the refusal');
        first = await proxy.response('busy');
      });
      assertRefused(refusal, -32600, 'busy');
      assert.match(JSON.stringify(refusal), /in flight/);
      assert.match(JSON.stringify(first.result), /Long running operation completed/);
      assert.deepEqual(forwarded, [JSON.parse(slow)], 'only the first reached the server');
    });

    it('keeps 1 and "1" apart', async () => {
      const a = await sendAndAnswer(call(1, 'echo', { message: 'number' }), 1);
      const b = await sendAndAnswer(call('1', 'echo', { message: 'string' }), '1');
      assert.match(JSON.stringify(a.answer), /Echo: number/);
      assert.match(JSON.stringify(b.answer), /Echo: string/);
    });
  });

  describe('invalid envelopes', () => {
    const cases: Array<[string, string, unknown]> = [
      ['jsonrpc missing', `{"id":90,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`, 90],
      ['jsonrpc "1.0"', `{"jsonrpc":"1.0","id":91,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`, 91],
      ['jsonrpc 2 (a number)', `{"jsonrpc":2,"id":92,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`, 92],
      ['id null', `{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`, null],
      ['id {}', `{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`, null],
      ['id true', `{"jsonrpc":"2.0","id":true,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`, null],
      ['method 5', `{"jsonrpc":"2.0","id":93,"method":5,"params":{"name":"echo","arguments":{"message":"x"}}}`, 93],
      ['method ""', `{"jsonrpc":"2.0","id":94,"method":"","params":{}}`, 94],
      ['params a string', `{"jsonrpc":"2.0","id":95,"method":"tools/call","params":"echo"}`, 95],
      ['a JSON string instead of an object', `"tools/call"`, null],
      ['no method, result or error', `{"jsonrpc":"2.0","id":96}`, 96],
    ];
    for (const [label, line, id] of cases) {
      it(`refuses ${label} with -32600, nothing upstream`, async () => {
        const { answer, forwarded } = await sendAndAnswer(line, id);
        assertRefused(answer, -32600, id);
        assert.deepEqual(forwarded, []);
        assert.deepEqual(proxy.drain(), []);
      });
    }

    const params: Array<[string, string, number]> = [
      ['params an array', `{"jsonrpc":"2.0","id":97,"method":"tools/call","params":["${DENIED}"]}`, 97],
      ['name missing', `{"jsonrpc":"2.0","id":98,"method":"tools/call","params":{"arguments":{}}}`, 98],
      ['name a list', `{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":["${DENIED}"]}}`, 99],
      ['arguments a list', `{"jsonrpc":"2.0","id":100,"method":"tools/call","params":{"name":"echo","arguments":["x"]}}`, 100],
    ];
    for (const [label, line, id] of params) {
      it(`refuses a tools/call with ${label} with -32602, nothing upstream`, async () => {
        const { answer, forwarded } = await sendAndAnswer(line, id);
        assertRefused(answer, -32602, id);
        assert.deepEqual(forwarded, []);
      });
    }

    it('a unicode-escaped method name is the same method: "\\u0074ools/call" is gated', async () => {
      const line = `{"jsonrpc":"2.0","id":101,"method":"\\u0074ools\\/call","params":{"name":"get-tiny-\\u0069mage"}}`;
      const { answer, forwarded } = await sendAndAnswer(line, 101);
      assertDenied(answer, 101);
      assert.deepEqual(forwarded, []);
    });
  });

  describe('fuzz', () => {
    it('never forwards a call to a denied or hidden tool, over a few hundred mutated messages', async () => {
      const rng = mulberry32(0x1badc0de);
      const targets = [DENIED, HIDDEN];
      let forwardedCount = 0;
      let refusedCount = 0;
      // The barrier proves the upstream received a line, not that it has answered it yet: the
      // answer to a forwarded request may arrive during a later iteration.
      const awaited = new Set<string>();
      for (let i = 1; i <= 400; i++) {
        const text = mutatedCall(rng, i, targets[i % 2]!);
        const context = `fuzz message #${i}: ${JSON.stringify(text)}`;
        const forwarded = await forwardedDuring(() => proxy.write(Buffer.from(text + '\n')));
        const answers = proxy.drain();

        for (const line of forwarded) {
          assert.ok(!targets.includes(calledTool(line) ?? ''), `forwarded a denied call! ${context}\nforwarded: ${JSON.stringify(line)}`);
          assert.ok(!targets.includes(caseInsensitiveCall(line) ?? ''), `forwarded a call a case-insensitive decoder reads as denied! ${context}`);
        }
        for (const line of forwarded) if (isRecord(line) && 'id' in line && 'method' in line) awaited.add(JSON.stringify(line.id));
        if (forwarded.length > 0) {
          forwardedCount++;
          if (!text.includes('\n')) {
            assert.equal(forwarded.length, 1, context);
            assert.equal(lastForwardedRaw[0], asEvaluated(text), `forwarded something other than what was evaluated: ${context}`);
          }
        } else {
          refusedCount++;
          for (const a of answers.flatMap((x) => (Array.isArray(x) ? x : [x]))) {
            const late = isRecord(a) && awaited.has(JSON.stringify(a.id));
            assert.ok(isDenial(a) || errorCode(a) !== undefined || late, `neither forwarded nor refused: ${context}\nanswer: ${JSON.stringify(a)}`);
          }
        }
      }
      // The generator must exercise both outcomes, or it proves little.
      assert.ok(forwardedCount >= 10, `only ${forwardedCount} mutations were forwarded`);
      assert.ok(refusedCount >= 100, `only ${refusedCount} mutations were refused`);
      assert.ok(proxy.running);
    });
  });
});

// ------------------------------------------------------------------ helpers

/** Bytes that are neither JSON nor UTF-8 (and hold no newline). */
function garbage(): Buffer {
  const rng = mulberry32(7);
  const bytes = Buffer.alloc(300);
  for (let i = 0; i < bytes.length; i++) {
    let b = Math.floor(rng() * 256);
    if (b === 0x0a) b = 0xff;
    bytes[i] = b;
  }
  bytes[0] = 0xc3; // a lone lead byte: invalid UTF-8 from the start
  bytes[1] = 0x28;
  return bytes;
}

/** The tool a decoder that matches member names case-insensitively (Go's encoding/json, last
 * match wins) would read as called by this message, if any. */
function caseInsensitiveCall(line: unknown): string | undefined {
  const fold = (k: string) => k.normalize('NFKC').toLowerCase();
  const member = (obj: Json, name: string): unknown => {
    let found: unknown;
    for (const [k, v] of Object.entries(obj)) if (fold(k) === name) found = v;
    return found;
  };
  if (!isRecord(line) || member(line, 'method') !== 'tools/call') return undefined;
  const params = member(line, 'params');
  if (!isRecord(params)) return undefined;
  const name = member(params, 'name');
  return typeof name === 'string' ? name : undefined;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same messages on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// A message as a tree that allows duplicate members and raw literals, so mutations can produce
// JSON that no JSON.stringify would.
type Node = { t: 'obj'; m: Array<[string, Node]> } | { t: 'arr'; v: Node[] } | { t: 'str'; v: string } | { t: 'lit'; v: string };

const str = (v: string): Node => ({ t: 'str', v });
const lit = (v: string): Node => ({ t: 'lit', v });
const obj = (...m: Array<[string, Node]>): Node => ({ t: 'obj', m });

function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

function mutatedCall(rng: () => number, n: number, target: string): string {
  const args = obj(['message', str('fuzz')]);
  const params = obj(['name', str(target)], ['arguments', args]);
  let msg: Node = obj(['jsonrpc', str('2.0')], ['id', lit(String(n))], ['method', str('tools/call')], ['params', params]);
  const objects = () => [msg, params, args].filter((o): o is Extract<Node, { t: 'obj' }> => o.t === 'obj');
  const count = 1 + Math.floor(rng() * 3);
  for (let k = 0; k < count; k++) {
    const o = pick(rng, objects());
    switch (Math.floor(rng() * 12)) {
      case 0: {
        // Change the case of one member name, or swap in a compatibility character.
        const entry = pick(rng, o.m);
        if (entry) entry[0] = recase(rng, entry[0]);
        break;
      }
      case 1:
        // Add a case variant or compatibility variant beside the real member.
        o.m.splice(Math.floor(rng() * (o.m.length + 1)), 0, [recase(rng, pick(rng, ['name', 'method', 'params', 'arguments', 'id'])), str(target)]);
        break;
      case 2:
        // A duplicate name, before or after the real one.
        if (params.t === 'obj') params.m.splice(rng() < 0.5 ? 0 : params.m.length, 0, ['name', str(pick(rng, ['echo', target, 'get-sum']))]);
        break;
      case 3:
        // A duplicate method.
        if (msg.t === 'obj') msg.m.splice(rng() < 0.5 ? 0 : msg.m.length, 0, ['method', str(pick(rng, ['ping', 'tools/call', 'tools/list']))]);
        break;
      case 4: {
        // Other types for id, name, params, arguments.
        const entry = pick(rng, o.m);
        if (entry) entry[1] = pick(rng, [lit('null'), lit('{}'), lit('[]'), lit('true'), lit('1.5'), lit('-0'), lit('1e400'), str(''), lit(`["${target}"]`), lit('0')]);
        break;
      }
      case 5: {
        // Extra members.
        const key = pick(rng, ['extra', '_meta', 'tool', 'toolName', 'name ', ' name', 'name\u0000', '__proto__', 'constructor', 'Name\u200b']);
        o.m.splice(Math.floor(rng() * (o.m.length + 1)), 0, [key, pick(rng, [str(target), obj(['name', str(target)]), lit('1')])]);
        break;
      }
      case 6: {
        // Nesting: move the params somewhere else.
        const where = Math.floor(rng() * 4);
        const m = msg.t === 'obj' ? msg.m : [];
        const i = m.findIndex(([key]) => key === 'params');
        if (i === -1) break;
        if (where === 0) m[i] = ['params', { t: 'arr', v: [params] }];
        else if (where === 1) m[i] = ['params', obj(['params', params])];
        else if (where === 2 && args.t === 'obj') args.m.push(['name', str(target)]);
        else m[i] = ['params', obj(['call', params])];
        break;
      }
      case 7: {
        // A different tool name that is not the target (a different tool) or is (escaped).
        const entry = params.t === 'obj' ? params.m.find(([key]) => key === 'name') : undefined;
        if (entry) entry[1] = str(pick(rng, [target.toUpperCase(), ` ${target}`, `${target} `, `${target}\u0000`, target, `${target}/`, target.replace('-', '\u2010')]));
        break;
      }
      case 8: {
        // Remove a member.
        const i = Math.floor(rng() * o.m.length);
        o.m.splice(i, 1);
        break;
      }
      case 9: {
        // Variants of jsonrpc and method values.
        const m = msg.t === 'obj' ? msg.m : [];
        const entry = m.find(([key]) => key === pick(rng, ['jsonrpc', 'method']));
        if (entry?.[0] === 'jsonrpc') entry[1] = pick(rng, [str('2.0 '), lit('2'), str('1.0'), str('2.0'), lit('2.0')]);
        else if (entry) entry[1] = pick(rng, [str('tools/call'), str('Tools/Call'), str('tools/call '), str('tools//call'), str('TOOLS/CALL'), str('tools/call\u0000')]);
        break;
      }
      case 10:
        // A batch around the message.
        msg = { t: 'arr', v: rng() < 0.5 ? [msg] : [msg, obj(['jsonrpc', str('2.0')], ['id', lit(String(n + 50_000))], ['method', str('ping')])] };
        break;
      default:
        // Only the spelling changes (escapes, whitespace), applied below.
        break;
    }
  }
  let text = serialise(rng, msg, rng() < 0.5 ? rng() * 0.6 : 0, rng() < 0.5 ? rng() * 0.5 : 0);
  if (rng() < 0.05) text = text.slice(0, Math.floor(rng() * text.length));
  return text;
}

const SPACE = [' ', '\t', '\r', '  ', ' \t '];

/** Writes the tree as JSON text, escaping some characters as \uXXXX (or \/) and putting
 * whitespace between some tokens. */
function serialise(rng: () => number, node: Node, escapeRate: number, spaceRate: number): string {
  const ws = () => (rng() < spaceRate ? (rng() < 0.02 ? '\n' : pick(rng, SPACE)) : '');
  const s = (v: string) => {
    let out = '"';
    for (const ch of v) {
      const code = ch.codePointAt(0)!;
      if (ch === '"' || ch === '\\') out += '\\' + ch;
      else if (code < 0x20 || (rng() < escapeRate && code <= 0xffff)) {
        const hex = code.toString(16).padStart(4, '0');
        out += '\\u' + (rng() < 0.5 ? hex.toUpperCase() : hex);
      } else if (ch === '/' && rng() < escapeRate) out += '\\/';
      else out += ch;
    }
    return out + '"';
  };
  const go = (n: Node): string => {
    switch (n.t) {
      case 'str':
        return s(n.v);
      case 'lit':
        return n.v;
      case 'arr':
        return ws() + '[' + ws() + n.v.map(go).join(ws() + ',' + ws()) + ws() + ']' + ws();
      case 'obj':
        return ws() + '{' + ws() + n.m.map(([k, v]) => s(k) + ws() + ':' + ws() + go(v)).join(ws() + ',' + ws()) + ws() + '}' + ws();
    }
  };
  return go(node);
}

function recase(rng: () => number, key: string): string {
  switch (Math.floor(rng() * 5)) {
    case 0:
      return key.toUpperCase();
    case 1:
      return key.charAt(0).toUpperCase() + key.slice(1);
    case 2:
      return [...key].map((c) => (rng() < 0.5 ? c.toUpperCase() : c)).join('');
    case 3:
      return key.replace(/k/i, '\u212A').replace(/s/, '\u017F');
    default:
      return key.replace(/i/, '\u0130').replace(/a/, '\uFF41');
  }
}
