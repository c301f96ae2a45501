// The upstream side of a session, whatever it is: a child process speaking stdio, or a remote
// server over HTTP. The runners only see this interface.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Logger } from '../log.js';
import type { Channel, Inbound } from '../transport/channel.js';
import { StreamChannel } from '../transport/stdio.js';

export type UpstreamSpec =
  | { kind: 'command'; command: string; args: string[] }
  | { kind: 'http'; url: string; headers: Record<string, string>; transport: 'auto' | 'streamable' | 'sse' };

export interface UpstreamEvents {
  onMessage(ev: Inbound): void;
  /** The upstream will send nothing more (its output ended, or the session is over). */
  onEnd(): void;
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

type HttpOpener = typeof import('../transport/http-upstream.js').openHttpUpstream;
let openHttp: HttpOpener | undefined;

/** Loads what an upstream of this kind needs, once, before any `openUpstream` for it: the HTTP
 * client transports are only loaded (and kept in memory) by proxies that use them. */
export async function prepareUpstream(spec: UpstreamSpec): Promise<void> {
  if (spec.kind === 'http') openHttp ??= (await import('../transport/http-upstream.js')).openHttpUpstream;
}

export function openUpstream(spec: UpstreamSpec, events: UpstreamEvents, opts: UpstreamOptions): Upstream {
  if (spec.kind === 'command') return spawnUpstream(spec.command, spec.args, events, opts);
  if (!openHttp) throw new Error('prepareUpstream() must run before an HTTP upstream is opened');
  return openHttp(spec, events, { log: opts.log, graceMs: opts.graceMs, maxDepth: opts.maxDepth });
}

function spawnUpstream(command: string, args: string[], events: UpstreamEvents, opts: UpstreamOptions): Upstream {
  const { log } = opts;
  const grace = opts.graceMs ?? 5000;
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
  const timers: NodeJS.Timeout[] = [];
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  let settled = false;
  const finish = (code: number) => {
    if (settled) return;
    settled = true;
    for (const t of timers) clearTimeout(t);
    resolveDone(code);
  };

  child.on('error', (err: NodeJS.ErrnoException) => {
    const reason = err.code === 'ENOENT' ? 'command not found' : err.code === 'EACCES' ? 'permission denied' : err.message;
    log.error(`cannot start the server command ${JSON.stringify(command)}: ${reason}`);
    finish(err.code === 'ENOENT' ? 127 : 126);
  });
  // 'close' fires once the child has exited and its stdout is fully read.
  child.on('close', (code, signal) => {
    log.info('server exited', { code: code ?? undefined, signal: signal ?? undefined });
    finish(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
  });

  const channel = new StreamChannel({
    input: child.stdout,
    output: child.stdin,
    // Server messages may legitimately be large (file contents); the limit guards memory only.
    maxMessageBytes: Math.max(opts.maxMessageBytes, 64 * 1024 * 1024),
    maxDepth: opts.maxDepth,
    onMessage: events.onMessage,
    onEnd: events.onEnd,
  });

  return {
    channel,
    done,
    shutdown() {
      channel.end();
      timers.push(setTimeout(() => child.kill('SIGTERM'), grace).unref());
      timers.push(setTimeout(() => child.kill('SIGKILL'), 2 * grace).unref());
    },
    signal(sig) {
      child.kill(sig);
      timers.push(setTimeout(() => child.kill('SIGKILL'), grace).unref());
    },
    get congested() {
      return channel.congested;
    },
    onDrain: (listener) => child.stdin.on('drain', listener),
    pause: () => channel.pause(),
    resume: () => channel.resume(),
  };
}
