// `audit:` in the policy language: what the trail keeps of a call's arguments. Both spellings,
// every error with its line and field, the warning under default: deny, the JSON Schema's
// agreement, and the lists a tool ends up with (auditArgRules).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { auditArgRules, redactArgs } from '../../src/audit/redact.js';
import { compile } from '../../src/engine/compile.js';
import { formatIssues } from '../../src/policy/format.js';
import { AUDIT_LISTS_TOOL_WARNING } from '../../src/policy/load-audit.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { PolicyIssue } from '../../src/policy/model.js';
import { loadPolicyText as load, policyIssues as issues } from '../support/policy.js';

const lines = (...l: string[]): string => l.join('\n') + '\n';

/** The brief example of the language reference, in the catalogue spelling. */
const CATALOGUE = lines(
  'audit:',
  '  args:',
  '    keep: [args.customer_id]',
  '    hash: [args.email]',
  '    drop: [args.attachment]',
  'tools:',
  '  create_refund:',
  '    audit:',
  '      args:',
  '        hash: [args.card.holder]',
  '    rules:',
  '      - action: allow',
  '        rate_limit: {max: 5, window: 60}',
);

/** The same in the v1 spelling, with block lists. */
const V1 = lines(
  'version: "1"',
  'audit:',
  '  args:',
  '    keep:',
  '      - args.customer_id',
  '    hash:',
  '      - args.email',
  '    drop:',
  '      - args.attachment',
  'tools:',
  '  create_refund:',
  '    rules:',
  '      - name: "hourly refunds"',
  '        rate_limit: 5/hour',
  '    audit:',
  '      args:',
  '        hash:',
  '          - args.card.holder',
);

describe('audit: loading', () => {
  it('reads the top level and a tool key in the catalogue spelling', () => {
    const policy = load(CATALOGUE);
    assert.deepEqual(policy.audit, {
      args: { keep: ['args.customer_id'], hash: ['args.email'], drop: ['args.attachment'] },
      pos: { file: 'policy.yaml', line: 1, col: 1 },
    });
    const tool = policy.tools[0]!;
    assert.deepEqual(tool.audit, { args: { keep: [], hash: ['args.card.holder'], drop: [] }, pos: { file: 'policy.yaml', line: 8, col: 5 } });
    // The rules beside it are read as before.
    assert.equal(tool.rules.length, 1);
    assert.equal(tool.rules[0]!.counter?.window.kind, 'rolling');
  });

  it('reads the same lists in the v1 spelling', () => {
    const v1 = load(V1);
    const catalogue = load(CATALOGUE);
    assert.deepEqual(v1.audit?.args, catalogue.audit?.args);
    assert.deepEqual(v1.tools[0]!.audit?.args, catalogue.tools[0]!.audit?.args);
    assert.equal(v1.tools[0]!.rules[0]!.name, 'hourly refunds');
  });

  it('keeps each list in the order written', () => {
    const policy = load(lines('audit:', '  args:', '    drop: [args.z, args.a, args.m.0.x]'));
    assert.deepEqual(policy.audit?.args.drop, ['args.z', 'args.a', 'args.m.0.x']);
  });

  it('leaves audit out of the model when the file has none', () => {
    const policy = load(lines('tools:', '  t:', '    rules: []'));
    assert.equal(policy.audit, undefined);
    assert.equal(policy.tools[0]!.audit, undefined);
  });

  it('takes a blank audit, args or list as empty lists', () => {
    assert.deepEqual(load('audit:\n').audit?.args, { keep: [], hash: [], drop: [] });
    assert.deepEqual(load('audit:\n  args:\n').audit?.args, { keep: [], hash: [], drop: [] });
    assert.deepEqual(load('audit:\n  args:\n    keep:\n    hash: []\n').audit?.args, { keep: [], hash: [], drop: [] });
  });

  it('takes audit under a pattern key and under a class', () => {
    const policy = load(
      lines('tools:', '  "create_*":', '    audit: {args: {drop: [args.blob]}}', 'classes:', '  financial:', '    audit: {args: {hash: [args.iban]}}'),
    );
    assert.deepEqual(policy.tools[0]!.audit?.args.drop, ['args.blob']);
    assert.deepEqual(policy.classes![0]!.audit?.args.hash, ['args.iban']);
  });

  it('accepts a drop or a hash inside a kept path, which refine it', () => {
    const policy = load(lines('audit:', '  args:', '    keep: [args.headers]', '    drop: [args.headers.cookie]', '    hash: [args.headers.user]'));
    assert.deepEqual(policy.audit?.args, { keep: ['args.headers'], hash: ['args.headers.user'], drop: ['args.headers.cookie'] });
  });

  it('accepts a tool naming a top-level path in another list (it takes that path over)', () => {
    // The top level hashes args.card whole; this tool keeps it, and so may drop inside it.
    const policy = load(
      lines('audit:', '  args:', '    hash: [args.card]', 'tools:', '  t:', '    audit:', '      args:', '        keep: [args.card]', '        drop: [args.card.cvc]'),
    );
    assert.deepEqual(policy.audit?.args.hash, ['args.card']);
    assert.deepEqual(policy.tools[0]!.audit?.args, { keep: ['args.card'], hash: [], drop: ['args.card.cvc'] });
  });
});

/** One issue as `intercept validate` places it. */
interface Placed {
  line: number;
  col: number;
  path: string;
  message: string;
}
const placed = (text: string): Placed[] => issues(text).map(({ line, col, path, message }) => ({ line, col, path, message }));

const NO_EFFECT = 'so it has no effect';

describe('audit: errors, with line and field', () => {
  const CASES: [string, string, Placed[]][] = [
    ['audit as a list', 'audit: [args.a]\n', [{ line: 1, col: 8, path: 'audit', message: 'audit must be a map with args, got a list' }]],
    [
      "a tool's audit as a scalar",
      lines('tools:', '  t:', '    audit: true', '    rules: []'),
      [{ line: 3, col: 12, path: 'tools.t.audit', message: 'audit must be a map with args, got "true"' }],
    ],
    [
      'args as a list',
      lines('audit:', '  args: [args.a]'),
      [{ line: 2, col: 9, path: 'audit.args', message: 'args must be a map of keep, hash and drop lists, got a list' }],
    ],
    [
      'a list written as one path, with the fix',
      lines('audit:', '  args:', '    keep: args.x'),
      [{ line: 3, col: 11, path: 'audit.args', message: 'keep must be a list of "args." paths, got "args.x" (write keep: [args.x])' }],
    ],
    [
      'a list written as a number or a map, without a fix',
      lines('tools:', '  t:', '    audit:', '      args:', '        hash: 5', '        drop: {a: 1}', '    rules: []'),
      [
        { line: 5, col: 15, path: 'tools.t.audit.args', message: 'hash must be a list of "args." paths, got "5"' },
        { line: 6, col: 15, path: 'tools.t.audit.args', message: 'drop must be a list of "args." paths, got a map' },
      ],
    ],
    [
      'paths that are not args. paths',
      lines('audit:', '  args:', '    keep: [customer_id, "args.", args.a..b, 3]'),
      [
        { line: 3, col: 12, path: 'audit.args', message: 'keep[0] must start with "args.", got "customer_id"' },
        { line: 3, col: 25, path: 'audit.args', message: 'keep[1] must name an argument after "args.", got "args."' },
        { line: 3, col: 34, path: 'audit.args', message: 'keep[2] must not have empty segments, got "args.a..b"' },
        { line: 3, col: 45, path: 'audit.args', message: 'keep[3] must start with "args.", got "3"' },
      ],
    ],
    [
      'a path twice in one list, reported at the second',
      lines('audit:', '  args:', '    drop: [args.a, args.b, args.a]'),
      [{ line: 3, col: 28, path: 'audit.args', message: 'duplicate path "args.a" (also drop[0])' }],
    ],
    [
      'one path in two lists, reported at the later',
      lines('audit:', '  args:', '    hash: [args.email]', '    keep: [args.email]'),
      [{ line: 4, col: 12, path: 'audit.args', message: '"args.email" is also in hash (hash[0]); a path goes in one list only' }],
    ],
    [
      'a path inside a dropped path',
      lines('audit:', '  args:', '    drop: [args.card]', '    hash: [args.card.number]'),
      [{ line: 4, col: 12, path: 'audit.args', message: `"args.card.number" is inside "args.card" (drop[0]), which is dropped, ${NO_EFFECT}` }],
    ],
    [
      'a path inside a hashed path',
      lines('audit:', '  args:', '    hash: [args.card]', '    keep: [args.card.holder]'),
      [{ line: 4, col: 12, path: 'audit.args', message: `"args.card.holder" is inside "args.card" (hash[0]), which is hashed whole, ${NO_EFFECT}` }],
    ],
    [
      "a kept path inside a kept path, in a tool's own block",
      lines('audit:', '  args:', '    hash: [args.card]', 'tools:', '  t:', '    audit:', '      args:', '        keep: [args.card, args.card.x]', '    rules: []'),
      [{ line: 8, col: 27, path: 'tools.t.audit.args', message: `"args.card.x" is inside "args.card" (keep[0]), which is kept, ${NO_EFFECT}` }],
    ],
    [
      'a tool path inside a top-level drop',
      lines('audit:', '  args:', '    drop: [args.attachment]', 'tools:', '  t:', '    audit:', '      args:', '        hash: [args.attachment.name]', '    rules: []'),
      [
        {
          line: 8,
          col: 16,
          path: 'tools.t.audit.args',
          message: `"args.attachment.name" is inside "args.attachment", which the top-level audit drops (line 3), ${NO_EFFECT}`,
        },
      ],
    ],
    [
      'a class path inside a top-level hash',
      lines('audit:', '  args:', '    hash: [args.card]', 'classes:', '  financial:', '    audit: {args: {keep: [args.card.last4]}}', '    rules: []'),
      [
        {
          line: 6,
          col: 27,
          path: 'classes.financial.audit.args',
          message: `"args.card.last4" is inside "args.card", which the top-level audit hashes whole (line 3), ${NO_EFFECT}`,
        },
      ],
    ],
    [
      'audit under "*"',
      lines('tools:', '  "*":', '    audit:', '      args:', '        drop: [args.a]'),
      [{ line: 3, col: 5, path: 'tools.*', message: 'audit cannot be used under "*"; write it at the top level, where it applies to every tool' }],
    ],
    [
      'a misspelt list',
      lines('audit:', '  args:', '    kep: [args.a]'),
      [{ line: 3, col: 5, path: 'audit.args', message: 'unknown key "kep" (did you mean "keep"?)' }],
    ],
  ];
  for (const [name, text, expected] of CASES) {
    it(`reports ${name}`, () => {
      assert.deepEqual(placed(text), expected);
    });
  }

  it('places errors in block lists at the entry', () => {
    const text = lines('version: "1"', 'audit:', '  args:', '    keep:', '      - customer_id', '      - args.a', '    hash:', '      - args.a');
    assert.deepEqual(placed(text), [
      { line: 5, col: 9, path: 'audit.args', message: 'keep[0] must start with "args.", got "customer_id"' },
      { line: 8, col: 9, path: 'audit.args', message: '"args.a" is also in keep (keep[1]); a path goes in one list only' },
    ]);
  });

  it('reports the same in a v1 file', () => {
    const text = lines('audit:', '  args:', '    drop: [args.card]', '    hash: [args.card.number]');
    assert.deepEqual(placed(`version: "1"\n${text}`), [
      { line: 5, col: 12, path: 'audit.args', message: `"args.card.number" is inside "args.card" (drop[0]), which is dropped, ${NO_EFFECT}` },
    ]);
  });
});

describe('audit: the warning under default: deny', () => {
  const warnings = (text: string): PolicyIssue[] | undefined => {
    const result = parsePolicy(text, 'policy.yaml');
    if (!result.ok) assert.fail(formatIssues(result.issues));
    return result.warnings;
  };

  it('warns when a key has audit but no rules, since the key lists its tools', () => {
    assert.deepEqual(warnings(lines('default: deny', 'tools:', '  t:', '    audit: {args: {drop: [args.a]}}')), [
      { file: 'policy.yaml', line: 4, col: 5, path: 'tools.t', message: AUDIT_LISTS_TOOL_WARNING },
    ]);
    assert.deepEqual(warnings(lines('default: deny', 'classes:', '  write:', '    audit:', '      args:', '        hash: [args.a]')), [
      { file: 'policy.yaml', line: 4, col: 5, path: 'classes.write', message: AUDIT_LISTS_TOOL_WARNING },
    ]);
  });

  it('does not warn with rules: [], or under default: allow', () => {
    assert.equal(warnings(lines('default: deny', 'tools:', '  t:', '    audit: {args: {drop: [args.a]}}', '    rules: []')), undefined);
    assert.equal(warnings(lines('tools:', '  t:', '    audit: {args: {drop: [args.a]}}')), undefined);
  });
});

describe('audit: the JSON Schema agrees with the loader', () => {
  const SCHEMA_FILE = fileURLToPath(new URL('../../schema/policy.schema.json', import.meta.url));
  const validate = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);
  const VALID: [string, string][] = [
    ['the catalogue spelling', CATALOGUE],
    ['the v1 spelling', V1],
    ['a blank audit, args and list', 'audit:\n  args:\n    keep:\n'],
    ['audit under a pattern key and a class', lines('tools:', '  "create_*":', '    audit: {args: {drop: [args.blob]}}', 'classes:', '  financial:', '    audit: {args: {hash: [args.iban]}}')],
    ['audit under a class in a v1 file', lines('version: "1"', 'classes:', '  write:', '    audit: {args: {drop: [args.blob]}}', '    rules: []')],
    ['a drop and a hash inside a kept path', lines('audit:', '  args:', '    keep: [args.h]', '    drop: [args.h.cookie]', '    hash: [args.h.user]')],
    ['an array index in a path', lines('audit:', '  args:', '    drop: [args.items.0.card]')],
  ];
  for (const [name, text] of VALID) {
    it(`accepts ${name}`, () => {
      assert.ok(validate(parse(text)), JSON.stringify(validate.errors));
      load(text);
    });
  }
  const INVALID: [string, string][] = [
    ['audit as a list', 'audit: [args.a]\n'],
    ['args as a list', lines('audit:', '  args: [args.a]')],
    ['a list written as one path', lines('audit:', '  args:', '    keep: args.x')],
    ['a path without args.', lines('audit:', '  args:', '    hash: [email]')],
    ['"args." alone', lines('audit:', '  args:', '    hash: ["args."]')],
    ['an empty segment', lines('audit:', '  args:', '    hash: [args.a..b]')],
    ['a number for a path', lines('audit:', '  args:', '    drop: [3]')],
    ['a path twice in one list', lines('audit:', '  args:', '    drop: [args.a, args.a]')],
    ['a misspelt list', lines('audit:', '  args:', '    kep: [args.a]')],
    ['a misspelt args', lines('tools:', '  t:', '    audit: {arg: {}}')],
    ['audit under "*"', lines('tools:', '  "*":', '    audit: {args: {drop: [args.a]}}')],
    ['audit under "*" in a v1 file', lines('version: "1"', 'tools:', '  "*":', '    audit: {args: {drop: [args.a]}}')],
  ];
  for (const [name, text] of INVALID) {
    it(`rejects ${name}`, () => {
      assert.equal(validate(parse(text)), false);
      issues(text);
    });
  }
});

describe('auditArgRules: the lists in force for a tool', () => {
  const POLICY = lines(
    'audit:',
    '  args:',
    '    keep: [args.customer_id]',
    '    hash: [args.email]',
    '    drop: [args.attachment]',
    'tools:',
    '  create_refund:',
    '    audit:',
    '      args:',
    '        keep: [args.email]',
    '        hash: [args.card.holder]',
    '  "create_*":',
    '    audit: {args: {drop: [args.blob]}}',
    '  "create_inv*":',
    '    audit: {args: {hash: [args.iban]}}',
    'classes:',
    '  financial:',
    '    audit: {args: {drop: [args.card]}}',
  );
  const compiled = compile(load(POLICY));
  const TOP = { keep: ['args.customer_id'], hash: ['args.email'], drop: ['args.attachment'] };

  it('gives a tool no key governs the top level lists', () => {
    assert.deepEqual(auditArgRules(compiled, 'get_order'), TOP);
  });

  it("adds the tool key's lists; the key's list wins where both name a path", () => {
    assert.deepEqual(auditArgRules(compiled, 'create_refund'), {
      keep: ['args.customer_id', 'args.email'],
      hash: ['args.card.holder'],
      drop: ['args.attachment'],
    });
  });

  it('takes the most specific matching pattern, and no pattern for an exact key', () => {
    assert.deepEqual(auditArgRules(compiled, 'create_issue'), { ...TOP, drop: ['args.attachment', 'args.blob'] });
    assert.deepEqual(auditArgRules(compiled, 'create_invoice'), { ...TOP, hash: ['args.email', 'args.iban'] });
    assert.ok(!auditArgRules(compiled, 'create_refund').drop.includes('args.blob'));
  });

  it("takes a class entry's lists only given the class, and only when no key matches", () => {
    assert.deepEqual(auditArgRules(compiled, 'pay_out'), TOP);
    assert.deepEqual(auditArgRules(compiled, 'pay_out', 'financial'), { ...TOP, drop: ['args.attachment', 'args.card'] });
    assert.deepEqual(auditArgRules(compiled, 'pay_out', 'read'), TOP);
    assert.deepEqual(auditArgRules(compiled, 'create_issue', 'financial'), { ...TOP, drop: ['args.attachment', 'args.blob'] });
  });

  it("keeps applying the top level's other paths, inside the key's too", () => {
    const policy = load(lines('audit:', '  args:', '    drop: [args.card.cvc]', 'tools:', '  t:', '    audit: {args: {keep: [args.card]}}', '    rules: []'));
    const rules = auditArgRules(compile(policy), 't');
    assert.deepEqual(rules, { keep: ['args.card'], hash: [], drop: ['args.card.cvc'] });
    assert.deepEqual(redactArgs({ card: { cvc: '123', pin: '0000', last4: '4242' } }, rules), { card: { pin: '0000', last4: '4242' } });
  });

  it('takes every entry of a name listed twice', () => {
    // Only a policy built in code can list a name twice (YAML keys are unique).
    const policy = load(lines('tools:', '  t:', '    audit: {args: {hash: [args.a]}}'));
    const again = { ...policy.tools[0]!, audit: { args: { keep: [], hash: [], drop: ['args.b'] }, pos: policy.tools[0]!.pos } };
    assert.deepEqual(auditArgRules(compile({ ...policy, tools: [...policy.tools, again] }), 't'), { keep: [], hash: ['args.a'], drop: ['args.b'] });
  });

  it('gives empty lists for a policy without audit', () => {
    assert.deepEqual(auditArgRules(compile(load(lines('tools:', '  t:', '    rules: []'))), 't'), { keep: [], hash: [], drop: [] });
  });

  it('hands out frozen lists, so no caller can change them for the next', () => {
    const rules = auditArgRules(compiled, 'create_refund');
    assert.ok(Object.isFrozen(rules) && Object.isFrozen(rules.keep) && Object.isFrozen(rules.hash) && Object.isFrozen(rules.drop));
    assert.throws(() => (rules.keep as string[]).push('args.x'));
    assert.deepEqual(auditArgRules(compiled, 'create_refund').keep, ['args.customer_id', 'args.email']);
  });
});
