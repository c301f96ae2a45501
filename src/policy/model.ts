// The normalised policy model. Both spellings of the policy language (the catalogue
// spelling of the seed pages and Intercept's v1 format) load into these types; nothing
// downstream knows which spelling a rule was written in.

/** Where something was written, for error messages and decision traces. */
export interface SourcePos {
  file: string;
  /** 1-based */
  line: number;
  /** 1-based */
  col: number;
}

export const OPERATORS = [
  'eq',
  'neq',
  'in',
  'not_in',
  'lt',
  'lte',
  'gt',
  'gte',
  'regex',
  'contains',
  'exists',
] as const;
export type Operator = (typeof OPERATORS)[number];

/** A value as YAML gave it (plain JSON data). */
export type PolicyValue = null | boolean | number | string | PolicyValue[] | { [key: string]: PolicyValue };

export interface Condition {
  /** As written: `args.a.b`, `state.<owner>.<counter>`, or a path of the caller's identity
   * (`identity.sub`, `identity.client_id`, `identity.scopes`, `identity.claims.<name>…`). */
  path: string;
  op: Operator;
  /** Already checked against the operator: a list for in/not_in, a finite number for
   * lt/lte/gt/gte, a boolean for exists, a (valid RE2) string for regex. */
  value: PolicyValue;
  pos: SourcePos;
}

export type CalendarUnit = 'minute' | 'hour' | 'day';

/** Calendar windows (v1 spelling) reset at UTC minute/hour/day boundaries; rolling
 * windows (catalogue spelling) count the calls of the last `seconds` seconds. */
export type Window = { kind: 'calendar'; unit: CalendarUnit } | { kind: 'rolling'; seconds: number };

/** `session`: one count per agent session (a stdio connection, an HTTP session).
 * `global`: shared by every session and every proxy using the same state store. */
export type Scope = 'session' | 'global';

/** Whose count a counter keeps: a `Scope`, or `identity`: one count per caller (the identity's
 * `sub`), shared by every session and proxy that caller uses. Approval grants know no callers. */
export type CounterScope = Scope | 'identity';

/** A cap on a counter: a call is admitted only if `current + amount` stays within it. */
export interface Limit {
  value: number;
  /** true for `lte`/`max` (current + amount <= value), false for `lt` (< value). */
  inclusive: boolean;
}

/** What splits a counter into one count per argument value (a bucket each):
 * `{ all: true }` for `key: args` (the whole arguments, so identical calls share a bucket),
 * or the `args.` paths whose values, together, choose the bucket. */
export type CounterKey = { all: true } | { paths: string[] };

/** A counter owned by one rule: a v1 `state` block, or a desugared `rate_limit`. */
export interface Counter {
  /** The counter name as referenced from conditions: `state.<owner>.<name>`. */
  name: string;
  /** The tool key the rule belongs to (a name or a pattern), `_global` for rules under `"*"`,
   * or `class:<class>` for rules under `classes`. */
  owner: string;
  window: Window;
  scope: CounterScope;
  /** Fixed amount added per admitted call (default 1). Ignored when `incrementFrom` is set. */
  increment: number;
  /** `args.<path>`: add this argument's value instead (must be a finite, non-negative number). */
  incrementFrom?: string;
  /** Caps checked atomically at reservation time. Empty: the counter only counts. */
  limits: Limit[];
  /** Absent: one count for the whole counter. Present: one count per key value; limits apply
   * to each bucket separately, and `state.` reads see the bucket of the call being decided. */
  key?: CounterKey;
  pos: SourcePos;
}

export interface Validation {
  /** Every argument the tool's inputSchema lists in `required` must be present. */
  requiredArgs: boolean;
  /** The arguments must validate against the tool's whole inputSchema. */
  schema: boolean;
}

/** How an agent waits for a human: its request held open, answered at once and retried, or
 * asked in the agent's own MCP client. */
export type ApprovalMode = 'hold' | 'retry' | 'client';

/** What a `require_approval` rule says about the wait. */
export interface ApprovalSettings {
  /** `timeout` (default 5m): more than 0, at most 7 days (MAX_APPROVAL_TIMEOUT_SECONDS). */
  timeoutSeconds: number;
  /** `on_timeout` (default deny). */
  onTimeout: 'deny' | 'allow';
  /** `approval_mode` (default hold). */
  mode: ApprovalMode;
  /** Whose retry a grant covers: the agent session that asked (default), or any (`global`). */
  scope: Scope;
}

export interface Rule {
  /** Given, or derived as `<tool>#<n>` (1-based position in the tool's rule list). */
  name: string;
  /** `allow` (catalogue spelling) and `evaluate` (v1) are the same thing: the call must
   * satisfy the rule. `deny` denies unconditionally. `require_approval` holds the call for a
   * human when its conditions all hold (always, without conditions), and passes otherwise. */
  action: 'evaluate' | 'deny' | 'require_approval';
  /** Set exactly when the action is require_approval. */
  approval?: ApprovalSettings;
  /** ANDed. Does not include limit conditions, which were folded into `counter.limits`. */
  conditions: Condition[];
  counter?: Counter;
  validate?: Validation;
  /** `on_deny` or `reason`: the message the agent sees when this rule denies. */
  message?: string;
  pos: SourcePos;
}

export interface ToolPolicy {
  /** The key under `tools` (a name or a glob pattern), `*`, or under `classes` the class. */
  name: string;
  rules: Rule[];
  /** This key's `audit`: added to the top level's for the tools it governs. Never on `*`. */
  audit?: AuditSettings;
  pos: SourcePos;
}

/** What the audit trail keeps of a call's arguments (`audit.args`), as `args.` paths written
 * as conditions write them. Whatever no list names goes through the redaction heuristics. */
export interface AuditArgRules {
  /** Stored as sent, even where they look secret (paths dropped or hashed inside them aside). */
  keep: string[];
  /** Stored as `sha256:<hex of the value's canonical JSON>`. */
  hash: string[];
  /** Left out. */
  drop: string[];
}

/** A policy's or a tool key's `audit` block. */
export interface AuditSettings {
  args: AuditArgRules;
  pos: SourcePos;
}

export interface Policy {
  /** The file the policy came from (for messages). */
  source: string;
  version?: string;
  description?: string;
  /** `allow` unless the file says `default: deny`. */
  defaultAction: 'allow' | 'deny';
  /** Hidden tool names and glob patterns (`*`, `?`); `*` hides every tool. */
  hide: string[];
  /** Where each `hide` entry was written, by entry (absent for a policy built in code). */
  hidePos?: SourcePos[];
  /** Named tools in file order. */
  tools: ToolPolicy[];
  /** Rules under `"*"`, applied after a tool's own rules. */
  wildcard?: ToolPolicy;
  /** Rules per risk class (`classes:`), in file order; each entry's name is the class. They
   * apply to a tool that no exact or pattern key under `tools` matches. */
  classes?: ToolPolicy[];
  /** The top-level `audit`: applies to every tool. */
  audit?: AuditSettings;
}

/** The risk classes a tool can be put in (the categories of the risk classifier). */
export const TOOL_CLASSES = ['read', 'write', 'execute', 'financial', 'destructive'] as const;
export type ToolClass = (typeof TOOL_CLASSES)[number];

/** The counter owner of rules under `classes.<class>`: cannot collide with a tool name that
 * MCP allows (no `:` there). */
export function classOwner(toolClass: ToolClass): string {
  return `class:${toolClass}`;
}

/** One problem found in a policy file; every problem is reported, not just the first. */
export interface PolicyIssue {
  file: string;
  line: number;
  col: number;
  /** The field's path in the document, e.g. `tools.create_issue.rules[0].rate_limit`. */
  path: string;
  message: string;
}

/** `warnings`: what was accepted but deserves a second look (`on_timeout: allow`), in file
 * order; present only when there is one. `intercept validate` prints them and the proxy should
 * log them when it loads or reloads the policy; they never make a policy invalid. */
export type LoadResult = { ok: true; policy: Policy; warnings?: PolicyIssue[] } | { ok: false; issues: PolicyIssue[] };

export const GLOBAL_OWNER = '_global';
