// 2026-07-28 clients are stateless: no initialize, no session id, every request self-contained.
// Each request gets its own response stream, and every request with the same session key goes
// through one interceptor and one upstream (for a command upstream, one long-lived child per
// key). Clients choose their own request ids, so ids are rewritten to ids unique on that
// upstream and restored on the way back. A client that closes a request's response stream
// before the answer has cancelled it (the 2026 rule): the upstream is told with
// `notifications/cancelled`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { INTERNAL_ERROR, errorResponse } from '../jsonrpc/errors.js';
import { idKey, isObject, type JsonRpcId } from '../jsonrpc/message.js';
import type { Channel } from '../transport/channel.js';
import { ResponseStream, acceptablePost, postKind } from '../transport/streamable-server.js';
import type { SessionContext } from './context.js';
import { openPipeline, type Pipeline } from './pipeline.js';

interface InFlight {
  stream: ResponseStream;
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
        entry.stream.write(JSON.stringify(errorResponse(entry.originalId, INTERNAL_ERROR, 'The MCP server behind the proxy has exited')), true);
      }
      this.inflight.clear();
      this.end('the server exited');
    });
  }

  get interceptor() {
    return this.pipeline.interceptor;
  }

  get idle(): boolean {
    return this.inflight.size === 0 && this.pipeline.interceptor.inFlight === 0;
  }

  /** Serves one 2026-07-28 POST whose body is `message` (already read and checked: a request
   * or a notification). */
  async handle(req: IncomingMessage, res: ServerResponse, message: Record<string, unknown>): Promise<void> {
    this.lastActive = Date.now();
    if (!acceptablePost(req, res)) return;
    const kind = postKind(message, res);
    if (kind === 'refused') return;
    if (kind === 'accepted') {
      res.writeHead(202).end();
      await this.pipeline.writable();
      this.pipeline.interceptor.fromClient({ kind: 'message', value: this.mapCancellation(message) });
      return;
    }
    const proxyId = `${this.prefix}${++this.counter}`;
    const key = idKey(proxyId);
    const entry: InFlight = {
      originalId: message.id as JsonRpcId,
      answered: false,
      stream: new ResponseStream(res, {}, {
        onClose: () => {
          this.inflight.delete(key);
          this.lastActive = Date.now();
          if (entry.answered || this.ended) return;
          entry.answered = true;
          this.ctx.log.info('the client closed a response stream; cancelling the request');
          this.pipeline.interceptor.fromClient({
            kind: 'message',
            value: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: proxyId, reason: 'The client closed the response stream' } },
          });
        },
      }),
    };
    this.inflight.set(key, entry);
    await this.pipeline.writable();
    // A client that left while the request waited has cancelled it before it was sent.
    if (!entry.stream.open) return;
    this.pipeline.interceptor.fromClient({ kind: 'message', value: { ...message, id: proxyId } });
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

  send(message: unknown, related?: JsonRpcId, text?: string): void {
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
      entry.stream.write(JSON.stringify({ ...message, id: entry.originalId }), true);
      return;
    }
    entry.stream.write(text ?? JSON.stringify(message), false);
  }

  sendRaw(text: string, message: unknown, related?: JsonRpcId): void {
    this.send(message, related, text);
  }

  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.ctx.log.info('stateless upstream ended', { key: this.key, reason });
    this.onEnded(this);
    this.pipeline.interceptor.abandon(`The proxy ended this client's upstream (${reason}) before the MCP server answered`);
    this.pipeline.upstream.shutdown();
  }
}
