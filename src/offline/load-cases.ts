// Cases file -> PolicyCase[], every problem reported with its file, line, column and field, as
// the policy loader reports them (its Reader does the walking, so the messages read alike).
// The file is hostile input like any other: its size, its number of cases and calls, and the
// depth and size of every value are bounded, and a value reaches a case only as plain JSON data.
import { readFile, stat } from 'node:fs/promises';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type YAMLMap } from 'yaml';
import type { Identity, ToolCall } from '../engine/types.js';
import { parseDuration } from '../policy/durations.js';
import { TOOL_CLASSES, type PolicyIssue, type SourcePos, type ToolClass } from '../policy/model.js';
import { compileRegex } from '../policy/regex.js';
import { IDENTITY_FIELDS } from '../policy/spelling.js';
import { suggest } from '../policy/suggest.js';
import { finiteNumber, isNull, nonEmptyString, Reader, scalarText, shown, yamlMessage, type Field, type YNode } from '../policy/yaml-reader.js';
import { parseToolCall } from '../proxy/call.js';
import {
  DEFAULT_START,
  TESTABLE_KINDS,
  type CallSpec,
  type CasesFile,
  type CounterPreset,
  type Expectation,
  type MessageMatch,
  type PolicyCase,
  type PriorCalls,
  type TestableKind,
} from './cases.js';

export type CasesLoad = { ok: true; cases: CasesFile } | { ok: false; issues: PolicyIssue[] };

export const LIMITS = {
  fileBytes: 8 * 1024 * 1024,
  cases: 10_000,
  /** `times` of one `before` entry. */
  times: 100_000,
  /** Calls of the whole file, `before` calls included: what one run may cost. */
  calls: 1_000_000,
  /** Nesting of one value (arguments, a schema), as the proxy's default message depth. */
  depth: 64,
  /** YAML nodes of all values together, aliases counted each time they are used. */
  nodes: 1_000_000,
} as const;

const CASE_KEYS = ['name', 'call', 'identity', 'input_schema', 'tool_class', 'counters', 'before', 'at', 'after', 'expect'];
const CALL_KEYS = ['tool', 'args'];
const BEFORE_KEYS = ['tool', 'args', 'identity', 'times', 'after', 'input_schema', 'tool_class'];
const DENY_KEYS = ['kind', 'rule', 'message'];
const APPROVAL_KEYS = ['rule'];
const DECISIONS = ['allow', 'deny', 'approval'] as const;
/** `2024-01-01T09:30:00Z`, seconds and fractions optional, `Z` or an offset required. */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

/** Reads and parses a cases file; a read failure is reported as an issue, not thrown. */
export async function loadCasesFile(path: string): Promise<CasesLoad> {
  const failed = (message: string): CasesLoad => ({ ok: false, issues: [{ file: path, line: 1, col: 1, path: '', message }] });
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile()) return failed('cannot read cases file: not a file');
    if (info.size > LIMITS.fileBytes) return failed(`cases file is larger than ${LIMITS.fileBytes / 1024 / 1024} MiB`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    return failed(`cannot read cases file: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseCases(text, path);
}

/** Parses cases text. Pure: `file` is only used in positions and messages. */
export function parseCases(text: string, file: string): CasesLoad {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const r = new Reader(file, doc, lineCounter);
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      r.issue(r.pos(error.pos[0]), '', error.code === 'MULTIPLE_DOCS' ? 'cases file must hold a single YAML document' : yamlMessage(error));
    }
    return failure(r);
  }
  const root = r.resolve(doc.contents);
  if (root === undefined || isNull(root)) {
    r.issue({ file, line: 1, col: 1 }, '', 'cases file is empty; it needs a "cases" list');
    return failure(r);
  }
  if (!isMap(root)) {
    r.issue(r.posOf(root), '', `cases file must be a map with a "cases" list, got ${shown(root)}`);
    return failure(r);
  }
  const top = r.fields(root, '');
  for (const field of top.values()) {
    // `x-…` keys are the file's own, e.g. to hold an anchor (`x-schema: &schema …`) cases use.
    if (field.key === 'cases' || field.key.startsWith('x-')) continue;
    const guess = suggest(field.key, ['cases'], 2);
    r.issue(field.keyPos, '', `unknown key ${JSON.stringify(field.key)}${guess ? ' (did you mean "cases"?)' : ''}; the file holds "cases" (and x-… keys of your own)`);
  }
  const casesField = top.get('cases');
  const cases: PolicyCase[] = [];
  if (casesField === undefined) {
    r.issue(r.posOf(root), '', 'cases is required: a list of cases, each with a name, a call and what to expect');
  } else if (!isNull(casesField.value)) {
    if (!isSeq(casesField.value)) {
      r.issue(casesField.valuePos, 'cases', `cases must be a list, got ${shown(casesField.value)}`);
    } else if (casesField.value.items.length > LIMITS.cases) {
      r.issue(casesField.valuePos, 'cases', `at most ${LIMITS.cases} cases per file, got ${casesField.value.items.length}`);
    } else {
      const budget = new Budget();
      const names = new Map<string, number>();
      casesField.value.items.forEach((item, i) => {
        const path = `cases[${i}]`;
        const node = r.resolve(item);
        if (!isMap(node)) {
          r.issue(r.posOf(node ?? casesField.value), path, `a case must be a map with name, call and expect, got ${shown(node)}`);
          return;
        }
        const c = readCase(r, node, path, budget);
        if (c === undefined) return;
        const first = names.get(c.name);
        if (first !== undefined) r.issue(c.pos, `${path}.name`, `duplicate case name ${JSON.stringify(c.name)} (first used at line ${first})`);
        else names.set(c.name, c.pos.line);
        cases.push(c);
      });
      const calls = cases.reduce((n, c) => n + 1 + c.before.reduce((m, b) => m + b.times, 0), 0);
      if (calls > LIMITS.calls) r.issue(casesField.valuePos, 'cases', `the cases make ${calls} calls; at most ${LIMITS.calls} per file`);
    }
  }
  if (r.issues.length > 0) return failure(r);
  return { ok: true, cases: { file, cases } };
}

function failure(r: Reader): CasesLoad {
  const result = r.fail();
  return { ok: false, issues: result.ok ? [] : result.issues };
}

/** Counts the YAML nodes turned into values, so an alias used over and over cannot blow up,
 * and remembers what each alias stands for (yaml looks an anchor up anew on every resolve). */
class Budget {
  left: number = LIMITS.nodes;
  private readonly aliases = new Map<unknown, YNode | undefined>();

  resolve(r: Reader, item: unknown): YNode | undefined {
    if (!isAlias(item)) return r.resolve(item);
    if (!this.aliases.has(item)) this.aliases.set(item, r.resolve(item));
    return this.aliases.get(item);
  }
}

function readCase(r: Reader, node: YAMLMap, path: string, budget: Budget): PolicyCase | undefined {
  const before = r.issues.length;
  const at = r.posOf(node);
  const f = r.fields(node, path, CASE_KEYS);

  const nameField = f.get('name');
  const name = nameField ? nonEmptyString(nameField.value) : undefined;
  if (!nameField) r.issue(at, path, 'name is required');
  else if (name === undefined) r.issue(nameField.valuePos, `${path}.name`, `name must be a non-empty string, got ${shown(nameField.value)}`);

  const callField = f.get('call');
  let call: ToolCall | undefined;
  if (!callField) r.issue(at, path, 'call is required: the tool and its args');
  else if (!isMap(callField.value)) r.issue(callField.valuePos, `${path}.call`, `call must be a map with tool and args, got ${shown(callField.value)}`);
  else {
    const cf = r.fields(callField.value, `${path}.call`, CALL_KEYS);
    call = readToolCall(r, cf, r.posOf(callField.value), `${path}.call`, budget);
  }
  const facts = readFacts(r, f, path, budget);
  const identity = readIdentity(r, f.get('identity'), `${path}.identity`, budget);

  const counters: CounterPreset[] = [];
  const countersField = f.get('counters');
  if (countersField && !isNull(countersField.value)) {
    if (!isMap(countersField.value)) {
      r.issue(countersField.valuePos, `${path}.counters`, `counters must be a map of counter ids to values, got ${shown(countersField.value)}`);
    } else {
      for (const entry of r.fields(countersField.value, `${path}.counters`).values()) {
        const value = finiteNumber(entry.value);
        if (entry.key.trim() === '') r.issue(entry.keyPos, `${path}.counters`, 'counter id must not be empty');
        else if (value === undefined || value < 0) {
          r.issue(entry.valuePos, `${path}.counters.${entry.key}`, `a counter value must be a number, 0 or more, got ${shown(entry.value)}`);
        } else counters.push({ id: entry.key, value, pos: entry.keyPos });
      }
    }
  }

  const prior: PriorCalls[] = [];
  const beforeField = f.get('before');
  if (beforeField && !isNull(beforeField.value)) {
    if (!isSeq(beforeField.value)) {
      r.issue(beforeField.valuePos, `${path}.before`, `before must be a list of calls (tool, args, times), got ${shown(beforeField.value)}`);
    } else {
      beforeField.value.items.forEach((item, i) => {
        const entry = readPrior(r, r.resolve(item), `${path}.before[${i}]`, budget, r.posOf(r.resolve(item) ?? beforeField.value));
        if (entry) prior.push(entry);
      });
    }
  }

  const atField = f.get('at');
  let startsAt = DEFAULT_START;
  if (atField) {
    const text = isScalar(atField.value) && typeof atField.value.value === 'string' ? atField.value.value : undefined;
    const ms = text !== undefined && TIMESTAMP.test(text) ? Date.parse(text) : NaN;
    if (Number.isFinite(ms)) startsAt = ms;
    else r.issue(atField.valuePos, `${path}.at`, `at must be a time such as "2024-01-01T09:00:00Z" (with Z or an offset), got ${shown(atField.value)}`);
  }
  const afterMs = readAfter(r, f.get('after'), `${path}.after`);

  const expectField = f.get('expect');
  let expect: Expectation | undefined;
  if (!expectField) r.issue(at, path, 'expect is required: allow, deny or approval');
  else expect = readExpect(r, expectField, `${path}.expect`);

  if (r.issues.length > before || name === undefined || call === undefined || expect === undefined) return undefined;
  const timed = atField !== undefined || f.has('after') || prior.some((p) => p.afterMs > 0);
  return { name, call, ...facts, ...(identity && { identity }), counters, before: prior, startsAt, afterMs, timed, expect, pos: nameField!.keyPos };
}

function readPrior(r: Reader, node: YNode | undefined, path: string, budget: Budget, at: SourcePos): PriorCalls | undefined {
  if (!isMap(node)) {
    r.issue(at, path, `a call before must be a map with tool and args (and times, after), got ${shown(node)}`);
    return undefined;
  }
  const before = r.issues.length;
  const f = r.fields(node, path, BEFORE_KEYS);
  const call = readToolCall(r, f, r.posOf(node), path, budget);
  const facts = readFacts(r, f, path, budget);
  const identity = readIdentity(r, f.get('identity'), `${path}.identity`, budget);
  const timesField = f.get('times');
  let times = 1;
  if (timesField) {
    const n = finiteNumber(timesField.value);
    if (n !== undefined && Number.isInteger(n) && n >= 1 && n <= LIMITS.times) times = n;
    else r.issue(timesField.valuePos, `${path}.times`, `times must be a whole number from 1 to ${LIMITS.times}, got ${shown(timesField.value)}`);
  }
  const afterMs = readAfter(r, f.get('after'), `${path}.after`);
  if (r.issues.length > before || call === undefined) return undefined;
  return { call, ...facts, ...(identity && { identity }), times, afterMs, pos: r.posOf(node) };
}

/** `tool` and `args`, checked as the proxy checks a tools/call. */
function readToolCall(r: Reader, f: Map<string, Field>, at: SourcePos, path: string, budget: Budget): ToolCall | undefined {
  const toolField = f.get('tool');
  const tool = toolField ? nonEmptyString(toolField.value) : undefined;
  if (!toolField) r.issue(at, path, 'tool is required');
  else if (tool === undefined) r.issue(toolField.valuePos, `${path}.tool`, `tool must be a tool name, got ${shown(toolField.value)}`);
  const argsField = f.get('args');
  let args: unknown = {};
  if (argsField && !isNull(argsField.value)) {
    if (!isMap(argsField.value)) {
      r.issue(argsField.valuePos, `${path}.args`, `args must be a map of argument names to values, got ${shown(argsField.value)}`);
      return undefined;
    }
    args = jsonValue(r, argsField.value, `${path}.args`, 0, budget);
  }
  if (tool === undefined || args === undefined) return undefined;
  const parsed = parseToolCall({ name: tool, arguments: args });
  if (!parsed.ok) {
    r.issue(argsField?.valuePos ?? at, `${path}.args`, parsed.message.replace(/^tools\/call /, ''));
    return undefined;
  }
  return parsed.call;
}

/** `input_schema` and `tool_class`: what the server's tools/list would say of the tool. */
function readFacts(r: Reader, f: Map<string, Field>, path: string, budget: Budget): Pick<CallSpec, 'inputSchema' | 'toolClass'> {
  const out: Pick<CallSpec, 'inputSchema' | 'toolClass'> = {};
  const schemaField = f.get('input_schema');
  if (schemaField) {
    if (!isMap(schemaField.value)) {
      r.issue(schemaField.valuePos, `${path}.input_schema`, `input_schema must be the tool's inputSchema (a JSON Schema map), got ${shown(schemaField.value)}`);
    } else {
      const schema = jsonValue(r, schemaField.value, `${path}.input_schema`, 0, budget);
      if (schema !== undefined) out.inputSchema = schema as Record<string, unknown>;
    }
  }
  const classField = f.get('tool_class');
  if (classField) {
    const text = isScalar(classField.value) ? scalarText(classField.value) : '';
    if ((TOOL_CLASSES as readonly string[]).includes(text)) out.toolClass = text as ToolClass;
    else r.issue(classField.valuePos, `${path}.tool_class`, `tool_class must be one of ${TOOL_CLASSES.join(', ')}, got ${shown(classField.value)}`);
  }
  return out;
}

/** `identity: {sub, client_id, scopes, claims}`: who makes the call, as the proxy's `--identity`
 * says it (an empty map or `null`: an anonymous caller). Undefined when absent or wrong. */
function readIdentity(r: Reader, field: Field | undefined, path: string, budget: Budget): Identity | undefined {
  if (field === undefined) return undefined;
  const v = field.value;
  const identity: Identity = { scopes: [], claims: {} };
  if (isNull(v)) return identity;
  if (!isMap(v)) {
    r.issue(field.valuePos, path, `identity must be a map with sub, client_id, scopes and claims, got ${shown(v)}`);
    return undefined;
  }
  const before = r.issues.length;
  const f = r.fields(v, path, IDENTITY_FIELDS);
  for (const key of ['sub', 'client_id'] as const) {
    const entry = f.get(key);
    if (entry === undefined) continue;
    const text = nonEmptyString(entry.value);
    if (text !== undefined) identity[key] = text;
    else {
      const quote = isScalar(entry.value) && typeof entry.value.value === 'number' ? ' (quote a number: "42")' : '';
      r.issue(entry.valuePos, `${path}.${key}`, `${key} must be a non-empty string, got ${shown(entry.value)}${quote}`);
    }
  }
  const scopes = f.get('scopes');
  if (scopes !== undefined && !isNull(scopes.value)) {
    const list = scopes.value;
    if (!isSeq(list)) {
      const hint = isScalar(list) && typeof list.value === 'string' ? `, e.g. [${list.value.trim().split(/\s+/).join(', ')}]` : '';
      r.issue(scopes.valuePos, `${path}.scopes`, `scopes must be a list of scopes${hint}, got ${shown(list)}`);
    } else {
      list.items.forEach((item, i) => {
        const node = budget.resolve(r, item);
        const scope = nonEmptyString(node);
        if (scope !== undefined && !/\s/.test(scope)) identity.scopes.push(scope);
        else r.issue(r.posOf(node ?? list), `${path}.scopes[${i}]`, `a scope must be one word (no spaces), got ${shown(node)}`);
      });
    }
  }
  const claims = f.get('claims');
  if (claims !== undefined && !isNull(claims.value)) {
    if (!isMap(claims.value)) r.issue(claims.valuePos, `${path}.claims`, `claims must be a map of claim names to values, got ${shown(claims.value)}`);
    else {
      const value = jsonValue(r, claims.value, `${path}.claims`, 0, budget);
      if (value !== undefined) identity.claims = value as Record<string, unknown>;
    }
  }
  return r.issues.length > before ? undefined : identity;
}

/** `after: 30s` (also `5m`, `1h`, `1d`, `minute`…) or a number of seconds, 0 or more. */
function readAfter(r: Reader, field: Field | undefined, path: string): number {
  if (field === undefined) return 0;
  const v = field.value;
  const n = finiteNumber(v);
  if (n !== undefined && n >= 0 && n <= 366 * 86400) return Math.round(n * 1000);
  const seconds = isScalar(v) && typeof v.value === 'string' ? parseDuration(v.value) : undefined;
  if (seconds !== undefined && seconds <= 366 * 86400) return seconds * 1000;
  r.issue(field.valuePos, path, `after must be a duration such as "30s", "5m" or "1h", or a number of seconds (at most a year), got ${shown(v)}`);
  return 0;
}

function readExpect(r: Reader, field: Field, path: string): Expectation | undefined {
  const v = field.value;
  if (isScalar(v) && typeof v.value === 'string') {
    const word = v.value;
    if ((DECISIONS as readonly string[]).includes(word)) return { decision: word as (typeof DECISIONS)[number] };
    const guess = suggest(word, DECISIONS, 2);
    r.issue(field.valuePos, path, `expect must be allow, deny or approval${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}, got ${shown(v)}`);
    return undefined;
  }
  if (!isMap(v)) {
    r.issue(field.valuePos, path, `expect must be allow, deny, approval, or a map such as { deny: rate_limit }, got ${shown(v)}`);
    return undefined;
  }
  const issues = r.issues.length;
  const f = r.fields(v, path, ['deny', 'approval', 'allow']);
  if (f.has('allow')) {
    r.issue(f.get('allow')!.keyPos, path, 'an allowed call has nothing more to check: write "expect: allow"');
    return undefined;
  }
  if (f.size > 1) r.issue(field.valuePos, path, 'expect takes one of deny or approval, not both');
  // An empty map, or one whose only keys were unknown (already reported).
  if (f.size === 0 && r.issues.length === issues) r.issue(field.valuePos, path, 'expect must say deny or approval');
  if (f.size !== 1) return undefined;
  const deny = f.get('deny');
  if (deny) return readDeny(r, deny, `${path}.deny`);
  const approval = f.get('approval')!;
  const out: Expectation = { decision: 'approval' };
  const a = approval.value;
  if (isNull(a)) return out;
  if (isScalar(a)) {
    const rule = nonEmptyString(a);
    if (rule === undefined) r.issue(approval.valuePos, `${path}.approval`, `approval takes the name of the rule that holds the call, got ${shown(a)}`);
    else out.rule = rule;
    return rule === undefined ? undefined : out;
  }
  if (!isMap(a)) {
    r.issue(approval.valuePos, `${path}.approval`, `approval takes a rule name or { rule: … }, got ${shown(a)}`);
    return undefined;
  }
  const before = r.issues.length;
  const rule = r.fields(a, `${path}.approval`, APPROVAL_KEYS).get('rule');
  if (rule) {
    const name = nonEmptyString(rule.value);
    if (name === undefined) r.issue(rule.valuePos, `${path}.approval.rule`, `rule must be a rule name, got ${shown(rule.value)}`);
    else out.rule = name;
  }
  return r.issues.length > before ? undefined : out;
}

function readDeny(r: Reader, field: Field, path: string): Expectation | undefined {
  const v = field.value;
  const out: Expectation & { decision: 'deny' } = { decision: 'deny' };
  if (isNull(v)) return out;
  if (isScalar(v)) {
    const kind = readKind(r, v, field.valuePos, path);
    if (kind === undefined) return undefined;
    out.kind = kind;
    return out;
  }
  if (!isMap(v)) {
    r.issue(field.valuePos, path, `deny takes a denial kind or { kind, rule, message }, got ${shown(v)}`);
    return undefined;
  }
  const before = r.issues.length;
  const f = r.fields(v, path, DENY_KEYS);
  const kind = f.get('kind');
  if (kind) {
    const k = readKind(r, kind.value, kind.valuePos, `${path}.kind`);
    if (k !== undefined) out.kind = k;
  }
  const rule = f.get('rule');
  if (rule) {
    const name = nonEmptyString(rule.value);
    if (name === undefined) r.issue(rule.valuePos, `${path}.rule`, `rule must be a rule name, got ${shown(rule.value)}`);
    else out.rule = name;
  }
  const message = f.get('message');
  if (message) {
    const m = readMessage(r, message, `${path}.message`);
    if (m !== undefined) out.message = m;
  }
  return r.issues.length > before ? undefined : out;
}

function readKind(r: Reader, node: YNode | undefined, at: SourcePos, path: string): TestableKind | undefined {
  const text = isScalar(node) && typeof node.value === 'string' ? node.value : undefined;
  if (text !== undefined && (TESTABLE_KINDS as readonly string[]).includes(text)) return text as TestableKind;
  const guess = text === undefined ? undefined : suggest(text, TESTABLE_KINDS, 3);
  r.issue(at, path, `unknown denial kind ${shown(node)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}; kinds are ${TESTABLE_KINDS.join(', ')}`);
  return undefined;
}

/** A substring, or `/pattern/` for an RE2 pattern (inline flags: `/(?i)limit/`). */
function readMessage(r: Reader, field: Field, path: string): MessageMatch | undefined {
  const text = isScalar(field.value) && typeof field.value.value === 'string' ? field.value.value : undefined;
  if (text === undefined || text === '') {
    r.issue(field.valuePos, path, `message must be a non-empty string (a part of the message, or /a pattern/), got ${shown(field.value)}`);
    return undefined;
  }
  if (text.length < 2 || !text.startsWith('/') || !text.endsWith('/')) return { contains: text };
  const pattern = text.slice(1, -1);
  try {
    compileRegex(pattern);
  } catch (err) {
    r.issue(field.valuePos, path, `invalid regex ${JSON.stringify(pattern)}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
  return { regex: pattern };
}

/** A YAML value as plain JSON data (as JSON.parse would make it), or undefined after an issue. */
function jsonValue(r: Reader, node: YNode | undefined, path: string, depth: number, budget: Budget): unknown {
  if (--budget.left < 0) {
    if (budget.left === -1) r.issue(r.posOf(node), path, `values are too large: more than ${LIMITS.nodes} nodes in the file (aliases count each time they are used)`);
    return undefined;
  }
  if (node === undefined) return null;
  if (isScalar(node)) {
    const v = node.value;
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    r.issue(r.posOf(node), path, `values must be strings, finite numbers, booleans, null, lists or maps, got ${shown(node)}`);
    return undefined;
  }
  if (depth >= LIMITS.depth) {
    r.issue(r.posOf(node), path, `values may nest at most ${LIMITS.depth} levels deep`);
    return undefined;
  }
  if (isSeq(node)) {
    const out: unknown[] = [];
    for (let i = 0; i < node.items.length; i++) {
      const item = jsonValue(r, budget.resolve(r, node.items[i]), `${path}[${i}]`, depth + 1, budget);
      if (item === undefined) return undefined;
      out.push(item);
    }
    return out;
  }
  // Not Reader.fields: its alias lookups would make a map used over and over slow to refuse.
  const out: Record<string, unknown> = {};
  for (const pair of node.items) {
    const key = budget.resolve(r, pair.key);
    if (!isScalar(key) || key.value === null || typeof key.value === 'object') {
      r.issue(r.posOf(key ?? node), path, 'keys must be plain names');
      return undefined;
    }
    const name = scalarText(key);
    if (Object.hasOwn(out, name)) {
      r.issue(r.posOf(key), path, `duplicate key ${JSON.stringify(name)}`);
      return undefined;
    }
    const item = jsonValue(r, budget.resolve(r, pair.value), `${path}.${name}`, depth + 1, budget);
    if (item === undefined) return undefined;
    // An own property even for "__proto__", as JSON.parse makes it.
    Object.defineProperty(out, name, { value: item, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
