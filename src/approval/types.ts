// Approvals: a call held for a human. What a request records, and the store every backend
// (memory, SQLite, Redis) implements, so that a request made by one proxy can be listed,
// decided and claimed from another process (the CLI, another proxy, a web UI).
import type { ApprovalMode, Scope } from '../policy/model.js';

export const APPROVAL_STATUSES = ['pending', 'approved', 'denied', 'expired', 'used', 'withdrawn'] as const;
/** pending → approved → used; pending → denied | expired | withdrawn; approved → expired
 * (a grant not used before `expiresAt`). Every status but pending and approved is final. */
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];

/** How a decision was made: from the command line, the listener's HTTP endpoints, the
 * dashboard's page, the agent's own MCP client (elicitation or input_required), or by the clock. */
export type DecidedVia = 'cli' | 'http' | 'dashboard' | 'client' | 'timeout';

/** What a proxy writes when a call needs approval. */
export interface NewApproval {
  tool: string;
  /** The call's arguments as the agent sent them (shown to the human). */
  arguments: Record<string, unknown>;
  /** sha256 hex of the arguments' canonical JSON (engine/canonical-json.ts). */
  argumentsHash: string;
  /** The require_approval rule's name. */
  rule: string;
  /** The rule's fingerprint (ApprovalNeed.fingerprint): a grant made under one version of the
   * rule never applies under another. */
  ruleVersion: string;
  mode: ApprovalMode;
  scope: Scope;
  /** The agent session that asked. */
  session: string;
  /** What a grant is bound to: tool, arguments hash, rule version, and the session unless the
   * scope is global (see `approvalBinding`). */
  binding: string;
  onTimeout: 'deny' | 'allow';
  /** ms since the epoch. */
  requestedAt: number;
  expiresAt: number;
}

export interface ApprovalRecord extends NewApproval {
  /** Short, unguessable, safe in a URL and a shell: `apr_` + 16 lowercase base32 characters. */
  id: string;
  status: ApprovalStatus;
  /** When it was decided, withdrawn or timed out (an unused grant that expired keeps the time
   * it was approved). */
  decidedAt?: number;
  /** Who decided: the OS user, the listener token's name, `client`, or `timeout`. */
  decidedBy?: string;
  via?: DecidedVia;
  reason?: string;
  usedAt?: number;
}

export interface Decision {
  approve: boolean;
  by: string;
  via: DecidedVia;
  reason?: string;
}

/** The outcome of a change of status. `not_found`: no such id (or swept); otherwise the status
 * the request had, which did not allow the change. */
export type ChangeOutcome =
  | { ok: true; record: ApprovalRecord }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'conflict'; record: ApprovalRecord };

export interface ApprovalStore {
  /** Stores a new pending request and returns it with its id. */
  create(request: NewApproval, now: number): Promise<ApprovalRecord>;
  /** The request, its status as of `now` (a pending or approved request past `expiresAt`
   * reads as expired, and is stored so). */
  get(id: string, now: number): Promise<ApprovalRecord | undefined>;
  /** Requests as of `now`, newest first; `status` filters. Final ones are kept for
   * RETENTION_MS after they were decided or expired, then swept. */
  list(now: number, filter?: { status?: ApprovalStatus }): Promise<ApprovalRecord[]>;
  /** pending → approved | denied. Atomic: of two deciders, one wins, the other gets conflict. */
  decide(id: string, decision: Decision, now: number): Promise<ChangeOutcome>;
  /** pending → withdrawn (the client cancelled or went away). */
  withdraw(id: string, now: number): Promise<ChangeOutcome>;
  /** pending → expired, recording how a timeout ended it (`via: timeout`). */
  expire(id: string, now: number): Promise<ChangeOutcome>;
  /** approved → used, atomically across processes: exactly one claimer of a grant wins. */
  claim(id: string, now: number): Promise<ChangeOutcome>;
  /** The newest request for `binding` that is pending or approved and not expired as of `now`. */
  findOpen(binding: string, now: number): Promise<ApprovalRecord | undefined>;
  close(): Promise<void>;
}

/** How long final requests stay listed. */
export const RETENTION_MS = 24 * 60 * 60 * 1000;
