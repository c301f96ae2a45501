// The two checks every message passes as it arrives: how deep it nests, and whether its method
// only imitates one the proxy acts on.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MAX_DEPTH, exceedsDepth } from '../../src/jsonrpc/depth.js';
import { ACTED_ON_METHODS, foldMethod, impersonatedMethod } from '../../src/jsonrpc/methods.js';
import { classify } from '../../src/jsonrpc/message.js';
import { parseFrame } from '../../src/transport/channel.js';

const nest = (open: string, close: string, n: number) => JSON.parse(open.repeat(n) + close.repeat(n)) as unknown;

describe('exceedsDepth', () => {
  it('counts the message itself as level 1, arrays and objects alike', () => {
    assert.equal(exceedsDepth({}, 1), false);
    assert.equal(exceedsDepth({ a: {} }, 1), true);
    assert.equal(exceedsDepth(nest('[', ']', 64), 64), false);
    assert.equal(exceedsDepth(nest('[', ']', 65), 64), true);
    const objects = (n: number) => JSON.parse('{"a":'.repeat(n - 1) + '{}' + '}'.repeat(n - 1)) as unknown;
    assert.equal(exceedsDepth(objects(64), 64), false);
    assert.equal(exceedsDepth(objects(65), 64), true);
  });

  it('finds the one deep branch among shallow ones, and ignores scalars', () => {
    const value = { a: 1, b: 'x', c: [null, true, { d: nest('[', ']', 70) }], e: {} };
    assert.equal(exceedsDepth(value, 64), true);
    assert.equal(exceedsDepth(value, 80), false);
    assert.equal(exceedsDepth('text', 1), false);
    assert.equal(exceedsDepth(null, 1), false);
  });

  it('walks a million levels without overflowing the stack', () => {
    assert.equal(exceedsDepth(nest('[', ']', 1_000_000), DEFAULT_MAX_DEPTH), true);
  });
});

describe('parseFrame', () => {
  it('delivers a message within the limit with its raw text, and a deeper one as too_deep', () => {
    const text = '{"jsonrpc":"2.0","method":"x","params":[[[]]]}';
    assert.deepEqual(parseFrame(text, 4), { kind: 'message', value: JSON.parse(text), raw: text });
    assert.deepEqual(parseFrame(text, 3), { kind: 'too_deep', value: JSON.parse(text), limit: 3 });
  });
});

describe('impersonatedMethod', () => {
  const imitations: Array<[string, string]> = [
    ['Tools/Call', 'tools/call'],
    ['TOOLS/LIST', 'tools/list'],
    ['tools/call ', 'tools/call'],
    ['\ttools/call', 'tools/call'],
    ['tools/call\r\n', 'tools/call'],
    ['tools\uFF0Fcall', 'tools/call'],
    ['\uFF34ools/list', 'tools/list'],
    ['tools/\u200Bcall', 'tools/call'],
    ['tools/\u2060call', 'tools/call'],
    ['\uFEFFtools/list', 'tools/list'],
    ['tool\u017F/call', 'tools/call'],
    ['/tools/call/', 'tools/call'],
    ['Initialize', 'initialize'],
    ['Notifications/Cancelled', 'notifications/cancelled'],
    ['notifications/tools/list_changed ', 'notifications/tools/list_changed'],
  ];
  for (const [method, target] of imitations) {
    it(`${JSON.stringify(method)} imitates ${target}`, () => {
      assert.equal(impersonatedMethod(method), target);
      assert.equal(classify({ jsonrpc: '2.0', id: 1, method }).kind, 'invalid');
    });
  }

  const others = [...ACTED_ON_METHODS, 'ping', 'resources/read', 'Custom/Method', 'tools/call2', 'tools//call', 't\u043Eols/call' /* Cyrillic o */];
  for (const method of others) {
    it(`${JSON.stringify(method)} imitates nothing`, () => {
      assert.equal(impersonatedMethod(method), undefined);
    });
  }

  it('folds compatibility forms, invisible characters, case and outer slashes', () => {
    assert.equal(foldMethod('\uFF34\uFF4F\uFF4F\uFF4C\uFF53 / C\u00ADall/'), 'tools/call');
  });
});
