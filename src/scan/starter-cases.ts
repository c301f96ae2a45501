// Starter test cases for a scaffold (`intercept scan -o`), for `intercept test`: a call to each
// read tool that must be allowed, and for each recommended rule a case that shows it biting.
// They pass against the scaffold as written: with --recommended every case is on; without it
// the rules are commented out in the policy, and so are their cases, to be switched on together.
// Arguments are placeholders made from the tool's inputSchema, for the user to edit.
import { basename } from 'node:path';
import { Document, isMap, isPair, isScalar, visit } from 'yaml';
import type { DiscoveredTool } from './discover.js';
import { AMOUNT_CAP_PLACEHOLDER, amountParameter, type RuleData, type Scaffold, type ScaffoldTool } from './scaffold.js';

export interface StarterMeta {
  /** The policy file and the cases file, as the user named them (for the run command). */
  policyFile: string;
  casesFile: string;
  recommended: boolean;
}

/** A case as plain data, in the order its keys are written. */
type CaseData = Record<string, unknown>;

const CATEGORY_TITLE: Record<ScaffoldTool['category'], string> = {
  read: 'Read',
  write: 'Write',
  execute: 'Execute',
  financial: 'Financial',
  destructive: 'Destructive',
};

/** `<policy>.cases.yaml` beside the policy (`memory.yaml` → `memory.cases.yaml`). */
export function starterCasesPath(policyFile: string): string {
  return `${policyFile.replace(/\.ya?ml$/i, '')}.cases.yaml`;
}

export function starterCasesYaml(scaffold: Scaffold, discovered: readonly DiscoveredTool[], meta: StarterMeta): string {
  const schemas = new Map<string, unknown>();
  for (const t of discovered) if (!schemas.has(t.name)) schemas.set(t.name, t.inputSchema);
  const names = new Set<string>();
  const lines = [...header(scaffold, meta), 'cases:'];
  for (const tool of scaffold.tools) {
    // A name the server lists twice is one policy key, and one set of cases.
    if (names.has(tool.name)) continue;
    names.add(tool.name);
    const schema = schemas.get(tool.name);
    const own = tool.category === 'read' ? [allowCase(tool, schema)] : [];
    const ruled = tool.recommended.rules.map((rule, i) => ruleCase(tool, rule, i, schema)).filter((c) => c !== undefined);
    if (own.length + ruled.length === 0) continue;
    if (lines.at(-1) !== 'cases:') lines.push('');
    lines.push(`  # ── ${oneLine(tool.name)} (${CATEGORY_TITLE[tool.category]}) ──`);
    for (const c of own) lines.push(...caseLines(c, '  '));
    if (ruled.length === 0) continue;
    if (!meta.recommended) lines.push('  # With its recommended rules (commented out in the policy); uncomment these with them:');
    for (const c of ruled) lines.push(...caseLines(c, meta.recommended ? '  ' : '  # '));
  }
  return lines.join('\n') + '\n';
}

function header(scaffold: Scaffold, meta: StarterMeta): string[] {
  const { server } = scaffold;
  return [
    `# Test cases for ${oneLine(basename(meta.policyFile))}, the policy scaffold for ${oneLine(server.name)} ${oneLine(server.version)}.`,
    '# Run them with:',
    `#   intercept test -c ${oneLine(meta.policyFile)} ${oneLine(meta.casesFile)}`,
    '# Each case is a call and the decision the policy must make for it; they are decided as the',
    '# proxy would decide them, without starting the server. The arguments are placeholders: make',
    '# them realistic, and add a case for each rule you write (docs/policy-tests.md has the format).',
    meta.recommended
      ? '# The recommended rules are enabled in the policy, and each has a case here.'
      : '# The policy allows every tool ("rules: []"); the cases of the recommended rules are commented\n# out like the rules themselves: uncomment them when you enable the rules.',
    '',
  ];
}

function allowCase(tool: ScaffoldTool, schema: unknown): CaseData {
  return { name: `${tool.name} is allowed`, call: { tool: tool.name, args: placeholderArgs(tool, schema) }, expect: 'allow' };
}

/** The case that shows the i-th recommended rule of the tool at work. */
function ruleCase(tool: ScaffoldTool, rule: RuleData, index: number, schema: unknown): CaseData | undefined {
  const ruleName = typeof rule.name === 'string' ? rule.name : `${tool.name}#${index + 1}`;
  const args = placeholderArgs(tool, schema);
  const call = { tool: tool.name, args };
  // Rules that validate need the tool's inputSchema, as the proxy gets it from the server (an
  // empty one when the server sent none).
  const validates = tool.recommended.rules.some((r) => r.validate !== undefined);
  const facts = validates ? { input_schema: isObject(schema) ? schema : {} } : {};
  if (rule.action === 'deny') {
    return { name: `${tool.name} is denied`, call, expect: { deny: { kind: 'deny_rule', rule: ruleName } } };
  }
  const amount = amountParameter(tool.parameters);
  if (Array.isArray(rule.conditions) && amount !== undefined) {
    return {
      name: `${tool.name}: ${amount.name} above the cap is refused`,
      ...facts,
      call: { tool: tool.name, args: { ...args, [amount.name]: AMOUNT_CAP_PLACEHOLDER + 1 } },
      expect: { deny: { kind: 'condition', rule: ruleName } },
    };
  }
  if (isObject(rule.validate) && rule.validate.required_args === true && requiredOf(schema).length > 0) {
    return {
      name: `${tool.name}: a call without its required arguments is refused`,
      ...facts,
      call: { tool: tool.name, args: {} },
      expect: { deny: { kind: 'missing_args', rule: ruleName } },
    };
  }
  const limit = rule.rate_limit;
  if (isObject(limit) && typeof limit.max === 'number' && typeof limit.window === 'number') {
    const span = limit.window === 60 ? 'a minute' : `${limit.window} seconds`;
    return {
      name: `${tool.name}: the ${ordinal(limit.max + 1)} call in ${span} is rate-limited`,
      ...facts,
      before: [{ tool: tool.name, args, times: limit.max }],
      call,
      expect: { deny: { kind: 'rate_limit', rule: ruleName } },
    };
  }
  return undefined;
}

/** Every required argument with a value of its type (an amount within the cap, so a financial
 * tool's calls pass its cap rule). */
function placeholderArgs(tool: ScaffoldTool, schema: unknown): Record<string, unknown> {
  const properties = isObject(schema) && isObject(schema.properties) ? schema.properties : {};
  const args: Record<string, unknown> = {};
  for (const name of requiredOf(schema)) define(args, name, placeholder(Object.hasOwn(properties, name) ? properties[name] : undefined, 0));
  const amount = tool.category === 'financial' ? amountParameter(tool.parameters) : undefined;
  if (amount !== undefined) define(args, amount.name, 1);
  return args;
}

function placeholder(schema: unknown, depth: number): unknown {
  if (!isObject(schema) || depth > 8) return 'example';
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  if (Object.hasOwn(schema, 'const')) return schema.const;
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = schema[key];
    if (Array.isArray(options) && options.length > 0) return placeholder(options[0], depth + 1);
  }
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  switch (types.find((t) => t !== 'null')) {
    case 'integer':
    case 'number':
      return 1;
    case 'boolean':
      return true;
    case 'array':
      return [];
    case 'object': {
      const out: Record<string, unknown> = {};
      const properties = isObject(schema.properties) ? schema.properties : {};
      for (const name of requiredOf(schema)) define(out, name, placeholder(Object.hasOwn(properties, name) ? properties[name] : undefined, depth + 1));
      return out;
    }
    default:
      return 'example';
  }
}

function requiredOf(schema: unknown): string[] {
  return isObject(schema) && Array.isArray(schema.required) ? [...new Set(schema.required.filter((r): r is string => typeof r === 'string'))] : [];
}

/** An own property whatever the name (`__proto__` included). */
function define(target: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
}

/** The case as a list item, each line after `prefix`; args and expect on one line each. */
function caseLines(c: CaseData, prefix: string): string[] {
  const doc = new Document([c], { aliasDuplicateObjects: false });
  visit(doc, {
    Pair(_, pair) {
      if (isPair(pair) && isScalar(pair.key) && (pair.key.value === 'args' || pair.key.value === 'expect') && isMap(pair.value)) pair.value.flow = true;
    },
  });
  return doc
    .toString({ lineWidth: 0 })
    .trimEnd()
    .split('\n')
    .map((l) => prefix + l);
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/** Server-supplied text going into a comment line: no line breaks or control characters. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
