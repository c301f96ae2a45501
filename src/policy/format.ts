// One line per policy issue, in the `file:line:col: message` shape editors and CI annotate.
import type { PolicyIssue } from './model.js';

/** `<file>:<line>:<col>: <path>: <message>`, without `<path>: ` when the path is empty. */
export function formatIssue(issue: PolicyIssue): string {
  const where = `${issue.file}:${issue.line}:${issue.col}`;
  return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
}

export function formatIssues(issues: readonly PolicyIssue[]): string {
  return issues.map(formatIssue).join('\n');
}
