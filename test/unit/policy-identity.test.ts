// Identity as written: in the policy language (conditions on `identity.*` in both spellings,
// `scope: identity` counters in every counter form, every mistake reported with its line and
// field and the fix, the JSON Schema agreeing with the loader), in `--identity` flags, and in
// the `identity:` block of policy test cases, which run as the proxy decides.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { parseIdentityFlags } from '../../src/cli/identity-flags.js';
import { compile } from '../../src/engine/compile.js';
import { parseCases } from '../../src/offline/load-cases.js';
import { checkCases, runCases } from '../../src/offline/run-cases.js';
import { formatIssues } from '../../src/policy/format.js';
import type { PolicyIssue } from '../../src/policy/model.js';
import { loadPolicyText as load, policyIssues as issues } from '../support/policy.js';

const SCHEMA_FILE = fileURLToPath(new URL('../../schema/policy.schema.json', import.meta.url));
const validate = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);

/** A file with one tool `t` whose rule list is `lines` (the first line is line 4). */
function rules(...lines: string[]): string {
  return ['tools:', '  t:', '    rules:', ...lines.map((l) => `      ${l}`)].join('\n') + '\n';
}

/** One condition in a named rule: the condition's map starts on line 6, its op on line 7. */
function condition(path: string, op: string, value: string): string {
  return rules('- name: a', '  conditions:', `    - path: ${path}`, `      op: ${op}`, `      value: ${value}`);
}

const CATALOGUE = `
tools:
  pay_invoice:
    rules:
      - name: finance only
        action: allow
        conditions:
          - { path: identity.claims.groups, op: contains, value: finance }
          - { path: identity.claims.org.role, op: in, value: [admin, owner] }
        reason: "Only finance may pay invoices"
      - action: allow
        rate_limit: { max: 5, window: 1h, scope: identity }
  read_invoice:
    rules:
      - name: read scope
        action: allow
        conditions:
          - { path: identity.scopes, op: contains, value: "invoices:read" }
          - { path: identity.sub, op: exists, value: true }
          - { path: identity.client_id, op: neq, value: legacy-cli }
      - action: require_approval
        name: interns ask
        conditions:
          - { path: identity.claims.title, op: eq, value: intern }
`;

const V1 = `
version: "1"
tools:
  create_charge:
    rules:
      - name: per caller per day
        state:
          counter: spend
          window: day
          increment_from: args.amount
          scope: identity
        conditions:
          - path: state.create_charge.spend
            op: lte
            value: 100000
      - name: not the robots
        conditions:
          - path: identity.claims.kind
            op: neq
            value: robot
`;

describe('identity conditions and counters: what loads', () => {
  it('reads identity.* conditions and scope: identity in the catalogue spelling', () => {
    const p = load(CATALOGUE);
    const pay = p.tools.find((t) => t.name === 'pay_invoice')!;
    assert.deepEqual(
      pay.rules[0]!.conditions.map((c) => [c.path, c.op, c.value]),
      [
        ['identity.claims.groups', 'contains', 'finance'],
        ['identity.claims.org.role', 'in', ['admin', 'owner']],
      ],
    );
    assert.equal(pay.rules[1]!.counter?.scope, 'identity');
    const read = p.tools.find((t) => t.name === 'read_invoice')!;
    assert.deepEqual(read.rules[0]!.conditions.map((c) => c.path), ['identity.scopes', 'identity.sub', 'identity.client_id']);
    assert.equal(read.rules[1]!.action, 'require_approval');
  });

  it('reads them in the v1 spelling: a state block kept per caller, a condition on a claim', () => {
    const p = load(V1);
    const [perDay, robots] = p.tools[0]!.rules;
    assert.equal(perDay!.counter?.scope, 'identity');
    assert.deepEqual(perDay!.counter?.limits, [{ value: 100000, inclusive: true }]);
    assert.deepEqual(robots!.conditions.map((c) => [c.path, c.op, c.value]), [['identity.claims.kind', 'neq', 'robot']]);
  });

  it('keeps claim paths with prototype names as plain claim names', () => {
    const p = load(condition('identity.claims.__proto__.admin', 'eq', 'true'));
    assert.equal(p.tools[0]!.rules[0]!.conditions[0]!.path, 'identity.claims.__proto__.admin');
  });

  it('accepts every operator that can be true of identity.scopes', () => {
    for (const [op, value] of [['contains', 'read'], ['in', '[read, write]'], ['not_in', '[admin]'], ['exists', 'true']]) {
      load(condition('identity.scopes', op!, value!));
    }
  });

  it('is accepted by the JSON Schema too', () => {
    for (const text of [CATALOGUE, V1, condition('identity.claims.a.b.c', 'regex', '"^x"'), condition('identity.scopes', 'not_in', '[admin]')]) {
      assert.ok(validate(parse(text)), JSON.stringify(validate.errors));
    }
  });
});

const C0 = 'tools.t.rules[0].conditions[0]';
const R0 = 'tools.t.rules[0]';

/** Each mistake, where it is reported and what it says. */
const MISTAKES: { name: string; yaml: string; path: string; line: number; message: string | RegExp }[] = [
  {
    name: 'an identity field the language does not define',
    yaml: condition('identity.foo', 'eq', 'x'),
    path: C0,
    line: 6,
    message: 'unknown identity field "foo" (did you mean "identity.claims.foo"?); a condition can read identity.sub, identity.client_id, identity.scopes or identity.claims.<name>',
  },
  {
    name: 'a near miss of a field',
    yaml: condition('identity.scope', 'contains', 'read'),
    path: C0,
    line: 6,
    message: /^unknown identity field "scope" \(did you mean "identity\.scopes"\?\)/,
  },
  {
    name: 'a field in capitals',
    yaml: condition('identity.Sub', 'eq', 'alice'),
    path: C0,
    line: 6,
    message: /^unknown identity field "Sub" \(did you mean "identity\.sub"\?\)/,
  },
  { name: 'identity alone', yaml: condition('identity', 'exists', 'true'), path: C0, line: 6, message: /^path must name what is known of the caller after "identity\.": identity\.sub, / },
  { name: 'identity. alone', yaml: condition('identity.', 'exists', 'true'), path: C0, line: 6, message: /^path must name what is known of the caller after "identity\."/ },
  { name: 'claims without a claim', yaml: condition('identity.claims', 'exists', 'true'), path: C0, line: 6, message: 'identity.claims must name a claim: identity.claims.<name>, e.g. identity.claims.groups' },
  { name: 'a field of sub', yaml: condition('identity.sub.name', 'eq', 'x'), path: C0, line: 6, message: 'identity.sub is a string and has no fields, got "identity.sub.name"' },
  { name: 'an index into scopes', yaml: condition('identity.scopes.0', 'eq', 'read'), path: C0, line: 6, message: 'identity.scopes is a list of scopes (use op: contains to ask for one) and has no fields, got "identity.scopes.0"' },
  { name: 'an empty claim segment', yaml: condition('identity.claims..role', 'eq', 'x'), path: C0, line: 6, message: 'path must not have empty segments, got "identity.claims..role"' },
  { name: 'a trailing dot', yaml: condition('identity.claims.org.', 'eq', 'x'), path: C0, line: 6, message: 'path must not have empty segments, got "identity.claims.org."' },
  {
    name: 'a misspelt root',
    yaml: condition('identiy.sub', 'eq', 'alice'),
    path: C0,
    line: 6,
    message: 'path must start with "args.", "state." or "identity.", got "identiy.sub" (did you mean "identity.sub"?)',
  },
  {
    name: 'eq on identity.scopes',
    yaml: condition('identity.scopes', 'eq', 'read'),
    path: C0,
    line: 7,
    message:
      'identity.scopes is a list of scopes: use contains (has this scope), in (has one of these), not_in (has none of these) or exists; "eq" would compare the whole list with one value',
  },
  { name: 'neq on identity.scopes', yaml: condition('identity.scopes', 'neq', 'admin'), path: C0, line: 7, message: /^identity\.scopes is a list of scopes: .*"neq" would compare/ },
  { name: 'regex on identity.scopes', yaml: condition('identity.scopes', 'regex', '"^a"'), path: C0, line: 7, message: /^identity\.scopes is a list of scopes: .*"regex"/ },
  { name: 'a bad operand on an identity path', yaml: condition('identity.claims.level', 'gt', 'high'), path: C0, line: 8, message: 'operator "gt" requires a numeric value' },
  {
    name: 'a deny rule with an identity condition',
    yaml: rules('- name: a', '  action: deny', '  conditions: [{path: identity.claims.groups, op: contains, value: interns}]'),
    path: R0,
    line: 6,
    message: 'deny rules must not have conditions (to let only some callers through, write action: allow with the identity condition: a call that does not meet it is denied)',
  },
  {
    name: 'a rate_limit map with an unknown scope',
    yaml: rules('- action: allow', '  rate_limit: {max: 5, window: 60, scope: user}'),
    path: `${R0}.rate_limit`,
    line: 5,
    message: 'scope must be "session", "global" or "identity", got "user" (did you mean "identity"?)',
  },
  {
    name: 'a state block with a near miss of identity',
    yaml: rules('- name: a', '  state: {counter: c, window: hour, scope: identiy}'),
    path: `${R0}.state`,
    line: 5,
    message: 'scope must be "session", "global" or "identity", got "identiy" (did you mean "identity"?)',
  },
  {
    name: 'scope: identity on a require_approval rule (grants know no callers)',
    yaml: rules('- action: require_approval', '  scope: identity'),
    path: R0,
    line: 5,
    message: 'scope must be "session" or "global", got "identity"',
  },
];

describe('identity conditions and counters: every mistake, with its line and field', () => {
  for (const row of MISTAKES) {
    it(row.name, () => {
      const found = issues(row.yaml);
      assert.equal(found.length, 1, `expected one issue, got:\n${formatIssues(found)}`);
      const [issue] = found as [PolicyIssue];
      if (typeof row.message === 'string') assert.equal(issue.message, row.message);
      else assert.match(issue.message, row.message);
      assert.equal(issue.path, row.path);
      assert.equal(issue.line, row.line);
    });
  }

  it('the JSON Schema rejects the same mistakes', () => {
    for (const row of MISTAKES) {
      assert.equal(validate(parse(row.yaml)), false, `schema accepted ${row.name}`);
    }
  });
});

describe('--identity KEY=VALUE', () => {
  it('builds the identity: sub, client_id, space-separated scopes, claims as strings or comma lists, nested by dots', () => {
    assert.deepEqual(
      parseIdentityFlags(['sub=alice', 'client_id=cli', 'scopes= read  write ', 'claims.groups=finance,ops', 'claims.org.role=admin', 'claims.org.id=42', 'claims.teams=core,']),
      { sub: 'alice', client_id: 'cli', scopes: ['read', 'write'], claims: { groups: ['finance', 'ops'], org: { role: 'admin', id: '42' }, teams: ['core'] } },
    );
    assert.deepEqual(parseIdentityFlags([]), { scopes: [], claims: {} });
  });

  it('keeps a prototype name as an own claim, reaching no prototype', () => {
    const identity = parseIdentityFlags(['claims.__proto__.admin=true', 'claims.constructor=x']);
    assert.ok(typeof identity !== 'string');
    assert.ok(Object.hasOwn(identity.claims, '__proto__'));
    assert.deepEqual(Object.getPrototypeOf(identity.claims), Object.prototype);
    assert.equal(({} as Record<string, unknown>).admin, undefined);
  });

  const refused: [string[], string | RegExp][] = [
    [['alice'], /^--identity must look like KEY=VALUE/],
    [['sub='], '--identity sub must not be empty'],
    [['sub=a', 'sub=b'], '--identity sub is given more than once'],
    [['subject=alice'], /^--identity takes sub=, client_id=, scopes= or claims\.<name>=, got "subject"/],
    [['scope=read'], /got "scope" \(did you mean "scopes"\?\)$/],
    [['claims=x'], /got "claims" \(name the claim: claims\.<name>=value\)$/],
    [['groups=finance'], /^--identity takes sub=/],
    [['claims..a=x'], '--identity claims..a: a claim name must not be empty'],
    [['claims.org=acme', 'claims.org.role=admin'], '--identity claims.org.role: claims.org is given a value already'],
    [['claims.org.role=admin', 'claims.org=acme'], '--identity claims.org: claims.org has claims of its own under it'],
    [[`claims.${Array.from({ length: 17 }, () => 'a').join('.')}=x`], /nest at most 16 levels/],
    [[`sub=${'x'.repeat(9000)}`], /longer than 8192 characters/],
    [Array.from({ length: 101 }, (_, i) => `claims.c${i}=x`), /at most 100/],
  ];
  for (const [flags, message] of refused) {
    it(`refuses ${JSON.stringify(flags[0]!.slice(0, 40))}${flags.length > 1 ? ` (+${flags.length - 1})` : ''}`, () => {
      const out = parseIdentityFlags(flags);
      assert.equal(typeof out, 'string');
      if (typeof message === 'string') assert.equal(out, message);
      else assert.match(out as string, message);
    });
  }
});

const CASES_POLICY = `
tools:
  pay:
    rules:
      - name: finance
        action: allow
        conditions: [{ path: identity.claims.groups, op: contains, value: finance }]
      - action: allow
        rate_limit: { max: 2, window: 60, scope: identity }
`;

describe('an identity: block in policy test cases', () => {
  it('is read into each case and before entry; a before entry without one is the case\'s caller', () => {
    const loaded = parseCases(
      `
cases:
  - name: alice's third payment is over her limit
    identity: { sub: alice, scopes: [pay], claims: { groups: [finance] } }
    before:
      - { tool: pay, times: 2 }
    call: { tool: pay }
    expect: { deny: rate_limit }
  - name: bob has his own count
    identity: { sub: bob, claims: { groups: [finance] } }
    before:
      - { tool: pay, times: 2, identity: { sub: alice, claims: { groups: [finance] } } }
    call: { tool: pay }
    expect: allow
  - name: ops may not pay
    identity: { sub: carol, claims: { groups: [ops] } }
    call: { tool: pay }
    expect: { deny: { kind: condition, rule: finance } }
  - name: no subject, no per-caller count
    identity: { claims: { groups: [finance] } }
    call: { tool: pay }
    expect: { deny: identity_required }
  - name: anonymous
    identity:
    call: { tool: pay }
    expect: { deny: condition }
`,
      'cases.yaml',
    );
    if (!loaded.ok) assert.fail(formatIssues(loaded.issues));
    const [first, second] = loaded.cases.cases;
    assert.deepEqual(first!.identity, { sub: 'alice', scopes: ['pay'], claims: { groups: ['finance'] } });
    assert.equal(first!.before[0]!.identity, undefined);
    assert.equal(second!.before[0]!.identity?.sub, 'alice');
    assert.deepEqual(loaded.cases.cases[4]!.identity, { scopes: [], claims: {} });
  });

  it('runs them as the proxy would decide them', async () => {
    const loaded = parseCases(
      `
cases:
  - name: third
    identity: { sub: alice, claims: { groups: [finance] } }
    before: [{ tool: pay, times: 2 }]
    call: { tool: pay }
    expect: { deny: rate_limit }
  - name: bob
    identity: { sub: bob, claims: { groups: [finance] } }
    before: [{ tool: pay, times: 2, identity: { sub: alice, claims: { groups: [finance] } } }]
    call: { tool: pay }
    expect: allow
  - name: preset
    identity: { sub: dana, claims: { groups: [finance] } }
    counters: { "pay._rate:pay#2": 2 }
    call: { tool: pay }
    expect: { deny: rate_limit }
  - name: no subject
    identity: { claims: { groups: [finance] } }
    call: { tool: pay }
    expect: { deny: identity_required }
`,
      'cases.yaml',
    );
    if (!loaded.ok) assert.fail(formatIssues(loaded.issues));
    const policy = compile(load(CASES_POLICY));
    assert.deepEqual(checkCases(policy, loaded.cases), []);
    const results = await runCases(policy, loaded.cases);
    assert.deepEqual(results.map((r) => [r.case.name, r.passed, r.actual.decision, r.actual.kind]), [
      ['third', true, 'deny', 'rate_limit'],
      ['bob', true, 'allow', undefined],
      ['preset', true, 'deny', 'rate_limit'],
      ['no subject', true, 'deny', 'identity_required'],
    ]);
  });

  it('refuses a per-caller counter preset for a case with no subject, at the preset\'s line', () => {
    const loaded = parseCases('cases:\n  - name: x\n    call: { tool: pay }\n    counters: { "pay._rate:pay#2": 1 }\n    expect: allow\n', 'cases.yaml');
    if (!loaded.ok) assert.fail(formatIssues(loaded.issues));
    const found = checkCases(compile(load(CASES_POLICY)), loaded.cases);
    assert.deepEqual(
      found.map((i) => [i.line, i.path, i.message]),
      [[4, 'cases[0].counters', 'counter "pay._rate:pay#2" is kept per caller (scope: identity): give the case an identity with a sub, whose count it is']],
    );
  });

  const MISTAKES: [string, string, number, string][] = [
    ['identity: alice', 'cases[0].identity', 3, 'identity must be a map with sub, client_id, scopes and claims, got "alice"'],
    ['identity: { sbu: alice }', 'cases[0].identity', 3, 'unknown key "sbu" (did you mean "sub"?)'],
    ['identity: { sub: 42 }', 'cases[0].identity.sub', 3, 'sub must be a non-empty string, got "42" (quote a number: "42")'],
    ['identity: { client_id: "" }', 'cases[0].identity.client_id', 3, 'client_id must be a non-empty string, got ""'],
    ['identity: { scopes: "read write" }', 'cases[0].identity.scopes', 3, 'scopes must be a list of scopes, e.g. [read, write], got "read write"'],
    ['identity: { scopes: ["read write"] }', 'cases[0].identity.scopes[0]', 3, 'a scope must be one word (no spaces), got "read write"'],
    ['identity: { claims: [a] }', 'cases[0].identity.claims', 3, 'claims must be a map of claim names to values, got a list'],
  ];
  for (const [line, path, at, message] of MISTAKES) {
    it(`reports ${line}`, () => {
      const loaded = parseCases(`cases:\n  - name: x\n    ${line}\n    call: { tool: pay }\n    expect: allow\n`, 'cases.yaml');
      assert.ok(!loaded.ok, 'loaded');
      assert.deepEqual(loaded.issues.map((i) => [i.path, i.line, i.message]), [[path, at, message]]);
    });
  }
});
