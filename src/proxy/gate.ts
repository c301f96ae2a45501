// The gate: everything between a parsed tools/call and its verdict, and nothing of channels,
// ids or transports. Pinning first (a changed definition is a different tool), then what the
// policy needs gathered (the tool's class, counter values, its schema), then the pure
// decision, then the counters reserved. What it returns is the one place every outcome is
// known, so callers answer, forward and record from it.
//
// Counters follow reserve → forward → settle: an admitted call holds a reservation, which is
// settled once the upstream answers (committed when the tool ran, rolled back when not).
import { rateLimitDenial } from '../engine/messages.js';
import type { Charge, CounterRef, Decision, Denial, ToolCall, ToolSchemaInfo } from '../engine/types.js';
import { isObject, type JsonRpcResponse } from '../jsonrpc/message.js';
import type { Logger } from '../log.js';
import type { ToolClass } from '../policy/model.js';
import { storageKey } from '../state/keys.js';
import type { CounterStore, Reservation } from '../state/store.js';
import type { PageFetcher, ToolCatalogue } from './catalogue.js';
import { noteUnpinned, type PolicyInForce } from './policy-holder.js';
import type { ApprovalRecord, ApprovalStore } from '../approval/types.js';
import { approvalStep, usedUp, type Answered } from './approval-gate.js';

export type FailMode = 'open' | 'closed';

/** What the gate reads and charges: the policy in force and the session's view of the world. */
export interface GateDeps {
  policy: PolicyInForce;
  catalogue: ToolCatalogue;
  /** The proxy's own tools/list, for when the catalogue does not know the tool yet. */
  listTools: PageFetcher;
  store: CounterStore;
  /** Where approval requests and grants live; absent, a call that needs approval is refused. */
  approvals?: ApprovalStore;
  onApprovalRequested?: (record: ApprovalRecord) => void;
  /** Whose counters `scope: session` means. (`scope: identity` ones come from the policy with
   * their caller's subject on the ref, see proxy/caller.ts, so storageKey needs nothing more.) */
  sessionId: string;
  failMode: FailMode;
  /** --dry-run: a call needing approval is not held (nothing is asked); it is reported as the
   * denial it would wait under, and the caller forwards it. */
  dryRun?: boolean;
  now: () => number;
  log: Logger;
}

export type GateOutcome =
  /** `approval`: the request whose grant this call used. */
  | { kind: 'admit'; decision: Decision; reservation?: Reservation; approval?: ApprovalRecord }
  | { kind: 'deny'; denial: Denial }
  /** Held for a human (hold and client modes): wait for the request, then gate the call again
   * with it as `answered`. Nothing is reserved yet. */
  | { kind: 'hold'; decision: Decision; request: ApprovalRecord };

/** `answered`: a held call's request, no longer pending (see approval-gate.ts). */
export async function gateCall(call: ToolCall, deps: GateDeps, answered?: Answered): Promise<GateOutcome> {
  const { policy, catalogue } = deps;
  const lock = policy.lock;
  if (lock !== undefined && !policy.isHidden(call.name)) {
    const definition = await catalogue.definitionFor(call.name, deps.listTools);
    const refused = lock.check(call.name, definition);
    if (refused !== undefined) {
      noteUnpinned(lock, deps.log, call.name, definition, refused.message);
      return { kind: 'deny', denial: refused };
    }
  }
  let needs = policy.requirements(call);
  let toolClass: ToolClass | null | undefined;
  if (needs.needsClass) {
    toolClass = await catalogue.classFor(call.name, deps.listTools);
    needs = policy.requirements(call, toolClass);
  }
  const counters = needs.reads.length > 0 ? await readCounters(needs.reads, deps) : undefined;
  let schema: ToolSchemaInfo | null | undefined;
  if (needs.needsSchema) schema = await catalogue.schemaFor(call.name, deps.listTools, needs.needsValidator);

  const decision = policy.decide({ call, now: deps.now(), counters, schema, toolClass });
  if (!decision.allowed) return { kind: 'deny', denial: decision.denial! };
  let grant: { record: ApprovalRecord; claim: boolean } | undefined;
  if (decision.approval !== undefined && deps.dryRun) return { kind: 'deny', denial: wouldHold(call, decision.approval.rule) };
  if (decision.approval !== undefined) {
    const step = await approvalStep(call, decision.approval, deps, answered);
    if (step.kind === 'deny') return step;
    if (step.kind === 'hold') return { kind: 'hold', decision, request: step.record };
    grant = step;
  }
  // Counters are charged when the call runs, not when it was asked: reserve, then claim the
  // grant, and give the charge back if another proxy claimed it first.
  let reservation: Reservation | undefined;
  if (decision.charges.length > 0) {
    const reserved = await reserve(decision.charges, deps);
    if ('denial' in reserved) return { kind: 'deny', denial: reserved.denial };
    reservation = reserved.reservation;
  }
  if (grant?.claim && !(await claimOnce(grant.record, deps))) {
    if (reservation) await deps.store.rollback(reservation, deps.now()).catch(() => {});
    return { kind: 'deny', denial: usedUp(call, decision.approval!, grant.record) };
  }
  return { kind: 'admit', decision, reservation, approval: grant?.record };
}

function wouldHold(call: ToolCall, rule: string): Denial {
  return { kind: 'approval_pending', rule, message: `The call to ${JSON.stringify(call.name)} would be held for human approval (rule ${JSON.stringify(rule)})` };
}

async function claimOnce(record: ApprovalRecord, deps: GateDeps): Promise<boolean> {
  try {
    return deps.approvals !== undefined && (await deps.approvals.claim(record.id, deps.now())).ok;
  } catch (err) {
    deps.log.error('approval store unavailable while claiming a grant', { error: String(err), id: record.id });
    return false;
  }
}

async function readCounters(reads: readonly CounterRef[], deps: GateDeps): Promise<Map<string, number> | undefined> {
  try {
    const values = await deps.store.read(
      reads.map((ref) => ({ key: storageKey(ref, deps.sessionId), window: ref.window })),
      deps.now(),
    );
    return new Map(reads.map((ref, i) => [ref.id, values[i] ?? 0]));
  } catch (err) {
    deps.log.error('counter store unavailable while reading counters', { error: String(err), failMode: deps.failMode });
    // Fail open reads every counter as zero; fail closed leaves them unknown, which denies.
    return deps.failMode === 'open' ? new Map(reads.map((ref) => [ref.id, 0])) : undefined;
  }
}

async function reserve(charges: Charge[], deps: GateDeps): Promise<{ reservation?: Reservation } | { denial: Denial }> {
  const items = charges.map((c) => ({
    key: storageKey(c.ref, deps.sessionId),
    window: c.ref.window,
    amount: c.amount,
    limits: c.limits,
  }));
  try {
    const outcome = await deps.store.reserve(items, deps.now());
    if (outcome.ok) return { reservation: outcome.reservation };
    return { denial: rateLimitDenial(charges[outcome.index]!, outcome.current, outcome.retryAfterMs) };
  } catch (err) {
    deps.log.error('counter store unavailable while reserving', { error: String(err), failMode: deps.failMode });
    if (deps.failMode === 'open') return {};
    return {
      denial: {
        kind: 'state_unavailable',
        rule: charges[0]!.rule,
        message: 'The policy needs a counter for this call and the counter store is unavailable, so the call is refused.',
      },
    };
  }
}

/** Settles a reservation once the upstream has answered: committed when the tool ran, rolled
 * back when it did not (see `toolRan`). */
export function settle(store: CounterStore, reservation: Reservation, ran: boolean, now: number, log: Logger): Promise<void> {
  const done = ran ? store.commit(reservation, now) : store.rollback(reservation, now);
  return done.catch((err: unknown) => log.error('counter store failed to settle a reservation', { error: String(err) }));
}

/** Whether a tools/call answer means the tool ran: not a JSON-RPC error, and not a 2026-07-28
 * `input_required` result (the client will retry with the input, and that retry is charged).
 * A result with isError did run, so it keeps its charge. */
export function toolRan(msg: JsonRpcResponse): boolean {
  if (msg.error !== undefined && msg.error !== null) return false;
  return !(isObject(msg.result) && msg.result.resultType === 'input_required');
}
