// Tool keys and hide entries as glob patterns, rules per risk class, and the precedence between
// exact keys, patterns, classes and "*": loaded from YAML and decided by the engine.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compile, type CompiledPolicy } from '../../src/engine/compile.js';
import { compileGlob, globMatches } from '../../src/engine/glob.js';
import type { DecideInput, Decision } from '../../src/engine/types.js';
import { parsePolicy } from '../../src/policy/load.js';
import { TOOL_CLASSES, type ToolClass } from '../../src/policy/model.js';
import { CATEGORIES } from '../../src/engine/risk.js';
import { loadPolicyText as load } from '../support/policy.js';

function issues(text: string): string[] {
  const result = parsePolicy(text, 'policy.yaml');
  if (result.ok) assert.fail('expected issues, got none');
  return result.issues.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`);
}

function input(name: string, toolClass?: ToolClass | null, args: Record<string, unknown> = {}): DecideInput {
  const i: DecideInput = { call: { name, args }, now: 1_700_000_000_000 };
  if (toolClass !== undefined) i.toolClass = toolClass;
  return i;
}

/** `allowed`, or the denial kind and rule; charges as `+counter`. */
function verdict(d: Decision): string {
  if (!d.allowed) return `${d.denial!.kind}${d.denial!.rule ? ':' + d.denial!.rule : ''}`;
  return ['allowed', ...d.charges.map((c) => `+${c.ref.id}`)].join(' ');
}

describe('glob matching', () => {
  const rows: [string, string, boolean][] = [
    ['*--Delete*', 'TwilioConversationsV1--DeleteConversation', true],
    ['*--Delete*', 'TwilioConversationsV1--CreateConversation', false],
    ['*--Delete*', '--Delete', true],
    ['Twilio*V1--*', 'TwilioConversationsV1--Fetch', true],
    ['Twilio*V1--*', 'TwilioConversationsV2--Fetch', false],
    ['get_?', 'get_a', true],
    ['get_?', 'get_', false],
    ['get_?', 'get_ab', false],
    ['get_?', 'get_😀', true],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'axxbyyc', true],
    ['a*b*c', 'axxbyy', false],
    ['a*b*c', 'acb', false],
    ['**x', 'x', true],
    ['[ab]', 'a', false],
    ['[ab]', '[ab]', true],
    ['a.b*', 'aXb', false],
    ['a.b*', 'a.bc', true],
    ['*', '', true],
    ['?*', '', false],
  ];
  for (const [pattern, name, expected] of rows) {
    it(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(name)}`, () => {
      assert.equal(globMatches(compileGlob(pattern), name), expected);
    });
  }

  it('stays fast on patterns that make backtracking matchers explode', () => {
    const glob = compileGlob('*a*a*a*a*a*a*a*a*a*b');
    const started = performance.now();
    assert.equal(globMatches(glob, 'a'.repeat(5000)), false);
    assert.ok(performance.now() - started < 500);
  });

  it('counts the characters that are not wildcards', () => {
    assert.equal(compileGlob('*--Delete*').literals, 8);
    assert.equal(compileGlob('get_??').literals, 4);
  });
});

describe('loading patterns and classes', () => {
  it('keeps pattern keys under tools in file order and reads classes', () => {
    const p = load(
      [
        'tools:',
        '  "a*": {rules: [{action: deny}]}',
        '  exact: {}',
        'classes:',
        '  destructive: {rules: [{action: deny, reason: "no"}]}',
        '  write: {rules: [{action: allow, rate_limit: {max: 30, window: 60}}]}',
        'hide: ["*--Delete*", "plain"]',
      ].join('\n'),
    );
    assert.deepEqual(
      p.tools.map((t) => t.name),
      ['a*', 'exact'],
    );
    assert.deepEqual(
      p.classes?.map((c) => [c.name, c.rules.map((r) => r.name)]),
      [
        ['destructive', ['class:destructive#1']],
        ['write', ['class:write#1']],
      ],
    );
    const counter = p.classes![1]!.rules[0]!.counter!;
    assert.equal(counter.owner, 'class:write');
    assert.deepEqual(counter.window, { kind: 'rolling', seconds: 60 });
    assert.deepEqual(p.hide, ['*--Delete*', 'plain']);
  });

  it('lets a class rule read its own counter as state.class:<class>.<counter>', () => {
    const p = load(
      [
        'version: "1"',
        'classes:',
        '  financial:',
        '    rules:',
        '      - name: spend',
        '        state: {counter: total, window: day, increment_from: args.amount}',
        '        conditions:',
        '          - {path: state.class:financial.total, op: lte, value: 1000}',
      ].join('\n'),
    );
    assert.deepEqual(p.classes![0]!.rules[0]!.counter!.limits, [{ value: 1000, inclusive: true }]);
  });

  const bad: [string, string, string][] = [
    ['an unknown class, with a suggestion', 'classes:\n  destrutive: {rules: [{action: deny}]}\n', '2:3 classes: unknown class "destrutive" (did you mean "destructive"?); classes are read, write, execute, financial, destructive'],
    ['an unknown class, no suggestion', 'classes:\n  admin: {}\n', '2:3 classes: unknown class "admin"; classes are read, write, execute, financial, destructive'],
    ['classes that is not a map', 'classes: [write]\n', '1:10 : classes must be a map of risk classes (read, write, execute, financial, destructive) to rules, got a list'],
    ['a bad rule under a class', 'classes:\n  write: {rules: [{action: maybe}]}\n', '2:28 classes.write.rules[0]: action must be "allow", "evaluate" or "deny", got "maybe"'],
    ['a state read of another class counter', 'classes:\n  write:\n    rules:\n      - name: r\n        conditions: [{path: state.class:read.n, op: lt, value: 3}]\n', '5:22 classes.write.rules[0].conditions[0]: condition references state.class:read.n but no matching state block found'],
    ['a misspelt classes key', 'clases: {}\n', '1:1 : unknown key "clases" (did you mean "classes"?)'],
  ];
  for (const [what, text, expected] of bad) {
    it(`reports ${what}`, () => {
      assert.deepEqual(issues(text), [expected]);
    });
  }

  it('knows the same classes as the classifier', () => {
    assert.deepEqual([...TOOL_CLASSES], [...CATEGORIES]);
  });
});

describe('precedence: exact name, then the most specific pattern, then the class, then nothing; "*" after', () => {
  const p = compile(
    load(
      [
        'tools:',
        '  "*": {rules: [{name: wild, rate_limit: 100/hour}]}',
        '  "Twilio*": {rules: [{name: twilio-any, rate_limit: 50/hour}]}',
        '  "*--Delete*": {rules: [{name: no-delete, action: deny}]}',
        '  "TwilioConversationsV1--Delete*": {rules: [{name: conv-delete, rate_limit: 1/day}]}',
        '  "TwilioConversationsV1--DeleteConversation": {rules: [{name: exact-delete, rate_limit: 2/day}]}',
        '  "Twilio?pi*": {rules: [{name: q-pi, rate_limit: 3/day}]}',
        '  "Twilio?pi?": {rules: [{name: q-pi-q, rate_limit: 4/day}]}',
        '  "ab*": {rules: [{name: ab-first, rate_limit: 5/day}]}',
        '  "*ab": {rules: [{name: ab-second, rate_limit: 6/day}]}',
        'classes:',
        '  destructive: {rules: [{name: class-destructive, action: deny}]}',
        '  write: {rules: [{name: class-write, rate_limit: 30/minute}]}',
      ].join('\n'),
    ),
  );
  const rows: [string, string, ToolClass | null | undefined, string][] = [
    ['exact key wins over every pattern and the class', 'TwilioConversationsV1--DeleteConversation', 'destructive', 'allowed +TwilioConversationsV1--DeleteConversation._rate_day +_global._rate_hour'],
    ['the longer of two matching patterns wins', 'TwilioConversationsV1--DeleteMessage', 'destructive', 'allowed +TwilioConversationsV1--Delete*._rate_day +_global._rate_hour'],
    ['a pattern wins over the class', 'TwilioStudioV2--DeleteFlow', 'read', 'deny_rule:no-delete'],
    ['a pattern ("*--Delete*", 8 literals) beats a shorter one ("Twilio*", 6)', 'TwilioStudioV2--DeleteFlow', undefined, 'deny_rule:no-delete'],
    ['"?" is not counted: "Twilio?pi*" (8) beats "Twilio*" (6)', 'TwilioApiV2010', 'write', 'allowed +Twilio?pi*._rate_day +_global._rate_hour'],
    ['a tie goes to the pattern written first', 'TwilioApiX', 'write', 'allowed +Twilio?pi*._rate_day +_global._rate_hour'],
    ['a tie goes to the pattern written first (plain)', 'abab', null, 'allowed +ab*._rate_day +_global._rate_hour'],
    ['the class when no key matches', 'delete_repo', 'destructive', 'deny_rule:class-destructive'],
    ['the class rules come before "*"', 'create_issue', 'write', 'allowed +class:write._rate_minute +_global._rate_hour'],
    ['a class without rules under classes: "*" only', 'get_issue', 'read', 'allowed +_global._rate_hour'],
    ['no class known (not listed upstream): "*" only', 'ghost', null, 'allowed +_global._rate_hour'],
  ];
  for (const [what, tool, cls, expected] of rows) {
    it(`${what}: ${tool}`, () => {
      assert.equal(verdict(p.decide(input(tool, cls))), expected);
    });
  }

  it('shares one counter among every tool a pattern or class governs', () => {
    const a = p.decide(input('TwilioConversationsV1--DeleteMessage')).charges[0]!.ref.id;
    const b = p.decide(input('TwilioConversationsV1--DeleteParticipant')).charges[0]!.ref.id;
    assert.equal(a, b);
    const c = p.decide(input('create_issue', 'write')).charges[0]!.ref.id;
    const d = p.decide(input('update_issue', 'write')).charges[0]!.ref.id;
    assert.equal(c, 'class:write._rate_minute');
    assert.equal(c, d);
  });

  it('traces class rules under class:<class>', () => {
    const d = p.decide(input('create_issue', 'write'), { trace: true });
    assert.deepEqual(
      d.trace.map((t) => `${t.tool}/${t.rule}`),
      ['class:write/class-write', '*/wild'],
    );
  });
});

describe('requirements() asks for the class only when it can matter', () => {
  const withClasses = compile(
    load(
      [
        'tools:',
        '  exact: {rules: [{action: allow, validate: {required_args: true}}]}',
        '  "pat*": {}',
        'classes:',
        '  write: {rules: [{action: allow, validate: {schema: true}}]}',
      ].join('\n'),
    ),
  );
  const without = compile(load('tools:\n  "pat*": {}\n'));

  const rows: [string, CompiledPolicy, string, ToolClass | null | undefined, Record<string, boolean>][] = [
    ['exact key', withClasses, 'exact', undefined, { needsClass: false, needsSchema: true, needsValidator: false }],
    ['pattern key', withClasses, 'pattern', undefined, { needsClass: false, needsSchema: false, needsValidator: false }],
    ['no key, policy has classes', withClasses, 'other', undefined, { needsClass: true, needsSchema: false, needsValidator: false }],
    ['no key, class given', withClasses, 'other', 'write', { needsClass: false, needsSchema: true, needsValidator: true }],
    ['no key, class without rules', withClasses, 'other', 'read', { needsClass: false, needsSchema: false, needsValidator: false }],
    ['no key, no class known', withClasses, 'other', null, { needsClass: false, needsSchema: false, needsValidator: false }],
    ['no classes in the policy', without, 'other', undefined, { needsClass: false, needsSchema: false, needsValidator: false }],
  ];
  for (const [what, policy, tool, cls, expected] of rows) {
    it(what, () => {
      const r = policy.requirements({ name: tool, args: {} }, cls);
      assert.deepEqual({ needsClass: r.needsClass === true, needsSchema: r.needsSchema, needsValidator: r.needsValidator }, expected);
    });
  }

  it('says whether the policy uses classes', () => {
    assert.equal(withClasses.usesClasses, true);
    assert.equal(without.usesClasses, false);
  });
});

describe('hide patterns and default: deny', () => {
  const p = compile(
    load(
      [
        'default: deny',
        'hide: ["*--Delete*", "secret_?"]',
        'tools:',
        '  "TwilioApi*": {}',
        '  "*--DeleteNothing": {}',
        '  listed: {}',
        'classes:',
        '  read: {}',
      ].join('\n'),
    ),
  );
  const rows: [string, ToolClass | null | undefined, boolean, string][] = [
    ['TwilioApiV2010--DeleteCall', 'read', false, 'hidden'],
    ['x--DeleteNothing', undefined, false, 'hidden'],
    ['secret_a', 'read', false, 'hidden'],
    ['secret_ab', 'read', true, 'allowed'],
    ['TwilioApiV2010--CreateCall', undefined, true, 'allowed'],
    ['listed', undefined, true, 'allowed'],
    ['get_thing', 'read', true, 'allowed'],
    ['create_thing', 'write', false, 'not_listed'],
    ['unknown', null, false, 'not_listed'],
    ['unknown', undefined, false, 'not_listed'],
  ];
  for (const [tool, cls, offered, decision] of rows) {
    it(`${tool} (${cls}): ${offered ? 'offered' : 'not offered'}, ${decision}`, () => {
      assert.equal(p.isOffered(tool, cls), offered);
      assert.equal(verdict(p.decide(input(tool, cls))), decision);
    });
  }

  it('hides on call whatever the class', () => {
    assert.equal(p.isHidden('TwilioApiV2010--DeleteCall'), true);
    assert.equal(p.requirements({ name: 'TwilioApiV2010--DeleteCall', args: {} }).needsClass, undefined);
  });
});

describe('memoised lookups stay bounded', () => {
  it('decides correctly after more distinct names than the memo holds', () => {
    const p = compile(load('default: deny\ntools:\n  "ok_*": {}\nhide: ["bad_*"]\n'));
    for (let i = 0; i < 10_000; i++) {
      assert.equal(p.isOffered(`ok_${i}`), true);
      assert.equal(p.isHidden(`bad_${i}`), true);
    }
    assert.equal(verdict(p.decide(input('ok_1'))), 'allowed');
    assert.equal(verdict(p.decide(input('nope'))), 'not_listed');
  });
});
