// Policy test cases (`intercept test`): the cases file as the loader reads it (and every error it
// names, with line and field), the cases run against real policies through the real engine and
// an in-memory counter store, the report, and the starter cases `intercept scan -o` writes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compile } from '../../src/engine/compile.js';
import type { CasesFile } from '../../src/offline/cases.js';
import { parseCases } from '../../src/offline/load-cases.js';
import { formatReport, reportJson } from '../../src/offline/report.js';
import { checkCases, runCases, type CaseResult } from '../../src/offline/run-cases.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { PolicyIssue } from '../../src/policy/model.js';
import type { DiscoveredTool } from '../../src/scan/discover.js';
import { buildScaffold, scaffoldYaml } from '../../src/scan/scaffold.js';
import { starterCasesPath, starterCasesYaml } from '../../src/scan/starter-cases.js';

const POLICY = `version: "1"
hide: [drop_database]
tools:
  create_charge:
    rules:
      - name: max single charge
        conditions:
          - { path: args.amount, op: lte, value: 50000 }
        on_deny: "Single charge cannot exceed $500.00"
      - name: daily spend cap
        conditions:
          - { path: state.create_charge.daily_spend, op: lte, value: 100000 }
        on_deny: "Daily spending cap reached"
        state: { counter: daily_spend, window: day, increment_from: args.amount }
  create_issue:
    rules:
      - name: hourly
        rate_limit: 5/hour
  send_sms:
    rules:
      - action: allow
        rate_limit: { max: 3, window: 60, key: [args.to] }
        validate: { required_args: true }
  update_record:
    rules:
      - action: allow
        validate: { schema: true }
  wire_money:
    rules:
      - name: big wires
        action: require_approval
        conditions: [{ path: args.amount, op: gt, value: 1000 }]
      - name: wires per hour
        rate_limit: 2/hour
  refund:
    rules:
      - action: deny
        reason: "Refunds go through a human"
classes:
  destructive:
    rules:
      - action: deny
        reason: "No destructive tools"
`;

function loadPolicy(text = POLICY) {
  const loaded = parsePolicy(text, 'policy.yaml');
  assert.ok(loaded.ok, loaded.ok ? '' : JSON.stringify(loaded.issues));
  return compile(loaded.policy);
}

function loadCases(text: string): CasesFile {
  const loaded = parseCases(text, 'cases.yaml');
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.issues.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`).join('\n'));
  return loaded.cases;
}

function issuesOf(text: string): PolicyIssue[] {
  const loaded = parseCases(text, 'cases.yaml');
  assert.ok(!loaded.ok, 'the cases file should not load');
  return loaded.issues;
}

async function run(casesText: string, policyText = POLICY): Promise<CaseResult[]> {
  const policy = loadPolicy(policyText);
  const cases = loadCases(casesText);
  assert.deepEqual(checkCases(policy, cases), []);
  return runCases(policy, cases);
}

/** Each case's name, and whether it passed. */
function verdicts(results: CaseResult[]): Record<string, boolean> {
  return Object.fromEntries(results.map((r) => [r.case.name, r.passed]));
}

describe('cases file: what loads', () => {
  it('reads every field of a case', () => {
    const file = loadCases(`
x-schema: &schema { type: object, required: [to] }
cases:
  - name: everything
    call: { tool: send_sms, args: { to: "+1555", body: hi, n: 1.5, nested: { list: [1, null, true] } } }
    input_schema: *schema
    tool_class: write
    counters: { create_charge.daily_spend: 40 }
    before:
      - { tool: send_sms, args: { to: "+1555" }, times: 2, after: 10s }
      - tool: create_issue
        input_schema: { type: object }
        tool_class: read
    at: "2024-03-01T09:30:00+01:00"
    after: 90
    expect:
      deny: { kind: rate_limit, rule: "send_sms#1", message: "/^Rate limit/" }
  - { name: plain allow, call: { tool: x }, expect: allow }
  - { name: plain approval, call: { tool: x }, expect: approval }
  - { name: approval by rule, call: { tool: x }, expect: { approval: big wires } }
  - { name: approval as a map, call: { tool: x }, expect: { approval: { rule: big wires } } }
  - { name: deny a kind, call: { tool: x }, expect: { deny: hidden } }
  - { name: deny anything, call: { tool: x }, expect: { deny: } }
  - { name: a message part, call: { tool: x }, expect: { deny: { message: "/ not a regex" } } }
`);
    const [c, ...rest] = file.cases;
    assert.equal(c!.name, 'everything');
    assert.deepEqual(c!.call, { name: 'send_sms', args: { to: '+1555', body: 'hi', n: 1.5, nested: { list: [1, null, true] } } });
    assert.deepEqual(c!.inputSchema, { type: 'object', required: ['to'] });
    assert.equal(c!.toolClass, 'write');
    assert.deepEqual(c!.counters.map((p) => [p.id, p.value, p.pos.line]), [['create_charge.daily_spend', 40, 8]]);
    assert.deepEqual(
      c!.before.map((b) => [b.call.name, b.times, b.afterMs, b.inputSchema, b.toolClass]),
      [
        ['send_sms', 2, 10_000, undefined, undefined],
        ['create_issue', 1, 0, { type: 'object' }, 'read'],
      ],
    );
    assert.equal(c!.startsAt, Date.parse('2024-03-01T08:30:00Z'));
    assert.equal(c!.afterMs, 90_000);
    assert.equal(c!.timed, true);
    assert.deepEqual(c!.expect, { decision: 'deny', kind: 'rate_limit', rule: 'send_sms#1', message: { regex: '^Rate limit' } });
    assert.deepEqual(c!.pos, { file: 'cases.yaml', line: 4, col: 5 });
    assert.deepEqual(
      rest.map((r) => r.expect),
      [
        { decision: 'allow' },
        { decision: 'approval' },
        { decision: 'approval', rule: 'big wires' },
        { decision: 'approval', rule: 'big wires' },
        { decision: 'deny', kind: 'hidden' },
        { decision: 'deny' },
        { decision: 'deny', message: { contains: '/ not a regex' } },
      ],
    );
    assert.equal(rest[0]!.startsAt, Date.UTC(2024, 0, 1), 'cases start at 2024-01-01T00:00:00Z unless they say');
    assert.equal(rest[0]!.timed, false);
  });

  it('an empty list of cases loads (and runs nothing)', () => {
    assert.deepEqual(loadCases('cases:\n').cases, []);
    assert.deepEqual(loadCases('cases: []\n').cases, []);
  });

  it('"__proto__" in arguments is an argument like any other', () => {
    const file = loadCases('cases:\n  - { name: p, call: { tool: x, args: { __proto__: { polluted: 1 } } }, expect: allow }\n');
    const args = file.cases[0]!.call.args;
    assert.deepEqual(Object.keys(args), ['__proto__']);
    assert.equal(Object.getPrototypeOf(args), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('cases file: every error with its line, column and field', () => {
  const bad: Array<[string, string, { line: number; col: number; path: string; message: RegExp }]> = [
    ['an unknown case key, with a suggestion', 'cases:\n  - name: a\n    call: { tool: x }\n    expct: allow\n', { line: 4, col: 5, path: 'cases[0]', message: /unknown key "expct" \(did you mean "expect"\?\)/ }],
    ['an unknown top-level key', 'case:\n  - name: a\n', { line: 1, col: 1, path: '', message: /unknown key "case" \(did you mean "cases"\?\)/ }],
    ['a missing name', 'cases:\n  - call: { tool: x }\n    expect: allow\n', { line: 2, col: 5, path: 'cases[0]', message: /name is required/ }],
    ['a missing call', 'cases:\n  - name: a\n    expect: allow\n', { line: 2, col: 5, path: 'cases[0]', message: /call is required/ }],
    ['a missing expect', 'cases:\n  - name: a\n    call: { tool: x }\n', { line: 2, col: 5, path: 'cases[0]', message: /expect is required/ }],
    ['a call without a tool', 'cases:\n  - name: a\n    call: { args: {} }\n    expect: allow\n', { line: 3, col: 11, path: 'cases[0].call', message: /tool is required/ }],
    ['args that are not a map', 'cases:\n  - name: a\n    call: { tool: x, args: [1] }\n    expect: allow\n', { line: 3, col: 28, path: 'cases[0].call.args', message: /args must be a map/ }],
    ['args whose keys differ only in case', 'cases:\n  - name: a\n    call: { tool: x, args: { To: 1, to: 2 } }\n    expect: allow\n', { line: 3, col: 28, path: 'cases[0].call.args', message: /differ only in case/ }],
    ['an infinite number', 'cases:\n  - name: a\n    call: { tool: x, args: { n: .inf } }\n    expect: allow\n', { line: 3, col: 33, path: 'cases[0].call.args.n', message: /finite numbers/ }],
    ['an unknown decision, with a suggestion', 'cases:\n  - name: a\n    call: { tool: x }\n    expect: alow\n', { line: 4, col: 13, path: 'cases[0].expect', message: /expect must be allow, deny or approval \(did you mean "allow"\?\)/ }],
    ['an unknown denial kind, with a suggestion', 'cases:\n  - name: a\n    call: { tool: x }\n    expect: { deny: rate-limit }\n', { line: 4, col: 21, path: 'cases[0].expect.deny', message: /unknown denial kind "rate-limit" \(did you mean "rate_limit"\?\)/ }],
    ['a kind no offline decision has', 'cases:\n  - name: a\n    call: { tool: x }\n    expect: { deny: { kind: unpinned } }\n', { line: 4, col: 29, path: 'cases[0].expect.deny.kind', message: /unknown denial kind "unpinned"/ }],
    ['deny and approval at once', 'cases:\n  - name: a\n    call: { tool: x }\n    expect: { deny: hidden, approval: r }\n', { line: 4, col: 13, path: 'cases[0].expect', message: /one of deny or approval, not both/ }],
    ['details on allow', 'cases:\n  - name: a\n    call: { tool: x }\n    expect: { allow: true }\n', { line: 4, col: 15, path: 'cases[0].expect', message: /write "expect: allow"/ }],
    ['an invalid regex', 'cases:\n  - name: a\n    call: { tool: x }\n    expect: { deny: { message: "/(/" } }\n', { line: 4, col: 32, path: 'cases[0].expect.deny.message', message: /invalid regex "\("/ }],
    ['times that is not a whole number', 'cases:\n  - name: a\n    call: { tool: x }\n    before: [{ tool: x, times: 0 }]\n    expect: allow\n', { line: 4, col: 32, path: 'cases[0].before[0].times', message: /times must be a whole number from 1 to 100000/ }],
    ['a before entry without a tool', 'cases:\n  - name: a\n    call: { tool: x }\n    before: [{ times: 2 }]\n    expect: allow\n', { line: 4, col: 14, path: 'cases[0].before[0]', message: /tool is required/ }],
    ['a time without a zone', 'cases:\n  - name: a\n    call: { tool: x }\n    at: 2024-01-01T09:00:00\n    expect: allow\n', { line: 4, col: 9, path: 'cases[0].at', message: /with Z or an offset/ }],
    ['a duration that is not one', 'cases:\n  - name: a\n    call: { tool: x }\n    after: soon\n    expect: allow\n', { line: 4, col: 12, path: 'cases[0].after', message: /after must be a duration/ }],
    ['an unknown tool class', 'cases:\n  - name: a\n    call: { tool: x }\n    tool_class: reading\n    expect: allow\n', { line: 4, col: 17, path: 'cases[0].tool_class', message: /tool_class must be one of read, write/ }],
    ['a negative counter', 'cases:\n  - name: a\n    call: { tool: x }\n    counters: { x.y: -1 }\n    expect: allow\n', { line: 4, col: 22, path: 'cases[0].counters.x.y', message: /0 or more/ }],
    ['an input_schema that is not a map', 'cases:\n  - name: a\n    call: { tool: x }\n    input_schema: [1]\n    expect: allow\n', { line: 4, col: 19, path: 'cases[0].input_schema', message: /JSON Schema map/ }],
    ['two cases of one name', 'cases:\n  - { name: a, call: { tool: x }, expect: allow }\n  - { name: a, call: { tool: y }, expect: allow }\n', { line: 3, col: 7, path: 'cases[1].name', message: /duplicate case name "a" \(first used at line 2\)/ }],
    ['a duplicate argument', 'cases:\n  - name: a\n    call: { tool: x, args: { a: 1, a: 2 } }\n    expect: allow\n', { line: 3, col: 36, path: 'cases[0].call.args', message: /duplicate key "a"/ }],
    ['a duplicate key', 'cases:\n  - name: a\n    name: b\n', { line: 3, col: 5, path: 'cases[0]', message: /duplicate key "name"/ }],
    ['cases that are not a list', 'cases: { a: 1 }\n', { line: 1, col: 8, path: 'cases', message: /cases must be a list/ }],
    ['a file that is not a map', '- a\n', { line: 1, col: 1, path: '', message: /must be a map with a "cases" list/ }],
    ['an empty file', '', { line: 1, col: 1, path: '', message: /cases file is empty/ }],
    ['two documents', 'cases: []\n---\ncases: []\n', { line: 2, col: 1, path: '', message: /single YAML document/ }],
    ['YAML that does not parse', 'cases: [\n', { line: 2, col: 1, path: '', message: /invalid YAML/ }],
  ];
  for (const [label, text, want] of bad) {
    it(label, () => {
      const issues = issuesOf(text);
      const found = issues.find((i) => want.message.test(i.message));
      assert.ok(found, `no issue matching ${want.message}: ${JSON.stringify(issues)}`);
      assert.deepEqual({ line: found.line, col: found.col, path: found.path }, { line: want.line, col: want.col, path: want.path });
      assert.equal(found.file, 'cases.yaml');
    });
  }

  it('reports every problem of the file at once', () => {
    const issues = issuesOf('cases:\n  - name: a\n    call: { tool: x }\n    expect: maybe\n  - name: b\n    expect: allow\n');
    assert.deepEqual(
      issues.map((i) => i.line),
      [4, 5],
    );
  });

  it('values nested deeper than 64 levels are refused', () => {
    const deep = '['.repeat(70) + ']'.repeat(70);
    const issues = issuesOf(`cases:\n  - name: a\n    call: { tool: x, args: { d: ${deep} } }\n    expect: allow\n`);
    assert.match(issues[0]!.message, /at most 64 levels deep/);
  });

  for (const shape of ['lists', 'maps'] as const) {
    it(`an alias bomb of ${shape} is refused, not expanded`, () => {
      const ten = (item: string) => (shape === 'lists' ? `[${Array(10).fill(item).join(', ')}]` : `{${Array.from({ length: 10 }, (_, j) => `k${j}: ${item}`).join(', ')}}`);
      const levels = [`a0: &a0 ${ten('x')}`];
      for (let i = 1; i < 9; i++) levels.push(`a${i}: &a${i} ${ten(`*a${i - 1}`)}`);
      const text = `x-bomb:\n${levels.map((l) => `  ${l}`).join('\n')}\ncases:\n  - name: a\n    call: { tool: x, args: { bomb: *a8 } }\n    expect: allow\n`;
      const issues = issuesOf(text);
      assert.match(issues[0]!.message, /values are too large: more than 1000000 nodes/);
    });
  }

  it('too many calls for one file are refused', () => {
    const issues = issuesOf(`cases:\n${Array.from({ length: 11 }, (_, i) => `  - { name: c${i}, call: { tool: x }, before: [{ tool: x, times: 100000 }], expect: allow }`).join('\n')}\n`);
    assert.match(issues[0]!.message, /the cases make 1100011 calls; at most 1000000 per file/);
  });
});

describe('running cases against a policy', () => {
  it('decides allow, deny (kind, rule, message) and approval as the proxy would', async () => {
    const results = await run(`
cases:
  - name: a small charge
    call: { tool: create_charge, args: { amount: 100 } }
    expect: allow
  - name: a big charge
    call: { tool: create_charge, args: { amount: 60000 } }
    expect: { deny: { kind: condition, rule: max single charge, message: cannot exceed } }
  - name: a refund
    call: { tool: refund }
    expect: { deny: { kind: deny_rule, message: "/^Refunds go through/" } }
  - name: a hidden tool
    call: { tool: drop_database }
    expect: { deny: hidden }
  - name: a big wire
    call: { tool: wire_money, args: { amount: 5000 } }
    expect: { approval: big wires }
  - name: a small wire
    call: { tool: wire_money, args: { amount: 5 } }
    expect: allow
  - name: wrong kind
    call: { tool: refund }
    expect: { deny: condition }
  - name: wrong rule
    call: { tool: refund }
    expect: { deny: { rule: "refund#2" } }
  - name: wrong message
    call: { tool: refund }
    expect: { deny: { message: "/^refunds/" } }
  - name: wrong decision
    call: { tool: create_charge, args: { amount: 1 } }
    expect: { deny: condition }
  - name: wrong approval rule
    call: { tool: wire_money, args: { amount: 5000 } }
    expect: { approval: wires per hour }
`);
    assert.deepEqual(verdicts(results), {
      'a small charge': true,
      'a big charge': true,
      'a refund': true,
      'a hidden tool': true,
      'a big wire': true,
      'a small wire': true,
      'wrong kind': false,
      'wrong rule': false,
      'wrong message': false,
      'wrong decision': false,
      'wrong approval rule': false,
    });
    const byName = new Map(results.map((r) => [r.case.name, r]));
    assert.deepEqual(byName.get('wrong kind')!.differs, ['kind']);
    assert.deepEqual(byName.get('wrong rule')!.differs, ['rule']);
    assert.deepEqual(byName.get('wrong message')!.differs, ['message']);
    assert.deepEqual(byName.get('wrong decision')!.differs, ['decision']);
    assert.deepEqual(byName.get('wrong decision')!.actual, { decision: 'allow' });
    assert.deepEqual(byName.get('wrong approval rule')!.actual, { decision: 'approval', rule: 'big wires' });
  });

  it('calls before charge the counters: the limit bites on the call after the last allowed one', async () => {
    const results = await run(`
cases:
  - name: the 5th issue in an hour
    before: [{ tool: create_issue, times: 4 }]
    call: { tool: create_issue }
    expect: allow
  - name: the 6th issue in an hour
    before: [{ tool: create_issue, times: 5 }]
    call: { tool: create_issue }
    expect: { deny: { kind: rate_limit, rule: hourly, message: Rate limit of 5 per hour } }
  - name: denied calls before charge nothing
    before: [{ tool: create_issue, times: 9 }]
    call: { tool: create_charge, args: { amount: 1 } }
    expect: allow
`);
    assert.deepEqual(verdicts(results), { 'the 5th issue in an hour': true, 'the 6th issue in an hour': true, 'denied calls before charge nothing': true });
    assert.deepEqual(results[1]!.before, { calls: 5, allowed: 5, held: 0, denied: 0 });
    assert.deepEqual(results[2]!.before, { calls: 9, allowed: 5, held: 0, denied: 4 });
  });

  it('every case has counters of its own', async () => {
    const results = await run(`
cases:
  - { name: one, before: [{ tool: create_issue, times: 5 }], call: { tool: create_issue }, expect: { deny: rate_limit } }
  - { name: two, call: { tool: create_issue }, expect: allow }
`);
    assert.deepEqual(verdicts(results), { one: true, two: true });
  });

  it('time: a calendar window starts afresh at the hour, a rolling one after its length', async () => {
    const results = await run(`
cases:
  - name: the next hour
    at: "2024-05-01T09:59:00Z"
    before: [{ tool: create_issue, times: 5, after: 1s }]
    after: 55s
    call: { tool: create_issue }
    expect: allow
  - name: the same hour
    at: "2024-05-01T09:00:00Z"
    before: [{ tool: create_issue, times: 5, after: 10m }]
    after: 9m
    call: { tool: create_issue }
    expect: { deny: rate_limit }
  - name: a rolling minute later
    before: [{ tool: send_sms, args: { to: "+1" }, times: 3 }]
    input_schema: { type: object, required: [to] }
    after: 61s
    call: { tool: send_sms, args: { to: "+1" } }
    expect: allow
  - name: within the rolling minute
    before: [{ tool: send_sms, args: { to: "+1" }, times: 3 }]
    input_schema: { type: object, required: [to] }
    after: 30s
    call: { tool: send_sms, args: { to: "+1" } }
    expect: { deny: rate_limit }
`);
    assert.deepEqual(verdicts(results), { 'the next hour': true, 'the same hour': true, 'a rolling minute later': true, 'within the rolling minute': true });
    assert.equal(new Date(results[0]!.at).toISOString(), '2024-05-01T10:00:00.000Z');
  });

  it('counters start where the case says, and limits count from there', async () => {
    // A condition on the rule's own counter is its limit: current + amount must stay within it.
    const results = await run(`
cases:
  - name: spend cap reached
    counters: { create_charge.daily_spend: 100000 }
    call: { tool: create_charge, args: { amount: 1 } }
    expect: { deny: { kind: rate_limit, rule: daily spend cap, message: Daily spending cap reached } }
  - name: spend cap not reached
    counters: { create_charge.daily_spend: 99999 }
    call: { tool: create_charge, args: { amount: 1 } }
    expect: allow
  - name: charges before add up
    before: [{ tool: create_charge, args: { amount: 50000 }, times: 3 }]
    call: { tool: create_charge, args: { amount: 1 } }
    expect: { deny: { rule: daily spend cap } }
  - name: hourly limit reached
    counters: { create_issue._rate_hour: 5 }
    call: { tool: create_issue }
    expect: { deny: rate_limit }
`);
    assert.deepEqual(verdicts(results), { 'spend cap reached': true, 'spend cap not reached': true, 'charges before add up': true, 'hourly limit reached': true });
  });

  it('a keyed counter: each bucket counts on its own, and a bucket id can be preset', async () => {
    const policy = loadPolicy();
    const bucket = policy.decide({ call: { name: 'send_sms', args: { to: '+1' } }, now: 0, schema: { required: [] } }).charges[0]!.ref.id;
    assert.match(bucket, /^send_sms\._rate:send_sms#1\[[0-9a-f]{16}\]$/);
    const results = await run(`
x-schema: &sms { type: object, required: [to] }
cases:
  - name: another recipient
    input_schema: *sms
    before: [{ tool: send_sms, args: { to: "+1" }, times: 3 }]
    call: { tool: send_sms, args: { to: "+2" } }
    expect: allow
  - name: the same recipient, preset
    input_schema: *sms
    counters: { "${bucket}": 3 }
    call: { tool: send_sms, args: { to: "+1" } }
    expect: { deny: rate_limit }
`);
    assert.deepEqual(verdicts(results), { 'another recipient': true, 'the same recipient, preset': true });
  });

  it('input_schema: required arguments, whole-schema validation, and none given', async () => {
    const results = await run(`
cases:
  - name: missing
    input_schema: { type: object, required: [to, body] }
    call: { tool: send_sms, args: { to: "+1" } }
    expect: { deny: { kind: missing_args, message: '"body"' } }
  - name: invalid
    input_schema: { type: object, properties: { id: { type: integer } } }
    call: { tool: update_record, args: { id: "seven" } }
    expect: { deny: { kind: invalid_args, message: must be integer } }
  - name: valid
    input_schema: { type: object, properties: { id: { type: integer } } }
    call: { tool: update_record, args: { id: 7 } }
    expect: allow
  - name: no schema
    call: { tool: send_sms, args: { to: "+1" } }
    expect: { deny: schema_unavailable }
  - name: the case's schema applies to its tool's calls before
    input_schema: { type: object, required: [to] }
    before: [{ tool: send_sms, args: { to: "+1" }, times: 3 }]
    call: { tool: send_sms, args: { to: "+1" } }
    expect: { deny: rate_limit }
`);
    assert.deepEqual(verdicts(results), { missing: true, invalid: true, valid: true, 'no schema': true, "the case's schema applies to its tool's calls before": true });
  });

  it('classes: tool_class decides, else the classifier guesses from the name (and the report says which)', async () => {
    const results = await run(`
cases:
  - { name: guessed, call: { tool: purge_cache }, expect: { deny: { kind: deny_rule, message: No destructive tools } } }
  - { name: given, call: { tool: purge_cache }, tool_class: read, expect: allow }
  - { name: listed tools need no class, call: { tool: create_issue }, expect: allow }
`);
    assert.deepEqual(verdicts(results), { guessed: true, given: true, 'listed tools need no class': true });
    assert.deepEqual(results[0]!.toolClass, { value: 'destructive', given: false });
    assert.deepEqual(results[1]!.toolClass, { value: 'read', given: true });
    assert.equal(results[2]!.toolClass, undefined);
  });

  it('default deny: an unlisted tool is not_listed', async () => {
    const results = await run('cases:\n  - { name: u, call: { tool: other }, expect: { deny: not_listed } }\n', 'default: deny\ntools:\n  a: {}\n');
    assert.deepEqual(verdicts(results), { u: true });
  });

  it('a call before that is held for approval counts as approved: it charges the counters', async () => {
    const results = await run(`
cases:
  - name: two big wires approved, the third is over the hourly limit
    before: [{ tool: wire_money, args: { amount: 5000 }, times: 2 }]
    call: { tool: wire_money, args: { amount: 5000 } }
    expect: { deny: { kind: rate_limit, rule: wires per hour } }
`);
    assert.deepEqual(verdicts(results), { 'two big wires approved, the third is over the hourly limit': true });
    assert.deepEqual(results[0]!.before, { calls: 2, allowed: 0, held: 2, denied: 0 });
  });

  it('counters the policy does not have are errors naming the line, with a suggestion', () => {
    const policy = loadPolicy();
    const cases = loadCases(`
cases:
  - name: a
    call: { tool: create_issue }
    counters:
      create_issue._rate_hours: 1
      send_sms._rate:send_sms#1: 2
    expect: allow
`);
    const issues = checkCases(policy, cases);
    assert.deepEqual(
      issues.map((i) => [i.line, i.col, i.path]),
      [
        [6, 7, 'cases[0].counters'],
        [7, 7, 'cases[0].counters'],
      ],
    );
    assert.match(issues[0]!.message, /the policy has no counter "create_issue\._rate_hours" \(did you mean "create_issue\._rate_hour"\?\); its counters are /);
    assert.match(issues[1]!.message, /counter "send_sms\._rate:send_sms#1" is keyed: name one of its buckets/);
  });
});

describe('the report', () => {
  const cases = `
cases:
  - name: passes
    call: { tool: create_issue }
    expect: allow
  - name: the limit is lower than this says
    before: [{ tool: create_issue, times: 5 }]
    call: { tool: create_issue }
    expect: allow
  - name: a message that is not the one
    call: { tool: refund }
    expect: { deny: { kind: deny_rule, message: go to a human } }
`;

  it('a line per case, then each failure: where, expected, actual, what differs, the calls before, the trace; then the count', async () => {
    const results = await run(cases);
    const text = formatReport(results, 'cases.yaml');
    const [summary, details] = [text.slice(0, text.indexOf('\n\n')), text.slice(text.indexOf('\n\n'))];
    assert.equal(summary, 'PASS  passes\nFAIL  the limit is lower than this says\nFAIL  a message that is not the one');
    assert.match(details, /FAIL {2}the limit is lower than this says\n {2}case {6}cases\.yaml:6:5\n {2}expected {2}allow\n {2}actual {4}deny \(kind rate_limit, rule "hourly", message "Rate limit of 5 per hour reached\. Try again later\."\)\n {2}differs {3}decision\n {2}before {4}5 calls: 5 allowed\n {2}trace\n {4}Call: create_issue \{\}\n {4}Rules:\n {6}1\. create_issue › hourly: PASSED/);
    assert.match(details, /expected {2}deny \(kind deny_rule, message containing "go to a human"\)\n {2}actual {4}deny \(kind deny_rule, rule "refund#1", message "Refunds go through a human"\)\n {2}differs {3}message\n/);
    assert.match(details, /Decision: DENIED \(deny_rule\) — Refunds go through a human/);
    assert.ok(text.endsWith('\n1 passed, 2 failed'), text);
  });

  it('a name with line breaks or terminal escapes prints as one line of text', async () => {
    const results = await run('cases:\n  - { name: "two\\nlines \\e[31mred", call: { tool: refund }, expect: allow }\n');
    const text = formatReport(results, 'cases.yaml');
    assert.ok(text.startsWith('FAIL  two\\u000alines \\u001b[31mred\n'), text);
    assert.doesNotMatch(text, /\u001b/);
  });

  it('--json: every case with its outcome, and a failing one with its decision and trace', async () => {
    const results = await run(cases);
    const json = JSON.parse(JSON.stringify(reportJson(results, { policy: 'policy.yaml', cases: 'cases.yaml' }))) as {
      passed: number;
      failed: number;
      cases: { name: string; passed: boolean; line: number; expected: unknown; actual: unknown; differs: string[]; decision?: { allowed: boolean; trace: unknown[] } }[];
    };
    assert.equal(json.passed, 1);
    assert.equal(json.failed, 2);
    assert.deepEqual(json.cases[0]!.expected, { decision: 'allow' });
    assert.equal(json.cases[0]!.decision, undefined);
    assert.deepEqual(json.cases[1]!.differs, ['decision']);
    assert.equal(json.cases[1]!.line, 6);
    assert.equal(json.cases[1]!.decision!.allowed, false);
    assert.equal(json.cases[1]!.decision!.trace.length, 1);
    assert.deepEqual(json.cases[2]!.expected, { decision: 'deny', kind: 'deny_rule', message: { contains: 'go to a human' } });
  });
});

describe('starter cases for a scaffold', () => {
  const server = { name: 'test-server', version: '1.2.3' };
  const tools: DiscoveredTool[] = [
    { name: 'list_repos', description: 'List repositories.' },
    { name: 'get_repo', description: 'Get one repository.', inputSchema: { type: 'object', properties: { owner: { type: 'string' }, id: { type: 'integer' }, tags: { type: 'array' } }, required: ['owner', 'id', 'tags'] } },
    { name: 'create_issue', description: 'Create an issue.', inputSchema: { type: 'object', properties: { kind: { enum: ['bug', 'task'] }, meta: { type: 'object', properties: { a: { type: 'boolean' } }, required: ['a'] } }, required: ['kind', 'meta'] } },
    { name: 'run_workflow', description: 'Run a workflow.', inputSchema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } },
    { name: 'run_anything', description: 'Run a job.' },
    { name: 'create_refund', description: 'Refund a charge.', inputSchema: { type: 'object', properties: { amount: { type: 'integer' }, charge: { type: 'string' } }, required: ['charge'] } },
    { name: 'create_payment', description: 'Pay an invoice.', inputSchema: { type: 'object', properties: { amount: { type: 'number' } } } },
    { name: 'delete_repo', description: 'Delete a repository.', inputSchema: { type: 'object', properties: { repo: { type: 'string' } }, required: ['repo'] } },
    // Names that need quoting or look like other things.
    ...['yes', 'a: b', '#hash', 'a.b', "it's", '123'].map((name, i) => ({ name: `${name}`, description: i % 2 ? 'Delete things' : 'Get things' })),
  ];
  const policyText = (recommended: boolean) => scaffoldYaml(buildScaffold({ server, tools }), { command: ['node', 'server.js'], date: new Date('2026-01-02T00:00:00Z'), recommended });
  const casesText = (recommended: boolean) =>
    starterCasesYaml(buildScaffold({ server, tools }), tools, { policyFile: 'policies/test.yaml', casesFile: 'policies/test.cases.yaml', recommended });

  it('sits beside the policy: <name>.cases.yaml', () => {
    assert.equal(starterCasesPath('policies/memory.yaml'), 'policies/memory.cases.yaml');
    assert.equal(starterCasesPath('memory.YML'), 'memory.cases.yaml');
    assert.equal(starterCasesPath('policy'), 'policy.cases.yaml');
  });

  it('with --recommended: a case per read tool and per recommended rule, all passing against the scaffold', async () => {
    const text = casesText(true);
    assert.match(text, /^# {3}intercept test -c policies\/test\.yaml policies\/test\.cases\.yaml$/m);
    const results = await run(text, policyText(true));
    const failed = results.filter((r) => !r.passed);
    assert.deepEqual(failed.map((r) => formatReport([r], 'x')), []);
    const names = results.map((r) => r.case.name);
    for (const want of [
      'list_repos is allowed',
      'list_repos: the 61st call in a minute is rate-limited',
      'create_issue: the 31st call in a minute is rate-limited',
      'run_workflow: a call without its required arguments is refused',
      'run_anything: the 11th call in a minute is rate-limited',
      'create_refund: a call without its required arguments is refused',
      'create_refund: amount above the cap is refused',
      'create_payment: the 6th call in a minute is rate-limited',
      'create_payment: amount above the cap is refused',
      'delete_repo is denied',
      'yes is allowed',
      'a: b is denied',
    ]) {
      assert.ok(names.includes(want), `${want} in ${JSON.stringify(names)}`);
    }
    const kinds = new Map(results.map((r) => [r.case.name, r.actual.kind]));
    assert.equal(kinds.get('delete_repo is denied'), 'deny_rule');
    assert.equal(kinds.get('create_refund: amount above the cap is refused'), 'condition');
    // Placeholders follow the schema's types.
    const getRepo = results.find((r) => r.case.name === 'get_repo is allowed')!;
    assert.deepEqual(getRepo.case.call.args, { owner: 'example', id: 1, tags: [] });
    const issue = results.find((r) => r.case.name.startsWith('create_issue'))!;
    assert.deepEqual(issue.case.call.args, { kind: 'bug', meta: { a: true } });
  });

  it('without --recommended: the read tools are allowed, and the rule cases are commented out with the rules', async () => {
    const text = casesText(false);
    const results = await run(text, policyText(false));
    assert.ok(results.every((r) => r.passed));
    assert.deepEqual(
      results.map((r) => r.case.name),
      ['#hash is allowed', 'get_repo is allowed', "it's is allowed", 'list_repos is allowed', 'yes is allowed'],
    );
    // Uncommented, they are the recommended cases, and pass once the rules are enabled.
    const uncommented = text.replace(/^ {2}# (- | {2})/gm, '  $1');
    assert.equal(loadCases(uncommented).cases.length, loadCases(casesText(true)).cases.length);
    const enabled = await run(uncommented, policyText(true));
    assert.ok(enabled.every((r) => r.passed));
  });

  it('a server with nothing to test gives a file of no cases, which loads', () => {
    const text = starterCasesYaml(buildScaffold({ server, tools: [{ name: 'create_thing', description: 'Create a thing.' }] }), [], {
      policyFile: 'p.yaml',
      casesFile: 'p.cases.yaml',
      recommended: false,
    });
    assert.deepEqual(loadCases(text).cases, []);
  });
});
