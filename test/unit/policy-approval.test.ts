// `action: require_approval` in the policy language: both spellings, the defaults, every
// validation error with its line and field path, and the warning for `on_timeout: allow`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { ON_TIMEOUT_ALLOW_WARNING } from '../../src/policy/load-approval.js';
import { formatIssues } from '../../src/policy/format.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { PolicyIssue, Rule } from '../../src/policy/model.js';
import { DEFAULT_APPROVAL_TIMEOUT_SECONDS, MAX_APPROVAL_TIMEOUT_SECONDS } from '../../src/policy/spelling.js';
import { loadPolicyText as load, policyIssues as issues, withoutPos } from '../support/policy.js';

/** A file with one tool `t` whose rule list is `lines` (the first line is line 4, or 5 with `v1`). */
function rules(...lines: string[]): string {
  return ['tools:', '  t:', '    rules:', ...lines.map((l) => `      ${l}`)].join('\n') + '\n';
}

function v1Rules(...lines: string[]): string {
  return 'version: "1"\n' + rules(...lines);
}

/** One require_approval rule with `lines` after its action line (line 5 on). */
function approval(...lines: string[]): string {
  return rules('- action: require_approval', ...lines.map((l) => `  ${l}`));
}

function onlyRule(text: string): Rule {
  const policy = load(text);
  return policy.tools[0]!.rules[0]!;
}

const DEFAULTS = { timeoutSeconds: 300, onTimeout: 'deny', mode: 'hold', scope: 'session' } as const;

describe('require_approval: both spellings', () => {
  it('the catalogue spelling: conditions, reason, a derived name', () => {
    const policy = load(`tools:
  create_execution:
    rules:
      - action: require_approval
        conditions:
          - path: args.to
            op: not_in
            value: ["+15550100", "+15550101"]
        reason: "Calls to numbers outside the allow-list need an operator"
      - action: allow
        rate_limit: {max: 10, window: 60}
`);
    const [rule, limit] = policy.tools[0]!.rules;
    assert.deepEqual(withoutPos(rule), {
      name: 'create_execution#1',
      action: 'require_approval',
      approval: DEFAULTS,
      conditions: [{ path: 'args.to', op: 'not_in', value: ['+15550100', '+15550101'] }],
      message: 'Calls to numbers outside the allow-list need an operator',
    });
    assert.equal(rule!.pos.line, 4);
    assert.equal(limit!.action, 'evaluate');
    assert.equal(limit!.counter?.name, '_rate:create_execution#2');
  });

  it('the v1 spelling: a named rule with every setting', () => {
    const rule = onlyRule(`version: "1"
tools:
  create_refund:
    rules:
      - name: "large refunds"
        action: require_approval
        conditions:
          - path: args.amount
            op: gt
            value: 1000
        timeout: 2h
        on_timeout: deny
        approval_mode: retry
        scope: global
        on_deny: "Refunds over 1000 need a human"
`);
    assert.deepEqual(withoutPos(rule), {
      name: 'large refunds',
      action: 'require_approval',
      approval: { timeoutSeconds: 7200, onTimeout: 'deny', mode: 'retry', scope: 'global' },
      conditions: [{ path: 'args.amount', op: 'gt', value: 1000 }],
      message: 'Refunds over 1000 need a human',
    });
  });

  it('both spellings load to the same rule', () => {
    const catalogue = onlyRule(
      rules('- name: big', '  action: require_approval', '  conditions: [{path: args.n, op: gt, value: 5}]', '  reason: "ask first"', '  timeout: 60'),
    );
    const v1 = onlyRule(
      v1Rules('- name: big', '  action: require_approval', '  conditions:', '    - {path: args.n, op: gt, value: 5}', '  on_deny: "ask first"', '  timeout: 1m'),
    );
    assert.deepEqual(withoutPos(catalogue), withoutPos(v1));
  });

  it('defaults: no conditions, 5 minutes, deny on timeout, hold, per session', () => {
    const rule = onlyRule(rules('- action: require_approval'));
    assert.deepEqual(withoutPos(rule), { name: 't#1', action: 'require_approval', approval: DEFAULTS, conditions: [] });
    assert.equal(DEFAULT_APPROVAL_TIMEOUT_SECONDS, 300);
  });

  it('works under "*", patterns and classes', () => {
    const policy = load(`tools:
  "*":
    rules:
      - action: require_approval
        approval_mode: client
  "delete_*":
    rules:
      - action: require_approval
classes:
  financial:
    rules:
      - action: require_approval
        timeout: 1d
`);
    assert.equal(policy.wildcard?.rules[0]?.approval?.mode, 'client');
    assert.equal(policy.tools[0]?.rules[0]?.name, 'delete_*#1');
    assert.equal(policy.classes?.[0]?.rules[0]?.name, 'class:financial#1');
    assert.equal(policy.classes?.[0]?.rules[0]?.approval?.timeoutSeconds, 86400);
  });

  it('does not set approval on other rules', () => {
    const rule = onlyRule(rules('- action: deny'));
    assert.equal(rule.approval, undefined);
  });

  it('in a v1 file, a require_approval rule without conditions needs no name', () => {
    assert.equal(onlyRule(v1Rules('- action: require_approval')).name, 't#1');
  });

  it('reads state conditions of counters defined elsewhere', () => {
    const rule = load(
      rules(
        '- name: count',
        '  state: {counter: calls, window: day}',
        '- name: "busy days"',
        '  action: require_approval',
        '  conditions: [{path: state.t.calls, op: gte, value: 100}]',
      ),
    ).tools[0]!.rules[1]!;
    assert.deepEqual(withoutPos(rule.conditions), [{ path: 'state.t.calls', op: 'gte', value: 100 }]);
  });
});

describe('require_approval: timeout', () => {
  const cases: [string, number][] = [
    ['30s', 30],
    ['5m', 300],
    ['2h', 7200],
    ['1d', 86400],
    ['7d', MAX_APPROVAL_TIMEOUT_SECONDS],
    ['90', 90],
    ['"45s"', 45],
    ['minute', 60],
    ['604800', 604800],
    ['1', 1],
  ];
  for (const [written, seconds] of cases) {
    it(`timeout: ${written} is ${seconds} s`, () => {
      assert.equal(onlyRule(approval(`timeout: ${written}`)).approval?.timeoutSeconds, seconds);
    });
  }
  it('the bound is 7 days', () => {
    assert.equal(MAX_APPROVAL_TIMEOUT_SECONDS, 7 * 86400);
  });
});

interface IssueRow {
  name: string;
  yaml: string;
  path: string;
  line: number;
  col?: number;
  message: string;
}

const R0 = 'tools.t.rules[0]';
const FORMAT = (got: string) => `timeout must be a whole number of seconds or a duration such as "30s", "5m" or "2h", got ${got}`;
const BOUND = (got: string) => `timeout must be at most 7 days ("7d", 604800 seconds), got ${got}`;
const NOT_WITH = (key: string) => `${key} cannot be used with action "require_approval"; put it in a rule of its own`;
const ONLY_WITH = (key: string) => `${key} can only be used with action "require_approval"`;

const ISSUE_ROWS: IssueRow[] = [
  // timeout
  { name: 'timeout 0', yaml: approval('timeout: 0'), path: R0, line: 5, col: 18, message: 'timeout must be greater than 0, got "0"' },
  { name: 'timeout 0s', yaml: approval('timeout: 0s'), path: R0, line: 5, message: 'timeout must be greater than 0, got "0s"' },
  { name: 'timeout negative', yaml: approval('timeout: -5'), path: R0, line: 5, message: 'timeout must be greater than 0, got "-5"' },
  { name: 'timeout over 7 days', yaml: approval('timeout: 8d'), path: R0, line: 5, message: BOUND('"8d"') },
  { name: 'timeout over 7 days in seconds', yaml: approval('timeout: 604801'), path: R0, line: 5, message: BOUND('"604801"') },
  { name: 'timeout in hours over 7 days', yaml: approval('timeout: 169h'), path: R0, line: 5, message: BOUND('"169h"') },
  { name: 'timeout with an unknown unit', yaml: approval('timeout: 5x'), path: R0, line: 5, message: FORMAT('"5x"') },
  { name: 'timeout a fraction', yaml: approval('timeout: 1.5'), path: R0, line: 5, message: FORMAT('"1.5"') },
  { name: 'timeout a fractional duration', yaml: approval('timeout: 1.5h'), path: R0, line: 5, message: FORMAT('"1.5h"') },
  { name: 'timeout with a space', yaml: approval('timeout: 5 m'), path: R0, line: 5, message: FORMAT('"5 m"') },
  { name: 'timeout a list', yaml: approval('timeout: [5m]'), path: R0, line: 5, message: FORMAT('a list') },
  { name: 'timeout a boolean', yaml: approval('timeout: true'), path: R0, line: 5, message: FORMAT('"true"') },
  { name: 'timeout blank', yaml: approval('timeout:'), path: R0, line: 5, col: 9, message: FORMAT('""') },

  // on_timeout, approval_mode, scope
  { name: 'on_timeout unknown', yaml: approval('on_timeout: wait'), path: R0, line: 5, col: 21, message: 'on_timeout must be "deny" or "allow", got "wait"' },
  { name: 'on_timeout a boolean', yaml: approval('on_timeout: false'), path: R0, line: 5, message: 'on_timeout must be "deny" or "allow", got "false"' },
  { name: 'on_timeout in capitals', yaml: approval('on_timeout: Deny'), path: R0, line: 5, message: 'on_timeout must be "deny" or "allow", got "Deny"' },
  { name: 'approval_mode unknown', yaml: approval('approval_mode: poll'), path: R0, line: 5, message: 'approval_mode must be "hold", "retry" or "client", got "poll"' },
  { name: 'approval_mode in capitals', yaml: approval('approval_mode: Hold'), path: R0, line: 5, message: 'approval_mode must be "hold", "retry" or "client", got "Hold"' },
  { name: 'approval_mode a map', yaml: approval('approval_mode: {hold: true}'), path: R0, line: 5, message: 'approval_mode must be "hold", "retry" or "client", got a map' },
  { name: 'scope unknown', yaml: approval('scope: user'), path: R0, line: 5, message: 'scope must be "session" or "global", got "user"' },

  // What a require_approval rule may not carry
  { name: 'with a rate_limit string', yaml: approval('rate_limit: 5/hour'), path: R0, line: 5, col: 9, message: NOT_WITH('rate_limit') },
  { name: 'with a rate_limit map', yaml: approval('rate_limit: {max: 5, window: 60}'), path: R0, line: 5, message: NOT_WITH('rate_limit') },
  { name: 'with a state block', yaml: approval('state: {counter: c, window: hour}'), path: R0, line: 5, message: NOT_WITH('state') },
  { name: 'with a key', yaml: approval('key: args'), path: R0, line: 5, message: NOT_WITH('key') },
  { name: 'with validate', yaml: approval('validate: {required_args: true}'), path: R0, line: 5, message: NOT_WITH('validate') },

  // Approval keys on other rules
  { name: 'timeout on an allow rule', yaml: rules('- action: allow', '  timeout: 5m'), path: R0, line: 5, col: 9, message: ONLY_WITH('timeout') },
  { name: 'on_timeout on a deny rule', yaml: rules('- action: deny', '  on_timeout: deny'), path: R0, line: 5, message: ONLY_WITH('on_timeout') },
  {
    name: 'approval_mode on an evaluate rule',
    yaml: rules('- name: a', '  conditions: [{path: args.a, op: eq, value: 1}]', '  approval_mode: hold'),
    path: R0,
    line: 6,
    message: ONLY_WITH('approval_mode'),
  },
  {
    name: 'scope at rule level next to a rate_limit map',
    yaml: rules('- rate_limit: {max: 5, window: 60}', '  scope: global'),
    path: R0,
    line: 5,
    message: `${ONLY_WITH('scope')} (a counter's scope goes inside its rate_limit or state map)`,
  },

  // Keys and names
  { name: 'approvalmode for approval_mode', yaml: approval('approvalmode: retry'), path: R0, line: 5, message: 'unknown key "approvalmode" (did you mean "approval_mode"?)' },
  { name: 'on-timeout for on_timeout', yaml: approval('on-timeout: deny'), path: R0, line: 5, message: 'unknown key "on-timeout" (did you mean "on_timeout"?)' },
  { name: 'timout for timeout', yaml: approval('timout: 5m'), path: R0, line: 5, message: 'unknown key "timout" (did you mean "timeout"?)' },
  { name: 'mode for approval_mode', yaml: approval('mode: retry'), path: R0, line: 5, message: 'unknown key "mode"' },
  { name: 'duplicate timeout', yaml: approval('timeout: 5m', 'timeout: 10m'), path: R0, line: 6, message: 'duplicate key "timeout" (first defined at line 5)' },
  { name: 'require-approval for require_approval', yaml: rules('- action: require-approval'), path: R0, line: 4, message: 'unknown action "require-approval" (did you mean "require_approval"?)' },
  { name: 'requires_approval', yaml: rules('- action: requires_approval'), path: R0, line: 4, message: 'unknown action "requires_approval" (did you mean "require_approval"?)' },
  { name: 'on_deny and reason', yaml: approval('on_deny: a', 'reason: b'), path: R0, line: 6, message: 'use either on_deny or reason, not both' },
  { name: 'empty reason', yaml: approval('reason: ""'), path: R0, line: 5, message: 'reason must be a non-empty string' },
  {
    name: 'v1 file: conditions without a name',
    yaml: v1Rules('- action: require_approval', '  conditions: [{path: args.a, op: eq, value: 1}]'),
    path: R0,
    line: 5,
    message: 'rule must have a name',
  },
  {
    name: 'duplicate derived and given names',
    yaml: rules('- action: require_approval', '- name: "t#1"', '  action: require_approval'),
    path: 'tools.t.rules[1]',
    line: 5,
    message: 'duplicate rule name "t#1" (also used by rules[0])',
  },
  {
    name: 'a bad condition',
    yaml: approval('conditions: [{path: args.a, op: equals, value: 1}]'),
    path: `${R0}.conditions[0]`,
    line: 5,
    message: 'unknown operator "equals"',
  },
  {
    name: 'a state read of no counter',
    yaml: approval('conditions: [{path: state.t.calls, op: gt, value: 1}]'),
    path: `${R0}.conditions[0]`,
    line: 5,
    message: 'condition references state.t.calls but no matching state block found',
  },
];

describe('require_approval: every issue', () => {
  for (const row of ISSUE_ROWS) {
    it(row.name, () => {
      const found = issues(row.yaml);
      assert.equal(found.length, 1, `expected one issue, got:\n${formatIssues(found)}`);
      const [issue] = found as [PolicyIssue];
      assert.equal(issue.message, row.message);
      assert.equal(issue.path, row.path);
      assert.equal(issue.line, row.line);
      if (row.col !== undefined) assert.equal(issue.col, row.col);
      assert.equal(issue.file, 'policy.yaml');
    });
  }

  it('reports every problem of one rule at once, in file order', () => {
    const found = issues(approval('timeout: 0', 'on_timeout: maybe', 'approval_mode: poll', 'scope: all', 'validate: {schema: true}'));
    assert.deepEqual(
      found.map((i) => [i.line, i.message.split(',')[0]]),
      [
        [5, 'timeout must be greater than 0'],
        [6, 'on_timeout must be "deny" or "allow"'],
        [7, 'approval_mode must be "hold"'],
        [8, 'scope must be "session" or "global"'],
        [9, 'validate cannot be used with action "require_approval"; put it in a rule of its own'],
      ],
    );
  });

  it('the "not supported yet" error is gone', () => {
    const result = parsePolicy(rules('- action: require_approval'), 'policy.yaml');
    assert.ok(result.ok);
  });

  it('outside a v1 file, conditions need no name (it is derived)', () => {
    assert.equal(onlyRule(rules('- action: require_approval', '  conditions: [{path: args.a, op: eq, value: 1}]')).name, 't#1');
  });
});

describe('require_approval: on_timeout: allow warns', () => {
  it('accepts the policy, with one warning at the value', () => {
    const text = approval('on_timeout: allow');
    const result = parsePolicy(text, 'policy.yaml');
    assert.ok(result.ok);
    assert.equal(result.policy.tools[0]!.rules[0]!.approval?.onTimeout, 'allow');
    assert.deepEqual(result.warnings, [{ file: 'policy.yaml', line: 5, col: 21, path: R0, message: ON_TIMEOUT_ALLOW_WARNING }]);
    assert.match(ON_TIMEOUT_ALLOW_WARNING, /^on_timeout: allow lets the call run when nobody answers in time/);
  });

  it('has no warnings field when there is nothing to warn about', () => {
    for (const text of [approval('on_timeout: deny'), rules('- action: deny')]) {
      const result = parsePolicy(text, 'policy.yaml');
      assert.ok(result.ok);
      assert.equal('warnings' in result, false);
    }
  });

  it('warns once per rule, in file order, under tools, "*" and classes', () => {
    const result = parsePolicy(
      `classes:
  write:
    rules:
      - action: require_approval
        on_timeout: allow
tools:
  a:
    rules:
      - action: require_approval
        on_timeout: allow
  "*":
    rules:
      - action: require_approval
        on_timeout: allow
`,
      'p.yaml',
    );
    assert.ok(result.ok);
    assert.deepEqual(
      result.warnings?.map((w) => [w.line, w.path]),
      [
        [5, 'classes.write.rules[0]'],
        [10, 'tools.a.rules[0]'],
        [14, 'tools.*.rules[0]'],
      ],
    );
  });

  it('no warnings on a policy with errors (the issues say it all)', () => {
    const result = parsePolicy(approval('on_timeout: allow', 'timeout: 0'), 'policy.yaml');
    assert.equal(result.ok, false);
  });
});

const VALIDATE_TS = fileURLToPath(new URL('../../src/cli/validate.ts', import.meta.url));
const run = promisify(execFile);

/** Runs `intercept validate` (its runValidate) in a process of its own, as the CLI does. */
async function validateFile(text: string, format: 'text' | 'json' = 'text'): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'intercept-approval-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, text);
  const script = `const m = await import(${JSON.stringify(VALIDATE_TS)}); process.exitCode = await m.runValidate({ config: process.argv[1], format: process.argv[2] });`;
  const clean = (out: string) => out.replaceAll(file, 'policy.yaml');
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, file, format]);
    return { code: 0, stdout: clean(stdout), stderr: clean(stderr) };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: clean(e.stdout ?? ''), stderr: clean(e.stderr ?? '') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('intercept validate: warnings', () => {
  it('prints the warning on stderr with a "warning:" prefix; the exit code stays 0', async () => {
    const out = await validateFile(approval('on_timeout: allow'));
    assert.equal(out.code, 0);
    assert.equal(out.stderr, `warning: policy.yaml:5:21: ${R0}: ${ON_TIMEOUT_ALLOW_WARNING}\n`);
    assert.match(out.stdout, /^Policy file is valid: 1 tool\(s\), 1 rule\(s\)/);
  });

  it('prints nothing on stderr without warnings', async () => {
    const out = await validateFile(approval('on_timeout: deny'));
    assert.equal(out.code, 0);
    assert.equal(out.stderr, '');
  });

  it('--format json lists the warnings beside the (empty) errors', async () => {
    const out = await validateFile(approval('on_timeout: allow'), 'json');
    assert.equal(out.code, 0);
    assert.deepEqual(JSON.parse(out.stdout), {
      valid: true,
      errors: [],
      warnings: [{ file: 'policy.yaml', line: 5, col: 21, path: R0, message: ON_TIMEOUT_ALLOW_WARNING }],
    });
    assert.equal(out.stderr, '');
  });

  it('--format json without warnings is unchanged', async () => {
    const json = await validateFile(approval(), 'json');
    assert.equal(json.code, 0);
    assert.deepEqual(JSON.parse(json.stdout), { valid: true, errors: [] });
  });

  it('an invalid policy still exits 1', async () => {
    const failed = await validateFile(approval('timeout: 0'));
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /policy\.yaml:5:18: tools\.t\.rules\[0\]: timeout must be greater than 0/);
  });
});

describe('require_approval: the JSON Schema agrees with the loader', () => {
  const SCHEMA_FILE = fileURLToPath(new URL('../../schema/policy.schema.json', import.meta.url));
  const validate = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);
  const VALID: [string, string][] = [
    ['defaults', approval()],
    ['every setting', approval('timeout: 2h', 'on_timeout: allow', 'approval_mode: retry', 'scope: global', 'reason: "ask"')],
    ['a number of seconds', approval('timeout: 90')],
    ['conditions without a name outside a v1 file', approval('conditions: [{path: args.a, op: gt, value: 1}]')],
    ['a named v1 rule with conditions', v1Rules('- name: a', '  action: require_approval', '  conditions: [{path: args.a, op: gt, value: 1}]')],
    ['a v1 rule without conditions', v1Rules('- action: require_approval')],
    ['under a class', 'version: "1"\nclasses:\n  write:\n    rules:\n      - name: w\n        action: require_approval\n        conditions: [{path: args.a, op: gt, value: 1}]\n'],
  ];
  for (const [name, text] of VALID) {
    it(`accepts ${name}`, () => {
      assert.ok(validate(parse(text)), JSON.stringify(validate.errors));
      assert.ok(parsePolicy(text, 'p.yaml').ok);
    });
  }
  const INVALID: [string, string][] = [
    ['a state block', approval('state: {counter: c, window: hour}')],
    ['a key', approval('key: args')],
    ['a timeout over 7 days in seconds', approval('timeout: 604801')],
    ['scope: all', approval('scope: all')],
    ['a v1 class rule with conditions and no name', 'version: "1"\nclasses:\n  write:\n    rules:\n      - action: require_approval\n        conditions: [{path: args.a, op: gt, value: 1}]\n'],
  ];
  for (const [name, text] of INVALID) {
    it(`rejects ${name}`, () => {
      assert.equal(validate(parse(text)), false);
      assert.equal(parsePolicy(text, 'p.yaml').ok, false);
    });
  }
});
