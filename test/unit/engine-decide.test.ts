// decide(): hide, default deny, rule order, deny rules, validation, counters, state reads,
// and requirements(), as the proxy observes them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compile } from '../../src/engine/compile.js';
import type { DecideInput, Decision, ToolSchemaInfo } from '../../src/engine/types.js';
import type { Condition, Counter, Operator, Policy, PolicyValue, Rule } from '../../src/policy/model.js';

const pos = { file: 'policy.yaml', line: 1, col: 1 };

function cond(path: string, op: Operator, value: PolicyValue): Condition {
  return { path, op, value, pos };
}

function rule(name: string, extra: Partial<Rule> = {}): Rule {
  return { name, action: 'evaluate', conditions: [], pos, ...extra };
}

function deny(name: string, message?: string): Rule {
  return rule(name, message === undefined ? { action: 'deny' } : { action: 'deny', message });
}

function counter(owner: string, name: string, extra: Partial<Counter> = {}): Counter {
  return { name, owner, window: { kind: 'calendar', unit: 'hour' }, scope: 'global', increment: 1, limits: [], pos, ...extra };
}

function policy(spec: {
  tools?: Record<string, Rule[]>;
  wildcard?: Rule[];
  hide?: string[];
  defaultAction?: 'allow' | 'deny';
}): Policy {
  const p: Policy = {
    source: 'policy.yaml',
    defaultAction: spec.defaultAction ?? 'allow',
    hide: spec.hide ?? [],
    tools: Object.entries(spec.tools ?? {}).map(([name, rules]) => ({ name, rules, pos })),
  };
  if (spec.wildcard) p.wildcard = { name: '*', rules: spec.wildcard, pos };
  return p;
}

function call(name: string, args: Record<string, unknown> = {}, extra: Partial<DecideInput> = {}): DecideInput {
  return { call: { name, args }, now: 1_700_000_000_000, ...extra };
}

/** The denial kind and rule, or 'allowed'. */
function verdict(d: Decision): string {
  return d.allowed ? 'allowed' : `${d.denial!.kind}${d.denial!.rule ? ':' + d.denial!.rule : ''}`;
}

describe('hide and default', () => {
  const p = compile(
    policy({
      hide: ['secret'],
      tools: { listed: [], secret: [] },
      wildcard: [rule('wild', { conditions: [cond('args.ok', 'eq', true)] })],
    }),
  );
  const denyAll = compile(policy({ defaultAction: 'deny', tools: { listed: [] }, wildcard: [rule('wild')] }));
  const hideAll = compile(policy({ hide: ['*'], tools: { listed: [] } }));

  const cases: [string, ReturnType<typeof compile>, DecideInput, string][] = [
    ['hidden tool is denied even though listed', p, call('secret', { ok: true }), 'hidden'],
    ['listed tool passes the wildcard', p, call('listed', { ok: true }), 'allowed'],
    ['listed tool fails the wildcard', p, call('listed', { ok: false }), 'condition:wild'],
    ['unlisted tool under default allow gets the wildcard', p, call('other', { ok: false }), 'condition:wild'],
    ['unlisted tool under default allow passes the wildcard', p, call('other', { ok: true }), 'allowed'],
    ['default deny: listed tool runs', denyAll, call('listed'), 'allowed'],
    ['default deny: wildcard does not rescue an unlisted tool', denyAll, call('other'), 'not_listed'],
    ['default deny: a tool named "*" is not listed', denyAll, call('*'), 'not_listed'],
    ['hide "*" hides listed tools', hideAll, call('listed'), 'hidden'],
    ['hide "*" hides unlisted tools', hideAll, call('anything'), 'hidden'],
    ['names are case-sensitive', p, call('Secret', { ok: true }), 'allowed'],
  ];
  for (const [label, compiled, input, expected] of cases) {
    it(label, () => assert.equal(verdict(compiled.decide(input)), expected));
  }

  it('says which tool is hidden or not permitted', () => {
    assert.equal(p.decide(call('secret')).denial?.message, 'Tool "secret" is hidden by policy');
    assert.equal(denyAll.decide(call('other')).denial?.message, 'Tool "other" is not permitted by policy');
    assert.equal(hideAll.decide(call('we"ird')).denial?.message, 'Tool "we\\"ird" is hidden by policy');
  });

  it('isHidden', () => {
    assert.deepEqual(['secret', 'listed', 'x'].map((t) => p.isHidden(t)), [true, false, false]);
    assert.deepEqual(['listed', 'x'].map((t) => hideAll.isHidden(t)), [true, true]);
  });

  it('isOffered: hidden tools, and unlisted tools under default deny, are not offered', () => {
    assert.deepEqual(['secret', 'listed', 'x'].map((t) => p.isOffered(t)), [false, true, true]);
    assert.deepEqual(['other', 'listed'].map((t) => denyAll.isOffered(t)), [false, true]);
    assert.deepEqual(['listed', 'x'].map((t) => hideAll.isOffered(t)), [false, false]);
  });

  it('a tool with a name from Object.prototype is just a name', () => {
    const q = compile(policy({ defaultAction: 'deny', tools: { listed: [] } }));
    assert.equal(verdict(q.decide(call('constructor'))), 'not_listed');
    assert.equal(verdict(q.decide(call('__proto__'))), 'not_listed');
  });
});

describe('rule order', () => {
  const p = compile(
    policy({
      tools: {
        pay: [
          rule('has amount', { conditions: [cond('args.amount', 'exists', true)] }),
          rule('max single charge', { conditions: [cond('args.amount', 'lte', 50000)] }),
          deny('never on sunday'),
        ],
        send: [rule('to present', { conditions: [cond('args.to', 'exists', true)] })],
      },
      wildcard: [
        rule('no dry run', { conditions: [cond('args.dry', 'neq', true)] }),
        deny('wild deny'),
      ],
    }),
  );
  const cases: [string, DecideInput, string][] = [
    ['the first failing rule wins', call('pay', {}), 'condition:has amount'],
    ['later rules only after earlier ones pass', call('pay', { amount: 60000 }), 'condition:max single charge'],
    ['tool rules run before wildcard rules', call('pay', { amount: 1, dry: true }), 'deny_rule:never on sunday'],
    ['wildcard rules run after the tool rules pass', call('send', { to: 'a', dry: true }), 'condition:no dry run'],
    ['then the next wildcard rule', call('send', { to: 'a', dry: false }), 'deny_rule:wild deny'],
    ['a tool rule failure hides the wildcard outcome', call('send', { dry: true }), 'condition:to present'],
  ];
  for (const [label, input, expected] of cases) {
    it(label, () => assert.equal(verdict(p.decide(input)), expected));
  }

  it('stops at the first false condition of a rule', () => {
    const q = compile(
      policy({
        tools: {
          t: [rule('r', { conditions: [cond('args.a', 'eq', 1), cond('args.b', 'eq', 2), cond('args.c', 'eq', 3)] })],
        },
      }),
    );
    const d = q.decide(call('t', { a: 1, b: 0 }), { trace: true });
    assert.equal(d.denial?.message, 'Denied by rule "r": args.b must be eq 2, got 0');
    assert.deepEqual(d.trace[0]!.conditions.map((c) => [c.path, c.passed]), [
      ['args.a', true],
      ['args.b', false],
    ]);
  });

  it('a rule with no conditions passes', () => {
    assert.equal(verdict(compile(policy({ tools: { t: [rule('empty')] } })).decide(call('t'))), 'allowed');
  });
});

describe('denial messages', () => {
  const p = compile(
    policy({
      tools: {
        a: [deny('no a')],
        b: [deny('no b', 'Deleting conversations is not permitted for agents')],
        c: [rule('max single charge', { conditions: [cond('args.amount', 'lte', 50000)] })],
        d: [rule('currency', { conditions: [cond('args.currency', 'in', ['usd', 'eur'])] })],
        e: [rule('own', { conditions: [cond('args.x', 'eq', 1)], message: 'x must be 1' })],
        f: [rule('branch', { conditions: [cond('args.branch', 'regex', '^feat/')] })],
        g: [rule('tags', { conditions: [cond('args.tags', 'contains', 'safe')] })],
        h: [rule('no force', { conditions: [cond('args.force', 'exists', false)] })],
        i: [rule('need body', { conditions: [cond('args.body', 'exists', true)] })],
      },
    }),
  );
  const cases: [string, DecideInput, string][] = [
    ['deny rule without message', call('a'), 'Denied by rule "no a"'],
    ['deny rule with message', call('b'), 'Deleting conversations is not permitted for agents'],
    ['condition failed', call('c', { amount: 60000 }), 'Denied by rule "max single charge": args.amount must be lte 50000, got 60000'],
    ['condition on a missing argument', call('d'), 'Denied by rule "currency": args.currency is missing'],
    ['condition with a list', call('d', { currency: 'gbp' }), 'Denied by rule "currency": args.currency must be in ["usd","eur"], got "gbp"'],
    ['condition with the rule message', call('e', { x: 2 }), 'x must be 1'],
    ['regex', call('f', { branch: 'main' }), 'Denied by rule "branch": args.branch must match regex "^feat/", got "main"'],
    ['contains', call('g', { tags: ['x'] }), 'Denied by rule "tags": args.tags must contain "safe", got ["x"]'],
    ['exists false', call('h', { force: true }), 'Denied by rule "no force": args.force must be absent, got true'],
    ['exists true on null', call('i', { body: null }), 'Denied by rule "need body": args.body must be present, got null'],
    [
      'a long value is cut short',
      call('c', { amount: 'x'.repeat(500) }),
      `Denied by rule "max single charge": args.amount must be lte 50000, got "${'x'.repeat(79)}…`,
    ],
  ];
  for (const [label, input, expected] of cases) {
    it(label, () => assert.equal(p.decide(input).denial?.message, expected));
  }

  it('condition denials carry what failed', () => {
    assert.deepEqual(p.decide(call('c', { amount: 60000 })).denial, {
      kind: 'condition',
      rule: 'max single charge',
      message: 'Denied by rule "max single charge": args.amount must be lte 50000, got 60000',
      details: { path: 'args.amount', op: 'lte', expected: 50000 },
    });
  });
});

describe('validate', () => {
  const schema = (required: string[], errors: string[] = []): ToolSchemaInfo => ({ required, validate: () => errors });
  const p = compile(
    policy({
      tools: {
        create_execution: [rule('create_execution#1', { validate: { requiredArgs: true, schema: false } })],
        with_message: [rule('req', { validate: { requiredArgs: true, schema: false }, message: 'Give all arguments' })],
        strict: [rule('strict', { validate: { requiredArgs: false, schema: true } })],
        both: [
          rule('cond', { conditions: [cond('args.ok', 'eq', true)] }),
          rule('both', { validate: { requiredArgs: true, schema: true } }),
        ],
      },
    }),
  );

  const cases: [string, DecideInput, string, string?][] = [
    ['required present', call('create_execution', { to: 'x', from: 'y' }, { schema: schema(['to', 'from']) }), 'allowed'],
    [
      'one missing',
      call('create_execution', { from: 'y' }, { schema: schema(['to', 'from']) }),
      'missing_args:create_execution#1',
      'Missing required argument "to" for tool "create_execution"',
    ],
    [
      'several missing',
      call('create_execution', {}, { schema: schema(['to', 'from']) }),
      'missing_args:create_execution#1',
      'Missing required arguments "to", "from" for tool "create_execution"',
    ],
    ['null counts as given', call('create_execution', { to: null }, { schema: schema(['to']) }), 'allowed'],
    [
      'an inherited name is not given',
      call('create_execution', {}, { schema: schema(['constructor']) }),
      'missing_args:create_execution#1',
    ],
    ['nothing required', call('create_execution', {}, { schema: schema([]) }), 'allowed'],
    [
      'schema not provided (undefined)',
      call('create_execution', { to: 'x' }),
      'schema_unavailable:create_execution#1',
      'Denied by rule "create_execution#1": cannot check the arguments of "create_execution": the server did not provide its inputSchema',
    ],
    [
      'schema unobtainable (null)',
      call('create_execution', { to: 'x' }, { schema: null }),
      'schema_unavailable:create_execution#1',
    ],
    ['rule message replaces the default', call('with_message', {}, { schema: schema(['a']) }), 'missing_args:req', 'Give all arguments'],
    ['schema valid', call('strict', { a: 1 }, { schema: schema([]) }), 'allowed'],
    [
      'schema invalid',
      call('strict', { a: 'x' }, { schema: schema([], ['/a must be number', '/b is required']) }),
      'invalid_args:strict',
      'Invalid arguments for tool "strict": /a must be number; /b is required',
    ],
    ['schema check with no validator', call('strict', {}, { schema: { required: [] } }), 'schema_unavailable:strict'],
    ['conditions are checked before validation', call('both', { ok: false }), 'condition:cond'],
    ['both checks: required first', call('both', { ok: true }, { schema: schema(['x'], ['bad']) }), 'missing_args:both'],
    ['both checks: then schema', call('both', { ok: true, x: 1 }, { schema: schema(['x'], ['bad']) }), 'invalid_args:both'],
  ];
  for (const [label, input, expected, message] of cases) {
    it(label, () => {
      const d = p.decide(input);
      assert.equal(verdict(d), expected);
      if (message !== undefined) assert.equal(d.denial?.message, message);
    });
  }

  it('lists the missing names and the schema errors in details', () => {
    const missing = p.decide(call('create_execution', {}, { schema: schema(['to', 'from']) }));
    assert.deepEqual(missing.denial?.details, { missing: ['to', 'from'] });
    const invalid = p.decide(call('strict', {}, { schema: schema([], ['e1']) }));
    assert.deepEqual(invalid.denial?.details, { errors: ['e1'] });
  });

  it('a validator that throws denies', () => {
    const d = p.decide(call('strict', {}, { schema: { required: [], validate: () => { throw new Error('boom'); } } }));
    assert.equal(verdict(d), 'invalid_args:strict');
  });
});

describe('counters and charges', () => {
  const spend = counter('pay', 'daily_spend', {
    window: { kind: 'calendar', unit: 'day' },
    incrementFrom: 'args.amount',
    limits: [{ value: 1000, inclusive: true }],
  });
  const rate = counter('_global', '_rate_minute', { window: { kind: 'calendar', unit: 'minute' }, limits: [{ value: 60, inclusive: true }] });
  const rolling = counter('send', '_rate_60s', { window: { kind: 'rolling', seconds: 60 }, scope: 'session', increment: 2, limits: [{ value: 30, inclusive: true }] });
  const p = compile(
    policy({
      tools: {
        pay: [rule('spend', { counter: spend, message: 'Daily spend cap reached' })],
        send: [rule('send rate', { counter: rolling })],
        plain: [],
      },
      wildcard: [rule('global rate', { counter: rate })],
    }),
  );

  it('charges each counter of the passed rules, in rule order, with ids, scopes and windows', () => {
    const d = p.decide(call('pay', { amount: 12.5 }));
    assert.equal(d.allowed, true);
    assert.deepEqual(d.charges, [
      {
        ref: { id: 'pay.daily_spend', owner: 'pay', scope: 'global', window: { kind: 'calendar', unit: 'day' } },
        amount: 12.5,
        limits: [{ value: 1000, inclusive: true }],
        rule: 'spend',
        message: 'Daily spend cap reached',
      },
      {
        ref: { id: '_global._rate_minute', owner: '_global', scope: 'global', window: { kind: 'calendar', unit: 'minute' } },
        amount: 1,
        limits: [{ value: 60, inclusive: true }],
        rule: 'global rate',
      },
    ]);
  });

  it('a fixed increment and a session scope', () => {
    const [first] = p.decide(call('send')).charges;
    assert.deepEqual(first?.ref, { id: 'send._rate_60s', owner: 'send', scope: 'session', window: { kind: 'rolling', seconds: 60 } });
    assert.equal(first?.amount, 2);
  });

  it('unlisted tools are charged by the wildcard counter only', () => {
    assert.deepEqual(p.decide(call('other')).charges.map((c) => [c.ref.id, c.amount]), [['_global._rate_minute', 1]]);
  });

  const amounts: [string, unknown, number | string][] = [
    ['integer', 300, 300],
    ['fraction kept', 0.99, 0.99],
    ['zero', 0, 0],
    ['negative zero counts as zero', -0, 0],
    ['numeric string', '250', 250],
    ['numeric string with exponent', '2.5e2', 250],
    ['negative', -5, 'bad'],
    ['negative string', '-5', 'bad'],
    ['non-numeric string', 'abc', 'bad'],
    ['string with spaces', ' 5', 'bad'],
    ['infinite string', '1e400', 'bad'],
    ['boolean', true, 'bad'],
    ['null', null, 'bad'],
    ['array', [5], 'bad'],
    ['object', { v: 5 }, 'bad'],
  ];
  for (const [label, amount, expected] of amounts) {
    it(`increment_from: ${label}`, () => {
      const d = p.decide(call('pay', { amount }));
      if (expected === 'bad') {
        assert.equal(verdict(d), 'bad_increment:spend');
        assert.deepEqual(d.charges, []);
      } else {
        assert.equal(d.allowed, true);
        assert.ok(Object.is(d.charges[0]?.amount, expected));
      }
    });
  }

  it('increment_from: missing', () => {
    const d = p.decide(call('pay', {}));
    assert.equal(verdict(d), 'bad_increment:spend');
    assert.equal(d.denial?.message, 'Denied by rule "spend": args.amount must be a non-negative number to count it, but it is missing');
  });

  it('increment_from: bad value message', () => {
    assert.equal(
      p.decide(call('pay', { amount: 'abc' })).denial?.message,
      'Denied by rule "spend": args.amount must be a non-negative number to count it, got "abc"',
    );
  });

  it('a counter with no limits still counts', () => {
    const q = compile(policy({ tools: { t: [rule('count', { counter: counter('t', 'calls') })] } }));
    assert.deepEqual(q.decide(call('t')).charges.map((c) => [c.ref.id, c.amount, c.limits]), [['t.calls', 1, []]]);
  });

  it('a denied call charges nothing', () => {
    const q = compile(policy({ tools: { t: [rule('count', { counter: counter('t', 'calls') }), deny('stop')] } }));
    const d = q.decide(call('t'));
    assert.equal(verdict(d), 'deny_rule:stop');
    assert.deepEqual(d.charges, []);
  });

  it('increment_from can index into an array', () => {
    const q = compile(policy({ tools: { t: [rule('r', { counter: counter('t', 'c', { incrementFrom: 'args.items.1.qty' }) })] } }));
    assert.equal(q.decide(call('t', { items: [{ qty: 1 }, { qty: 7 }] })).charges[0]?.amount, 7);
  });
});

describe('state reads', () => {
  const daily = counter('pay', 'daily', { window: { kind: 'calendar', unit: 'day' } });
  const wild = counter('_global', 'calls', { window: { kind: 'rolling', seconds: 600 }, scope: 'session' });
  const p = compile(
    policy({
      tools: {
        pay: [rule('count', { counter: daily }), rule('under cap', { conditions: [cond('state.pay.daily', 'lt', 10)] })],
        other: [rule('cross tool', { conditions: [cond('state.pay.daily', 'lt', 5)] })],
        starred: [rule('star', { conditions: [cond('state.*.calls', 'lte', 3)] })],
        global: [rule('global', { conditions: [cond('state._global.calls', 'lte', 3)] })],
      },
      wildcard: [rule('wild count', { counter: wild })],
    }),
  );
  const counters = (entries: Record<string, number>): ReadonlyMap<string, number> => new Map(Object.entries(entries));

  const cases: [string, DecideInput, string][] = [
    ['value under the cap', call('pay', {}, { counters: counters({ 'pay.daily': 9 }) }), 'allowed'],
    ['value at the cap', call('pay', {}, { counters: counters({ 'pay.daily': 10 }) }), 'condition:under cap'],
    ['no counters map: fail closed', call('pay'), 'state_unavailable:under cap'],
    ['entry absent: fail closed', call('pay', {}, { counters: counters({}) }), 'state_unavailable:under cap'],
    ['zero is a value', call('pay', {}, { counters: counters({ 'pay.daily': 0 }) }), 'allowed'],
    ['another tool\'s counter', call('other', {}, { counters: counters({ 'pay.daily': 5 }) }), 'condition:cross tool'],
    ['state.* reads _global', call('starred', {}, { counters: counters({ '_global.calls': 3 }) }), 'allowed'],
    ['state.* over', call('starred', {}, { counters: counters({ '_global.calls': 4 }) }), 'condition:star'],
    ['state._global reads _global', call('global', {}, { counters: counters({ '_global.calls': 4 }) }), 'condition:global'],
  ];
  for (const [label, input, expected] of cases) {
    it(label, () => assert.equal(verdict(p.decide(input)), expected));
  }

  it('says which counter is unavailable', () => {
    assert.equal(p.decide(call('starred')).denial?.message, 'Denied by rule "star": counter state.*.calls is unavailable');
  });

  it('a state path with no defining counter is a compile error', () => {
    assert.throws(() => compile(policy({ tools: { t: [rule('r', { conditions: [cond('state.t.nothing', 'lt', 1)] })] } })), /state\.t\.nothing/);
    assert.throws(() => compile(policy({ tools: { t: [rule('r', { conditions: [cond('state.t', 'lt', 1)] })] } })));
  });

  describe('requirements()', () => {
    const schemaRules = compile(
      policy({
        tools: {
          pay: [rule('count', { counter: daily }), rule('cap', { conditions: [cond('state.pay.daily', 'lt', 10), cond('state.pay.daily', 'gte', 0)] })],
          v: [rule('v', { validate: { requiredArgs: true, schema: false } })],
          s: [rule('s', { validate: { requiredArgs: false, schema: true } })],
          plain: [],
          hidden: [rule('v2', { validate: { requiredArgs: true, schema: false } })],
        },
        wildcard: [rule('w', { counter: wild }), rule('wcap', { conditions: [cond('state.*.calls', 'lt', 100)] })],
        hide: ['hidden'],
      }),
    );
    const dailyRef = { id: 'pay.daily', owner: 'pay', scope: 'global', window: { kind: 'calendar', unit: 'day' } };
    const wildRef = { id: '_global.calls', owner: '_global', scope: 'session', window: { kind: 'rolling', seconds: 600 } };

    const cases: [string, ReturnType<typeof compile>, string, unknown][] = [
      ['own and wildcard reads, each once', schemaRules, 'pay', { reads: [dailyRef, wildRef], needsSchema: false, needsValidator: false }],
      ['required_args needs the schema', schemaRules, 'v', { reads: [wildRef], needsSchema: true, needsValidator: false }],
      ['schema needs the schema and a validator', schemaRules, 's', { reads: [wildRef], needsSchema: true, needsValidator: true }],
      ['listed tool with no rules gets the wildcard\'s', schemaRules, 'plain', { reads: [wildRef], needsSchema: false, needsValidator: false }],
      ['unlisted tool gets the wildcard\'s', schemaRules, 'unlisted', { reads: [wildRef], needsSchema: false, needsValidator: false }],
      ['hidden tool needs nothing', schemaRules, 'hidden', { reads: [], needsSchema: false, needsValidator: false }],
      ['not-listed tool under default deny needs nothing', compile({ ...schemaRules.policy, defaultAction: 'deny' }), 'unlisted', { reads: [], needsSchema: false, needsValidator: false }],
    ];
    for (const [label, compiled, tool, expected] of cases) {
      it(label, () => assert.deepEqual(compiled.requirements({ name: tool, args: {} }), expected));
    }

    it('unlisted tools share one requirements object', () => {
      assert.equal(schemaRules.requirements({ name: 'a', args: {} }), schemaRules.requirements({ name: 'b', args: {} }));
    });
  });
});

describe('traces', () => {
  const p = compile(
    policy({
      tools: { t: [rule('first', { conditions: [cond('args.a', 'eq', 1)] }), rule('second', { conditions: [cond('args.b', 'eq', 2)] })] },
      wildcard: [rule('third', { counter: counter('_global', 'n') })],
    }),
  );

  it('are off by default', () => {
    assert.deepEqual(p.decide(call('t', { a: 1, b: 2 })).trace, []);
  });

  it('list every rule, those after the deciding one as not_reached', () => {
    const d = p.decide(call('t', { a: 0 }), { trace: true });
    assert.deepEqual(d.trace.map((r) => [r.tool, r.rule, r.outcome]), [
      ['t', 'first', 'denied'],
      ['t', 'second', 'not_reached'],
      ['*', 'third', 'not_reached'],
    ]);
    assert.deepEqual(d.trace[0]!.conditions, [{ path: 'args.a', op: 'eq', expected: 1, actual: 0, passed: false }]);
  });

  it('record charges and missing values', () => {
    const d = p.decide(call('t', { a: 1, b: 2 }), { trace: true });
    assert.deepEqual(d.trace.map((r) => r.outcome), ['passed', 'passed', 'passed']);
    assert.equal(d.trace[2]!.charge?.ref.id, '_global.n');
    const missing = p.decide(call('t', {}), { trace: true });
    assert.deepEqual(missing.trace[0]!.conditions, [{ path: 'args.a', op: 'eq', expected: 1, missing: true, passed: false }]);
  });

  it('do not change the decision', () => {
    for (const args of [{}, { a: 1 }, { a: 1, b: 2 }]) {
      const plain = p.decide(call('t', args));
      const traced = p.decide(call('t', args), { trace: true });
      assert.deepEqual({ ...traced, trace: [] }, plain);
    }
  });
});
