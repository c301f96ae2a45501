// `intercept replay` against the honest oracle: the official SDK client makes the same calls
// through two real proxies in front of server-everything — one with a permissive policy and
// --log-args, whose trail is replayed under a tightened policy, and one enforcing the tightened
// policy. What the replay says would be denied is what the second proxy denied, but for the
// call whose arguments the trail kept redacted, which the replay reports as undecidable.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ReplayReport } from '../../src/audit/replay.js';
import type { Json } from '../support/messages.js';
import { connectV1, proxyParams } from '../support/sdk-clients.js';
import { everythingCommand, servers } from '../support/servers.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { intercept, toolCalls, trailRecords } from '../support/trail.js';
import { eventually } from '../support/wait.js';

const TIMEOUT = { timeout: 180_000 };

const PERMISSIVE = 'default: allow\ntools: {}\n';

const TIGHT = `version: "1"
default: allow
tools:
  echo:
    rules:
      - name: "greetings only"
        conditions:
          - { path: "args.message", op: "regex", value: "^h" }
  get-sum:
    rules:
      - name: "two sums, complete"
        rate_limit: { max: 2, window: 3600 }
        validate: { required_args: true }
  get-env:
    rules:
      - name: "no environment"
        action: deny
        on_deny: "Not the environment"
`;

/** The agent's calls, in order; the same for both proxies. */
const CALLS: [string, Record<string, unknown>][] = [
  ['echo', { message: 'hello' }],
  ['echo', { message: 'bye' }],
  ['get-sum', { a: 1, b: 2 }],
  ['get-sum', { a: 1 }],
  ['get-sum', { a: 2, b: 3 }],
  ['get-sum', { a: 3, b: 4 }],
  ['get-env', {}],
  ['echo', { message: 'hello' }],
  // Kept in the trail as "token [redacted]": whether it starts with "h" cannot be told.
  ['echo', { message: 'token sk-abcdefghijklmnopqrstuvwx1234' }],
];
const REDACTED_CALL = CALLS.length - 1;

let dir: TempDir;
before(async () => {
  dir = await makeTempDir('intercept-replay-e2e-');
});
after(async () => {
  await dir?.cleanup();
});

/** Makes CALLS through a proxy with `policy`, and returns its trail's tool_call records once
 * it has shut down. */
async function run(policy: string, name: string, flags: string[] = []): Promise<{ events: string; calls: Json[] }> {
  const events = join(dir.path, `${name}-events`);
  const proxy = await connectV1(proxyParams(policy, servers.everything(), { flags: ['--events-dir', events, '--state-dir', join(dir.path, `${name}-state`), ...flags] }));
  try {
    for (const [tool, args] of CALLS) await proxy.client.callTool({ name: tool, arguments: args }).catch(() => undefined);
  } finally {
    await proxy.close();
  }
  const records = await eventually(async () => {
    const all = await trailRecords(events);
    return all.some((r) => r.type === 'shutdown') ? all : undefined;
  });
  return { events, calls: toolCalls(records) };
}

/** Denials as [tool, kind, rule, count], sorted. */
function tally(rows: { tool: string; kind?: string; rule?: string }[]): [string, string, string, number][] {
  const counts = new Map<string, number>();
  for (const r of rows) {
    const key = JSON.stringify([r.tool, r.kind ?? '', r.rule ?? '']);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => [...(JSON.parse(k) as [string, string, string]), n] as [string, string, string, number]).sort();
}

describe('intercept replay of a real trail', TIMEOUT, () => {
  let recorded: { events: string; calls: Json[] };
  let enforced: Json[];
  let tight: string;
  let schemas: string;

  before(async () => {
    recorded = await run(await writePolicy(dir.path, PERMISSIVE, 'permissive.yaml'), 'recorded', ['--log-args']);
    tight = await writePolicy(dir.path, TIGHT, 'tight.yaml');
    enforced = (await run(tight, 'enforced')).calls;
    schemas = join(dir.path, 'tools.json');
    const scan = await intercept('scan', '--format', 'json', '-o', schemas, '--', ...everythingCommand());
    assert.equal(scan.code, 0, scan.stderr);
  });

  it('recorded every call allowed, with its arguments', () => {
    assert.equal(recorded.calls.length, CALLS.length);
    assert.ok(recorded.calls.every((c) => c.decision === 'allow'));
    assert.deepEqual(recorded.calls[0]!.args, { message: 'hello' });
    assert.deepEqual(recorded.calls[REDACTED_CALL]!.args, { message: 'token [redacted]' });
  });

  it('reports as newly denied exactly what a proxy enforcing the tightened policy denies, and the redacted call as undecidable', async () => {
    const out = await intercept('replay', '-c', tight, '--events', recorded.events, '--input-schemas', schemas, '--json');
    assert.equal(out.code, 0, out.stderr);
    const report = JSON.parse(out.stdout) as ReplayReport;
    assert.equal(report.calls, CALLS.length);

    const oracle = enforced.filter((c) => c.decision === 'deny');
    // The oracle is not vacuous: a condition, a missing argument, a rate limit and a deny rule.
    assert.deepEqual(new Set(oracle.map((c) => c.kind)), new Set(['condition', 'missing_args', 'rate_limit', 'deny_rule']));
    const decidable = oracle.filter((c) => c !== enforced[REDACTED_CALL]);
    assert.equal(decidable.length, oracle.length - 1, 'the enforcing proxy denies the redacted call too');

    const newlyDenied = report.changes.filter((c) => c.change === 'newly_denied');
    const expanded = newlyDenied.flatMap((c) => Array.from({ length: c.count }, () => ({ tool: c.tool, kind: c.kind, rule: c.rule })));
    assert.deepEqual(tally(expanded), tally(decidable as { tool: string; kind?: string; rule?: string }[]));
    assert.deepEqual(
      report.undecidable.map((u) => [u.tool, u.reason, u.rule, u.count]),
      [['echo', 'args_redacted', 'greetings only', 1]],
    );
    assert.deepEqual(report.totals, {
      unchanged: CALLS.length - decidable.length - 1,
      newlyDenied: decidable.length,
      newlyAllowed: 0,
      newlyHeld: 0,
      undecidable: 1,
    });
    // Each denial's time is its own call's in the trail.
    const rateLimited = newlyDenied.find((c) => c.kind === 'rate_limit')!;
    assert.equal(rateLimited.first, recorded.calls[5]!.ts);
    assert.equal(rateLimited.session, recorded.calls[5]!.session);
  });

  it('without the tools\' inputSchemas, reports the validated tool\'s calls as undecidable; as text, tables of the same', async () => {
    const out = await intercept('replay', '-c', tight, '--events', recorded.events);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /Newly denied/);
    assert.match(out.stdout, /^ {2}get-env +allowed +deny_rule +no environment +1 /m);
    assert.match(out.stdout, /^ {2}get-sum +the tool's inputSchema not given +two sums, complete +4 /m);
    assert.match(out.stdout, /^ {2}echo +arguments redacted in the trail +greetings only +1 /m);
    assert.match(out.stdout, /undecidable 5/);
  });

  it('exits 2 and names the error for a policy that does not load', async () => {
    const bad = await writePolicy(dir.path, 'tools:\n  echo:\n    rules:\n      - action: alow\n', 'bad.yaml');
    const out = await intercept('replay', '-c', bad, '--events', recorded.events);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /bad\.yaml:4:\d+: /);
    assert.equal(out.stdout, '');
  });
});
