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
import { classify, idKey, isObject, type JsonRpcId, type JsonRpcResponse } from '../jsonrpc/message.js';
import type { Logger } from '../log.js';
import type { Upstream, UpstreamEvents, UpstreamSpec } from '../proxy/upstream.js';
import { inboundValue, type Channel } from './channel.js';
import { modernHeaders } from './http-upstream-headers.js';

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

/** JSON-RPC errors by which a 2026-07-28 server answers a request it understood the era of
 * (header mismatch, missing capability, unsupported version): not a sign of an old server. */
const MODERN_ERROR_CODES = new Set([-32020, -32021, -32022]);

/** What the upstream said when it refused a POST. */
export interface Refusal {
  status: number;
  statusText: string;
  /** The JSON-RPC error in the body, when there was one. */
  error?: { code: number; message: string; data?: unknown };
  /** The request carried a session id (so a 404 means the session is gone). */
  hadSession: boolean;
}

interface InFlight {
  method: string;
  /** Aborts this request's own HTTP exchange (cancellation in the 2026-07-28 era). */
  abort?: AbortController;
}

/** Where a URL points, without credentials or query, for logs and error messages. */
export function describeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** The legacy HTTP+SSE endpoints to try for a Streamable HTTP URL: the URL itself, then its
 * `sse` sibling (`/mcp` → `/sse`). */
export function sseCandidates(url: URL): URL[] {
  const sibling = new URL('sse', url);
  return sibling.href === url.href ? [url] : [url, sibling];
}

/** Whether the legacy HTTP+SSE transport is used from the start: asked for, or (in auto mode)
 * a URL whose path ends in `/sse`, the legacy transport's usual endpoint. */
export function startsWithSse(url: URL, mode: 'auto' | 'streamable' | 'sse'): boolean {
  return mode === 'sse' || (mode === 'auto' && /\/sse\/?$/.test(url.pathname));
}

/** Whether a refused first POST is a 2026-07-28 server's answer (it understood the request's
 * era and refused it): not a sign of a legacy HTTP+SSE server. */
export function isModernRefusal(refusal: Refusal): boolean {
  return refusal.error !== undefined && MODERN_ERROR_CODES.has(refusal.error.code);
}

/** Whether a refused first POST says "this server does not speak Streamable HTTP". */
export function speaksLegacySse(refusal: Refusal): boolean {
  if (refusal.status === 405) return true;
  if (refusal.status === 404) return refusal.error === undefined;
  if (refusal.status === 400) return !isModernRefusal(refusal);
  return false;
}

export function openHttpUpstream(spec: HttpUpstreamSpec, events: UpstreamEvents, opts: HttpUpstreamOptions): Upstream {
  const { log } = opts;
  const url = new URL(spec.url);
  const where = describeUrl(url);
  const grace = opts.graceMs ?? 5000;
  const lostAfter = opts.lostAfterMs ?? 5000;
  const sseTimeout = opts.sseStartTimeoutMs ?? 10_000;
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;

  let mode: 'undecided' | 'streamable' | 'sse' = 'undecided';
  let transport: Transport | undefined;
  /** Settles once the first message has chosen the transport; later messages wait for it. */
  let decided: Promise<void> | undefined;
  /** Some HTTP response has come back from the upstream: it exists at this address. */
  let reached = false;
  let closing = false;
  let paused = false;
  const held: JSONRPCMessage[] = [];
  const inFlight = new Map<string, InFlight>();
  /** Requests answered here; a late answer from the upstream is dropped. */
  const answeredHere = new Set<string>();
  /** Refusals recorded by the fetch wrapper, keyed by the request body that was refused. */
  const refusals = new Map<string, Refusal>();
  const timers = new Set<NodeJS.Timeout>();

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  let finished = false;
  const finish = (code: number) => {
    if (finished) return;
    finished = true;
    for (const t of timers) clearTimeout(t);
    events.onEnd();
    resolveDone(code);
  };

  // ------------------------------------------------------------------ HTTP

  const userHeaders = new Headers(spec.headers);

  const fetchUpstream: FetchLike = async (target, init) => {
    // The transport's own headers win over the user's (the flags cannot set those anyway).
    const headers = new Headers(userHeaders);
    new Headers(init?.headers).forEach((value, name) => headers.set(name, value));
    let message: unknown;
    let signal = init?.signal ?? undefined;
    if (init?.method === 'POST' && typeof init.body === 'string') {
      message = parseJson(init.body);
      for (const [name, value] of Object.entries(modernHeaders(message))) headers.set(name, value);
      const entry = requestEntry(message);
      if (entry?.abort) signal = signal ? AbortSignal.any([signal, entry.abort.signal]) : entry.abort.signal;
    }
    const response = await fetch(target, { ...init, headers, signal });
    reached = true;
    if (init?.method !== 'POST' || typeof init.body !== 'string') return response;
    if (!response.ok) {
      const text = await response.clone().text().catch(() => '');
      refusals.set(init.body, {
        status: response.status,
        statusText: response.statusText,
        error: jsonRpcErrorOf(text),
        hadSession: headers.has('mcp-session-id'),
      });
      return response;
    }
    const id = requestId(message);
    if (id === undefined || !response.body || mode === 'sse') return response;
    // Watch the response stream: one that ends without the answer has lost the request.
    return new Response(watchEnd(response.body, () => streamEnded(id)), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };

  const requestEntry = (message: unknown): InFlight | undefined => {
    const id = requestId(message);
    return id === undefined ? undefined : inFlight.get(idKey(id));
  };

  function streamEnded(id: JsonRpcId): void {
    const key = idKey(id);
    if (!inFlight.has(key) || closing) return;
    // The SDK resumes a stream that had event ids; give it the time to.
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (inFlight.has(key) && !closing) {
        log.warn('the upstream closed a response stream without answering', { server: where });
        answer(id, `Upstream ${where} closed the response stream before answering`);
      }
    }, lostAfter);
    timers.add(timer);
  }

  function makeStreamable(): StreamableHTTPClientTransport {
    const t = new StreamableHTTPClientTransport(url, { fetch: fetchUpstream });
    t.onmessage = (m) => fromUpstream(m);
    t.onerror = (err) => {
      if (!closing) log.debug('upstream transport error', { server: where, error: firstLine(err.message) });
    };
    return t;
  }

  async function startSse(candidates: URL[]): Promise<SSEClientTransport> {
    let lastError: unknown;
    for (const candidate of candidates) {
      const t = new SSEClientTransport(candidate, { fetch: fetchUpstream });
      t.onmessage = (m) => fromUpstream(m);
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          t.start(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no endpoint event within ${sseTimeout} ms`)), sseTimeout);
          }),
        ]);
        clearTimeout(timer);
        t.onerror = (err) => {
          if (closing || !(err instanceof SseError)) return;
          // The event stream carries every answer: those still owed are lost with it.
          log.warn('the upstream event stream broke', { server: where, error: err.message });
          for (const key of [...inFlight.keys()]) answerKey(key, `Upstream ${where} event stream broke before answering`);
        };
        return t;
      } catch (err) {
        clearTimeout(timer);
        lastError = err;
        log.debug('no HTTP+SSE endpoint here', { url: describeUrl(candidate), error: errorText(err) });
        await t.close().catch(() => {});
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  // ------------------------------------------------------------------ choosing the transport

  /** Chooses the transport with the first message, which it delivers. */
  async function decide(first: JSONRPCMessage): Promise<void> {
    if (startsWithSse(url, spec.transport)) {
      try {
        transport = await startSse([url]);
      } catch (err) {
        fatal(`cannot open the upstream's HTTP+SSE event stream at ${where}`, errorText(err), first);
        return;
      }
      mode = 'sse';
      log.info('connected to the upstream', { server: where, transport: 'sse' });
      await deliver(first);
      return;
    }
    const streamable = makeStreamable();
    await streamable.start();
    transport = streamable;
    mode = 'streamable';
    try {
      await streamable.send(first);
      log.info('connected to the upstream', { server: where, transport: 'streamable-http' });
      return;
    } catch (err) {
      const refusal = refusalFor(first);
      if (spec.transport === 'auto' && refusal && speaksLegacySse(refusal)) {
        try {
          const sse = await startSse(sseCandidates(url));
          await streamable.close().catch(() => {});
          transport = sse;
          mode = 'sse';
          log.info('the upstream does not speak Streamable HTTP; using HTTP+SSE', { server: where, status: refusal.status });
          await deliver(first);
          return;
        } catch {
          // Not an HTTP+SSE server either: the first refusal is the answer.
        }
      }
      failed(first, err, refusal);
    }
  }

  // ------------------------------------------------------------------ client -> upstream

  function enqueue(message: unknown): void {
    if (closing || finished) return;
    const c = classify(message);
    if (c.kind === 'request') {
      const modern = modernHeaders(message)['mcp-method'] !== undefined;
      inFlight.set(idKey(c.msg.id), { method: c.msg.method, abort: modern ? new AbortController() : undefined });
      answeredHere.delete(idKey(c.msg.id));
    } else if (c.kind === 'notification' && c.msg.method === 'notifications/cancelled' && isObject(c.msg.params)) {
      cancelled(c.msg.params.requestId);
    }
    const msg = message as JSONRPCMessage;
    if (!decided) {
      decided = decide(msg).catch((err: unknown) => failed(msg, err, undefined));
      return;
    }
    void decided.then(() => deliver(msg));
  }

  /** On Streamable HTTP in the 2026-07-28 era, closing a request's stream is its cancellation. */
  function cancelled(requestId: unknown): void {
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return;
    const entry = inFlight.get(idKey(requestId));
    if (!entry?.abort || mode !== 'streamable') return;
    inFlight.delete(idKey(requestId));
    entry.abort.abort();
  }

  async function deliver(message: JSONRPCMessage): Promise<void> {
    if (!transport || finished) {
      failed(message, new Error('no connection to the upstream'), undefined);
      return;
    }
    try {
      await transport.send(message);
    } catch (err) {
      failed(message, err, refusalFor(message));
    }
  }

  function refusalFor(message: unknown): Refusal | undefined {
    const key = JSON.stringify(message);
    const refusal = refusals.get(key);
    refusals.delete(key);
    return refusal;
  }

  /** A message could not be delivered: answer it if it was a request, and log why. */
  function failed(message: unknown, err: unknown, refusal: Refusal | undefined): void {
    const id = requestId(message);
    if (closing) return;
    if (id !== undefined && !inFlight.has(idKey(id))) return; // cancelled meanwhile
    if (!refusal) {
      if (!reached) {
        fatal(`cannot reach the upstream server at ${where}`, errorText(err), message);
        return;
      }
      log.warn('could not deliver a message to the upstream', { server: where, error: errorText(err) });
      if (id !== undefined) answer(id, `Upstream ${where} could not be reached: ${errorText(err)}`);
      return;
    }
    if (refusal.status === 404 && refusal.hadSession && mode === 'streamable') {
      sessionGone();
      if (id !== undefined) answer(id, `Upstream ${where} answered HTTP 404: the session has ended; initialize again`);
      return;
    }
    log.warn('the upstream refused a message', { server: where, status: refusal.status });
    if (id === undefined) return;
    if (refusal.status < 500 && refusal.error) {
      // The server's own JSON-RPC answer, given with an HTTP error status.
      settle(id, { jsonrpc: '2.0', id, error: refusal.error });
      return;
    }
    answer(id, `Upstream ${where} answered HTTP ${refusal.status}${refusal.statusText ? ` ${refusal.statusText}` : ''}`);
  }

  /** The server forgot the session: start afresh, so the next initialize opens a new one. */
  function sessionGone(): void {
    log.warn('the upstream session has ended (HTTP 404); the next initialize starts a new one', { server: where });
    const old = transport;
    const fresh = makeStreamable();
    transport = fresh;
    void fresh.start();
    for (const key of [...inFlight.keys()]) answerKey(key, `Upstream ${where} answered HTTP 404: the session has ended; initialize again`);
    void old?.close().catch(() => {});
  }

  /** The upstream could not be reached when the proxy started: answer, report and stop. */
  function fatal(reason: string, detail: string, message: unknown): void {
    log.error(`${reason}: ${detail}`);
    const text = `Upstream ${where} could not be reached: ${detail}`;
    for (const key of [...inFlight.keys()]) answerKey(key, text);
    const id = requestId(message);
    if (id !== undefined) answer(id, text);
    closing = true;
    void transport?.close().catch(() => {});
    finish(1);
  }

  // ------------------------------------------------------------------ upstream -> client

  function fromUpstream(message: JSONRPCMessage): void {
    const c = classify(message);
    if (c.kind === 'response' && c.msg.id !== null) {
      const key = idKey(c.msg.id);
      if (answeredHere.delete(key)) return; // answered already, with an error
      const entry = inFlight.get(key);
      inFlight.delete(key);
      if (entry?.method === 'initialize' && isObject(c.msg.result) && typeof c.msg.result.protocolVersion === 'string') {
        // Later requests carry MCP-Protocol-Version (2025-06-18 and later require it).
        transport?.setProtocolVersion?.(c.msg.result.protocolVersion);
      }
    }
    hand(message);
  }

  function hand(message: unknown): void {
    if (finished) return;
    if (paused) held.push(message as JSONRPCMessage);
    else events.onMessage(inboundValue(message, maxDepth));
  }

  function answerKey(key: string, text: string): void {
    const n = key.slice(2);
    answer(key.startsWith('n:') ? Number(n) : n, text);
  }

  function answer(id: JsonRpcId, text: string): void {
    settle(id, errorResponse(id, INTERNAL_ERROR, text));
  }

  function settle(id: JsonRpcId, response: JsonRpcResponse): void {
    const key = idKey(id);
    if (!inFlight.delete(key)) return;
    answeredHere.add(key);
    hand(response);
  }

  // ------------------------------------------------------------------ lifecycle

  async function endSession(): Promise<void> {
    // Answers still owed may arrive for a while; then the session is closed.
    const deadline = Date.now() + grace;
    while (inFlight.size > 0 && Date.now() < deadline && !finished) await sleep(25);
    closing = true;
    if (decided) await Promise.race([decided, sleep(grace)]);
    const t = transport;
    if (t instanceof StreamableHTTPClientTransport && t.sessionId) {
      try {
        await Promise.race([t.terminateSession(), sleep(grace)]);
        log.debug('ended the upstream session', { server: where });
      } catch (err) {
        log.debug('the upstream did not end the session', { server: where, error: errorText(err) });
      }
    }
    await t?.close().catch(() => {});
  }

  let ending: Promise<void> | undefined;
  const shutdown = (code: number) => {
    ending ??= endSession().finally(() => finish(code));
  };

  const channel: Channel = {
    send: (message) => enqueue(message),
    sendRaw: (text) => {
      const message = parseJson(text);
      if (message !== undefined) enqueue(message);
    },
  };

  return {
    channel,
    done,
    shutdown: () => shutdown(0),
    // A remote server gets no signal: the proxy ends its session and exits as if killed by it.
    signal: (sig) => shutdown(128 + (constants.signals[sig] ?? 0)),
    congested: false,
    onDrain: () => {},
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
      while (held.length > 0 && !paused) events.onMessage(inboundValue(held.shift(), maxDepth));
    },
  };
}

// ------------------------------------------------------------------ helpers

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function requestId(message: unknown): JsonRpcId | undefined {
  const c = classify(message);
  return c.kind === 'request' ? c.msg.id : undefined;
}

export function jsonRpcErrorOf(text: string): Refusal['error'] {
  const body = parseJson(text);
  if (!isObject(body) || !isObject(body.error)) return undefined;
  const { code, message, data } = body.error;
  if (typeof code !== 'number' || typeof message !== 'string') return undefined;
  return data === undefined ? { code, message } : { code, message, data };
}

/** Error texts of the SDK can hold a whole response body: logs keep its first line. */
function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** An error's message with its network code (`fetch failed (ECONNREFUSED)`), on one line. */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return firstLine(String(err));
  const cause = (err as { cause?: unknown }).cause;
  const code = isObject(cause) && typeof cause.code === 'string' ? cause.code : undefined;
  return firstLine(code ? `${err.message} (${code})` : err.message);
}

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

