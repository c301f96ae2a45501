// Every operator, observed through a compiled one-condition policy: does the call pass?
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compile } from '../../src/engine/compile.js';
import type { Operator, Policy, PolicyValue } from '../../src/policy/model.js';

const pos = { file: 'policy.yaml', line: 1, col: 1 };

/** A policy whose only rule for tool `t` is `path op value`. */
function onePolicy(path: string, op: Operator, value: PolicyValue): Policy {
  return {
    source: 'policy.yaml',
    defaultAction: 'allow',
    hide: [],
    tools: [{ name: 't', pos, rules: [{ name: 'r', action: 'evaluate', conditions: [{ path, op, value, pos }], pos }] }],
  };
}

function passes(path: string, op: Operator, value: PolicyValue, args: Record<string, unknown>): boolean {
  return compile(onePolicy(path, op, value)).decide({ call: { name: 't', args }, now: 0 }).allowed;
}

type Row = [label: string, path: string, op: Operator, value: PolicyValue, args: Record<string, unknown>, expected: boolean];

const longAs = 'a'.repeat(50_000);

const rows: Row[] = [
  // eq
  ['eq number match', 'args.n', 'eq', 5, { n: 5 }, true],
  ['eq number no match', 'args.n', 'eq', 5, { n: 6 }, false],
  ['eq missing', 'args.n', 'eq', 5, {}, false],
  ['eq null vs number', 'args.n', 'eq', 5, { n: null }, false],
  ['eq null vs null', 'args.n', 'eq', null, { n: null }, true],
  ['eq null vs "null"', 'args.n', 'eq', 'null', { n: null }, false],
  ['eq null vs "<nil>"', 'args.n', 'eq', '<nil>', { n: null }, false],
  ['eq array vs scalar', 'args.n', 'eq', 5, { n: [5] }, false],
  ['eq object vs scalar', 'args.n', 'eq', '[object Object]', { n: {} }, false],
  ['eq boolean vs number', 'args.n', 'eq', 1, { n: true }, false],
  ['eq numeric string vs number', 'args.n', 'eq', 5, { n: '5' }, true],
  ['eq number vs numeric string', 'args.n', 'eq', '5', { n: 5 }, true],
  ['eq large number vs its string', 'args.n', 'eq', '1000000', { n: 1000000 }, true],
  ['eq decimal string vs integer', 'args.n', 'eq', 5, { n: '5.0' }, true],
  ['eq exponent string', 'args.n', 'eq', 1000, { n: '1e3' }, true],
  ['eq negative numeric string', 'args.n', 'eq', -2.5, { n: '-2.5' }, true],
  ['eq leading-dot string', 'args.n', 'eq', 0.5, { n: '.5' }, true],
  ['eq string with whitespace is not numeric', 'args.n', 'eq', 5, { n: ' 5' }, false],
  ['eq hex string is not numeric', 'args.n', 'eq', 5, { n: '0x5' }, false],
  ['eq plus sign is not numeric', 'args.n', 'eq', 5, { n: '+5' }, false],
  ['eq empty string vs 0', 'args.n', 'eq', 0, { n: '' }, false],
  ['eq "Infinity" string', 'args.n', 'eq', 5, { n: 'Infinity' }, false],
  ['eq boolean vs "true"', 'args.b', 'eq', 'true', { b: true }, true],
  ['eq "false" vs boolean', 'args.b', 'eq', false, { b: 'false' }, true],
  ['eq "True" is not true', 'args.b', 'eq', true, { b: 'True' }, false],
  ['eq boolean mismatch', 'args.b', 'eq', true, { b: false }, false],
  ['eq strings are case-sensitive', 'args.s', 'eq', 'main', { s: 'Main' }, false],
  ['eq strings match', 'args.s', 'eq', 'main', { s: 'main' }, true],
  ['eq arrays element-wise', 'args.l', 'eq', [1, 2], { l: [1, '2'] }, true],
  ['eq arrays of different length', 'args.l', 'eq', [1, 2], { l: [1] }, false],
  ['eq objects key-wise', 'args.o', 'eq', { a: 1 }, { o: { a: '1' } }, true],
  ['eq object vs array', 'args.o', 'eq', [], { o: {} }, false],
  ['eq nested path', 'args.a.b.c', 'eq', 'x', { a: { b: { c: 'x' } } }, true],
  ['eq nested path through a scalar', 'args.a.b', 'eq', 'x', { a: 'xyz' }, false],
  ['eq array index', 'args.to.1', 'eq', 'b@x', { to: ['a@x', 'b@x'] }, true],
  ['eq array index out of range', 'args.to.2', 'eq', 'b@x', { to: ['a@x', 'b@x'] }, false],
  ['eq __proto__ is not an argument', 'args.__proto__', 'eq', 'x', {}, false],
  ['eq own __proto__ key', 'args.__proto__', 'eq', 'x', JSON.parse('{"__proto__":"x"}'), true],

  // neq
  ['neq differs', 'args.s', 'neq', 'draft', { s: 'final' }, true],
  ['neq equal', 'args.s', 'neq', 'draft', { s: 'draft' }, false],
  ['neq missing fails closed', 'args.s', 'neq', 'draft', {}, false],
  ['neq null is present', 'args.s', 'neq', 'draft', { s: null }, true],
  ['neq numeric string equal', 'args.n', 'neq', 5, { n: '5' }, false],
  ['neq array vs scalar', 'args.n', 'neq', 5, { n: [5] }, true],
  ['neq nested', 'args.a.b', 'neq', 1, { a: { b: 2 } }, true],
  ['neq array index', 'args.l.0', 'neq', 'x', { l: ['x'] }, false],
  ['neq constructor is missing', 'args.constructor', 'neq', 'x', {}, false],

  // in
  ['in match', 'args.c', 'in', ['usd', 'eur'], { c: 'usd' }, true],
  ['in no match', 'args.c', 'in', ['usd', 'eur'], { c: 'gbp' }, false],
  ['in missing', 'args.c', 'in', ['usd'], {}, false],
  ['in null vs [null]', 'args.c', 'in', [null], { c: null }, true],
  ['in null vs strings', 'args.c', 'in', ['usd'], { c: null }, false],
  ['in numeric string', 'args.c', 'in', [1, 5], { c: '5' }, true],
  ['in wrong type', 'args.c', 'in', ['usd'], { c: ['usd'] }, false],
  ['in case-sensitive', 'args.c', 'in', ['usd'], { c: 'USD' }, false],
  ['in nested', 'args.p.c', 'in', ['usd'], { p: { c: 'usd' } }, true],
  ['in array index', 'args.l.0', 'in', ['a'], { l: ['a'] }, true],
  ['in toString is missing', 'args.toString', 'in', ['x'], {}, false],

  // not_in
  ['not_in absent from list', 'args.r', 'not_in', ['admin'], { r: 'user' }, true],
  ['not_in in list', 'args.r', 'not_in', ['admin'], { r: 'admin' }, false],
  ['not_in missing fails closed', 'args.r', 'not_in', ['admin'], {}, false],
  ['not_in null', 'args.r', 'not_in', ['admin'], { r: null }, true],
  ['not_in numeric string', 'args.r', 'not_in', [5], { r: '5' }, false],
  ['not_in wrong type', 'args.r', 'not_in', ['admin'], { r: { admin: true } }, true],
  ['not_in nested', 'args.u.r', 'not_in', ['admin'], { u: { r: 'admin' } }, false],
  ['not_in array index', 'args.r.1', 'not_in', ['admin'], { r: ['user', 'admin'] }, false],
  ['not_in __proto__ is missing', 'args.__proto__', 'not_in', ['admin'], {}, false],

  // lt lte gt gte
  ['lt below', 'args.n', 'lt', 5, { n: 3 }, true],
  ['lt equal', 'args.n', 'lt', 5, { n: 5 }, false],
  ['lte equal', 'args.n', 'lte', 5, { n: 5 }, true],
  ['lte above', 'args.n', 'lte', 5, { n: 5.01 }, false],
  ['gt above', 'args.n', 'gt', 5, { n: 6 }, true],
  ['gt equal', 'args.n', 'gt', 5, { n: 5 }, false],
  ['gte equal', 'args.n', 'gte', 5, { n: 5 }, true],
  ['gte below', 'args.n', 'gte', 5, { n: -1 }, false],
  ['lt missing', 'args.n', 'lt', 5, {}, false],
  ['gt missing', 'args.n', 'gt', 5, {}, false],
  ['lte null', 'args.n', 'lte', 5, { n: null }, false],
  ['gte null', 'args.n', 'gte', 0, { n: null }, false],
  ['lt numeric string', 'args.n', 'lt', 5, { n: '3' }, true],
  ['gte numeric string', 'args.n', 'gte', 5, { n: '4.5' }, false],
  ['lt non-numeric string', 'args.n', 'lt', 5, { n: 'abc' }, false],
  ['lt string with whitespace', 'args.n', 'lt', 5, { n: ' 3' }, false],
  ['lt boolean', 'args.n', 'lt', 5, { n: true }, false],
  ['lt array', 'args.n', 'lt', 5, { n: [1] }, false],
  ['gt infinite string', 'args.n', 'gt', 5, { n: '1e400' }, false],
  ['lte nested', 'args.a.n', 'lte', 5, { a: { n: 5 } }, true],
  ['lte array index', 'args.a.0', 'lte', 5, { a: [6] }, false],
  ['lt valueOf is missing', 'args.valueOf', 'lt', 5, {}, false],

  // regex
  ['regex match', 'args.s', 'regex', '^feat/', { s: 'feat/x' }, true],
  ['regex no match', 'args.s', 'regex', '^feat/', { s: 'fix/x' }, false],
  ['regex unanchored', 'args.s', 'regex', 'abc', { s: 'xxabcxx' }, true],
  ['regex case-sensitive', 'args.s', 'regex', 'abc', { s: 'ABC' }, false],
  ['regex inline flag (RE2 syntax)', 'args.s', 'regex', '(?i)abc', { s: 'ABC' }, true],
  ['regex named group (RE2 syntax)', 'args.s', 'regex', '^(?P<user>[a-z]+)@', { s: 'bob@x' }, true],
  ['regex missing', 'args.s', 'regex', '.*', {}, false],
  ['regex null', 'args.s', 'regex', '.*', { s: null }, false],
  ['regex on a number', 'args.s', 'regex', '1', { s: 123 }, false],
  ['regex on a numeric string', 'args.s', 'regex', '^[0-9]+$', { s: '123' }, true],
  ['regex on an array', 'args.s', 'regex', 'a', { s: ['a'] }, false],
  ['regex nested', 'args.a.s', 'regex', '\\.md$', { a: { s: 'README.md' } }, true],
  ['regex array index', 'args.a.0', 'regex', '^x', { a: ['xy'] }, true],
  ['regex pathological pattern is linear', 'args.s', 'regex', '(a+)+$', { s: longAs + 'b' }, false],
  ['regex pathological pattern matches', 'args.s', 'regex', '(a+)+$', { s: longAs }, true],

  // contains
  ['contains substring', 'args.s', 'contains', 'world', { s: 'hello world' }, true],
  ['contains no substring', 'args.s', 'contains', 'mars', { s: 'hello world' }, false],
  ['contains case-sensitive', 'args.s', 'contains', 'hello', { s: 'Hello' }, false],
  ['contains array element', 'args.l', 'contains', 'b', { l: ['a', 'b'] }, true],
  ['contains array element with coercion', 'args.l', 'contains', '2', { l: [1, 2] }, true],
  ['contains array without it', 'args.l', 'contains', 'c', { l: ['a', 'b'] }, false],
  ['contains array of substrings is not substring', 'args.l', 'contains', 'a', { l: ['abc'] }, false],
  ['contains missing', 'args.s', 'contains', 'x', {}, false],
  ['contains null', 'args.s', 'contains', 'x', { s: null }, false],
  ['contains on a number', 'args.s', 'contains', '2', { s: 123 }, false],
  ['contains number in a string', 'args.s', 'contains', 2, { s: '123' }, false],
  ['contains on an object', 'args.s', 'contains', 'a', { s: { a: 1 } }, false],
  ['contains nested', 'args.a.s', 'contains', 'x', { a: { s: 'axb' } }, true],
  ['contains array index', 'args.a.0', 'contains', 'x', { a: ['axb'] }, true],
  ['contains hasOwnProperty is missing', 'args.hasOwnProperty', 'contains', 'f', {}, false],

  // exists
  ['exists true, present', 'args.s', 'exists', true, { s: 'x' }, true],
  ['exists true, present falsy', 'args.s', 'exists', true, { s: '' }, true],
  ['exists true, missing', 'args.s', 'exists', true, {}, false],
  ['exists true, null', 'args.s', 'exists', true, { s: null }, false],
  ['exists false, missing', 'args.s', 'exists', false, {}, true],
  ['exists false, null', 'args.s', 'exists', false, { s: null }, true],
  ['exists false, present', 'args.s', 'exists', false, { s: 0 }, false],
  ['exists nested', 'args.a.b', 'exists', true, { a: { b: 1 } }, true],
  ['exists through a scalar', 'args.a.b', 'exists', true, { a: 1 }, false],
  ['exists array index', 'args.to.0', 'exists', true, { to: ['x'] }, true],
  ['exists array index out of range', 'args.to.1', 'exists', true, { to: ['x'] }, false],
  ['exists non-index step into an array', 'args.to.length', 'exists', true, { to: ['x'] }, false],
  ['exists leading-zero index is not an index', 'args.to.00', 'exists', true, { to: ['x'] }, false],
  ['exists numeric key of an object', 'args.m.0', 'exists', true, { m: { '0': 'x' } }, true],
  ['exists length of a string', 'args.s.length', 'exists', true, { s: 'abc' }, false],
  ['exists __proto__ not own', 'args.__proto__', 'exists', true, {}, false],
  ['exists __proto__ own', 'args.__proto__', 'exists', true, JSON.parse('{"__proto__":{}}'), true],
  ['exists constructor not own', 'args.constructor', 'exists', true, {}, false],
  ['exists constructor own', 'args.constructor', 'exists', true, { constructor: 'x' }, true],
  ['exists inherited through nesting', 'args.a.constructor.name', 'exists', true, { a: {} }, false],
];

describe('operators', () => {
  for (const [label, path, op, value, args, expected] of rows) {
    it(`${label}: ${path} ${op} ${JSON.stringify(value)} on ${JSON.stringify(args).slice(0, 60)} → ${expected}`, () => {
      assert.equal(passes(path, op, value, args), expected);
    });
  }

  it('covers every operator', () => {
    const seen = new Set(rows.map((r) => r[2]));
    for (const op of ['eq', 'neq', 'in', 'not_in', 'lt', 'lte', 'gt', 'gte', 'regex', 'contains', 'exists']) {
      assert.ok(seen.has(op as Operator), op);
    }
  });

  it('gives the same answer when a compiled regex is used again', () => {
    const policy = compile(onePolicy('args.s', 'regex', 'a'));
    const results = ['a', 'a', 'b', 'a'].map((s) => policy.decide({ call: { name: 't', args: { s } }, now: 0 }).allowed);
    assert.deepEqual(results, [true, true, false, true]);
  });
});

describe('operands the loader should have rejected', () => {
  const bad: [Operator, PolicyValue][] = [
    ['in', 'usd'],
    ['lt', '5'],
    ['regex', 5],
    ['exists', 'yes'],
    ['regex', '(?=x)'],
  ];
  for (const [op, value] of bad) {
    it(`${op} ${JSON.stringify(value)} throws at compile time`, () => {
      assert.throws(() => compile(onePolicy('args.x', op, value)));
    });
  }
});
