// `intercept replay` and what it is built from: replay() (src/audit/replay.ts) over trails
// written by the real EventLog and read back by the real reader, decided by the real engine
// with counters in a real memory store; and runReplay (src/cli/replay.ts) as a user runs it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { argumentsHash } from '../../src/approval/binding.js';
import type { ProxyEvent } from '../../src/audit/event.js';
import { readTrail } from '../../src/audit/reader.js';
import { auditArgRules, redactArgs } from '../../src/audit/redact.js';
import { replay, type ReplayReport, type ToolFacts } from '../../src/audit/replay.js';
import { runReplay } from '../../src/cli/replay.js';
import { compile, type CompiledPolicy } from '../../src/engine/compile.js';
import { parsePolicy } from '../../src/policy/load.js';
import { makeTempDir, writePolicy } from '../support/temp.js';
import { capture, denial, toolCall, writeProxy, type CallExtra } from '../support/trail-writer.js';

const SECOND = 1000;
/** 2026-01-10T12:00:00Z */
const T = Date.UTC(2026, 0, 10, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

function policyOf(yaml: string): CompiledPolicy {
  const loaded = parsePolicy(yaml, 'new.yaml');
  if (!loaded.ok) throw new Error(loaded.issues.map((i) => i.message).join('; '));
  return compile(loaded.policy);
}

/** A call as --log-args records it: the arguments (redacted as the proxy redacts them) and
 * the hash of what was really sent. */
function withArgs(args: Record<string, unknown>, extra: CallExtra = {}): CallExtra {
  const rules = auditArgRules(policyOf('tools: {}'), 'any');
  return { args: redactArgs(args, rules), argsHash: argumentsHash(args), ...extra };
}

/** Writes the events as one proxy's trail, reads it back, and replays it under `yaml`. */
async function replayed(yaml: string, events: [number, ProxyEvent][], tools?: Map<string, ToolFacts>): Promise<ReplayReport> {
  const dir = await makeTempDir('intercept-replay-');
  try {
    await writeProxy(dir.path, 'h-1-aaaaaa', events);
    const { records, problems } = await readTrail(dir.path);
    assert.deepEqual(problems, []);
    return await replay(records, policyOf(yaml), { now: T + 3600 * SECOND, tools });
  } finally {
    await dir.cleanup();
  }
}

const change = (r: ReplayReport, kind: string) => r.changes.filter((c) => c.change === kind);

describe('replay: who called', () => {
  it('keeps a scope: identity limit per recorded subject, across sessions, and refuses calls without one', async () => {
    const r = await replayed(
      `
tools:
  get:
    rules:
      - action: allow
        rate_limit: { max: 2, window: 60, scope: identity }
`,
      [
        [T, toolCall('get', { subject: 'alice', session: 'a1' })],
        [T + 1 * SECOND, toolCall('get', { subject: 'alice', session: 'a2' })],
        [T + 2 * SECOND, toolCall('get', { subject: 'alice', session: 'a3' })],
        [T + 3 * SECOND, toolCall('get', { subject: 'bob', session: 'b1' })],
        [T + 4 * SECOND, toolCall('get', { session: 'anonymous' })],
      ],
    );
    const denied = change(r, 'newly_denied');
    assert.deepEqual(denied.map((d) => [d.kind, d.session, d.first]).sort(), [
      ['identity_required', 'anonymous', iso(T + 4 * SECOND)],
      ['rate_limit', 'a3', iso(T + 2 * SECOND)],
    ]);
    assert.equal(r.totals.unchanged, 3);
  });

  it('reports a rule that reads claims or scopes as undecidable: the trail keeps only the subject', async () => {
    const r = await replayed(
      `
tools:
  pay:
    rules:
      - name: finance only
        action: allow
        conditions:
          - path: identity.claims.groups
            op: contains
            value: finance
`,
      [[T, toolCall('pay', { subject: 'alice' })]],
    );
    assert.equal(r.totals.undecidable, 1);
    assert.equal(r.undecidableBy.identity_not_recorded, 1);
  });
});

describe('replay: counters, simulated at each call\'s own time', () => {
  const LIMIT = `
tools:
  get:
    rules:
      - action: allow
        rate_limit: { max: 2, window: 60 }
`;

  it('denies the calls a rolling limit would have refused, per session, and admits them again once the window has passed', async () => {
    const r = await replayed(LIMIT, [
      [T, toolCall('get')],
      [T + 1 * SECOND, toolCall('get')],
      [T + 2 * SECOND, toolCall('get')],
      [T + 3 * SECOND, toolCall('get', { session: 's2' })],
      [T + 70 * SECOND, toolCall('get')],
    ]);
    assert.equal(r.calls, 5);
    assert.deepEqual(r.totals, { unchanged: 4, newlyDenied: 1, newlyAllowed: 0, newlyHeld: 0, undecidable: 0 });
    const [denied] = change(r, 'newly_denied');
    assert.equal(denied!.tool, 'get');
    assert.equal(denied!.kind, 'rate_limit');
    assert.equal(denied!.rule, 'get#1');
    assert.equal(denied!.was, 'allow');
    assert.equal(denied!.count, 1);
    assert.equal(denied!.session, 's1');
    assert.equal(denied!.first, iso(T + 2 * SECOND));
    assert.equal(denied!.last, iso(T + 2 * SECOND));
    assert.match(denied!.message!, /Rate limit of 2 calls per minute/);
    // No rule read the arguments, none were logged: decided by tool.
    assert.equal(denied!.byTool, 1);
    assert.deepEqual(r.decided, { withArgs: 0, byTool: 5 });
    assert.deepEqual(r.rules, [{ rule: 'get#1', unchanged: 0, newlyDenied: 1, newlyAllowed: 0, newlyHeld: 0, undecidable: 0 }]);
    assert.deepEqual(r.tools, [{ tool: 'get', calls: 5, unchanged: 4, newlyDenied: 1, newlyAllowed: 0, newlyHeld: 0, undecidable: 0 }]);
  });

  it('counts calls the old policy denied as calls that happened', async () => {
    const r = await replayed(LIMIT.replace('max: 2', 'max: 1'), [
      [T, denial('get', 'deny_rule', 'no get')],
      [T + SECOND, toolCall('get')],
    ]);
    const [allowed] = change(r, 'newly_allowed');
    assert.equal(allowed!.count, 1);
    assert.equal(allowed!.was, 'deny');
    assert.equal(allowed!.kind, 'deny_rule');
    assert.equal(allowed!.rule, 'no get');
    const [denied] = change(r, 'newly_denied');
    assert.equal(denied!.first, iso(T + SECOND));
    assert.equal(denied!.kind, 'rate_limit');
    assert.deepEqual(r.rules.map((x) => x.rule).sort(), ['get#1', 'no get']);
  });

  it('gives back the charge of a call the server answered with a JSON-RPC error, when its answer came', async () => {
    const events: [number, ProxyEvent][] = [
      // Forwarded at T, answered at T+5s: it counted for those five seconds.
      [T + 5 * SECOND, toolCall('get', { outcome: 'jsonrpc_error', upstreamMs: 5000 })],
      [T + 6 * SECOND, toolCall('get')],
    ];
    const limitOne = LIMIT.replace('max: 2', 'max: 1');
    assert.deepEqual((await replayed(limitOne, events)).totals.newlyDenied, 0);
    // A call decided while the failed one still counted is refused.
    const during: [number, ProxyEvent][] = [...events.slice(0, 1), [T + 3 * SECOND, toolCall('get', { upstreamMs: 0 })]];
    const r = await replayed(limitOne, during);
    assert.equal(change(r, 'newly_denied')[0]!.first, iso(T + 3 * SECOND));
  });

  it('keeps global counters across sessions and calendar windows by the clock', async () => {
    const r = await replayed(
      `
tools:
  get:
    rules:
      - name: "hourly"
        rate_limit: 2/hour
`,
      [
        [T + 1 * SECOND, toolCall('get', { session: 'a' })],
        [T + 2 * SECOND, toolCall('get', { session: 'b' })],
        [T + 3 * SECOND, toolCall('get', { session: 'c' })],
        // Decided when forwarded (2 ms before its record): in the next hour.
        [T + 3601 * SECOND, toolCall('get', { session: 'd' })],
      ],
    );
    const [denied] = change(r, 'newly_denied');
    assert.equal(denied!.count, 1);
    assert.equal(denied!.session, 'c');
  });
});

describe('replay: arguments', () => {
  const TO = `
tools:
  send:
    rules:
      - name: "only +1"
        conditions:
          - { path: "args.to", op: "regex", value: "^\\\\+1" }
`;

  it('decides with the arguments the trail kept, and reports calls whose arguments were not logged as undecidable', async () => {
    const r = await replayed(TO, [
      [T, toolCall('send', withArgs({ to: '+15550001' }))],
      [T + SECOND, toolCall('send', withArgs({ to: '+445550001' }))],
      [T + 2 * SECOND, toolCall('send', withArgs({ to: '+445550002' }))],
      [T + 3 * SECOND, toolCall('send')],
    ]);
    assert.deepEqual(r.totals, { unchanged: 1, newlyDenied: 2, newlyAllowed: 0, newlyHeld: 0, undecidable: 1 });
    const [denied] = change(r, 'newly_denied');
    assert.equal(denied!.count, 2);
    assert.equal(denied!.kind, 'condition');
    assert.equal(denied!.rule, 'only +1');
    assert.equal(denied!.byTool, 0);
    assert.equal(denied!.first, iso(T + SECOND));
    assert.equal(denied!.last, iso(T + 2 * SECOND));
    assert.deepEqual(r.undecidable, [{ tool: 'send', reason: 'args_not_logged', rule: 'only +1', count: 1, first: iso(T + 3 * SECOND), last: iso(T + 3 * SECOND), session: 's1' }]);
    assert.equal(r.undecidableBy.args_not_logged, 1);
    assert.deepEqual(r.decided, { withArgs: 3, byTool: 0 });
  });

  it('does not decide on a value redaction replaced, nor on a member a redacted record lacks, but does on what it kept', async () => {
    const KEY = `
tools:
  send:
    rules:
      - name: "only +1"
        conditions:
          - { path: "args.to", op: "regex", value: "^\\\\+1" }
      - name: "key"
        conditions:
          - { path: "args.api_key", op: "eq", value: "k-1" }
  note:
    rules:
      - name: "no cc"
        conditions:
          - { path: "args.cc", op: "exists", value: false }
`;
    const r = await replayed(KEY, [
      // api_key is redacted: "only +1" is decided on `to`, "key" cannot be.
      [T, toolCall('send', withArgs({ to: '+15550001', api_key: 'k-1' }))],
      // Denied by "only +1" before "key" is reached: decided.
      [T + SECOND, toolCall('send', withArgs({ to: '+445550001', api_key: 'k-1' }))],
      // A redacted record without `cc`: it may have been dropped from the trail.
      [T + 2 * SECOND, toolCall('note', withArgs({ text: 'token sk-abcdefghijklmnopqrstuvwx1234' }))],
      // The same without redaction: all of the arguments are known, so `cc` really was absent.
      [T + 3 * SECOND, toolCall('note', withArgs({ text: 'plain' }))],
    ]);
    assert.deepEqual(
      r.undecidable.map((u) => [u.tool, u.reason, u.rule, u.count]),
      [
        ['send', 'args_redacted', 'key', 1],
        ['note', 'args_redacted', 'no cc', 1],
      ],
    );
    assert.equal(change(r, 'newly_denied')[0]!.rule, 'only +1');
    assert.equal(r.totals.unchanged, 1);
  });

  it('decides by tool, without arguments, whatever a rule that is not reached would read', async () => {
    const r = await replayed(
      `
tools:
  send:
    rules:
      - action: deny
        reason: "no sending"
      - name: "only +1"
        conditions:
          - { path: "args.to", op: "regex", value: "^\\\\+1" }
`,
      [[T, toolCall('send')]],
    );
    const [denied] = change(r, 'newly_denied');
    assert.equal(denied!.kind, 'deny_rule');
    assert.equal(denied!.message, 'no sending');
    assert.equal(denied!.byTool, 1);
    assert.equal(r.totals.undecidable, 0);
  });

  it('needs the arguments for keyed counters and increment_from', async () => {
    const r = await replayed(
      `
version: "1"
tools:
  pay:
    rules:
      - name: "spend"
        conditions:
          - { path: "state.pay.spent", op: "lte", value: 100 }
        state: { counter: spent, window: day, increment_from: args.amount }
  sms:
    rules:
      - name: "per number"
        rate_limit: { max: 1, window: 60, key: [args.to] }
`,
      [
        [T, toolCall('pay', withArgs({ amount: 90 }))],
        [T + SECOND, toolCall('pay', withArgs({ amount: 20 }))],
        [T + 2 * SECOND, toolCall('pay')],
        [T + 3 * SECOND, toolCall('sms', withArgs({ to: 'a' }))],
        [T + 4 * SECOND, toolCall('sms', withArgs({ to: 'b' }))],
        [T + 5 * SECOND, toolCall('sms', withArgs({ to: 'a' }))],
        [T + 6 * SECOND, toolCall('sms')],
      ],
    );
    assert.deepEqual(
      r.changes.map((c) => [c.tool, c.kind, c.count, c.first]),
      [
        // 90 + 20 would pass the cap of 100.
        ['pay', 'rate_limit', 1, iso(T + SECOND)],
        ['sms', 'rate_limit', 1, iso(T + 5 * SECOND)],
      ],
    );
    assert.deepEqual(
      r.undecidable.map((u) => [u.tool, u.reason, u.rule]).sort(),
      [
        ['pay', 'args_not_logged', 'spend'],
        ['sms', 'args_not_logged', 'per number'],
      ],
    );
  });
  it('needs the arguments to read a keyed counter\'s bucket in a condition', async () => {
    const r = await replayed(
      `
version: "1"
tools:
  issue:
    rules:
      - name: "cap"
        conditions:
          - { path: "state.issue.per_repo", op: "lt", value: 1 }
      - name: "count"
        state: { counter: per_repo, window: day, key: [args.repo] }
`,
      [
        [T, toolCall('issue', withArgs({ repo: 'a' }))],
        [T + SECOND, toolCall('issue', withArgs({ repo: 'a' }))],
        [T + 2 * SECOND, toolCall('issue', withArgs({ repo: 'b' }))],
        [T + 3 * SECOND, toolCall('issue')],
      ],
    );
    assert.deepEqual(r.changes.map((c) => [c.kind, c.rule, c.first]), [['condition', 'cap', iso(T + SECOND)]]);
    assert.deepEqual(r.undecidable.map((u) => [u.reason, u.rule]), [['args_not_logged', 'cap']]);
  });

  it('does not decide on a value the trail kept as its hash', async () => {
    const hashed = { ...auditArgRules(policyOf('tools: {}'), 'send'), hash: ['args.to'] };
    const args = { to: '+15550001' };
    const r = await replayed(
      'tools:\n  send:\n    rules:\n      - name: "only +1"\n        conditions:\n          - { path: "args.to", op: "regex", value: "^\\\\+1" }\n',
      [[T, toolCall('send', { args: redactArgs(args, hashed), argsHash: argumentsHash(args) })]],
    );
    assert.deepEqual(r.undecidable.map((u) => [u.reason, u.rule]), [['args_redacted', 'only +1']]);
  });
});

describe('replay: what the trail does not hold about a tool', () => {
  const VALIDATED = `
tools:
  create:
    rules:
      - action: allow
        validate: { required_args: true }
`;
  const schema: ToolFacts = { schema: { required: ['title'] } };

  it('reports validate rules as undecidable without the tool\'s inputSchema, and decides them with it', async () => {
    const events: [number, ProxyEvent][] = [
      [T, toolCall('create', withArgs({ title: 'x' }))],
      [T + SECOND, toolCall('create', withArgs({ body: 'y' }))],
      [T + 2 * SECOND, toolCall('create')],
    ];
    const without = await replayed(VALIDATED, events);
    assert.equal(without.undecidableBy.schema_unknown, 3);
    assert.equal(without.undecidable[0]!.rule, 'create#1');

    const r = await replayed(VALIDATED, events, new Map([['create', schema]]));
    assert.equal(r.totals.unchanged, 1);
    const [denied] = change(r, 'newly_denied');
    assert.equal(denied!.kind, 'missing_args');
    assert.equal(denied!.first, iso(T + SECOND));
    // Without arguments, whether `title` was there cannot be known.
    assert.deepEqual(r.undecidable.map((u) => [u.reason, u.count]), [['args_not_logged', 1]]);
  });

  it('decides by tool when the schema requires nothing', async () => {
    const r = await replayed(VALIDATED, [[T, toolCall('create')]], new Map([['create', { schema: { required: [] } }]]));
    assert.deepEqual(r.decided, { withArgs: 0, byTool: 1 });
    assert.equal(r.totals.unchanged, 1);
  });

  it('needs the tool\'s class for classes: rules', async () => {
    const CLASSES = `
tools: {}
classes:
  destructive:
    rules:
      - action: deny
        reason: "nothing destructive"
`;
    const events: [number, ProxyEvent][] = [[T, toolCall('wipe')]];
    assert.equal((await replayed(CLASSES, events)).undecidableBy.class_unknown, 1);
    const r = await replayed(CLASSES, events, new Map([['wipe', { toolClass: 'destructive' as const }]]));
    assert.equal(change(r, 'newly_denied')[0]!.message, 'nothing destructive');
    const read = await replayed(CLASSES, events, new Map([['wipe', { toolClass: 'read' as const }]]));
    assert.equal(read.totals.unchanged, 1);
  });
});

describe('replay: the old decision', () => {
  it('takes a dry run\'s would-be denial as the old policy\'s, approvals as held, and skips withdrawn and malformed calls', async () => {
    const r = await replayed(
      `
hide: [secret]
tools:
  ask:
    rules:
      - name: "a human says"
        action: require_approval
`,
      [
        // Under --dry-run: forwarded, but the old policy would have denied it.
        [T, toolCall('free', { dryRun: true, kind: 'deny_rule', rule: 'old', message: 'no free' })],
        // Approved by a human before: held again now.
        [T + 1 * SECOND, toolCall('ask', { approval: 'apr_1' })],
        // Allowed before, held now.
        [T + 2 * SECOND, toolCall('ask')],
        [T + 3 * SECOND, toolCall('secret')],
        [T + 4 * SECOND, toolCall('free', { decision: 'cancelled', outcome: 'cancelled' })],
        [T + 5 * SECOND, { type: 'tool_call', session: 's1', decision: 'allow' } as ProxyEvent],
      ],
    );
    assert.equal(r.calls, 4);
    assert.equal(r.withdrawn, 1);
    assert.equal(r.malformed, 1);
    assert.deepEqual(
      r.changes.map((c) => [c.change, c.tool, c.was, c.kind, c.rule]),
      [
        ['newly_allowed', 'free', 'deny', 'deny_rule', 'old'],
        ['newly_held', 'ask', 'allow', undefined, 'a human says'],
        ['newly_denied', 'secret', 'allow', 'hidden', undefined],
      ],
    );
    assert.equal(r.totals.unchanged, 1);
    assert.deepEqual(r.rules.find((x) => x.rule === 'a human says'), { rule: 'a human says', unchanged: 1, newlyDenied: 0, newlyAllowed: 0, newlyHeld: 1, undecidable: 0 });
  });

  it('reports an empty trail as no calls', async () => {
    const r = await replayed('tools: {}', []);
    assert.equal(r.calls, 0);
    assert.equal(r.from, undefined);
    assert.deepEqual(r.changes, []);
  });
});

describe('intercept replay', () => {
  const RECENT = Date.now() - 3600 * SECOND;

  async function trail(events: [number, ProxyEvent][]) {
    const dir = await makeTempDir('intercept-replay-cli-');
    await writeProxy(dir.file('events'), 'h-1-aaaaaa', events);
    return dir;
  }

  it('prints what would change as tables, and the same as JSON', async () => {
    const dir = await trail([
      [RECENT, toolCall('get')],
      [RECENT + SECOND, toolCall('get')],
      [RECENT + 2 * SECOND, toolCall('send')],
    ]);
    try {
      const policy = await writePolicy(dir.path, 'tools:\n  get:\n    rules:\n      - action: allow\n        rate_limit: { max: 1, window: 60 }\n');
      const text = await capture(() => runReplay({ config: policy, events: dir.file('events'), color: false }));
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /Replay of 3 call\(s\)/);
      assert.match(text.stdout, /unchanged 2 {3}newly denied 1 {3}newly allowed 0/);
      const deniedSection = text.stdout.slice(text.stdout.indexOf('Newly denied'), text.stdout.indexOf('Newly allowed'));
      assert.match(deniedSection, /^ {2}get +allowed +rate_limit +get#1 +1 +1 /m);
      assert.doesNotMatch(text.stdout, /\x1b\[/);
      const colour = await capture(() => runReplay({ config: policy, events: dir.file('events'), color: true }));
      assert.match(colour.stdout, /\x1b\[31m/);

      const json = await capture(() => runReplay({ config: policy, eventsDir: dir.file('events'), json: true }));
      assert.equal(json.code, 0);
      const report = JSON.parse(json.stdout) as ReplayReport & { eventsDir: string };
      assert.equal(report.eventsDir, dir.file('events'));
      assert.deepEqual(report.totals, { unchanged: 2, newlyDenied: 1, newlyAllowed: 0, newlyHeld: 0, undecidable: 0 });
      assert.equal(report.changes[0]!.first, iso(RECENT + SECOND));
    } finally {
      await dir.cleanup();
    }
  });

  it('leaves out calls older than --since', async () => {
    const dir = await trail([
      [RECENT - 10 * 86400 * SECOND, toolCall('get')],
      [RECENT, toolCall('get')],
    ]);
    try {
      const policy = await writePolicy(dir.path, 'tools: {}\n');
      const week = JSON.parse((await capture(() => runReplay({ config: policy, events: dir.file('events'), json: true }))).stdout) as ReplayReport;
      assert.equal(week.calls, 1);
      const all = JSON.parse((await capture(() => runReplay({ config: policy, events: dir.file('events'), since: '30d', json: true }))).stdout) as ReplayReport;
      assert.equal(all.calls, 2);
    } finally {
      await dir.cleanup();
    }
  });

  it('takes the tools of intercept scan --format json, or a map of inputSchemas, for validate rules', async () => {
    const dir = await trail([[RECENT, toolCall('create', withArgs({ body: 'y' }))]]);
    try {
      const policy = await writePolicy(dir.path, 'tools:\n  create:\n    rules:\n      - action: allow\n        validate: { required_args: true }\n');
      const scanned = dir.file('scan.json');
      await writeFile(scanned, JSON.stringify({ server: { name: 's', version: '1' }, tools: [{ name: 'create', description: '', category: 'write', risk: 2, reason: '', annotations: {}, parameters: [{ name: 'title', type: 'string', required: true }], recommended: { rules: [] } }] }));
      const map = dir.file('map.json');
      await writeFile(map, JSON.stringify({ create: { type: 'object', required: ['title'] } }));
      for (const file of [scanned, map]) {
        const out = await capture(() => runReplay({ config: policy, events: dir.file('events'), inputSchemas: file, json: true }));
        assert.equal(out.code, 0, out.stderr);
        assert.equal((JSON.parse(out.stdout) as ReplayReport).changes[0]!.kind, 'missing_args', file);
      }
    } finally {
      await dir.cleanup();
    }
  });

  it('exits 2 for a policy that does not load, printing its issues as validate does, and for bad flags', async () => {
    const dir = await trail([]);
    try {
      const bad = await writePolicy(dir.path, 'tools:\n  get:\n    rules:\n      - action: allow\n        rate-limit: 5\n');
      const out = await capture(() => runReplay({ config: bad, events: dir.file('events') }));
      assert.equal(out.code, 2);
      assert.match(out.stderr, /policy\.yaml:5:\d+: .*rate-limit/);
      assert.match(out.stderr, /the policy file has 1 error/);
      assert.equal(out.stdout, '');

      const good = await writePolicy(dir.path, 'tools: {}\n', 'good.yaml');
      const since = await capture(() => runReplay({ config: good, since: 'soon' }));
      assert.equal(since.code, 2);
      assert.match(since.stderr, /--since/);

      const schemas = dir.file('schemas.json');
      await writeFile(schemas, JSON.stringify({ tools: [{ name: 'a', inputSchema: { type: 'object' } }, { name: 'b', inputSchema: 'nope' }] }));
      const bad2 = await capture(() => runReplay({ config: good, events: dir.file('events'), inputSchemas: schemas }));
      assert.equal(bad2.code, 2);
      assert.match(bad2.stderr, /schemas\.json: tools\[1\]\.inputSchema: expected a JSON object/);
      await writeFile(schemas, '{"a": ');
      assert.match((await capture(() => runReplay({ config: good, events: dir.file('events'), inputSchemas: schemas }))).stderr, /schemas\.json is not valid JSON/);
    } finally {
      await dir.cleanup();
    }
  });

  it('keeps control characters from the trail off the terminal', async () => {
    const dir = await trail([[RECENT, toolCall('evil\x1b[2Jtool')]]);
    try {
      const policy = await writePolicy(dir.path, 'default: deny\ntools: {}\n');
      const out = await capture(() => runReplay({ config: policy, events: dir.file('events'), color: false }));
      assert.match(out.stdout, /evil\?\[2Jtool/);
      assert.doesNotMatch(out.stdout, /\x1b/);
    } finally {
      await dir.cleanup();
    }
  });
});
