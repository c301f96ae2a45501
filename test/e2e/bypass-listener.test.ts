// The bypass corpus (test/e2e/bypass.test.ts) through the real CLI on stdio and on the HTTP
// listener, in a 2025 session and as 2026-07-28 stateless requests: batches, notifications,
// duplicate and case-variant keys, ids of every JSON type, prototype member names in
// arguments, answers to requests never sent (from the client, and from a server that
// misbehaves on cue), calls before initialize, sizes around --max-message-size, NUL bytes, a
// BOM, CRLF and two messages in one. Every server sits behind the tee, so each case checks
// what the server really received; on stdio only what bypass.test.ts does not already send.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { denialOf, errorOf, isDenial, isRecord, resultText, type Json } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { eventually } from '../support/wait.js';
import { asHttp, asStdio, MODERN_META, openFront, readsAsCallTo, rogueServer, withTally, type Front, type FrontKind, type Reply, type Tally } from '../support/bypass.js';

const TIMEOUT = { timeout: 180_000 };
const KINDS: FrontKind[] = ['stdio', 'http', 'http-2026'];
const MiB = 1024 * 1024;
const LIMIT_FLAGS = ['--max-message-size', '6MiB'];

/** The tools of each front's server that the policy below names: server-everything for 2025,
 * the v2-SDK fixture (with its `slow` tool) for 2026-07-28. */
const TOOLS: Record<FrontKind, { denied: string; hidden: string; checked: string; proto: string; slow: string; slowArgs: Json }> = {
  stdio: { denied: 'get-tiny-image', hidden: 'get-env', checked: 'get-sum', proto: 'get-resource-reference', slow: 'trigger-long-running-operation', slowArgs: { duration: 3, steps: 1 } },
  http: { denied: 'get-tiny-image', hidden: 'get-env', checked: 'get-sum', proto: 'get-resource-reference', slow: 'trigger-long-running-operation', slowArgs: { duration: 3, steps: 1 } },
  'http-2026': { denied: 'delete_all', hidden: 'secret_admin', checked: 'add', proto: 'seen', slow: 'slow', slowArgs: { label: 'held' } },
};

const protoRules = `    rules:
      - name: a real __proto__ member
        conditions:
          - { path: args.__proto__.ok, op: eq, value: true }
        on_deny: "Needs __proto__.ok"
      - name: a real constructor member
        conditions:
          - { path: args.constructor.name, op: eq, value: Object }
        on_deny: "Needs constructor.name"`;
const checkedRules = `    rules:
      - name: small numbers
        conditions:
          - { path: args.a, op: lte, value: 10 }
        on_deny: "a must be at most 10"`;

const POLICY = `version: "1"
default: allow
hide:
  - get-env
  - secret_admin
tools:
  get-tiny-image:
    rules:
      - name: no images
        action: deny
        on_deny: "Images are not allowed"
  delete_all:
    rules:
      - name: never delete
        action: deny
        on_deny: "Deleting everything is not allowed"
  get-sum:
${checkedRules}
  add:
${checkedRules}
  get-resource-reference:
${protoRules}
  seen:
${protoRules}
  get-structured-content:
    rules:
      - name: a location
        validate: { required_args: true }
  echo:
    rules:
      - name: no __proto__ argument
        conditions:
          - { path: args.__proto__, op: exists, value: false }
        on_deny: "No __proto__ argument"
      - name: no constructor argument
        conditions:
          - { path: args.constructor, op: exists, value: false }
        on_deny: "No constructor argument"
`;

let dir: TempDir;
let policyFile: string;
before(async () => {
  dir = await makeTempDir('intercept-bypass-listener-');
  policyFile = await writePolicy(dir.path, POLICY);
});
after(async () => {
  await dir?.cleanup();
});

// ------------------------------------------------------------------------------ assertions

/** The answers among what came back (messages with an id and no method). */
function answers(reply: Reply): Json[] {
  return reply.messages.filter((m) => isRecord(m) && 'id' in m && !('method' in m));
}

function onlyAnswer(reply: Reply, id: unknown): Json {
  const all = answers(reply);
  assert.equal(all.length, 1, `exactly one answer: ${JSON.stringify(reply.messages).slice(0, 600)}`);
  assert.deepEqual(all[0]!.id, id, JSON.stringify(all[0]).slice(0, 300));
  return all[0]!;
}

function assertDenial(tally: Tally, reply: Reply, id: unknown, message?: RegExp): void {
  const answer = onlyAnswer(reply, id);
  assert.ok(isDenial(answer), `expected a denial, got ${JSON.stringify(answer).slice(0, 400)}`);
  if (message) assert.match(denialOf(answer.result)?.message ?? '', message);
  tally.nothingForwarded(reply, JSON.stringify(answer).slice(0, 200));
}

/** Refused by the proxy itself, nothing forwarded: on stdio one JSON-RPC error (`id`, null by
 * default); over HTTP `status` with the error in the body (id null for a transport refusal). */
function assertRefused(tally: Tally, front: Front, reply: Reply, expect: { code: number; id?: unknown; status?: number; message?: RegExp; context?: string }): void {
  const what = `${front.label}${expect.context ? `, ${expect.context}` : ''}`;
  tally.nothingForwarded(reply, what);
  if (front.kind !== 'stdio') assert.equal(reply.status, expect.status ?? 400, `${what}: ${JSON.stringify(reply.messages).slice(0, 400)}`);
  assert.equal(reply.messages.length, 1, `${what}: ${JSON.stringify(reply.messages).slice(0, 600)}`);
  const error = errorOf(reply.messages[0]);
  assert.equal(error?.code, expect.code, `${what}: ${JSON.stringify(reply.messages[0]).slice(0, 400)}`);
  if (expect.message) assert.match(error!.message, expect.message, what);
  assert.deepEqual(reply.messages[0]!.id, front.kind === 'stdio' || expect.status === 200 ? (expect.id ?? null) : null, what);
}

/** Accepted without an answer (stdio: nothing comes back; HTTP: 202 and an empty body). */
function assertNoAnswer(front: Front, reply: Reply): void {
  if (front.kind !== 'stdio') assert.equal(reply.status, 202, JSON.stringify(reply.messages));
  assert.deepEqual(reply.messages, []);
}

/** Forwarded once, and what the server read is the serialisation of what was evaluated
 * (2026-07-28: under an id of the proxy's, so the params are compared). */
function assertForwardedAsEvaluated(front: Front, reply: Reply, text: string): void {
  const calls = reply.forwarded.filter((l) => isRecord(l) && typeof l.method === 'string');
  assert.equal(calls.length, 1, `one message reached the server: ${JSON.stringify(reply.forwarded).slice(0, 400)}`);
  const evaluated = JSON.parse(text) as Json;
  if (front.era === '2026') {
    assert.deepEqual((calls[0] as Json).params, evaluated.params);
    const raw = reply.forwardedRaw[reply.forwarded.indexOf(calls[0])]!;
    assert.equal(raw, JSON.stringify({ ...evaluated, id: (calls[0] as Json).id }), 'the serialisation of the object evaluated');
  } else {
    assert.equal(reply.forwardedRaw[reply.forwarded.indexOf(calls[0])], JSON.stringify(evaluated));
  }
}

/** `members` (raw JSON text) put first in the message `text`. */
const withMembers = (text: string, members: string) => `{${members},${text.slice(1)}`;

// ------------------------------------------------------------------------------ the corpus

for (const kind of KINDS) {
  const T = TOOLS[kind];
  const DENIED = [T.denied, T.hidden];
  describe(`the corpus on ${kind}`, TIMEOUT, () => {
    let front: Front;
    let nextId = 1000;
    const id = () => nextId++;
    before(async () => {
      const server = kind === 'http-2026' ? { ...servers.modern(), args: [...servers.modern().args, '--with-slow'] } : undefined;
      front = await openFront(kind, policyFile, dir.file(`corpus-${kind}.log`), { flags: LIMIT_FLAGS, server });
    });
    after(async () => {
      await front?.close();
    });

    describe('batches', () => {
      it('refuses every batch whole: one error per request on stdio, 400 over HTTP; nothing reaches the server', () =>
        withTally(DENIED, async (tally) => {
          const denied = () => front.callText(id(), T.denied);
          const batches: Array<[string, string]> = [
            ['one denied call', `[${denied()}]`],
            ['an empty batch', '[]'],
            ['a batch inside a batch', `[[${denied()}]]`],
            ['a cancellation and a denied call', `[${front.requestText(undefined, 'notifications/cancelled', { requestId: 1 })},${denied()}]`],
            ['a batch with whitespace around it', ` \t[${denied()}] `],
          ];
          // stdio: the denied-and-allowed and the notifications-only batches are in bypass.test.ts.
          if (kind !== 'stdio') batches.push(['a denied and an allowed call', `[${denied()},${front.callText(id(), 'echo', { message: 'in a batch' })}]`]);
          for (const [what, text] of batches) {
            const reply = await tally.send(front, text);
            if (kind !== 'stdio') {
              assertRefused(tally, front, reply, { code: -32600, message: /batches are not supported/, context: what });
              continue;
            }
            tally.nothingForwarded(reply, what);
            const parsed = JSON.parse(text) as unknown[];
            const requests = parsed.filter((m) => isRecord(m) && 'id' in m);
            const [answer] = reply.messages as unknown[];
            if (requests.length === 0) assert.equal(errorOf(answer as Json)?.code, -32600, what);
            else assert.deepEqual((answer as Json[]).map((a) => [a.id, errorOf(a)?.code]), requests.map((r) => [(r as Json).id, -32600]), what);
          }
        }));
    });

    describe('notifications', () => {
      // On stdio this is in bypass.test.ts.
      if (kind !== 'stdio')
        it('drops a tools/call without an id, denied or allowed: nothing reaches the server, nothing is answered', () =>
          withTally(DENIED, async (tally) => {
            for (const name of [T.denied, 'echo']) {
              const reply = await tally.send(front, front.callText(undefined, name, { message: 'no id' }));
              tally.nothingForwarded(reply, name);
              assertNoAnswer(front, reply);
            }
          }));

      it('refuses a tools/call whose only id is spelt "ID" (an ambiguous member), answering with id null', () =>
        withTally(DENIED, async (tally) => {
          const text = withMembers(front.callText(undefined, T.denied), '"ID":9');
          assertRefused(tally, front, await tally.send(front, text), { code: -32600, message: /"ID" is ambiguous/ });
        }));

      it('passes a notification whose params hold a call on as that notification, and a cancellation of nothing as it is', () =>
        withTally(DENIED, async (tally) => {
          const texts = [
            front.requestText(undefined, 'notifications/message', { level: 'info', data: { method: 'tools/call', params: { name: T.denied } } }),
            front.requestText(undefined, 'notifications/cancelled', { requestId: 'never-sent', reason: 'nothing' }),
          ];
          for (const text of texts) {
            const reply = await tally.send(front, text);
            assertNoAnswer(front, reply);
            assert.deepEqual(reply.forwarded, [JSON.parse(text)], 'the server got the notification as it was evaluated');
          }
        }));
    });

    // On stdio these are in bypass.test.ts.
    if (kind !== 'stdio')
      describe('duplicate and case-variant keys', () => {
        const call = (idText: string, methodText: string, params: string) => front.rawRequest(idText, methodText, params);

        it('evaluates the last of duplicate names, methods and arguments, and forwards exactly that', () =>
          withTally(DENIED, async (tally) => {
            const a = id();
            const last = call(String(a), '"tools/call"', `{"name":"${T.denied}","name":"echo","arguments":{"message":"dup"}}`);
            const allowed = await tally.send(front, last);
            assertForwardedAsEvaluated(front, allowed, last);
            assert.equal(allowed.forwardedRaw[0]!.match(/"name":"echo"/g)?.length, 1, allowed.forwardedRaw[0]);
            assert.ok(!allowed.forwardedRaw[0]!.includes(T.denied), 'the line the server read holds the evaluated name only');
            assert.match(resultText(onlyAnswer(allowed, a)) ?? '', /Echo: dup/);

            const b = id();
            assertDenial(tally, await tally.send(front, call(String(b), '"tools/call"', `{"name":"echo","name":"${T.denied}","arguments":{}}`)), b);
            const c = id();
            assertDenial(tally, await tally.send(front, call(String(c), '"ping","method":"tools/call"', `{"name":"${T.denied}"}`)), c);

            const d = id();
            const toPing = call(String(d), '"tools/call","method":"ping"', `{"name":"${T.denied}"}`);
            const pinged = await tally.send(front, toPing);
            assertForwardedAsEvaluated(front, pinged, toPing);
            assert.equal((pinged.forwarded[0] as Json).method, 'ping');

            const e = id();
            assertDenial(tally, await tally.send(front, call(String(e), '"tools/call"', `{"name":"${T.checked}","arguments":{"a":1,"b":2,"a":999}}`)), e, /at most 10/);
            const f = id();
            const under = call(String(f), '"tools/call"', `{"name":"${T.checked}","arguments":{"a":999,"b":2,"a":1}}`);
            const summed = await tally.send(front, under);
            assertForwardedAsEvaluated(front, summed, under);
            assert.match(resultText(onlyAnswer(summed, f)) ?? '', /\b3\b/);
          }));

        it('refuses envelope members that differ from JSON-RPC ones only in case or Unicode form (-32600)', () =>
          withTally(DENIED, async (tally) => {
            const denied = (n: number) => front.callText(n, T.denied);
            const cases: Array<[string, number, string]> = [];
            const add = (what: string, build: (n: number) => string) => {
              const n = id();
              cases.push([what, n, build(n)]);
            };
            add('"Method" beside method', (n) => front.rawRequest(String(n), `"ping","Method":"tools/call"`, `{"name":"${T.denied}"}`));
            add('"PARAMS" beside params', (n) => withMembers(front.callText(n, 'echo', { message: 'x' }), `"PARAMS":{"name":"${T.denied}"}`));
            add('"ID" beside id', (n) => withMembers(denied(n), '"ID":54'));
            add('"JsonRpc" beside jsonrpc', (n) => withMembers(denied(n), '"JsonRpc":"2.0"'));
            add('the long s in "paramſ"', (n) => withMembers(front.callText(n, 'echo', { message: 'x' }), `"param\\u017f":{"name":"${T.denied}"}`));
            for (const [what, n, text] of cases) {
              assertRefused(tally, front, await tally.send(front, text), { code: -32600, id: n, status: 200, message: /is ambiguous/, context: what });
            }
            // "Method" alone leaves no method: not a request, so there is nothing to answer. A
            // 2025 session takes it like an answer (202, never forwarded); a 2026-07-28 client is
            // told that a stateless message must be a request or a notification.
            const n = id();
            const alone = `{"jsonrpc":"2.0","id":${n},"Method":"tools/call","params":${JSON.stringify(JSON.parse(denied(n)).params)}}`;
            const reply = await tally.send(front, alone);
            if (kind === 'http') {
              tally.nothingForwarded(reply, '"Method" alone');
              assertNoAnswer(front, reply);
            } else assertRefused(tally, front, reply, { code: -32600, message: /must be a request or a notification/ });
          }));

        it('refuses tools/call params and argument keys that differ only in case or Unicode form (-32602)', () =>
          withTally(DENIED, async (tally) => {
            const params = [
              `{"name":"echo","Name":"${T.denied}","arguments":{"message":"x"}}`,
              `{"NAME":"${T.denied}","name":"echo","arguments":{"message":"x"}}`,
              `{"name":"${T.checked}","arguments":{"a":1,"b":2},"Arguments":{"a":999,"b":2}}`,
              `{"name":"${T.checked}","arguments":{"a":1,"A":999,"b":2}}`,
              `{"name":"echo","arguments":{"message":"x","kind":"safe","\\u212Aind":"evil"}}`,
              `{"name":"echo","arguments":{"message":"x","nested":{"by":"alice","By":"mallory"}}}`,
            ];
            for (const p of params) {
              const n = id();
              assertRefused(tally, front, await tally.send(front, front.rawRequest(String(n), '"tools/call"', p)), { code: -32602, id: n, status: 200 });
            }
          }));

        if (kind === 'http-2026') {
          it('a duplicate _meta that drops the era leaves the headers naming one the body does not (400, -32020); the last _meta counts', () =>
            withTally(DENIED, async (tally) => {
              const n = id();
              const dropped = front.rawRequest(String(n), '"tools/call"', `{"name":"${T.denied}","_meta":{}}`);
              const reply = await tally.send(front, dropped, { headers: { 'MCP-Protocol-Version': '2026-07-28' } });
              tally.nothingForwarded(reply, 'duplicate _meta');
              assert.equal(reply.status, 400);
              assert.equal(errorOf(reply.messages[0])?.code, -32020);
              const m = id();
              const again = front.rawRequest(String(m), '"tools/call"', `{"name":"${T.denied}","_meta":{},"_meta":${JSON.stringify(MODERN_META)}}`);
              assertDenial(tally, await tally.send(front, again), m);
            }));
        }
      });

    describe('ids', () => {
      // Raw id texts; each is answered with the id JSON.parse makes of it, serialised again
      // (1e3 is 1000, -0 is 0, 9007199254740993 is 9007199254740992).
      const answeredAs = (idText: string) => JSON.parse(JSON.stringify(JSON.parse(idText))) as unknown;
      const VALID: string[] = ['7', '0', '-1', '1.5', '1e3', '-0', '9007199254740993', '1e308', '""', '"x"', '"ид"', `"${'a'.repeat(10_000)}"`, '"__proto__"', '"constructor"'];
      const INVALID: string[] = ['null', 'true', 'false', '{}', '[]', '[1]', '1e400'];

      it('answers a denied call under every valid JSON id type with the id as parsed, and refuses the others with id null', () =>
        withTally(DENIED, async (tally) => {
          for (const idText of VALID) {
            const reply = await tally.send(front, front.rawRequest(idText, '"tools/call"', `{"name":"${T.denied}","arguments":{}}`));
            assertDenial(tally, reply, answeredAs(idText));
          }
          for (const idText of INVALID) {
            const reply = await tally.send(front, front.rawRequest(idText, '"tools/call"', `{"name":"${T.denied}","arguments":{}}`));
            assertRefused(tally, front, reply, { code: -32600 });
          }
        }));

      it('forwards an allowed call under odd valid ids and answers it with the client’s id as parsed', () =>
        withTally(DENIED, async (tally) => {
          for (const idText of ['"e-1"', '-0', '1e3', '"ид"', '""']) {
            const text = front.rawRequest(idText, '"tools/call"', '{"name":"echo","arguments":{"message":"odd id"}}');
            const reply = await tally.send(front, text);
            assertForwardedAsEvaluated(front, reply, text);
            assert.match(resultText(onlyAnswer(reply, answeredAs(idText))) ?? '', /odd id/);
          }
        }));

      // JSON-RPC allows a fraction; MCP ids are strings or integers. The proxy passes 2.5 on
      // as it is; server-everything (the v1 SDK) drops such a request unanswered, and the
      // proxy makes no answer up. A 2026-07-28 call goes upstream under an id of the proxy's.
      const fraction = kind === 'http-2026' ? 'answers an allowed call under a fractional id' : 'forwards an allowed call under a fractional id as it is, which this server drops unanswered';
      it(fraction, () =>
        withTally(DENIED, async (tally) => {
          const text = front.rawRequest('2.5', '"tools/call"', '{"name":"echo","arguments":{"message":"a fraction"}}');
          if (kind === 'http-2026') {
            const reply = await tally.send(front, text);
            assertForwardedAsEvaluated(front, reply, text);
            assert.match(resultText(onlyAnswer(reply, 2.5)) ?? '', /a fraction/);
            return;
          }
          tally.input(text);
          const mark = await front.mark();
          if (kind === 'stdio') {
            const reply = await front.send(text, { expect: [] });
            assertForwardedAsEvaluated(front, reply, text);
            assert.deepEqual(reply.messages, [], 'no answer came back before the barrier');
            return;
          }
          const abort = new AbortController();
          const stream = await asHttp(front).open(text, {}, abort.signal);
          const seen = await front.forwardedSince(mark);
          assertForwardedAsEvaluated(front, { messages: [], ...seen }, text);
          abort.abort();
          assert.deepEqual((await stream.rest()).filter((m) => 'id' in m), []);
        }));

      it('answers an id reused after its answer afresh each time: allowed, denied, allowed', () =>
        withTally(DENIED, async (tally) => {
          const n = id();
          const first = await tally.send(front, front.callText(n, 'echo', { message: 'first' }));
          assert.match(resultText(onlyAnswer(first, n)) ?? '', /first/);
          assertDenial(tally, await tally.send(front, front.callText(n, T.denied)), n);
          const third = await tally.send(front, front.callText(n, 'echo', { message: 'third' }));
          assert.match(resultText(onlyAnswer(third, n)) ?? '', /third/);
        }));

      const collide = kind === 'http-2026' ? 'keeps two requests with the same id apart (each POST has its own stream; the proxy numbers them upstream)' : 'refuses an id that parses to one in flight (1.0, 1e0 and 10e-1 are 1; -0 is 0); "1" is another id';
      it(collide, () =>
        withTally(DENIED, async (tally) => {
          for (const [held, same] of [
            ['1', ['1.0', '1e0', '10e-1']],
            ['0', ['-0']],
          ] as const) {
            const slow = front.rawRequest(held, '"tools/call"', JSON.stringify({ name: T.slow, arguments: T.slowArgs }));
            tally.input(slow);
            if (kind === 'stdio') {
              const proxy = asStdio(front);
              proxy.send(slow);
              await front.barrier();
              for (const idText of same) {
                const reply = await tally.send(front, front.rawRequest(idText, '"tools/call"', '{"name":"echo","arguments":{"message":"same id"}}'), { expect: [Number(held)] });
                assertRefused(tally, front, reply, { code: -32600, id: Number(held), message: /already used by a request in flight/ });
              }
              const other = await tally.send(front, front.rawRequest(`"${held}"`, '"tools/call"', '{"name":"echo","arguments":{"message":"string id"}}'));
              assert.match(resultText(onlyAnswer(other, held)) ?? '', /string id/);
              const done = await proxy.response(Number(held), 20_000);
              assert.match(JSON.stringify(done.result), /Long running operation completed/);
              continue;
            }
            const abort = new AbortController();
            const stream = await asHttp(front).open(slow, {}, abort.signal);
            await front.barrier();
            for (const idText of same) {
              const text = front.rawRequest(idText, '"tools/call"', '{"name":"echo","arguments":{"message":"same id"}}');
              const reply = await tally.send(front, text);
              if (kind === 'http') {
                assertRefused(tally, front, reply, { code: -32600, message: /already used by a request in flight/ });
              } else {
                assert.match(resultText(onlyAnswer(reply, Number(held))) ?? '', /same id/);
                assertDenial(tally, await tally.send(front, front.rawRequest(idText, '"tools/call"', `{"name":"${T.denied}"}`)), Number(held));
              }
            }
            if (kind === 'http') {
              const done = (await stream.rest(20_000)).filter((m) => 'id' in m);
              assert.equal(done.length, 1, JSON.stringify(done));
              assert.match(JSON.stringify(done[0]!.result), /Long running operation completed/);
            } else {
              abort.abort();
            }
          }
        }));
    });

    describe('__proto__ and constructor in arguments', () => {
      const call = (n: number, tool: string, argsText: string) => front.rawRequest(String(n), '"tools/call"', `{"name":"${tool}","arguments":${argsText}}`);

      it('a condition on args.__proto__.ok or args.constructor.name holds only for real members, never for inherited ones', () =>
        withTally(DENIED, async (tally) => {
          const refused: Array<[string, RegExp]> = [
            ['{}', /Needs __proto__\.ok/],
            ['{"ok":true}', /Needs __proto__\.ok/],
            ['{"__proto__":{"ok":true}}', /Needs constructor\.name/],
            ['{"__proto__":{"ok":true},"constructor":{"prototype":{"name":"Object"}}}', /Needs constructor\.name/],
            ['{"constructor":{"name":"Object"},"__proto__":{"ok":false}}', /Needs __proto__\.ok/],
          ];
          for (const [args, why] of refused) {
            const n = id();
            assertDenial(tally, await tally.send(front, call(n, T.proto, args)), n, why);
          }
          const n = id();
          const both = call(n, T.proto, '{"__proto__":{"ok":true},"constructor":{"name":"Object"}}');
          const reply = await tally.send(front, both);
          assertForwardedAsEvaluated(front, reply, both);
          assert.ok(reply.forwardedRaw[0]!.includes('"__proto__":{"ok":true}'), `the own __proto__ member reached the server: ${reply.forwardedRaw[0]}`);
          assert.ok(!isDenial(onlyAnswer(reply, n)));
        }));

      it('an exists: false condition on args.__proto__ or args.constructor is broken only by a member really sent', () =>
        withTally(DENIED, async (tally) => {
          const n = id();
          const plain = call(n, 'echo', '{"message":"plain"}');
          const ok = await tally.send(front, plain);
          assertForwardedAsEvaluated(front, ok, plain);
          // `exists: false` holds for a member that is null too (docs/policy.md, 4.2).
          const m0 = id();
          const nulled = call(m0, 'echo', '{"message":"m","__proto__":null}');
          assertForwardedAsEvaluated(front, await tally.send(front, nulled), nulled);
          for (const [args, why] of [
            ['{"message":"m","__proto__":{}}', /No __proto__ argument/],
            ['{"message":"m","__proto__":{"constructor":null}}', /No __proto__ argument/],
            ['{"message":"m","constructor":"x"}', /No constructor argument/],
            ['{"message":"m","constructor":{"name":"Object"}}', /No constructor argument/],
          ] as const) {
            const m = id();
            assertDenial(tally, await tally.send(front, call(m, 'echo', args)), m, why);
          }
        }));
    });

    describe('a client answering a request it was never sent', () => {
      const responses = (n: number) => [
        `{"jsonrpc":"2.0","id":"never-asked-${n}","result":{}}`,
        `{"jsonrpc":"2.0","id":${n},"error":{"code":-32601,"message":"no such request"}}`,
        `{"jsonrpc":"2.0","id":"call-shaped-${n}","result":{"method":"tools/call","params":{"name":"${T.denied}"}}}`,
      ];
      if (kind === 'http-2026') {
        it('is refused with 400: its protocol version header matches no body, and a body claiming the era must be a request or a notification', () =>
          withTally(DENIED, async (tally) => {
            for (const text of responses(id())) assertRefused(tally, front, await tally.send(front, text), { code: -32020, message: /Header mismatch: MCP-Protocol-Version/ });
            const claiming = `{"jsonrpc":"2.0","id":"claims-the-era","result":{},"params":{"_meta":${JSON.stringify(MODERN_META)}}}`;
            assertRefused(tally, front, await tally.send(front, claiming), { code: -32600, message: /must be a request or a notification/ });
          }));
      } else {
        it('is passed to the server as an answer (the object as parsed), never as a call, and answered with nothing', () =>
          withTally(DENIED, async (tally) => {
            for (const text of responses(id())) {
              const reply = await tally.send(front, text);
              assertNoAnswer(front, reply);
              assert.deepEqual(reply.forwarded, [JSON.parse(text)]);
            }
          }));
      }
    });

    describe('sizes, NUL bytes, a BOM, CRLF, two messages in one', () => {
      it('denies a call carrying 5 MiB of arguments, and forwards an allowed one exactly as evaluated', () =>
        withTally(DENIED, async (tally) => {
          const big = 'z'.repeat(5 * MiB);
          const n = id();
          assertDenial(tally, await tally.send(front, front.callText(n, T.denied, { pad: big })), n);
          const m = id();
          const echo = front.callText(m, 'echo', { message: big });
          const reply = await tally.send(front, echo);
          assertForwardedAsEvaluated(front, reply, echo);
          assert.equal(resultText(onlyAnswer(reply, m))?.length, 'Echo: '.length + big.length);
        }));

      /** The call reached the server under `name`, and the server refused a tool it lacks. */
      const assertUnknownTool = (reply: Reply, n: number, name: string) => {
        const forwarded = reply.forwarded.filter((l) => isRecord(l) && l.method === 'tools/call') as Json[];
        assert.equal(forwarded.length, 1);
        assert.equal((forwarded[0]!.params as Json).name, name);
        const answer = onlyAnswer(reply, n);
        assert.ok(!isDenial(answer));
        assert.match((errorOf(answer)?.message ?? resultText(answer) ?? '').slice(0, 100), new RegExp(`Tool ${T.denied}x+`));
      };

      if (kind !== 'http-2026') {
        it('forwards a 5 MiB tool name as the different tool it is, which the server refuses', () =>
          withTally(DENIED, async (tally) => {
            const name = T.denied + 'x'.repeat(5 * MiB);
            const n = id();
            assertUnknownTool(await tally.send(front, front.callText(n, name)), n, name);
          }));
      } else {
        it('takes a tool name only as long as its Mcp-Name header fits (16 KiB): longer ones get 431, or the connection cut, and never reach the server', () =>
          withTally(DENIED, async (tally) => {
            const fits = T.denied + 'x'.repeat(10_000);
            const n = id();
            assertUnknownTool(await tally.send(front, front.callText(n, fits)), n, fits);
            const over = await tally.send(front, front.callText(id(), T.denied + 'x'.repeat(20_000)));
            assert.equal(over.status, 431);
            tally.nothingForwarded(over, '20 000 characters');
            const huge = front.callText(id(), T.denied + 'x'.repeat(5 * MiB));
            tally.input(huge);
            const mark = await front.mark();
            const cut = await front.send(huge).catch((err: { cause?: { code?: string } }) => err.cause?.code ?? String(err));
            if (typeof cut === 'string') assert.ok(['EPIPE', 'ECONNRESET'].includes(cut), cut);
            else assert.equal(cut.status, 431);
            tally.nothingForwarded({ messages: [], ...(await front.forwardedSince(mark)) }, '5 MiB');
            assert.ok(front.running());
          }));
      }

      it('refuses 7 MiB over the 6 MiB limit without forwarding anything (413 over HTTP, also when sent without a Content-Length)', () =>
        withTally(DENIED, async (tally) => {
          const text = front.callText(id(), 'echo', { message: 'y'.repeat(7 * MiB) });
          if (kind === 'stdio') {
            const reply = await tally.send(front, text, { expect: [null] });
            assertRefused(tally, front, reply, { code: -32600, message: /exceeds the proxy's limit of 6291456 bytes/ });
            return;
          }
          // A declared Content-Length over the limit is answered before the body is read, and
          // the connection closed: a client still sending may see it cut (EPIPE) before the 413.
          tally.input(text);
          const mark = await front.mark();
          const declared = await front.send(text).catch((err: { cause?: { code?: string } }) => err.cause?.code ?? String(err));
          if (typeof declared === 'string') {
            assert.ok(['EPIPE', 'ECONNRESET'].includes(declared), declared);
            tally.nothingForwarded({ messages: [], ...(await front.forwardedSince(mark)) }, 'cut while sending 7 MiB');
          } else {
            assertRefused(tally, front, declared, { code: -32000, status: 413, message: /Payload Too Large/ });
          }
          // Without a Content-Length the size is only known as the body is read.
          const chunked = await tally.send(front, text.replace('yyyy', 'yyyz'), { chunked: true });
          assertRefused(tally, front, chunked, { code: -32000, status: 413, message: /Payload Too Large/ });
          assert.ok(front.running());
        }));

      it('takes escaped NULs in arguments as data, and refuses raw NUL bytes in or between tokens as not JSON', () =>
        withTally(DENIED, async (tally) => {
          const n = id();
          const echo = front.callText(n, 'echo', { message: 'a\u0000b' });
          const reply = await tally.send(front, echo);
          assertForwardedAsEvaluated(front, reply, echo);
          assert.ok(reply.forwardedRaw[0]!.includes('a\\u0000b'));
          const m = id();
          assertDenial(tally, await tally.send(front, front.callText(m, T.denied, { path: '/etc\u0000' })), m);
          for (const raw of [front.callText(id(), `${T.denied}\u0000`).replace('\\u0000', '\u0000'), front.callText(id(), T.denied).replace('{', '{\u0000')]) {
            const parseError = await tally.send(front, Buffer.from(raw));
            assertRefused(tally, front, parseError, { code: -32700 });
          }
        }));

      it('refuses a message behind a byte order mark as not JSON', () =>
        withTally(DENIED, async (tally) => {
          const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(front.callText(id(), 'echo', { message: 'bom' }))]);
          assertRefused(tally, front, await tally.send(front, bytes), { code: -32700 });
        }));

      it(kind === 'stdio' ? 'reads a message pretty-printed over CRLF lines as lines that are not JSON' : 'reads a body pretty-printed with CRLF as the one message it is', () =>
        withTally(DENIED, async (tally) => {
          const n = id();
          const pretty = JSON.stringify(JSON.parse(front.callText(n, T.denied)), null, 2).replace(/\n/g, '\r\n');
          const lines = pretty.split('\r\n').filter((l) => l.trim() !== '').length;
          const reply = await tally.send(front, pretty, { expect: Array.from({ length: lines }, () => null) });
          if (kind === 'stdio') {
            tally.nothingForwarded(reply, 'CRLF lines');
            assert.equal(reply.messages.length, lines);
            assert.ok(reply.messages.every((m) => errorOf(m)?.code === -32700));
          } else {
            assertDenial(tally, reply, n);
            const m = id();
            const echo = JSON.stringify(JSON.parse(front.callText(m, 'echo', { message: 'crlf' })), null, 2).replace(/\n/g, '\r\n');
            const allowed = await tally.send(front, echo);
            assertForwardedAsEvaluated(front, allowed, echo);
          }
        }));

      it('refuses two messages in one line or body as not JSON, whatever separates them', () =>
        withTally(DENIED, async (tally) => {
          const a = front.callText(id(), 'echo', { message: 'first' });
          const b = front.callText(id(), T.denied);
          // stdio: back to back is in bypass.test.ts; a newline there separates two lines.
          const joined = kind === 'stdio' ? [`${a} ${b}`, `${a}\r${b}`, `${a}\t${b}`] : [`${a}${b}`, `${a} ${b}`, `${a}\r${b}`, `${a}\n${b}`, `${a}\r\n${b}`];
          for (const text of joined) assertRefused(tally, front, await tally.send(front, text), { code: -32700 });
        }));
    });

    it('is still serving and sent the server no denied call', async () => {
      assert.ok(front.running(), front.stderr().slice(-2000));
      const n = id();
      const reply = await front.send(front.callText(n, 'echo', { message: 'still here' }));
      assert.match(resultText(onlyAnswer(reply, n)) ?? '', /still here/);
      const received = (await front.upstreamLines()).map((l) => JSON.parse(l) as unknown);
      assert.deepEqual(received.filter((l) => readsAsCallTo(l, new Set(DENIED))), [], 'a denied call reached the server');
    });
  });
}

// ------------------------------------------------------------------------------ before initialize

describe('calls before initialize', TIMEOUT, () => {
  // The 2026-07-28 era has no initialize: every request of it stands alone (the corpus above).
  const T = TOOLS.stdio;

  it('stdio: a BOM in front of the first message is not JSON; calls before initialize are gated like any other', () =>
    withTally([T.denied], async (tally) => {
      const front = await openFront('stdio', policyFile, dir.file('before-init-stdio.log'), { initialize: false });
      try {
        const init = (n: string) =>
          JSON.stringify({ jsonrpc: '2.0', id: n, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
        const bom = await tally.send(front, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(init('bom'))]));
        assertRefused(tally, front, bom, { code: -32700 });

        assertDenial(tally, await tally.send(front, front.callText('d1', T.denied)), 'd1');
        const echo = front.callText('e1', 'echo', { message: 'before initialize' });
        const echoed = await tally.send(front, echo);
        assertForwardedAsEvaluated(front, echoed, echo);
        assert.equal(answers(echoed).length, 1, 'whatever the server says, one answer');
        // A call whose rule needs the tool's schema makes the proxy list the tools itself.
        const needs = await tally.send(front, front.callText('v1', 'get-structured-content', {}));
        const answer = onlyAnswer(needs, 'v1');
        assert.ok(isDenial(answer), JSON.stringify(answer));
        assert.ok(['missing_args', 'schema_unavailable'].includes(denialOf(answer.result)?.kind ?? ''), JSON.stringify(answer));
        assert.ok(!needs.forwarded.some((l) => isRecord(l) && l.method === 'tools/call'));

        const ok = await tally.send(front, init('i1'));
        assert.ok(isRecord(onlyAnswer(ok, 'i1').result));
        await tally.send(front, front.requestText(undefined, 'notifications/initialized'));
        const after = await tally.send(front, front.callText('e2', 'echo', { message: 'after initialize' }));
        assert.match(resultText(onlyAnswer(after, 'e2')) ?? '', /after initialize/);
      } finally {
        await front.close();
      }
    }));

  it('http: a call without a session is refused (400), one naming an unknown session gets 404, a BOM spoils the initialize; inside a session calls are gated before notifications/initialized', () =>
    withTally([T.denied], async (tally) => {
      const front = await openFront('http', policyFile, dir.file('before-init-http.log'), { initialize: false });
      try {
        for (const name of [T.denied, 'echo']) {
          const reply = await tally.send(front, front.callText('no-session', name, { message: 'x' }), { noSession: true });
          assertRefused(tally, front, reply, { code: -32000, message: /Mcp-Session-Id header is required/ });
        }
        const unknown = await tally.send(front, front.callText('lost', T.denied), { headers: { 'Mcp-Session-Id': 'no-such-session' } });
        assertRefused(tally, front, unknown, { code: -32001, status: 404 });
        const init = JSON.stringify({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
        const bom = await tally.send(front, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(init)]), { noSession: true });
        assertRefused(tally, front, bom, { code: -32700 });
        assert.deepEqual(await front.upstreamLines(), [], 'no session, so no server was even started');

        // A session that never sends notifications/initialized: the gate does not wait for it.
        const session = await asHttp(front).initialize(false);
        assert.ok(session['Mcp-Session-Id']);
        assertDenial(tally, await tally.send(front, front.callText('d2', T.denied)), 'd2');
        const echo = front.callText('e3', 'echo', { message: 'in the session' });
        assertForwardedAsEvaluated(front, await tally.send(front, echo), echo);
      } finally {
        await front.close();
      }
    }));
});

// ------------------------------------------------------------------------------ a rogue server

const ROGUE_POLICY = `version: "1"
default: allow
tools:
  delete_file:
    rules:
      - name: never delete
        action: deny
        on_deny: "Deleting files is not allowed"
  guarded:
    rules:
      - name: checked
        validate: { schema: true }
`;

for (const kind of KINDS) {
  describe(`a server that misbehaves on cue, on ${kind}`, TIMEOUT, () => {
    let front: Front;
    let nextId = 1;
    const id = () => (kind === 'http-2026' ? nextId++ : `c${nextId++}`);
    const DENIED = ['delete_file'];
    before(async () => {
      const policy = await writePolicy(dir.path, ROGUE_POLICY, 'rogue.yaml');
      front = await openFront(kind, policy, dir.file(`rogue-${kind}.log`), { server: rogueServer() });
    });
    after(async () => {
      await front?.close();
    });

    async function cue(tally: Tally, args: Json): Promise<Reply> {
      const n = id();
      const reply = await tally.send(front, front.callText(n, 'cue', args));
      assert.equal(resultText(onlyAnswer(reply, n)), 'cued', JSON.stringify(reply.messages));
      return reply;
    }

    /** How many answers the proxy has dropped as answering nothing it sent (its log says so). */
    const dropped = () => front.stderr().split('dropped an answer from the server to a request it was not sent').length - 1;

    /** What came back holds one answer, to `n`, and no other message with an id. */
    function onlyThat(reply: Reply, n: unknown): Json {
      const withIds = reply.messages.filter((m) => 'id' in m);
      assert.deepEqual(withIds.map((m) => m.id), [n], `one answer, to ${JSON.stringify(n)}, and nothing else with an id: ${JSON.stringify(reply.messages).slice(0, 800)}`);
      return withIds[0]!;
    }

    const GARBAGE: Array<[string, string, RegExp | undefined]> = [
      ['garbage', 'a result that is a string', /did not provide its inputSchema/],
      ['not-array', 'tools that are not a list', /did not provide its inputSchema/],
      ['error', 'a JSON-RPC error', /did not provide its inputSchema/],
      ['endless', 'pages without end', /did not provide its inputSchema/],
      ['never', 'a line that is not JSON and no answer (the proxy gives up after 10 s)', /did not provide its inputSchema/],
      ['bad-schema', 'a schema that does not compile', /could not be compiled/],
      ['twice', 'the answer, then a second answer to the same id', undefined],
      ['other-id', 'an answer to an id nobody sent, then the answer', undefined],
    ];
    for (const [mode, what, denial] of GARBAGE) {
      const outcome = denial ? 'denies the call it was deciding' : 'decides on the real answer';
      it(`answered its own tools/list with ${what}: ${outcome}, answers it once, and relays nothing else`, () =>
        withTally(DENIED, async (tally) => {
          await cue(tally, { list: mode });
          const n = id();
          const reply = await tally.send(front, front.callText(n, 'guarded', { path: '/p' }), { timeoutMs: 20_000 });
          const answer = onlyThat(reply, n);
          const calls = reply.forwarded.filter((l) => isRecord(l) && l.method === 'tools/call');
          if (denial) {
            assert.ok(isDenial(answer), JSON.stringify(answer));
            assert.match(denialOf(answer.result)?.message ?? '', denial);
            assert.deepEqual(calls, [], 'the call was not forwarded');
          } else {
            assert.equal(resultText(answer), 'guarded ran with /p');
            assert.equal(calls.length, 1);
          }
          assert.ok(front.running());
        }));
    }

    it('forged an answer for a call it was never sent, while the proxy was deciding it: the client gets the denial, and only that', () =>
      withTally(DENIED, async (tally) => {
        const n = id();
        const before = dropped();
        await cue(tally, { forge: kind === 'http-2026' ? { next: true } : { id: n } });
        const reply = await tally.send(front, front.callText(n, 'guarded', {}));
        const answer = onlyThat(reply, n);
        assert.ok(isDenial(answer), `the client got ${JSON.stringify(answer)}`);
        assert.equal(denialOf(answer.result)?.kind, 'invalid_args');
        assert.deepEqual(reply.forwarded.filter((l) => isRecord(l) && l.method === 'tools/call'), []);
        await eventually(() => (dropped() > before ? true : undefined));
      }));

    it('forged an answer for a call it was never sent, before the proxy forwarded it: the client gets the real answer, and only that', () =>
      withTally(DENIED, async (tally) => {
        const n = id();
        const before = dropped();
        await cue(tally, { forge: kind === 'http-2026' ? { next: true } : { id: n } });
        const reply = await tally.send(front, front.callText(n, 'guarded', { path: '/real' }));
        assert.equal(resultText(onlyThat(reply, n)), 'guarded ran with /real');
        await eventually(() => (dropped() > before ? true : undefined));
      }));

    if (kind !== 'http-2026') {
      // A 2026-07-28 call goes upstream under an id of the proxy's, forgotten once answered.
      it('forged an answer for a denied call after the denial: it never reaches the client', () =>
        withTally(DENIED, async (tally) => {
          const n = id();
          assertDenial(tally, await tally.send(front, front.callText(n, 'delete_file', { path: '/etc' })), n, /not allowed/);
          const before = dropped();
          const reply = await cue(tally, { forge: { id: n, now: true } });
          assert.ok(!reply.messages.some((m) => m.id === n), `the forged answer reached the client: ${JSON.stringify(reply.messages)}`);
          await eventually(() => (dropped() > before ? true : undefined));
        }));
    }
  });
}
