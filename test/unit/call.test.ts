// parseToolCall: the params of a tools/call become the ToolCall the policy evaluates, or are
// refused when an upstream could read them differently from the policy.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseToolCall } from '../../src/proxy/call.js';

/** The params as JSON text, so duplicate members and huge numbers can be written. */
function parse(text: string) {
  return parseToolCall(JSON.parse(text));
}

describe('parseToolCall accepts', () => {
  const cases: Array<[string, string, string, unknown]> = [
    // [label, params, name, args]
    ['name and arguments', '{"name":"echo","arguments":{"message":"hi"}}', 'echo', { message: 'hi' }],
    ['no arguments (empty object)', '{"name":"echo"}', 'echo', {}],
    ['empty arguments', '{"name":"echo","arguments":{}}', 'echo', {}],
    ['other members (_meta, task)', '{"name":"echo","arguments":{},"_meta":{"progressToken":1},"task":{"ttl":1}}', 'echo', {}],
    ['duplicate names: the last wins, as JSON.parse gives', '{"name":"delete_repo","name":"echo"}', 'echo', {}],
    ['duplicate argument keys: the last wins', '{"name":"pay","arguments":{"amount":999,"amount":1}}', 'pay', { amount: 1 }],
    ['keys differing only in case in different objects', '{"name":"x","arguments":{"a":{"k":1},"b":{"K":2}}}', 'x', { a: { k: 1 }, b: { K: 2 } }],
    ['a name with odd characters, kept exactly', '{"name":" Echo\\u0000 "}', ' Echo\u0000 ', {}],
    ['unicode escapes in the name', '{"name":"\\u0065cho"}', 'echo', {}],
    ['1e-400 (it is 0 both evaluated and forwarded)', '{"name":"x","arguments":{"n":1e-400}}', 'x', { n: 0 }],
    ['the largest double', '{"name":"x","arguments":{"n":1.7976931348623157e308}}', 'x', { n: 1.7976931348623157e308 }],
    ['nested arrays and objects', '{"name":"x","arguments":{"a":[1,[2,{"b":null}]],"c":true}}', 'x', { a: [1, [2, { b: null }]], c: true }],
    ['a __proto__ member is a plain own member', '{"name":"x","arguments":{"__proto__":{"admin":true}}}', 'x', JSON.parse('{"__proto__":{"admin":true}}')],
  ];
  for (const [label, params, name, args] of cases) {
    it(label, () => {
      const parsed = parse(params);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.message);
      assert.equal(parsed.call.name, name);
      assert.deepEqual(parsed.call.args, args);
    });
  }

  it('evaluates the very arguments object that will be forwarded', () => {
    const params = JSON.parse('{"name":"x","arguments":{"a":1}}') as { arguments: unknown };
    const parsed = parseToolCall(params);
    assert.ok(parsed.ok);
    assert.equal(parsed.call.args, params.arguments);
  });

  it('a __proto__ member does not become the prototype', () => {
    const parsed = parse('{"name":"x","arguments":{"__proto__":{"admin":true}}}');
    assert.ok(parsed.ok);
    assert.equal(Object.getPrototypeOf(parsed.call.args), Object.prototype);
    assert.equal((parsed.call.args as Record<string, unknown>).admin, undefined);
  });
});

describe('parseToolCall refuses', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['params missing', undefined, /params must be an object/],
    ['params null', null, /params must be an object/],
    ['params an array', ['echo'], /params must be an object/],
    ['params a string', 'echo', /params must be an object/],
    ['no name', { arguments: {} }, /name must be a non-empty string/],
    ['an empty name', { name: '' }, /name must be a non-empty string/],
    ['a numeric name', { name: 5 }, /name must be a non-empty string/],
    ['a name that is a list', { name: ['echo'] }, /name must be a non-empty string/],
    ['a name that is an object', { name: { toString: 'echo' } }, /name must be a non-empty string/],
    ['arguments null', { name: 'x', arguments: null }, /arguments must be an object/],
    ['arguments a list', { name: 'x', arguments: [1] }, /arguments must be an object/],
    ['arguments a string', { name: 'x', arguments: '{}' }, /arguments must be an object/],
  ];
  for (const [label, params, message] of cases) {
    it(label, () => {
      const parsed = parseToolCall(params);
      assert.ok(!parsed.ok);
      assert.match(parsed.message, message);
    });
  }

  const textCases: Array<[string, string, RegExp]> = [
    ['"Name" beside name', '{"name":"echo","Name":"delete_repo"}', /"Name" is ambiguous/],
    ['"NAME" alone', '{"NAME":"delete_repo"}', /"NAME" is ambiguous/],
    ['"Arguments" beside arguments', '{"name":"x","arguments":{},"Arguments":{"a":1}}', /"Arguments" is ambiguous/],
    ['"argumentſ" (long s)', '{"name":"x","argument\\u017f":{"a":1}}', /ambiguous/],
    ['1e400 in the arguments', '{"name":"x","arguments":{"n":1e400}}', /outside the range of a double/],
    ['-1e400 deep in an array', '{"name":"x","arguments":{"a":[{"b":[-1e400]}]}}', /outside the range of a double/],
    ['argument keys differing only in case', '{"name":"pay","arguments":{"amount":1,"AMOUNT":999}}', /differ only in case \("amount" and "AMOUNT"\)/],
    ['nested keys differing only in case', '{"name":"x","arguments":{"to":{"email":"a","Email":"b"}}}', /differ only in case/],
    ['keys in an array element differing only in case', '{"name":"x","arguments":{"list":[{"id":1,"ID":2}]}}', /differ only in case/],
    ['the Kelvin sign against k', '{"name":"x","arguments":{"kind":"a","\\u212Aind":"b"}}', /differ only in case/],
  ];
  for (const [label, params, message] of textCases) {
    it(label, () => {
      const parsed = parse(params);
      assert.ok(!parsed.ok);
      assert.match(parsed.message, message);
    });
  }

  it('deeply nested arguments without overflowing the stack', () => {
    const depth = 100_000;
    const text = `{"name":"x","arguments":{"a":${'['.repeat(depth)}1e400${']'.repeat(depth)}}}`;
    const parsed = parse(text);
    assert.ok(!parsed.ok);
    assert.match(parsed.message, /outside the range of a double/);
  });
});
