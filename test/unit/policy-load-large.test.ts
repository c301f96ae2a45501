// A large policy file (10,000 tools, written the way scaffolds and hand-written policies are):
// every tool reaches the model, in order and where it was written, and a mistake near the end is
// reported at its line and field like anywhere else.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicy } from '../../src/policy/load.js';
import type { Policy, PolicyIssue } from '../../src/policy/model.js';

const TOOLS = 10_000;

interface Generated {
  text: string;
  /** 1-based line of each tool's key. */
  toolLine: number[];
  /** Where each deliberate mistake was written. */
  mistakes: { line: number; col: number }[];
}

/** Three kinds of tool in turn: a catalogue-style rolling limit, v1 conditions, a deny.
 * `broken` lists the tools to get a mistake each: an unknown operator in a v1 tool, a
 * misspelt key in the others. */
function generate(tools: number, broken: number[] = []): Generated {
  const lines = ['# A generated policy', 'version: "1"', 'description: many tools', 'default: deny', 'tools:'];
  const toolLine: number[] = [];
  const mistakes: Generated['mistakes'] = [];
  const mistake = (line: string, bad: string) => {
    mistakes.push({ line: lines.length + 1, col: line.indexOf(bad) + 1 });
    lines.push(line);
  };
  for (let t = 0; t < tools; t++) {
    const name = `tool_${t}`;
    const wrong = broken.includes(t);
    if (t % 100 === 0) lines.push('', `  # tools ${t} to ${t + 99}`);
    toolLine.push(lines.length + 1);
    lines.push(`  ${name}:`, '    rules:');
    switch (t % 3) {
      case 0:
        lines.push('      - action: allow');
        if (wrong) mistake('        rate_limt: { max: 60, window: 60 }', 'rate_limt');
        else lines.push('        rate_limit: { max: 60, window: 60 } # per session');
        break;
      case 1:
        lines.push('      - name: "amount cap"', '        conditions:', '          - path: args.amount');
        if (wrong) mistake('            op: lesser', 'lesser');
        else lines.push('            op: lte');
        lines.push('            value: 1000', '          - path: args.currency', '            op: in', '            value: ["usd", "eur"]');
        break;
      default:
        lines.push('      - action: deny');
        if (wrong) mistake(`        reasn: '${name} is not for agents'`, 'reasn');
        else lines.push(`        reason: '${name} is not for agents'`);
    }
  }
  return { text: lines.join('\n') + '\n', toolLine, mistakes };
}

function load(text: string): Policy {
  const result = parsePolicy(text, 'large.yaml');
  if (!result.ok) assert.fail(`expected no issues, got ${result.issues.length}, the first: ${JSON.stringify(result.issues[0])}`);
  return result.policy;
}

function issues(text: string): PolicyIssue[] {
  const result = parsePolicy(text, 'large.yaml');
  if (result.ok) assert.fail('expected issues, got none');
  return result.issues;
}

describe('parsePolicy: a 10,000-tool file', () => {
  it('puts every tool in the model, in file order, with its rules and where it was written', () => {
    const { text, toolLine } = generate(TOOLS);
    const policy = load(text);
    assert.equal(policy.version, '1');
    assert.equal(policy.description, 'many tools');
    assert.equal(policy.defaultAction, 'deny');
    assert.equal(policy.tools.length, TOOLS);
    policy.tools.forEach((tool, t) => {
      assert.equal(tool.name, `tool_${t}`);
      assert.deepEqual(tool.pos, { file: 'large.yaml', line: toolLine[t], col: 3 });
      assert.equal(tool.rules.length, 1);
      const rule = tool.rules[0]!;
      switch (t % 3) {
        case 0:
          assert.equal(rule.action, 'evaluate');
          assert.deepEqual(rule.counter?.window, { kind: 'rolling', seconds: 60 });
          assert.deepEqual(rule.counter?.limits, [{ value: 60, inclusive: true }]);
          break;
        case 1:
          assert.equal(rule.name, 'amount cap');
          assert.deepEqual(
            rule.conditions.map(({ path, op, value }) => ({ path, op, value })),
            [
              { path: 'args.amount', op: 'lte', value: 1000 },
              { path: 'args.currency', op: 'in', value: ['usd', 'eur'] },
            ],
          );
          assert.deepEqual(rule.conditions[1]!.pos, { file: 'large.yaml', line: toolLine[t]! + 7, col: 13 });
          break;
        default:
          assert.equal(rule.action, 'deny');
          assert.equal(rule.message, `tool_${t} is not for agents`);
      }
    });
  });

  it('reports mistakes near the end at their line and field, and nothing else', () => {
    const { text, mistakes } = generate(TOOLS, [9_997, 9_998, 9_999]);
    assert.deepEqual(issues(text), [
      // tool_9997 is a v1 tool, tool_9998 a deny, tool_9999 a rolling limit.
      { file: 'large.yaml', ...mistakes[0]!, path: 'tools.tool_9997.rules[0].conditions[0]', message: 'unknown operator "lesser"' },
      { file: 'large.yaml', ...mistakes[1]!, path: 'tools.tool_9998.rules[0]', message: 'unknown key "reasn" (did you mean "reason"?)' },
      { file: 'large.yaml', ...mistakes[2]!, path: 'tools.tool_9999.rules[0]', message: 'unknown key "rate_limt" (did you mean "rate_limit"?)' },
    ]);
    assert.equal(mistakes[2]!.line, text.split('\n').length - 1);
  });

  it('gives the same results with Windows line endings', () => {
    // Files with CR LF are read by yaml's own parser; the rest by a faster reader of the common
    // subset. Both must agree, on valid files and on broken ones.
    for (const broken of [[], [10, 11, 12, 298]]) {
      const { text } = generate(300, broken);
      assert.deepEqual(parsePolicy(text.replace(/\n/g, '\r\n'), 'large.yaml'), parsePolicy(text, 'large.yaml'));
    }
  });
});
