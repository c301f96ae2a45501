// The server side of Streamable HTTP, on Node's own `http` objects: what one POST, GET or
// DELETE of a client gets back. A request's answer goes out as plain JSON when nothing else
// came first (one write, with a Content-Length), or as a short SSE stream when the server sent
// progress, notifications or requests of its own before it. Nothing is parsed here: the
// listener has read and checked the body once, and relayed messages arrive as the text the
// upstream sent.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { INVALID_REQUEST, SESSION_NOT_FOUND, TRANSPORT_ERROR } from '../jsonrpc/errors.js';
import { classify, idKey, isObject, type JsonRpcId } from '../jsonrpc/message.js';
import { sendHttpError } from './http-guard.js';

const SSE_HEADERS = {
  'Content-Type': 'text/event-stream',
  'Cache-Control': 'no-cache, no-transform',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
};

/** An open SSE stream gets a comment this often, so idle connections are not cut. */
const KEEP_ALIVE_MS = 15_000;
/** A request still unanswered this long gets its SSE stream opened (headers out, keep-alives
 * flowing), so that nothing between client and proxy times out a silent connection. */
const OPEN_SSE_AFTER_MS = 1_000;

/** The protocol versions a 2025 session may name in MCP-Protocol-Version. */
const SESSION_VERSIONS = new Set(['2024-10-07', '2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25']);

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** One SSE event carrying one message. JSON text has no raw line breaks unless an upstream
 * pretty-printed it; each line then becomes a `data:` line, as SSE requires. */
function sseEvent(text: string): string {
  if (!text.includes('\n') && !text.includes('\r')) return `event: message\ndata: ${text}\n\n`;
  return `event: message\n${text.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`).join('')}\n`;
}

/** The messages of one HTTP response: the answer to one client request (with what the server
 * sent about it first), or a session's standing GET stream. */
export class ResponseStream {
  private sse = false;
  private ended = false;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly res: ServerResponse,
    private readonly headers: Record<string, string>,
    opts: { standing?: boolean; onClose?: () => void } = {},
  ) {
    res.on('close', () => {
      this.ended = true;
      this.clearTimer();
      opts.onClose?.();
    });
    if (opts.standing) this.openSse();
    else this.timer = setTimeout(() => this.openSse(), OPEN_SSE_AFTER_MS).unref();
  }

  /** Whether the client can still receive on this response. */
  get open(): boolean {
    return !this.ended && !this.res.destroyed;
  }

  /** Sends one message; `final` (the answer) ends the response. False when the client is gone. */
  write(text: string, final: boolean): boolean {
    if (!this.open) return false;
    if (final && !this.sse) {
      this.ended = true;
      this.clearTimer();
      this.res.writeHead(200, { ...this.headers, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) });
      this.res.end(text);
      return true;
    }
    this.openSse();
    this.res.write(sseEvent(text));
    if (final) this.end();
    return true;
  }

  /** Ends the response with nothing more (an empty event stream if it had not started). */
  end(): void {
    if (this.ended) return;
    this.openSse();
    this.ended = true;
    this.clearTimer();
    this.res.end();
  }

  private openSse(): void {
    if (this.sse || !this.open) return;
    this.sse = true;
    this.clearTimer();
    this.res.writeHead(200, { ...SSE_HEADERS, ...this.headers });
    this.res.flushHeaders();
    this.timer = setInterval(() => this.res.write(': keepalive\n\n'), KEEP_ALIVE_MS).unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The checks every POST of a JSON-RPC message passes (both eras), as the transport
 * specification words them. False when an error has been sent. */
export function acceptablePost(req: IncomingMessage, res: ServerResponse): boolean {
  const accept = header(req, 'accept') ?? '';
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
    sendHttpError(res, 406, TRANSPORT_ERROR, 'Not Acceptable: the client must accept both application/json and text/event-stream');
    return false;
  }
  const type = (header(req, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    sendHttpError(res, 415, TRANSPORT_ERROR, 'Unsupported Media Type: Content-Type must be application/json');
    return false;
  }
  return true;
}

/** How a POSTed message is answered on HTTP: `stream` when it is a request the proxy will
 * answer (on a ResponseStream), `accepted` (202) for notifications and answers to server
 * requests; `refused` when it is invalid with no id to answer, and an error has been sent. */
export function postKind(message: Record<string, unknown>, res: ServerResponse): 'stream' | 'accepted' | 'refused' {
  const c = classify(message);
  if (c.kind === 'request' || (c.kind === 'invalid' && c.id !== null && Object.hasOwn(message, 'method'))) return 'stream';
  if (c.kind === 'invalid' && c.id === null) {
    sendHttpError(res, 400, INVALID_REQUEST, `Invalid Request: ${c.reason}`);
    return 'refused';
  }
  return 'accepted';
}

export interface SendOptions {
  /** The client request a server request or notification belongs to. */
  relatedRequestId?: JsonRpcId;
}

/** One 2025 session's HTTP side: the response streams of its requests in flight, and the one
 * standing GET stream for what belongs to no request. The listener has found the session and
 * checked the agent; this answers the exchange. */
export class StreamableSessionTransport {
  onmessage?: (message: Record<string, unknown>) => void;
  onclose?: () => void;
  /** The standing stream opened (true) or closed (false). */
  onstanding?: (open: boolean) => void;
  private readonly streams = new Map<string, ResponseStream>();
  private standing?: ResponseStream;
  private initialized = false;
  private closed = false;

  constructor(readonly sessionId: string) {}

  /** Serves a POST whose body is `message`; false when it was refused (nothing delivered). */
  post(req: IncomingMessage, res: ServerResponse, message: Record<string, unknown>): boolean {
    if (this.closed) {
      sendHttpError(res, 404, SESSION_NOT_FOUND, 'Session not found');
      return false;
    }
    if (!acceptablePost(req, res)) return false;
    if (message.method === 'initialize') {
      if (this.initialized) {
        sendHttpError(res, 400, INVALID_REQUEST, 'Invalid Request: the session is already initialized');
        return false;
      }
      this.initialized = true;
    } else if (!this.versionAllowed(req, res)) {
      return false;
    }
    const kind = postKind(message, res);
    if (kind === 'refused') return false;
    if (kind === 'accepted') {
      res.writeHead(202, { 'mcp-session-id': this.sessionId }).end();
    } else {
      // The client left while its request waited for the upstream: nobody wants the answer.
      if (res.destroyed) return false;
      const key = idKey(message.id as JsonRpcId);
      if (this.streams.has(key)) {
        // Its answer could not be told from the other's.
        sendHttpError(res, 400, INVALID_REQUEST, `Invalid Request: id ${JSON.stringify(message.id)} is already used by a request in flight`);
        return false;
      }
      const stream = new ResponseStream(res, { 'mcp-session-id': this.sessionId }, {
        onClose: () => {
          if (this.streams.get(key) === stream) this.streams.delete(key);
        },
      });
      this.streams.set(key, stream);
    }
    this.onmessage?.(message);
    return true;
  }

  /** Opens the standing stream (one per session). */
  get(req: IncomingMessage, res: ServerResponse): void {
    if (this.closed) return sendHttpError(res, 404, SESSION_NOT_FOUND, 'Session not found');
    if (!(header(req, 'accept') ?? '').includes('text/event-stream')) {
      return sendHttpError(res, 406, TRANSPORT_ERROR, 'Not Acceptable: the client must accept text/event-stream');
    }
    if (!this.versionAllowed(req, res)) return;
    if (this.standing?.open) {
      return sendHttpError(res, 409, TRANSPORT_ERROR, 'Conflict: only one standing SSE stream is allowed per session');
    }
    const stream = new ResponseStream(res, { 'mcp-session-id': this.sessionId }, {
      standing: true,
      onClose: () => {
        if (this.standing !== stream) return;
        this.standing = undefined;
        this.onstanding?.(false);
      },
    });
    this.standing = stream;
    this.onstanding?.(true);
  }

  /** Ends the session at the client's request. */
  delete(req: IncomingMessage, res: ServerResponse): void {
    if (!this.versionAllowed(req, res)) return;
    res.writeHead(200).end();
    void this.close();
  }

  /** Sends one message (`text`, when given, is its serialisation, written as it is). A
   * response goes on its request's stream, a message related to a request on that request's
   * stream, anything else on the standing stream (dropped when there is none: the channel
   * queues for that case). Rejects when the stream it needs is gone. */
  async send(message: unknown, options?: SendOptions, text?: string): Promise<void> {
    const isResponse = isObject(message) && !Object.hasOwn(message, 'method');
    const id = isResponse ? (message.id as JsonRpcId) : options?.relatedRequestId;
    if (id === undefined || id === null) {
      if (isResponse) throw new Error('a response without a request to answer');
      this.standing?.write(text ?? JSON.stringify(message), false);
      return;
    }
    const key = idKey(id);
    const stream = this.streams.get(key);
    if (!stream?.write(text ?? JSON.stringify(message), isResponse)) {
      throw new Error(`no open stream for request ${JSON.stringify(id)}`);
    }
    if (isResponse) this.streams.delete(key);
  }

  /** Closes every stream; the session is over. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const stream of this.streams.values()) stream.end();
    this.streams.clear();
    this.standing?.end();
    this.onclose?.();
  }

  private versionAllowed(req: IncomingMessage, res: ServerResponse): boolean {
    const version = header(req, 'mcp-protocol-version');
    if (version === undefined || SESSION_VERSIONS.has(version)) return true;
    sendHttpError(res, 400, TRANSPORT_ERROR, `Bad Request: unsupported protocol version ${JSON.stringify(version)} (this session speaks ${[...SESSION_VERSIONS].join(', ')})`);
    return false;
  }
}
