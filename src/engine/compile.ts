// A policy compiled once per load: regexes, paths, counter lookups, per-tool rule lists,
// requirements and the precedence of exact names, patterns and classes are all worked out
// here, so that deciding a call (decide.ts) walks prepared data only.
import { createHash } from 'node:crypto';
import { classOwner, type Counter, type CounterKey, type Policy, type Rule, type ToolClass, type ToolPolicy } from '../policy/model.js';
import { isGlob } from '../policy/spelling.js';
import { bucketOf, type CompiledKey } from './buckets.js';
import { canonicalJson } from './canonical-json.js';
import { callerRef, deniedBefore, runRules, type CompiledCondition, type CompiledCounter, type CompiledRule, type DeclaredCounter } from './decide.js';
import { compileGlob, globMatches, type Glob } from './glob.js';
import { toolQuoted } from './messages.js';
import { compileOperator } from './operators.js';
import { compileArgPath, compileIdentityPath, splitStatePath } from './paths.js';
import type { ApprovalNeed, CounterRef, DecideInput, Decision, Identity, Requirements, ToolCall } from './types.js';

export interface CompiledPolicy {
  readonly policy: Policy;
  /** true when the tool is in `hide`, matches a pattern there, or hide contains "*". */
  isHidden(tool: string): boolean;
  /** Whether tools/list shows the tool: not hidden, and under `default: deny` governed by a key
   * under `tools` or, given its class, by `classes` (an agent gains nothing from seeing a tool
   * it may never call). */
  isOffered(tool: string, toolClass?: ToolClass | null): boolean;
  /** Whether some rule set under `classes` could apply to a tool (so its class is worth knowing). */
  readonly usesClasses: boolean;
  /** What must be gathered before deciding this call. Precomputed per tool key (unlisted tools
   * share one) and returned as is, unless the call reads a keyed counter, whose bucket depends
   * on the call's arguments, or a `scope: identity` one, which is the caller's own (not read
   * for a caller with no subject: the decision refuses the call). When it says `needsClass`,
   * ask again with the tool's class. */
  requirements(call: ToolCall, toolClass?: ToolClass | null, identity?: Identity): Requirements;
  /** The policy entries whose rules govern the tool, by the precedence decide() applies: its
   * exact key (every entry of a name listed twice), else the most specific pattern, else its
   * class's entry; empty when none does (then only `*` and the default apply). */
  governingEntries(tool: string, toolClass?: ToolClass | null): readonly ToolPolicy[];
  /** Trace off by default (hot path). */
  decide(input: DecideInput, options?: { trace?: boolean }): Decision;
}

/** A tool's requirements: fixed, unless some read is of a keyed or a per-caller counter. */
interface RequirementsPlan {
  readonly fixed: Requirements;
  /** The counters read, in order; undefined when none is keyed or kept per caller (then
   * `fixed` says it all). */
  readonly perCallReads: readonly DeclaredCounter[] | undefined;
}

const WILDCARD = '*';

const NOTHING_REQUIRED: Requirements = Object.freeze({ reads: Object.freeze([]) as unknown as CounterRef[], needsSchema: false, needsValidator: false });
const NOTHING_PLANNED: RequirementsPlan = Object.freeze({ fixed: NOTHING_REQUIRED, perCallReads: undefined });
const CLASS_NEEDED: Requirements = Object.freeze({ ...NOTHING_REQUIRED, needsClass: true });

/** The rules that apply to a tool, with what they need. */
interface Governed {
  /** The tool key (name or pattern) or `class:<class>` whose rules these are. */
  readonly key: string;
  /** The entries these rules come from. */
  readonly entries: readonly ToolPolicy[];
  readonly rules: readonly CompiledRule[];
  readonly plan: RequirementsPlan;
}

/** A pattern key under `tools`, with the rules of the tools it matches. */
interface PatternKey extends Governed {
  readonly glob: Glob;
}

/** How many tool names each per-name memo remembers before it starts over. */
const MEMO_LIMIT = 4096;

/** A bounded per-name cache: cleared whole when full (tool names are few; this only stops an
 * agent inventing names from growing it without end). */
function memo<T>(compute: (name: string) => T): (name: string) => T {
  const cache = new Map<string, T>();
  return (name) => {
    const hit = cache.get(name);
    if (hit !== undefined || cache.has(name)) return hit as T;
    const value = compute(name);
    if (cache.size >= MEMO_LIMIT) cache.clear();
    cache.set(name, value);
    return value;
  };
}

/** Compiles a loaded policy. Throws only when the policy breaks the loader's guarantees (an
 * operand that does not suit its operator, a `state.` path with no defining counter...). */
export function compile(policy: Policy): CompiledPolicy {
  const refs = counterRefs(policy);
  // Rules under `classes` are traced under `class:<class>`, the owner of their counters.
  const compileRules = (tp: ToolPolicy, label = tp.name): CompiledRule[] => tp.rules.map((r) => compileRule(label, r, refs));

  const wildcardRules = policy.wildcard ? compileRules(policy.wildcard) : [];
  const governed = (key: string, entries: ToolPolicy[], rules: CompiledRule[]): Governed => {
    const all = [...rules, ...wildcardRules];
    return { key, entries, rules: all, plan: planRequirements(all) };
  };

  // Exact names, and patterns ordered most specific first: most literal characters, ties by
  // file order (the sort is stable).
  const ownEntries = new Map<string, ToolPolicy[]>();
  const patternEntries = new Map<string, ToolPolicy[]>();
  for (const tp of policy.tools) {
    const into = isGlob(tp.name) ? patternEntries : ownEntries;
    // A name listed twice keeps both rule lists (more rules, never fewer).
    into.set(tp.name, [...(into.get(tp.name) ?? []), tp]);
  }
  const governedBy = (key: string, entries: ToolPolicy[]) => governed(key, entries, entries.flatMap((tp) => compileRules(tp)));
  const exact = new Map<string, Governed>();
  for (const [tool, entries] of ownEntries) exact.set(tool, governedBy(tool, entries));
  const patterns: PatternKey[] = [...patternEntries].map(([text, entries]) => ({ ...governedBy(text, entries), glob: compileGlob(text) }));
  patterns.sort((a, b) => b.glob.literals - a.glob.literals);
  const byClass = new Map<ToolClass, Governed>();
  for (const tp of policy.classes ?? []) {
    // The loader admits each class once (they are map keys).
    const cls = tp.name as ToolClass;
    byClass.set(cls, governed(classOwner(cls), [tp], compileRules(tp, classOwner(cls))));
  }
  const usesClasses = byClass.size > 0;

  /** The exact or pattern key governing the tool, if any: the first two steps of precedence. */
  const keyed = memo((tool: string): Governed | undefined => {
    const own = exact.get(tool);
    if (own !== undefined) return own;
    for (const p of patterns) if (globMatches(p.glob, tool)) return p;
    return undefined;
  });
  /** Then its class; undefined means nothing governs the tool. */
  const governing = (tool: string, toolClass: ToolClass | null | undefined): Governed | undefined =>
    keyed(tool) ?? (toolClass ? byClass.get(toolClass) : undefined);

  const hidden = new Set(policy.hide.filter((h) => !isGlob(h)));
  const hideGlobs = policy.hide.filter(isGlob).map(compileGlob);
  const hideAll = hidden.has(WILDCARD);
  const defaultDeny = policy.defaultAction === 'deny';
  const isHidden =
    hideGlobs.length === 0
      ? (tool: string): boolean => hideAll || hidden.has(tool)
      : memo((tool: string): boolean => hideAll || hidden.has(tool) || hideGlobs.some((g) => globMatches(g, tool)));

  const unlistedPlan = defaultDeny ? NOTHING_PLANNED : planRequirements(wildcardRules);

  return {
    policy,
    isHidden,
    usesClasses,
    isOffered: (tool: string, toolClass?: ToolClass | null): boolean =>
      !isHidden(tool) && (!defaultDeny || governing(tool, toolClass) !== undefined),
    requirements(call: ToolCall, toolClass?: ToolClass | null, identity?: Identity): Requirements {
      const tool = call.name;
      if (isHidden(tool)) return NOTHING_REQUIRED;
      let plan = keyed(tool)?.plan;
      if (plan === undefined) {
        if (usesClasses && toolClass === undefined) return CLASS_NEEDED;
        plan = (toolClass ? byClass.get(toolClass)?.plan : undefined) ?? unlistedPlan;
      }
      if (plan.perCallReads === undefined) return plan.fixed;
      const reads: CounterRef[] = [];
      for (const d of plan.perCallReads) {
        const ref = callerRef(d.key === undefined ? d.ref : bucketOf(d.ref, d.key, call).ref, identity);
        if (ref !== undefined) reads.push(ref);
      }
      return { reads, needsSchema: plan.fixed.needsSchema, needsValidator: plan.fixed.needsValidator };
    },
    governingEntries: (tool: string, toolClass?: ToolClass | null): readonly ToolPolicy[] => governing(tool, toolClass)?.entries ?? [],
    decide(input: DecideInput, options?: { trace?: boolean }): Decision {
      const tool = input.call.name;
      if (isHidden(tool)) return deniedBefore({ kind: 'hidden', message: `Tool ${toolQuoted(tool)} is hidden by policy` });
      let rules = governing(tool, input.toolClass)?.rules;
      if (rules === undefined) {
        if (defaultDeny) return deniedBefore({ kind: 'not_listed', message: `Tool ${toolQuoted(tool)} is not permitted by policy` });
        rules = wildcardRules;
      }
      return runRules(rules, input, options?.trace === true);
    },
  };
}

/** Every counter a rule declares, by its id (`<owner>.<name>`, the id `state.` paths and charges
 * use): the first rule declaring an id defines it. */
export function declaredCounters(policy: Policy): Map<string, Counter> {
  const counters = new Map<string, Counter>();
  const lists = [...policy.tools, ...(policy.wildcard ? [policy.wildcard] : []), ...(policy.classes ?? [])];
  for (const tp of lists) {
    for (const rule of tp.rules) {
      const c = rule.counter;
      if (c === undefined) continue;
      const id = `${c.owner}.${c.name}`;
      if (!counters.has(id)) counters.set(id, c);
    }
  }
  return counters;
}

/** The counter as the store and the engine see it. */
export function counterRef(id: string, c: Counter): CounterRef {
  return Object.freeze({ id, owner: c.owner, scope: c.scope, window: Object.freeze({ ...c.window }) });
}

function counterRefs(policy: Policy): Map<string, DeclaredCounter> {
  const refs = new Map<string, DeclaredCounter>();
  for (const [id, c] of declaredCounters(policy)) refs.set(id, Object.freeze({ ref: counterRef(id, c), key: compileKey(c.key) }));
  return refs;
}

function compileKey(key: CounterKey | undefined): CompiledKey | undefined {
  if (key === undefined) return undefined;
  if ('all' in key) return Object.freeze({ all: true });
  if (key.paths.length === 0) throw new Error('a counter key needs at least one path');
  return Object.freeze({ all: false, paths: Object.freeze(key.paths.map(compileArgPath)) });
}

function compileRule(tool: string, rule: Rule, refs: Map<string, DeclaredCounter>): CompiledRule {
  const where = `rule ${JSON.stringify(rule.name)} of ${JSON.stringify(tool)}`;
  const conditions = rule.conditions.map((cond): CompiledCondition => {
    const operator = compileOperator(cond.op, cond.value);
    if (cond.path.startsWith('state.')) {
      const split = splitStatePath(cond.path);
      const ref = split && refs.get(`${split.owner}.${split.counter}`);
      if (ref === undefined) throw new Error(`${where}: ${cond.path} names no counter of the policy`);
      return { path: cond.path, operator, arg: undefined, state: ref };
    }
    if (cond.path.startsWith('identity.')) return { path: cond.path, operator, arg: undefined, state: undefined, identity: compileIdentityPath(cond.path) };
    return { path: cond.path, operator, arg: compileArgPath(cond.path), state: undefined };
  });

  let counter: CompiledCounter | undefined;
  const c = rule.counter;
  if (c !== undefined) {
    if (!(Number.isFinite(c.increment) && c.increment >= 0)) throw new Error(`${where}: increment must be a non-negative number`);
    counter = {
      declared: refs.get(`${c.owner}.${c.name}`)!,
      increment: c.increment,
      from: c.incrementFrom === undefined ? undefined : compileArgPath(c.incrementFrom),
      limits: c.limits,
    };
  }

  return {
    tool,
    name: rule.name,
    deny: rule.action === 'deny',
    message: rule.message,
    conditions,
    requiredArgs: rule.validate?.requiredArgs === true,
    schema: rule.validate?.schema === true,
    counter,
    approval: compileApproval(tool, rule),
  };
}

/** A require_approval rule's need, made once: a decision hands out this very (frozen) object. */
function compileApproval(tool: string, rule: Rule): ApprovalNeed | undefined {
  if (rule.action !== 'require_approval') return undefined;
  const settings = rule.approval;
  if (settings === undefined) throw new Error(`rule ${JSON.stringify(rule.name)} of ${JSON.stringify(tool)}: require_approval without its settings`);
  const need: ApprovalNeed = { rule: rule.name, tool, fingerprint: approvalFingerprint(tool, rule), settings: Object.freeze({ ...settings }) };
  if (rule.message !== undefined) need.message = rule.message;
  return Object.freeze(need);
}

/** sha256 hex of the canonical JSON of what a require_approval rule decides: the key it sits
 * under, its name, its conditions (path, op, value), its approval settings and its message; not
 * where any of it was written. Grants are bound to it, so any edit of the rule that could change
 * its meaning invalidates open requests, while reformatting the file or moving a named rule does not. */
export function approvalFingerprint(tool: string, rule: Rule): string {
  const a = rule.approval;
  const described = {
    tool,
    rule: rule.name,
    conditions: rule.conditions.map((c) => ({ path: c.path, op: c.op, value: c.value })),
    approval: a === undefined ? null : { timeoutSeconds: a.timeoutSeconds, onTimeout: a.onTimeout, mode: a.mode, scope: a.scope },
    message: rule.message ?? null,
  };
  return createHash('sha256').update(canonicalJson(described)).digest('hex');
}

function planRequirements(rules: readonly CompiledRule[]): RequirementsPlan {
  const reads: DeclaredCounter[] = [];
  let needsSchema = false;
  let needsValidator = false;
  for (const rule of rules) {
    if (rule.requiredArgs || rule.schema) needsSchema = true;
    if (rule.schema) needsValidator = true;
    for (const cond of rule.conditions) {
      if (cond.state !== undefined && !reads.includes(cond.state)) reads.push(cond.state);
    }
  }
  if (reads.length === 0 && !needsSchema) return NOTHING_PLANNED;
  const fixed: Requirements = Object.freeze({
    reads: Object.freeze(reads.map((d) => d.ref)) as CounterRef[],
    needsSchema,
    needsValidator,
  });
  const perCall = reads.some((d) => d.key !== undefined || d.ref.scope === 'identity');
  return Object.freeze({ fixed, perCallReads: perCall ? Object.freeze(reads) : undefined });
}

