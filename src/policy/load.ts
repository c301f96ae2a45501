// Policy file -> normalised Policy. Walks the YAML node tree rather than plain data so that
// every issue carries the line and column of the node at fault, and collects every issue
// instead of stopping at the first: a policy is fixed in one pass, not one error at a time.
import { readFile } from 'node:fs/promises';
import { compileRegex } from '../engine/regex.js';
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Document,
  type Scalar,
  type YAMLError,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import { parseDuration } from './durations.js';
import {
  classOwner,
  GLOBAL_OWNER,
  OPERATORS,
  TOOL_CLASSES,
  type Condition,
  type Counter,
  type CounterKey,
  type LoadResult,
  type Operator,
  type Policy,
  type PolicyIssue,
  type PolicyValue,
  type Rule,
  type Scope,
  type SourcePos,
  type ToolClass,
  type ToolPolicy,
  type Validation,
} from './model.js';
import {
  CONDITION_KEYS,
  isCalendarUnit,
  parseShorthand,
  RATE_LIMIT_KEYS,
  RULE_KEYS,
  STATE_KEYS,
  TOOL_KEYS,
  TOP_KEYS,
  VALIDATE_KEYS,
} from './spelling.js';
import { suggest } from './suggest.js';

/** Reads and parses a policy file; a read failure is reported as an issue, not thrown. */
export async function loadPolicyFile(path: string): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { ok: false, issues: [{ file: path, line: 1, col: 1, path: '', message: `cannot read policy file: ${reason}` }] };
  }
  return parsePolicy(text, path);
}

/** Records, per owner, the counters its rules define (for checking `state.` references). */
function noteCounters(counters: Map<string, Set<string>>, rules: readonly Rule[]): void {
  for (const rule of rules) {
    if (!rule.counter) continue;
    const names = counters.get(rule.counter.owner) ?? new Set<string>();
    names.add(rule.counter.name);
    counters.set(rule.counter.owner, names);
  }
}

/** Parses policy text. Pure: `file` is only used in positions and messages. */
export function parsePolicy(text: string, file: string): LoadResult {
  // Editors do not count a byte-order mark as a column.
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const lineCounter = new LineCounter();
  // Duplicate keys are detected while walking, to name the key and its first line.
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const r = new Reader(file, doc, lineCounter);

  if (doc.errors.length > 0) {
    // The tree of a malformed document is a guess; checking it would only add noise.
    for (const error of doc.errors) r.issue(r.pos(error.pos[0]), '', yamlMessage(error));
    return r.fail();
  }
  const root = r.resolve(doc.contents);
  if (root === undefined || isNull(root)) {
    r.issue({ file, line: 1, col: 1 }, '', 'policy file is empty');
    return r.fail();
  }
  if (!isMap(root)) {
    r.issue(r.posOf(root), '', `policy must be a map of version, default, hide and tools, got ${shown(root)}`);
    return r.fail();
  }

  const policy: Policy = { source: file, defaultAction: 'allow', hide: [], tools: [] };
  const fields = r.fields(root, '', TOP_KEYS);

  const version = fields.get('version');
  if (version) {
    const v = version.value;
    // `version: 1` is the number 1; accept it, but not `1.0` or `01`.
    if (isScalar(v) && (v.value === '1' || (typeof v.value === 'number' && v.source === '1'))) policy.version = '1';
    else r.issue(version.valuePos, '', `version must be "1", got ${shown(v)}`);
  }

  const description = fields.get('description');
  if (description && !isNull(description.value)) {
    const v = description.value;
    if (isScalar(v) && typeof v.value === 'string') policy.description = v.value;
    else r.issue(description.valuePos, '', `description must be a string, got ${shown(v)}`);
  }

  const defaultField = fields.get('default');
  if (defaultField) {
    const v = defaultField.value;
    if (isScalar(v) && (v.value === 'allow' || v.value === 'deny')) policy.defaultAction = v.value;
    else r.issue(defaultField.valuePos, '', `default must be "allow" or "deny", got ${shown(v)}`);
  }

  const hide = fields.get('hide');
  if (hide) policy.hide = readHide(r, hide);

  const tools = fields.get('tools');
  const reads: StateRead[] = [];
  const counters = new Map<string, Set<string>>();
  if (tools && !isNull(tools.value)) {
    if (!isMap(tools.value)) {
      r.issue(tools.valuePos, '', `tools must be a map of tool names to rules, got ${shown(tools.value)}`);
    } else {
      for (const entry of r.fields(tools.value, 'tools').values()) {
        const tool = readTool(r, entry);
        if (!tool) continue;
        if (tool.policy.name === '*') policy.wildcard = tool.policy;
        else policy.tools.push(tool.policy);
        reads.push(...tool.reads);
        noteCounters(counters, tool.policy.rules);
      }
    }
  }
  const classes = fields.get('classes');
  if (classes && !isNull(classes.value)) {
    if (!isMap(classes.value)) {
      r.issue(classes.valuePos, '', `classes must be a map of risk classes (${TOOL_CLASSES.join(', ')}) to rules, got ${shown(classes.value)}`);
    } else {
      policy.classes = [];
      for (const entry of r.fields(classes.value, 'classes').values()) {
        if (!(TOOL_CLASSES as readonly string[]).includes(entry.key)) {
          const guess = suggest(entry.key, TOOL_CLASSES, 2);
          r.issue(
            entry.keyPos,
            'classes',
            `unknown class ${JSON.stringify(entry.key)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}; classes are ${TOOL_CLASSES.join(', ')}`,
          );
          continue;
        }
        const owner = classOwner(entry.key as ToolClass);
        const tool = readTool(r, entry, { path: `classes.${entry.key}`, owner });
        if (!tool) continue;
        policy.classes.push(tool.policy);
        reads.push(...tool.reads);
        noteCounters(counters, tool.policy.rules);
      }
    }
  }
  checkStateReads(r, reads, counters);

  return r.issues.length > 0 ? r.fail() : { ok: true, policy };
}

// ---------------------------------------------------------------------------------------------
// Reading the YAML tree

type YNode = Scalar | YAMLMap | YAMLSeq;

interface Field {
  key: string;
  keyPos: SourcePos;
  /** Aliases resolved; undefined for a key with no value node at all (`? key`). */
  value: YNode | undefined;
  /** Where the value was written, or the key when the value is blank (`counter:`). */
  valuePos: SourcePos;
}

class Reader {
  readonly issues: PolicyIssue[] = [];

  constructor(
    private readonly file: string,
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
  ) {}

  pos(offset: number): SourcePos {
    const { line, col } = this.lineCounter.linePos(offset);
    return { file: this.file, line, col };
  }

  posOf(node: { range?: readonly [number, number, number] | null } | null | undefined): SourcePos {
    return this.pos(node?.range?.[0] ?? 0);
  }

  issue(at: SourcePos, path: string, message: string): void {
    this.issues.push({ file: this.file, line: at.line, col: at.col, path, message });
  }

  fail(): LoadResult {
    // Stable: issues on one spot keep the order they were found in.
    const issues = [...this.issues].sort((a, b) => a.line - b.line || a.col - b.col);
    return { ok: false, issues };
  }

  /** Follows aliases (`*name`) to the node they stand for. */
  resolve(node: unknown): YNode | undefined {
    let current = node;
    for (let hops = 0; isAlias(current) && hops < 100; hops++) current = current.resolve(this.doc);
    return isScalar(current) || isMap(current) || isSeq(current) ? current : undefined;
  }

  /** The map's entries by key, in file order. Reports duplicate keys, keys that are not
   * scalars, and (when `known` is given) unknown keys, which are then left out. */
  fields(map: YAMLMap, path: string, known?: readonly string[]): Map<string, Field> {
    const out = new Map<string, Field>();
    for (const pair of map.items) {
      const keyNode = this.resolve(pair.key);
      const keyPos = this.posOf(isAlias(pair.key) ? pair.key : keyNode);
      if (!keyNode || !isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
        this.issue(keyPos, path, 'keys must be plain names');
        continue;
      }
      const key = scalarText(keyNode);
      const first = out.get(key);
      if (first) {
        this.issue(keyPos, path, `duplicate key ${JSON.stringify(key)} (first defined at line ${first.keyPos.line})`);
        continue;
      }
      if (known && !known.includes(key)) {
        // Two edits turn almost any short word into another (`per` into `key`): keep
        // suggestions for words of three letters or fewer to one edit.
        const guess = suggest(key, known, key.length <= 3 ? 1 : 2);
        this.issue(keyPos, path, `unknown key ${JSON.stringify(key)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}`);
        continue;
      }
      const written = pair.value as { range?: readonly [number, number, number] | null } | null;
      const blank = !written?.range || (isScalar(written) && written.value === null && written.range[0] === written.range[1]);
      out.set(key, { key, keyPos, value: this.resolve(pair.value), valuePos: blank ? keyPos : this.posOf(written) });
    }
    return out;
  }
}

function isNull(node: YNode | undefined): boolean {
  return node === undefined || (isScalar(node) && node.value === null);
}

/** A scalar as the user wrote it (`1.0` stays `1.0`). */
function scalarText(node: Scalar): string {
  if (typeof node.value === 'string') return node.value;
  if (node.value === null) return '';
  return typeof node.source === 'string' ? node.source : String(node.value);
}

/** A value for `got ...` in messages. */
function shown(node: YNode | undefined): string {
  if (node === undefined) return '""';
  if (isScalar(node)) return JSON.stringify(scalarText(node));
  return isSeq(node) ? 'a list' : 'a map';
}

function nonEmptyString(node: YNode | undefined): string | undefined {
  return isScalar(node) && typeof node.value === 'string' && node.value.trim() !== '' ? node.value : undefined;
}

/** String, finite number, boolean or null; undefined for anything else (lists, maps, dates,
 * binary, infinities). */
function plainScalar(node: YNode | undefined): { value: PolicyValue } | undefined {
  if (!isScalar(node)) return undefined;
  const v = node.value;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return { value: v };
  if (typeof v === 'number' && Number.isFinite(v)) return { value: v };
  return undefined;
}

function finiteNumber(node: YNode | undefined): number | undefined {
  return isScalar(node) && typeof node.value === 'number' && Number.isFinite(node.value) ? node.value : undefined;
}

function yamlMessage(error: YAMLError): string {
  if (error.code === 'MULTIPLE_DOCS') return 'policy file must hold a single YAML document';
  return `invalid YAML: ${error.message}`;
}

/** `tools.create_issue`, or `tools["a.b"]` when the name would make the path ambiguous. */
function toolPath(name: string): string {
  return /^[^\s.[\]"'`]+$/.test(name) ? `tools.${name}` : `tools[${JSON.stringify(name)}]`;
}

/** The later of two fields, to point at the one that conflicts with the first. */
function later(a: Field, b: Field): Field {
  return a.keyPos.line > b.keyPos.line || (a.keyPos.line === b.keyPos.line && a.keyPos.col > b.keyPos.col) ? a : b;
}

// ---------------------------------------------------------------------------------------------
// hide

function readHide(r: Reader, field: Field): string[] {
  const node = field.value;
  if (isNull(node)) return [];
  if (!isSeq(node)) {
    r.issue(field.valuePos, '', 'hide must be a list of tool names');
    return [];
  }
  const names: string[] = [];
  node.items.forEach((item, i) => {
    const entry = r.resolve(item);
    const at = r.posOf(isAlias(item) ? item : entry ?? node);
    if (entry !== undefined && !isScalar(entry)) {
      r.issue(at, `hide[${i}]`, `entry must be a tool name, got ${shown(entry)}`);
      return;
    }
    const name = entry === undefined ? '' : scalarText(entry);
    if (name.trim() === '') r.issue(at, `hide[${i}]`, 'entry must not be empty');
    else if (names.includes(name)) r.issue(at, 'hide', `duplicate entry ${JSON.stringify(name)}`);
    else names.push(name);
  });
  return names;
}

// ---------------------------------------------------------------------------------------------
// tools

/** A `state.X.Y` condition that reads a counter (not a limit folded into its own counter). */
interface StateRead {
  condition: Condition;
  /** The condition's issue path. */
  path: string;
}

interface ParsedTool {
  policy: ToolPolicy;
  reads: StateRead[];
}

/** A tool entry (`tools.<name>`), or with `under` a class entry (`classes.<class>`). */
function readTool(r: Reader, entry: Field, under?: { path: string; owner: string }): ParsedTool | undefined {
  const name = entry.key;
  const path = under?.path ?? toolPath(name);
  if (name === '') {
    r.issue(entry.keyPos, path, 'tool name must not be empty');
    return undefined;
  }
  const owner = under?.owner ?? (name === '*' ? GLOBAL_OWNER : name);
  const policy: ToolPolicy = { name, rules: [], pos: entry.keyPos };
  const parsed: ParsedRule[] = [];
  const node = entry.value;

  if (isMap(node)) {
    const rules = r.fields(node, path, TOOL_KEYS).get('rules');
    if (rules && !isNull(rules.value)) {
      if (!isSeq(rules.value)) {
        r.issue(rules.valuePos, path, `rules must be a list, got ${shown(rules.value)}`);
      } else {
        rules.value.items.forEach((item, i) => {
          const rule = readRule(r, r.resolve(item), item, { tool: under ? owner : name, owner, index: i, path: `${path}.rules[${i}]` });
          if (rule) parsed.push(rule);
        });
      }
    }
  } else if (!isNull(node)) {
    r.issue(entry.valuePos, path, `tool entry must be a map with a "rules" list, got ${shown(node)}`);
  }

  checkDuplicates(r, parsed);
  policy.rules = parsed.map((p) => p.rule);
  return { policy, reads: parsed.flatMap((p) => p.reads) };
}

/** Rule names and counters must be unique within one tool. */
function checkDuplicates(r: Reader, rules: ParsedRule[]): void {
  const names = new Map<string, number>();
  const counters = new Map<string, number>();
  for (const p of rules) {
    const firstName = names.get(p.rule.name);
    if (firstName === undefined) names.set(p.rule.name, p.index);
    else r.issue(p.nameAt ?? p.rule.pos, p.path, `duplicate rule name ${JSON.stringify(p.rule.name)} (also used by rules[${firstName}])`);

    // Rolling counters are named after their (unique) rule, so only v1 counters can clash.
    if (!p.rule.counter || p.counterKind === 'rolling') continue;
    const firstCounter = counters.get(p.rule.counter.name);
    if (firstCounter === undefined) counters.set(p.rule.counter.name, p.index);
    else r.issue(p.rule.counter.pos, p.path, `duplicate state counter ${JSON.stringify(p.rule.counter.name)} (also used by rules[${firstCounter}])`);
  }
}

/** Every counter a condition reads must be defined by some rule's state block (or rate_limit). */
function checkStateReads(r: Reader, reads: StateRead[], counters: Map<string, Set<string>>): void {
  for (const { condition, path } of reads) {
    const rest = condition.path.slice('state.'.length);
    const dot = rest.indexOf('.');
    const scope = rest.slice(0, dot);
    const counter = rest.slice(dot + 1);
    const owner = scope === '*' ? GLOBAL_OWNER : scope;
    if (!counters.get(owner)?.has(counter)) {
      r.issue(condition.pos, path, `condition references state.${scope}.${counter} but no matching state block found`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// rules

interface RuleContext {
  tool: string;
  owner: string;
  /** 0-based position in the tool's rule list. */
  index: number;
  path: string;
}

interface ParsedRule {
  rule: Rule;
  index: number;
  path: string;
  nameAt?: SourcePos;
  counterKind?: 'state' | 'shorthand' | 'rolling';
  reads: StateRead[];
}

function readRule(r: Reader, node: YNode | undefined, written: unknown, ctx: RuleContext): ParsedRule | undefined {
  const { path } = ctx;
  if (!isMap(node)) {
    const at = r.posOf(isAlias(written) ? written : node);
    r.issue(at, path, `rule must be a map, got ${shown(node)}`);
    return undefined;
  }
  const pos = r.posOf(node);
  const f = r.fields(node, path, RULE_KEYS);
  const result: ParsedRule = { rule: { name: '', action: 'evaluate', conditions: [], pos }, index: ctx.index, path, reads: [] };
  const rule = result.rule;

  // action: `allow` (catalogue) and `evaluate` (v1) are one thing.
  const actionField = f.get('action');
  let action: 'evaluate' | 'deny' | undefined = 'evaluate';
  let spelledAllow = false;
  let spelledEvaluate = false;
  if (actionField) {
    const v = actionField.value;
    const text = isScalar(v) && typeof v.value === 'string' ? v.value : undefined;
    if (text === 'allow') spelledAllow = true;
    else if (text === 'evaluate') spelledEvaluate = true;
    else if (text === 'deny') action = 'deny';
    else {
      action = undefined;
      r.issue(
        actionField.valuePos,
        path,
        text === 'require_approval'
          ? 'action "require_approval" is not supported yet (approvals arrive in a later version)'
          : `action must be "allow", "evaluate" or "deny", got ${shown(v)}`,
      );
    }
  }
  rule.action = action ?? 'evaluate';

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

  // state / rate_limit: at most one counter per rule.
  const stateField = f.get('state');
  const rateField = f.get('rate_limit');
  const keyField = f.get('key');
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
  const validateField = f.get('validate');
  if (validateField) {
    const validation = readValidate(r, validateField, path);
    if (validation) rule.validate = validation;
  }

  // What each action may carry.
  if (action === 'deny') {
    if (conditionCount > 0 && conditionsField) r.issue(conditionsField.keyPos, path, 'deny rules must not have conditions');
    if (rateField) r.issue(rateField.keyPos, path, 'rate_limit cannot be used with action "deny"');
    if (stateField) r.issue(stateField.keyPos, path, 'state cannot be used with action "deny"');
    if (validateField) r.issue(validateField.keyPos, path, 'validate cannot be used with action "deny"');
  } else if (action === 'evaluate' && !spelledAllow) {
    if (conditionCount === 0 && !rateField && !stateField && !validateField) {
      r.issue(pos, path, 'evaluate rules must have at least one condition (or a rate_limit, state or validate block)');
    }
  }
  // The v1 spelling requires names; the catalogue spelling derives them.
  const v1Only = (conditionsField && !isNull(conditionsField.value)) || stateField || shorthand || spelledEvaluate;
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

// ---------------------------------------------------------------------------------------------
// conditions

function readCondition(r: Reader, node: YNode | undefined, written: unknown, path: string): Condition | undefined {
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
    const v = pathField.value;
    const text = isScalar(v) && typeof v.value === 'string' ? v.value : undefined;
    const problem = text === undefined ? `path must start with "args." or "state.", got ${shown(v)}` : checkConditionPath(text);
    if (problem) r.issue(pathField.valuePos, path, problem);
    else conditionPath = text;
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

/** Why a condition path is unusable, or undefined when it is fine. */
function checkConditionPath(path: string): string | undefined {
  const prefix = path.startsWith('args.') ? 'args.' : path.startsWith('state.') ? 'state.' : undefined;
  if (!prefix) return `path must start with "args." or "state.", got ${JSON.stringify(path)}`;
  const segments = path.slice(prefix.length).split('.');
  if (prefix === 'state.' && segments.length < 2) return 'state paths have the form state.<tool>.<counter>';
  if (path === prefix) return `path must name a field after "${prefix}", got ${JSON.stringify(path)}`;
  if (segments.includes('')) return `path must not have empty segments, got ${JSON.stringify(path)}`;
  return undefined;
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

// ---------------------------------------------------------------------------------------------
// state, rate_limit, validate

function readState(r: Reader, field: Field, rulePath: string, owner: string): Counter | undefined {
  const node = field.value;
  const path = `${rulePath}.state`;
  if (!isMap(node)) {
    r.issue(field.valuePos, path, `state must be a map with counter and window, got ${shown(node)}`);
    return undefined;
  }
  const before = r.issues.length;
  const at = r.posOf(node);
  const f = r.fields(node, path, STATE_KEYS);

  const counterField = f.get('counter');
  const name = nonEmptyString(counterField?.value);
  if (name === undefined) r.issue(counterField ? counterField.valuePos : at, path, 'counter must not be empty');

  const windowField = f.get('window');
  const windowNode = windowField?.value;
  const unit = isScalar(windowNode) ? windowNode.value : undefined;
  if (!isCalendarUnit(unit)) {
    r.issue(
      windowField ? windowField.valuePos : at,
      path,
      `window must be "minute", "hour", or "day", got ${shown(windowField?.value)}`,
    );
  }

  const incrementField = f.get('increment');
  let increment = 1;
  if (incrementField) {
    const n = finiteNumber(incrementField.value);
    if (n === undefined || n <= 0) r.issue(incrementField.valuePos, path, 'increment must be a positive number');
    else increment = n;
  }

  const fromField = f.get('increment_from');
  let incrementFrom: string | undefined;
  if (fromField) {
    const v = fromField.value;
    const text = isScalar(v) && typeof v.value === 'string' ? v.value : undefined;
    let problem: string | undefined;
    if (text === undefined || !text.startsWith('args.')) problem = `increment_from must start with "args.", got ${shown(v)}`;
    else if (text === 'args.') problem = `increment_from must name an argument after "args.", got "args."`;
    else if (text.split('.').includes('')) problem = `increment_from must not have empty segments, got ${JSON.stringify(text)}`;
    if (problem) r.issue(fromField.valuePos, path, problem);
    else incrementFrom = text;
  }
  if (incrementField && fromField) {
    r.issue(later(incrementField, fromField).keyPos, path, 'use either increment or increment_from, not both');
  }

  const scope = readScope(r, f.get('scope'), path, 'global');
  const keyField = f.get('key');
  const key = keyField ? readKey(r, keyField, path) : undefined;
  if (r.issues.length > before || name === undefined || !isCalendarUnit(unit)) return undefined;
  const counter: Counter = {
    name,
    owner,
    window: { kind: 'calendar', unit },
    scope,
    increment,
    limits: [],
    pos: at,
  };
  if (incrementFrom !== undefined) counter.incrementFrom = incrementFrom;
  if (key) counter.key = key;
  return counter;
}

/** The catalogue's `rate_limit: {max, window, scope}`: a rolling window, per session by default. */
function readRollingLimit(r: Reader, node: YAMLMap, path: string, owner: string, ruleName: string): Counter | undefined {
  const before = r.issues.length;
  const at = r.posOf(node);
  const f = r.fields(node, path, RATE_LIMIT_KEYS);

  const maxField = f.get('max');
  const max = finiteNumber(maxField?.value);
  if (!maxField) r.issue(at, path, 'max is required');
  else if (max === undefined || max <= 0 || !Number.isSafeInteger(max)) {
    r.issue(maxField.valuePos, path, `max must be a positive integer, got ${shown(maxField.value)}`);
  }

  const windowField = f.get('window');
  let seconds: number | undefined;
  if (!windowField) r.issue(at, path, 'window is required');
  else {
    const v = windowField.value;
    if (isScalar(v) && typeof v.value === 'number') {
      seconds = Number.isSafeInteger(v.value) && v.value > 0 ? v.value : undefined;
    } else if (isScalar(v) && typeof v.value === 'string') {
      seconds = parseDuration(v.value);
    }
    if (seconds === undefined) {
      r.issue(
        windowField.valuePos,
        path,
        `window must be a whole number of seconds or a duration such as "30s", "5m", "1h" or "1d", got ${shown(v)}`,
      );
    }
  }

  const scope = readScope(r, f.get('scope'), path, 'session');
  const keyField = f.get('key');
  const key = keyField ? readKey(r, keyField, path) : undefined;
  if (r.issues.length > before || max === undefined || seconds === undefined) return undefined;
  const counter: Counter = {
    name: `_rate:${ruleName}`,
    owner,
    window: { kind: 'rolling', seconds },
    scope,
    increment: 1,
    limits: [{ value: max, inclusive: true }],
    pos: at,
  };
  if (key) counter.key = key;
  return counter;
}

/** `key: args`, or `key: [args.a, args.b.c]`: what splits a counter into buckets. */
function readKey(r: Reader, field: Field, path: string): CounterKey | undefined {
  const node = field.value;
  if (isScalar(node) && node.value === 'args') return { all: true };
  if (!isSeq(node)) {
    const text = isScalar(node) && typeof node.value === 'string' ? node.value : undefined;
    // One path written without brackets is the likeliest slip; show the fix.
    const hint = text !== undefined && checkArgPath('key', text) === undefined ? ` (write key: [${text}])` : '';
    r.issue(field.valuePos, path, `key must be "args" or a list of "args." paths, got ${shown(node)}${hint}`);
    return undefined;
  }
  if (node.items.length === 0) {
    r.issue(field.valuePos, path, 'key must not be an empty list');
    return undefined;
  }
  const before = r.issues.length;
  const seen = new Map<string, number>();
  node.items.forEach((item, i) => {
    const entry = r.resolve(item);
    const at = r.posOf(isAlias(item) ? item : entry ?? node);
    const label = `key[${i}]`;
    const text = isScalar(entry) && typeof entry.value === 'string' ? entry.value : undefined;
    if (text === undefined) {
      r.issue(at, path, `${label} must start with "args.", got ${shown(entry)}`);
      return;
    }
    const problem = checkArgPath(label, text);
    const first = seen.get(text);
    if (problem !== undefined) {
      const hint = text === 'args' ? ' (write key: args, without brackets, to key by all the arguments)' : '';
      r.issue(at, path, problem + hint);
    } else if (first !== undefined) {
      r.issue(at, path, `duplicate key path ${JSON.stringify(text)} (also key[${first}])`);
    } else {
      seen.set(text, i);
    }
  });
  return r.issues.length > before ? undefined : { paths: [...seen.keys()] };
}

/** Why `text` is not an argument path (the rules of condition paths), or undefined. */
function checkArgPath(what: string, text: string): string | undefined {
  if (!text.startsWith('args.')) return `${what} must start with "args.", got ${JSON.stringify(text)}`;
  if (text === 'args.') return `${what} must name an argument after "args.", got "args."`;
  if (text.split('.').includes('')) return `${what} must not have empty segments, got ${JSON.stringify(text)}`;
  return undefined;
}

function readScope(r: Reader, field: Field | undefined, path: string, fallback: Scope): Scope {
  if (!field) return fallback;
  const v = field.value;
  if (isScalar(v) && (v.value === 'session' || v.value === 'global')) return v.value;
  r.issue(field.valuePos, path, `scope must be "session" or "global", got ${shown(v)}`);
  return fallback;
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
