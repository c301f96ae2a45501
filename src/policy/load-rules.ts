// Rules, in both spellings: the catalogue's (`action: allow|deny`, `reason`, `rate_limit: {max,
// window}`, `validate`) and v1's (`action: evaluate|deny`, `on_deny`, `rate_limit: 5/hour`, `state`),
// and in either `action: require_approval` (its settings are read by load-approval.ts).
import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import { readApproval } from './load-approval.js';
import { readCondition } from './load-conditions.js';
import { readKey, readRollingLimit, readState } from './load-counters.js';
import { GLOBAL_OWNER, type Condition, type PolicyIssue, type Rule, type SourcePos, type Validation } from './model.js';
import { APPROVAL_KEYS, NOT_WITH_APPROVAL, parseShorthand, RULE_KEYS, VALIDATE_KEYS } from './spelling.js';
import { suggest } from './suggest.js';
import { isNull, later, nonEmptyString, shown, type Field, type Reader, type YNode } from './yaml-reader.js';

/** A `state.X.Y` condition that reads a counter (not a limit folded into its own counter). */
export interface StateRead {
  condition: Condition;
  /** The condition's issue path. */
  path: string;
}

export interface RuleContext {
  tool: string;
  owner: string;
  /** 0-based position in the tool's rule list. */
  index: number;
  path: string;
  /** The file says `version: "1"`: it is written in the v1 spelling, where a require_approval
   * rule with conditions must be named as every v1 rule with conditions is. */
  v1?: boolean;
}

export interface ParsedRule {
  rule: Rule;
  index: number;
  path: string;
  nameAt?: SourcePos;
  counterKind?: 'state' | 'shorthand' | 'rolling';
  reads: StateRead[];
  /** Accepted, but worth a second look (`on_timeout: allow`). */
  warnings: PolicyIssue[];
}

export function readRule(r: Reader, node: YNode | undefined, written: unknown, ctx: RuleContext): ParsedRule | undefined {
  const { path } = ctx;
  if (!isMap(node)) {
    const at = r.posOf(isAlias(written) ? written : node);
    r.issue(at, path, `rule must be a map, got ${shown(node)}`);
    return undefined;
  }
  const pos = r.posOf(node);
  const f = r.fields(node, path, RULE_KEYS);
  const result: ParsedRule = {
    rule: { name: '', action: 'evaluate', conditions: [], pos },
    index: ctx.index,
    path,
    reads: [],
    warnings: [],
  };
  const rule = result.rule;

  // action: `allow` (catalogue) and `evaluate` (v1) are one thing.
  const actionField = f.get('action');
  let action: Rule['action'] | undefined = 'evaluate';
  let spelledAllow = false;
  let spelledEvaluate = false;
  if (actionField) {
    const v = actionField.value;
    const text = isScalar(v) && typeof v.value === 'string' ? v.value : undefined;
    if (text === 'allow') spelledAllow = true;
    else if (text === 'evaluate') spelledEvaluate = true;
    else if (text === 'deny') action = 'deny';
    else if (text === 'require_approval') action = 'require_approval';
    else {
      action = undefined;
      // The list predates require_approval (tooling matches the text); a near miss of it is
      // pointed at instead.
      const guess = text === undefined ? undefined : suggest(text, ['require_approval'], 3);
      r.issue(
        actionField.valuePos,
        path,
        guess ? `unknown action ${shown(v)} (did you mean "require_approval"?)` : `action must be "allow", "evaluate" or "deny", got ${shown(v)}`,
      );
    }
  }
  rule.action = action ?? 'evaluate';
  const approval = action === 'require_approval';

  // name: given, or derived from the rule's place.
  const nameField = f.get('name');
  let name: string | undefined;
  if (nameField) {
    name = nonEmptyString(nameField.value);
    if (name === undefined) r.issue(nameField.valuePos, path, `name must be a non-empty string, got ${shown(nameField.value)}`);
    else result.nameAt = nameField.valuePos;
  }
  rule.name = name ?? `${ctx.tool}#${ctx.index + 1}`;

  // on_deny / reason: the same field in two spellings.
  const onDeny = f.get('on_deny');
  const reason = f.get('reason');
  if (onDeny && reason) r.issue(later(onDeny, reason).keyPos, path, 'use either on_deny or reason, not both');
  for (const field of [onDeny, reason]) {
    if (!field) continue;
    const text = nonEmptyString(field.value);
    if (text === undefined) r.issue(field.valuePos, path, `${field.key} must be a non-empty string`);
    else rule.message ??= text;
  }

  // conditions
  const conditionsField = f.get('conditions');
  let conditionCount = 0;
  const conditions: { condition: Condition; path: string }[] = [];
  if (conditionsField && !isNull(conditionsField.value)) {
    const list = conditionsField.value;
    if (!isSeq(list)) {
      conditionCount = 1; // written, even if wrongly: don't also say it is missing
      r.issue(conditionsField.valuePos, path, `conditions must be a list, got ${shown(list)}`);
    } else {
      conditionCount = list.items.length;
      list.items.forEach((item, j) => {
        const cpath = `${path}.conditions[${j}]`;
        const condition = readCondition(r, r.resolve(item), item, cpath);
        if (condition) conditions.push({ condition, path: cpath });
      });
    }
  }

  // A require_approval rule only asks; what it may not carry is reported, not read.
  if (approval) {
    for (const key of NOT_WITH_APPROVAL) {
      const field = f.get(key);
      if (field) r.issue(field.keyPos, path, `${key} cannot be used with action "require_approval"; put it in a rule of its own`);
    }
    const settings = readApproval(r, f, path, result.warnings);
    if (settings) rule.approval = settings;
  } else if (action !== undefined) {
    for (const key of APPROVAL_KEYS) {
      const field = f.get(key);
      if (!field) continue;
      const hint = key === 'scope' ? ' (a counter\'s scope goes inside its rate_limit or state map)' : '';
      r.issue(field.keyPos, path, `${key} can only be used with action "require_approval"${hint}`);
    }
  }

  // state / rate_limit: at most one counter per rule.
  const stateField = approval ? undefined : f.get('state');
  const rateField = approval ? undefined : f.get('rate_limit');
  const keyField = approval ? undefined : f.get('key');
  if (stateField) {
    const counter = readState(r, stateField, path, ctx.owner);
    if (counter) {
      rule.counter = counter;
      result.counterKind = 'state';
    }
  }
  let shorthand = false;
  if (rateField) {
    const v = rateField.value;
    if (isScalar(v) && typeof v.value === 'string') {
      shorthand = true;
      if (conditionCount > 0 || stateField) {
        r.issue(
          rateField.keyPos,
          path,
          'rate_limit cannot be combined with conditions or state; use separate rules or the full syntax instead',
        );
      }
      const parsed = parseShorthand(v.value);
      // The string has no room for a key, so the rule carries it.
      const key = keyField && !stateField ? readKey(r, keyField, path) : undefined;
      if (!parsed.ok) r.issue(rateField.valuePos, path, parsed.message);
      else if (!stateField) {
        rule.counter = {
          name: `_rate_${parsed.unit}`,
          owner: ctx.owner,
          window: { kind: 'calendar', unit: parsed.unit },
          scope: 'global',
          increment: 1,
          limits: [{ value: parsed.count, inclusive: true }],
          pos: rateField.valuePos,
        };
        if (key) rule.counter.key = key;
        result.counterKind = 'shorthand';
      }
    } else if (isMap(v)) {
      if (stateField) r.issue(rateField.keyPos, path, 'rate_limit cannot be combined with state');
      const counter = readRollingLimit(r, v, `${path}.rate_limit`, ctx.owner, rule.name);
      if (counter && !stateField) {
        rule.counter = counter;
        result.counterKind = 'rolling';
      }
    } else {
      r.issue(
        rateField.valuePos,
        path,
        `rate_limit must be a string like "5/hour" or a map with max and window, got ${shown(v)}`,
      );
    }
  }

  // A rule-level key belongs to a rate_limit string; anywhere else, say where it goes.
  if (keyField) {
    const rateKind = rateField === undefined ? undefined : isMap(rateField.value) ? 'map' : isScalar(rateField.value) && typeof rateField.value.value === 'string' ? 'string' : 'other';
    let misplaced: string | undefined;
    if (stateField) misplaced = 'key belongs inside the state block: state: {counter, window, key}';
    else if (rateKind === 'map') misplaced = 'key belongs inside the rate_limit map: rate_limit: {max, window, key}';
    else if (rateKind === undefined) {
      misplaced = 'key needs a counter: write it next to a rate_limit string ("5/hour"), or inside a rate_limit or state map';
    }
    if (misplaced) r.issue(keyField.keyPos, path, misplaced);
  }

  // validate
  const validateField = approval ? undefined : f.get('validate');
  if (validateField) {
    const validation = readValidate(r, validateField, path);
    if (validation) rule.validate = validation;
  }

  // What each action may carry.
  if (action === 'deny') {
    if (conditionCount > 0 && conditionsField) {
      // "Deny these callers" is the likeliest reason to write one: say how it is written.
      const onCaller = conditions.some((c) => c.condition.path.startsWith('identity.'));
      const hint = onCaller ? ' (to let only some callers through, write action: allow with the identity condition: a call that does not meet it is denied)' : '';
      r.issue(conditionsField.keyPos, path, `deny rules must not have conditions${hint}`);
    }
    if (rateField) r.issue(rateField.keyPos, path, 'rate_limit cannot be used with action "deny"');
    if (stateField) r.issue(stateField.keyPos, path, 'state cannot be used with action "deny"');
    if (validateField) r.issue(validateField.keyPos, path, 'validate cannot be used with action "deny"');
  } else if (action === 'evaluate' && !spelledAllow) {
    if (conditionCount === 0 && !rateField && !stateField && !validateField) {
      r.issue(pos, path, 'evaluate rules must have at least one condition (or a rate_limit, state or validate block)');
    }
  }
  // The v1 spelling requires names; the catalogue spelling derives them. Conditions are v1
  // spelling, except on a require_approval rule: there only a v1 file (`version: "1"`) asks for
  // a name.
  const hasConditions = conditionsField !== undefined && !isNull(conditionsField.value);
  const v1Only = (hasConditions && (!approval || ctx.v1 === true)) || stateField || shorthand || spelledEvaluate;
  if (v1Only && !nameField) r.issue(pos, path, 'rule must have a name');

  // A `lte`/`lt` condition on the rule's own counter is its limit, not a condition.
  const counter = rule.counter;
  const own =
    counter && result.counterKind === 'state'
      ? [`state.${counter.owner}.${counter.name}`, ...(counter.owner === GLOBAL_OWNER ? [`state.*.${counter.name}`] : [])]
      : [];
  for (const c of conditions) {
    const { condition } = c;
    if (counter && own.includes(condition.path) && (condition.op === 'lte' || condition.op === 'lt')) {
      counter.limits.push({ value: condition.value as number, inclusive: condition.op === 'lte' });
      continue;
    }
    rule.conditions.push(condition);
    if (condition.path.startsWith('state.')) result.reads.push(c);
  }
  return result;
}

function readValidate(r: Reader, field: Field, rulePath: string): Validation | undefined {
  const node = field.value;
  const path = `${rulePath}.validate`;
  if (isNull(node)) {
    r.issue(field.valuePos, path, 'validate needs required_args: true or schema: true');
    return undefined;
  }
  if (!isMap(node)) {
    r.issue(field.valuePos, path, `validate must be a map with required_args and/or schema, got ${shown(node)}`);
    return undefined;
  }
  const before = r.issues.length;
  const f = r.fields(node, path, VALIDATE_KEYS);
  const flag = (key: string): boolean => {
    const entry = f.get(key);
    if (!entry) return false;
    const v = entry.value;
    if (isScalar(v) && typeof v.value === 'boolean') return v.value;
    r.issue(entry.valuePos, path, `${key} must be true or false, got ${shown(v)}`);
    return false;
  };
  const validation: Validation = { requiredArgs: flag('required_args'), schema: flag('schema') };
  if (r.issues.length > before) return undefined;
  if (!validation.requiredArgs && !validation.schema) {
    r.issue(r.posOf(node), path, 'validate needs required_args: true or schema: true');
    return undefined;
  }
  return validation;
}
