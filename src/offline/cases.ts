// Policy test cases (`intercept test`), as loaded from a cases file: a call, what the proxy
// would know when it arrives (the tool's schema and class, counter values, the calls before it,
// the time), and the decision the policy must make. docs/policy-tests.md describes the file.
import type { DenialKind, Identity, ToolCall } from '../engine/types.js';
import type { SourcePos, ToolClass } from '../policy/model.js';

/** The denial kinds a decision made without a server can have (no pinning, no approval store). */
export const TESTABLE_KINDS = [
  'hidden',
  'not_listed',
  'deny_rule',
  'condition',
  'rate_limit',
  'missing_args',
  'invalid_args',
  'bad_increment',
  'schema_unavailable',
  'identity_required',
] as const satisfies readonly DenialKind[];
export type TestableKind = (typeof TESTABLE_KINDS)[number];

/** A denial message: a substring, or (written `/…/`) an RE2 pattern. */
export type MessageMatch = { contains: string } | { regex: string };

export type Expectation =
  | { decision: 'allow' }
  | { decision: 'deny'; kind?: TestableKind; rule?: string; message?: MessageMatch }
  /** Held for a human by a require_approval rule (`rule`: that rule's name). */
  | { decision: 'approval'; rule?: string };

/** One call with what the server would have told the proxy about its tool. */
export interface CallSpec {
  call: ToolCall;
  /** The tool's inputSchema, for validate rules; absent, the server is taken not to list one. */
  inputSchema?: Record<string, unknown>;
  /** The tool's risk class, for `classes:` rules; absent, the classifier's guess from its name. */
  toolClass?: ToolClass;
  /** Who makes the call; absent, an anonymous caller (a `before` call: the case's caller). */
  identity?: Identity;
  pos: SourcePos;
}

/** An entry of `before`: the same call made `times` times, each `afterMs` after the one before. */
export interface PriorCalls extends CallSpec {
  times: number;
  afterMs: number;
}

export interface CounterPreset {
  /** A counter id as explain prints it (`<owner>.<name>`, or a keyed counter's bucket). */
  id: string;
  value: number;
  pos: SourcePos;
}

export interface PolicyCase extends CallSpec {
  name: string;
  /** Counter values at the start, as if charged at `startsAt`. */
  counters: CounterPreset[];
  before: PriorCalls[];
  /** ms since the epoch of the first call (the first `before` call, or the case's own). */
  startsAt: number;
  /** Between the last `before` call (or `startsAt`) and the case's call. */
  afterMs: number;
  /** Whether the case said anything about time (`at`, or `after` anywhere): reports show it then. */
  timed: boolean;
  expect: Expectation;
}

export interface CasesFile {
  file: string;
  cases: PolicyCase[];
}

/** When a case does not say: the start of a year, month, ISO week, day, hour and minute, so that
 * calendar windows start with the case. */
export const DEFAULT_START = Date.UTC(2024, 0, 1);
