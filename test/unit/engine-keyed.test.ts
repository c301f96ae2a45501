// Counters keyed by argument values: which bucket a call is charged to and read from, the
// bucket ids, requirements(call), and what the agent is told when a bucket is full.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { canonicalJson } from '../../src/engine/canonical-json.js';
import { compile } from '../../src/engine/compile.js';
import { formatDecision } from '../../src/engine/explain.js';
import { rateLimitDenial } from '../../src/engine/messages.js';
import type { Charge, DecideInput, Decision } from '../../src/engine/types.js';
import type { Condition, Counter, CounterKey, Policy, Rule, Window } from '../../src/policy/model.js';
import { MemoryCounterStore } from '../../src/state/memory.js';

const pos = { file: 'policy.yaml', line: 1, col: 1 };
const NOW = 1_700_000_000_000;
const rolling = (seconds: number): Window => ({ kind: 'rolling', seconds });

function counter(owner: string, name: string, key: CounterKey | undefined, extra: Partial<Counter> = {}): Counter {
  const c: Counter = { name, owner, window: rolling(60), scope: 'session', increment: 1, limits: [{ value: 2, inclusive: true }], pos, ...extra };
  if (key !== undefined) c.key = key;
  return c;
}

function rule(name: string, extra: Partial<Rule> = {}): Rule {
  return { name, action: 'evaluate', conditions: [], pos, ...extra };
}

function read(path: string, op: Condition['op'], value: number): Condition {
  return { path, op, value, pos };
}

function policy(tools: Record<string, Rule[]>, wildcard?: Rule[]): Policy {
  const p: Policy = { source: 'policy.yaml', defaultAction: 'allow', hide: [], tools: Object.entries(tools).map(([name, rules]) => ({ name, rules, pos })) };
  if (wildcard) p.wildcard = { name: '*', rules: wildcard, pos };
  return p;
}

function input(name: string, args: Record<string, unknown>, extra: Partial<DecideInput> = {}): DecideInput {
  return { call: { name, args }, now: NOW, ...extra };
}

/** The id of the bucket the spec defines: sha256 of the canonical JSON, first 16 hex chars. */
function bucketId(counterId: string, canonical: string): string {
  return `${counterId}[${createHash('sha256').update(canonical).digest('hex').slice(0, 16)}]`;
}

const p = compile(
  policy(
    {
      send_sms: [rule('per recipient', { counter: counter('send_sms', 'sent', { paths: ['args.to'] }) })],
      pair: [rule('per pair', { counter: counter('pair', 'n', { paths: ['args.from', 'args.to'] }) })],
      repo: [rule('per repo', { counter: counter('repo', 'n', { paths: ['args.repo.owner', 'args.repo.name'] }) })],
      first: [rule('per first recipient', { counter: counter('first', 'n', { paths: ['args.to.0'] }) })],
      same: [rule('identical', { counter: counter('same', 'n', { all: true }) })],
      plain: [rule('unkeyed', { counter: counter('plain', 'n', undefined) })],
    },
    [rule('loop guard', { counter: counter('_global', 'loop', { all: true }) })],
  ),
);

/** The id of the first charge (the tool's own counter). */
function chargedId(tool: string, args: Record<string, unknown>): string {
  const d = p.decide(input(tool, args));
  assert.equal(d.allowed, true);
  return d.charges[0]!.ref.id;
}

describe('canonical JSON of key values', () => {
  const cases: [string, unknown, string][] = [
    ['object keys sorted', JSON.parse('{"b":2,"a":1}'), '{"a":1,"b":2}'],
    ['nested keys sorted too', JSON.parse('{"z":{"y":1,"x":[{"d":1,"c":2}]},"a":null}'), '{"a":null,"z":{"x":[{"c":2,"d":1}],"y":1}}'],
    ['array order kept', [3, 1, 2], '[3,1,2]'],
    ['1.0 and 1e0 are 1', JSON.parse('[1.0, 1e0, 100e-2]'), '[1,1,1]'],
    ['-0 is 0', JSON.parse('-0'), '0'],
    ['strings escaped as JSON', ['a"b\\c\n'], '["a\\"b\\\\c\\n"]'],
    ['a number and a numeric string differ', [5, '5'], '[5,"5"]'],
    ['empty object and array', [{}, []], '[{},[]]'],
    ['undefined members left out, undefined elements null', [{ a: undefined, b: 1 }, undefined], '[{"b":1},null]'],
  ];
  for (const [label, value, expected] of cases) {
    it(label, () => assert.equal(canonicalJson(value), expected));
  }

  it('matches JSON.stringify when keys are already sorted', () => {
    const value = { a: [1, 'x', true, null, { b: 2.5 }], c: 'ü\u2028' };
    assert.equal(canonicalJson(value), JSON.stringify(value));
  });

  it('handles nesting far deeper than the call stack', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 200_000; i++) deep = i % 2 === 0 ? [deep] : { k: deep };
    const text = canonicalJson(deep);
    assert.equal(text.length, 200_000 * 2 + 100_000 * 4 + 3);
  });
});

describe('bucket ids', () => {
  it('are <owner>.<name>[<16 hex of sha256 over the canonical key values>]', () => {
    assert.equal(chargedId('send_sms', { to: '+15551234567', body: 'hi' }), bucketId('send_sms.sent', '["+15551234567"]'));
    assert.equal(chargedId('pair', { to: 'b', from: 'a' }), bucketId('pair.n', '["a","b"]'));
    assert.equal(chargedId('same', { b: 2, a: 1 }), bucketId('same.n', '{"a":1,"b":2}'));
  });

  it('missing paths count as null', () => {
    assert.equal(chargedId('pair', { from: 'a' }), bucketId('pair.n', '["a",null]'));
  });

  // [label, tool, args of the first call, args of the second, same bucket?]
  const cases: [string, string, Record<string, unknown>, Record<string, unknown>, boolean][] = [
    ['same value, other arguments differ', 'send_sms', { to: 'a', body: 'x' }, { to: 'a', body: 'y' }, true],
    ['different values', 'send_sms', { to: 'a' }, { to: 'b' }, false],
    ['a number and a numeric string', 'send_sms', { to: 5 }, { to: '5' }, false],
    ['1 and 1.0 as JSON parses them', 'send_sms', JSON.parse('{"to":1}'), JSON.parse('{"to":1.0}'), true],
    ['case matters', 'send_sms', { to: 'Alice' }, { to: 'alice' }, false],
    ['missing and null share the null bucket', 'send_sms', {}, { to: null }, true],
    ['missing and the string "null" differ', 'send_sms', {}, { to: 'null' }, false],
    ['object values: key order does not matter', 'send_sms', { to: { a: 1, b: 2 } }, { to: { b: 2, a: 1 } }, true],
    ['two paths: same pair', 'pair', { from: 'a', to: 'b', x: 1 }, { to: 'b', from: 'a', x: 2 }, true],
    ['two paths: swapped values differ', 'pair', { from: 'a', to: 'b' }, { from: 'b', to: 'a' }, false],
    ['two paths: values cannot run into each other', 'pair', { from: 'a,b', to: 'c' }, { from: 'a', to: 'b,c' }, false],
    ['nested path: same repository', 'repo', { repo: { owner: 'o', name: 'n' }, title: 't1' }, { repo: { name: 'n', owner: 'o' }, title: 't2' }, true],
    ['nested path: other repository', 'repo', { repo: { owner: 'o', name: 'n' } }, { repo: { owner: 'o', name: 'm' } }, false],
    ['index path: same first recipient', 'first', { to: ['a', 'b'] }, { to: ['a', 'c'] }, true],
    ['index path: other first recipient', 'first', { to: ['a', 'b'] }, { to: ['b', 'a'] }, false],
    ['key: args, key order irrelevant', 'same', { a: 1, b: { c: [1, { d: 2, e: 3 }] } }, { b: { c: [1, { e: 3, d: 2 }] }, a: 1 }, true],
    ['key: args, one argument differs', 'same', { a: 1, b: 2 }, { a: 1, b: 3 }, false],
    ['key: args, an extra argument', 'same', { a: 1 }, { a: 1, b: null }, false],
    ['key: args, no arguments', 'same', {}, {}, true],
  ];
  for (const [label, tool, first, second, same] of cases) {
    it(label, () => {
      const a = chargedId(tool, first);
      const b = chargedId(tool, second);
      if (same) assert.equal(a, b);
      else assert.notEqual(a, b);
    });
  }

  it('have a bounded length whatever the arguments', () => {
    const id = chargedId('same', { text: 'x'.repeat(1_000_000), list: Array.from({ length: 10_000 }, (_, i) => i) });
    assert.match(id, /^same\.n\[[0-9a-f]{16}\]$/);
  });

  it('under "*", key: args tells tools apart: identical arguments to two tools are two buckets', () => {
    const loop = (tool: string, args: Record<string, unknown>) => p.decide(input(tool, args)).charges.find((c) => c.rule === 'loop guard')!.ref.id;
    assert.equal(loop('plain', { q: 1 }), loop('plain', { q: 1 }));
    assert.notEqual(loop('plain', { q: 1 }), loop('other', { q: 1 }));
    assert.equal(loop('other', { q: 1 }), bucketId('_global.loop', '["other",{"q":1}]'));
  });

  it('charges carry the bucket ref and the key values', () => {
    const [charge] = p.decide(input('pair', { from: 'a' })).charges;
    assert.deepEqual(charge, {
      ref: { id: bucketId('pair.n', '["a",null]'), owner: 'pair', counter: 'pair.n', scope: 'session', window: rolling(60) },
      amount: 1,
      limits: [{ value: 2, inclusive: true }],
      rule: 'per pair',
      key: { paths: ['args.from', 'args.to'], values: ['a', null] },
    });
    const [same] = p.decide(input('same', { a: 1 })).charges;
    assert.deepEqual(same!.key, { all: true, tool: 'same' });
  });

  it('an unkeyed counter is charged exactly as before', () => {
    const [charge] = p.decide(input('plain', { a: 1 })).charges;
    assert.deepEqual(charge, {
      ref: { id: 'plain.n', owner: 'plain', scope: 'session', window: rolling(60) },
      amount: 1,
      limits: [{ value: 2, inclusive: true }],
      rule: 'unkeyed',
    });
  });
});

describe('reads of keyed counters', () => {
  const keyed = counter('send_sms', 'sent', { paths: ['args.to'] }, { window: { kind: 'calendar', unit: 'day' }, scope: 'global', limits: [] });
  const q = compile(
    policy({
      send_sms: [
        rule('count', { counter: keyed }),
        rule('cap', { conditions: [read('state.send_sms.sent', 'lt', 3)] }),
      ],
      // Another tool reads the bucket of its own call's args.to.
      call_back: [rule('only known numbers', { conditions: [read('state.send_sms.sent', 'gte', 1)] })],
      unkeyed_reader: [rule('count', { counter: counter('unkeyed_reader', 'n', undefined) }), rule('r', { conditions: [read('state.unkeyed_reader.n', 'lt', 5)] })],
    }),
  );
  const alice = bucketId('send_sms.sent', '["alice"]');
  const bob = bucketId('send_sms.sent', '["bob"]');
  const counters = new Map([
    [alice, 3],
    [bob, 1],
  ]);
  const verdict = (d: Decision): string => (d.allowed ? 'allowed' : `${d.denial!.kind}:${d.denial!.rule}`);

  const cases: [string, DecideInput, string][] = [
    ['this call\'s bucket is full', input('send_sms', { to: 'alice' }, { counters }), 'condition:cap'],
    ['another bucket has room', input('send_sms', { to: 'bob' }, { counters }), 'allowed'],
    ['a bucket not given is unavailable (fail closed)', input('send_sms', { to: 'carol' }, { counters }), 'state_unavailable:cap'],
    ['the unkeyed id does not stand in for a bucket', input('send_sms', { to: 'carol' }, { counters: new Map([['send_sms.sent', 0]]) }), 'state_unavailable:cap'],
    ['another tool reads the bucket of its own arguments', input('call_back', { to: 'bob' }, { counters }), 'allowed'],
    ['… and is denied for a number never counted', input('call_back', { to: 'dave' }, { counters: new Map([[bucketId('send_sms.sent', '["dave"]'), 0]]) }), 'condition:only known numbers'],
  ];
  for (const [label, given, expected] of cases) {
    it(label, () => assert.equal(verdict(q.decide(given)), expected));
  }

  it('requirements(call) lists the bucket of this call', () => {
    const needs = q.requirements({ name: 'send_sms', args: { to: 'alice' } });
    assert.deepEqual(needs, {
      reads: [{ id: alice, owner: 'send_sms', counter: 'send_sms.sent', scope: 'global', window: { kind: 'calendar', unit: 'day' } }],
      needsSchema: false,
      needsValidator: false,
    });
    assert.equal(q.requirements({ name: 'call_back', args: { to: 'bob' } }).reads[0]!.id, bob);
  });

  it('what requirements(call) lists is what decide reads', () => {
    for (const to of ['alice', 'bob', 'x', 42, null]) {
      const call = { name: 'send_sms', args: { to } };
      const values = new Map(q.requirements(call).reads.map((ref) => [ref.id, 0]));
      assert.equal(q.decide({ call, now: NOW, counters: values }).allowed, true, `to=${JSON.stringify(to)}`);
    }
  });

  it('the unavailable bucket is named in the details', () => {
    const d = q.decide(input('send_sms', { to: 'carol' }, { counters }));
    assert.deepEqual(d.denial?.details, { counter: bucketId('send_sms.sent', '["carol"]') });
  });

  it('requirements(call) for tools without keyed reads is one frozen object, whatever the call', () => {
    const a = q.requirements({ name: 'unkeyed_reader', args: { x: 1 } });
    const b = q.requirements({ name: 'unkeyed_reader', args: { x: 2 } });
    assert.equal(a, b);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.reads));
    assert.equal(p.requirements({ name: 'send_sms', args: { to: 'a' } }), p.requirements({ name: 'same', args: { q: 1 } }));
    // A keyed counter that is only charged, never read, needs nothing gathered.
    assert.deepEqual(p.requirements({ name: 'send_sms', args: { to: 'a' } }), { reads: [], needsSchema: false, needsValidator: false });
  });

  it('the trace names the bucket read', () => {
    const d = q.decide(input('send_sms', { to: 'alice' }, { counters }), { trace: true });
    assert.deepEqual(d.trace[1]!.conditions, [{ path: 'state.send_sms.sent', op: 'lt', expected: 3, actual: 3, passed: false, counter: alice }]);
  });
});

describe('keyed charges through a counter store', () => {
  it('each bucket has its own limit', async () => {
    const store = new MemoryCounterStore();
    const send = async (args: Record<string, unknown>): Promise<string> => {
      const d = p.decide(input('send_sms', args));
      const charges = d.charges.filter((c) => c.rule === 'per recipient');
      const outcome = await store.reserve(
        charges.map((c) => ({ key: c.ref.id, window: c.ref.window, amount: c.amount, limits: c.limits })),
        NOW,
      );
      return outcome.ok ? 'allowed' : rateLimitDenial(charges[outcome.index]!, outcome.current, outcome.retryAfterMs).message;
    };
    assert.equal(await send({ to: 'CH1', body: '1' }), 'allowed');
    assert.equal(await send({ to: 'CH1', body: '2' }), 'allowed');
    // The first call's 1-second sub-window leaves a minute after it ends (src/state/rolling.ts).
    assert.equal(await send({ to: 'CH1', body: '3' }), 'Rate limit of 2 calls per minute reached for "send_sms" with to="CH1"; try again in 61 seconds.');
    assert.equal(await send({ to: 'CH2', body: '3' }), 'allowed');
  });
});

describe('messages for keyed limits', () => {
  const charge = (tool: string, args: Record<string, unknown>, rule: string): Charge =>
    p.decide(input(tool, args)).charges.find((c) => c.rule === rule)!;

  function keyedCharge(id: string, window: Window, key: Charge['key'], limit = 5): Charge {
    const owner = id.slice(0, id.indexOf('.'));
    return {
      ref: { id: `${id}[0123456789abcdef]`, owner, counter: id, scope: 'global', window },
      amount: 1,
      limits: [{ value: limit, inclusive: true }],
      rule: 'r',
      key: key!,
    };
  }
  const to = { paths: ['args.to'], values: ['+15551234567'] };

  const cases: [string, Charge, number, number | undefined, string][] = [
    [
      'rolling, one path',
      charge('send_sms', { to: '+15551234567', body: 'x' }, 'per recipient'),
      2,
      39_200,
      'Rate limit of 2 calls per minute reached for "send_sms" with to="+15551234567"; try again in 40 seconds.',
    ],
    [
      'rolling, two paths, a missing one shown as null',
      charge('pair', { from: 'a' }, 'per pair'),
      2,
      1000,
      'Rate limit of 2 calls per minute reached for "pair" with from="a", to=null; try again in 1 second.',
    ],
    [
      'rolling, nested path',
      charge('repo', { repo: { owner: 'acme', name: 'api' } }, 'per repo'),
      2,
      undefined,
      'Rate limit of 2 calls per minute reached for "repo" with repo.owner="acme", repo.name="api"; try again later.',
    ],
    [
      'rolling, key: args',
      charge('same', { a: 1 }, 'identical'),
      2,
      5000,
      'Rate limit of 2 calls per minute reached for identical calls to "same"; try again in 5 seconds.',
    ],
    [
      'rolling, key: args under "*" names the tool called',
      charge('read_file', { path: '/x' }, 'loop guard'),
      2,
      5000,
      'Rate limit of 2 calls per minute reached for identical calls to "read_file"; try again in 5 seconds.',
    ],
    [
      'rolling, keyed under "*"',
      keyedCharge('_global.r', rolling(60), to),
      5,
      5000,
      'Rate limit of 5 calls per minute reached across all tools with to="+15551234567"; try again in 5 seconds.',
    ],
    [
      'long values are cut',
      charge('send_sms', { to: 'y'.repeat(500) }, 'per recipient'),
      2,
      1000,
      `Rate limit of 2 calls per minute reached for "send_sms" with to="${'y'.repeat(79)}…; try again in 1 second.`,
    ],
    [
      'v1 shorthand',
      keyedCharge('send_sms._rate_hour', { kind: 'calendar', unit: 'hour' }, to),
      5,
      undefined,
      'Rate limit of 5 per hour reached with to="+15551234567". Try again later.',
    ],
    [
      'v1 shorthand, key: args',
      keyedCharge('send_sms._rate_day', { kind: 'calendar', unit: 'day' }, { all: true, tool: 'send_sms' }),
      5,
      undefined,
      'Rate limit of 5 per day reached for identical calls to "send_sms". Try again later.',
    ],
    [
      'state limit',
      keyedCharge('send_sms.sent', { kind: 'calendar', unit: 'day' }, to),
      5,
      undefined,
      'Limit of 5 for counter send_sms.sent (per day) reached with to="+15551234567": 5 + 1 would exceed it',
    ],
    [
      'the rule message still wins',
      { ...charge('send_sms', { to: 'a' }, 'per recipient'), message: 'Slow down' },
      2,
      1000,
      'Slow down',
    ],
  ];
  for (const [label, c, current, retryMs, expected] of cases) {
    it(label, () => assert.equal(rateLimitDenial(c, current, retryMs).message, expected));
  }

  it('details carry the bucket id and the key values', () => {
    const c = charge('pair', { from: 'a', to: 'b' }, 'per pair');
    assert.deepEqual(rateLimitDenial(c, 2, 1000).details, {
      counter: bucketId('pair.n', '["a","b"]'),
      limit: 2,
      window: rolling(60),
      current: 2,
      amount: 1,
      key: { 'args.from': 'a', 'args.to': 'b' },
    });
    assert.equal(rateLimitDenial(charge('same', { a: 1 }, 'identical'), 2, 1000).details?.key, 'args');
  });

  it('explain shows the bucket charged', () => {
    const call = { name: 'send_sms', args: { to: '+15551234567' } };
    const text = formatDecision(call, p.decide({ call, now: NOW }, { trace: true }));
    const id = bucketId('send_sms.sent', '["+15551234567"]');
    assert.ok(
      text.includes(`charges counter ${id} +1 (limit ≤ 2, window rolling 60s, scope session, with to="+15551234567")`),
      text,
    );
  });
});
