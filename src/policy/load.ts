// Policy file -> normalised Policy: the entry points, the top level, `hide:`, `tools:` and
// `classes:`. Rules, conditions, counters and `audit:` are read by load-rules, -conditions,
// -counters and -audit.ts.
import { readFile } from 'node:fs/promises';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { AUDIT_LISTS_TOOL_WARNING, checkToolAudit, readAudit, type ParsedAudit } from './load-audit.js';
import { limitProblem } from './limits.js';
import { readRule, type ParsedRule, type StateRead } from './load-rules.js';
import {
  classOwner,
  GLOBAL_OWNER,
  TOOL_CLASSES,
  type LoadResult,
  type Policy,
  type PolicyIssue,
  type Rule,
  type SourcePos,
  type ToolClass,
  type ToolPolicy,
} from './model.js';
import { TOOL_KEYS, TOP_KEYS } from './spelling.js';
import { suggest } from './suggest.js';
import { isNull, Reader, scalarText, shown, yamlMessage, type Field } from './yaml-reader.js';
import { parseSimpleYaml } from './yaml-simple.js';

// `audit` is a word of both spellings, at the top level and under every tool key.
const TOP_LEVEL_KEYS: readonly string[] = [...TOP_KEYS, 'audit'];
const TOOL_ENTRY_KEYS: readonly string[] = [...TOOL_KEYS, 'audit'];

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
  const limit = limitProblem(source);
  if (limit) {
    const lineCounter = new LineCounter();
    lineCounter.addNewLine(0);
    for (let at = source.indexOf('\n'); at !== -1 && at < limit.offset; at = source.indexOf('\n', at + 1)) lineCounter.addNewLine(at + 1);
    const r = new Reader(file, undefined, lineCounter);
    r.issue(r.pos(limit.offset), '', limit.message);
    return r.fail();
  }
  // Most policies are written in a plain subset of YAML that yaml-simple.ts reads many times
  // faster than yaml does, into the same tree; anything else is yaml's.
  const simple = parseSimpleYaml(source);
  let r: Reader;
  let contents: unknown;
  if (simple) {
    r = new Reader(file, undefined, simple.lineCounter);
    contents = simple.contents;
  } else {
    const lineCounter = new LineCounter();
    // Duplicate keys are detected while walking, to name the key and its first line.
    const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: false });
    r = new Reader(file, doc, lineCounter);
    if (doc.errors.length > 0) {
      // The tree of a malformed document is a guess; checking it would only add noise.
      for (const error of doc.errors) r.issue(r.pos(error.pos[0]), '', yamlMessage(error));
      return r.fail();
    }
    contents = doc.contents;
  }
  const root = r.resolve(contents);
  if (root === undefined || isNull(root)) {
    r.issue({ file, line: 1, col: 1 }, '', 'policy file is empty');
    return r.fail();
  }
  if (!isMap(root)) {
    r.issue(r.posOf(root), '', `policy must be a map of version, default, hide and tools, got ${shown(root)}`);
    return r.fail();
  }

  const policy: Policy = { source: file, defaultAction: 'allow', hide: [], tools: [] };
  const fields = r.fields(root, '', TOP_LEVEL_KEYS);

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
  if (hide) {
    const read = readHide(r, hide);
    policy.hide = read.names;
    policy.hidePos = read.pos;
  }

  const auditField = fields.get('audit');
  const topAudit = auditField ? readAudit(r, auditField, 'audit') : undefined;
  if (topAudit) policy.audit = topAudit.settings;

  const v1 = policy.version === '1';
  const warnings: PolicyIssue[] = [];
  const context: ToolContext = { v1, topAudit, defaultDeny: policy.defaultAction === 'deny' };
  const tools = fields.get('tools');
  const reads: StateRead[] = [];
  const counters = new Map<string, Set<string>>();
  if (tools && !isNull(tools.value)) {
    if (!isMap(tools.value)) {
      r.issue(tools.valuePos, '', `tools must be a map of tool names to rules, got ${shown(tools.value)}`);
    } else {
      for (const entry of r.fields(tools.value, 'tools').values()) {
        const tool = readTool(r, entry, context);
        if (!tool) continue;
        if (tool.policy.name === '*') policy.wildcard = tool.policy;
        else policy.tools.push(tool.policy);
        reads.push(...tool.reads);
        warnings.push(...tool.warnings);
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
        const tool = readTool(r, entry, context, { path: `classes.${entry.key}`, owner });
        if (!tool) continue;
        policy.classes.push(tool.policy);
        reads.push(...tool.reads);
        warnings.push(...tool.warnings);
        noteCounters(counters, tool.policy.rules);
      }
    }
  }
  checkStateReads(r, reads, counters);

  if (r.issues.length > 0) return r.fail();
  if (warnings.length === 0) return { ok: true, policy };
  warnings.sort((a, b) => a.line - b.line || a.col - b.col);
  return { ok: true, policy, warnings };
}

/** `tools.create_issue`, or `tools["a.b"]` when the name would make the path ambiguous. */
function toolPath(name: string): string {
  return /^[^\s.[\]"'`]+$/.test(name) ? `tools.${name}` : `tools[${JSON.stringify(name)}]`;
}

// ---------------------------------------------------------------------------------------------
// hide

function readHide(r: Reader, field: Field): { names: string[]; pos: SourcePos[] } {
  const node = field.value;
  const names: string[] = [];
  const pos: SourcePos[] = [];
  if (isNull(node)) return { names, pos };
  if (!isSeq(node)) {
    r.issue(field.valuePos, '', 'hide must be a list of tool names');
    return { names, pos };
  }
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
    else {
      names.push(name);
      pos.push(at);
    }
  });
  return { names, pos };
}

// ---------------------------------------------------------------------------------------------
// tools

interface ParsedTool {
  policy: ToolPolicy;
  reads: StateRead[];
  warnings: PolicyIssue[];
}

/** What every tool entry is read against. */
interface ToolContext {
  /** The file says `version: "1"`. */
  v1: boolean;
  /** The top-level `audit`, which a key's own adds to. */
  topAudit: ParsedAudit | undefined;
  defaultDeny: boolean;
}

/** A tool entry (`tools.<name>`), or with `under` a class entry (`classes.<class>`). */
function readTool(r: Reader, entry: Field, context: ToolContext, under?: { path: string; owner: string }): ParsedTool | undefined {
  const { v1 } = context;
  const name = entry.key;
  const path = under?.path ?? toolPath(name);
  if (name === '') {
    r.issue(entry.keyPos, path, 'tool name must not be empty');
    return undefined;
  }
  const owner = under?.owner ?? (name === '*' ? GLOBAL_OWNER : name);
  const policy: ToolPolicy = { name, rules: [], pos: entry.keyPos };
  const parsed: ParsedRule[] = [];
  const warnings: PolicyIssue[] = [];
  const node = entry.value;

  if (isMap(node)) {
    const fields = r.fields(node, path, TOOL_ENTRY_KEYS);
    const rules = fields.get('rules');
    const audit = fields.get('audit');
    const wildcard = name === '*' && !under;
    if (audit) readToolAudit(r, audit, path, wildcard, context, policy);
    if (audit && !rules && !wildcard && context.defaultDeny) {
      const at = audit.keyPos;
      warnings.push({ file: at.file, line: at.line, col: at.col, path, message: AUDIT_LISTS_TOOL_WARNING });
    }
    if (rules && !isNull(rules.value)) {
      if (!isSeq(rules.value)) {
        r.issue(rules.valuePos, path, `rules must be a list, got ${shown(rules.value)}`);
      } else {
        rules.value.items.forEach((item, i) => {
          const rule = readRule(r, r.resolve(item), item, { tool: under ? owner : name, owner, index: i, path: `${path}.rules[${i}]`, v1 });
          if (rule) parsed.push(rule);
        });
      }
    }
  } else if (!isNull(node)) {
    r.issue(entry.valuePos, path, `tool entry must be a map with a "rules" list, got ${shown(node)}`);
  }

  checkDuplicates(r, parsed);
  policy.rules = parsed.map((p) => p.rule);
  return { policy, reads: parsed.flatMap((p) => p.reads), warnings: [...warnings, ...parsed.flatMap((p) => p.warnings)] };
}

/** A key's own `audit`; under `"*"` it would only repeat the top level's, so it is refused. */
function readToolAudit(r: Reader, field: Field, toolPath: string, wildcard: boolean, context: ToolContext, into: ToolPolicy): void {
  if (wildcard) {
    r.issue(field.keyPos, toolPath, 'audit cannot be used under "*"; write it at the top level, where it applies to every tool');
    return;
  }
  const audit = readAudit(r, field, `${toolPath}.audit`);
  if (!audit) return;
  checkToolAudit(r, audit, context.topAudit);
  into.audit = audit.settings;
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
