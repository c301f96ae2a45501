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
  // The interceptor answers what the server left unanswered with why it is gone, which is
  // known once it has exited: its output may end a moment before.
  let exitReason: string | undefined;
  let outputEnded = false;
  let told = false;
  const tellEnd = (reason: string) => {
    if (told) return;
    told = true;
    events.onEnd(reason);
  };
  child.on('exit', (code, signal) => {
    exitReason = describeExit(code, signal);
    if (outputEnded) tellEnd(exitReason);
  });

  child.on('error', (err: NodeJS.ErrnoException) => {
    const reason = err.code === 'ENOENT' ? 'command not found' : err.code === 'EACCES' ? 'permission denied' : err.message;
    log.error(`cannot start the server command ${JSON.stringify(command)}: ${reason}`);
    tellEnd(`could not be started (${reason})`);
    finish(err.code === 'ENOENT' ? 127 : 126);
  });
  // 'close' fires once the child has exited and its stdout is fully read.
  child.on('close', (code, signal) => {
    log.info('server exited', { code: code ?? undefined, signal: signal ?? undefined });
    tellEnd(exitReason ?? describeExit(code, signal));
    finish(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
  });

  const channel = new StreamChannel({
    input: child.stdout,
    output: child.stdin,
    // Server messages may legitimately be large (file contents); the limit guards memory only.
    maxMessageBytes: Math.max(opts.maxMessageBytes, 64 * 1024 * 1024),
    maxDepth: opts.maxDepth,
    onMessage: events.onMessage,
    onEnd: () => {
      outputEnded = true;
      if (exitReason !== undefined) tellEnd(exitReason);
      // A server that closes its output and lives on will answer nothing more either.
      else timers.push(setTimeout(() => tellEnd(exitReason ?? 'closed its output'), 1000).unref());
    },
    // A server's answer to a request it was never sent is not an answer to anything.
    onUnsolicitedAnswer: (id) => log.warn('dropped an answer from the server to a request it was not sent, or no longer awaits (answered, cancelled or timed out)', { id: JSON.stringify(id) }),
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

/** How a child process ended, as "The MCP server behind the proxy …" goes on. */
function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return code !== null ? `exited with status ${code}` : `was killed by ${signal ?? 'a signal'}`;
}
