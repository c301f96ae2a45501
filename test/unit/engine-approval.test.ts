// require_approval in the decision engine: when a call needs a human's yes, which rule asks,
// what still denies, what is charged, the rule's fingerprint, and how explain shows it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { canonicalJson } from '../../src/engine/canonical-json.js';
import { approvalFingerprint, compile, type CompiledPolicy } from '../../src/engine/compile.js';
import { decisionToJson, formatDecision } from '../../src/engine/explain.js';
import {
  approvalDeniedMessage,
  approvalExpiredMessage,
  approvalNote,
  approvalPendingMessage,
  approvalUnavailableMessage,
  durationShort,
  durationWords,
} from '../../src/engine/messages.js';
import type { DecideInput, Decision, ToolSchemaInfo } from '../../src/engine/types.js';
import { formatIssues } from '../../src/policy/format.js';
import { parsePolicy } from '../../src/policy/load.js';

function compiled(text: string): CompiledPolicy {
  const result = parsePolicy(text, 'policy.yaml');
  if (!result.ok) assert.fail(formatIssues(result.issues));
  return compile(result.policy);
}

const NOW = 1_700_000_000_000;

function decide(p: CompiledPolicy, name: string, args: Record<string, unknown> = {}, extra: Partial<DecideInput> = {}): Decision {
  return p.decide({ call: { name, args }, now: NOW, ...extra }, { trace: true });
}

/** The denial kind and rule, `approval:<rule>`, or `allowed`. */
function verdict(d: Decision): string {
  if (!d.allowed) return `${d.denial!.kind}${d.denial!.rule ? ':' + d.denial!.rule : ''}`;
  return d.approval ? `approval:${d.approval.rule}` : 'allowed';
}

const TWILIO = `tools:
  create_execution:
    rules:
      - action: require_approval
        conditions:
          - path: args.to
            op: not_in
            value: ["+15550100", "+15550101"]
        reason: "Calls to numbers outside the allow-list need an operator"
      - action: allow
        rate_limit: {max: 10, window: 60}
        validate:
          required_args: true
`;

const SCHEMA: ToolSchemaInfo = { required: ['flow_sid', 'to'] };

describe('require_approval: when a call needs approval', () => {
  const p = compiled(TWILIO);

  it('conditions hold: allowed with the approval need', () => {
    const d = decide(p, 'create_execution', { flow_sid: 'FW1', to: '+15559999' }, { schema: SCHEMA });
    assert.equal(d.allowed, true);
    assert.equal(d.denial, undefined);
    assert.ok(d.approval);
    assert.equal(d.approval.rule, 'create_execution#1');
    assert.equal(d.approval.tool, 'create_execution');
    assert.deepEqual(d.approval.settings, { timeoutSeconds: 300, onTimeout: 'deny', mode: 'hold', scope: 'session' });
    assert.equal(d.approval.message, 'Calls to numbers outside the allow-list need an operator');
    assert.match(d.approval.fingerprint, /^[0-9a-f]{64}$/);
  });

  it('conditions do not hold: a plain allow, no approval', () => {
    const d = decide(p, 'create_execution', { flow_sid: 'FW1', to: '+15550100' }, { schema: SCHEMA });
    assert.equal(verdict(d), 'allowed');
    assert.equal('approval' in d, false);
    assert.equal(d.trace[0]!.outcome, 'passed');
    assert.equal(d.trace[0]!.note, 'no approval needed: args.to must be not_in ["+15550100","+15550101"], got "+15550100"');
  });

  it('a missing argument fails not_in, so no approval is needed for it (the next rules decide)', () => {
    const d = decide(p, 'create_execution', { flow_sid: 'FW1' }, { schema: SCHEMA });
    assert.equal(verdict(d), 'missing_args:create_execution#2');
  });

  it('the charges of later rules are gathered as usual (reserved when the approved call runs)', () => {
    const d = decide(p, 'create_execution', { flow_sid: 'FW1', to: '+15559999' }, { schema: SCHEMA });
    assert.equal(d.charges.length, 1);
    assert.equal(d.charges[0]!.ref.id, 'create_execution._rate:create_execution#2');
    assert.equal(d.charges[0]!.rule, 'create_execution#2');
  });

  it('a later validation failure still denies, with no approval asked for', () => {
    const d = decide(p, 'create_execution', { to: '+15559999' }, { schema: SCHEMA });
    assert.equal(verdict(d), 'missing_args:create_execution#2');
    assert.equal(d.approval, undefined);
    assert.deepEqual(d.charges, []);
    assert.equal(d.trace[0]!.note, 'needs approval (hold, 5m)');
  });

  it('without conditions, every call needs approval', () => {
    const q = compiled('tools:\n  t:\n    rules:\n      - action: require_approval\n');
    assert.equal(verdict(decide(q, 't')), 'approval:t#1');
    assert.equal(verdict(decide(q, 't', { anything: 1 })), 'approval:t#1');
    assert.equal(verdict(decide(q, 'other')), 'allowed');
  });

  it('the fast path (no trace) gives the same decision', () => {
    const d = p.decide({ call: { name: 'create_execution', args: { flow_sid: 'FW1', to: '+15559999' } }, now: NOW, schema: SCHEMA });
    assert.equal(d.approval?.rule, 'create_execution#1');
    assert.deepEqual(d.trace, []);
    assert.equal(d.charges.length, 1);
  });

  it('hands out one frozen need per rule', () => {
    const a = decide(p, 'create_execution', { flow_sid: 'A', to: '+1' }, { schema: SCHEMA }).approval;
    const b = decide(p, 'create_execution', { flow_sid: 'B', to: '+2' }, { schema: SCHEMA }).approval;
    assert.equal(a, b);
    assert.ok(Object.isFrozen(a));
    assert.ok(Object.isFrozen(a!.settings));
  });
});

describe('require_approval: rule order', () => {
  const p = compiled(`version: "1"
tools:
  create_refund:
    rules:
      - name: "large refunds"
        action: require_approval
        conditions:
          - path: args.amount
            op: gt
            value: 1000
        approval_mode: retry
        timeout: 2h
        on_deny: "Refunds over 1000 need a human"
      - name: "very large refunds"
        action: require_approval
        conditions:
          - path: args.amount
            op: gt
            value: 10000
        scope: global
      - name: "no refunds in test mode"
        conditions:
          - path: args.test
            op: exists
            value: false
  "*":
    rules:
      - name: "wild approval"
        action: require_approval
        conditions:
          - path: args.sensitive
            op: eq
            value: true
      - name: "no foo"
        conditions:
          - path: args.foo
            op: exists
            value: false
        on_deny: "foo"
`);

  it('the first rule whose conditions hold wins; later ones still run for the trace', () => {
    const d = decide(p, 'create_refund', { amount: 20000, sensitive: true });
    assert.equal(verdict(d), 'approval:large refunds');
    assert.deepEqual(d.approval?.settings, { timeoutSeconds: 7200, onTimeout: 'deny', mode: 'retry', scope: 'session' });
    assert.equal(d.approval?.message, 'Refunds over 1000 need a human');
    assert.deepEqual(
      d.trace.map((t) => [t.rule, t.outcome, t.note, t.conditions.map((c) => c.passed)]),
      [
        ['large refunds', 'passed', 'needs approval (retry, 2h)', [true]],
        ['very large refunds', 'passed', 'needs approval (hold, 5m, global) — not asked: rule "large refunds" already needs approval', [true]],
        ['no refunds in test mode', 'passed', undefined, [true]],
        ['wild approval', 'passed', 'needs approval (hold, 5m) — not asked: rule "large refunds" already needs approval', [true]],
        ['no foo', 'passed', undefined, [true]],
      ],
    );
  });

  it('a rule whose conditions do not hold is skipped for the next that holds', () => {
    assert.equal(verdict(decide(p, 'create_refund', { amount: 500, sensitive: true })), 'approval:wild approval');
    assert.equal(verdict(decide(p, 'create_refund', { amount: 500 })), 'allowed');
  });

  it('a later deny still denies, with no approval and no charges', () => {
    const d = decide(p, 'create_refund', { amount: 20000, foo: 1 });
    assert.equal(verdict(d), 'condition:no foo');
    assert.equal(d.denial?.message, 'foo');
    assert.equal(d.approval, undefined);
    assert.deepEqual(d.charges, []);
    assert.deepEqual(
      d.trace.map((t) => [t.rule, t.outcome, t.note]),
      [
        ['large refunds', 'passed', 'needs approval (retry, 2h)'],
        ['very large refunds', 'passed', 'needs approval (hold, 5m, global) — not asked: rule "large refunds" already needs approval'],
        ['no refunds in test mode', 'passed', undefined],
        ['wild approval', 'passed', 'no approval needed: args.sensitive is missing'],
        ['no foo', 'denied', 'args.foo must be absent, got 1'],
      ],
    );
  });

  it('a deny rule after it denies too', () => {
    const q = compiled('tools:\n  t:\n    rules:\n      - action: require_approval\n      - action: deny\n        reason: never\n');
    const d = decide(q, 't');
    assert.equal(verdict(d), 'deny_rule:t#2');
    assert.equal(d.approval, undefined);
  });

  it('a later condition failure still denies', () => {
    const q = compiled(`version: "1"
tools:
  t:
    rules:
      - action: require_approval
      - name: "small"
        conditions: [{path: args.n, op: lt, value: 5}]
`);
    assert.equal(verdict(decide(q, 't', { n: 10 })), 'condition:small');
    assert.equal(decide(q, 't', { n: 10 }).approval, undefined);
    assert.equal(verdict(decide(q, 't', { n: 1 })), 'approval:t#1');
  });

  it('first wins across the tool and "*"', () => {
    const q = compiled(`tools:
  t:
    rules:
      - name: own
        action: require_approval
        conditions: [{path: args.a, op: eq, value: 1}]
  "*":
    rules:
      - name: wild
        action: require_approval
`);
    assert.equal(verdict(decide(q, 't', { a: 1 })), 'approval:own');
    assert.equal(verdict(decide(q, 't', { a: 2 })), 'approval:wild');
    assert.equal(decide(q, 't', { a: 2 }).approval?.tool, '*');
    assert.equal(verdict(decide(q, 'u')), 'approval:wild');
  });

  it('a later rate limit still denies at reservation; its charge is gathered beside the approval', () => {
    const q = compiled(`tools:
  t:
    rules:
      - action: require_approval
      - rate_limit: {max: 2, window: 60}
`);
    const d = decide(q, 't');
    assert.equal(d.approval?.rule, 't#1');
    assert.deepEqual(
      d.charges.map((c) => [c.ref.id, c.amount, c.limits]),
      [['t._rate:t#2', 1, [{ value: 2, inclusive: true }]]],
    );
  });

  it('a state condition reads its counter; unreadable, the call is refused (fail closed)', () => {
    const q = compiled(`version: "1"
tools:
  t:
    rules:
      - name: count
        state: {counter: calls, window: day}
      - name: "busy"
        action: require_approval
        conditions: [{path: state.t.calls, op: gte, value: 100}]
`);
    const reads = q.requirements({ name: 't', args: {} }).reads.map((r) => r.id);
    assert.deepEqual(reads, ['t.calls']);
    assert.equal(verdict(decide(q, 't', {}, { counters: new Map([['t.calls', 100]]) })), 'approval:busy');
    assert.equal(verdict(decide(q, 't', {}, { counters: new Map([['t.calls', 3]]) })), 'allowed');
    assert.equal(verdict(decide(q, 't', {}, { counters: new Map() })), 'state_unavailable:busy');
  });

  it('under classes, the need names the class key', () => {
    const q = compiled('classes:\n  financial:\n    rules:\n      - action: require_approval\n');
    const d = decide(q, 'pay', {}, { toolClass: 'financial' });
    assert.equal(d.approval?.tool, 'class:financial');
    assert.equal(d.approval?.rule, 'class:financial#1');
    assert.equal(verdict(decide(q, 'read_it', {}, { toolClass: 'read' })), 'allowed');
  });

  it('hidden and unlisted tools are refused before any approval', () => {
    const q = compiled('default: deny\nhide: [h]\ntools:\n  h:\n    rules:\n      - action: require_approval\n');
    assert.equal(verdict(decide(q, 'h')), 'hidden');
    assert.equal(verdict(decide(q, 'x')), 'not_listed');
  });
});

describe('require_approval: fingerprint', () => {
  const fingerprint = (text: string, args: Record<string, unknown> = { a: 1 }): string => {
    const d = decide(compiled(text), 't', args);
    assert.ok(d.approval, 'expected an approval');
    return d.approval.fingerprint;
  };
  const BASE = `tools:
  t:
    rules:
      - name: ask
        action: require_approval
        conditions: [{path: args.a, op: eq, value: 1}]
        timeout: 5m
        reason: "ask first"
`;

  it('is the sha256 of the canonical JSON of the rule without positions', () => {
    const expected = createHash('sha256')
      .update(
        canonicalJson({
          tool: 't',
          rule: 'ask',
          conditions: [{ path: 'args.a', op: 'eq', value: 1 }],
          approval: { timeoutSeconds: 300, onTimeout: 'deny', mode: 'hold', scope: 'session' },
          message: 'ask first',
        }),
      )
      .digest('hex');
    assert.equal(fingerprint(BASE), expected);
    const loaded = parsePolicy(BASE, 'x.yaml');
    assert.ok(loaded.ok);
    assert.equal(approvalFingerprint('t', loaded.policy.tools[0]!.rules[0]!), expected);
  });

  it('is stable across positions, whitespace, comments, file names, key order and spellings', () => {
    const moved = `# approvals
version: "1"

tools:
  other:
    rules:
      - action: deny
  t:
    rules:
      - on_deny: "ask first"
        timeout: 300
        conditions:
          - value: 1
            op: eq
            path: args.a
        action: require_approval
        name: ask
        approval_mode: hold
        on_timeout: deny
        scope: session
`;
    assert.equal(fingerprint(moved), fingerprint(BASE));
    const r1 = parsePolicy(BASE, 'a.yaml');
    const r2 = parsePolicy(BASE, 'elsewhere/b.yaml');
    assert.ok(r1.ok && r2.ok);
    assert.equal(
      decide(compile(r1.policy), 't', { a: 1 }).approval?.fingerprint,
      decide(compile(r2.policy), 't', { a: 1 }).approval?.fingerprint,
    );
  });

  it('a value written differently but equal gives the same fingerprint', () => {
    assert.equal(fingerprint(BASE.replace('value: 1}', 'value: 1.0}')), fingerprint(BASE));
  });

  it('does not depend on the call', () => {
    const p = compiled('tools:\n  t:\n    rules:\n      - action: require_approval\n');
    assert.equal(decide(p, 't', { a: 1 }).approval?.fingerprint, decide(p, 't', { b: [2] }).approval?.fingerprint);
  });

  it('changes when the rule changes', () => {
    const base = fingerprint(BASE);
    const variants: [string, string, Record<string, unknown>?][] = [
      ['the name', BASE.replace('name: ask', 'name: ask2')],
      ['a condition value', BASE.replace('value: 1}', 'value: 2}'), { a: 2 }],
      ['a condition operator', BASE.replace('op: eq, value: 1', 'op: gte, value: 1')],
      ['another condition', BASE.replace('conditions: [{path: args.a, op: eq, value: 1}]', 'conditions: [{path: args.a, op: eq, value: 1}, {path: args.b, op: exists, value: false}]')],
      ['the timeout', BASE.replace('timeout: 5m', 'timeout: 6m')],
      ['on_timeout', BASE.replace('timeout: 5m', 'timeout: 5m\n        on_timeout: allow')],
      ['the mode', BASE.replace('timeout: 5m', 'timeout: 5m\n        approval_mode: retry')],
      ['the scope', BASE.replace('timeout: 5m', 'timeout: 5m\n        scope: global')],
      ['the message', BASE.replace('ask first', 'ask, please')],
      ['no message', BASE.replace('        reason: "ask first"\n', '')],
      ['the tool key', BASE.replace('  t:', '  "t*":')],
    ];
    const seen = new Set([base]);
    for (const [what, text, args] of variants) {
      const fp = fingerprint(text, args);
      assert.notEqual(fp, base, `changing ${what} must change the fingerprint`);
      seen.add(fp);
    }
    assert.equal(seen.size, variants.length + 1, 'every variant has its own fingerprint');
  });

  it('differs between two rules of one tool', () => {
    const p = compiled(`tools:
  t:
    rules:
      - name: one
        action: require_approval
        conditions: [{path: args.a, op: eq, value: 1}]
      - name: two
        action: require_approval
`);
    const one = decide(p, 't', { a: 1 }).approval!;
    const two = decide(p, 't', { a: 2 }).approval!;
    assert.equal(one.rule, 'one');
    assert.equal(two.rule, 'two');
    assert.notEqual(one.fingerprint, two.fingerprint);
  });
});

describe('require_approval: explain', () => {
  const p = compiled(TWILIO);
  const held = { name: 'create_execution', args: { flow_sid: 'FW1', to: '+15559999' } };

  it('shows the rule that holds the call, its settings and the charges once approved', () => {
    const text = formatDecision(held, decide(p, held.name, held.args, { schema: SCHEMA }));
    assert.equal(
      text,
      [
        'Call: create_execution {"flow_sid":"FW1","to":"+15559999"}',
        'Rules:',
        '  1. create_execution › create_execution#1: PASSED — needs approval (hold, 5m)',
        '       ✓ args.to not_in ["+15550100","+15550101"] (actual: "+15559999")',
        '  2. create_execution › create_execution#2: PASSED',
        '       charges once approved counter create_execution._rate:create_execution#2 +1 (limit ≤ 10, window rolling 60s, scope session)',
        'Decision: HELD FOR APPROVAL — rule "create_execution#1" of "create_execution": mode hold, times out after 5m (then denied), ' +
          'a grant covers this session only; the call runs once a human approves it',
      ].join('\n'),
    );
  });

  it('shows why no approval was needed', () => {
    const args = { flow_sid: 'FW1', to: '+15550101' };
    const text = formatDecision({ name: 'create_execution', args }, decide(p, 'create_execution', args, { schema: SCHEMA }));
    assert.match(text, /create_execution#1: PASSED — no approval needed: args\.to must be not_in/);
    assert.match(text, /\n {7}✗ args\.to not_in/);
    assert.match(text, /\nDecision: ALLOWED$/);
  });

  it('a denied call shows the denial, not the approval', () => {
    const args = { to: '+15559999' };
    const text = formatDecision({ name: 'create_execution', args }, decide(p, 'create_execution', args, { schema: SCHEMA }));
    assert.match(text, /create_execution#1: PASSED — needs approval \(hold, 5m\)/);
    assert.match(text, /\nDecision: DENIED \(missing_args\)/);
  });

  it('global scope and on_timeout: allow are stated', () => {
    const q = compiled('tools:\n  t:\n    rules:\n      - action: require_approval\n        on_timeout: allow\n        scope: global\n        approval_mode: retry\n        timeout: 90\n');
    const text = formatDecision({ name: 't', args: {} }, decide(q, 't'));
    assert.match(text, /t#1: PASSED — needs approval \(retry, 90s, then allow, global\)/);
    assert.match(text, /Decision: HELD FOR APPROVAL — rule "t#1" of "t": mode retry, times out after 90s \(then allowed\), a grant covers any session/);
  });

  it('the JSON account carries the need', () => {
    const d = decide(p, held.name, held.args, { schema: SCHEMA });
    const json = decisionToJson(held, d);
    assert.equal(json.allowed, true);
    assert.deepEqual(json.approval, d.approval);
    const plain = decisionToJson({ name: 'x', args: {} }, decide(p, 'x'));
    assert.equal('approval' in plain, false);
  });

  it('intercept explain prints it and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'intercept-explain-approval-'));
    try {
      const file = join(dir, 'policy.yaml');
      writeFileSync(file, TWILIO);
      const explainTs = fileURLToPath(new URL('../../src/cli/explain.ts', import.meta.url));
      const script =
        `const m = await import(${JSON.stringify(explainTs)});` +
        `process.exitCode = await m.runExplain({ config: process.argv[1], tool: 'create_execution', args: process.argv[2], inputSchema: process.argv[3], counter: [] });`;
      const { stdout } = await promisify(execFile)(process.execPath, [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        script,
        file,
        JSON.stringify(held.args),
        '{"type":"object","required":["flow_sid","to"]}',
      ]);
      assert.match(stdout, /create_execution#1: PASSED — needs approval \(hold, 5m\)/);
      assert.match(stdout, /Decision: HELD FOR APPROVAL — rule "create_execution#1" of "create_execution"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('approval messages', () => {
  it('pending (retry mode)', () => {
    assert.equal(
      approvalPendingMessage('create_refund', 'large refunds', 'apr_abcdefghijklmnop', Date.UTC(2026, 0, 2, 3, 4, 5)),
      'Call to "create_refund" needs a human\'s approval (rule "large refunds"); request apr_abcdefghijklmnop is pending. ' +
        'Retry the same call once it is approved, before 2026-01-02T03:04:05.000Z.',
    );
  });

  it('denied: the rule message wins, the human reason is added', () => {
    assert.equal(approvalDeniedMessage('t', 'r'), 'A human denied the call to "t" (rule "r")');
    assert.equal(approvalDeniedMessage('t', 'r', undefined, 'not today'), 'A human denied the call to "t" (rule "r"): not today');
    assert.equal(approvalDeniedMessage('t', 'r', 'Refunds need a human'), 'Refunds need a human');
    assert.equal(approvalDeniedMessage('t', 'r', 'Refunds need a human', 'too big'), 'Refunds need a human: too big');
    assert.equal(approvalDeniedMessage('t', 'r', undefined, '  '), 'A human denied the call to "t" (rule "r")');
  });

  it('expired', () => {
    assert.equal(approvalExpiredMessage('t', 'r', 300), 'Nobody approved the call to "t" within 5 minutes (rule "r")');
    assert.equal(approvalExpiredMessage('t', 'r', 2), 'Nobody approved the call to "t" within 2 seconds (rule "r")');
    assert.equal(approvalExpiredMessage('t', 'r', 60, 'Ask earlier'), 'Ask earlier');
  });

  it('unavailable: fail closed, never the rule message', () => {
    assert.equal(
      approvalUnavailableMessage('t', 'r'),
      'Call to "t" needs a human\'s approval (rule "r") and the approval store is unavailable, so the call is refused.',
    );
  });

  it('durations and the trace note', () => {
    assert.deepEqual([30, 60, 90, 300, 3600, 5400, 86400, 604800].map(durationShort), ['30s', '1m', '90s', '5m', '1h', '90m', '1d', '7d']);
    assert.deepEqual([1, 60, 120, 3600, 86400, 172800, 61].map(durationWords), [
      '1 second',
      '1 minute',
      '2 minutes',
      '1 hour',
      '1 day',
      '2 days',
      '61 seconds',
    ]);
    assert.equal(approvalNote({ timeoutSeconds: 300, onTimeout: 'deny', mode: 'client', scope: 'session' }), 'needs approval (client, 5m)');
  });
});
