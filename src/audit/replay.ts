// Replaying the audit trail under another policy: every recorded tools/call decided again, in
// time order, with counters counted from nothing in a memory store at each call's own time, so
// that limits bite as they would have. What the trail does not hold is never guessed: a call
// whose decision reads arguments the trail did not keep (or kept redacted), or needs the tool's
// inputSchema or risk class when they were not given, is reported as undecidable.
//
// Every recorded call happened, whatever the old policy said of it: a call the old policy
// denied is charged when the new one admits it, as if the tool had run. A forwarded call whose
// server answered with a JSON-RPC error (or input_required) did not run, so its charge is
// given back when its answer came, as the proxy does.
import { canonicalDigest } from '../engine/canonical-json.js';
import { declaredCounters, type CompiledPolicy } from '../engine/compile.js';
import { rateLimitDenial } from '../engine/messages.js';
import { compileArgPath, MISSING, resolveArgPath, type ArgPath } from '../engine/paths.js';
import type { Decision, Denial, Identity, RuleTrace, ToolCall, ToolSchemaInfo } from '../engine/types.js';
import { classOwner, GLOBAL_OWNER, type Rule, type ToolClass } from '../policy/model.js';
import { storageKey } from '../state/keys.js';
import { MemoryCounterStore } from '../state/memory.js';
import type { Reservation } from '../state/store.js';
import type { AuditRecord, ToolCallEvent } from './event.js';
import { REDACTED, TOO_DEEP } from './redact.js';

/** What the trail does not hold about a tool: its inputSchema's checks and its risk class. */
export interface ToolFacts {
  schema?: ToolSchemaInfo;
  toolClass?: ToolClass;
}

export interface ReplayOptions {
  /** ms since the epoch: when the report is made. */
  now: number;
  /** By tool name (from --input-schemas). */
  tools?: ReadonlyMap<string, ToolFacts>;
  /** Groups kept per list, the largest first (default 1000); the rest are counted in `omitted`. */
  maxRows?: number;
}

/** What became of a call: run, refused, or held for a human (and run if approved). */
export type Verdict = 'allow' | 'deny' | 'hold';
export type Change = 'newly_denied' | 'newly_allowed' | 'newly_held';
export const UNDECIDABLE_REASONS = ['args_not_logged', 'args_redacted', 'schema_unknown', 'class_unknown', 'identity_not_recorded'] as const;
export type UndecidableReason = (typeof UNDECIDABLE_REASONS)[number];

interface Seen {
  count: number;
  /** ISO times of the first and last call of the group. */
  first: string;
  last: string;
  /** The session of the group's first call. */
  session: string;
}

/** Calls whose verdict changes the same way, for the same tool, kind and rule. */
export interface ChangeGroup extends Seen {
  change: Change;
  tool: string;
  /** The old verdict. */
  was: Verdict;
  /** newly_denied: the new denial's; newly_allowed: the old denial's; newly_held: absent. */
  kind?: string;
  /** newly_denied and newly_held: the new policy's rule; newly_allowed: the old denial's. */
  rule?: string;
  /** The first call's denial message (the new one for newly_denied, the old one otherwise). */
  message?: string;
  /** How many were decided by tool only: their arguments were not logged, and no rule that
   * decided them reads arguments. */
  byTool: number;
}

export interface UndecidableGroup extends Seen {
  tool: string;
  reason: UndecidableReason;
  /** The rule whose evaluation needed what was missing. */
  rule?: string;
}

export interface Tally {
  unchanged: number;
  newlyDenied: number;
  newlyAllowed: number;
  newlyHeld: number;
  undecidable: number;
}

export interface ToolTally extends Tally {
  tool: string;
  calls: number;
}

/** A rule's share: the calls it now denies or holds (newly or as before), the calls it denied
 * before and no longer does (newly allowed), and those it could not decide. */
export interface RuleTally extends Tally {
  rule: string;
}

export interface ReplayReport {
  /** ISO time the report was made. */
  at: string;
  /** The new policy's file. */
  policy: string;
  /** ISO times of the first and last call replayed. */
  from?: string;
  until?: string;
  /** tools/call records replayed. */
  calls: number;
  /** Calls the client withdrew before they were decided: not replayed. */
  withdrawn: number;
  /** tool_call records lacking the fields a replay needs: not replayed. */
  malformed: number;
  /** Calls decided: with their logged arguments, or by tool only. */
  decided: { withArgs: number; byTool: number };
  totals: Tally;
  undecidableBy: Record<UndecidableReason, number>;
  /** Largest first. */
  changes: ChangeGroup[];
  undecidable: UndecidableGroup[];
  tools: ToolTally[];
  rules: RuleTally[];
  /** Groups left out of each list by maxRows. */
  omitted: { changes: number; undecidable: number; tools: number; rules: number };
}

/** How much of a call's arguments the trail holds: all of them (they hash to `argsHash`), some
 * (redacted: values replaced or hashed, members dropped), or none (only the hash). */
type Known = { kind: 'exact' | 'redacted'; args: Record<string, unknown> } | { kind: 'none' };

/** One call as replayed. */
interface Outcome {
  record: ToolCallEvent & AuditRecord;
  was: Verdict;
  /** The denial the old decision recorded (or would have, under --dry-run). */
  wasDenial?: { kind?: string; rule?: string; message?: string };
  result:
    | { verdict: Verdict; denial?: Denial; approvalRule?: string; byTool: boolean }
    | { verdict: 'undecidable'; reason: UndecidableReason; rule?: string };
}

/** What a rule reads of the arguments beyond its conditions (which the trace shows). */
interface RuleReads {
  requiredArgs: boolean;
  schema: boolean;
  keyAll: boolean;
  paths: ArgPath[];
}

const DEFAULT_MAX_ROWS = 1000;
/** Outcomes after which a forwarded call did not run: its charge was given back. */
const NOT_RUN = new Set(['jsonrpc_error', 'input_required']);
const HASHED = /^sha256:[0-9a-f]{64}$/;

/** The report of `records` (any trail records, in any order: only tool_call ones are
 * replayed) decided again under `policy`. */
export async function replay(records: readonly AuditRecord[], policy: CompiledPolicy, opts: ReplayOptions): Promise<ReplayReport> {
  const calls: (ToolCallEvent & AuditRecord)[] = [];
  let withdrawn = 0;
  let malformed = 0;
  for (const r of records) {
    if (r.type !== 'tool_call') continue;
    if (!wellFormed(r)) malformed++;
    else if (r.decision === 'cancelled') withdrawn++;
    else calls.push(r);
  }

  // Each call is decided (and charged) when it was forwarded or denied, and a charge it did
  // not keep is given back when its answer came.
  const steps: { at: number; index: number; settle: boolean }[] = [];
  calls.forEach((r, index) => {
    const end = Date.parse(r.ts);
    const upstream = typeof r.upstreamMs === 'number' && Number.isFinite(r.upstreamMs) && r.upstreamMs > 0 ? r.upstreamMs : 0;
    steps.push({ at: end - upstream, index, settle: false });
    if (r.decision === 'allow' && r.outcome !== undefined && NOT_RUN.has(r.outcome)) steps.push({ at: end, index, settle: true });
  });
  steps.sort((a, b) => a.at - b.at || a.index - b.index || Number(a.settle) - Number(b.settle));

  const reads = ruleReads(policy);
  const store = new MemoryCounterStore();
  const reservations = new Map<number, Reservation>();
  const outcomes: Outcome[] = new Array(calls.length);
  try {
    for (const step of steps) {
      if (step.settle) {
        const reservation = reservations.get(step.index);
        if (reservation !== undefined) await store.rollback(reservation, step.at);
        continue;
      }
      const record = calls[step.index]!;
      const decided = await decideAgain(record, policy, reads, opts.tools, store, step.at);
      if (decided.reservation !== undefined) reservations.set(step.index, decided.reservation);
      outcomes[step.index] = { record, ...oldVerdict(record), result: decided.result };
    }
  } finally {
    await store.close();
  }
  return report(outcomes, { withdrawn, malformed, policy: policy.policy.source, now: opts.now, maxRows: opts.maxRows ?? DEFAULT_MAX_ROWS });
}

// ---------------------------------------------------------------------------------------------
// Deciding one call again

async function decideAgain(
  record: ToolCallEvent & AuditRecord,
  policy: CompiledPolicy,
  reads: ReadonlyMap<string, RuleReads[]>,
  tools: ReadonlyMap<string, ToolFacts> | undefined,
  store: MemoryCounterStore,
  at: number,
): Promise<{ result: Outcome['result']; reservation?: Reservation }> {
  const known = knownArgs(record);
  const call: ToolCall = { name: record.tool, args: known.kind === 'none' ? {} : known.args };
  const facts = tools?.get(record.tool);
  // The trail keeps who called (the subject) but not their scopes or claims.
  const identity: Identity | undefined = record.subject === undefined ? undefined : { sub: record.subject, scopes: [], claims: {} };
  let needs = policy.requirements(call, undefined, identity);
  let toolClass: ToolClass | undefined;
  if (needs.needsClass) {
    toolClass = facts?.toolClass;
    if (toolClass === undefined) return { result: { verdict: 'undecidable', reason: 'class_unknown' } };
    needs = policy.requirements(call, toolClass, identity);
  }
  let counters: Map<string, number> | undefined;
  if (needs.reads.length > 0) {
    const values = await store.read(
      needs.reads.map((ref) => ({ key: storageKey(ref, record.session), window: ref.window })),
      at,
    );
    counters = new Map(needs.reads.map((ref, i) => [ref.id, values[i] ?? 0]));
  }
  const schema = needs.needsSchema ? facts?.schema : undefined;
  const decision = policy.decide({ call, now: at, counters, schema, toolClass, identity }, { trace: true });

  const missing = firstUnknown(decision, known, reads, schema);
  if (missing !== undefined) return { result: { verdict: 'undecidable', ...missing } };
  const byTool = known.kind === 'none';
  if (!decision.allowed) return { result: { verdict: 'deny', denial: decision.denial!, byTool } };

  let reservation: Reservation | undefined;
  if (decision.charges.length > 0) {
    // As the gate reserves; a held call is counted as if a human approved it at once.
    const items = decision.charges.map((c) => ({ key: storageKey(c.ref, record.session), window: c.ref.window, amount: c.amount, limits: c.limits }));
    const outcome = await store.reserve(items, at);
    if (!outcome.ok) {
      return { result: { verdict: 'deny', denial: rateLimitDenial(decision.charges[outcome.index]!, outcome.current, outcome.retryAfterMs), byTool } };
    }
    reservation = outcome.reservation;
  }
  if (decision.approval !== undefined) return { result: { verdict: 'hold', approvalRule: decision.approval.rule, byTool }, reservation };
  return { result: { verdict: 'allow', byTool }, reservation };
}

/** The first thing the decision read that the trail does not hold, in the order the rules
 * were walked (rules not reached read nothing). */
function firstUnknown(
  decision: Decision,
  known: Known,
  reads: ReadonlyMap<string, RuleReads[]>,
  schema: ToolSchemaInfo | undefined,
): { reason: UndecidableReason; rule: string } | undefined {
  const argsReason: UndecidableReason = known.kind === 'none' ? 'args_not_logged' : 'args_redacted';
  for (const rt of decision.trace) {
    if (rt.outcome === 'not_reached') continue;
    const unknown = (path: ArgPath) => !isKnown(known, path);
    for (const c of rt.conditions) {
      // A read of a keyed counter reads the bucket the call's key values choose.
      const read = c.counter !== undefined ? reads.get(bucketKey(c.path)) : undefined;
      if (read?.some((r) => (r.keyAll && known.kind !== 'exact') || r.paths.some(unknown))) return { reason: argsReason, rule: rt.rule };
      if ((c.path === 'args' || c.path.startsWith('args.')) && unknown(compileArgPath(c.path))) return { reason: argsReason, rule: rt.rule };
      if (c.path.startsWith('identity.') && c.path !== 'identity.sub') return { reason: 'identity_not_recorded', rule: rt.rule };
    }
    if (rt.outcome === 'denied' && decision.denial?.kind === 'schema_unavailable') return { reason: 'schema_unknown', rule: rt.rule };
    if (!reachedBody(rt)) continue;
    for (const r of reads.get(readsKey(rt.tool, rt.rule)) ?? []) {
      if (r.keyAll && known.kind !== 'exact') return { reason: argsReason, rule: rt.rule };
      if (r.schema && known.kind !== 'exact') return { reason: argsReason, rule: rt.rule };
      if (r.paths.some(unknown)) return { reason: argsReason, rule: rt.rule };
      // Only whether each required name is there is read, whatever stands in for its value.
      if (r.requiredArgs && schema !== undefined && known.kind !== 'exact') {
        const args = known.kind === 'none' ? undefined : known.args;
        if (schema.required.some((name) => args === undefined || !Object.hasOwn(args, name))) return { reason: argsReason, rule: rt.rule };
      }
    }
  }
  return undefined;
}

/** Whether a rule got past its conditions, to its validation and counter (which read
 * arguments); deny rules and approval rules have neither. */
function reachedBody(rt: RuleTrace): boolean {
  return rt.note !== 'deny rule' && rt.conditions.every((c) => c.passed);
}

/** Whether the value at `path` is what the call really sent. */
function isKnown(known: Known, path: ArgPath): boolean {
  if (known.kind === 'exact') return true;
  if (known.kind === 'none') return false;
  const value = resolveArgPath(known.args, path);
  // A member the trail lacks may have been dropped from it.
  return value !== MISSING && !holdsStandIn(value);
}

/** Whether a value is, or holds, something redaction put in place of what was sent. */
function holdsStandIn(value: unknown): boolean {
  const work: unknown[] = [value];
  while (work.length > 0) {
    const v = work.pop();
    if (typeof v === 'string') {
      if (v.includes(REDACTED) || v === TOO_DEEP || HASHED.test(v)) return true;
    } else if (typeof v === 'object' && v !== null) {
      for (const child of Object.values(v)) work.push(child);
    }
  }
  return false;
}

function knownArgs(record: ToolCallEvent): Known {
  const args = record.args;
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return { kind: 'none' };
  // Complete and as sent when they hash as the proxy hashed them.
  return { kind: canonicalDigest(args) === record.argsHash ? 'exact' : 'redacted', args: args as Record<string, unknown> };
}

const readsKey = (key: string, rule: string) => `${key}\u0000${rule}`;
/** Where `ruleReads` keeps what choosing a keyed counter's bucket reads, by its `state.` path. */
const bucketKey = (statePath: string) => `\u0000${statePath}`;

/** Per rule (by the key it sits under, as traces name it, and its name), what it reads of the
 * arguments besides its conditions; a name given twice under one key reads what both read. And
 * per keyed counter (under bucketKey), what choosing its bucket reads. */
function ruleReads(compiled: CompiledPolicy): Map<string, RuleReads[]> {
  const p = compiled.policy;
  const out = new Map<string, RuleReads[]>();
  for (const [id, c] of declaredCounters(p)) {
    if (c.key === undefined) continue;
    const keyAll = 'all' in c.key;
    const paths = 'paths' in c.key ? c.key.paths.map(compileArgPath) : [];
    const r: RuleReads = { requiredArgs: false, schema: false, keyAll, paths };
    out.set(bucketKey(`state.${id}`), [r]);
    // `state.*.x` names the counters of `"*"` rules, whose owner is _global.
    if (c.owner === GLOBAL_OWNER) out.set(bucketKey(`state.*.${c.name}`), [r]);
  }
  const add = (key: string, rule: Rule) => {
    const c = rule.counter;
    const paths: ArgPath[] = [];
    if (c?.incrementFrom !== undefined) paths.push(compileArgPath(c.incrementFrom));
    if (c?.key !== undefined && 'paths' in c.key) paths.push(...c.key.paths.map(compileArgPath));
    const r: RuleReads = {
      requiredArgs: rule.validate?.requiredArgs === true,
      schema: rule.validate?.schema === true,
      keyAll: c?.key !== undefined && 'all' in c.key,
      paths,
    };
    if (!r.requiredArgs && !r.schema && !r.keyAll && paths.length === 0) return;
    const k = readsKey(key, rule.name);
    out.set(k, [...(out.get(k) ?? []), r]);
  };
  for (const tp of p.tools) for (const rule of tp.rules) add(tp.name, rule);
  for (const rule of p.wildcard?.rules ?? []) add('*', rule);
  for (const tp of p.classes ?? []) for (const rule of tp.rules) add(classOwner(tp.name as ToolClass), rule);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The old decision

function oldVerdict(r: ToolCallEvent): Pick<Outcome, 'was' | 'wasDenial'> {
  const held = r.approval !== undefined || (r.kind !== undefined && r.kind.startsWith('approval_'));
  const denial = r.kind === undefined ? undefined : { kind: r.kind, rule: r.rule, message: r.message };
  // Under --dry-run a would-be denial was forwarded, but it is what the old policy said.
  const denied = r.decision === 'deny' || r.dryRun === true;
  if (held) return { was: 'hold', wasDenial: denial };
  return denied ? { was: 'deny', wasDenial: denial } : { was: 'allow' };
}

function wellFormed(r: AuditRecord): r is ToolCallEvent & AuditRecord {
  const c = r as Partial<ToolCallEvent>;
  return (
    typeof c.tool === 'string' &&
    c.tool !== '' &&
    typeof c.session === 'string' &&
    (c.decision === 'allow' || c.decision === 'deny' || c.decision === 'cancelled') &&
    typeof c.argsHash === 'string' &&
    !Number.isNaN(Date.parse(r.ts)) &&
    (c.kind === undefined || typeof c.kind === 'string') &&
    (c.rule === undefined || typeof c.rule === 'string') &&
    (c.message === undefined || typeof c.message === 'string')
  );
}

// ---------------------------------------------------------------------------------------------
// The report

function report(
  outcomes: readonly Outcome[],
  meta: { withdrawn: number; malformed: number; policy: string; now: number; maxRows: number },
): ReplayReport {
  const totals = emptyTally();
  const undecidableBy = Object.fromEntries(UNDECIDABLE_REASONS.map((r) => [r, 0])) as Record<UndecidableReason, number>;
  const decided = { withArgs: 0, byTool: 0 };
  const changes = new Map<string, ChangeGroup>();
  const undecidable = new Map<string, UndecidableGroup>();
  const tools = new Map<string, ToolTally>();
  const rules = new Map<string, RuleTally>();
  let from: string | undefined;
  let until: string | undefined;

  const seen = <T extends Seen>(groups: Map<string, T>, key: string, o: Outcome, make: () => Omit<T, keyof Seen>): T => {
    const ts = o.record.ts;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { ...make(), count: 0, first: ts, last: ts, session: o.record.session } as T));
    g.count++;
    if (ts < g.first) g.first = ts;
    if (ts > g.last) g.last = ts;
    return g;
  };
  const bump = (field: keyof Tally, tool: string, rule: string | undefined) => {
    totals[field]++;
    let t = tools.get(tool);
    if (t === undefined) tools.set(tool, (t = { tool, calls: 0, ...emptyTally() }));
    t[field]++;
    if (rule === undefined) return;
    let rt = rules.get(rule);
    if (rt === undefined) rules.set(rule, (rt = { rule, ...emptyTally() }));
    rt[field]++;
  };

  for (const o of outcomes) {
    const { record, result } = o;
    const tool = record.tool;
    if (from === undefined || record.ts < from) from = record.ts;
    if (until === undefined || record.ts > until) until = record.ts;
    let t = tools.get(tool);
    if (t === undefined) tools.set(tool, (t = { tool, calls: 0, ...emptyTally() }));
    t.calls++;

    if (result.verdict === 'undecidable') {
      undecidableBy[result.reason]++;
      bump('undecidable', tool, result.rule);
      seen(undecidable, JSON.stringify([tool, result.reason, result.rule ?? null]), o, () => ({ tool, reason: result.reason, ...(result.rule !== undefined && { rule: result.rule }) }));
      continue;
    }
    if (result.byTool) decided.byTool++;
    else decided.withArgs++;
    const newRule = result.verdict === 'deny' ? result.denial!.rule : result.verdict === 'hold' ? result.approvalRule : undefined;
    if (result.verdict === o.was) {
      bump('unchanged', tool, newRule);
      continue;
    }
    const change: Change = result.verdict === 'deny' ? 'newly_denied' : result.verdict === 'allow' ? 'newly_allowed' : 'newly_held';
    // A newly allowed call is the old rule's; the others are the new rule's.
    const shown =
      change === 'newly_denied'
        ? { kind: result.denial!.kind, rule: result.denial!.rule, message: result.denial!.message }
        : change === 'newly_allowed'
          ? { kind: o.wasDenial?.kind, rule: o.wasDenial?.rule, message: o.wasDenial?.message }
          : { kind: undefined, rule: result.approvalRule, message: undefined };
    bump(change === 'newly_denied' ? 'newlyDenied' : change === 'newly_allowed' ? 'newlyAllowed' : 'newlyHeld', tool, shown.rule);
    const g = seen(changes, JSON.stringify([change, tool, o.was, shown.kind ?? null, shown.rule ?? null]), o, () => ({
      change,
      tool,
      was: o.was,
      ...(shown.kind !== undefined && { kind: shown.kind }),
      ...(shown.rule !== undefined && { rule: shown.rule }),
      ...(shown.message !== undefined && { message: shown.message }),
      byTool: 0,
    }));
    if (result.byTool) g.byTool++;
  }

  const byCount = <T extends { count: number }>(a: T, b: T) => b.count - a.count;
  const busiest = (t: Tally) => t.newlyDenied + t.newlyAllowed + t.newlyHeld + t.undecidable;
  const keep = <T>(list: T[]): { rows: T[]; omitted: number } => ({ rows: list.slice(0, meta.maxRows), omitted: Math.max(0, list.length - meta.maxRows) });
  const c = keep([...changes.values()].sort(byCount));
  const u = keep([...undecidable.values()].sort(byCount));
  const tl = keep([...tools.values()].sort((a, b) => busiest(b) - busiest(a) || b.calls - a.calls || (a.tool < b.tool ? -1 : 1)));
  const rl = keep([...rules.values()].sort((a, b) => busiest(b) - busiest(a) || b.unchanged - a.unchanged || (a.rule < b.rule ? -1 : 1)));
  return {
    at: new Date(meta.now).toISOString(),
    policy: meta.policy,
    ...(from !== undefined && { from, until }),
    calls: outcomes.length,
    withdrawn: meta.withdrawn,
    malformed: meta.malformed,
    decided,
    totals,
    undecidableBy,
    changes: c.rows,
    undecidable: u.rows,
    tools: tl.rows,
    rules: rl.rows,
    omitted: { changes: c.omitted, undecidable: u.omitted, tools: tl.omitted, rules: rl.omitted },
  };
}

function emptyTally(): Tally {
  return { unchanged: 0, newlyDenied: 0, newlyAllowed: 0, newlyHeld: 0, undecidable: 0 };
}
