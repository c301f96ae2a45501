// How an approval request is shown outside the store: the same JSON for the CLI and HTTP.
import type { ApprovalRecord } from './types.js';

/** A request as the CLI's --json and the listener's endpoints show it: times as ISO text. */
export function approvalView(r: ApprovalRecord): Record<string, unknown> {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    id: r.id,
    status: r.status,
    tool: r.tool,
    arguments: r.arguments,
    rule: r.rule,
    mode: r.mode,
    scope: r.scope,
    session: r.session,
    onTimeout: r.onTimeout,
    requestedAt: iso(r.requestedAt),
    expiresAt: iso(r.expiresAt),
    decidedAt: iso(r.decidedAt),
    decidedBy: r.decidedBy,
    via: r.via,
    reason: r.reason,
    usedAt: iso(r.usedAt),
  };
}
