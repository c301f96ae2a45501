import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatIssue, formatIssues } from '../../src/policy/format.js';
import { loadPolicyFile } from '../../src/policy/load.js';
import type { PolicyIssue } from '../../src/policy/model.js';
import { loadPolicyText as load, policyIssues as issues, withoutPos } from '../support/policy.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/policies/', import.meta.url));

function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8');
}

/** A file with one tool `t` whose rule list is `lines` (the first line is line 4). */
function rules(...lines: string[]): string {
  return ['tools:', '  t:', '    rules:', ...lines.map((l) => `      ${l}`)].join('\n') + '\n';
}

/** One condition in a named rule (the condition's map starts on line 6). */
function condition(path: string, op: string, value: string): string {
  return rules('- name: a', '  conditions:', `    - path: ${path}`, `      op: ${op}`, `      value: ${value}`);
}

/** One state block in a named rule (line 5). */
function state(flow: string): string {
  return rules('- name: a', `  state: ${flow}`);
}

/** One map-form rate limit in an unnamed allow rule (line 5). */
function rolling(flow: string): string {
  return rules('- action: allow', `  rate_limit: ${flow}`);
}

interface IssueRow {
  name: string;
  yaml: string;
  path: string;
  line: number;
  message: string | RegExp;
}

const R0 = 'tools.t.rules[0]';
const C0 = `${R0}.conditions[0]`;
const S0 = `${R0}.state`;
const L0 = `${R0}.rate_limit`;
const NUM_WINDOW = (got: string) =>
  `window must be a whole number of seconds or a duration such as "30s", "5m", "1h" or "1d", got "${got}"`;

const ISSUE_ROWS: IssueRow[] = [
  // The document
  { name: 'empty file', yaml: '', path: '', line: 1, message: 'policy file is empty' },
  { name: 'only comments', yaml: '# nothing yet\n\n', path: '', line: 1, message: 'policy file is empty' },
  { name: 'a list at the top', yaml: '- tools\n', path: '', line: 1, message: 'policy must be a map of version, default, hide and tools, got a list' },
  { name: 'YAML syntax error', yaml: 'tools:\n  t: [\n', path: '', line: 3, message: /^invalid YAML: / },
  { name: 'tab indentation', yaml: 'tools:\n\tt: {}\n', path: '', line: 2, message: /^invalid YAML: / },
  { name: 'two documents', yaml: 'version: "1"\n---\ntools: {}\n', path: '', line: 2, message: 'policy file must hold a single YAML document' },
  { name: 'duplicate top-level key', yaml: 'tools: {}\n\ntools: {}\n', path: '', line: 3, message: 'duplicate key "tools" (first defined at line 1)' },
  { name: 'non-scalar key', yaml: '? [a]\n: 1\n', path: '', line: 1, message: 'keys must be plain names' },

  // Top level
  { name: 'misspelt top-level key', yaml: 'version: "1"\ntool: {}\n', path: '', line: 2, message: 'unknown key "tool" (did you mean "tools"?)' },
  { name: 'hidden for hide', yaml: 'hidden: [a]\n', path: '', line: 1, message: 'unknown key "hidden" (did you mean "hide"?)' },
  { name: 'unknown key, nothing close', yaml: 'owner: me\n', path: '', line: 1, message: 'unknown key "owner"' },
  { name: 'version "2"', yaml: 'version: "2"\n', path: '', line: 1, message: 'version must be "1", got "2"' },
  { name: 'version 1.0', yaml: 'version: 1.0\n', path: '', line: 1, message: 'version must be "1", got "1.0"' },
  { name: 'version blank', yaml: 'version:\ntools: {}\n', path: '', line: 1, message: 'version must be "1", got ""' },
  { name: 'description a list', yaml: 'description: [a]\n', path: '', line: 1, message: 'description must be a string, got a list' },
  { name: 'default in capitals', yaml: 'default: Deny\n', path: '', line: 1, message: 'default must be "allow" or "deny", got "Deny"' },
  { name: 'default yes', yaml: 'default: true\n', path: '', line: 1, message: 'default must be "allow" or "deny", got "true"' },

  // hide
  { name: 'hide a scalar', yaml: 'hide: delete_repo\n', path: '', line: 1, message: 'hide must be a list of tool names' },
  { name: 'hide blank entry', yaml: 'hide:\n  - a\n  - "  "\n', path: 'hide[1]', line: 3, message: 'entry must not be empty' },
  { name: 'hide null entry', yaml: 'hide:\n  - a\n  -\n', path: 'hide[1]', line: 3, message: 'entry must not be empty' },
  { name: 'hide duplicate', yaml: 'hide:\n  - a\n  - b\n  - a\n', path: 'hide', line: 4, message: 'duplicate entry "a"' },
  { name: 'hide entry a map', yaml: 'hide:\n  - {a: 1}\n', path: 'hide[0]', line: 2, message: 'entry must be a tool name, got a map' },

  // tools
  { name: 'tools a list', yaml: 'tools: [a]\n', path: '', line: 1, message: 'tools must be a map of tool names to rules, got a list' },
  { name: 'tool entry a list', yaml: 'tools:\n  t: [a]\n', path: 'tools.t', line: 2, message: 'tool entry must be a map with a "rules" list, got a list' },
  { name: 'misspelt rules', yaml: 'tools:\n  t:\n    rule: []\n', path: 'tools.t', line: 3, message: 'unknown key "rule" (did you mean "rules"?)' },
  { name: 'rules a scalar', yaml: 'tools:\n  t:\n    rules: deny\n', path: 'tools.t', line: 3, message: 'rules must be a list, got "deny"' },
  { name: 'empty tool name', yaml: 'tools:\n  "": {}\n', path: 'tools[""]', line: 2, message: 'tool name must not be empty' },
  { name: 'duplicate tool', yaml: 'tools:\n  t: {}\n  t: {}\n', path: 'tools', line: 3, message: 'duplicate key "t" (first defined at line 2)' },
  {
    name: 'tool name with a dot is bracketed',
    yaml: 'tools:\n  "a.b":\n    rules:\n      - action: bogus\n',
    path: 'tools["a.b"].rules[0]',
    line: 4,
    message: 'action must be "allow", "evaluate" or "deny", got "bogus"',
  },

  // rules
  { name: 'rule a scalar', yaml: rules('- deny'), path: R0, line: 4, message: 'rule must be a map, got "deny"' },
  { name: 'rate-limit for rate_limit', yaml: rules('- action: allow', '  rate-limit: 5/hour'), path: R0, line: 5, message: 'unknown key "rate-limit" (did you mean "rate_limit"?)' },
  { name: 'condition for conditions', yaml: rules('- action: allow', '  condition: []'), path: R0, line: 5, message: 'unknown key "condition" (did you mean "conditions"?)' },
  {
    name: 'require_approval with a rate_limit',
    yaml: rules('- action: require_approval', '  rate_limit: 5/hour'),
    path: R0,
    line: 5,
    message: 'rate_limit cannot be used with action "require_approval"; put it in a rule of its own',
  },
  { name: 'action in capitals', yaml: rules('- action: Deny'), path: R0, line: 4, message: 'action must be "allow", "evaluate" or "deny", got "Deny"' },
  { name: 'on_deny and reason', yaml: rules('- action: deny', '  on_deny: a', '  reason: b'), path: R0, line: 6, message: 'use either on_deny or reason, not both' },
  { name: 'empty on_deny', yaml: rules('- action: deny', '  on_deny: ""'), path: R0, line: 5, message: 'on_deny must be a non-empty string' },
  { name: 'reason a list', yaml: rules('- action: deny', '  reason: [a]'), path: R0, line: 5, message: 'reason must be a non-empty string' },
  { name: 'blank name', yaml: rules('- name: " "', '  action: deny'), path: R0, line: 4, message: 'name must be a non-empty string, got " "' },
  { name: 'conditions without a name', yaml: rules('- conditions:', '    - {path: args.a, op: eq, value: 1}'), path: R0, line: 4, message: 'rule must have a name' },
  { name: 'state without a name', yaml: rules('- action: allow', '  state: {counter: c, window: hour}'), path: R0, line: 4, message: 'rule must have a name' },
  { name: 'rate_limit string without a name', yaml: rules('- rate_limit: 5/hour'), path: R0, line: 4, message: 'rule must have a name' },
  { name: 'evaluate without a name', yaml: rules('- action: evaluate', '  validate: {required_args: true}'), path: R0, line: 4, message: 'rule must have a name' },
  {
    name: 'duplicate rule name',
    yaml: rules('- name: a', '  action: deny', '- name: a', '  action: deny'),
    path: 'tools.t.rules[1]',
    line: 6,
    message: 'duplicate rule name "a" (also used by rules[0])',
  },
  {
    name: 'deny with conditions',
    yaml: rules('- name: a', '  action: deny', '  conditions: [{path: args.a, op: eq, value: 1}]'),
    path: R0,
    line: 6,
    message: 'deny rules must not have conditions',
  },
  { name: 'deny with rate_limit', yaml: rules('- action: deny', '  rate_limit: {max: 1, window: 60}'), path: R0, line: 5, message: 'rate_limit cannot be used with action "deny"' },
  { name: 'deny with state', yaml: rules('- name: a', '  action: deny', '  state: {counter: c, window: hour}'), path: R0, line: 6, message: 'state cannot be used with action "deny"' },
  { name: 'deny with validate', yaml: rules('- action: deny', '  validate: {schema: true}'), path: R0, line: 5, message: 'validate cannot be used with action "deny"' },
  {
    name: 'evaluate rule that checks nothing',
    yaml: rules('- name: a'),
    path: R0,
    line: 4,
    message: 'evaluate rules must have at least one condition (or a rate_limit, state or validate block)',
  },
  {
    name: 'evaluate rule with empty conditions',
    yaml: rules('- name: a', '  action: evaluate', '  conditions: []'),
    path: R0,
    line: 4,
    message: 'evaluate rules must have at least one condition (or a rate_limit, state or validate block)',
  },
  {
    name: 'message-only rule',
    yaml: rules('- reason: "no"'),
    path: R0,
    line: 4,
    message: 'evaluate rules must have at least one condition (or a rate_limit, state or validate block)',
  },

  // conditions
  { name: 'conditions a map', yaml: rules('- name: a', '  conditions: {path: args.a}'), path: R0, line: 5, message: 'conditions must be a list, got a map' },
  { name: 'condition a scalar', yaml: rules('- name: a', '  conditions: [args.a]'), path: C0, line: 5, message: 'condition must be a map with path, op and value, got "args.a"' },
  {
    name: 'values for value',
    yaml: rules('- name: a', '  conditions:', '    - path: args.a', '      op: eq', '      value: 1', '      values: 2'),
    path: C0,
    line: 9,
    message: 'unknown key "values" (did you mean "value"?)',
  },
  { name: 'path missing', yaml: rules('- name: a', '  conditions:', '    - op: eq', '      value: 1'), path: C0, line: 6, message: 'path is required' },
  { name: 'op missing', yaml: rules('- name: a', '  conditions:', '    - path: args.a', '      value: 1'), path: C0, line: 6, message: 'op is required' },
  { name: 'value missing', yaml: rules('- name: a', '  conditions:', '    - path: args.a', '      op: exists'), path: C0, line: 6, message: 'value is required' },
  { name: 'path without prefix', yaml: condition('arg.a', 'eq', '1'), path: C0, line: 6, message: 'path must start with "args.", "state." or "identity.", got "arg.a"' },
  { name: 'path a number', yaml: condition('5', 'eq', '1'), path: C0, line: 6, message: 'path must start with "args.", "state." or "identity.", got "5"' },
  { name: 'path args. alone', yaml: condition('args.', 'eq', '1'), path: C0, line: 6, message: 'path must name a field after "args.", got "args."' },
  { name: 'path with an empty segment', yaml: condition('args.a..b', 'eq', '1'), path: C0, line: 6, message: 'path must not have empty segments, got "args.a..b"' },
  { name: 'path with a trailing dot', yaml: condition('args.a.', 'eq', '1'), path: C0, line: 6, message: 'path must not have empty segments, got "args.a."' },
  { name: 'state path with one segment', yaml: condition('state.t', 'gt', '1'), path: C0, line: 6, message: 'state paths have the form state.<tool>.<counter>' },
  { name: 'unknown operator', yaml: condition('args.a', 'equals', '1'), path: C0, line: 7, message: 'unknown operator "equals"' },
  { name: 'operator in capitals', yaml: condition('args.a', 'EQ', '1'), path: C0, line: 7, message: 'unknown operator "EQ"' },
  { name: 'in with a scalar', yaml: condition('args.a', 'in', 'usd'), path: C0, line: 8, message: 'operator "in" requires a list value' },
  {
    name: 'not_in with a map element',
    yaml: condition('args.a', 'not_in', '[{a: 1}]'),
    path: C0,
    line: 8,
    message: 'operator "not_in" requires a list of strings, numbers, booleans or nulls',
  },
  { name: 'lt with a quoted number', yaml: condition('args.a', 'lt', '"5"'), path: C0, line: 8, message: 'operator "lt" requires a numeric value' },
  { name: 'gte with infinity', yaml: condition('args.a', 'gte', '.inf'), path: C0, line: 8, message: 'operator "gte" requires a numeric value' },
  { name: 'lte with null', yaml: condition('args.a', 'lte', 'null'), path: C0, line: 8, message: 'operator "lte" requires a numeric value' },
  { name: 'exists with yes', yaml: condition('args.a', 'exists', 'yes'), path: C0, line: 8, message: 'operator "exists" requires a boolean value' },
  { name: 'regex with a number', yaml: condition('args.a', 'regex', '5'), path: C0, line: 8, message: 'regex value must be a string' },
  { name: 'regex with lookahead', yaml: condition('args.a', 'regex', '"(?=x)"'), path: C0, line: 8, message: 'invalid regex "(?=x)": invalid perl operator: (?=' },
  { name: 'regex with a backreference', yaml: condition('args.a', 'regex', "'(a)\\1'"), path: C0, line: 8, message: 'invalid regex "(a)\\\\1": invalid escape sequence: \\1' },
  { name: 'regex unbalanced', yaml: condition('args.a', 'regex', '"a("'), path: C0, line: 8, message: 'invalid regex "a(": missing ): a(' },
  { name: 'eq with a list', yaml: condition('args.a', 'eq', '[1]'), path: C0, line: 8, message: 'operator "eq" requires a string, number, boolean or null value' },
  { name: 'contains with a map', yaml: condition('args.a', 'contains', '{a: 1}'), path: C0, line: 8, message: 'operator "contains" requires a string, number, boolean or null value' },
  {
    name: 'state read with no state block',
    yaml: condition('state.other.count', 'gt', '1'),
    path: C0,
    line: 6,
    message: 'condition references state.other.count but no matching state block found',
  },

  // state
  { name: 'state a scalar', yaml: state('hour'), path: S0, line: 5, message: 'state must be a map with counter and window, got "hour"' },
  { name: 'counter empty', yaml: state('{counter: "", window: hour}'), path: S0, line: 5, message: 'counter must not be empty' },
  { name: 'counter missing', yaml: state('{window: hour}'), path: S0, line: 5, message: 'counter must not be empty' },
  { name: 'window unknown', yaml: state('{counter: c, window: week}'), path: S0, line: 5, message: 'window must be "minute", "hour", or "day", got "week"' },
  { name: 'window in seconds', yaml: state('{counter: c, window: 60}'), path: S0, line: 5, message: 'window must be "minute", "hour", or "day", got "60"' },
  { name: 'window missing', yaml: state('{counter: c}'), path: S0, line: 5, message: 'window must be "minute", "hour", or "day", got ""' },
  { name: 'increment negative', yaml: state('{counter: c, window: hour, increment: -1}'), path: S0, line: 5, message: 'increment must be a positive number' },
  { name: 'increment zero', yaml: state('{counter: c, window: hour, increment: 0}'), path: S0, line: 5, message: 'increment must be a positive number' },
  { name: 'increment quoted', yaml: state('{counter: c, window: hour, increment: "2"}'), path: S0, line: 5, message: 'increment must be a positive number' },
  { name: 'increment_from without args.', yaml: state('{counter: c, window: hour, increment_from: amount}'), path: S0, line: 5, message: 'increment_from must start with "args.", got "amount"' },
  { name: 'increment_from args. alone', yaml: state('{counter: c, window: hour, increment_from: "args."}'), path: S0, line: 5, message: 'increment_from must name an argument after "args.", got "args."' },
  {
    name: 'increment and increment_from',
    yaml: state('{counter: c, window: hour, increment: 2, increment_from: args.n}'),
    path: S0,
    line: 5,
    message: 'use either increment or increment_from, not both',
  },
  { name: 'state scope unknown', yaml: state('{counter: c, window: hour, scope: user}'), path: S0, line: 5, message: 'scope must be "session", "global" or "identity", got "user" (did you mean "identity"?)' },
  { name: 'misspelt state key', yaml: state('{counter: c, windows: hour, window: hour}'), path: S0, line: 5, message: 'unknown key "windows" (did you mean "window"?)' },
  {
    name: 'duplicate state counter',
    yaml: rules('- name: a', '  state: {counter: c, window: hour}', '- name: b', '  state: {counter: c, window: day}'),
    path: 'tools.t.rules[1]',
    line: 7,
    message: 'duplicate state counter "c" (also used by rules[0])',
  },

  // rate_limit, v1 string
  {
    name: 'two rate_limit strings with one window',
    yaml: rules('- name: a', '  rate_limit: 5/hour', '- name: b', '  rate_limit: 10/hour'),
    path: 'tools.t.rules[1]',
    line: 7,
    message: 'duplicate state counter "_rate_hour" (also used by rules[0])',
  },
  {
    name: 'rate_limit without a slash',
    yaml: rules('- name: a', '  rate_limit: five per hour'),
    path: R0,
    line: 5,
    message: 'rate_limit must be in the format "N/window" (e.g. "5/hour"), got "five per hour"',
  },
  { name: 'rate_limit count zero', yaml: rules('- name: a', '  rate_limit: 0/hour'), path: R0, line: 5, message: 'rate_limit count must be a positive integer, got "0"' },
  { name: 'rate_limit count decimal', yaml: rules('- name: a', '  rate_limit: 5.0/hour'), path: R0, line: 5, message: 'rate_limit count must be a positive integer, got "5.0"' },
  { name: 'rate_limit count signed', yaml: rules('- name: a', '  rate_limit: +5/hour'), path: R0, line: 5, message: 'rate_limit count must be a positive integer, got "+5"' },
  { name: 'rate_limit window week', yaml: rules('- name: a', '  rate_limit: 5/week'), path: R0, line: 5, message: 'rate_limit window must be "minute", "hour", or "day", got "week"' },
  { name: 'rate_limit window capitalised', yaml: rules('- name: a', '  rate_limit: 5/Hour'), path: R0, line: 5, message: 'rate_limit window must be "minute", "hour", or "day", got "Hour"' },
  {
    name: 'rate_limit string with conditions',
    yaml: rules('- name: a', '  rate_limit: 5/hour', '  conditions: [{path: args.a, op: eq, value: 1}]'),
    path: R0,
    line: 5,
    message: 'rate_limit cannot be combined with conditions or state; use separate rules or the full syntax instead',
  },
  {
    name: 'rate_limit string with state',
    yaml: rules('- name: a', '  rate_limit: 5/hour', '  state: {counter: c, window: hour}'),
    path: R0,
    line: 5,
    message: 'rate_limit cannot be combined with conditions or state; use separate rules or the full syntax instead',
  },
  {
    name: 'rate_limit a number',
    yaml: rules('- rate_limit: 5'),
    path: R0,
    line: 4,
    message: 'rate_limit must be a string like "5/hour" or a map with max and window, got "5"',
  },

  // rate_limit, catalogue map
  {
    name: 'rate_limit map with state',
    yaml: rules('- name: a', '  rate_limit: {max: 5, window: 60}', '  state: {counter: c, window: hour}'),
    path: R0,
    line: 5,
    message: 'rate_limit cannot be combined with state',
  },
  { name: 'max missing', yaml: rolling('{window: 60}'), path: L0, line: 5, message: 'max is required' },
  { name: 'max quoted', yaml: rolling('{max: "5", window: 60}'), path: L0, line: 5, message: 'max must be a positive integer, got "5"' },
  { name: 'max zero', yaml: rolling('{max: 0, window: 60}'), path: L0, line: 5, message: 'max must be a positive integer, got "0"' },
  { name: 'max fractional', yaml: rolling('{max: 1.5, window: 60}'), path: L0, line: 5, message: 'max must be a positive integer, got "1.5"' },
  { name: 'window missing (map)', yaml: rolling('{max: 5}'), path: L0, line: 5, message: 'window is required' },
  { name: 'window zero', yaml: rolling('{max: 5, window: 0}'), path: L0, line: 5, message: NUM_WINDOW('0') },
  { name: 'window fractional', yaml: rolling('{max: 5, window: 1.5}'), path: L0, line: 5, message: NUM_WINDOW('1.5') },
  { name: 'window unknown unit', yaml: rolling('{max: 5, window: 5x}'), path: L0, line: 5, message: NUM_WINDOW('5x') },
  { name: 'window quoted seconds', yaml: rolling('{max: 5, window: "60"}'), path: L0, line: 5, message: NUM_WINDOW('60') },
  { name: 'window zero duration', yaml: rolling('{max: 5, window: 0s}'), path: L0, line: 5, message: NUM_WINDOW('0s') },
  { name: 'rate_limit scope unknown', yaml: rolling('{max: 5, window: 60, scope: agent}'), path: L0, line: 5, message: 'scope must be "session", "global" or "identity", got "agent"' },
  { name: 'misspelt rate_limit key', yaml: rolling('{max: 5, windw: 60, window: 60}'), path: L0, line: 5, message: 'unknown key "windw" (did you mean "window"?)' },
  { name: 'unknown rate_limit key', yaml: rolling('{max: 5, window: 60, per: user}'), path: L0, line: 5, message: 'unknown key "per"' },

  // key
  { name: 'key a single path without brackets', yaml: rolling('{max: 5, window: 60, key: args.to}'), path: L0, line: 5, message: 'key must be "args" or a list of "args." paths, got "args.to" (write key: [args.to])' },
  { name: 'key an unknown word', yaml: rolling('{max: 5, window: 60, key: all}'), path: L0, line: 5, message: 'key must be "args" or a list of "args." paths, got "all"' },
  { name: 'key in capitals', yaml: rolling('{max: 5, window: 60, key: ARGS}'), path: L0, line: 5, message: 'key must be "args" or a list of "args." paths, got "ARGS"' },
  { name: 'key a map', yaml: rolling('{max: 5, window: 60, key: {to: 1}}'), path: L0, line: 5, message: 'key must be "args" or a list of "args." paths, got a map' },
  { name: 'key blank', yaml: rolling('{max: 5, window: 60, key: }'), path: L0, line: 5, message: 'key must be "args" or a list of "args." paths, got ""' },
  { name: 'key an empty list', yaml: rolling('{max: 5, window: 60, key: []}'), path: L0, line: 5, message: 'key must not be an empty list' },
  {
    name: 'key [args]',
    yaml: rolling('{max: 5, window: 60, key: [args]}'),
    path: L0,
    line: 5,
    message: 'key[0] must start with "args.", got "args" (write key: args, without brackets, to key by all the arguments)',
  },
  { name: 'key entry without args.', yaml: rolling('{max: 5, window: 60, key: [args.a, to]}'), path: L0, line: 5, message: 'key[1] must start with "args.", got "to"' },
  { name: 'key entry a state path', yaml: rolling('{max: 5, window: 60, key: [state.t.n]}'), path: L0, line: 5, message: 'key[0] must start with "args.", got "state.t.n"' },
  { name: 'key entry a number', yaml: rolling('{max: 5, window: 60, key: [5]}'), path: L0, line: 5, message: 'key[0] must start with "args.", got "5"' },
  { name: 'key entry a list', yaml: rolling('{max: 5, window: 60, key: [[args.a]]}'), path: L0, line: 5, message: 'key[0] must start with "args.", got a list' },
  { name: 'key entry args. alone', yaml: rolling('{max: 5, window: 60, key: ["args."]}'), path: L0, line: 5, message: 'key[0] must name an argument after "args.", got "args."' },
  { name: 'key entry with an empty segment', yaml: rolling('{max: 5, window: 60, key: [args.a..b]}'), path: L0, line: 5, message: 'key[0] must not have empty segments, got "args.a..b"' },
  { name: 'key entry with a trailing dot', yaml: rolling('{max: 5, window: 60, key: [args.a.]}'), path: L0, line: 5, message: 'key[0] must not have empty segments, got "args.a."' },
  {
    name: 'key path listed twice',
    yaml: rules('- action: allow', '  rate_limit:', '    max: 5', '    window: 60', '    key:', '      - args.to', '      - args.from', '      - args.to'),
    path: L0,
    line: 11,
    message: 'duplicate key path "args.to" (also key[0])',
  },
  { name: 'bad key in a state block', yaml: state('{counter: c, window: hour, key: [to]}'), path: S0, line: 5, message: 'key[0] must start with "args.", got "to"' },
  { name: 'bad key next to a rate_limit string', yaml: rules('- name: a', '  rate_limit: 5/hour', '  key: to'), path: R0, line: 6, message: 'key must be "args" or a list of "args." paths, got "to"' },
  { name: 'keys for key (rate_limit map)', yaml: rolling('{max: 5, window: 60, keys: [args.to]}'), path: L0, line: 5, message: 'unknown key "keys" (did you mean "key"?)' },
  { name: 'kye for key (state)', yaml: state('{counter: c, window: hour, kye: args}'), path: S0, line: 5, message: 'unknown key "kye" (did you mean "key"?)' },
  {
    name: 'rule-level key with a rate_limit map',
    yaml: rules('- action: allow', '  rate_limit: {max: 5, window: 60}', '  key: [args.to]'),
    path: R0,
    line: 6,
    message: 'key belongs inside the rate_limit map: rate_limit: {max, window, key}',
  },
  {
    name: 'rule-level key with a state block',
    yaml: rules('- name: a', '  state: {counter: c, window: hour}', '  key: [args.to]'),
    path: R0,
    line: 6,
    message: 'key belongs inside the state block: state: {counter, window, key}',
  },
  {
    name: 'rule-level key with no counter',
    yaml: rules('- name: a', '  conditions: [{path: args.a, op: eq, value: 1}]', '  key: args'),
    path: R0,
    line: 6,
    message: 'key needs a counter: write it next to a rate_limit string ("5/hour"), or inside a rate_limit or state map',
  },
  {
    name: 'rule-level key on a deny rule',
    yaml: rules('- action: deny', '  key: args'),
    path: R0,
    line: 5,
    message: 'key needs a counter: write it next to a rate_limit string ("5/hour"), or inside a rate_limit or state map',
  },

  // validate
  { name: 'validate empty', yaml: rules('- validate: {}'), path: `${R0}.validate`, line: 4, message: 'validate needs required_args: true or schema: true' },
  { name: 'validate blank', yaml: rules('- validate:'), path: `${R0}.validate`, line: 4, message: 'validate needs required_args: true or schema: true' },
  { name: 'validate all false', yaml: rules('- validate: {required_args: false}'), path: `${R0}.validate`, line: 4, message: 'validate needs required_args: true or schema: true' },
  { name: 'required_args not a boolean', yaml: rules('- validate: {required_args: "yes"}'), path: `${R0}.validate`, line: 4, message: 'required_args must be true or false, got "yes"' },
  { name: 'misspelt validate key', yaml: rules('- validate: {schemas: true}'), path: `${R0}.validate`, line: 4, message: 'unknown key "schemas" (did you mean "schema"?)' },
  { name: 'validate a scalar', yaml: rules('- validate: true'), path: `${R0}.validate`, line: 4, message: 'validate must be a map with required_args and/or schema, got "true"' },
];

describe('parsePolicy: every issue', () => {
  for (const row of ISSUE_ROWS) {
    it(row.name, () => {
      const found = issues(row.yaml);
      assert.equal(found.length, 1, `expected one issue, got:\n${formatIssues(found)}`);
      const [issue] = found as [PolicyIssue];
      if (typeof row.message === 'string') assert.equal(issue.message, row.message);
      else assert.match(issue.message, row.message);
      assert.equal(issue.path, row.path);
      assert.equal(issue.line, row.line);
      assert.equal(issue.file, 'policy.yaml');
    });
  }
});

describe('parsePolicy: positions', () => {
  it('points at the key for an unknown key and at the value for a bad value, in nested flow maps', () => {
    const found = issues(rules('- action: allow', '  rate_limit: {max: 5, window: 5x, per: user}'));
    assert.deepEqual(
      found.map((i) => [i.line, i.col, i.message.slice(0, 20)]),
      [
        [5, 38, 'window must be a who'],
        [5, 42, 'unknown key "per"'],
      ],
    );
  });

  it('points at a condition field in block style', () => {
    const [issue] = issues(condition('args.a', 'lt', '"5"'));
    assert.deepEqual([issue!.line, issue!.col], [8, 20]);
  });

  it('points at the key of a blank value', () => {
    const [issue] = issues(state('\n          counter:\n          window: hour'));
    assert.deepEqual([issue!.line, issue!.col, issue!.message], [6, 11, 'counter must not be empty']);
  });

  it('records where tools, rules, conditions and counters were written', () => {
    const policy = load(fixture('v1-stripe.yaml'));
    const charge = policy.tools[0]!;
    assert.deepEqual(charge.pos, { file: 'policy.yaml', line: 6, col: 3 });
    const spend = charge.rules[1]!;
    assert.deepEqual([spend.pos.line, spend.pos.col], [15, 9]);
    assert.deepEqual([spend.counter!.pos.line, spend.counter!.pos.col], [22, 11]);
    assert.deepEqual([charge.rules[0]!.conditions[0]!.pos.line, charge.rules[0]!.conditions[0]!.pos.col], [10, 13]);
    const shorthand = load(fixture('v1-github.yaml')).tools[0]!.rules[0]!.counter!;
    assert.deepEqual([shorthand.pos.line, shorthand.pos.col], [13, 21]);
  });

  it('does not count a byte-order mark as a column', () => {
    const [issue] = issues('\uFEFFdefault: maybe\n');
    assert.deepEqual([issue!.line, issue!.col], [1, 10]);
  });
});

describe('parsePolicy: several issues', () => {
  it('reports every issue at once, sorted by line then column', () => {
    const text = [
      'tools:', // 1
      '  send:', // 2
      '    rules:', // 3
      '      - action: allow', // 4
      '        rate-limit: 5/hour', // 5
      '      - name: x', // 6
      '        conditions:', // 7
      '          - {path: amount, op: lte, value: "5"}', // 8
      '        state: {counter: c, window: week}', // 9
      'hide: [a, a]', // 10
      'default: Allow', // 11
      'version: 2', // 12
    ].join('\n');
    assert.deepEqual(
      issues(text).map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`),
      [
        '5:9 tools.send.rules[0]: unknown key "rate-limit" (did you mean "rate_limit"?)',
        '8:20 tools.send.rules[1].conditions[0]: path must start with "args.", "state." or "identity.", got "amount"',
        '8:44 tools.send.rules[1].conditions[0]: operator "lte" requires a numeric value',
        '9:37 tools.send.rules[1].state: window must be "minute", "hour", or "day", got "week"',
        '10:11 hide: duplicate entry "a"',
        '11:10 : default must be "allow" or "deny", got "Allow"',
        '12:10 : version must be "1", got "2"',
      ],
    );
  });

  it('reports every YAML syntax error and nothing else', () => {
    const found = issues('tools:\n  a: [\nhide: x\n');
    assert.ok(found.length >= 1);
    for (const issue of found) assert.match(issue.message, /^invalid YAML: /);
  });
});

describe('parsePolicy: the normalised model of each fixture', () => {
  it('seed-twilio.yaml (catalogue spelling)', () => {
    const rolling = (tool: string, max: number) => ({
      name: `_rate:${tool}#1`,
      owner: tool,
      window: { kind: 'rolling', seconds: 60 },
      scope: 'session',
      increment: 1,
      limits: [{ value: max, inclusive: true }],
    });
    assert.deepEqual(withoutPos(load(fixture('seed-twilio.yaml'), 'seed-twilio.yaml')), {
      source: 'seed-twilio.yaml',
      defaultAction: 'allow',
      hide: [],
      tools: [
        {
          name: 'create_conversation',
          rules: [{ name: 'create_conversation#1', action: 'evaluate', conditions: [], counter: rolling('create_conversation', 30) }],
        },
        {
          name: 'send_conversation_message',
          rules: [
            { name: 'send_conversation_message#1', action: 'evaluate', conditions: [], counter: rolling('send_conversation_message', 30) },
          ],
        },
        {
          name: 'create_execution',
          rules: [
            {
              name: 'create_execution#1',
              action: 'evaluate',
              conditions: [],
              counter: rolling('create_execution', 10),
              validate: { requiredArgs: true, schema: false },
            },
          ],
        },
      ],
    });
  });

  it('v1-github.yaml (rate_limit shorthand, deny, hide, wildcard)', () => {
    const calendar = (owner: string, unit: string, max: number) => ({
      name: `_rate_${unit}`,
      owner,
      window: { kind: 'calendar', unit },
      scope: 'global',
      increment: 1,
      limits: [{ value: max, inclusive: true }],
    });
    assert.deepEqual(withoutPos(load(fixture('v1-github.yaml'))), {
      source: 'policy.yaml',
      version: '1',
      description: 'GitHub MCP server policies',
      defaultAction: 'allow',
      hide: ['transfer_repository', 'list_webhooks'],
      tools: [
        {
          name: 'create_issue',
          rules: [
            {
              name: 'hourly issue limit',
              action: 'evaluate',
              conditions: [],
              counter: calendar('create_issue', 'hour', 5),
              message: 'Hourly limit of 5 new issues reached',
            },
          ],
        },
        {
          name: 'create_pull_request',
          rules: [
            {
              name: 'hourly pr limit',
              action: 'evaluate',
              conditions: [],
              counter: calendar('create_pull_request', 'hour', 3),
              message: 'Hourly limit of 3 new pull requests reached',
            },
          ],
        },
        {
          name: 'delete_repository',
          rules: [
            {
              name: 'block repo deletion',
              action: 'deny',
              conditions: [],
              message: 'Repository deletion is not permitted via AI agents',
            },
          ],
        },
      ],
      wildcard: {
        name: '*',
        rules: [{ name: 'global rate limit', action: 'evaluate', conditions: [], counter: calendar('_global', 'minute', 60) }],
      },
    });
  });

  it('v1-stripe.yaml (limits folded into counters, increment_from, _global)', () => {
    const policy = load(fixture('v1-stripe.yaml'));
    const [charge, refund, customer] = policy.tools;
    assert.deepEqual(
      policy.tools.map((t) => t.name),
      ['create_charge', 'create_refund', 'delete_customer'],
    );
    assert.deepEqual(withoutPos(charge!.rules), [
      {
        name: 'max single charge',
        action: 'evaluate',
        conditions: [{ path: 'args.amount', op: 'lte', value: 50000 }],
        message: 'Single charge cannot exceed $500.00',
      },
      {
        name: 'daily spend cap',
        action: 'evaluate',
        conditions: [],
        counter: {
          name: 'daily_spend',
          owner: 'create_charge',
          window: { kind: 'calendar', unit: 'day' },
          scope: 'global',
          increment: 1,
          incrementFrom: 'args.amount',
          limits: [{ value: 1000000, inclusive: true }],
        },
        message: 'Daily spending cap of $10,000.00 reached',
      },
      {
        name: 'allowed currencies',
        action: 'evaluate',
        conditions: [{ path: 'args.currency', op: 'in', value: ['usd', 'eur'] }],
        message: 'Only USD and EUR charges are permitted',
      },
    ]);
    assert.deepEqual(withoutPos(refund!.rules[1]!.counter), {
      name: 'daily_count',
      owner: 'create_refund',
      window: { kind: 'calendar', unit: 'day' },
      scope: 'global',
      increment: 1,
      limits: [{ value: 10, inclusive: true }],
    });
    assert.equal(customer!.rules[0]!.action, 'deny');
    assert.deepEqual(withoutPos(policy.wildcard), {
      name: '*',
      rules: [
        {
          name: 'global rate limit',
          action: 'evaluate',
          conditions: [],
          counter: {
            name: 'calls_per_minute',
            owner: '_global',
            window: { kind: 'calendar', unit: 'minute' },
            scope: 'global',
            increment: 1,
            limits: [{ value: 60, inclusive: true }],
          },
          message: 'Rate limit: maximum 60 tool calls per minute',
        },
      ],
    });
  });

  it('v1-charge-rules.yaml (an lt limit is exclusive)', () => {
    const [safe, cap] = load(fixture('v1-charge-rules.yaml')).tools[0]!.rules;
    assert.equal(safe!.conditions.length, 2);
    assert.deepEqual(cap!.counter!.limits, [{ value: 1000000, inclusive: false }]);
    assert.deepEqual(cap!.conditions, []);
  });

  it('v1-default-deny.yaml (listed tool with rules: [])', () => {
    const policy = load(fixture('v1-default-deny.yaml'));
    assert.equal(policy.defaultAction, 'deny');
    assert.deepEqual(
      policy.tools.map((t) => [t.name, t.rules.length]),
      [
        ['read_file', 0],
        ['create_issue', 1],
      ],
    );
  });

  it('v1-hide.yaml, v1-rate-limit-shorthand.yaml, v1-stateful-rule.yaml, v1-counter-scoping.yaml', () => {
    assert.deepEqual(load(fixture('v1-hide.yaml')).hide, ['delete_repository', 'list_webhooks', 'transfer_repository']);
    const shorthand = load(fixture('v1-rate-limit-shorthand.yaml'));
    assert.equal(shorthand.version, undefined);
    assert.equal(shorthand.defaultAction, 'allow');
    assert.deepEqual(shorthand.tools[0]!.rules[0]!.counter!.limits, [{ value: 5, inclusive: true }]);
    const stateful = load(fixture('v1-stateful-rule.yaml')).tools[0]!.rules[0]!;
    assert.deepEqual([stateful.counter!.name, stateful.counter!.limits, stateful.conditions], ['hourly_count', [{ value: 5, inclusive: true }], []]);
    const scoping = load(fixture('v1-counter-scoping.yaml'));
    assert.equal(scoping.tools[0]!.rules[0]!.counter!.owner, 'create_issue');
    assert.deepEqual(withoutPos(scoping.wildcard!.rules[0]!.counter), {
      name: 'calls_per_minute',
      owner: '_global',
      window: { kind: 'calendar', unit: 'minute' },
      scope: 'global',
      increment: 1,
      limits: [{ value: 60, inclusive: true }],
    });
  });

  it('catalogue-extended.yaml (both spellings mixed)', () => {
    const policy = load(fixture('catalogue-extended.yaml'));
    assert.equal(policy.description, 'Mixed spellings');
    assert.deepEqual(policy.hide, ['delete_account']);
    assert.deepEqual(
      policy.tools.map((t) => t.name),
      ['delete_conversation', 'send_message', 'list_messages', 'github.search'],
    );
    const [del, send, list, search] = policy.tools;
    assert.deepEqual(withoutPos(del!.rules), [
      { name: 'delete_conversation#1', action: 'deny', conditions: [], message: 'Deleting conversations is not permitted for agents' },
    ]);
    assert.deepEqual(withoutPos(send!.rules), [
      {
        name: 'us numbers',
        action: 'evaluate',
        conditions: [{ path: 'args.to', op: 'regex', value: '^\\+1[0-9]{10}$' }],
        counter: {
          name: '_rate:us numbers',
          owner: 'send_message',
          window: { kind: 'rolling', seconds: 3600 },
          scope: 'global',
          increment: 1,
          limits: [{ value: 100, inclusive: true }],
        },
        validate: { requiredArgs: false, schema: true },
      },
      {
        name: 'no attachments',
        action: 'evaluate',
        conditions: [{ path: 'args.media_url', op: 'exists', value: false }],
        message: 'Attachments are not allowed',
      },
    ]);
    assert.deepEqual(list!.rules, []);
    assert.deepEqual(search!.rules[0]!.counter!.window, { kind: 'rolling', seconds: 60 });
    assert.equal(search!.rules[0]!.counter!.scope, 'session');
    const [perMinute, budget] = policy.wildcard!.rules;
    assert.deepEqual(withoutPos(perMinute!.counter), {
      name: '_rate:*#1',
      owner: '_global',
      window: { kind: 'rolling', seconds: 30 },
      scope: 'session',
      increment: 1,
      limits: [{ value: 600, inclusive: true }],
    });
    assert.deepEqual(withoutPos(budget!.counter), {
      name: 'units',
      owner: '_global',
      window: { kind: 'calendar', unit: 'day' },
      scope: 'session',
      increment: 2.5,
      limits: [{ value: 1000, inclusive: false }],
    });
  });
});

describe('parsePolicy: valid corner cases', () => {
  it('accepts version 1 as a number and an empty tools map', () => {
    const policy = load('version: 1\ntools:\n');
    assert.equal(policy.version, '1');
    assert.deepEqual(policy.tools, []);
    assert.equal(policy.wildcard, undefined);
  });

  it('lists a tool with a null entry, and an allow rule that does nothing else', () => {
    const policy = load('tools:\n  a:\n  b:\n    rules:\n      - action: allow\n');
    assert.deepEqual(
      policy.tools.map((t) => [t.name, t.rules.map((r) => [r.name, r.action])]),
      [
        ['a', []],
        ['b', [['b#1', 'evaluate']]],
      ],
    );
  });

  it('keeps tool names exactly as written', () => {
    const policy = load('tools:\n  Create_Issue: {}\n  create_issue: {}\n  "404": {}\n');
    assert.deepEqual(
      policy.tools.map((t) => t.name),
      ['Create_Issue', 'create_issue', '404'],
    );
  });

  it('accepts a shorthand count with a leading zero', () => {
    const policy = load(rules('- name: a', '  rate_limit: 05/day'));
    assert.deepEqual(policy.tools[0]!.rules[0]!.counter!.limits, [{ value: 5, inclusive: true }]);
  });

  const windows: [string, number][] = [
    ['60', 60],
    ['1', 1],
    ['30s', 30],
    ['5m', 300],
    ['1h', 3600],
    ['1d', 86400],
    ['minute', 60],
    ['hour', 3600],
    ['day', 86400],
  ];
  for (const [written, seconds] of windows) {
    it(`reads a rolling window of ${written} as ${seconds} seconds`, () => {
      const counter = load(rolling(`{max: 1, window: ${written}}`)).tools[0]!.rules[0]!.counter!;
      assert.deepEqual(counter.window, { kind: 'rolling', seconds });
    });
  }

  it('folds state.*.<counter> limits in wildcard rules, and keeps reads of the own counter', () => {
    const policy = load(
      [
        'tools:',
        '  "*":',
        '    rules:',
        '      - name: g',
        '        conditions:',
        '          - {path: state.*.n, op: lt, value: 10}',
        '          - {path: state._global.n, op: gt, value: -1}',
        '        state: {counter: n, window: hour}',
      ].join('\n'),
    );
    const rule = policy.wildcard!.rules[0]!;
    assert.deepEqual(rule.counter!.limits, [{ value: 10, inclusive: false }]);
    assert.deepEqual(
      rule.conditions.map((c) => [c.path, c.op, c.value]),
      [['state._global.n', 'gt', -1]],
    );
  });

  it('accepts reads of counters defined by other tools, the wildcard, and with dotted names', () => {
    const policy = load(
      [
        'tools:',
        '  a:',
        '    rules:',
        '      - name: count',
        '        state: {counter: calls.total, window: day}',
        '  b:',
        '    rules:',
        '      - name: read',
        '        conditions:',
        '          - {path: state.a.calls.total, op: lt, value: 100}',
        '          - {path: state._global.g, op: lt, value: 5}',
        '          - {path: state.*.g, op: lt, value: 5}',
        '          - {path: state.c._rate_hour, op: lt, value: 5}',
        '      - name: hourly',
        '        rate_limit: 1/hour',
        '  "*":',
        '    rules:',
        '      - name: g',
        '        state: {counter: g, window: minute}',
        '  c:',
        '    rules:',
        '      - name: h',
        '        rate_limit: 2/hour',
      ].join('\n'),
    );
    const a = policy.tools[0]!.rules[0]!;
    assert.deepEqual([a.counter!.name, a.counter!.limits], ['calls.total', []]);
    assert.equal(policy.tools[1]!.rules[0]!.conditions.length, 4);
  });

  it('reports a read of a shorthand counter of a tool that has none', () => {
    const found = issues(condition('state.t._rate_hour', 'lt', '5'));
    assert.deepEqual(
      found.map((i) => i.message),
      ['condition references state.t._rate_hour but no matching state block found'],
    );
  });

  it('treats a given name equal to a derived one as a duplicate', () => {
    const found = issues(rules('- action: deny', '- name: "t#1"', '  action: deny'));
    assert.deepEqual(
      found.map((i) => [i.path, i.message]),
      [['tools.t.rules[1]', 'duplicate rule name "t#1" (also used by rules[0])']],
    );
  });

  it('follows YAML anchors and aliases', () => {
    const policy = load(
      [
        'tools:',
        '  a:',
        '    rules:',
        '      - &limit',
        '        action: allow',
        '        rate_limit: {max: 3, window: 10}',
        '  b:',
        '    rules:',
        '      - *limit',
      ].join('\n'),
    );
    assert.deepEqual(
      policy.tools.map((t) => withoutPos(t.rules[0]!.counter)),
      ['a', 'b'].map((owner) => ({
        name: `_rate:${owner}#1`,
        owner,
        window: { kind: 'rolling', seconds: 10 },
        scope: 'session',
        increment: 1,
        limits: [{ value: 3, inclusive: true }],
      })),
    );
  });
});

describe('parsePolicy: keys', () => {
  it('keyed-limits.yaml (a key in each spelling, and reads of a keyed counter)', () => {
    const policy = load(fixture('keyed-limits.yaml'));
    const [sms, issue, comment] = policy.tools;
    assert.deepEqual(
      sms!.rules.map((r) => withoutPos(r.counter)),
      [
        {
          name: '_rate:send_sms#1',
          owner: 'send_sms',
          window: { kind: 'rolling', seconds: 3600 },
          scope: 'session',
          increment: 1,
          limits: [{ value: 3, inclusive: true }],
          key: { paths: ['args.to'] },
        },
        {
          name: '_rate_day',
          owner: 'send_sms',
          window: { kind: 'calendar', unit: 'day' },
          scope: 'global',
          increment: 1,
          limits: [{ value: 20, inclusive: true }],
          key: { paths: ['args.from', 'args.to'] },
        },
      ],
    );
    assert.deepEqual(withoutPos(issue!.rules[0]), {
      name: 'issues per repository',
      action: 'evaluate',
      conditions: [],
      counter: {
        name: 'per_repo',
        owner: 'create_issue',
        window: { kind: 'calendar', unit: 'day' },
        scope: 'global',
        increment: 1,
        limits: [{ value: 10, inclusive: true }],
        key: { paths: ['args.repo.owner', 'args.repo.name'] },
      },
      message: 'At most 10 new issues per repository a day',
    });
    assert.deepEqual(
      comment!.rules[0]!.conditions.map((c) => c.path),
      ['state.create_issue.per_repo'],
    );
    assert.deepEqual(policy.wildcard!.rules[0]!.counter!.key, { all: true });
  });

  const accepted: [string, string, unknown][] = [
    ['key: args', rolling('{max: 1, window: 60, key: args}'), { all: true }],
    ['key: "args" quoted', rolling('{max: 1, window: 60, key: "args"}'), { all: true }],
    ['an index path', rolling('{max: 1, window: 60, key: [args.to.0]}'), { paths: ['args.to.0'] }],
    ['paths kept in the order written', rolling('{max: 1, window: 60, key: [args.b, args.a.c]}'), { paths: ['args.b', 'args.a.c'] }],
    ['a key in a session-scoped state block', state('{counter: c, window: day, key: [args.x], scope: session}'), { paths: ['args.x'] }],
    ['a rule-level key: args next to a rate_limit string', rules('- name: a', '  rate_limit: 5/hour', '  key: args'), { all: true }],
  ];
  for (const [label, yaml, key] of accepted) {
    it(`accepts ${label}`, () => assert.deepEqual(load(yaml).tools[0]!.rules[0]!.counter!.key, key));
  }

  it('leaves key out of unkeyed counters', () => {
    assert.equal('key' in load(rolling('{max: 1, window: 60}')).tools[0]!.rules[0]!.counter!, false);
  });

  it('reports every bad entry of one key, each at its own position', () => {
    const found = issues(rolling('{max: 5, window: 60, key: [x, args.a, 5, args.a]}'));
    assert.deepEqual(
      found.map((i) => [i.line, i.col, i.message]),
      [
        [5, 48, 'key[0] must start with "args.", got "x"'],
        [5, 59, 'key[2] must start with "args.", got "5"'],
        [5, 62, 'duplicate key path "args.a" (also key[1])'],
      ],
    );
  });

  it('a misplaced rule-level key is reported once, at the key', () => {
    const found = issues(rules('- action: allow', '  rate_limit: {max: 5, window: 60}', '  key: nonsense'));
    assert.deepEqual(
      found.map((i) => [i.line, i.col, i.message]),
      [[6, 9, 'key belongs inside the rate_limit map: rate_limit: {max, window, key}']],
    );
  });
});

describe('loadPolicyFile', () => {
  it('reads and parses a file, naming it in positions', async () => {
    const file = join(FIXTURES, 'v1-github.yaml');
    const result = await loadPolicyFile(file);
    assert.ok(result.ok);
    assert.equal(result.policy.source, file);
    assert.equal(result.policy.tools[0]!.pos.file, file);
  });

  it('turns a read error into one issue', async () => {
    const file = join(FIXTURES, 'no-such-policy.yaml');
    const result = await loadPolicyFile(file);
    assert.equal(result.ok, false);
    const [issue] = (result as { issues: PolicyIssue[] }).issues;
    assert.deepEqual([issue!.file, issue!.line, issue!.col, issue!.path], [file, 1, 1, '']);
    assert.match(issue!.message, /^cannot read policy file: ENOENT/);
  });
});

describe('formatIssue', () => {
  it('writes file:line:col: path: message, without an empty path', () => {
    const base = { file: 'p.yaml', line: 3, col: 7 };
    assert.equal(formatIssue({ ...base, path: 'tools.t.rules[0]', message: 'rule must have a name' }), 'p.yaml:3:7: tools.t.rules[0]: rule must have a name');
    assert.equal(formatIssue({ ...base, path: '', message: 'policy file is empty' }), 'p.yaml:3:7: policy file is empty');
    assert.equal(
      formatIssues([
        { ...base, path: '', message: 'a' },
        { ...base, line: 4, path: 'hide', message: 'b' },
      ]),
      'p.yaml:3:7: a\np.yaml:4:7: hide: b',
    );
  });
});
