// Tool names that differ from a denied one by case, Unicode form, invisible characters, edge
// spaces, NUL or a homoglyph. The policy compares names exactly, so each of these is a
// different tool: under `default: deny` it is denied as not listed, under `default: allow` it
// reaches the server under its own name, and the server refuses it as a tool it does not have.
// A JSON escape of the denied name is the denied name. Tools named like Object.prototype
// members (__proto__, constructor, toString) are tools like any other, as policy keys too.
// Each case runs through the real CLI on stdio, on the listener in a 2025 session, and on the
// listener for 2026-07-28 clients, against a real server behind the tee.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { denialOf, errorOf, isDenial, isRecord, resultText, type Json } from '../support/messages.js';
import { asHttp, openFront, withTally, type Front, type FrontKind, type Reply } from '../support/bypass.js';

const TIMEOUT = { timeout: 120_000 };

/** The tools each front's server has: server-everything for 2025, the v2-SDK fixture for
 * 2026-07-28. `denied` is denied by a rule, `hidden` hidden. */
const SERVER_TOOLS: Record<FrontKind, { denied: string; hidden: string }> = {
  stdio: { denied: 'get-tiny-image', hidden: 'get-env' },
  http: { denied: 'get-tiny-image', hidden: 'get-env' },
  'http-2026': { denied: 'delete_all', hidden: 'secret_admin' },
};

/** A denied name no server has, with a precomposed é (NFC). */
const CAFE = 'caf\u00e9';

function policy(defaultAction: 'allow' | 'deny'): string {
  return `version: "1"
default: ${defaultAction}
hide:
  - get-env
  - secret_admin
  - valueOf
tools:
  echo:
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
  "${CAFE}":
    rules:
      - name: no coffee
        action: deny
        on_deny: "No coffee"
  __proto__:
    rules:
      - name: no proto
        action: deny
        on_deny: "Not __proto__"
  constructor:
    rules:
      - name: no constructor
        action: deny
        on_deny: "Not constructor"
`;
}

// ------------------------------------------------------------------------------ the variants

/** Fullwidth forms of printable ASCII (NFKC folds them back). */
const fullwidth = (s: string) => s.replace(/[!-~]/g, (c) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0));
/** Mathematical bold small letters (NFKC folds them back). */
const bold = (s: string) => s.replace(/[a-z]/g, (c) => String.fromCodePoint(0x1d41a + c.charCodeAt(0) - 97));
const insert = (s: string, at: number, what: string) => s.slice(0, at) + what + s.slice(at);

interface Variant {
  /** What differs, as the test name says it. */
  how: string;
  name: string;
}

/** Names that differ from `d` and are, to the policy, other tools. */
function variantsOf(d: string): Variant[] {
  const sep = d.search(/[-_]/);
  return [
    { how: 'upper case', name: d.toUpperCase() },
    { how: 'a capital first letter', name: d[0]!.toUpperCase() + d.slice(1) },
    { how: 'fullwidth letters (NFKC compatibility form)', name: fullwidth(d) },
    { how: 'a fullwidth separator (NFKC compatibility form)', name: d.slice(0, sep) + fullwidth(d[sep]!) + d.slice(sep + 1) },
    { how: 'mathematical bold letters (NFKC compatibility form)', name: bold(d) },
    { how: 'a zero-width space inside', name: insert(d, 3, '\u200b') },
    { how: 'a zero-width joiner inside', name: insert(d, 3, '\u200d') },
    { how: 'a soft hyphen inside', name: insert(d, 3, '\u00ad') },
    { how: 'a byte order mark in front', name: `\ufeff${d}` },
    { how: 'a trailing space', name: `${d} ` },
    { how: 'a leading space', name: ` ${d}` },
    { how: 'a trailing tab', name: `${d}\t` },
    { how: 'a trailing no-break space', name: `${d}\u00a0` },
    { how: 'a trailing NUL', name: `${d}\u0000` },
    { how: 'a NUL inside', name: insert(d, 3, '\u0000') },
    { how: 'a Cyrillic а for the Latin a (homoglyph)', name: d.replace('a', '\u0430') },
    { how: 'a Cyrillic е for the Latin e (homoglyph)', name: d.replace('e', '\u0435') },
  ];
}

/** Names that differ from the NFC `café` of the policy. */
const CAFE_VARIANTS: Variant[] = [
  { how: 'NFD (e and a combining acute) where the policy has NFC', name: 'cafe\u0301' },
  { how: 'fullwidth letters and a precomposed é (NFKC compatibility form)', name: `${fullwidth('caf')}\u00e9` },
  { how: 'upper case', name: 'CAF\u00c9' },
];

/** Names of Object.prototype members the policy does not list (`valueOf` is hidden). */
const PROTOTYPE_NAMES = ['toString', 'hasOwnProperty', '__defineGetter__', 'isPrototypeOf', 'prototype'];

/** Every character as a \uXXXX escape: the same name to any JSON reader. */
const escapedAll = (s: string) => [...s].map((c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`).join('');

// ------------------------------------------------------------------------------ assertions

function answerTo(reply: Reply, id: number): Json {
  const answers = reply.messages.filter((m) => isRecord(m) && m.id === id && !('method' in m));
  assert.equal(answers.length, 1, `exactly one answer to ${id}: ${JSON.stringify(reply.messages).slice(0, 500)}`);
  return answers[0]!;
}

function assertDenial(reply: Reply, id: number, kind: string, message?: RegExp): void {
  const answer = answerTo(reply, id);
  assert.ok(isDenial(answer), `expected a denial, got ${JSON.stringify(answer).slice(0, 400)}`);
  const denial = denialOf(answer.result);
  assert.equal(denial?.kind, kind, JSON.stringify(answer.result));
  if (message) assert.match(denial!.message, message);
  assert.deepEqual(reply.forwarded, [], 'nothing reached the server');
}

/** The call reached the server under exactly this name, once, and the server refused it as a
 * tool it does not have (server-everything answers with an isError result, the v2 SDK with
 * -32602). */
function assertServerRefused(reply: Reply, id: number, name: string, as: 'not found' | 'not found or disabled' = 'not found'): void {
  const calls = reply.forwarded.filter((l) => isRecord(l) && l.method === 'tools/call');
  assert.equal(calls.length, 1, `one call reached the server: ${JSON.stringify(reply.forwarded).slice(0, 400)}`);
  assert.equal((calls[0] as { params: { name: unknown } }).params.name, name, 'under exactly the name sent');
  const answer = answerTo(reply, id);
  assert.ok(!isDenial(answer), `the proxy denied it: ${JSON.stringify(answer).slice(0, 300)}`);
  const said = errorOf(answer)?.message ?? resultText(answer) ?? '';
  const quoted = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`Tool ${quoted} (${as === 'not found' ? 'not found' : 'not found|disabled'})`);
  assert.match(said, pattern, `the server's own answer: ${JSON.stringify(answer).slice(0, 300)}`);
  if (errorOf(answer) === undefined) assert.equal((answer.result as Json).isError, true);
  else assert.equal(errorOf(answer)!.code, -32602);
}

// ------------------------------------------------------------------------------ the tests

let dir: TempDir;
before(async () => {
  dir = await makeTempDir('intercept-names-');
});
after(async () => {
  await dir?.cleanup();
});

const KINDS: FrontKind[] = ['stdio', 'http', 'http-2026'];

for (const kind of KINDS) {
  const { denied, hidden } = SERVER_TOOLS[kind];
  for (const defaultAction of ['deny', 'allow'] as const) {
    describe(`${kind}, default: ${defaultAction}`, TIMEOUT, () => {
      let front: Front;
      let nextId = 1;
      before(async () => {
        const file = await writePolicy(dir.path, policy(defaultAction), `policy-${kind}-${defaultAction}.yaml`);
        front = await openFront(kind, file, dir.file(`upstream-${kind}-${defaultAction}.log`));
      });
      after(async () => {
        await front?.close();
      });

      const call = (name: string) => {
        const id = nextId++;
        return { id, text: front.callText(id, name, {}) };
      };
      /** What a name that is another tool gets under this policy. */
      const assertOtherTool = (reply: Reply, id: number, name: string) => {
        if (defaultAction === 'deny') assertDenial(reply, id, 'not_listed', /is not permitted by policy/);
        else assertServerRefused(reply, id, name);
      };

      it(`the exact name ${JSON.stringify(denied)} is denied by its rule, also with every character escaped in the raw text`, () =>
        withTally([denied], async (tally) => {
          const exact = call(denied);
          assertDenial(await tally.send(front, exact.text), exact.id, 'deny_rule');
          const id = nextId++;
          const escaped = front.rawRequest(String(id), '"tools/call"', `{"name":"${escapedAll(denied)}","arguments":{}}`);
          assertDenial(await tally.send(front, escaped), id, 'deny_rule');
          const some = nextId++;
          const partly = front.rawRequest(String(some), '"tools\\/call"', `{"name":"${denied.replace(/[-_]/, (c) => `\\u00${c.charCodeAt(0).toString(16)}`)}","arguments":{}}`);
          assertDenial(await tally.send(front, partly), some, 'deny_rule');
        }));

      for (const v of variantsOf(denied)) {
        const outcome = defaultAction === 'deny' ? 'denied as not listed' : 'reaches the server under its own name, which refuses it as unknown';
        it(`${JSON.stringify(v.name)} (${v.how}) is a different tool: ${outcome}`, () =>
          withTally(defaultAction === 'deny' ? [denied, v.name] : [denied], async (tally) => {
            const c = call(v.name);
            assertOtherTool(await tally.send(front, c.text), c.id, v.name);
          }));
      }

      it(`"${CAFE}" (NFC, as the policy has it) is denied by its rule, also as the raw escape \\u00e9`, () =>
        withTally([CAFE], async (tally) => {
          const c = call(CAFE);
          assertDenial(await tally.send(front, c.text), c.id, 'deny_rule', /No coffee/);
          const id = nextId++;
          assertDenial(await tally.send(front, front.rawRequest(String(id), '"tools/call"', '{"name":"caf\\u00e9","arguments":{}}')), id, 'deny_rule');
        }));

      for (const v of CAFE_VARIANTS) {
        it(`${JSON.stringify(v.name)} (${v.how}) is a different tool from "${CAFE}"`, () =>
          withTally(defaultAction === 'deny' ? [CAFE, v.name] : [CAFE], async (tally) => {
            const c = call(v.name);
            assertOtherTool(await tally.send(front, c.text), c.id, v.name);
          }));
      }

      it(`the hidden ${JSON.stringify(hidden)} is denied as hidden; its upper-case and zero-width variants are different tools`, () =>
        withTally(defaultAction === 'deny' ? [hidden, hidden.toUpperCase(), insert(hidden, 1, '\u200b')] : [hidden], async (tally) => {
          const exact = call(hidden);
          assertDenial(await tally.send(front, exact.text), exact.id, 'hidden', /is hidden by policy/);
          for (const name of [hidden.toUpperCase(), insert(hidden, 1, '\u200b')]) {
            const c = call(name);
            assertOtherTool(await tally.send(front, c.text), c.id, name);
          }
        }));

      it('tools named __proto__ and constructor in the policy are denied by their own rules', () =>
        withTally(['__proto__', 'constructor'], async (tally) => {
          for (const [name, says] of [['__proto__', /Not __proto__/], ['constructor', /Not constructor/]] as const) {
            const c = call(name);
            assertDenial(await tally.send(front, c.text), c.id, 'deny_rule', says);
          }
          // Raw text: "__proto__" as a member of params is an own member to JSON.parse too.
          const id = nextId++;
          assertDenial(await tally.send(front, front.rawRequest(String(id), '"tools/call"', '{"name":"__proto__","arguments":{"__proto__":{}}}')), id, 'deny_rule');
        }));

      it('"valueOf" in `hide` is hidden, not an inherited member', () =>
        withTally(['valueOf'], async (tally) => {
          const c = call('valueOf');
          assertDenial(await tally.send(front, c.text), c.id, 'hidden');
        }));

      for (const name of PROTOTYPE_NAMES) {
        const outcome = defaultAction === 'deny' ? 'denied as not listed (not found on Object.prototype)' : 'reaches the server, which refuses it';
        it(`${JSON.stringify(name)}, a name on Object.prototype the policy does not list, is ${outcome}`, () =>
          withTally(defaultAction === 'deny' ? [name] : [], async (tally) => {
            const c = call(name);
            const reply = await tally.send(front, c.text);
            // server-everything looks tools up through the prototype chain and calls some of
            // these "disabled" rather than unknown: still its own refusal.
            if (defaultAction === 'deny') assertDenial(reply, c.id, 'not_listed');
            else assertServerRefused(reply, c.id, name, 'not found or disabled');
          }));
      }

      if (kind === 'http-2026') {
        it('a Mcp-Name header naming the denied tool over a body calling a variant, and the reverse, are refused (400, -32020) before the gate', () =>
          withTally([denied, `${denied} `, denied.toUpperCase()], async (tally) => {
            const http = asHttp(front);
            for (const [body, header] of [
              [`${denied} `, denied],
              [denied, denied.toUpperCase()],
            ] as const) {
              const c = call(body);
              const reply = await tally.send(http, c.text, { headers: { 'Mcp-Name': header } });
              assert.equal(reply.status, 400, JSON.stringify(reply.messages));
              assert.equal(errorOf(reply.messages[0])?.code, -32020);
              assert.deepEqual(reply.forwarded, []);
            }
          }));
      }

      it('is still serving, and never forwarded the denied names', async () => {
        assert.ok(front.running());
        const id = nextId++;
        const reply = await front.send(front.callText(id, 'echo', { message: 'still here' }));
        assert.match(resultText(answerTo(reply, id)) ?? '', /still here/);
        const everything = (await front.upstreamLines()).join('\n');
        for (const name of [denied, hidden, CAFE, '__proto__', 'constructor', 'valueOf']) {
          assert.ok(!everything.includes(`"name":${JSON.stringify(name)}`), `${name} reached the server`);
        }
      });
    });
  }
}
