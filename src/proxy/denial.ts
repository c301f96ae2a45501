// The answer an agent gets for a denied call: a tool *result* with isError, so the model reads
// the reason and can adapt, in the shape agents already know from Intercept, plus the
// machine-readable detail under _meta (not structuredContent, which clients validate against
// the tool's outputSchema).
import { denialText } from '../engine/messages.js';
import type { Denial } from '../engine/types.js';
import type { JsonRpcId, JsonRpcResponse } from '../jsonrpc/message.js';

export const DENIAL_META_KEY = 'intercept/denial';
/** On denials about an approval request: `{id, expiresAt}` of the request, so a client or
 * agent can show it and retry (retry mode) before it expires. */
export const APPROVAL_META_KEY = 'intercept/approval';

export function denialResponse(id: JsonRpcId, denial: Denial, modern: boolean): JsonRpcResponse {
  const detail: Record<string, unknown> = { kind: denial.kind };
  if (denial.rule !== undefined) detail.rule = denial.rule;
  if (denial.retryAfterSeconds !== undefined) detail.retryAfterSeconds = denial.retryAfterSeconds;
  if (denial.details !== undefined) Object.assign(detail, denial.details);
  const meta: Record<string, unknown> = { [DENIAL_META_KEY]: detail };
  if (denial.details?.approval !== undefined) meta[APPROVAL_META_KEY] = denial.details.approval;
  const result: Record<string, unknown> = {
    content: [{ type: 'text', text: denialText(denial) }],
    isError: true,
    _meta: meta,
  };
  // 2026-07-28 results carry resultType; older clients never see it.
  if (modern) result.resultType = 'complete';
  return { jsonrpc: '2.0', id, result };
}
