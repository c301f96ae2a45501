// 2026-07-28 clients are stateless: no initialize, no session id, every request self-contained.
// Each request is served by its own stateless SDK transport, and every request with the same
// session key goes through one interceptor and one upstream (for a command upstream, one
// long-lived child per key). Clients choose their own request ids, so ids are rewritten to ids
// unique on that upstream and restored on the way back. A client that closes a request's
// response stream before the answer has cancelled it (the 2026 rule): the upstream is told with
// `notifications/cancelled`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { INTERNAL_ERROR, errorResponse } from '../jsonrpc/errors.js';
import { idKey, isObject, type JsonRpcId } from '../jsonrpc/message.js';
import type { Channel } from '../transport/channel.js';
import type { SessionContext } from './context.js';
import { openPipeline, type Pipeline } from './pipeline.js';

interface InFlight {
  transport: StreamableHTTPServerTransport;
  originalId: JsonRpcId;
  answered: boolean;
}

export class ModernHub implements Channel {
  private readonly pipeline: Pipeline;
  private readonly inflight = new Map<string, InFlight>();
  private readonly prefix = `h${randomBytes(4).toString('hex')}-`;
  private counter = 0;
  private ended = false;
  lastActive = Date.now();
  readonly done: Promise<void>;

  constructor(
    readonly key: string,
    private readonly ctx: SessionContext,
    private readonly onEnded: (hub: ModernHub) => void,
  ) {
    ctx.log.info('stateless upstream started', { key });
    this.pipeline = openPipeline(ctx, key, this, () => {});
    this.done = this.pipeline.upstream.done.then(() => {
      this.pipeline.interceptor.upstreamClosed();
      for (const entry of this.inflight.values()) {
        if (entry.answered) continue;
        entry.answered = true;
        const failure = errorResponse(entry.originalId, INTERNAL_ERROR, 'The MCP server behind the proxy has exited');
        entry.transport.send(failure as JSONRPCMessage).catch(() => {});
      }
      this.inflight.clear();
      this.end('the server exited');
    });
  }

  get interceptor() {
    return this.pipeline.interceptor;
  }

  get idle(): boolean {
    return this.inflight.size === 0;
  }

  /** Serves one 2026-07-28 POST whose body is `message` (already read and checked). */
  async handle(req: IncomingMessage, res: ServerResponse, message: Record<string, unknown>): Promise<void> {
    this.lastActive = Date.now();
    await this.pipeline.writable();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    let proxyId: string | undefined;
    transport.onmessage = (msg) => {
      const value = msg as unknown as Record<string, unknown>;
      if (typeof value.method !== 'string') return; // 2026 servers send no requests to answer
      if (value.id !== undefined) {
        proxyId = `${this.prefix}${++this.counter}`;
        this.inflight.set(idKey(proxyId), { transport, originalId: value.id as JsonRpcId, answered: false });
        this.pipeline.interceptor.fromClient({ kind: 'message', value: { ...value, id: proxyId } });
        return;
      }
      this.pipeline.interceptor.fromClient({ kind: 'message', value: this.mapCancellation(value) });
    };
    res.on('close', () => {
      if (proxyId === undefined) return;
      const entry = this.inflight.get(idKey(proxyId));
      this.inflight.delete(idKey(proxyId));
      this.lastActive = Date.now();
      if (entry && !entry.answered && !this.ended) {
        this.ctx.log.info('the client closed a response stream; cancelling the request');
        this.pipeline.interceptor.fromClient({
          kind: 'message',
          value: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: proxyId, reason: 'The client closed the response stream' } },
        });
      }
      void transport.close().catch(() => {});
    });
    await transport.start();
    // The v1 transport predates 2026-07-28 and refuses its version header; the listener has
    // checked that header against the body already, so the transport does not see it.
    hideHeader(req, 'mcp-protocol-version');
    await transport.handleRequest(req, res, message);
  }

  /** A client's `notifications/cancelled` names its own id: find the request it means. */
  private mapCancellation(value: Record<string, unknown>): Record<string, unknown> {
    if (value.method !== 'notifications/cancelled' || !isObject(value.params)) return value;
    const requestId = value.params.requestId;
    for (const [key, entry] of this.inflight) {
      if (!entry.answered && entry.originalId === requestId) {
        return { ...value, params: { ...value.params, requestId: key.slice(2) } };
      }
    }
    return value;
  }

  // ---------------------------------------------------------------- Channel (towards clients)

  send(message: unknown, related?: JsonRpcId): void {
    if (!isObject(message)) return;
    const isResponse = typeof message.method !== 'string';
    const key = isResponse ? (typeof message.id === 'string' || typeof message.id === 'number' ? idKey(message.id) : undefined) : related !== undefined ? idKey(related) : undefined;
    const entry = key === undefined ? undefined : this.inflight.get(key);
    if (!entry || entry.answered) {
      // No request stream to carry it: stateless clients have no standing stream.
      this.ctx.log.debug('dropped a server message that belongs to no open request', { method: isResponse ? undefined : String(message.method) });
      return;
    }
    this.lastActive = Date.now();
    if (isResponse) {
      entry.answered = true;
      entry.transport.send({ ...message, id: entry.originalId } as unknown as JSONRPCMessage).catch((err: unknown) => {
        this.ctx.log.debug('could not deliver a response to the client', { error: String(err) });
      });
      return;
    }
    entry.transport.send(message as unknown as JSONRPCMessage, { relatedRequestId: entry.originalId }).catch(() => {});
  }

  sendRaw(text: string, related?: JsonRpcId): void {
    this.send(JSON.parse(text), related);
  }

  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.ctx.log.info('stateless upstream ended', { key: this.key, reason });
    this.onEnded(this);
    this.pipeline.upstream.shutdown();
  }
}

/** Removes a request header from what later readers of `req` see (both header views). */
function hideHeader(req: IncomingMessage, name: string): void {
  delete req.headers[name];
  const raw: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() !== name) raw.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  }
  req.rawHeaders = raw;
}
