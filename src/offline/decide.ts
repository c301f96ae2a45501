// One call decided without a server, step for step as the proxy's gate decides it
// (proxy/gate.ts): what the policy needs gathered (the tool's class, counter values, its
// schema), the pure decision with its trace, then the counters reserved in a store. What the
// server would have listed comes from the caller instead. Shared by `intercept explain` and
// `intercept test`, so that both show the decision the proxy would make.
import { counterRef, declaredCounters, type CompiledPolicy } from '../engine/compile.js';
import { callerRef } from '../engine/decide.js';
import { rateLimitDenial } from '../engine/messages.js';
import { classify } from '../engine/risk.js';
import type { CounterRef, Decision, Identity, ToolCall, ToolSchemaInfo } from '../engine/types.js';
import type { ToolClass } from '../policy/model.js';
import { ToolCatalogue, type PageFetcher } from '../proxy/catalogue.js';
import { storageKey } from '../state/keys.js';
import type { CounterStore, Reservation } from '../state/store.js';

/** The agent session every offline call belongs to (for `scope: session` counters). */
export const OFFLINE_SESSION = 'offline';

/** No server to ask: a tool the caller did not describe is one the server does not list. */
const NO_SERVER: PageFetcher = async () => ({ tools: [] });

/** What the server's tools/list would say of one tool. Keep one per tool description and reuse
 * it: it compiles the schema's validator once. */
export class ToolFacts {
  private catalogue: ToolCatalogue | undefined;

  constructor(
    readonly name: string,
    /** Absent: the server lists no schema for it, so validate rules deny. */
    readonly inputSchema?: Record<string, unknown>,
    /** Absent: what the classifier makes of the tool's name, as for a server that describes it no further. */
    readonly toolClass?: ToolClass,
  ) {}

  async schema(wantValidator: boolean): Promise<ToolSchemaInfo | null> {
    if (this.inputSchema === undefined) return null;
    if (this.catalogue === undefined) {
      this.catalogue = new ToolCatalogue();
      this.catalogue.record([{ name: this.name, inputSchema: this.inputSchema }]);
    }
    return this.catalogue.schemaFor(this.name, NO_SERVER, wantValidator);
  }

  classOf(): { value: ToolClass; given: boolean } {
    return this.toolClass !== undefined ? { value: this.toolClass, given: true } : { value: classify({ name: this.name }).category, given: false };
  }
}

/** The counters a call reads and charges, and whose they are. */
export interface Counters {
  store: CounterStore;
  sessionId: string;
}

export interface OfflineDecision {
  /** With its trace; a call the reservation refused is denied (rate_limit) as the gate does. */
  decision: Decision;
  /** The class the policy asked for, when it did; `given` when the caller said it. */
  toolClass?: { value: ToolClass; given: boolean };
  /** What the allowed call charged: the caller settles it (commit: the tool ran). */
  reservation?: Reservation;
}

/** `identity`: who makes the call (absent: an anonymous caller). */
export async function decideOffline(
  policy: CompiledPolicy,
  call: ToolCall,
  facts: ToolFacts,
  counters: Counters,
  now: number,
  identity?: Identity,
): Promise<OfflineDecision> {
  let needs = policy.requirements(call, undefined, identity);
  let toolClass: { value: ToolClass; given: boolean } | undefined;
  if (needs.needsClass) {
    toolClass = facts.classOf();
    needs = policy.requirements(call, toolClass.value, identity);
  }
  const { store, sessionId } = counters;
  let values: Map<string, number> | undefined;
  if (needs.reads.length > 0) {
    const read = await store.read(
      needs.reads.map((ref) => ({ key: storageKey(ref, sessionId), window: ref.window })),
      now,
    );
    values = new Map(needs.reads.map((ref, i) => [ref.id, read[i] ?? 0]));
  }
  const schema = needs.needsSchema ? await facts.schema(needs.needsValidator) : undefined;
  const decision = policy.decide({ call, now, counters: values, schema, toolClass: toolClass?.value, identity }, { trace: true });
  const out: OfflineDecision = { decision };
  if (toolClass !== undefined) out.toolClass = toolClass;
  if (!decision.allowed || decision.charges.length === 0) return out;

  const items = decision.charges.map((c) => ({ key: storageKey(c.ref, sessionId), window: c.ref.window, amount: c.amount, limits: c.limits }));
  const outcome = await store.reserve(items, now);
  if (outcome.ok) {
    out.reservation = outcome.reservation;
    return out;
  }
  const { approval: _notAsked, ...rest } = decision;
  out.decision = { ...rest, allowed: false, denial: rateLimitDenial(decision.charges[outcome.index]!, outcome.current, outcome.retryAfterMs) };
  return out;
}

/** The counter an id names, as explain prints ids: `<owner>.<name>` for a declared counter, and
 * `<owner>.<name>[<digest>]` for one bucket of a keyed counter. */
export function counterById(policy: CompiledPolicy, id: string): CounterRef | undefined {
  const declared = declaredCounters(policy.policy);
  const own = declared.get(id);
  if (own !== undefined) return own.key === undefined ? counterRef(id, own) : undefined;
  const bucket = /^(.+)\[[0-9a-f]{16}\]$/.exec(id);
  const keyed = bucket ? declared.get(bucket[1]!) : undefined;
  if (keyed?.key === undefined) return undefined;
  return { ...counterRef(bucket![1]!, keyed), id, counter: bucket![1]! };
}

/** Every counter id of the policy (keyed counters by their own id, which names no bucket). */
export function counterIds(policy: CompiledPolicy): string[] {
  return [...declaredCounters(policy.policy).keys()];
}

/** Whether the counter an id names is kept per caller (`scope: identity`): presetting it needs
 * a caller with a subject, whose count it is. */
export function perCaller(policy: CompiledPolicy, id: string): boolean {
  return counterById(policy, id)?.scope === 'identity';
}

/** Charges each counter with its starting value at `now`, as if earlier calls had (a per-caller
 * one as `identity`'s: check perCaller first, since without a subject it throws); returns the
 * ids that name no counter of the policy (nothing is charged for them). */
export async function presetCounters(
  policy: CompiledPolicy,
  values: ReadonlyMap<string, number>,
  counters: Counters,
  now: number,
  identity?: Identity,
): Promise<string[]> {
  const unknown: string[] = [];
  for (const [id, value] of values) {
    const declared = counterById(policy, id);
    const ref = declared && callerRef(declared, identity);
    if (declared === undefined) unknown.push(id);
    else if (ref === undefined) throw new Error(`counter ${id} is kept per caller: presetting it needs a caller with a subject`);
    else if (value > 0) await counters.store.reserve([{ key: storageKey(ref, counters.sessionId), window: ref.window, amount: value, limits: [] }], now);
  }
  return unknown;
}
