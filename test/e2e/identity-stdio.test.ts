// Identity on stdio, through the real CLI (`node bin/intercept.js -c <policy> --identity … --
// node dist/demo/server.js`) and the official v1 SDK client: alice's `scope: identity` limit is
// shared by two proxy processes on one SQLite file while bob keeps his own; only callers whose
// `claims.groups` contains finance pass the finance rule; a caller without a subject is refused
// a per-caller limit; and the audit trail, the log lines, `intercept logs` and the OpenTelemetry
// span (`enduser.id`) name the subject.
// `intercept explain --identity` and `intercept test` cases with an identity decide the same.
// Needs the build (dist/), which `npm test` makes first.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { assertDenied, assertNotDenied, type Json } from '../support/messages.js';
import { attrs, startReceiver, type Receiver } from '../support/otlp-receiver.js';
import { servers } from '../support/servers.js';
import { connectV1, proxyParams, type Session } from '../support/sdk-clients.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { intercept, toolCalls, trailRecords } from '../support/trail.js';
import { eventually } from '../support/wait.js';

const TIMEOUT = { timeout: 120_000 };

const POLICY = `
tools:
  list_conversations:
    rules:
      - action: allow
        rate_limit: { max: 2, window: 3600, scope: identity }
  create_conversation:
    rules:
      - name: finance only
        action: allow
        conditions:
          - { path: identity.claims.groups, op: contains, value: finance }
        reason: "Only finance may open conversations"
`;

const ALICE = ['--identity', 'sub=alice', '--identity', 'scopes=read write', '--identity', 'claims.groups=finance,ops'];
const BOB = ['--identity', 'sub=bob', '--identity', 'claims.groups=ops,'];

let dir: TempDir;
let policy: string;
let flags: string[];
let events: string;
before(async () => {
  dir = await makeTempDir('intercept-identity-');
  policy = await writePolicy(dir.path, POLICY);
  events = join(dir.path, 'events');
  // One counter file for every proxy of the test, as proxies on one machine share it.
  flags = ['--state-dir', join(dir.path, 'state'), '--events-dir', events];
});
after(async () => {
  await dir?.cleanup();
});

function proxy(identity: string[], env?: Record<string, string>): Promise<Session<Client>> {
  return connectV1(proxyParams(policy, servers.demo(), { flags: [...flags, ...identity], env }));
}

/** The session's `allowed` and `denied` log lines, once there are `count` of them (the log is
 * written a few milliseconds late). */
function decisionLines(session: Session<Client>, count: number): Promise<string[]> {
  return eventually(() => {
    const found = session.stderr().split('\n').filter((l) => / (allowed|denied) tool=/.test(l));
    return found.length >= count ? found : undefined;
  });
}

const list = (s: Session<Client>) => s.client.callTool({ name: 'list_conversations', arguments: {} });
const create = (s: Session<Client>) => s.client.callTool({ name: 'create_conversation', arguments: { friendly_name: 'q3' } });

describe('--identity on stdio', TIMEOUT, () => {
  let aliceOne: Session<Client>;
  let aliceTwo: Session<Client>;
  let bob: Session<Client>;
  let anonymous: Session<Client>;
  before(async () => {
    [aliceOne, aliceTwo, bob, anonymous] = await Promise.all([proxy(ALICE), proxy(ALICE), proxy(BOB), proxy([])]);
  });
  after(async () => {
    await Promise.all([aliceOne, aliceTwo, bob, anonymous].map((s) => s?.close()));
  });

  it("two proxies of alice share alice's scope: identity limit through one SQLite file", async () => {
    assertNotDenied(await list(aliceOne));
    assertNotDenied(await list(aliceTwo));
    for (const session of [aliceTwo, aliceOne]) {
      assertDenied(await list(session), {
        kind: 'rate_limit',
        rule: 'list_conversations#1',
        message: /^Rate limit of 2 calls per hour reached for "list_conversations"; try again in \d+ seconds?\.$/,
      });
    }
  });

  it('bob has his own count', async () => {
    assertNotDenied(await list(bob));
    assertNotDenied(await list(bob));
    assertDenied(await list(bob), { kind: 'rate_limit' });
  });

  it('a caller without a subject is refused a per-caller limit, not put in a shared bucket', async () => {
    assertDenied(await list(anonymous), {
      kind: 'identity_required',
      rule: 'list_conversations#1',
      message: 'Denied by rule "list_conversations#1": counter list_conversations._rate:list_conversations#1 is kept per caller (scope: identity) and this call has no identity (no subject)',
    });
  });

  it('only a caller whose claims.groups contains finance passes the finance rule', async () => {
    assertNotDenied(await create(aliceOne));
    assertDenied(await create(bob), { kind: 'condition', rule: 'finance only', message: 'Only finance may open conversations' });
    assertDenied(await create(anonymous), { kind: 'condition', rule: 'finance only' });
  });

  it('every decision logged names the subject', async () => {
    const bobs = await decisionLines(bob, 4);
    assert.ok(bobs.every((l) => / subject=bob(\s|$)/.test(l)), bobs.join('\n'));
    assert.ok(bobs.some((l) => /denied tool=create_conversation kind=condition rule="finance only"/.test(l)), bobs.join('\n'));
    const alices = await decisionLines(aliceTwo, 2);
    assert.ok(alices.every((l) => / subject=alice(\s|$)/.test(l)), alices.join('\n'));
    const nobody = await decisionLines(anonymous, 2);
    assert.ok(nobody.every((l) => !l.includes('subject=')), nobody.join('\n'));
  });

  it("the trail's tool_call events carry the subject, and intercept logs shows it", async () => {
    const calls = await eventually(async () => {
      const found = toolCalls(await trailRecords(events));
      return found.length >= 11 ? found : undefined;
    });
    const by = (subject: string | undefined) => calls.filter((r: Json) => r.subject === subject).map((r: Json) => `${r.tool} ${r.decision}${r.kind ? ` ${r.kind}` : ''}`);
    assert.deepEqual(by('alice').sort(), [
      'create_conversation allow',
      'list_conversations allow',
      'list_conversations allow',
      'list_conversations deny rate_limit',
      'list_conversations deny rate_limit',
    ]);
    assert.deepEqual(by('bob').sort(), ['create_conversation deny condition', 'list_conversations allow', 'list_conversations allow', 'list_conversations deny rate_limit']);
    assert.deepEqual(by(undefined).sort(), ['create_conversation deny condition', 'list_conversations deny identity_required']);
    assert.ok(calls.filter((r) => r.subject === undefined).every((r) => !('subject' in r)), 'an anonymous call has no subject field');

    const logs = await intercept('logs', '--events-dir', events, '--denied');
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /DENY {2}create_conversation .*subject=bob /);
    assert.match(logs.stdout, /DENY {2}list_conversations .*kind=rate_limit .*subject=alice /);
  });
});

describe('the span of a call', TIMEOUT, () => {
  let receiver: Receiver;
  before(async () => {
    receiver = await startReceiver();
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.base, OTEL_SERVICE_NAME: 'intercept-identity' };
    const sessions = await Promise.all([proxy(['--identity', 'sub=carol', '--identity', 'claims.groups=finance'], env), proxy([], env)]);
    try {
      for (const session of sessions) await create(session);
    } finally {
      // Closing a proxy flushes its spans.
      await Promise.all(sessions.map((session) => session.close()));
    }
  });
  after(async () => {
    await receiver?.close();
  });

  it('carries enduser.id for a caller with a subject, and none for an anonymous one', async () => {
    const spans = await eventually(() => (receiver.spans().length >= 2 ? receiver.spans() : undefined));
    const byDecision = Object.fromEntries(spans.map((span) => [String(attrs(span.attributes)['intercept.decision']), attrs(span.attributes)]));
    assert.equal(byDecision.allow?.['enduser.id'], 'carol');
    assert.ok(byDecision.deny !== undefined && !('enduser.id' in byDecision.deny), JSON.stringify(byDecision.deny));
  });
});

describe('the same identity offline and in usage errors', TIMEOUT, () => {
  it('intercept explain --identity decides as the proxy does, and shows the caller', async () => {
    const bob = await intercept('explain', '-c', policy, '--tool', 'create_conversation', ...BOB);
    assert.equal(bob.code, 1, bob.stderr);
    assert.match(bob.stdout, /^Caller: sub "bob", claims \{"groups":\["ops"\]\}$/m);
    assert.match(bob.stdout, /✗ identity\.claims\.groups contains "finance" \(actual: \["ops"\]\)/);
    assert.match(bob.stdout, /^Decision: DENIED \(condition\) — Only finance may open conversations$/m);
    const alice = await intercept('explain', '-c', policy, '--tool', 'list_conversations', ...ALICE, '--counter', 'list_conversations._rate:list_conversations#1=1');
    assert.equal(alice.code, 0, alice.stderr);
    assert.match(alice.stdout, /charges counter list_conversations\._rate:list_conversations#1 \+1 \(limit ≤ 2, window rolling 3600s, scope identity \(sub "alice"\)\)/);
    const nobody = await intercept('explain', '-c', policy, '--tool', 'list_conversations', '--counter', 'list_conversations._rate:list_conversations#1=1');
    assert.equal(nobody.code, 2);
    assert.match(nobody.stderr, /--counter list_conversations\._rate:list_conversations#1 is kept per caller \(scope: identity\): say whose it is with --identity sub=/);
  });

  it('intercept test runs cases with an identity: block', async () => {
    const cases = join(dir.path, 'identity.cases.yaml');
    await writeFile(
      cases,
      `cases:
  - name: alice's third listing is over her limit
    identity: { sub: alice, claims: { groups: [finance] } }
    before: [{ tool: list_conversations, times: 2 }]
    call: { tool: list_conversations }
    expect: { deny: rate_limit }
  - name: bob lists after alice's two
    identity: { sub: bob }
    before: [{ tool: list_conversations, times: 2, identity: { sub: alice } }]
    call: { tool: list_conversations }
    expect: allow
  - name: ops may not open conversations
    identity: { sub: bob, claims: { groups: [ops] } }
    call: { tool: create_conversation }
    expect: { deny: { kind: condition, rule: finance only } }
`,
    );
    const run = await intercept('test', '-c', policy, cases);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /3 passed, 0 failed/);
  });

  it('a malformed --identity, or one with the HTTP listener, is a usage error (exit 2)', async () => {
    const bad = await intercept('-c', policy, '--identity', 'subject=alice', '--', process.execPath, '-e', '');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--identity takes sub=, client_id=, scopes= or claims\.<name>=, got "subject"/);
    const http = await intercept('-c', policy, '--transport', 'http', '--port', '0', '--identity', 'sub=alice', '--', process.execPath, '-e', '');
    assert.equal(http.code, 2);
    assert.match(http.stderr, /--identity applies to --transport stdio/);
  });
});
