// The `intercept explain` account of a decision.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compile } from '../../src/engine/compile.js';
import { decisionToJson, formatDecision } from '../../src/engine/explain.js';
import type { ToolCall } from '../../src/engine/types.js';
import type { Policy, Rule } from '../../src/policy/model.js';

const pos = { file: 'policy.yaml', line: 1, col: 1 };

const rules: Rule[] = [
  {
    name: 'max single charge',
    action: 'evaluate',
    conditions: [
      { path: 'args.amount', op: 'lte', value: 50000, pos },
      { path: 'args.currency', op: 'in', value: ['usd', 'eur'], pos },
    ],
    pos,
  },
  {
    name: 'daily spend',
    action: 'evaluate',
    conditions: [],
    counter: {
      name: 'spend',
      owner: 'create_charge',
      window: { kind: 'calendar', unit: 'day' },
      scope: 'global',
      increment: 1,
      incrementFrom: 'args.amount',
      limits: [{ value: 100000, inclusive: true }],
      pos,
    },
    pos,
  },
];

const policy: Policy = {
  source: 'policy.yaml',
  defaultAction: 'allow',
  hide: ['drop_db'],
  tools: [{ name: 'create_charge', rules, pos }],
  wildcard: {
    name: '*',
    pos,
    rules: [{ name: 'no test mode', action: 'evaluate', conditions: [{ path: 'args.test', op: 'exists', value: false, pos }], pos }],
  },
};

const compiled = compile(policy);
const explain = (c: ToolCall): string => formatDecision(c, compiled.decide({ call: c, now: 0 }, { trace: true }));

describe('formatDecision', () => {
  it('an allowed call: every rule passed, its conditions and its charge', () => {
    const text = explain({ name: 'create_charge', args: { amount: 1200, currency: 'usd' } });
    const lines = text.split('\n');
    assert.equal(lines[0], 'Call: create_charge {"amount":1200,"currency":"usd"}');
    assert.ok(lines.includes('  1. create_charge › max single charge: PASSED'), text);
    assert.ok(lines.includes('       ✓ args.amount lte 50000 (actual: 1200)'), text);
    assert.ok(lines.includes('       ✓ args.currency in ["usd","eur"] (actual: "usd")'), text);
    assert.ok(lines.includes('  2. create_charge › daily spend: PASSED'), text);
    assert.ok(
      lines.includes('       charges counter create_charge.spend +1200 (limit ≤ 100000, window calendar day (UTC), scope global)'),
      text,
    );
    assert.ok(lines.includes('  3. * › no test mode: PASSED'), text);
    assert.ok(lines.includes('       ✓ args.test exists false (actual: missing)'), text);
    assert.equal(lines.at(-1), 'Decision: ALLOWED');
  });

  it('a denied call: the deciding rule, then the rest not reached', () => {
    const text = explain({ name: 'create_charge', args: { amount: 60000, currency: 'usd' } });
    const lines = text.split('\n');
    assert.ok(lines.includes('  1. create_charge › max single charge: DENIED — args.amount must be lte 50000, got 60000'), text);
    assert.ok(lines.includes('       ✗ args.amount lte 50000 (actual: 60000)'), text);
    assert.ok(!text.includes('args.currency in'), 'conditions after the failing one are not evaluated');
    assert.ok(lines.includes('  2. create_charge › daily spend: not reached'), text);
    assert.ok(lines.includes('  3. * › no test mode: not reached'), text);
    assert.equal(
      lines.at(-1),
      'Decision: DENIED (condition) — Denied by rule "max single charge": args.amount must be lte 50000, got 60000',
    );
  });

  it('a counter of a passed rule is not charged when a later rule denies', () => {
    const text = explain({ name: 'create_charge', args: { amount: 5, currency: 'eur', test: true } });
    assert.match(text, /would charge \(not charged: the call is denied\) counter create_charge\.spend \+5/);
    assert.match(text, /Decision: DENIED \(condition\) — Denied by rule "no test mode": args\.test must be absent, got true$/);
  });

  it('a hidden tool: no rules evaluated', () => {
    const text = explain({ name: 'drop_db', args: {} });
    assert.equal(text, 'Call: drop_db {}\nRules: none evaluated\nDecision: DENIED (hidden) — Tool "drop_db" is hidden by policy');
  });
});

describe('decisionToJson', () => {
  it('holds the call, the outcome, the charges and the trace as plain data', () => {
    const call = { name: 'create_charge', args: { amount: 1, currency: 'usd' } };
    const json = decisionToJson(call, compiled.decide({ call, now: 0 }, { trace: true }));
    const round = JSON.parse(JSON.stringify(json));
    assert.deepEqual(round.call, { name: 'create_charge', arguments: { amount: 1, currency: 'usd' } });
    assert.equal(round.allowed, true);
    assert.equal(round.denial, undefined);
    assert.deepEqual(round.charges.map((c: { ref: { id: string } }) => c.ref.id), ['create_charge.spend']);
    assert.deepEqual(round.trace.map((r: { rule: string; outcome: string }) => [r.rule, r.outcome]), [
      ['max single charge', 'passed'],
      ['daily spend', 'passed'],
      ['no test mode', 'passed'],
    ]);
  });

  it('includes the denial', () => {
    const call = { name: 'nope', args: {} };
    const json = decisionToJson(call, compile({ ...policy, defaultAction: 'deny' }).decide({ call, now: 0 }, { trace: true }));
    assert.deepEqual(json.denial, { kind: 'not_listed', message: 'Tool "nope" is not permitted by policy' });
  });
});
