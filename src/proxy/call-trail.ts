// One tools/call as its observers see it: from arrival to its denial, or to the server's answer
// (or its absence), told once as a `tool_call` event and, when tracing is on, a span. The
// interceptor opens a trail when a call arrives and closes it exactly once.
import { performance } from 'node:perf_hooks';
import type { CallOutcome, CallSpan, CallTracer, EventSink, ToolCallEvent } from '../audit/event.js';
import { argumentsHash } from '../approval/binding.js';
import type { Denial, ToolCall } from '../engine/types.js';
import { isObject, type JsonRpcResponse } from '../jsonrpc/message.js';
import type { ToolClass } from '../policy/model.js';

/** What a proxy run tells about its calls, and how. */
export interface Observers {
  events: EventSink;
  tracer?: CallTracer;
  /** --dry-run: forward what the policy would deny, and record it as such. */
  dryRun?: boolean;
  /** --log-args: the arguments as the trail may keep them (redacted), or undefined to keep
   * only their hash. `toolClass`: the tool's risk class, when the server's listing told it. */
  argsFor?: (call: ToolCall, toolClass: ToolClass | undefined) => unknown;
  /** The session's caller (its identity's `sub`), told with each call; absent when anonymous. */
  subject?: string;
}

/** Nothing observes: events go nowhere. */
export const UNOBSERVED: Observers = { events: { emit() {} } };

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** What the answer to a forwarded call says became of it. */
export function outcomeOf(msg: JsonRpcResponse): { outcome: CallOutcome; error?: string } {
  if (msg.error !== undefined && msg.error !== null) return { outcome: 'jsonrpc_error', error: String(msg.error.message) };
  if (isObject(msg.result) && msg.result.resultType === 'input_required') return { outcome: 'input_required' };
  if (isObject(msg.result) && msg.result.isError === true) return { outcome: 'tool_error' };
  return { outcome: 'result' };
}

export class CallTrail {
  private readonly started = performance.now();
  private readonly span?: CallSpan;
  private forwardedAt?: number;
  private fields?: Partial<ToolCallEvent>;
  /** The approval request the call is held on, for its record should it be withdrawn. */
  heldOn?: string;
  private done = false;

  constructor(
    private readonly call: ToolCall,
    private readonly session: string,
    private readonly observers: Observers,
    meta: Readonly<Record<string, unknown>> | undefined,
    now: number,
    private readonly classOf?: (tool: string) => ToolClass | undefined,
  ) {
    this.span = observers.tracer?.start(call.name, meta, now);
  }

  /** `_meta` members for the forwarded request, so the server's spans join the trace. */
  get propagation(): Readonly<Record<string, string>> | undefined {
    return this.span?.propagation;
  }

  /** The agent was answered with `denial`. */
  denied(denial: Denial, now: number): void {
    this.emit(
      {
        decision: 'deny',
        kind: denial.kind,
        rule: denial.rule,
        message: denial.message,
        decisionMs: round(performance.now() - this.started),
        approval: approvalIdOf(denial),
      },
      now,
    );
  }

  /** The call was withdrawn before it was forwarded: by the client (no `ending`), or by the
   * proxy as it stopped or lost its server (`ending` says why). */
  withdrawn(now: number, ending?: { outcome: CallOutcome; reason: string }): void {
    this.emit({ decision: 'cancelled', outcome: ending?.outcome ?? 'cancelled', error: ending?.reason, approval: this.heldOn, decisionMs: round(performance.now() - this.started) }, now);
  }

  /** The call went to the server. `wouldDeny`: --dry-run forwarded it although the policy
   * denies it. */
  forwarded(info: { counters?: string[]; approval?: string; wouldDeny?: Denial }): void {
    this.forwardedAt = performance.now();
    const { wouldDeny } = info;
    this.fields = {
      decision: 'allow',
      decisionMs: round(this.forwardedAt - this.started),
      counters: info.counters,
      approval: info.approval ?? (wouldDeny && approvalIdOf(wouldDeny)),
      ...(wouldDeny && { kind: wouldDeny.kind, rule: wouldDeny.rule, message: wouldDeny.message, dryRun: true as const }),
    };
  }

  /** What became of a forwarded call. Only the first end counts. */
  finished(outcome: CallOutcome, now: number, error?: string): void {
    if (this.fields === undefined) return;
    this.emit({ ...this.fields, outcome, error, upstreamMs: round(performance.now() - this.forwardedAt!) } as Partial<ToolCallEvent>, now);
  }

  private emit(fields: Partial<ToolCallEvent>, now: number): void {
    if (this.done) return;
    this.done = true;
    const event = {
      type: 'tool_call',
      session: this.session,
      subject: this.observers.subject,
      tool: this.call.name,
      ...fields,
      argsHash: argumentsHash(this.call.args),
      args: this.observers.argsFor?.(this.call, this.classOf?.(this.call.name)),
    } as ToolCallEvent;
    this.observers.events.emit(event);
    this.span?.end(event, now);
  }
}

function approvalIdOf(denial: Denial): string | undefined {
  const approval = denial.details?.approval;
  return isObject(approval) && typeof approval.id === 'string' ? approval.id : undefined;
}
