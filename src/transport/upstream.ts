// The upstream side of a session, whatever it is: a child process speaking stdio, or a remote
// server over HTTP. The runners only see this interface.
import type { Logger } from '../log.js';
import type { Channel, Inbound } from './channel.js';
import { spawnUpstream } from './child-upstream.js';

export type UpstreamSpec =
  | { kind: 'command'; command: string; args: string[] }
  | { kind: 'http'; url: string; headers: Record<string, string>; transport: 'auto' | 'streamable' | 'sse' };

export interface UpstreamEvents {
  onMessage(ev: Inbound): void;
  /** The upstream will send nothing more (its output ended, or the session is over).
   * `reason` completes "The MCP server behind the proxy …", e.g. "exited with status 3", for
   * the errors that answer what it left unanswered. */
  onEnd(reason?: string): void;
}

export interface Upstream {
  readonly channel: Channel;
  /** Resolves once the upstream is gone, with the exit status the proxy should use. */
  readonly done: Promise<number>;
  /** Orderly end: close the server's input, then SIGTERM, then SIGKILL after the grace period. */
  shutdown(): void;
  /** Passes a signal on to a child process (a no-op for remote servers). */
  signal(sig: NodeJS.Signals): void;
  /** Backpressure: true when the upstream's input buffer is full; `onDrain` fires when it empties. */
  readonly congested: boolean;
  onDrain(listener: () => void): void;
  pause(): void;
  resume(): void;
}

export interface UpstreamOptions {
  log: Logger;
  maxMessageBytes: number;
  /** Deepest nesting accepted in a server message (see jsonrpc/depth.ts). */
  maxDepth: number;
  /** How long the child gets to exit by itself after its stdin closes, and again after SIGTERM. */
  graceMs?: number;
}

type HttpOpener = typeof import('./http-upstream.js').openHttpUpstream;
let openHttp: HttpOpener | undefined;

/** Loads what an upstream of this kind needs, once, before any `openUpstream` for it: the HTTP
 * client transports are only loaded (and kept in memory) by proxies that use them. */
export async function prepareUpstream(spec: UpstreamSpec): Promise<void> {
  if (spec.kind === 'http') openHttp ??= (await import('./http-upstream.js')).openHttpUpstream;
}

export function openUpstream(spec: UpstreamSpec, events: UpstreamEvents, opts: UpstreamOptions): Upstream {
  if (spec.kind === 'command') return spawnUpstream(spec.command, spec.args, events, opts);
  if (!openHttp) throw new Error('prepareUpstream() must run before an HTTP upstream is opened');
  return openHttp(spec, events, { log: opts.log, graceMs: opts.graceMs, maxDepth: opts.maxDepth });
}
