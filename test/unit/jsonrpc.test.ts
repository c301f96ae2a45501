// JSON-RPC framing and classification: what the gate relies on to know what a message is.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { errorResponse } from '../../src/jsonrpc/errors.js';
import { LineReader, parseByteSize, type Frame } from '../../src/jsonrpc/framing.js';
import { ambiguousKey, classify, foldKey, idKey, type Classified } from '../../src/jsonrpc/message.js';

/** classify() of the JSON text, reduced to what the gate acts on. */
function kindOf(text: string): [Classified['kind'], unknown] {
  const c = classify(JSON.parse(text));
  return [c.kind, c.kind === 'invalid' ? c.id : 'id' in c.msg ? c.msg.id : undefined];
}

describe('classify', () => {
  const cases: Array<[string, string, Classified['kind'], unknown]> = [
    // [label, message, kind, id the answer would carry]
    ['a request', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}', 'request', 1],
    ['a request with a string id', '{"jsonrpc":"2.0","id":"a","method":"ping"}', 'request', 'a'],
    ['a request with id 0', '{"jsonrpc":"2.0","id":0,"method":"ping"}', 'request', 0],
    ['a request with a negative fractional id', '{"jsonrpc":"2.0","id":-1.5,"method":"ping"}', 'request', -1.5],
    ['a request with an empty string id', '{"jsonrpc":"2.0","id":"","method":"ping"}', 'request', ''],
    ['a request with array params', '{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}', 'request', 1],
    ['a notification', '{"jsonrpc":"2.0","method":"notifications/initialized"}', 'notification', undefined],
    ['a tools/call without an id is a notification', '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x"}}', 'notification', undefined],
    ['a result', '{"jsonrpc":"2.0","id":1,"result":{}}', 'response', 1],
    ['a null result still counts as a result', '{"jsonrpc":"2.0","id":1,"result":null}', 'response', 1],
    ['an error', '{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"x"}}', 'response', 1],
    ['an error with id null', '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}', 'response', null],
    ['extra members are allowed', '{"jsonrpc":"2.0","id":1,"method":"ping","extra":true}', 'request', 1],

    ['not an object: an array', '[]', 'invalid', null],
    ['not an object: a string', '"tools/call"', 'invalid', null],
    ['not an object: null', 'null', 'invalid', null],
    ['not an object: a number', '5', 'invalid', null],
    ['jsonrpc missing', '{"id":1,"method":"ping"}', 'invalid', 1],
    ['jsonrpc "1.0"', '{"jsonrpc":"1.0","id":1,"method":"ping"}', 'invalid', 1],
    ['jsonrpc 2 as a number', '{"jsonrpc":2,"id":1,"method":"ping"}', 'invalid', 1],
    ['jsonrpc "2.0 "', '{"jsonrpc":"2.0 ","id":1,"method":"ping"}', 'invalid', 1],
    ['method 5', '{"jsonrpc":"2.0","id":1,"method":5}', 'invalid', 1],
    ['method null', '{"jsonrpc":"2.0","id":1,"method":null}', 'invalid', 1],
    ['method ""', '{"jsonrpc":"2.0","id":1,"method":""}', 'invalid', 1],
    ['params a string', '{"jsonrpc":"2.0","id":1,"method":"x","params":"p"}', 'invalid', 1],
    ['params a number', '{"jsonrpc":"2.0","id":1,"method":"x","params":1}', 'invalid', 1],
    ['a request with id null', '{"jsonrpc":"2.0","id":null,"method":"ping"}', 'invalid', null],
    ['a request with id {}', '{"jsonrpc":"2.0","id":{},"method":"ping"}', 'invalid', null],
    ['a request with id []', '{"jsonrpc":"2.0","id":[],"method":"ping"}', 'invalid', null],
    ['a request with id true', '{"jsonrpc":"2.0","id":true,"method":"ping"}', 'invalid', null],
    ['a request with an id beyond double range', '{"jsonrpc":"2.0","id":1e400,"method":"ping"}', 'invalid', null],
    ['a response with an object id', '{"jsonrpc":"2.0","id":{},"result":{}}', 'invalid', null],
    ['neither method, result nor error', '{"jsonrpc":"2.0","id":1}', 'invalid', 1],
    ['both result and error', '{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}', 'invalid', 1],
    ['an error that is not an object', '{"jsonrpc":"2.0","id":1,"error":"bad"}', 'invalid', 1],
    ['"Method" beside method', '{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}', 'invalid', 1],
    ['"METHOD" alone', '{"jsonrpc":"2.0","id":1,"METHOD":"tools/call"}', 'invalid', 1],
    ['"Params"', '{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{}}', 'invalid', 1],
    ['"ID"', '{"jsonrpc":"2.0","id":1,"ID":2,"method":"ping"}', 'invalid', 1],
    ['"Jsonrpc"', '{"Jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}', 'invalid', 1],
    ['"Result"', '{"jsonrpc":"2.0","id":1,"Result":{}}', 'invalid', 1],
    ['"paramſ" (long s folds to s)', '{"jsonrpc":"2.0","id":1,"method":"x","param\\u017f":{}}', 'invalid', 1],
    ['"ｍethod" (fullwidth m folds to m)', '{"jsonrpc":"2.0","id":1,"method":"x","\\uff4dethod":"tools/call"}', 'invalid', 1],
  ];
  for (const [label, text, kind, id] of cases) {
    it(`${label} -> ${kind}`, () => {
      assert.deepEqual(kindOf(text), [kind, id]);
    });
  }

  it('gives a reason for every invalid message', () => {
    for (const [, text, kind] of cases) {
      if (kind !== 'invalid') continue;
      const c = classify(JSON.parse(text));
      assert.ok(c.kind === 'invalid' && c.reason.length > 0, text);
    }
  });

  it('names the ambiguous member in its reason', () => {
    const c = classify(JSON.parse('{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}'));
    assert.ok(c.kind === 'invalid');
    assert.match(c.reason, /"Method"/);
  });

  it('returns the very object it was given (what is evaluated is what is forwarded)', () => {
    const value = JSON.parse('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}') as unknown;
    const c = classify(value);
    assert.ok(c.kind === 'request');
    assert.equal(c.msg, value);
    assert.deepEqual(c.msg.params, { name: 'b' });
  });
});

describe('foldKey and ambiguousKey', () => {
  const folds: Array<[string, string]> = [
    ['method', 'method'],
    ['METHOD', 'method'],
    ['MeThOd', 'method'],
    ['\u212Aey', 'key'], // Kelvin sign
    ['param\u017F', 'params'], // long s
    ['\uFF4Dethod', 'method'], // fullwidth m
    ['naïve', 'naïve'],
  ];
  for (const [key, folded] of folds) {
    it(`folds ${JSON.stringify(key)} to ${JSON.stringify(folded)}`, () => {
      assert.equal(foldKey(key), folded);
    });
  }

  const reserved = new Set(['name', 'arguments']);
  const cases: Array<[Record<string, unknown>, string | undefined]> = [
    [{ name: 1, arguments: 2 }, undefined],
    [{ name: 1, other: 2, Other: 3 }, undefined],
    [{ Name: 1 }, 'Name'],
    [{ name: 1, ARGUMENTS: 2 }, 'ARGUMENTS'],
    [{ 'n\u0430me': 1 }, undefined], // Cyrillic a: a different name, not a case variant
  ];
  for (const [obj, odd] of cases) {
    it(`ambiguousKey(${JSON.stringify(obj)}) is ${JSON.stringify(odd)}`, () => {
      assert.equal(ambiguousKey(obj, reserved), odd);
    });
  }
});

describe('idKey', () => {
  it('keeps numbers and strings apart', () => {
    assert.notEqual(idKey(1), idKey('1'));
    assert.notEqual(idKey(0), idKey(''));
    assert.equal(idKey(1), idKey(1.0));
    assert.equal(idKey('a'), idKey('a'));
  });
});

describe('errorResponse', () => {
  it('builds a JSON-RPC error, with data only when given', () => {
    assert.deepEqual(errorResponse(null, -32700, 'Parse error'), { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
    assert.deepEqual(errorResponse(3, -32602, 'bad', { at: 'x' }), { jsonrpc: '2.0', id: 3, error: { code: -32602, message: 'bad', data: { at: 'x' } } });
  });
});

describe('LineReader', () => {
  /** Feeds the chunks (then ends the stream unless told not to) and returns the frames. */
  function frames(max: number, chunks: Array<string | Buffer>, end = true): Frame[] {
    const out: Frame[] = [];
    const reader = new LineReader(max, (f) => out.push(f));
    for (const c of chunks) reader.push(typeof c === 'string' ? Buffer.from(c) : c);
    if (end) reader.end();
    return out;
  }
  const line = (text: string): Frame => ({ kind: 'line', text });

  const cases: Array<[string, number, Array<string | Buffer>, Frame[]]> = [
    ['one line', 100, ['{"a":1}\n'], [line('{"a":1}')]],
    ['two lines in one chunk', 100, ['a\nb\n'], [line('a'), line('b')]],
    ['a line split over chunks', 100, ['{"a"', ':1', '}\n'], [line('{"a":1}')]],
    ['a chunk boundary right after the newline', 100, ['a\n', 'b\n'], [line('a'), line('b')]],
    ['a chunk boundary right before the newline', 100, ['a', '\nb', '\n'], [line('a'), line('b')]],
    ['\\r\\n endings', 100, ['a\r\nb\r\n'], [line('a'), line('b')]],
    ['\\r\\n split between chunks', 100, ['a\r', '\nb\r\n'], [line('a'), line('b')]],
    ['only the final \\r is dropped', 100, ['a\rb\r\r\n'], [line('a\rb\r')]],
    ['empty and blank lines are skipped', 100, ['\n\n  \n\t\r\na\n'], [line('a')]],
    ['a final line without a newline', 100, ['a\nb'], [line('a'), line('b')]],
    ['a final \\r\\n-less line split over chunks', 100, ['{"a"', ':1}'], [line('{"a":1}')]],
    ['a line exactly at the limit', 5, ['abcde\n'], [line('abcde')]],
    ['a line one byte over the limit', 5, ['abcdef\n'], [{ kind: 'oversize', bytes: 6 }]],
    ['oversize, then recovery on the next line', 5, ['abcdefgh\nok\n'], [{ kind: 'oversize', bytes: 8 }, line('ok')]],
    ['oversize across many chunks counts every byte', 4, ['ab', 'cd', 'ef', 'gh', '\nx\n'], [{ kind: 'oversize', bytes: 8 }, line('x')]],
    ['oversize in the final unterminated line', 3, ['ok\nabcdef'], [line('ok'), { kind: 'oversize', bytes: 6 }]],
    ['two oversize lines in a row', 2, ['abc\ndef\n'], [{ kind: 'oversize', bytes: 3 }, { kind: 'oversize', bytes: 3 }]],
    ['the limit counts bytes, not characters', 5, ['ééé\n'], [{ kind: 'oversize', bytes: 6 }]],
  ];
  for (const [label, max, chunks, want] of cases) {
    it(label, () => {
      assert.deepEqual(frames(max, chunks), want);
    });
  }

  it('a multi-byte character split across chunks is decoded whole', () => {
    const bytes = Buffer.from('{"m":"héllo ✓ 😀"}\n');
    // Every split point, including inside each multi-byte sequence.
    for (let i = 1; i < bytes.length - 1; i++) {
      assert.deepEqual(frames(100, [bytes.subarray(0, i), bytes.subarray(i)]), [line('{"m":"héllo ✓ 😀"}')], `split at byte ${i}`);
    }
    // And one byte at a time.
    const single = [...bytes].map((b) => Buffer.from([b]));
    assert.deepEqual(frames(100, single), [line('{"m":"héllo ✓ 😀"}')]);
  });

  it('emits a line as soon as its newline arrives, before the stream ends', () => {
    assert.deepEqual(frames(100, ['a\nb'], false), [line('a')]);
  });

  it('end() with nothing buffered emits nothing', () => {
    assert.deepEqual(frames(100, ['a\n']), [line('a')]);
    assert.deepEqual(frames(100, []), []);
  });

  it('reports a 10 MiB line fed in chunks as one oversize frame, then reads on', () => {
    const out: Frame[] = [];
    const reader = new LineReader(1024, (f) => out.push(f));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let i = 0; i < 160; i++) reader.push(chunk);
    assert.deepEqual(out, [], 'nothing until the line ends');
    reader.push(Buffer.from('\nok\n'));
    assert.deepEqual(out, [{ kind: 'oversize', bytes: 160 * 64 * 1024 }, line('ok')]);
  });
});

describe('parseByteSize', () => {
  const cases: Array<[string, number | null]> = [
    ['1048576', 1048576],
    ['1', 1],
    ['4MiB', 4 * 1024 * 1024],
    ['4mib', 4 * 1024 * 1024],
    ['512KiB', 512 * 1024],
    ['1KiB', 1024],
    ['10MB', 10 * 1024 * 1024],
    ['2k', 2048],
    ['1G', 1024 ** 3],
    ['1GiB', 1024 ** 3],
    ['1.5KiB', 1536],
    [' 64 KiB ', 64 * 1024],
    ['100b', 100],
    ['0', null],
    ['0KiB', null],
    ['0.0001', null],
    ['-1', null],
    ['', null],
    ['lots', null],
    ['4 MiBs', null],
    ['1TiB', null],
    ['KiB', null],
    ['1e3', null],
  ];
  for (const [text, bytes] of cases) {
    it(`${JSON.stringify(text)} -> ${bytes}`, () => {
      assert.equal(parseByteSize(text), bytes);
    });
  }
});
