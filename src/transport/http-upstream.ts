// A remote MCP server as the upstream: Streamable HTTP through the official SDK's client
// transport, falling back to the legacy HTTP+SSE transport when the server does not speak it.
// One upstream session serves the whole proxy run. Whatever cannot be delivered is answered
// here with a JSON-RPC error, as if the server had answered, so no client request hangs and
// the interceptor settles its counters.
//
// TCP no-delay: Node's fetch (undici) calls `socket.setNoDelay(true)` on every socket it
// connects (checked on Node 20 through the `undici:client:connected` diagnostics channel), so
// no dispatcher of our own is needed, and `undici` is not a dependency.
import { constants } from 'node:os';
import { SSEClientTransport, SseError } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { DEFAULT_MAX_DEPTH } from '../jsonrpc/depth.js';
import { INTERNAL_ERROR, errorResponse } from '../jsonrpc/errors.js';
import { classify, isObject, type JsonRpcId, type JsonRpcResponse } from '../jsonrpc/message.js';
import type { Logger } from '../log.js';
import { inboundValue, type Channel } from './channel.js';
import { InFlightLedger, requestId, type InFlight } from './http-inflight.js';
import { describeUrl, errorText, firstLine, jsonRpcErrorOf, parseJson, speaksLegacySse, sseCandidates, startsWithSse, type Refusal } from './http-negotiation.js';
import { modernHeaders } from './http-upstream-headers.js';
import type { Upstream, UpstreamEvents, UpstreamSpec } from './upstream.js';

export type HttpUpstreamSpec = Extract<UpstreamSpec, { kind: 'http' }>;

export interface HttpUpstreamOptions {
  log: Logger;
  /** How long the session gets to end (in-flight answers, then DELETE) when the client is gone. */
  graceMs?: number;
  /** How long a request whose response stream ended unanswered may still be answered on a
   * resumed stream before it is answered with an error. */
  lostAfterMs?: number;
  /** How long the legacy transport may take to receive its `endpoint` event. */
  sseStartTimeoutMs?: number;
  /** Deepest nesting accepted in a server message (see jsonrpc/depth.ts). */
  maxDepth?: number;
}

export function openHttpUpstream(spec: HttpUpstreamSpec, events: UpstreamEvents, opts: HttpUpstreamOptions): Upstream {
  return new HttpUpstream(spec, events, opts);
}

export class HttpUpstream implements Upstream {
  readonly channel: Channel;
  readonly done: Promise<number>;
  /** Nothing is buffered on our side: the SDK transports send at once. */
  readonly congested = false;

  private readonly log: Logger;
  private readonly url: URL;
  private readonly where: string;
  private readonly grace: number;
  private readonly lostAfter: number;
  private readonly sseTimeout: number;
  private readonly maxDepth: number;
  private readonly userHeaders: Headers;

  private mode: 'undecided' | 'streamable' | 'sse' = 'undecided';
  private transport: Transport | undefined;
  /** Resolves once the first message has chosen the transport; later messages wait for it. */
  private decided: Promise<void> | undefined;
  /** Some HTTP response has come back from the upstream: it exists at this address. */
  private reached = false;
  private closing = false;
  private paused = false;
  private finished = false;
  private ending: Promise<void> | undefined;
  /** Server messages that arrived while paused, in order. */
  private readonly held: JSONRPCMessage[] = [];
  private readonly ledger = new InFlightLedger();
  private readonly timers = new Set<NodeJS.Timeout>();
  private resolveDone!: (code: number) => void;

  constructor(private readonly spec: HttpUpstreamSpec, private readonly events: UpstreamEvents, opts: HttpUpstreamOptions) {
    this.log = opts.log;
    this.url = new URL(spec.url);
    this.where = describeUrl(this.url);
    this.grace = opts.graceMs ?? 5000;
    this.lostAfter = opts.lostAfterMs ?? 5000;
    this.sseTimeout = opts.sseStartTimeoutMs ?? 10_000;
    this.maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.done = new Promise<number>((resolve) => (this.resolveDone = resolve));
    this.userHeaders = new Headers(spec.headers);
    this.channel = {
      send: (message) => this.enqueue(message),
      sendRaw: (_text, message) => this.enqueue(message),
    };
  }

  // ------------------------------------------------------------------ Upstream

  shutdown(): void {
    this.stop(0);
  }

  /** A remote server gets no signal: the proxy ends its session and exits as if killed by it. */
  signal(sig: NodeJS.Signals): void {
    this.stop(128 + (constants.signals[sig] ?? 0));
  }

  /** Never congested, so never drained. */
  onDrain(): void {}

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    while (this.held.length > 0 && !this.paused) this.events.onMessage(inboundValue(this.held.shift(), this.maxDepth));
  }

  // ------------------------------------------------------------------ HTTP

  /** Every HTTP exchange of both SDK transports goes through here (an arrow: the SDK calls it
   * unbound). */
  private readonly fetchUpstream: FetchLike = async (target, init) => {
    // The transport's own headers win over the user's (the flags cannot set those anyway).
    const headers = new Headers(this.userHeaders);
    new Headers(init?.headers).forEach((value, name) => headers.set(name, value));
    let message: unknown;
    let signal = init?.signal ?? undefined;
    if (init?.method === 'POST' && typeof init.body === 'string') {
      message = parseJson(init.body);
      for (const [name, value] of Object.entries(modernHeaders(message))) headers.set(name, value);
      const entry = this.requestEntry(message);
      if (entry?.abort) signal = signal ? AbortSignal.any([signal, entry.abort.signal]) : entry.abort.signal;
    }
    const response = await fetch(target, { ...init, headers, signal });
    this.reached = true;
    if (init?.method !== 'POST' || typeof init.body !== 'string') return response;
    if (!response.ok) {
      const text = await response.clone().text().catch(() => '');
      this.ledger.refused(init.body, {
        status: response.status,
        statusText: response.statusText,
        error: jsonRpcErrorOf(text),
        hadSession: headers.has('mcp-session-id'),
      });
      return response;
    }
    const id = requestId(message);
    if (id === undefined || !response.body || this.mode === 'sse') return response;
    // Watch the response stream: one that ends without the answer has lost the request.
    return new Response(watchEnd(response.body, () => this.streamEnded(id)), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };

  private requestEntry(message: unknown): InFlight | undefined {
    const id = requestId(message);
    return id === undefined ? undefined : this.ledger.get(id);
  }

  private streamEnded(id: JsonRpcId): void {
    if (!this.ledger.awaits(id) || this.closing) return;
    // The SDK resumes a stream that had event ids; give it the time to.
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.ledger.awaits(id) && !this.closing) {
        this.log.warn('the upstream closed a response stream without answering', { server: this.where });
        this.answer(id, `Upstream ${this.where} closed the response stream before answering`);
      }
    }, this.lostAfter);
    this.timers.add(timer);
  }

  private makeStreamable(): StreamableHTTPClientTransport {
    const t = new StreamableHTTPClientTransport(this.url, { fetch: this.fetchUpstream });
    t.onmessage = (m) => this.fromUpstream(m);
    t.onerror = (err) => {
      if (!this.closing) this.log.debug('upstream transport error', { server: this.where, error: firstLine(err.message) });
    };
    return t;
  }

  private async startSse(candidates: URL[]): Promise<SSEClientTransport> {
    let lastError: unknown;
    for (const candidate of candidates) {
      const t = new SSEClientTransport(candidate, { fetch: this.fetchUpstream });
      t.onmessage = (m) => this.fromUpstream(m);
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          t.start(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no endpoint event within ${this.sseTimeout} ms`)), this.sseTimeout);
          }),
        ]);
        clearTimeout(timer);
        t.onerror = (err) => {
          if (this.closing || !(err instanceof SseError)) return;
          // The event stream carries every answer: those still owed are lost with it.
          this.log.warn('the upstream event stream broke', { server: this.where, error: err.message });
          for (const id of this.ledger.pending()) this.answer(id, `Upstream ${this.where} event stream broke before answering`);
        };
        return t;
      } catch (err) {
        clearTimeout(timer);
        lastError = err;
        this.log.debug('no HTTP+SSE endpoint here', { url: describeUrl(candidate), error: errorText(err) });
        await t.close().catch(() => {});
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  // ------------------------------------------------------------------ choosing the transport

  /** Chooses the transport with the first message, which it delivers. */
  private async decide(first: JSONRPCMessage): Promise<void> {
    if (startsWithSse(this.url, this.spec.transport)) {
      try {
        this.transport = await this.startSse([this.url]);
      } catch (err) {
        this.fatal(`cannot open the upstream's HTTP+SSE event stream at ${this.where}`, errorText(err), first);
        return;
      }
      this.mode = 'sse';
      this.log.info('connected to the upstream', { server: this.where, transport: 'sse' });
      await this.deliver(first);
      return;
    }
    const streamable = this.makeStreamable();
    await streamable.start();
    this.transport = streamable;
    this.mode = 'streamable';
    try {
      await streamable.send(first);
      this.log.info('connected to the upstream', { server: this.where, transport: 'streamable-http' });
      return;
    } catch (err) {
      const refusal = this.ledger.refusalFor(first);
      if (this.spec.transport === 'auto' && refusal && speaksLegacySse(refusal)) {
        try {
          const sse = await this.startSse(sseCandidates(this.url));
          await streamable.close().catch(() => {});
          this.transport = sse;
          this.mode = 'sse';
          this.log.info('the upstream does not speak Streamable HTTP; using HTTP+SSE', { server: this.where, status: refusal.status });
          await this.deliver(first);
          return;
        } catch {
          // Not an HTTP+SSE server either: the first refusal is the answer.
        }
      }
      this.failed(first, err, refusal);
    }
  }

  // ------------------------------------------------------------------ client -> upstream

  private enqueue(message: unknown): void {
    if (this.closing || this.finished) return;
    const c = classify(message);
    if (c.kind === 'request') {
      const modern = modernHeaders(message)['mcp-method'] !== undefined;
      this.ledger.sent(c.msg.id, { method: c.msg.method, abort: modern ? new AbortController() : undefined });
    } else if (c.kind === 'notification' && c.msg.method === 'notifications/cancelled' && isObject(c.msg.params)) {
      this.cancelled(c.msg.params.requestId);
    }
    const msg = message as JSONRPCMessage;
    if (!this.decided) {
      this.decided = this.decide(msg).catch((err: unknown) => this.failed(msg, err, undefined));
      return;
    }
    void this.decided.then(() => this.deliver(msg));
  }

  /** A cancelled request is owed no answer (a late one is dropped). On Streamable HTTP in the
   * 2026-07-28 era, closing the request's stream is the cancellation. */
  private cancelled(requestId: unknown): void {
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return;
    const entry = this.ledger.take(requestId);
    if (entry?.abort && this.mode === 'streamable') entry.abort.abort();
  }

  private async deliver(message: JSONRPCMessage): Promise<void> {
    if (!this.transport || this.finished) {
      this.failed(message, new Error('no connection to the upstream'), undefined);
      return;
    }
    try {
      await this.transport.send(message);
    } catch (err) {
      this.failed(message, err, this.ledger.refusalFor(message));
    }
  }

  /** A message could not be delivered: answer it if it was a request, and log why. */
  private failed(message: unknown, err: unknown, refusal: Refusal | undefined): void {
    const id = requestId(message);
    const where = this.where;
    if (this.closing) return;
    if (id !== undefined && !this.ledger.awaits(id)) return; // cancelled meanwhile
    if (!refusal) {
      if (!this.reached) {
        this.fatal(`cannot reach the upstream server at ${where}`, errorText(err), message);
        return;
      }
      this.log.warn('could not deliver a message to the upstream', { server: where, error: errorText(err) });
      if (id !== undefined) this.answer(id, `Upstream ${where} could not be reached: ${errorText(err)}`);
      return;
    }
    if (refusal.status === 404 && refusal.hadSession && this.mode === 'streamable') {
      this.sessionGone();
      if (id !== undefined) this.answer(id, `Upstream ${where} answered HTTP 404: the session has ended; initialize again`);
      return;
    }
    this.log.warn('the upstream refused a message', { server: where, status: refusal.status });
    if (id === undefined) return;
    if (refusal.status < 500 && refusal.error) {
      // The server's own JSON-RPC answer, given with an HTTP error status.
      this.answerLocally(id, { jsonrpc: '2.0', id, error: refusal.error });
      return;
    }
    this.answer(id, `Upstream ${where} answered HTTP ${refusal.status}${refusal.statusText ? ` ${refusal.statusText}` : ''}`);
  }

  /** The server forgot the session: start afresh, so the next initialize opens a new one. */
  private sessionGone(): void {
    this.log.warn('the upstream session has ended (HTTP 404); the next initialize starts a new one', { server: this.where });
    const old = this.transport;
    const fresh = this.makeStreamable();
    this.transport = fresh;
    void fresh.start();
    for (const id of this.ledger.pending()) this.answer(id, `Upstream ${this.where} answered HTTP 404: the session has ended; initialize again`);
    void old?.close().catch(() => {});
  }

  /** The upstream could not be reached when the proxy started: answer, report and stop. */
  private fatal(reason: string, detail: string, message: unknown): void {
    this.log.error(`${reason}: ${detail}`);
    const text = `Upstream ${this.where} could not be reached: ${detail}`;
    for (const owed of this.ledger.pending()) this.answer(owed, text);
    const id = requestId(message);
    if (id !== undefined) this.answer(id, text);
    this.closing = true;
    void this.transport?.close().catch(() => {});
    this.finish(1);
  }

  // ------------------------------------------------------------------ upstream -> client

  private fromUpstream(message: JSONRPCMessage): void {
    const c = classify(message);
    if (c.kind === 'response' && c.msg.id !== null) {
      if (this.ledger.lateAnswer(c.msg.id)) return; // answered already, with an error
      const entry = this.ledger.take(c.msg.id);
      if (entry === undefined) {
        // Not an answer to anything sent (a call the gate is still deciding or has denied, a
        // cancelled one, an id nobody used): delivered, it would pass for the real answer.
        this.log.warn('dropped an answer from the server to a request it was not sent, or no longer awaits (answered, cancelled or timed out)', { server: this.where, id: JSON.stringify(c.msg.id) });
        return;
      }
      if (entry.method === 'initialize' && isObject(c.msg.result) && typeof c.msg.result.protocolVersion === 'string') {
        // Later requests carry MCP-Protocol-Version (2025-06-18 and later require it).
        this.transport?.setProtocolVersion?.(c.msg.result.protocolVersion);
      }
    }
    this.hand(message);
  }

  private hand(message: unknown): void {
    if (this.finished) return;
    if (this.paused) this.held.push(message as JSONRPCMessage);
    else this.events.onMessage(inboundValue(message, this.maxDepth));
  }

  private answer(id: JsonRpcId, text: string): void {
    this.answerLocally(id, errorResponse(id, INTERNAL_ERROR, text));
  }

  private answerLocally(id: JsonRpcId, response: JsonRpcResponse): void {
    if (this.ledger.answerHere(id)) this.hand(response);
  }

  // ------------------------------------------------------------------ lifecycle

  private stop(code: number): void {
    this.ending ??= this.endSession().finally(() => this.finish(code));
  }

  private async endSession(): Promise<void> {
    // Answers still owed may arrive for a while; then the session is closed.
    const deadline = Date.now() + this.grace;
    while (this.ledger.size > 0 && Date.now() < deadline && !this.finished) await sleep(25);
    this.closing = true;
    if (this.decided) await Promise.race([this.decided, sleep(this.grace)]);
    const t = this.transport;
    if (t instanceof StreamableHTTPClientTransport && t.sessionId) {
      try {
        await Promise.race([t.terminateSession(), sleep(this.grace)]);
        this.log.debug('ended the upstream session', { server: this.where });
      } catch (err) {
        this.log.debug('the upstream did not end the session', { server: this.where, error: errorText(err) });
      }
    }
    await t?.close().catch(() => {});
  }

  private finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    for (const t of this.timers) clearTimeout(t);
    this.events.onEnd();
    this.resolveDone(code);
  }
}

// ------------------------------------------------------------------ helpers

/** Passes a body through, calling `onEnd` once when it ends, fails or is cancelled. */
function watchEnd(body: ReadableStream<Uint8Array>, onEnd: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let ended = false;
  const end = () => {
    if (!ended) {
      ended = true;
      onEnd();
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) {
          controller.close();
          end();
        } else controller.enqueue(value);
      } catch (err) {
        controller.error(err);
        end();
      }
    },
    cancel(reason) {
      end();
      return reader.cancel(reason);
    },
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
