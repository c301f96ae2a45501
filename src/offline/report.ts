// What `intercept test` prints: a line per case, then for each failure what was expected, what
// the decision was, and the decision's trace as explain shows it; then the count. And the same
// as JSON for machines.
import { decisionToJson, formatDecision } from '../engine/explain.js';
import type { Expectation } from './cases.js';
import type { CaseResult, Outcome } from './run-cases.js';

export function formatReport(results: readonly CaseResult[], casesFile: string): string {
  const lines = results.map((r) => `${r.passed ? 'PASS' : 'FAIL'}  ${printable(r.case.name)}`);
  for (const r of results) if (!r.passed) lines.push('', ...failure(r, casesFile));
  const failed = results.filter((r) => !r.passed).length;
  lines.push('', `${results.length - failed} passed, ${failed} failed`);
  return lines.join('\n');
}

function failure(r: CaseResult, casesFile: string): string[] {
  const c = r.case;
  const lines = [
    `FAIL  ${printable(c.name)}`,
    `  case      ${casesFile}:${c.pos.line}:${c.pos.col}`,
    `  expected  ${describeExpected(c.expect)}`,
    `  actual    ${describeActual(r.actual)}`,
    `  differs   ${r.differs.join(', ')}`,
  ];
  if (r.before.calls > 0) lines.push(`  before    ${describeBefore(r.before)}`);
  if (c.timed) lines.push(`  at        ${new Date(r.at).toISOString()}`);
  if (r.toolClass) lines.push(`  class     ${r.toolClass.value} (${r.toolClass.given ? 'tool_class' : "the classifier's guess from the name; set tool_class to say"})`);
  lines.push('  trace');
  for (const line of formatDecision(c.call, r.decision, c.identity).split('\n')) lines.push(`    ${line}`);
  return lines;
}

/** A name as one line of plain text: control characters (line breaks, terminal escapes) escaped. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function describeExpected(e: Expectation): string {
  const parts: string[] = [];
  if (e.decision === 'deny') {
    if (e.kind !== undefined) parts.push(`kind ${e.kind}`);
    if (e.rule !== undefined) parts.push(`rule ${JSON.stringify(e.rule)}`);
    if (e.message !== undefined) parts.push('contains' in e.message ? `message containing ${JSON.stringify(e.message.contains)}` : `message matching /${e.message.regex}/`);
  } else if (e.decision === 'approval' && e.rule !== undefined) {
    parts.push(`rule ${JSON.stringify(e.rule)}`);
  }
  return parts.length === 0 ? e.decision : `${e.decision} (${parts.join(', ')})`;
}

function describeActual(o: Outcome): string {
  const parts: string[] = [];
  if (o.kind !== undefined) parts.push(`kind ${o.kind}`);
  if (o.rule !== undefined) parts.push(`rule ${JSON.stringify(o.rule)}`);
  if (o.message !== undefined) parts.push(`message ${JSON.stringify(o.message)}`);
  return parts.length === 0 ? o.decision : `${o.decision} (${parts.join(', ')})`;
}

function describeBefore(b: CaseResult['before']): string {
  const parts = [`${b.allowed} allowed`];
  if (b.held > 0) parts.push(`${b.held} held for approval (counted as approved)`);
  if (b.denied > 0) parts.push(`${b.denied} denied`);
  return `${b.calls} call${b.calls === 1 ? '' : 's'}: ${parts.join(', ')}`;
}

/** `--json`: every case with its outcome; a failing one with its decision and trace as
 * `intercept explain --json` gives them. */
export function reportJson(results: readonly CaseResult[], files: { policy: string; cases: string }): Record<string, unknown> {
  const failed = results.filter((r) => !r.passed).length;
  return {
    policy: files.policy,
    cases_file: files.cases,
    passed: results.length - failed,
    failed,
    cases: results.map((r) => {
      const out: Record<string, unknown> = {
        name: r.case.name,
        line: r.case.pos.line,
        passed: r.passed,
        expected: r.case.expect,
        actual: r.actual,
        differs: r.differs,
        before: r.before,
        at: new Date(r.at).toISOString(),
      };
      if (r.toolClass) out.tool_class = r.toolClass;
      if (!r.passed) out.decision = decisionToJson(r.case.call, r.decision, r.case.identity);
      return out;
    }),
  };
}
