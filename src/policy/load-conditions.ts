// Conditions (`path`, `op`, `value`): condition paths, the one check of an `args.` path that
// counters use too, each operator's operand, and regexes checked against the RE2 dialect.
import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import { OPERATORS, type Condition, type Operator, type PolicyValue } from './model.js';
import { compileRegex } from './regex.js';
import { CONDITION_KEYS } from './spelling.js';
import { finiteNumber, plainScalar, shown, type Reader, type YNode } from './yaml-reader.js';

export function readCondition(r: Reader, node: YNode | undefined, written: unknown, path: string): Condition | undefined {
  if (!isMap(node)) {
    r.issue(r.posOf(isAlias(written) ? written : node), path, `condition must be a map with path, op and value, got ${shown(node)}`);
    return undefined;
  }
  const before = r.issues.length;
  const at = r.posOf(node);
  const f = r.fields(node, path, CONDITION_KEYS);

  const pathField = f.get('path');
  let conditionPath: string | undefined;
  if (!pathField) r.issue(at, path, 'path is required');
  else {
    const checked = checkConditionPath(pathField.value);
    if ('message' in checked) r.issue(pathField.valuePos, path, checked.message);
    else conditionPath = checked.path;
  }

  const opField = f.get('op');
  let op: Operator | undefined;
  if (!opField) r.issue(at, path, 'op is required');
  else {
    const v = opField.value;
    const text = isScalar(v) && typeof v.value === 'string' ? v.value : undefined;
    if (text !== undefined && (OPERATORS as readonly string[]).includes(text)) op = text as Operator;
    else r.issue(opField.valuePos, path, `unknown operator ${shown(v)}`);
  }

  const valueField = f.get('value');
  let value: PolicyValue | undefined;
  if (!valueField) r.issue(at, path, 'value is required');
  else if (op) {
    const checked = checkOperand(op, valueField.value, (item) => r.resolve(item));
    if ('message' in checked) r.issue(valueField.valuePos, path, checked.message);
    else value = checked.value;
  }

  if (r.issues.length > before || conditionPath === undefined || op === undefined || value === undefined) return undefined;
  return { path: conditionPath, op, value, pos: at };
}

/** A condition path (`args.` or `state.`), or why it is unusable. */
function checkConditionPath(node: YNode | undefined): { path: string } | { message: string } {
  const text = isScalar(node) && typeof node.value === 'string' ? node.value : undefined;
  if (text?.startsWith('args.')) return checkArgsPath(node, 'path', 'a field');
  if (!text?.startsWith('state.')) return { message: `path must start with "args." or "state.", got ${shown(node)}` };
  const segments = text.slice('state.'.length).split('.');
  if (segments.length < 2) return { message: 'state paths have the form state.<tool>.<counter>' };
  if (segments.includes('')) return { message: `path must not have empty segments, got ${JSON.stringify(text)}` };
  return { path: text };
}

/** An `args.` path (a condition's, `increment_from`, a `key:` entry), or why it is not one: it
 * must be a string, start with "args.", name something after it and have no empty segments.
 * `label` starts each message; `named` says what must follow "args.". */
export function checkArgsPath(
  node: YNode | undefined,
  label: string,
  named: 'a field' | 'an argument' = 'an argument',
): { path: string } | { message: string } {
  const text = isScalar(node) && typeof node.value === 'string' ? node.value : undefined;
  if (text === undefined || !text.startsWith('args.')) return { message: `${label} must start with "args.", got ${shown(node)}` };
  if (text === 'args.') return { message: `${label} must name ${named} after "args.", got "args."` };
  // An empty segment (text starts with "args.", so not the first): `..` or a trailing dot.
  if (text.endsWith('.') || text.includes('..')) return { message: `${label} must not have empty segments, got ${JSON.stringify(text)}` };
  return { path: text };
}

function checkOperand(
  op: Operator,
  node: YNode | undefined,
  resolve: (item: unknown) => YNode | undefined,
): { value: PolicyValue } | { message: string } {
  switch (op) {
    case 'in':
    case 'not_in': {
      if (!isSeq(node)) return { message: `operator "${op}" requires a list value` };
      const values: PolicyValue[] = [];
      for (const item of node.items) {
        const scalar = plainScalar(resolve(item));
        if (!scalar) return { message: `operator "${op}" requires a list of strings, numbers, booleans or nulls` };
        values.push(scalar.value);
      }
      return { value: values };
    }
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte': {
      const n = finiteNumber(node);
      return n === undefined ? { message: `operator "${op}" requires a numeric value` } : { value: n };
    }
    case 'exists':
      return isScalar(node) && typeof node.value === 'boolean'
        ? { value: node.value }
        : { message: 'operator "exists" requires a boolean value' };
    case 'regex': {
      if (!isScalar(node) || typeof node.value !== 'string') return { message: 'regex value must be a string' };
      const problem = checkRegex(node.value);
      return problem ? { message: `invalid regex ${JSON.stringify(node.value)}: ${problem}` } : { value: node.value };
    }
    case 'eq':
    case 'neq':
    case 'contains': {
      const scalar = plainScalar(node);
      return scalar ?? { message: `operator "${op}" requires a string, number, boolean or null value` };
    }
  }
}

/** RE2, the dialect of the Go reference: no lookaround, no backreferences, linear time. */
function checkRegex(pattern: string): string | undefined {
  try {
    compileRegex(pattern);
    return undefined;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const prefix = `Invalid regular expression: /${pattern}/u: `;
    return message.startsWith(prefix) ? message.slice(prefix.length) : message;
  }
}
