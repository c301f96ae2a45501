// The interceptor: one per agent session, between a client channel and an upstream channel.
// Every message is parsed once and classified; tools/call is gated, tools/list results are
// filtered, everything else passes through. It knows nothing of the transports underneath.
import { randomBytes } from 'node:crypto';
import type { CompiledPolicy, ToolLockCheck } from '../engine/compile.js';
import { rateLimitDenial } from '../engine/messages.js';
import type { Charge, CounterRef, Decision, Denial, ToolCall, ToolSchemaInfo } from '../engine/types.js';
import { INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, errorResponse } from '../jsonrpc/errors.js';
import {
  classify,
  type Classified,
  idFromKey,
  idKey,
  isObject,
  type JsonRpcId,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../jsonrpc/message.js';
import type { Logger } from '../log.js';
import type { ToolClass } from '../policy/model.js';
import { storageKey } from '../state/keys.js';
import type { CounterStore, Reservation } from '../state/store.js';
import type { Channel, Inbound } from '../transport/channel.js';
import { parseToolCall } from './call.js';
import { ToolCatalogue, type PageFetcher } from './catalogue.js';
import { denialResponse } from './denial.js';

export type FailMode = 'open' | 'closed';

export interface InterceptorOptions {
  client: Channel;
  upstream: Channel;
  /** The policy in force; read once per call, so a reload applies to the next call. */
  policy: () => CompiledPolicy;
  store: CounterStore;
  sessionId: string;
  statePrefix?: string;
  failMode?: FailMode;
  log: Logger;
  now?: () => number;
  /** How long the proxy waits for its own requests to the upstream (tools/list). */
  upstreamTimeoutMs?: number;
}

/** A client request that has not been answered yet. */
interface Pending {
  method: string;
  /** tools/call only: the counters charged for it. */
  reservation?: Reservation;
  /** Set while the call is still being decided; a cancellation during that time drops it. */
  gating?: boolean;
  cancelled?: boolean;
  /** The request's `_meta.progressToken`, which the upstream's progress notifications carry. */
  progressToken?: string;
}

interface OwnRequest {
  resolve(response: JsonRpcResponse): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const MODERN_VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';
/** The _meta members a 2026-07-28 request must carry; copied onto the proxy's own requests. */
const MODERN_META_KEYS = [MODERN_VERSION_KEY, 'io.modelcontextprotocol/clientCapabilities', 'io.modelcontextprotocol/clientInfo'];

/** A progress token as a comparable string (tokens are strings or numbers). */
function tokenOf(holder: unknown): string | undefined {
  const token = isObject(holder) ? holder.progressToken : undefined;
  return typeof token === 'string' ? `s:${token}` : typeof token === 'number' ? `n:${token}` : undefined;
}

function progressTokenOf(params: unknown): string | undefined {
  return tokenOf(metaOf(params));
}

function metaOf(params: unknown): Record<string, unknown> | undefined {
  return isObject(params) && isObject(params._meta) ? params._meta : undefined;
}

function isModern(params: unknown): boolean {
  return typeof metaOf(params)?.[MODERN_VERSION_KEY] === 'string';
}

export class Interceptor {
  private readonly pending = new Map<string, Pending>();
  private readonly own = new Map<string, OwnRequest>();
  private readonly ownPrefix = `intercept-${randomBytes(6).toString('hex')}-`;
  private ownCounter = 0;
  readonly catalogue = new ToolCatalogue();
  private readonly now: () => number;
  private readonly failMode: FailMode;
  /** Whether the upstream declared tools.listChanged at initialize (legacy sessions). */
  private toolsListChanged = false;
  private closed = false;

  constructor(private readonly opts: InterceptorOptions) {
    this.now = opts.now ?? Date.now;
    this.failMode = opts.failMode ?? 'closed';
  }

  // ---------------------------------------------------------------- client -> upstream

  fromClient(ev: Inbound): void {
    if (ev.kind === 'oversize') {
      this.opts.log.warn('refused an oversized message from the client', { bytes: ev.bytes, limit: ev.limit });
      this.opts.client.send(
        errorResponse(null, INVALID_REQUEST, `Message of ${ev.bytes} bytes exceeds the proxy's limit of ${ev.limit} bytes`),
      );
      return;
    }
    if (ev.kind === 'parse_error') {
      this.opts.log.warn('refused a message that is not JSON', { detail: ev.detail });
      this.opts.client.send(errorResponse(null, PARSE_ERROR, `Parse error: ${ev.detail}`));
      return;
    }
    if (Array.isArray(ev.value)) {
      this.refuseBatch(ev.value);
      return;
    }
    if (ev.kind === 'too_deep') {
      this.clientTooDeep(ev.value, ev.limit);
      return;
    }
    const c = classify(ev.value);
    switch (c.kind) {
      case 'invalid':
        this.opts.log.warn('refused an invalid message from the client', { reason: c.reason });
        this.opts.client.send(errorResponse(c.id, INVALID_REQUEST, `Invalid Request: ${c.reason}`));
        return;
      case 'request':
        this.clientRequest(c.msg);
        return;
      case 'notification':
        this.clientNotification(c.msg);
        return;
      case 'response':
        // The client answering one of the upstream's requests (sampling, roots, elicitation, ping).
        this.opts.upstream.send(c.msg);
        return;
    }
  }

  /** A message nesting beyond the limit never goes further: a request is answered, the
   * client's answer to a server request becomes an error for the server (so it does not wait
   * forever), a notification is dropped. Only its top level is read. */
  private clientTooDeep(value: unknown, limit: number): void {
    const c = classify(value);
    const reason = `the message nests deeper than ${limit} levels`;
    this.opts.log.warn(`refused a message from the client: ${reason}`, { kind: c.kind });
    if (c.kind === 'notification') return;
    if (c.kind === 'response') {
      if (c.msg.id !== null) this.opts.upstream.send(errorResponse(c.msg.id, INTERNAL_ERROR, `The client's answer was refused by the policy proxy: ${reason}`));
      return;
    }
    const id = c.kind === 'request' ? c.msg.id : c.id;
    this.opts.client.send(errorResponse(id, INVALID_REQUEST, `Invalid Request: ${reason}`));
  }

  /** Batches were removed from MCP in 2025-06-18 and no current SDK sends them. Refusing them
   * whole is the one answer that cannot let an element slip past the gate. */
  private refuseBatch(items: unknown[]): void {
    this.opts.log.warn('refused a JSON-RPC batch', { size: items.length });
    const message = 'Invalid Request: JSON-RPC batches are not supported; send each message on its own';
    const answers = items
      .map((item) => classify(item))
      .filter((c): c is Extract<typeof c, { kind: 'request' }> => c.kind === 'request')
      .map((c) => errorResponse(c.msg.id, INVALID_REQUEST, message));
    this.opts.client.send(answers.length > 0 ? answers : errorResponse(null, INVALID_REQUEST, message));
  }

  private clientRequest(msg: JsonRpcRequest): void {
    const key = idKey(msg.id);
    if (this.pending.has(key)) {
      // A second request with the id of one still in flight would make its answer (and the
      // commit or rollback of its counters) ambiguous.
      this.opts.client.send(
        errorResponse(msg.id, INVALID_REQUEST, `Invalid Request: id ${JSON.stringify(msg.id)} is already used by a request in flight`),
      );
      return;
    }
    if (msg.method === 'tools/call') {
      const entry: Pending = { method: msg.method, gating: true, progressToken: progressTokenOf(msg.params) };
      this.pending.set(key, entry);
      this.gate(msg, entry).catch((err: unknown) => {
        this.opts.log.error('internal error while deciding a tool call', { error: String(err) });
        if (this.pending.get(key) === entry) this.pending.delete(key);
        this.opts.client.send(errorResponse(msg.id, INTERNAL_ERROR, 'Internal error in the policy proxy; the call was not forwarded'));
      });
      return;
    }
    this.pending.set(key, { method: msg.method, progressToken: progressTokenOf(msg.params) });
    this.opts.upstream.send(msg);
  }

  private clientNotification(msg: JsonRpcNotification): void {
    if (msg.method === 'tools/call') {
      // A call without an id cannot be answered, so it cannot be denied visibly either.
      this.opts.log.warn('dropped a tools/call sent as a notification (it has no id)');
      return;
    }
    if (msg.method === 'notifications/cancelled' && isObject(msg.params)) {
      const requestId = msg.params.requestId;
      if (typeof requestId === 'string' || typeof requestId === 'number') {
        const key = idKey(requestId);
        const entry = this.pending.get(key);
        if (entry?.gating) {
          // Still being decided: it will not be forwarded at all.
          entry.cancelled = true;
          return;
        }
        // The upstream need not answer a cancelled request, so stop waiting for it. A call's
        // charge stands: the upstream may already have run it.
        if (entry) this.pending.delete(key);
      }
    }
    this.opts.upstream.send(msg);
  }

  // ---------------------------------------------------------------- the gate

  private async gate(msg: JsonRpcRequest, entry: Pending): Promise<void> {
    const key = idKey(msg.id);
    const modern = isModern(msg.params);
    const parsed = parseToolCall(msg.params);
    if (!parsed.ok) {
      this.pending.delete(key);
      this.opts.log.warn('refused a malformed tools/call', { reason: parsed.message });
      this.opts.client.send(errorResponse(msg.id, INVALID_PARAMS, `Invalid params: ${parsed.message}`));
      return;
    }
    const call = parsed.call;
    const policy = this.opts.policy();
    let needs = policy.requirements(call);

    // A pinned tool is checked before the policy: a changed definition is a different tool.
    const lock = policy.lock;
    if (lock !== undefined && !policy.isHidden(call.name)) {
      const definition = await this.catalogue.definitionFor(call.name, this.pageFetcher(msg.params));
      const refused = lock.check(call.name, definition);
      if (refused !== undefined) {
        this.warnUnpinned(lock, call.name, definition, refused.message);
        this.deny(msg.id, call, refused, modern);
        return;
      }
    }
    let toolClass: ToolClass | null | undefined;
    if (needs.needsClass) {
      toolClass = await this.catalogue.classFor(call.name, this.pageFetcher(msg.params));
      needs = policy.requirements(call, toolClass);
    }

    const counters = needs.reads.length > 0 ? await this.readCounters(needs.reads) : undefined;
    let schema: ToolSchemaInfo | null | undefined;
    if (needs.needsSchema) {
      schema = await this.catalogue.schemaFor(call.name, this.pageFetcher(msg.params), needs.needsValidator);
    }
    const decision = policy.decide({ call, now: this.now(), counters, schema, toolClass });
    if (!decision.allowed) {
      this.deny(msg.id, call, decision.denial!, modern);
      return;
    }

    let reservation: Reservation | undefined;
    if (decision.charges.length > 0) {
      const outcome = await this.reserve(decision.charges);
      if ('denial' in outcome) {
        this.deny(msg.id, call, outcome.denial, modern);
        return;
      }
      reservation = outcome.reservation;
    }

    if (entry.cancelled || this.closed) {
      this.pending.delete(key);
      if (reservation) await this.opts.store.rollback(reservation, this.now()).catch(() => {});
      this.opts.log.info('call cancelled by the client before it was forwarded', { tool: call.name });
      return;
    }
    entry.gating = false;
    entry.reservation = reservation;
    this.logAllowed(call, decision);
    this.opts.upstream.send(msg);
  }

  /** A tool whose definition is not the pinned one is logged once per definition. */
  private warnUnpinned(lock: ToolLockCheck, name: string, definition: Readonly<Record<string, unknown>> | null, message: string): void {
    if (lock.firstSighting(name, definition)) this.opts.log.warn(`tool hidden by the lock file: ${message}`, { tool: name, lock: lock.file });
  }

  private deny(id: JsonRpcId, call: ToolCall, denial: Denial, modern: boolean): void {
    this.pending.delete(idKey(id));
    this.opts.log.info('denied', { tool: call.name, kind: denial.kind, rule: denial.rule, reason: denial.message });
    this.opts.client.send(denialResponse(id, denial, modern));
  }

  private logAllowed(call: ToolCall, decision: Decision): void {
    if (!this.opts.log.enabled('info')) return;
    this.opts.log.info('allowed', {
      tool: call.name,
      counters: decision.charges.length > 0 ? decision.charges.map((c) => `${c.ref.id}+${c.amount}`).join(',') : undefined,
    });
  }

  private async readCounters(reads: readonly CounterRef[]): Promise<Map<string, number> | undefined> {
    try {
      const values = await this.opts.store.read(
        reads.map((ref) => ({ key: storageKey(ref, this.opts.sessionId, this.opts.statePrefix), window: ref.window })),
        this.now(),
      );
      return new Map(reads.map((ref, i) => [ref.id, values[i] ?? 0]));
    } catch (err) {
      this.opts.log.error('counter store unavailable while reading counters', { error: String(err), failMode: this.failMode });
      // Fail open reads every counter as zero; fail closed leaves them unknown, which denies.
      return this.failMode === 'open' ? new Map(reads.map((ref) => [ref.id, 0])) : undefined;
    }
  }

  private async reserve(charges: Charge[]): Promise<{ reservation?: Reservation } | { denial: Denial }> {
    const items = charges.map((c) => ({
      key: storageKey(c.ref, this.opts.sessionId, this.opts.statePrefix),
      window: c.ref.window,
      amount: c.amount,
      limits: c.limits,
    }));
    try {
      const outcome = await this.opts.store.reserve(items, this.now());
      if (outcome.ok) return { reservation: outcome.reservation };
      return { denial: rateLimitDenial(charges[outcome.index]!, outcome.current, outcome.retryAfterMs) };
    } catch (err) {
      this.opts.log.error('counter store unavailable while reserving', { error: String(err), failMode: this.failMode });
      if (this.failMode === 'open') return {};
      return {
        denial: {
          kind: 'state_unavailable',
          rule: charges[0]!.rule,
          message: 'The policy needs a counter for this call and the counter store is unavailable, so the call is refused.',
        },
      };
    }
  }

  /** The proxy's own tools/list, in the era of the call that needs it. */
  private pageFetcher(callParams: unknown): PageFetcher {
    const meta = metaOf(callParams);
    const modernMeta: Record<string, unknown> | undefined =
      meta && typeof meta[MODERN_VERSION_KEY] === 'string'
        ? Object.fromEntries(MODERN_META_KEYS.filter((k) => k in meta).map((k) => [k, meta[k]]))
        : undefined;
    return async (cursor) => {
      const params: Record<string, unknown> = {};
      if (cursor !== undefined) params.cursor = cursor;
      if (modernMeta) params._meta = modernMeta;
      const response = await this.request('tools/list', params);
      if (response.error || !isObject(response.result)) {
        throw new Error(`tools/list failed: ${response.error?.message ?? 'no result'}`);
      }
      const result = response.result;
      return {
        tools: Array.isArray(result.tools) ? result.tools : [],
        nextCursor: typeof result.nextCursor === 'string' ? result.nextCursor : undefined,
      };
    };
  }

  private request(method: string, params: Record<string, unknown>): Promise<JsonRpcResponse> {
    // String ids with a random prefix: they cannot collide with the client's ids in practice,
    // and the responses are consumed here, never relayed.
    const id = `${this.ownPrefix}${++this.ownCounter}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.own.delete(idKey(id));
        reject(new Error(`${method}: the upstream did not answer in time`));
      }, this.opts.upstreamTimeoutMs ?? 10_000);
      this.own.set(idKey(id), { resolve, reject, timer });
      this.opts.upstream.send({ jsonrpc: '2.0', id, method, params });
    });
  }

  // ---------------------------------------------------------------- upstream -> client

  fromUpstream(ev: Inbound): void {
    if (ev.kind === 'oversize' || ev.kind === 'parse_error') {
      this.opts.log.warn('dropped an unreadable message from the upstream', ev.kind === 'oversize' ? { bytes: ev.bytes } : { detail: ev.detail });
      return;
    }
    const c = Array.isArray(ev.value) ? undefined : classify(ev.value);
    if (!c || c.kind === 'invalid') {
      this.opts.log.warn('dropped an invalid message from the upstream', { reason: c?.reason ?? 'batch' });
      // A server request we refuse still gets an answer, so the server does not wait for one.
      if (c?.id != null && isObject(ev.value) && Object.hasOwn(ev.value, 'method')) {
        this.opts.upstream.send(errorResponse(c.id, INVALID_REQUEST, `Invalid Request: ${c.reason}`));
      }
      return;
    }
    if (ev.kind === 'too_deep') {
      this.upstreamTooDeep(c, ev.limit);
      return;
    }
    if (c.kind === 'response') {
      this.upstreamResponse(c.msg, ev.raw);
      return;
    }
    if (c.kind === 'notification' && c.msg.method === 'notifications/tools/list_changed') {
      this.catalogue.invalidate();
    }
    this.relay(c.msg, ev.raw, this.relatedRequest(c.msg));
  }

  /** The client request a server request or notification belongs to, as far as can be told:
   * the request whose progress token a progress notification carries, else the one request in
   * flight when there is exactly one. Undefined means "not tied to a request". */
  private relatedRequest(msg: JsonRpcRequest | JsonRpcNotification): JsonRpcId | undefined {
    const token = msg.method === 'notifications/progress' ? tokenOf(msg.params) : undefined;
    let only: string | undefined;
    let count = 0;
    for (const [key, entry] of this.pending) {
      if (token !== undefined && entry.progressToken === token) return idFromKey(key);
      if (!entry.gating) {
        only = key;
        count++;
      }
    }
    return count === 1 && only !== undefined ? idFromKey(only) : undefined;
  }

  private upstreamResponse(msg: JsonRpcResponse, raw: string | undefined): void {
    if (msg.id === null) {
      this.relay(msg, raw);
      return;
    }
    const key = idKey(msg.id);
    const mine = this.own.get(key);
    if (mine) {
      this.own.delete(key);
      clearTimeout(mine.timer);
      mine.resolve(msg);
      return;
    }
    const entry = this.pending.get(key);
    if (!entry || entry.gating) {
      this.relay(msg, raw);
      return;
    }
    this.pending.delete(key);
    switch (entry.method) {
      case 'tools/call':
        if (entry.reservation) this.settle(entry.reservation, ran(msg));
        break;
      case 'tools/list':
        if (isObject(msg.result)) {
          this.catalogue.record(msg.result.tools);
          const policy = this.opts.policy();
          const lock = policy.lock;
          const filtered = filterToolsList(msg.result, policy, {
            classOf: (name) => this.catalogue.classOf(name),
            onUnpinned: lock && ((name, tool) => this.warnUnpinned(lock, name, tool, lock.check(name, tool)?.message ?? '')),
          });
          if (filtered !== msg.result) {
            this.opts.client.send({ ...msg, result: filtered });
            return;
          }
        }
        break;
      case 'initialize':
        if (isObject(msg.result) && isObject(msg.result.capabilities) && isObject(msg.result.capabilities.tools)) {
          this.toolsListChanged = msg.result.capabilities.tools.listChanged === true;
        }
        break;
    }
    this.relay(msg, raw);
  }

  /** A server message nesting beyond the limit is not relayed. An answer to a client request
   * becomes an error for the client (a call's charge is settled as the answer says: the tool
   * may have run); a server request is answered with an error; a notification is dropped. */
  private upstreamTooDeep(c: Exclude<Classified, { kind: 'invalid' }>, limit: number): void {
    const reason = `the message nests deeper than ${limit} levels`;
    this.opts.log.warn(`refused a message from the upstream: ${reason}`, { kind: c.kind });
    if (c.kind === 'notification') return;
    if (c.kind === 'request') {
      this.opts.upstream.send(errorResponse(c.msg.id, INVALID_REQUEST, `Invalid Request: ${reason}`));
      return;
    }
    if (c.msg.id === null) return;
    const key = idKey(c.msg.id);
    const refusal = errorResponse(c.msg.id, INTERNAL_ERROR, `The MCP server's answer was refused by the policy proxy: ${reason}`);
    const mine = this.own.get(key);
    if (mine) {
      this.own.delete(key);
      clearTimeout(mine.timer);
      mine.resolve(refusal);
      return;
    }
    const entry = this.pending.get(key);
    if (!entry || entry.gating) return;
    this.pending.delete(key);
    if (entry.reservation) this.settle(entry.reservation, ran(c.msg));
    this.opts.client.send(refusal);
  }

  /** Commit when the tool ran; roll back when it did not (see `ran`). A result with isError
   * did run, so it keeps its charge. */
  private settle(reservation: Reservation, didRun: boolean): void {
    const store = this.opts.store;
    const done = didRun ? store.commit(reservation, this.now()) : store.rollback(reservation, this.now());
    done.catch((err: unknown) => this.opts.log.error('counter store failed to settle a reservation', { error: String(err) }));
  }

  private relay(msg: unknown, raw: string | undefined, related?: JsonRpcId): void {
    if (raw !== undefined) this.opts.client.sendRaw(raw, related);
    else this.opts.client.send(msg, related);
  }

  // ---------------------------------------------------------------- lifecycle

  /** After a policy reload: tell a client that can re-list that the visible tools changed. */
  toolsChanged(): void {
    if (!this.toolsListChanged || this.closed) return;
    this.opts.client.send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
  }

  /** The upstream went away: nothing more will be answered. Reservations of calls in flight
   * are kept, since the upstream may have executed them. */
  upstreamClosed(): void {
    this.closed = true;
    for (const [key, req] of this.own) {
      clearTimeout(req.timer);
      req.reject(new Error('the upstream closed'));
      this.own.delete(key);
    }
  }
}

/** Whether a tools/call answer means the tool ran: not a JSON-RPC error, and not a 2026-07-28
 * `input_required` result (the client will retry with the input, and that retry is charged). */
function ran(msg: JsonRpcResponse): boolean {
  if (msg.error !== undefined && msg.error !== null) return false;
  return !(isObject(msg.result) && msg.result.resultType === 'input_required');
}

export interface ListFilterHooks {
  /** The class of a listed tool (for `classes:` under default deny). */
  classOf?: (name: string) => ToolClass | undefined;
  /** Told of each tool removed because its definition is not pinned in the lock. */
  onUnpinned?: (name: string, definition: Readonly<Record<string, unknown>>) => void;
}

/** Removes the tools the policy does not offer (hidden ones; unlisted ones under default deny;
 * with a lock, those whose definition is not the pinned one) from one tools/list result page,
 * keeping every other member (nextCursor, _meta, 2026 cache fields). Returns the same object
 * when nothing is removed. */
export function filterToolsList(result: Record<string, unknown>, policy: CompiledPolicy, hooks: ListFilterHooks = {}): Record<string, unknown> {
  const tools = result.tools;
  if (!Array.isArray(tools)) return result;
  const lock = policy.lock;
  const classOf = policy.usesClasses && policy.policy.defaultAction === 'deny' ? hooks.classOf : undefined;
  const offered = (t: Record<string, unknown> & { name: string }): boolean => {
    if (!policy.isOffered(t.name, classOf?.(t.name))) return false;
    if (lock === undefined || lock.isPinned(t.name, t)) return true;
    hooks.onUnpinned?.(t.name, t);
    return false;
  };
  const kept = tools.filter((t) => !isObject(t) || typeof t.name !== 'string' || offered(t as Record<string, unknown> & { name: string }));
  if (kept.length === tools.length) return result;
  const filtered: Record<string, unknown> = { ...result, tools: kept };
  // A filtered list is specific to this policy: a shared cache must not serve it to others.
  if (filtered.cacheScope === 'public') filtered.cacheScope = 'private';
  return filtered;
}
