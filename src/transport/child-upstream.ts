// A local MCP server as the upstream: a child process spawned from the command line, speaking
// newline-delimited JSON on its stdin/stdout (its stderr is ours, for its own diagnostics).
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { StreamChannel } from './stdio.js';
import type { Upstream, UpstreamEvents, UpstreamOptions } from './upstream.js';

export function spawnUpstream(command: string, args: string[], events: UpstreamEvents, opts: UpstreamOptions): Upstream {
  const { log } = opts;
  const grace = opts.graceMs ?? 5000;
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
  const timers: NodeJS.Timeout[] = [];
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  let finished = false;
  const finish = (code: number) => {
    if (finished) return;
    finished = true;
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
