// The interceptor: one per agent session, between a client channel and an upstream channel.
// Every message is classified once; tools/call goes through the gate (gate.ts), tools/list
// results through the filter (list-filter.ts), everything else passes through. It keeps the
// table of client requests in flight, so every answer finds its call and settles its
// counters, and so every request is answered exactly once: by the server, or by the proxy when
// the server goes away, does not answer a call in time (--call-timeout), or the proxy stops.
// It knows nothing of the transports underneath.
import type { Decision, Denial, ToolCall } from '../engine/types.js';
import { isModernParams, metaOf } from '../jsonrpc/eras.js';
import { INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, REQUEST_TIMEOUT, errorResponse } from '../jsonrpc/errors.js';
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
import type { CounterStore, Reservation } from '../state/store.js';
import type { Channel, Inbound } from '../transport/channel.js';
import { parseToolCall } from './call.js';
import { ToolCatalogue } from './catalogue.js';
import { denialResponse } from './denial.js';
import { gateCall, settle, toolRan, type FailMode, type GateDeps, type GateOutcome } from './gate.js';
import { waitForDecision } from './approval-wait.js';
import { answerIn, approvalQuestion, decisionOf, decodeState, inputRequiredResult, modernCanElicit, paramsForUpstream, canElicitForm, type ApprovalState } from './approval-client.js';
import { argumentsHash } from '../approval/binding.js';
import { clientInfoOf } from './session-key.js';
import type { ApprovalRecord, ApprovalStore } from '../approval/types.js';
import { filterToolsList } from './list-filter.js';
import { OwnRequests } from './own-requests.js';
import { noteListing, noteUnpinned, type PolicyInForce } from './policy-holder.js';
import { cursorOf, ListingWalk } from './listing-walk.js';
import { CallTrail, outcomeOf, UNOBSERVED, type Observers } from './call-trail.js';
import { PendingTable, type Ending, type Pending } from './pending.js';
import { durationWords } from '../engine/messages.js';

export interface InterceptorOptions {
  client: Channel;
  upstream: Channel;
  /** The policy in force; read once per call, so a reload applies to the next call. */
  policy: () => PolicyInForce;
  store: CounterStore;
  /** Where approval requests live (see approval-gate.ts). */
  approvals?: ApprovalStore;
  onApprovalRequested?: (record: ApprovalRecord) => void;
  sessionId: string;
  failMode?: FailMode;
  log: Logger;
  now?: () => number;
  /** How long the proxy waits for its own requests to the upstream (tools/list). */
  upstreamTimeoutMs?: number;
  /** Who hears of each call (the audit trail, metrics, traces), and --dry-run. */
  observers?: Observers;
  /** --call-timeout: how long a forwarded tools/call may go unanswered; 0 or absent, forever. */
  callTimeoutMs?: number;
}

/** What a call held for approval is answered with when the proxy stops. */
const HELD_AT_STOP = 'The policy proxy stopped while the call was held for approval; the call was not run';

/** A progress token as a comparable string (tokens are strings or numbers). */
function tokenOf(holder: unknown): string | undefined {
  const token = isObject(holder) ? holder.progressToken : undefined;
  return typeof token === 'string' ? `s:${token}` : typeof token === 'number' ? `n:${token}` : undefined;
}

function progressTokenOf(params: unknown): string | undefined {
  return tokenOf(metaOf(params));
}

export class Interceptor {
  private readonly pending = new PendingTable();
  private readonly own: OwnRequests;
  /** The proxy's own requests to the client (elicitations asking to approve a held call). */
  private readonly toClient: OwnRequests;
  /** Whether the client declared form elicitation at initialize (2025 revisions). */
  private clientElicits = false;
  /** The client's name and version from initialize, recorded as who decided in the client. */
  private clientName: string | undefined;
  readonly catalogue = new ToolCatalogue();
  /** The client's walk through the pages of tools/list, to check the policy on a whole one. */
  private readonly listing = new ListingWalk();
  private readonly now: () => number;
  private readonly failMode: FailMode;
  private readonly observers: Observers;
  /** Whether the upstream declared tools.listChanged at initialize (legacy sessions). */
  private toolsListChanged = false;
  /** The upstream is gone. */
  private closed = false;
  /** The proxy is stopping: no new request is taken. */
  private stopping = false;
  /** Set once the upstream is gone or the proxy stops: what every new request is answered. */
  private refusal: string | undefined;
  /** Calls being decided, and settlements on their way to the store (see quiesce). */
  private readonly work = new Set<Promise<void>>();

  constructor(private readonly opts: InterceptorOptions) {
    this.now = opts.now ?? Date.now;
    this.failMode = opts.failMode ?? 'closed';
    this.observers = opts.observers ?? UNOBSERVED;
    this.own = new OwnRequests((message) => opts.upstream.send(message), opts.upstreamTimeoutMs ?? 10_000);
    this.toClient = new OwnRequests((message, related) => opts.client.send(message, related), opts.upstreamTimeoutMs ?? 10_000, 'the client');
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
        if (c.msg.id !== null && this.toClient.answer(idKey(c.msg.id), c.msg)) return;
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
      if (c.msg.id === null) return;
      const refusal = errorResponse(c.msg.id, INTERNAL_ERROR, `The client's answer was refused by the policy proxy: ${reason}`);
      if (!this.toClient.answer(idKey(c.msg.id), refusal)) this.opts.upstream.send(refusal);
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
    if (this.refusal !== undefined) {
      this.opts.client.send(errorResponse(msg.id, INTERNAL_ERROR, this.refusal));
      return;
    }
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
      this.track(
        this.handleCall(msg, entry).catch((err: unknown) => {
          this.opts.log.error('internal error while deciding a tool call', { error: String(err) });
          if (entry.ending) return; // answered already
          this.pending.delete(key, entry);
          this.opts.client.send(errorResponse(msg.id, INTERNAL_ERROR, 'Internal error in the policy proxy; the call was not forwarded'));
        }),
      );
      return;
    }
    if (msg.method === 'initialize' && isObject(msg.params)) {
      const caps = msg.params.capabilities;
      this.clientElicits = isObject(caps) && canElicitForm(caps.elicitation);
      this.clientName = clientInfoOf(msg);
    }
    this.pending.set(key, { method: msg.method, progressToken: progressTokenOf(msg.params), cursor: msg.method === 'tools/list' ? cursorOf(msg.params) : undefined });
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
        if (entry) {
          this.pending.delete(key, entry);
          entry.trail?.finished('cancelled', this.now());
        }
      }
    }
    this.opts.upstream.send(msg);
  }

  // ---------------------------------------------------------------- tools/call

  private async handleCall(msg: JsonRpcRequest, entry: Pending): Promise<void> {
    const key = idKey(msg.id);
    const parsed = parseToolCall(msg.params);
    if (!parsed.ok) {
      this.pending.delete(key, entry);
      this.opts.log.warn('refused a malformed tools/call', { reason: parsed.message });
      this.opts.client.send(errorResponse(msg.id, INVALID_PARAMS, `Invalid params: ${parsed.message}`));
      return;
    }
    const call = parsed.call;
    const trail = new CallTrail(call, this.opts.sessionId, this.observers, metaOf(msg.params), this.now(), (name) => this.catalogue.classOf(name));
    entry.trail = trail;
    const modern = isModernParams(msg.params);
    // What goes to the upstream: the request as it came, but for the answer to the proxy's own
    // input_required round (2026-07-28, approval_mode: client), which is taken out.
    let forward = msg;
    let outcome: GateOutcome | undefined;
    const ours = modern ? decodeState((msg.params as Record<string, unknown>).requestState) : undefined;
    if (ours !== undefined) {
      outcome = await this.clientAnswered(msg, call, ours);
      if (ours !== 'invalid') forward = { ...msg, params: paramsForUpstream(msg.params as Record<string, unknown>, ours) };
    } else {
      outcome = await gateCall(call, this.gateDeps(msg.params));
      if (outcome.kind === 'hold' && outcome.request.mode === 'client' && modern && modernCanElicit(msg.params) && !entry.ending) {
        this.pending.delete(key, entry);
        this.opts.log.info('approval asked in the client (input_required)', { id: outcome.request.id, tool: call.name });
        trail.denied({ kind: 'approval_pending', rule: outcome.request.rule, message: 'The call waits for its user to approve it in the client (input_required)', details: { approval: { id: outcome.request.id } } }, this.now());
        this.opts.client.send({ jsonrpc: '2.0', id: msg.id, result: inputRequiredResult(outcome.request, msg.params as Record<string, unknown>) });
        return;
      }
      if (outcome.kind === 'hold') outcome = await this.holdForApproval(msg, call, entry, outcome);
    }
    const reservation = outcome?.kind === 'admit' ? outcome.reservation : undefined;
    // Held, and withdrawn because the proxy stopped or lost its server meanwhile.
    if (outcome === undefined && !entry.cancelled && !entry.ending) this.endGating(key, entry, { reason: this.closed ? this.refusal! : HELD_AT_STOP, outcome: 'cancelled' });
    if (entry.ending) {
      // Answered already, with an error: nothing is forwarded, and the charge is given back.
      if (reservation) await this.opts.store.rollback(reservation, this.now()).catch(() => {});
      trail.withdrawn(this.now(), entry.ending);
      return;
    }
    if (outcome === undefined) {
      this.pending.delete(key, entry);
      trail.withdrawn(this.now());
      return;
    }
    if (outcome.kind === 'hold') throw new Error('an answered call was held again');
    if (outcome.kind === 'deny' && !this.observers.dryRun) {
      this.deny(msg.id, call, outcome.denial, modern, trail);
      return;
    }
    if (entry.cancelled) {
      this.pending.delete(key, entry);
      if (reservation) await this.opts.store.rollback(reservation, this.now()).catch(() => {});
      this.opts.log.info('call cancelled by the client before it was forwarded', { tool: call.name });
      trail.withdrawn(this.now());
      return;
    }
    entry.gating = false;
    entry.reservation = reservation;
    if (outcome.kind === 'deny') {
      // --dry-run: recorded as the denial it would have been, and forwarded uncharged.
      this.opts.log.info('dry run: would deny; forwarded', { tool: call.name, kind: outcome.denial.kind, rule: outcome.denial.rule, reason: outcome.denial.message });
      trail.forwarded({ wouldDeny: outcome.denial });
    } else {
      if (outcome.approval) this.opts.log.info('approval used', { id: outcome.approval.id, tool: call.name });
      this.logAllowed(call, outcome.decision);
      trail.forwarded({ counters: chargesOf(outcome.decision), approval: outcome.approval?.id });
    }
    this.opts.upstream.send(withPropagation(forward, trail.propagation));
    this.startTimer(key, entry, msg.id, call.name);
  }

  /** Waits for a held call's request to be decided (asking in the client when the rule says so
   * and the client can show a form); then the call is gated again with the request's outcome.
   * Undefined: the client withdrew it, nothing to answer. */
  private async holdForApproval(
    msg: JsonRpcRequest,
    call: ToolCall,
    entry: Pending,
    held: Extract<GateOutcome, { kind: 'hold' }>,
  ): Promise<GateOutcome | undefined> {
    const { request } = held;
    const store = this.opts.approvals!;
    const token = metaOf(msg.params)?.progressToken;
    entry.held = true;
    if (entry.trail) entry.trail.heldOn = request.id;
    const abandoned = () => entry.cancelled === true || entry.ending !== undefined || this.stopping || this.closed;
    const asking = new AbortController();
    if (request.mode === 'client') {
      if (this.clientElicits) this.askClient(request, msg.id, asking.signal);
      else this.opts.log.info('approval_mode client: the client cannot show a form, so the call is held for a decision elsewhere', { id: request.id, tool: call.name });
    }
    const end = await waitForDecision(request, {
      store,
      now: this.now,
      log: this.opts.log,
      abandoned,
      onProgress:
        typeof token === 'string' || typeof token === 'number'
          ? (progress) =>
              this.opts.client.send(
                { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress, message: `Waiting for a human to approve request ${request.id}` } },
                msg.id,
              )
          : undefined,
    }).finally(() => {
      asking.abort();
      entry.held = false;
    });
    this.logAnswer(end.record, call);
    if (end.kind === 'withdrawn' && abandoned()) return undefined;
    return gateCall(call, this.gateDeps(msg.params), { record: end.record });
  }

  /** 2025 revisions: asks the client's human with elicitation/create; the answer becomes the
   * request's decision in the store, where the wait sees it. Aborted (decided elsewhere,
   * withdrawn, expired), the client is told to close its form. A client that cannot ask
   * leaves the call held, as hold would. */
  private askClient(request: ApprovalRecord, related: JsonRpcId, signal: AbortSignal): void {
    const fields = { id: request.id, tool: request.tool };
    this.opts.log.info('approval asked in the client (elicitation)', fields);
    const timeoutMs = Math.max(1, request.expiresAt - this.now());
    this.toClient
      .request('elicitation/create', approvalQuestion(request), { related, signal, timeoutMs })
      .then(async (response) => {
        if (response.error) {
          this.opts.log.warn('the client could not ask its user; the call stays held for a decision elsewhere', { ...fields, error: response.error.message });
          return;
        }
        const out = await this.opts.approvals!.decide(request.id, decisionOf(response.result, this.clientName ?? 'MCP client'), this.now());
        if (!out.ok) this.opts.log.info('the client answered after the request was settled', { ...fields, reason: out.reason });
      })
      .catch((err: unknown) => {
        if (!signal.aborted) this.opts.log.warn('asking the client failed; the call stays held', { ...fields, error: String(err) });
      });
  }

  /** 2026-07-28 retry carrying the proxy's request state: the client's answer to the proxy's
   * form becomes the request's decision, and the call is gated with the outcome. The answer
   * counts only for the call it was asked about. */
  private async clientAnswered(msg: JsonRpcRequest, call: ToolCall, ours: ApprovalState | 'invalid'): Promise<GateOutcome> {
    const refuse = (message: string): GateOutcome => {
      this.opts.log.warn('refused an approval answer', { tool: call.name, reason: message });
      return { kind: 'deny', denial: { kind: 'approval_denied', message } };
    };
    const store = this.opts.approvals;
    if (ours === 'invalid') return refuse('The request state of this call is not one the policy proxy can read; call again without it to ask anew.');
    if (store === undefined) return refuse('The policy proxy keeps no approval requests, so this answer cannot be used.');
    let record: ApprovalRecord | undefined;
    try {
      record = await store.get(ours.id, this.now());
      // Only the session that was asked may answer, only for the call it was asked about, and
      // only a request asked in the client: a hold or retry request waits for an operator.
      if (record !== undefined && record.mode === 'client' && record.session === this.opts.sessionId && record.tool === call.name && record.argumentsHash === argumentsHash(call.args)) {
        if (record.status === 'pending') {
          const by = clientInfoOf(msg) ?? 'MCP client';
          const out = await store.decide(record.id, decisionOf(answerIn(msg.params as Record<string, unknown>), by), this.now());
          if (out.ok || out.reason === 'conflict') record = out.record;
        }
      } else if (record !== undefined) {
        return refuse(`The answer to approval request ${ours.id} was given for another call; it does not apply to this one. Call again to ask anew.`);
      }
    } catch (err) {
      this.opts.log.error('approval store unavailable', { error: String(err), tool: call.name });
      return { kind: 'deny', denial: { kind: 'approval_unavailable', message: `The approval store is unavailable, so the answer to request ${ours.id} cannot be read and the call is refused.` } };
    }
    if (record === undefined) return refuse(`Approval request ${ours.id} is unknown or long expired. Call again to ask anew.`);
    this.logAnswer(record, call);
    return gateCall(call, this.gateDeps(msg.params), { record });
  }

  private logAnswer(record: ApprovalRecord, call: ToolCall): void {
    const fields = { id: record.id, tool: call.name, rule: record.rule, by: record.decidedBy, via: record.via, reason: record.reason };
    if (record.status === 'approved') this.opts.log.info('approval granted', fields);
    else if (record.status === 'expired' && record.onTimeout === 'allow') this.opts.log.warn('approval expired unanswered; on_timeout: allow lets the call run', fields);
    else if (record.status === 'expired') this.opts.log.info('approval expired unanswered', fields);
    else this.opts.log.info(`approval ${record.status}`, fields);
  }

  private gateDeps(callParams: unknown): GateDeps {
    return {
      policy: this.opts.policy(),
      catalogue: this.catalogue,
      listTools: this.own.toolsList(callParams),
      store: this.opts.store,
      approvals: this.opts.approvals,
      onApprovalRequested: this.opts.onApprovalRequested,
      sessionId: this.opts.sessionId,
      failMode: this.failMode,
      dryRun: this.observers.dryRun,
      now: this.now,
      log: this.opts.log,
    };
  }

  private deny(id: JsonRpcId, call: ToolCall, denial: Denial, modern: boolean, trail: CallTrail): void {
    this.pending.delete(idKey(id));
    this.opts.log.info('denied', { tool: call.name, kind: denial.kind, rule: denial.rule, reason: denial.message });
    trail.denied(denial, this.now());
    this.opts.client.send(denialResponse(id, denial, modern));
  }

  private logAllowed(call: ToolCall, decision: Decision): void {
    if (!this.opts.log.enabled('info')) return;
    this.opts.log.info('allowed', { tool: call.name, counters: chargesOf(decision)?.join(',') });
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
      this.listing.reset();
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
    if (this.own.answer(key, msg)) return;
    const entry = this.pending.get(key);
    if (!entry && this.pending.lateAnswer(key)) {
      this.opts.log.debug('dropped an answer that came after the proxy answered the request itself', { id: msg.id });
      return;
    }
    if (!entry || entry.gating) {
      this.relay(msg, raw);
      return;
    }
    this.pending.delete(key, entry);
    switch (entry.method) {
      case 'tools/call': {
        if (entry.reservation) this.settle(entry.reservation, toolRan(msg));
        const { outcome, error } = outcomeOf(msg);
        entry.trail?.finished(outcome, this.now(), error);
        break;
      }
      case 'tools/list':
        if (isObject(msg.result)) {
          const names = this.listing.page(entry.cursor, msg.result);
          // Checked after the answer is on its way: the client does not wait for the check.
          if (names !== undefined) {
            const policy = this.opts.policy();
            setImmediate(() => noteListing(policy, names, this.opts.log, this.observers.events));
          }
        }
        // --dry-run shows the agent every tool, as it would see them without the proxy.
        if (isObject(msg.result) && !this.observers.dryRun) {
          this.catalogue.record(msg.result.tools);
          const policy = this.opts.policy();
          const lock = policy.lock;
          const filtered = filterToolsList(msg.result, policy, {
            classOf: (name) => this.catalogue.classOf(name),
            onUnpinned: lock && ((name, tool) => noteUnpinned(lock, this.opts.log, name, tool, lock.check(name, tool)?.message ?? '')),
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
    if (this.own.answer(key, refusal)) return;
    const entry = this.pending.get(key);
    if (!entry || entry.gating) return;
    this.pending.delete(key, entry);
    if (entry.reservation) this.settle(entry.reservation, toolRan(c.msg));
    entry.trail?.finished('jsonrpc_error', this.now(), `refused by the proxy: ${reason}`);
    this.opts.client.send(refusal);
  }

  private settle(reservation: Reservation, ran: boolean): void {
    this.track(settle(this.opts.store, reservation, ran, this.now(), this.opts.log));
  }

  private track(work: Promise<void>): void {
    this.work.add(work);
    void work.finally(() => this.work.delete(work));
  }

  // ---------------------------------------------------------------- answered by the proxy

  /** --call-timeout, from the moment a call is forwarded. */
  private startTimer(key: string, entry: Pending, id: JsonRpcId, tool: string): void {
    const ms = this.opts.callTimeoutMs ?? 0;
    if (ms <= 0) return;
    entry.timer = setTimeout(() => this.timedOut(key, entry, id, tool, ms), ms);
    entry.timer.unref();
  }

  /** The server did not answer in time. The call may still run (or have run), so its charge
   * stands; the server is asked to stop, and its late answer is dropped. */
  private timedOut(key: string, entry: Pending, id: JsonRpcId, tool: string, ms: number): void {
    if (!this.pending.answerHere(key, entry)) return;
    const text = `The MCP server did not answer the call to ${JSON.stringify(tool)} within ${durationWords(ms / 1000)}; the policy proxy stopped waiting for it`;
    this.opts.log.warn('a call timed out', { tool, timeoutMs: ms });
    if (entry.reservation) this.settle(entry.reservation, true);
    entry.trail?.finished('timeout', this.now(), text);
    this.opts.upstream.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: text } });
    this.opts.client.send(errorResponse(id, REQUEST_TIMEOUT, text));
  }

  /** Answers a call that is still being decided with an error now; when its decision comes,
   * nothing is forwarded and its charge is given back (see handleCall). */
  private endGating(key: string, entry: Pending, ending: Ending): void {
    entry.ending = ending;
    this.pending.delete(key, entry);
    this.opts.client.send(errorResponse(idFromKey(key), INTERNAL_ERROR, ending.reason));
  }

  private relay(msg: unknown, raw: string | undefined, related?: JsonRpcId): void {
    if (raw !== undefined) this.opts.client.sendRaw(raw, msg, related);
    else this.opts.client.send(msg, related);
  }

  // ---------------------------------------------------------------- lifecycle

  /** After a policy reload: tell a client that can re-list that the visible tools changed. */
  toolsChanged(): void {
    if (!this.toolsListChanged || this.closed) return;
    this.opts.client.send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
  }

  /** The upstream went away (`reason` says how, e.g. "exited with status 3"): every request in
   * flight is answered with an error naming it, and so is every request after. A call it never
   * answered is given its charge back: the server ended without answering it, and a call
   * being decided is not forwarded at all. Idempotent. */
  upstreamClosed(reason = 'closed the connection'): void {
    if (this.closed) return;
    this.closed = true;
    const gone = `The MCP server behind the proxy ${reason}`;
    this.refusal = `${gone}; the request was not forwarded`;
    this.own.failAll(gone);
    const text = `${gone} before answering`;
    const now = this.now();
    for (const [key, entry] of this.pending.snapshot()) {
      if (entry.gating) {
        this.endGating(key, entry, { reason: this.refusal, outcome: 'transport_failure' });
        continue;
      }
      this.pending.delete(key, entry);
      if (entry.reservation) this.settle(entry.reservation, false);
      entry.trail?.finished('transport_failure', now, text);
      this.opts.client.send(errorResponse(idFromKey(key), INTERNAL_ERROR, text));
    }
  }

  /** The proxy is stopping: every new request is refused with an error, and calls held for
   * approval are withdrawn (and answered with an error). What was already forwarded or is
   * being decided goes on; see `abandon` for what is left when the wait is over. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.refusal ??= 'The policy proxy is shutting down; the request was not forwarded';
    for (const [key, entry] of this.pending.snapshot()) {
      if (entry.held) this.endGating(key, entry, { reason: HELD_AT_STOP, outcome: 'cancelled' });
    }
  }

  /** Gives up on every request still in flight, answering each with an error saying `reason`.
   * The server is told with notifications/cancelled (its late answer is dropped), and a
   * forwarded call keeps its charge, since the server may still run it. */
  abandon(reason: string): void {
    const now = this.now();
    for (const [key, entry] of this.pending.snapshot()) {
      if (entry.gating) {
        this.endGating(key, entry, { reason, outcome: 'cancelled' });
        continue;
      }
      this.pending.answerHere(key, entry);
      const id = idFromKey(key);
      if (entry.reservation) this.settle(entry.reservation, true);
      entry.trail?.finished('cancelled', now, reason);
      // initialize must not be cancelled (the specification says so).
      if (!this.closed && entry.method !== 'initialize') this.opts.upstream.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } });
      this.opts.client.send(errorResponse(id, INTERNAL_ERROR, reason));
    }
  }

  /** Client requests not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Resolves once every client request in flight has been answered. */
  idle(): Promise<void> {
    return this.pending.idle();
  }

  /** Resolves once the calls still being decided are done (a held call's request withdrawn,
   * a charge given back) and every settlement has reached the counter store. */
  async quiesce(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }
}

/** The counters a decision charges, `<id>+<amount>`; undefined when none. */
function chargesOf(decision: Decision): string[] | undefined {
  return decision.charges.length > 0 ? decision.charges.map((c) => `${c.ref.id}+${c.amount}`) : undefined;
}

/** The request with the trace context in its `_meta`, when tracing gave one. */
function withPropagation(msg: JsonRpcRequest, propagation: Readonly<Record<string, string>> | undefined): JsonRpcRequest {
  if (propagation === undefined || !isObject(msg.params)) return msg;
  return { ...msg, params: { ...msg.params, _meta: { ...(metaOf(msg.params) ?? {}), ...propagation } } };
}
