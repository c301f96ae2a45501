// The approval step of the gate: what a call that needs a human's yes gets. Every request and
// every grant lives in the approval store, so a request made here can be decided from the
// command line, the listener's endpoints or another proxy, and a grant is used once however
// many proxies share the store.
//
// hold and client: each call is its own request, and the interceptor waits for its outcome
// (approval-wait.ts, or the client's answer: approval-client.ts), then runs the gate again with
// the request as `answered`.
// retry: the call is answered at once (approval_pending); the same call (same tool, same
// canonical arguments, same rule version, same session unless scope: global) finds the
// request again by its binding, and once it is approved passes once.
import { argumentsHash, approvalBinding } from '../approval/binding.js';
import type { ApprovalRecord, ApprovalStore } from '../approval/types.js';
import {
  approvalDeniedMessage,
  approvalExpiredMessage,
  approvalPendingMessage,
  approvalUnavailableMessage,
} from '../engine/messages.js';
import type { ApprovalNeed, Denial, ToolCall } from '../engine/types.js';
import type { Logger } from '../log.js';

/** A held call's request once it is no longer pending (decided, expired, withdrawn). */
export interface Answered {
  record: ApprovalRecord;
}

export type ApprovalStep =
  /** `claim`: take the grant (approved → used) once the counters are reserved; false when a
   * timeout with on_timeout: allow let the call through, which leaves nothing to claim. */
  | { kind: 'granted'; record: ApprovalRecord; claim: boolean }
  | { kind: 'hold'; record: ApprovalRecord }
  | { kind: 'deny'; denial: Denial };

export interface ApprovalDeps {
  approvals?: ApprovalStore;
  /** Told of each new request (the webhook). */
  onApprovalRequested?: (record: ApprovalRecord) => void;
  sessionId: string;
  now: () => number;
  log: Logger;
}

export async function approvalStep(call: ToolCall, need: ApprovalNeed, deps: ApprovalDeps, answered?: Answered): Promise<ApprovalStep> {
  if (answered !== undefined) return answerStep(call, need, answered.record);
  const store = deps.approvals;
  if (store === undefined) return { kind: 'deny', denial: unavailable(call, need) };
  const now = deps.now();
  const hash = argumentsHash(call.args);
  const { scope, mode, timeoutSeconds, onTimeout } = need.settings;
  const binding = approvalBinding({ tool: call.name, argumentsHash: hash, ruleVersion: need.fingerprint, scope, session: deps.sessionId });
  try {
    if (mode === 'retry') {
      const open = await store.findOpen(binding, now);
      if (open?.status === 'approved') return { kind: 'granted', record: open, claim: true };
      if (open !== undefined) return { kind: 'deny', denial: pending(call, need, open) };
    }
    const record = await store.create(
      {
        tool: call.name,
        arguments: call.args,
        argumentsHash: hash,
        rule: need.rule,
        ruleVersion: need.fingerprint,
        mode,
        scope,
        session: deps.sessionId,
        binding,
        onTimeout,
        requestedAt: now,
        expiresAt: now + timeoutSeconds * 1000,
      },
      now,
    );
    deps.onApprovalRequested?.(record);
    deps.log.info('approval requested', { id: record.id, tool: call.name, rule: need.rule, mode, expires: new Date(record.expiresAt).toISOString() });
    return mode === 'retry' ? { kind: 'deny', denial: pending(call, need, record) } : { kind: 'hold', record };
  } catch (err) {
    deps.log.error('approval store unavailable', { error: String(err), tool: call.name, rule: need.rule });
    return { kind: 'deny', denial: unavailable(call, need) };
  }
}

/** What a request's outcome means for the call waiting on it. */
function answerStep(call: ToolCall, need: ApprovalNeed, record: ApprovalRecord): ApprovalStep {
  // The rule may have been edited (or removed) while the call waited: a yes given under one
  // version of a rule does not carry over to another.
  if (record.ruleVersion !== need.fingerprint) return { kind: 'deny', denial: ruleChanged(call, need, record) };
  switch (record.status) {
    case 'approved':
      return { kind: 'granted', record, claim: true };
    case 'expired':
      if (record.onTimeout === 'allow') return { kind: 'granted', record, claim: false };
      return { kind: 'deny', denial: expiredUnanswered(call, need, record) };
    case 'denied':
      return { kind: 'deny', denial: deniedByHuman(call, need, record) };
    case 'used':
      return { kind: 'deny', denial: usedUp(call, need, record) };
    default:
      return { kind: 'deny', denial: withdrawn(call, need, record) };
  }
}

function pending(call: ToolCall, need: ApprovalNeed, record: ApprovalRecord): Denial {
  const expiresAt = new Date(record.expiresAt).toISOString();
  return {
    kind: 'approval_pending',
    rule: need.rule,
    message: approvalPendingMessage(call.name, need.rule, record.id, record.expiresAt),
    details: { approval: { id: record.id, expiresAt } },
  };
}

function unavailable(call: ToolCall, need: ApprovalNeed): Denial {
  return {
    kind: 'approval_unavailable',
    rule: need.rule,
    message: approvalUnavailableMessage(call.name, need.rule),
  };
}

function ruleChanged(call: ToolCall, need: ApprovalNeed, record: ApprovalRecord): Denial {
  return {
    kind: 'approval_expired',
    rule: need.rule,
    message: `The approval ${record.id} for ${JSON.stringify(call.name)} no longer applies: rule ${JSON.stringify(need.rule)} changed while the call waited. Call again to ask anew.`,
    details: { approval: { id: record.id } },
  };
}

/** A human said no. */
function deniedByHuman(call: ToolCall, need: { rule: string; message?: string }, record: ApprovalRecord): Denial {
  return {
    kind: 'approval_denied',
    rule: need.rule,
    message: approvalDeniedMessage(call.name, need.rule, need.message, record.reason),
    details: { approval: { id: record.id } },
  };
}

/** Nobody decided in time, and the rule says deny. */
function expiredUnanswered(call: ToolCall, need: { rule: string; message?: string }, record: ApprovalRecord): Denial {
  const seconds = Math.round((record.expiresAt - record.requestedAt) / 1000);
  return {
    kind: 'approval_expired',
    rule: need.rule,
    message: approvalExpiredMessage(call.name, need.rule, seconds, need.message),
    details: { approval: { id: record.id } },
  };
}

/** A grant is good for one call: another proxy claimed it first, or an answer was replayed. */
export function usedUp(call: ToolCall, need: { rule: string }, record: ApprovalRecord): Denial {
  return {
    kind: 'approval_expired',
    rule: need.rule,
    message: `The approval ${record.id} for ${JSON.stringify(call.name)} was already used or has expired. Call again to ask anew.`,
    details: { approval: { id: record.id } },
  };
}

/** The client withdrew its request before anyone approved it. */
function withdrawn(call: ToolCall, need: { rule: string }, record: ApprovalRecord): Denial {
  return {
    kind: 'approval_denied',
    rule: need.rule,
    message: `The approval request ${record.id} for ${JSON.stringify(call.name)} was ${record.status} before anyone approved it`,
    details: { approval: { id: record.id } },
  };
}
