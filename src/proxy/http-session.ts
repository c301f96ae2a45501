// One agent session on the HTTP listener (2025 revisions: Streamable HTTP with an
// Mcp-Session-Id, or the legacy HTTP+SSE transport): its own interceptor and its own upstream
// (a new child process, or a new remote session), ended on DELETE, when the SSE stream closes,
// on idle timeout, when the upstream goes away, or when the proxy stops.
import { TransportChannel, type ClientTransport } from '../transport/http-channel.js';
import { StreamableSessionTransport } from '../transport/streamable-server.js';
import type { SessionContext } from './context.js';
import type { Interceptor } from './interceptor.js';
import { openPipeline, type Pipeline } from './pipeline.js';

/** A session's HTTP side: ours for Streamable HTTP, the SDK's for the legacy SSE transport. */
export interface SessionTransport extends ClientTransport {
  onmessage?(message: unknown): void;
  onclose?(): void;
}

export class HttpSession {
  readonly channel: TransportChannel;
  private pipeline?: Pipeline;
  private ended = false;
  /** The counter key, fixed when the session starts. */
  key?: string;
  lastActive = Date.now();
  private resolveDone!: () => void;
  /** Resolves once the session's upstream is gone (at once if it never had one). */
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));
  /** Open HTTP exchanges of this session (a session in use is never idle). */
  busy = 0;

  constructor(
    readonly id: string,
    readonly transport: SessionTransport,
    private readonly ctx: SessionContext,
    private readonly onEnded: (session: HttpSession) => void,
    standingStream: boolean,
  ) {
    this.channel = new TransportChannel({ transport, log: ctx.log, standingStream });
    if (transport instanceof StreamableSessionTransport) {
      transport.onstanding = (open) => (open ? this.channel.standingOpened() : this.channel.standingClosed());
    }
    transport.onmessage = (message) => {
      this.lastActive = Date.now();
      if (!this.pipeline) {
        this.ctx.log.warn('dropped a message that arrived before the session started');
        return;
      }
      this.channel.noteClientMessage(message);
      this.pipeline.interceptor.fromClient({ kind: 'message', value: message });
    };
    transport.onclose = () => this.end('the client closed the session');
  }

  get started(): boolean {
    return this.pipeline !== undefined;
  }

  get interceptor(): Interceptor | undefined {
    return this.pipeline?.interceptor;
  }

  /** Opens the upstream; counters are kept under `key`. */
  start(key: string): void {
    if (this.pipeline || this.ended) return;
    this.key = key;
    this.ctx.log.info('session started', { session: this.id.slice(0, 8), key: key === this.id ? undefined : key });
    const pipeline = openPipeline(this.ctx, key, this.channel, () => {});
    this.pipeline = pipeline;
    void pipeline.upstream.done.then(() => {
      pipeline.interceptor.upstreamClosed();
      this.channel.failPending('The MCP server behind the proxy has exited');
      this.end('the server exited');
      this.resolveDone();
    });
  }

  /** Waits while the upstream cannot take more input. */
  writable(): Promise<void> {
    return this.pipeline ? this.pipeline.writable() : Promise.resolve();
  }

  /** Ends the session: the client's streams close, the upstream is shut down. Idempotent. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.ctx.log.info('session ended', { session: this.id.slice(0, 8), reason });
    this.onEnded(this);
    // Whatever is still in flight is given up: the server is told, and each call recorded.
    this.pipeline?.interceptor.abandon(`The session ended (${reason}) before the MCP server answered`);
    this.channel.close();
    void this.transport.close().catch(() => {});
    if (this.pipeline) this.pipeline.upstream.shutdown();
    else this.resolveDone();
  }
}
