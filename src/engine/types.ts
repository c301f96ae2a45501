// What the decision engine takes and gives. The engine is pure: everything it needs
// (counter values, the tool's schema, the time) is passed in.
import type { ApprovalSettings, CounterScope, Limit, PolicyValue, ToolClass, Window } from '../policy/model.js';

/** Who makes a call, as the transport established it (`--identity` on stdio; for a listener,
 * whatever verified the session's caller, such as a bearer token's claims). Conditions read it
 * as `identity.*`; `scope: identity` counters count per `sub`. Nothing of it comes from the call. */
export interface Identity {
  /** The subject: whose `scope: identity` counters the calls charge. Absent: anonymous. */
  sub?: string;
  /** The OAuth client the caller uses. */
  client_id?: string;
  scopes: string[];
  /** Every claim, as plain JSON data (read as `identity.claims.<name>…`). */
  claims: Record<string, unknown>;
}

export interface ToolCall {
  name: string;
  /** The call's `arguments` object (an empty object when the call had none). */
  args: Record<string, unknown>;
}

/** A counter as the engine sees it; the caller maps it to a storage key (keys.ts). */
export interface CounterRef {
  /** `<owner>.<name>`, e.g. `create_issue.hourly_count`, `_global._rate_minute`; for one bucket
   * of a keyed counter `<owner>.<name>[<digest>]`, the digest being 16 hex characters. */
  id: string;
  /** The tool the counter belongs to (`_global` for wildcard rules); may itself contain dots. */
  owner: string;
  /** Set on a bucket of a keyed counter: the counter's own id, `<owner>.<name>`. */
  counter?: string;
  scope: CounterScope;
  window: Window;
  /** Set on a `scope: identity` counter as one call sees it: the caller's `sub`, whose count it
   * is. The engine never hands out an identity-scoped ref without it. */
  subject?: string;
}

/** The argument values that chose a keyed counter's bucket. */
export type BucketKey =
  /** `key: args`: the bucket of calls to `tool` with these exact arguments. */
  | { all: true; tool: string }
  /** The key's paths as written, and the value found at each (null when missing). */
  | { paths: readonly string[]; values: readonly unknown[] };

/** What the engine needs to know about the tool from the upstream's `tools/list`. */
export interface ToolSchemaInfo {
  /** `inputSchema.required` (only string entries). */
  required: string[];
  /** Validates against the whole inputSchema; returns error messages, or [] when valid. */
  validate?: (args: Record<string, unknown>) => string[];
}

export interface DecideInput {
  call: ToolCall;
  /** ms since the epoch. */
  now: number;
  /** Current values for the counters listed in `requirements(call).reads`, keyed by CounterRef.id.
   * A missing entry means the value could not be read (the backend is down). */
  counters?: ReadonlyMap<string, number>;
  /** The tool's schema: undefined when not needed or not fetched, null when the upstream has
   * no such tool or its schema could not be obtained. */
  schema?: ToolSchemaInfo | null;
  /** The tool's risk class, from the upstream's own definition of it: undefined when not
   * needed or not fetched, null when the upstream does not list the tool. */
  toolClass?: ToolClass | null;
  /** Who makes the call; absent, an anonymous caller (no sub, no scopes, no claims). */
  identity?: Identity;
}

/** What must be gathered (asynchronously) before `decide` can run for a call. */
export interface Requirements {
  /** Counters read by `state.` conditions (for a keyed counter, the call's bucket). */
  reads: CounterRef[];
  /** Some rule validates arguments against the tool's inputSchema. */
  needsSchema: boolean;
  /** Some rule validates against the whole inputSchema (validate.schema), so a compiled
   * validator is needed, not just the required names. */
  needsValidator: boolean;
  /** The tool matches no key under `tools` and the policy has `classes`: its class decides
   * which rules apply, so fetch it and ask again with it. */
  needsClass?: boolean;
}

export type DenialKind =
  | 'hidden' // the tool is in `hide`
  | 'not_listed' // default: deny and the tool is not under `tools`
  | 'deny_rule' // an `action: deny` rule
  | 'condition' // a condition of an evaluate rule failed
  | 'rate_limit' // a counter's limit would be exceeded
  | 'missing_args' // validate.required_args
  | 'invalid_args' // validate.schema
  | 'bad_increment' // increment_from did not resolve to a usable amount
  | 'schema_unavailable' // validation needed the tool's schema and there was none
  | 'state_unavailable' // the counter backend could not be reached (fail-closed)
  | 'identity_required' // a counter is kept per caller (scope: identity) and the call has no subject
  | 'unpinned' // the tool's definition is not the one pinned in the lock file
  | 'approval_pending' // retry mode: asked; the same call passes once a human approves it
  | 'approval_denied' // a human said no
  | 'approval_expired' // nobody decided in time (on_timeout: deny)
  | 'approval_unavailable'; // the approval store could not be reached (fail-closed)

export interface Denial {
  kind: DenialKind;
  /** The rule that denied, when one did. */
  rule?: string;
  /** What the agent reads after `[INTERCEPT POLICY DENIED] `. */
  message: string;
  /** For rate limits: seconds until the call could be admitted. */
  retryAfterSeconds?: number;
  /** Missing argument names, schema errors, the limit and window... */
  details?: Record<string, unknown>;
}

/** A counter to reserve if the call is admitted. */
export interface Charge {
  ref: CounterRef;
  amount: number;
  limits: Limit[];
  /** The rule that owns the counter. */
  rule: string;
  /** The rule's own denial message (on_deny / reason), if it has one. */
  message?: string;
  /** For a keyed counter: the values that chose the bucket (`ref.id` names the bucket). */
  key?: BucketKey;
}

export interface ConditionTrace {
  path: string;
  op: string;
  expected: PolicyValue;
  /** The resolved value; `missing: true` when the path did not resolve. */
  actual?: unknown;
  /** For a read of a keyed counter: the id of the bucket read. */
  counter?: string;
  missing?: boolean;
  passed: boolean;
}

export interface RuleTrace {
  /** The tool key the rule sits under (`*` for wildcard rules). */
  tool: string;
  rule: string;
  outcome: 'passed' | 'denied' | 'not_reached';
  conditions: ConditionTrace[];
  charge?: Charge;
  /** One line on why, for explain: "deny rule", "missing required argument \"to\"", ... */
  note?: string;
}

/** A call that passes every rule but needs a human's yes first (the first require_approval
 * rule whose conditions hold). One frozen object per compiled rule, shared by its decisions. */
export interface ApprovalNeed {
  /** The rule's name. */
  rule: string;
  /** The key the rule sits under (a tool name, a pattern, `*`, or `class:<class>`). */
  tool: string;
  /** sha256 hex of the canonical JSON of the rule as compiled: its key, name, conditions (path,
   * op, value), approval settings and message, not where it was written (approvalFingerprint in
   * compile.ts). A grant is bound to it, so editing the rule invalidates open requests. */
  fingerprint: string;
  settings: ApprovalSettings;
  /** The rule's on_deny / reason, shown when a human denies or the request times out. */
  message?: string;
}

export interface Decision {
  allowed: boolean;
  /** Set when the call is allowed only once a human approves it. */
  approval?: ApprovalNeed;
  /** Set when `allowed` is false. */
  denial?: Denial;
  /** Counters to reserve, in rule order; the gate reserves them all or none. */
  charges: Charge[];
  trace: RuleTrace[];
}
