import type { Logger } from '../log.js';
import type { PolicyHolder } from './policy-holder.js';
import type { CounterStore } from '../state/store.js';
import type { ApprovalRecord, ApprovalStore } from '../approval/types.js';
import type { FailMode } from './gate.js';
import type { UpstreamSpec } from '../transport/upstream.js';
import type { Observers } from './call-trail.js';
import type { Identity } from '../engine/types.js';

/** What every session of a proxy run shares, whatever the client transport. */
export interface SessionContext {
  upstream: UpstreamSpec;
  policy: PolicyHolder;
  store: CounterStore;
  /** Where approval requests live: the same backend as the counters (see approval/open.ts). */
  approvals?: ApprovalStore;
  /** Told of each new approval request (--approval-webhook). */
  onApprovalRequested?: (record: ApprovalRecord) => void;
  log: Logger;
  maxMessageBytes: number;
  /** Deepest nesting accepted in any message, from either side (see jsonrpc/depth.ts). */
  maxMessageDepth: number;
  failMode: FailMode;
  /** Who hears of each call (audit trail, metrics, traces), and --dry-run. */
  observers?: Observers;
  /** How long a child server gets to exit by itself after its stdin closes, and after SIGTERM. */
  graceMs?: number;
  /** --call-timeout: how long a forwarded tools/call may go unanswered (0: forever). */
  callTimeoutMs?: number;
  /** --drain-timeout: on SIGINT or SIGTERM, how long calls in flight get to be answered. */
  drainMs?: number;
  /** Who the session's calls are made by: `--identity` on stdio. A transport that learns it
   * per session (a verified bearer token) opens that session's pipeline with its own
   * (`openPipeline({ ...ctx, identity }, key, …)`); it could then also pass `identity.sub` as
   * the session key, so that `scope: session` counts per subject. Absent: anonymous. */
  identity?: Identity;
}
