// What the proxy tells its observers (the audit trail, metrics, traces): one event per thing that
// happened, in the shape it is written to the trail. The writer adds where and when
// (`ts`, `instance`, `seq`) and the chain (`prev`, `hash`); see chain.ts.
import type { DenialKind } from '../engine/types.js';
import type { ApprovalMode, Scope } from '../policy/model.js';
import type { DecidedVia } from '../approval/types.js';

/** What became of a call the policy let through. */
export const CALL_OUTCOMES = [
  'result', // the tool answered
  'tool_error', // the tool answered with isError: true
  'jsonrpc_error', // the server answered with a JSON-RPC error
  'input_required', // 2026-07-28: the server asked the client for more before answering
  'transport_failure', // the server went away before answering
  'timeout', // the server did not answer within --call-timeout; the proxy answered with an error
  'cancelled', // the client cancelled it, or the proxy gave up on it as it stopped
] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

export interface ToolCallEvent {
  type: 'tool_call';
  /** The agent session (the counters' session key). */
  session: string;
  /** Who made the call: its identity's `sub` (`--identity sub=…`, a verified token). Absent
   * for an anonymous caller. */
  subject?: string;
  tool: string;
  /** What was done: `allow` forwarded the call; `deny` answered the agent with a denial;
   * `cancelled`: the call was withdrawn before it was forwarded (by the client while it was
   * held for approval, say, or by the proxy as it stopped or lost its server), so it was
   * neither. */
  decision: 'allow' | 'deny' | 'cancelled';
  /** The denial's kind: on a denial, and under --dry-run on a call that was forwarded although
   * the policy would have denied it. */
  kind?: DenialKind;
  rule?: string;
  /** The denial's text, as the agent read it (or would have). */
  message?: string;
  /** --dry-run: the policy would have denied this call and it was forwarded anyway. */
  dryRun?: true;
  /** From the request's arrival to its forwarding or denial (an approval wait included). */
  decisionMs: number;
  /** From forwarding to the server's answer; absent when there was none. */
  upstreamMs?: number;
  /** Absent on a denial. */
  outcome?: CallOutcome;
  /** The JSON-RPC error's message, or why the transport failed, the call timed out or the
   * proxy gave up on it. */
  error?: string;
  /** sha256 hex of the arguments' canonical JSON. */
  argsHash: string;
  /** Only with --log-args, redacted (redact.ts). */
  args?: unknown;
  /** The approval request the call waited on or used. */
  approval?: string;
  /** Counters charged, `<id>+<amount>`. */
  counters?: string[];
}

export interface StartupEvent {
  type: 'startup';
  pid: number;
  host: string;
  version: string;
  /** The policy file, and sha256 hex of its text. */
  policy: string;
  policyHash: string;
  transport: 'stdio' | 'http' | 'sse';
  /** The server command or URL (without its query). */
  upstream: string;
  counters: string;
  dryRun?: true;
}

export interface ShutdownEvent {
  type: 'shutdown';
  /** The exit status the proxy is about to return. */
  code: number;
}

export interface ConfigReloadEvent {
  type: 'config_reload';
  /** What was reloaded. */
  file: string;
  what: 'policy' | 'lock';
  /** sha256 hex of the text in force before, and of the new text. */
  oldHash: string;
  newHash: string;
  /** false: the new text was rejected and the old stays in force. */
  ok: boolean;
  error?: string;
}

interface ApprovalBase {
  /** The request's id. */
  id: string;
  tool: string;
  rule: string;
  session: string;
}

export interface ApprovalRequestedEvent extends ApprovalBase {
  type: 'approval_requested';
  mode: ApprovalMode;
  scope: Scope;
  argsHash: string;
  /** ISO time. */
  expiresAt: string;
}

export interface ApprovalDecidedEvent extends ApprovalBase {
  type: 'approval_decided';
  approved: boolean;
  by: string;
  via: DecidedVia;
  reason?: string;
}

/** A request's end other than a decision: nobody decided in time, the client withdrew the call,
 * or a grant was used by the call it was given for. */
export interface ApprovalEndedEvent extends ApprovalBase {
  type: 'approval_expired' | 'approval_withdrawn' | 'approval_used';
}

export interface StateUnavailableEvent {
  type: 'state_unavailable';
  /** Which store: the counters or the approvals. */
  store: 'counters' | 'approvals';
  error: string;
  /** What the proxy did meanwhile: closed denies the calls needing the store, open lets them. */
  failMode?: 'open' | 'closed';
}

/** A policy entry that names no tool the server offers, so its rules never apply (or it hides
 * nothing): told once per policy loaded, after the first whole tools/list. */
export interface PolicyUnmatchedEvent {
  type: 'policy_unmatched';
  /** The policy file, and the entry's line there (absent for a policy built in code). */
  file: string;
  line?: number;
  section: 'tools' | 'hide';
  /** The key or entry as written. */
  name: string;
  pattern?: true;
  /** The offered tool it most likely means, and others that fit as well. */
  suggestion?: string;
  alternatives?: string[];
  /** How many tools the server offered. */
  tools: number;
}

export type ApprovalEvent = ApprovalRequestedEvent | ApprovalDecidedEvent | ApprovalEndedEvent;

/** Everything a proxy (or the approvals command) reports. */
export type ProxyEvent = StartupEvent | ShutdownEvent | ToolCallEvent | ConfigReloadEvent | ApprovalEvent | StateUnavailableEvent | PolicyUnmatchedEvent;
export type EventType = ProxyEvent['type'];

export const EVENT_TYPES: readonly EventType[] = [
  'startup',
  'shutdown',
  'tool_call',
  'config_reload',
  'approval_requested',
  'approval_decided',
  'approval_expired',
  'approval_withdrawn',
  'approval_used',
  'state_unavailable',
  'policy_unmatched',
];

/** An event as written: who wrote it, when, and its place in the writer's chain. */
export type AuditRecord = ProxyEvent & {
  /** ISO time. */
  ts: string;
  /** The writing process (file names carry it too). */
  instance: string;
  /** 1, 2, … within the instance, across its files. */
  seq: number;
  /** The hash of the record before it (GENESIS for an instance's first). */
  prev: string;
  /** On an instance's first record of a new file: the file the previous record is in. */
  prevFile?: string;
  hash: string;
};

/** Where events go. Emitting never throws and never waits: an observer that fails reports it
 * itself. */
export interface EventSink {
  emit(event: ProxyEvent): void;
}

/** Every sink in turn (none: events go nowhere). */
export function fanOut(sinks: readonly (EventSink | undefined)[]): EventSink {
  const live = sinks.filter((s): s is EventSink => s !== undefined);
  return {
    emit(event) {
      for (const sink of live) {
        try {
          sink.emit(event);
        } catch {
          // An observer's bug must not reach the call it observes.
        }
      }
    },
  };
}

/** A span per tools/call (tracing.ts: OpenTelemetry, loaded only when it is configured). */
export interface CallTracer {
  /** A tools/call arrived. `meta` is its `_meta` (which may carry a W3C `traceparent` and
   * `tracestate`); `startedAt` is ms since the epoch. */
  start(tool: string, meta: Readonly<Record<string, unknown>> | undefined, startedAt: number): CallSpan;
  /** Sends what is buffered and stops. */
  close(): Promise<void>;
}

export interface CallSpan {
  /** What to put in the forwarded request's `_meta` (`traceparent`, and `tracestate` when there
   * is one), so the server's own spans join the trace. */
  readonly propagation: Readonly<Record<string, string>>;
  /** The call's event, once its outcome is known: the span's attributes and status. */
  end(event: ToolCallEvent, endedAt: number): void;
}
