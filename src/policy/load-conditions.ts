// Conditions (`path`, `op`, `value`): condition paths (the call's `args.`, a counter's `state.`,
// the caller's `identity.`), the one check of an `args.` path that counters use too, each
// operator's operand, and regexes checked against the RE2 dialect.
import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import { OPERATORS, type Condition, type Operator, type PolicyValue } from './model.js';
import { compileRegex } from './regex.js';
import { CONDITION_KEYS, IDENTITY_FIELDS, SCOPES_OPERATORS } from './spelling.js';
import { suggest } from './suggest.js';
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

  if (op !== undefined && conditionPath === 'identity.scopes' && !(SCOPES_OPERATORS as readonly string[]).includes(op)) {
    r.issue(
      opField!.valuePos,
      path,
      `identity.scopes is a list of scopes: use contains (has this scope), in (has one of these), not_in (has none of these) or exists; "${op}" would compare the whole list with one value`,
    );
    op = undefined;
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

/** A condition path (`args.`, `state.` or `identity.`), or why it is unusable. */
function checkConditionPath(node: YNode | undefined): { path: string } | { message: string } {
  const text = isScalar(node) && typeof node.value === 'string' ? node.value : undefined;
  if (text?.startsWith('args.')) return checkArgsPath(node, 'path', 'a field');
  if (text === 'identity' || text?.startsWith('identity.')) return checkIdentityPath(text);
  if (!text?.startsWith('state.')) {
    // A root that looks like `identity` (`identiy.sub`, `Identity.sub`) is pointed at it.
    const dot = text?.indexOf('.') ?? -1;
    const root = text === undefined ? undefined : dot < 0 ? text : text.slice(0, dot);
    const near = root !== undefined && root !== 'args' && root !== 'state' && suggest(root, ['identity'], 2) !== undefined;
    const hint = near ? ` (did you mean ${JSON.stringify(`identity${dot < 0 ? '' : text!.slice(dot)}`)}?)` : '';
    return { message: `path must start with "args.", "state." or "identity.", got ${shown(node)}${hint}` };
  }
  const segments = text.slice('state.'.length).split('.');
  if (segments.length < 2) return { message: 'state paths have the form state.<tool>.<counter>' };
  if (segments.includes('')) return { message: `path must not have empty segments, got ${JSON.stringify(text)}` };
  return { path: text };
}

const IDENTITY_PATHS = 'identity.sub, identity.client_id, identity.scopes or identity.claims.<name>';

/** An `identity.` path: one of IDENTITY_FIELDS, and under `claims` a claim by name (nested
 * claims by more names). Anything else is an error, with the field or claim likely meant. */
function checkIdentityPath(text: string): { path: string } | { message: string } {
  if (text === 'identity' || text === 'identity.') return { message: `path must name what is known of the caller after "identity.": ${IDENTITY_PATHS}` };
  const segments = text.slice('identity.'.length).split('.');
  if (segments.includes('')) return { message: `path must not have empty segments, got ${JSON.stringify(text)}` };
  const [field, ...rest] = segments as [string, ...string[]];
  if (!(IDENTITY_FIELDS as readonly string[]).includes(field)) {
    // A near miss of a field, else most likely a claim written without `claims.`.
    const guess = suggest(field, IDENTITY_FIELDS, 2);
    const meant = guess !== undefined ? `identity.${[guess, ...rest].join('.')}` : `identity.claims.${segments.join('.')}`;
    return { message: `unknown identity field ${JSON.stringify(field)} (did you mean ${JSON.stringify(meant)}?); a condition can read ${IDENTITY_PATHS}` };
  }
  if (field === 'claims') {
    return rest.length > 0 ? { path: text } : { message: 'identity.claims must name a claim: identity.claims.<name>, e.g. identity.claims.groups' };
  }
  if (rest.length > 0) {
    const what = field === 'scopes' ? 'a list of scopes (use op: contains to ask for one)' : 'a string';
    return { message: `identity.${field} is ${what} and has no fields, got ${JSON.stringify(text)}` };
  }
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
