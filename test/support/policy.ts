// Loading policy text in tests: the model when it must load, the issues when it must not, each
// failing the test with what the loader said otherwise.
import assert from 'node:assert/strict';
import { formatIssues } from '../../src/policy/format.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { Policy, PolicyIssue } from '../../src/policy/model.js';

/** The policy `text` loads to; fails the test, listing the issues, when it does not load. */
export function loadPolicyText(text: string, file = 'policy.yaml'): Policy {
  const result = parsePolicy(text, file);
  if (!result.ok) assert.fail(`expected no issues, got:\n${formatIssues(result.issues)}`);
  return result.policy;
}

/** The issues of `text`; fails the test when it loads. */
export function policyIssues(text: string): PolicyIssue[] {
  const result = parsePolicy(text, 'policy.yaml');
  if (result.ok) assert.fail('expected issues, got none');
  return result.issues;
}

/** The model without source positions, to compare models. */
export function withoutPos(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutPos);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k, v]) => k !== 'pos' && k !== 'hidePos' && v !== undefined)
        .map(([k, v]) => [k, withoutPos(v)]),
    );
  }
  return value;
}
