// Hostile policy files: a "billion laughs" of aliases, nesting a hundred thousand levels deep in
// each YAML style, and a file too large to read. Each is refused with a clear error at its line,
// without exhausting the stack; none of them stalls the loader (the test's own timeout is the
// bound, never a measured duration).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_POLICY_BYTES, MAX_POLICY_DEPTH } from '../../src/policy/limits.js';
import { parsePolicy } from '../../src/policy/load.js';

function refused(text: string): { line: number; col: number; message: string }[] {
  const result = parsePolicy(text, 'policy.yaml');
  assert.equal(result.ok, false, 'the policy loaded');
  return result.ok ? [] : result.issues;
}

/** Nine levels of nine aliases each: 9^9 (387 million) "lol"s if anything expanded them. */
function laughs(): string[] {
  const lines = ['    - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let i = 1; i < 9; i++) {
    const [prev, name] = [String.fromCharCode(96 + i), String.fromCharCode(97 + i)];
    lines.push(`    - &${name} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`);
  }
  return lines;
}

describe('policy files built to exhaust the loader', { timeout: 60_000 }, () => {
  it('refuses a billion laughs wherever the language reads a value, at its line', () => {
    const inHide = ['hide:', ...laughs(), '    - *i', ''].join('\n');
    assert.ok(refused(inHide).some((i) => i.line === 2 && /tool name, got a list/.test(i.message)));
    const inCondition = [
      'version: "1"',
      'tools:',
      '  pay:',
      '    rules:',
      '      - name: huge',
      '        action: allow',
      '        conditions:',
      '          - path: args.to',
      '            op: in',
      '            value:',
      ...laughs().map((l) => `      ${l}`),
      '',
    ].join('\n');
    assert.ok(refused(inCondition).length > 0);
    const asRules = ['version: "1"', 'tools:', '  pay:', '    rules:', ...laughs().map((l) => l.replace('    -', '      -')), ''].join('\n');
    assert.ok(refused(asRules).some((i) => /rule must be a map/.test(i.message) || /must have/.test(i.message)));
  });

  it(`refuses nesting deeper than ${MAX_POLICY_DEPTH} levels in every style, naming where it goes too deep`, () => {
    const depth = 100_000;
    const cases: [string, string, number][] = [
      ['flow lists', `hide: ${'['.repeat(depth)}x${']'.repeat(depth)}\n`, 1],
      ['flow maps', `tools: ${'{a: '.repeat(depth)}x${'}'.repeat(depth)}\n`, 1],
      ['compact sequences', `hide:\n  ${'- '.repeat(depth)}x\n`, 2],
      ['block maps', `tools:\n${Array.from({ length: 3000 }, (_, i) => `${' '.repeat(i + 1)}k${i}:`).join('\n')} x\n`, MAX_POLICY_DEPTH + 1],
    ];
    for (const [style, text, line] of cases) {
      const issues = refused(text);
      assert.equal(issues.length, 1, style);
      assert.equal(issues[0]!.message, `policy nests deeper than ${MAX_POLICY_DEPTH} levels`, style);
      assert.equal(issues[0]!.line, line, style);
    }
  });

  it('reads nesting within the bound, and brackets inside quoted or plain scalars are not nesting', () => {
    const deepButFine = `hide: ${'['.repeat(MAX_POLICY_DEPTH - 1)}x${']'.repeat(MAX_POLICY_DEPTH - 1)}\n`;
    assert.ok(refused(deepButFine).every((i) => !/nests deeper/.test(i.message)));
    const regexes = [
      'version: "1"',
      'tools:',
      '  search:',
      '    rules:',
      '      - name: plain',
      '        action: allow',
      '        conditions:',
      '          - path: args.q',
      '            op: matches',
      `            value: "${'['.repeat(300)}"`,
      '          - path: args.r',
      '            op: matches',
      `            value: ^a${'[b]'.repeat(300)}$ # ${'{'.repeat(300)}`,
      '',
    ].join('\n');
    const result = parsePolicy(regexes, 'policy.yaml');
    assert.ok(result.ok || result.issues.every((i) => !/nests deeper/.test(i.message)));
  });

  it(`refuses a file larger than ${MAX_POLICY_BYTES / 1024 / 1024} MiB before parsing it`, () => {
    const text = `# ${'x'.repeat(MAX_POLICY_BYTES)}\ntools: {}\n`;
    const issues = refused(text);
    assert.deepEqual(issues.map((i) => [i.line, i.col, i.message]), [[1, 1, `policy file is larger than ${MAX_POLICY_BYTES / 1024 / 1024} MiB`]]);
  });
});
