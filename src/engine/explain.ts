// A readable account of one decision, for `intercept explain`. Built from the trace that
// `decide(..., { trace: true })` records; a decision made without a trace shows no rules.
import type { Limit, Window } from '../policy/model.js';
import { bucketPhrase, durationShort, formatValue } from './messages.js';
import type { ApprovalNeed, Charge, ConditionTrace, Decision, Identity, RuleTrace, ToolCall } from './types.js';

const OUTCOME: Record<RuleTrace['outcome'], string> = {
  passed: 'PASSED',
  denied: 'DENIED',
  not_reached: 'not reached',
};

/** `identity`: who made the call, shown when given. */
export function formatDecision(call: ToolCall, decision: Decision, identity?: Identity): string {
  const lines: string[] = [`Call: ${call.name} ${formatArgs(call.args)}`];
  if (identity !== undefined) lines.push(`Caller: ${formatIdentity(identity)}`);
  if (decision.trace.length === 0) {
    lines.push('Rules: none evaluated');
  } else {
    lines.push('Rules:');
    decision.trace.forEach((rt, i) => {
      // Denials say why; a passed rule has a note only when it is about approval.
      const note = rt.outcome !== 'not_reached' && rt.note !== undefined ? ` — ${rt.note}` : '';
      lines.push(`  ${i + 1}. ${rt.tool} › ${rt.rule}: ${OUTCOME[rt.outcome]}${note}`);
      for (const c of rt.conditions) lines.push(`       ${formatCondition(c)}`);
      if (rt.charge !== undefined) {
        const verb = !decision.allowed
          ? 'would charge (not charged: the call is denied)'
          : decision.approval !== undefined
            ? 'charges once approved'
            : 'charges';
        lines.push(`       ${verb} ${formatCharge(rt.charge)}`);
      }
    });
  }
  if (!decision.allowed) {
    lines.push(`Decision: DENIED (${decision.denial?.kind ?? 'unknown'}) — ${decision.denial?.message ?? ''}`);
  } else if (decision.approval !== undefined) {
    lines.push(`Decision: HELD FOR APPROVAL — ${approvalLine(decision.approval)}`);
  } else {
    lines.push('Decision: ALLOWED');
  }
  return lines.join('\n');
}

/** `rule "x" of "tool": mode hold, times out after 5m (then denied), grant for this session`. */
function approvalLine(need: ApprovalNeed): string {
  const s = need.settings;
  const then = s.onTimeout === 'allow' ? 'then allowed' : 'then denied';
  const grant = s.scope === 'global' ? 'a grant covers any session' : 'a grant covers this session only';
  return (
    `rule ${JSON.stringify(need.rule)} of ${JSON.stringify(need.tool)}: mode ${s.mode}, ` +
    `times out after ${durationShort(s.timeoutSeconds)} (${then}), ${grant}; the call runs once a human approves it`
  );
}

/** `sub "alice", client_id "cli", scopes ["read","write"], claims {"groups":["finance"]}`, or
 * `anonymous` when nothing is known. */
function formatIdentity(identity: Identity): string {
  const parts: string[] = [];
  if (identity.sub !== undefined) parts.push(`sub ${JSON.stringify(identity.sub)}`);
  if (identity.client_id !== undefined) parts.push(`client_id ${JSON.stringify(identity.client_id)}`);
  if (identity.scopes.length > 0) parts.push(`scopes ${formatArgs(identity.scopes)}`);
  if (Object.keys(identity.claims).length > 0) parts.push(`claims ${formatArgs(identity.claims)}`);
  return parts.length === 0 ? 'anonymous' : parts.join(', ');
}

/** The same account as plain JSON data, for `--json`. */
export function decisionToJson(call: ToolCall, decision: Decision, identity?: Identity): Record<string, unknown> {
  const out: Record<string, unknown> = {
    call: { name: call.name, arguments: call.args },
    allowed: decision.allowed,
  };
  if (identity !== undefined) out.identity = identity;
  if (decision.denial !== undefined) out.denial = decision.denial;
  if (decision.approval !== undefined) out.approval = decision.approval;
  out.charges = decision.charges;
  out.trace = decision.trace;
  return out;
}

function formatArgs(args: unknown): string {
  try {
    return JSON.stringify(args) ?? '{}';
  } catch {
    return String(args);
  }
}

function formatCondition(c: ConditionTrace): string {
  const mark = c.passed ? '✓' : '✗';
  const actual = c.missing === true ? 'missing' : formatValue(c.actual);
  const bucket = c.counter === undefined ? '' : `, counter ${c.counter}`;
  return `${mark} ${c.path} ${c.op} ${formatValue(c.expected)} (actual: ${actual}${bucket})`;
}

export function formatCharge(charge: Charge): string {
  const { ref } = charge;
  const bucket = charge.key === undefined ? '' : `, ${bucketPhrase(charge.key)}`;
  const scope = ref.subject === undefined ? ref.scope : `${ref.scope} (sub ${JSON.stringify(ref.subject)})`;
  return `counter ${ref.id} +${charge.amount} (limit ${formatLimits(charge.limits)}, window ${formatWindow(ref.window)}, scope ${scope}${bucket})`;
}

function formatLimits(limits: readonly Limit[]): string {
  if (limits.length === 0) return 'none';
  return limits.map((l) => `${l.inclusive ? '≤' : '<'} ${l.value}`).join(' and ');
}

function formatWindow(window: Window): string {
  return window.kind === 'calendar' ? `calendar ${window.unit} (UTC)` : `rolling ${window.seconds}s`;
}
