// Runs policy test cases: each case in a store of its own, its `before` calls decided and
// charged first as the proxy would (an allowed call ran; one held for approval was approved),
// then its own call decided and compared with what the case expects.
import type { CompiledPolicy } from '../engine/compile.js';
import type { Decision } from '../engine/types.js';
import type { PolicyIssue, ToolClass } from '../policy/model.js';
import { compileRegex } from '../policy/regex.js';
import { suggest } from '../policy/suggest.js';
import { MemoryCounterStore } from '../state/memory.js';
import type { CallSpec, CasesFile, Expectation, PolicyCase } from './cases.js';
import { counterById, counterIds, decideOffline, OFFLINE_SESSION, perCaller, presetCounters, ToolFacts, type Counters } from './decide.js';

/** A decision as a case speaks of it. */
export interface Outcome {
  decision: Expectation['decision'];
  kind?: string;
  rule?: string;
  message?: string;
}

export type Field = 'decision' | 'kind' | 'rule' | 'message';

export interface CaseResult {
  case: PolicyCase;
  passed: boolean;
  actual: Outcome;
  /** What the case expected that the decision did not give, in this order. */
  differs: Field[];
  /** What became of the calls before. */
  before: { calls: number; allowed: number; held: number; denied: number };
  /** When (ms since the epoch) the case's own call was made, and its decision (traced). */
  at: number;
  decision: Decision;
  toolClass?: { value: ToolClass; given: boolean };
}

/** What in the cases cannot be checked against this policy: counters it does not have, and
 * per-caller counters preset for a case with no caller to keep them for. */
export function checkCases(policy: CompiledPolicy, cases: CasesFile): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const ids = counterIds(policy);
  cases.cases.forEach((c, i) => {
    for (const preset of c.counters) {
      if (counterById(policy, preset.id) !== undefined) {
        if (perCaller(policy, preset.id) && c.identity?.sub === undefined) {
          const message = `counter ${JSON.stringify(preset.id)} is kept per caller (scope: identity): give the case an identity with a sub, whose count it is`;
          issues.push({ file: cases.file, line: preset.pos.line, col: preset.pos.col, path: `cases[${i}].counters`, message });
        }
        continue;
      }
      let message: string;
      if (ids.includes(preset.id)) {
        message = `counter ${JSON.stringify(preset.id)} is keyed: name one of its buckets, ${preset.id}[<digest>], as intercept explain prints it`;
      } else {
        const guess = suggest(preset.id, ids, 3);
        const known = ids.length === 0 ? 'the policy has no counters' : `its counters are ${ids.slice(0, 12).join(', ')}${ids.length > 12 ? ', …' : ''}`;
        message = `the policy has no counter ${JSON.stringify(preset.id)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}; ${known}`;
      }
      issues.push({ file: cases.file, line: preset.pos.line, col: preset.pos.col, path: `cases[${i}].counters`, message });
    }
  });
  return issues;
}

/** Runs every case, in file order. Call checkCases first: an unknown counter is not preset. */
export async function runCases(policy: CompiledPolicy, cases: CasesFile): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases.cases) results.push(await runCase(policy, c));
  return results;
}

async function runCase(policy: CompiledPolicy, c: PolicyCase): Promise<CaseResult> {
  const counters: Counters = { store: new MemoryCounterStore(), sessionId: OFFLINE_SESSION };
  try {
    let now = c.startsAt;
    await presetCounters(policy, new Map(c.counters.map((p) => [p.id, p.value])), counters, now, c.identity);
    const facts = factsOf(c);
    const before = { calls: 0, allowed: 0, held: 0, denied: 0 };
    for (const prior of c.before) {
      const priorFacts = factsOf(prior, c, facts);
      for (let i = 0; i < prior.times; i++) {
        now += prior.afterMs;
        const made = await decideOffline(policy, prior.call, priorFacts, counters, now, prior.identity ?? c.identity);
        before.calls++;
        if (!made.decision.allowed) before.denied++;
        else if (made.decision.approval !== undefined) before.held++;
        else before.allowed++;
        // The tool ran: its charge stays.
        if (made.reservation) await counters.store.commit(made.reservation, now);
      }
    }
    now += c.afterMs;
    const made = await decideOffline(policy, c.call, facts, counters, now, c.identity);
    const actual = outcomeOf(made.decision);
    const differs = compare(c.expect, actual);
    const result: CaseResult = { case: c, passed: differs.length === 0, actual, differs, before, at: now, decision: made.decision };
    if (made.toolClass) result.toolClass = made.toolClass;
    return result;
  } finally {
    await counters.store.close();
  }
}

/** A before entry's tool: as it says, else as the case says of the same tool, else unknown. */
function factsOf(spec: CallSpec, owner?: PolicyCase, ownerFacts?: ToolFacts): ToolFacts {
  const sameTool = owner !== undefined && spec.call.name === owner.call.name;
  if (sameTool && spec.inputSchema === undefined && spec.toolClass === undefined) return ownerFacts!;
  const inherited = sameTool ? owner : undefined;
  return new ToolFacts(spec.call.name, spec.inputSchema ?? inherited?.inputSchema, spec.toolClass ?? inherited?.toolClass);
}

function outcomeOf(decision: Decision): Outcome {
  if (!decision.allowed) {
    const d = decision.denial;
    const out: Outcome = { decision: 'deny' };
    if (d?.kind !== undefined) out.kind = d.kind;
    if (d?.rule !== undefined) out.rule = d.rule;
    if (d?.message !== undefined) out.message = d.message;
    return out;
  }
  if (decision.approval !== undefined) return { decision: 'approval', rule: decision.approval.rule };
  return { decision: 'allow' };
}

function compare(expect: Expectation, actual: Outcome): Field[] {
  // Another decision: what else the case expected of it is moot.
  if (expect.decision !== actual.decision) return ['decision'];
  const differs: Field[] = [];
  if (expect.decision === 'allow') return differs;
  if (expect.decision === 'deny' && expect.kind !== undefined && expect.kind !== actual.kind) differs.push('kind');
  if (expect.rule !== undefined && expect.rule !== actual.rule) differs.push('rule');
  if (expect.decision === 'deny' && expect.message !== undefined) {
    const m = expect.message;
    const text = actual.message;
    const matches = text !== undefined && ('contains' in m ? text.includes(m.contains) : compileRegex(m.regex).test(text));
    if (!matches) differs.push('message');
  }
  return differs;
}
