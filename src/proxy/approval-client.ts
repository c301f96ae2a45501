// approval_mode: client — the human is asked inside the agent's own MCP client, when it said it
// can show a form: in the 2025 revisions the proxy sends it an `elicitation/create` request
// while the call is held; in 2026-07-28 the call is answered with an `input_required` result
// carrying the same form, and the client's retry brings the answer back with the request state
// the proxy issued. Either way the answer is written to the approval store as a decision (via
// `client`), so the rest is what every held call does.
//
// What the human sees names the tool, the rule and the arguments as JSON, with every control,
// invisible or bidirectional character escaped, so a crafted argument cannot pass for the
// proxy's own words. Trust: the answer is whatever the client sends; use this mode only with
// clients that put the question in front of a person (see docs/policy.md).
import { CLIENT_CAPABILITIES_META, metaOf } from '../jsonrpc/eras.js';
import { isObject } from '../jsonrpc/message.js';
import type { ApprovalRecord, Decision } from '../approval/types.js';

/** The key of the proxy's form in `inputRequests` / `inputResponses`. */
export const INPUT_KEY = 'intercept/approval';
/** Marks a `requestState` the proxy issued: what follows is base64url JSON (ApprovalState). */
const STATE_PREFIX = 'intercept-approval.';
/** Arguments longer than this (as JSON) are cut in the question; the whole call is in
 * `intercept approvals show`. */
const MAX_ARGUMENTS_CHARS = 4000;
const MAX_REASON_CHARS = 500;

/** Whether a client's elicitation capability covers forms: `{}` (2025-06-18, and form by
 * default in 2025-11-25) or one naming `form`. */
export function canElicitForm(elicitation: unknown): boolean {
  if (!isObject(elicitation)) return false;
  return isObject(elicitation.form) || !('url' in elicitation);
}

/** Whether a 2026-07-28 call's client declared form elicitation in its `_meta`. */
export function modernCanElicit(callParams: unknown): boolean {
  const caps = metaOf(callParams)?.[CLIENT_CAPABILITIES_META];
  return isObject(caps) && canElicitForm(caps.elicitation);
}

/** The params of the elicitation (either era) that asks about `record`. */
export function approvalQuestion(record: ApprovalRecord): Record<string, unknown> {
  let args = JSON.stringify(record.arguments, null, 2).replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (args.length > MAX_ARGUMENTS_CHARS) {
    args = `${args.slice(0, MAX_ARGUMENTS_CHARS)}\n… (${args.length - MAX_ARGUMENTS_CHARS} more characters: intercept approvals show ${record.id})`;
  }
  return {
    message:
      `The agent wants to call the tool ${JSON.stringify(record.tool)}, and the policy rule ${JSON.stringify(record.rule)} ` +
      `needs a person's approval first.\n\nArguments:\n${args}\n\n` +
      `Request ${record.id}, open until ${new Date(record.expiresAt).toISOString()}. Approve this call once?`,
    requestedSchema: {
      type: 'object',
      properties: {
        approve: { type: 'boolean', title: 'Approve', description: 'Let this exact call run once' },
        reason: { type: 'string', title: 'Reason', description: 'Optional; recorded with the decision and shown to the agent on a denial' },
      },
      required: ['approve'],
    },
  };
}

/** Escaped in what the human reads (JSON.stringify escapes only U+0000–U+001F): DEL and the C1
 * controls, soft hyphen, zero-width and bidirectional marks, line and paragraph separators. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]/g;

/** The decision an elicitation result (`{action, content}`) stands for. Only an accepted form
 * with `approve: true` approves; anything else, malformed included, denies. */
export function decisionOf(result: unknown, by: string): Decision {
  const action = isObject(result) ? result.action : undefined;
  const content = isObject(result) && isObject(result.content) ? result.content : {};
  const given = typeof content.reason === 'string' && content.reason.trim() !== '' ? content.reason.trim().slice(0, MAX_REASON_CHARS) : undefined;
  if (action === 'accept' && content.approve === true) return { approve: true, by, via: 'client', reason: given };
  const reason =
    action === 'accept' ? given ?? 'not approved in the client' : action === 'decline' ? 'declined in the client' : action === 'cancel' ? 'dismissed in the client' : 'the client gave no answer';
  return { approve: false, by, via: 'client', reason };
}

/** What the proxy's `requestState` carries through the client: the request, and the call's own
 * round-trip members (for the upstream) that the proxy's round displaced. */
export interface ApprovalState {
  id: string;
  state?: string;
  responses?: Record<string, unknown>;
}

export function encodeState(s: ApprovalState): string {
  return STATE_PREFIX + Buffer.from(JSON.stringify(s), 'utf8').toString('base64url');
}

/** undefined: not a state the proxy issued; 'invalid': marked as one but unreadable. */
export function decodeState(text: unknown): ApprovalState | 'invalid' | undefined {
  if (typeof text !== 'string' || !text.startsWith(STATE_PREFIX)) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(text.slice(STATE_PREFIX.length), 'base64url').toString('utf8'));
    if (!isObject(v) || typeof v.id !== 'string') return 'invalid';
    if (v.state !== undefined && typeof v.state !== 'string') return 'invalid';
    if (v.responses !== undefined && !isObject(v.responses)) return 'invalid';
    return { id: v.id, state: v.state as string | undefined, responses: v.responses as Record<string, unknown> | undefined };
  } catch {
    return 'invalid';
  }
}

/** The `input_required` result that asks the client's human about `record`. The call's own
 * `requestState` and `inputResponses` ride inside the proxy's state, to be given back to the
 * upstream once the proxy's round is done. */
export function inputRequiredResult(record: ApprovalRecord, callParams: Record<string, unknown>): Record<string, unknown> {
  const state: ApprovalState = { id: record.id };
  if (typeof callParams.requestState === 'string') state.state = callParams.requestState;
  if (isObject(callParams.inputResponses)) state.responses = callParams.inputResponses;
  return {
    resultType: 'input_required',
    inputRequests: { [INPUT_KEY]: { method: 'elicitation/create', params: approvalQuestion(record) } },
    requestState: encodeState(state),
  };
}

/** The call's params as the upstream should see them after the proxy's round: the proxy's
 * answer and state taken out, the call's own put back. */
export function paramsForUpstream(params: Record<string, unknown>, state: ApprovalState): Record<string, unknown> {
  const { requestState: _ours, inputResponses: _answers, ...rest } = params;
  const out: Record<string, unknown> = { ...rest };
  if (state.state !== undefined) out.requestState = state.state;
  if (state.responses !== undefined) out.inputResponses = state.responses;
  return out;
}

/** The client's answer to the proxy's form in a retry's `inputResponses`, if any. */
export function answerIn(params: Record<string, unknown>): unknown {
  return isObject(params.inputResponses) ? params.inputResponses[INPUT_KEY] : undefined;
}
