// A client Channel over one of the listener's session transports (Streamable HTTP with a
// session, or the legacy HTTP+SSE one). Responses go on the stream of the request they answer;
// server requests and notifications go on the stream of the client request they belong to, or
// on the session's standing stream (the GET stream, or the SSE stream) when they belong to none.
import { INTERNAL_ERROR, errorResponse } from '../jsonrpc/errors.js';
import { idKey, isObject, type JsonRpcId } from '../jsonrpc/message.js';
import type { Logger } from '../log.js';
import type { Channel } from './channel.js';

/** How many unrelated server messages are kept while the client has no standing stream open. */
const MAX_QUEUED = 256;

/** What the channel needs of a session transport. `text`, when given, is the message's
 * serialisation as it arrived; a transport that serialises itself may ignore it. */
export interface ClientTransport {
  send(message: unknown, options?: { relatedRequestId?: JsonRpcId }, text?: string): Promise<void>;
  close(): Promise<void>;
}

export interface TransportChannelOptions {
  transport: ClientTransport;
  log: Logger;
  /** Streamable HTTP only has a standing stream once the client opens a GET; until then
   * unrelated messages are queued. The legacy SSE stream is there from the start. */
  standingStream: boolean;
}

function isResponse(message: unknown): message is { id: JsonRpcId | null } {
  return isObject(message) && !('method' in message) && ('result' in message || 'error' in message);
}

export class TransportChannel implements Channel {
  /** Client requests not answered yet, so they can be failed if the upstream goes away. */
  private readonly inflight = new Map<string, JsonRpcId>();
  private standing: boolean;
  private queue: { message: unknown; text?: string }[] = [];
  private closed = false;

  constructor(private readonly opts: TransportChannelOptions) {
    this.standing = opts.standingStream;
  }

  /** How many client requests are waiting for their answer. */
  get pending(): number {
    return this.inflight.size;
  }

  /** Records a message from the client (call before handing it to the interceptor). */
  noteClientMessage(message: unknown): void {
    if (isObject(message) && typeof message.method === 'string' && (typeof message.id === 'string' || typeof message.id === 'number')) {
      this.inflight.set(idKey(message.id), message.id);
    }
  }

  send(message: unknown, related?: JsonRpcId, text?: string): void {
    if (this.closed) return;
    if (isResponse(message)) {
      if (message.id === null) {
        // Only a transport-level failure has no id, and the transport answers those itself.
        this.opts.log.debug('dropped a response without an id');
        return;
      }
      this.inflight.delete(idKey(message.id));
      this.write(message, undefined, text);
      return;
    }
    if (related !== undefined && this.inflight.has(idKey(related))) {
      this.write(message, related, text);
      return;
    }
    this.unrelated(message, text);
  }

  sendRaw(text: string, message: unknown, related?: JsonRpcId): void {
    this.send(message, related, text);
  }

  /** The client opened its standing stream: deliver what waited for it. */
  standingOpened(): void {
    this.standing = true;
    const queued = this.queue;
    this.queue = [];
    for (const { message, text } of queued) this.write(message, undefined, text);
  }

  standingClosed(): void {
    this.standing = false;
  }

  /** The upstream is gone: answer every request still waiting, so no client hangs. */
  failPending(reason: string): void {
    for (const id of this.inflight.values()) this.send(errorResponse(id, INTERNAL_ERROR, reason));
    this.inflight.clear();
  }

  close(): void {
    this.closed = true;
    this.queue = [];
  }

  private unrelated(message: unknown, text: string | undefined): void {
    if (this.standing) {
      this.write(message, undefined, text);
      return;
    }
    if (this.queue.length >= MAX_QUEUED) {
      this.opts.log.warn('dropped a server message: the client has no stream open to receive it');
      return;
    }
    this.queue.push({ message, text });
  }

  private write(message: unknown, related: JsonRpcId | undefined, text: string | undefined): void {
    const options = related === undefined ? undefined : { relatedRequestId: related };
    this.opts.transport.send(message, options, text).catch((err: unknown) => {
      if (related !== undefined) {
        // The request's stream is gone (the client stopped reading it): the standing stream
        // is the only way left to reach the client.
        this.unrelated(message, text);
        return;
      }
      this.opts.log.debug('could not deliver a message to the client', { error: String(err) });
    });
  }
}
