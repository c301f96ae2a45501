// Deciding one call: the rules that govern the tool, in order, over prepared data only (no
// regex or path parsing, no closures, no trace objects unless asked for). Pure: the counters,
// the schema, the tool's class and the time all come in with the input.
import { bucketOf, type CompiledKey } from './buckets.js';
import {
  approvalNote,
  badIncrementMessage,
  conditionFailure,
  identityRequiredMessage,
  invalidArgsMessage,
  missingArgsMessage,
  ruleDenied,
  schemaUnavailableMessage,
  stateUnavailableMessage,
} from './messages.js';
import { applyOperator, applyToCaller, toNumber, type CompiledOperator } from './operators.js';
import { MISSING, resolveArgPath, resolveIdentityPath, type ArgPath, type IdentityPath, type Resolved } from './paths.js';
import type { Limit } from '../policy/model.js';
import type { ApprovalNeed, Charge, ConditionTrace, CounterRef, DecideInput, Decision, Denial, Identity, RuleTrace } from './types.js';

export interface CompiledCondition {
  readonly path: string;
  readonly operator: CompiledOperator;
  /** Set for `args.` conditions. */
  readonly arg: ArgPath | undefined;
  /** Set for `state.` conditions: the counter read, as its defining rule declares it. */
  readonly state: DeclaredCounter | undefined;
  /** Set for `identity.` conditions. */
  readonly identity?: IdentityPath;
}

/** A counter as this caller's call sees it: an identity-scoped one is the caller's own (its
 * `subject` set); undefined when it is identity-scoped and the caller has no subject. */
export function callerRef(ref: CounterRef, identity: Identity | undefined): CounterRef | undefined {
  if (ref.scope !== 'identity') return ref;
  const sub = identity?.sub;
  return sub === undefined ? undefined : { ...ref, subject: sub };
}

function identityRequired(rule: string, counter: CounterRef): Denial {
  return { kind: 'identity_required', rule, message: identityRequiredMessage(rule, counter.counter ?? counter.id), details: { counter: counter.id } };
}

/** A counter as its rule declares it; a keyed one is a family of buckets, one per key value. */
export interface DeclaredCounter {
  readonly ref: CounterRef;
  readonly key: CompiledKey | undefined;
}

export interface CompiledCounter {
  readonly declared: DeclaredCounter;
  readonly increment: number;
  readonly from: ArgPath | undefined;
  readonly limits: Limit[];
}

export interface CompiledRule {
  /** The key the rule sits under: a tool name, or `*`. */
  readonly tool: string;
  readonly name: string;
  readonly deny: boolean;
  readonly message: string | undefined;
  readonly conditions: readonly CompiledCondition[];
  readonly requiredArgs: boolean;
  readonly schema: boolean;
  readonly counter: CompiledCounter | undefined;
  /** Set on a require_approval rule: what its conditions holding asks for (one frozen object
   * per rule, handed out as is). Such a rule has no counter and no validation. */
  readonly approval: ApprovalNeed | undefined;
}


export function deniedBefore(denial: Denial): Decision {
  return { allowed: false, denial, charges: [], trace: [] };
}

/** The rules in order. A require_approval rule whose conditions hold records its need (the
 * first such rule's) and the walk goes on: a later denial still denies, with no approval. */
export function runRules(rules: readonly CompiledRule[], input: DecideInput, tracing: boolean): Decision {
  const trace: RuleTrace[] = [];
  let charges: Charge[] | undefined;
  let approval: ApprovalNeed | undefined;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    const rt: RuleTrace | undefined = tracing ? { tool: rule.tool, rule: rule.name, outcome: 'passed', conditions: [] } : undefined;
    const outcome = evaluateRule(rule, input, rt);
    if (rt !== undefined) trace.push(rt);
    if (outcome === undefined) continue;
    if ('ref' in outcome) {
      (charges ??= []).push(outcome);
      if (rt !== undefined) rt.charge = outcome;
      continue;
    }
    if ('fingerprint' in outcome) {
      if (rt !== undefined) {
        const asked = approval === undefined ? '' : ` — not asked: rule ${JSON.stringify(approval.rule)} already needs approval`;
        rt.note = approvalNote(outcome.settings) + asked;
      }
      approval ??= outcome;
      continue;
    }
    if (rt !== undefined) {
      rt.outcome = 'denied';
      for (let j = i + 1; j < rules.length; j++) {
        trace.push({ tool: rules[j]!.tool, rule: rules[j]!.name, outcome: 'not_reached', conditions: [] });
      }
    }
    // Nothing is charged for a denied call.
    return { allowed: false, denial: outcome, charges: [], trace };
  }
  if (approval !== undefined) return { allowed: true, approval, charges: charges ?? [], trace };
  return { allowed: true, charges: charges ?? [], trace };
}

/** A rule's verdict: a denial, the charge of its counter, the approval its conditions holding
 * need (require_approval), or undefined (passed, counts nothing). */
function evaluateRule(rule: CompiledRule, input: DecideInput, rt: RuleTrace | undefined): Denial | Charge | ApprovalNeed | undefined {
  const name = rule.name;
  if (rule.deny) {
    if (rt !== undefined) rt.note = 'deny rule';
    return { kind: 'deny_rule', rule: name, message: rule.message ?? ruleDenied(name) };
  }

  const args = input.call.args;
  const conditions = rule.conditions;
  for (let i = 0; i < conditions.length; i++) {
    const cond = conditions[i]!;
    let actual: Resolved;
    // A read of a keyed counter reads the bucket of this call's key values.
    let bucket: string | undefined;
    if (cond.state !== undefined) {
      const { ref, key } = cond.state;
      // Nobody to read a per-caller count for; the gate read nothing either.
      if (ref.scope === 'identity' && input.identity?.sub === undefined) {
        if (rt !== undefined) {
          rt.conditions.push(conditionTrace(cond, MISSING, false, undefined));
          rt.note = `counter ${cond.path} is kept per caller and the call has no identity`;
        }
        return identityRequired(name, ref);
      }
      const id = key === undefined ? ref.id : (bucket = bucketOf(ref, key, input.call).ref.id);
      const value = input.counters?.get(id);
      if (value === undefined) {
        // Fail closed: a limit that cannot be read is not assumed to hold.
        if (rt !== undefined) {
          rt.conditions.push(conditionTrace(cond, MISSING, false, bucket));
          rt.note = `counter ${cond.path} is unavailable`;
        }
        return { kind: 'state_unavailable', rule: name, message: stateUnavailableMessage(name, cond.path), details: { counter: id } };
      }
      actual = value;
    } else if (cond.identity !== undefined) {
      actual = resolveIdentityPath(input.identity, cond.identity);
    } else {
      actual = resolveArgPath(args, cond.arg!);
    }
    const passed = cond.identity !== undefined ? applyToCaller(cond.operator, actual) : applyOperator(cond.operator, actual);
    if (rt !== undefined) rt.conditions.push(conditionTrace(cond, actual, passed, bucket));
    if (!passed) {
      const { op, expected } = cond.operator;
      const why = conditionFailure(cond.path, op, expected, actual, actual === MISSING);
      // A require_approval rule whose conditions do not all hold simply passes.
      if (rule.approval !== undefined) {
        if (rt !== undefined) rt.note = `no approval needed: ${why}`;
        return undefined;
      }
      if (rt !== undefined) rt.note = why;
      return {
        kind: 'condition',
        rule: name,
        message: rule.message ?? `${ruleDenied(name)}: ${why}`,
        details: { path: cond.path, op, expected },
      };
    }
  }

  if (rule.approval !== undefined) return rule.approval;

  if (rule.requiredArgs || rule.schema) {
    const denial = validateArgs(rule, input);
    if (denial !== undefined) {
      if (rt !== undefined) rt.note = denial.message;
      return denial;
    }
  }

  const counter = rule.counter;
  if (counter === undefined) return undefined;
  let amount = counter.increment;
  if (counter.from !== undefined) {
    const value = resolveArgPath(args, counter.from);
    const n = value === MISSING ? NaN : toNumber(value);
    if (!(n >= 0)) {
      const message = badIncrementMessage(name, counter.from.text, value, value === MISSING);
      if (rt !== undefined) rt.note = message;
      return { kind: 'bad_increment', rule: name, message, details: { path: counter.from.text } };
    }
    amount = n + 0; // -0 counts as 0
  }
  const { ref: declared, key } = counter.declared;
  const ref = callerRef(declared, input.identity);
  if (ref === undefined) {
    // One anonymous bucket would let every caller without a subject share (and exhaust) one
    // caller's limit: refuse instead.
    if (rt !== undefined) rt.note = `counter ${declared.id} is kept per caller (scope: identity) and the call has no identity`;
    return identityRequired(name, declared);
  }
  let charge: Charge;
  if (key === undefined) {
    charge = { ref, amount, limits: counter.limits, rule: name };
  } else {
    const bucket = bucketOf(ref, key, input.call);
    charge = { ref: bucket.ref, amount, limits: counter.limits, rule: name, key: bucket.key };
  }
  if (rule.message !== undefined) charge.message = rule.message;
  return charge;
}

function validateArgs(rule: CompiledRule, input: DecideInput): Denial | undefined {
  const tool = input.call.name;
  const schema = input.schema;
  if (schema === undefined || schema === null) return schemaUnavailable(rule, tool);
  const args = input.call.args;
  if (rule.requiredArgs) {
    let missing: string[] | undefined;
    for (const name of schema.required) if (!Object.hasOwn(args, name)) (missing ??= []).push(name);
    if (missing !== undefined) {
      return { kind: 'missing_args', rule: rule.name, message: rule.message ?? missingArgsMessage(tool, missing), details: { missing } };
    }
  }
  if (rule.schema) {
    if (schema.validate === undefined) return schemaUnavailable(rule, tool);
    let errors: string[];
    try {
      errors = schema.validate(args);
    } catch (err) {
      // A validator that breaks must not let the call through.
      errors = [`the schema validator failed: ${err instanceof Error ? err.message : String(err)}`];
    }
    if (errors.length > 0) {
      return { kind: 'invalid_args', rule: rule.name, message: rule.message ?? invalidArgsMessage(tool, errors), details: { errors } };
    }
  }
  return undefined;
}

function schemaUnavailable(rule: CompiledRule, tool: string): Denial {
  return { kind: 'schema_unavailable', rule: rule.name, message: schemaUnavailableMessage(rule.name, tool) };
}

function conditionTrace(cond: CompiledCondition, actual: Resolved, passed: boolean, bucket: string | undefined): ConditionTrace {
  const t: ConditionTrace = { path: cond.path, op: cond.operator.op, expected: cond.operator.expected, passed };
  if (actual === MISSING) t.missing = true;
  else t.actual = actual;
  if (bucket !== undefined) t.counter = bucket;
  return t;
}
