// Property-based fuzzing of the policy loader: random text, random YAML documents built from the
// language's own words, and every catalogue policy cut short or with a line changed. Whatever
// the file, loading never throws; a file that loads compiles; a file that does not names at
// least one issue, each at a line and column inside the file.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { compile } from '../../src/engine/compile.js';
import { parsePolicy } from '../../src/policy/load.js';
import { checkProperty } from '../support/fuzz.js';
import { ROOT } from '../support/paths.js';

const CATALOGUE = readdirSync(join(ROOT, 'policies'))
  .filter((n) => n.endsWith('.yaml'))
  .map((n) => readFileSync(join(ROOT, 'policies', n), 'utf8'));

/** Loads `text`; a loaded policy must compile and a refused one must say where. */
function loadsSafely(text: string): void {
  const result = parsePolicy(text, 'policy.yaml');
  if (result.ok) {
    compile(result.policy);
    return;
  }
  assert.ok(result.issues.length > 0, 'refused without an issue');
  const lines = text.split('\n').length;
  for (const issue of result.issues) {
    assert.ok(issue.line >= 1 && issue.line <= lines + 1, `issue line ${issue.line} outside the file's ${lines} lines: ${issue.message}`);
    assert.ok(issue.col >= 1, `issue column ${issue.col}: ${issue.message}`);
    assert.ok(issue.message.length > 0);
  }
}

// Words of the language, so that random documents often get deep into the loader.
const key = fc.constantFrom(
  'version', 'default', 'hide', 'tools', 'classes', 'audit', 'rules', 'name', 'action', 'conditions', 'path', 'op', 'value',
  'rate_limit', 'max', 'window', 'scope', 'counter', 'increment', 'limits', 'key', 'on_deny', 'validate', 'require',
  'timeout', 'on_timeout', 'approval_mode', 'args', 'keep', 'hash', 'drop', '*', 'echo', '__proto__', 'constructor', 'x',
);
const scalar = fc.oneof(
  fc.constantFrom('allow', 'deny', 'require_approval', '1', 'eq', 'lte', 'matches', 'in', 'session', 'global', 'args.amount', 'state.echo.c', '60s', '1h', 'hour', '(a+)+$', '*', '', null, true, -1, 0, 1e308, 3600),
  fc.string({ maxLength: 8 }),
  fc.integer(),
);
const node: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('node'), { maxLength: 4 }),
    fc.dictionary(key, tie('node'), { maxKeys: 5 }),
  ),
})).node;

describe('fuzzing the policy loader', () => {
  it('never throws on random text', async () => {
    await checkProperty(fc.property(fc.string({ maxLength: 300 }), loadsSafely), 300);
  });

  it('never throws on random documents made of the language\'s words', async () => {
    await checkProperty(fc.property(fc.dictionary(key, node, { maxKeys: 6 }), (doc) => loadsSafely(stringify(doc))), 400);
  });

  it('never throws on a catalogue policy cut short, or with one line replaced', async () => {
    const edited = fc.record({
      policy: fc.integer({ min: 0, max: CATALOGUE.length - 1 }),
      at: fc.nat(),
      cut: fc.boolean(),
      line: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('  - {', ': :', '    rules: *a', '&a [*a, *a]', '\t', '- !!binary x', '  op: matches', '    value: "((a*)*)*"')),
    }).map(({ policy, at, cut, line }) => {
      const text = CATALOGUE[policy]!;
      if (cut) return text.slice(0, at % (text.length + 1));
      const lines = text.split('\n');
      lines[at % lines.length] = line;
      return lines.join('\n');
    });
    await checkProperty(fc.property(edited, loadsSafely), 300);
  });
});
