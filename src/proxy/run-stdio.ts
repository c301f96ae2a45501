// `intercept -c policy.yaml -- <command...>`: our stdin/stdout face the client, a child
// process runs the server, and one interceptor sits between them.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { constants } from 'node:os';
import type { Logger } from '../log.js';
import type { Policy } from '../policy/model.js';
import type { PolicyHolder } from '../policy/watch.js';
import type { CounterStore } from '../state/store.js';
import { StreamChannel } from '../transport/stdio.js';
import { Interceptor, type FailMode } from './interceptor.js';

export interface StdioProxyOptions {
  command: string;
  args: string[];
  policy: PolicyHolder;
  store: CounterStore;
  log: Logger;
  maxMessageBytes: number;
  failMode: FailMode;
  statePrefix?: string;
  /** How long the child gets to exit on its own after its stdin closes, and again after SIGTERM. */
  graceMs?: number;
}

/** Runs until the child exits; resolves with the exit status to use. */
export function runStdioProxy(opts: StdioProxyOptions): Promise<number> {
  const { log } = opts;
  const grace = opts.graceMs ?? 5000;
  return new Promise((resolve) => {
    const child = spawn(opts.command, opts.args, { stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
    let finished = false;
    const timers: NodeJS.Timeout[] = [];

    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      for (const t of timers) clearTimeout(t);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.stdin.pause();
      opts.policy.close();
      // Let what is already written to stdout reach the client before exiting.
      process.stdout.write('', () => resolve(code));
    };

    child.on('error', (err: NodeJS.ErrnoException) => {
      const reason = err.code === 'ENOENT' ? 'command not found' : err.code === 'EACCES' ? 'permission denied' : err.message;
      log.error(`cannot start the server command ${JSON.stringify(opts.command)}: ${reason}`);
      finish(err.code === 'ENOENT' ? 127 : 126);
    });

    const sessionId = randomUUID();
    let interceptor!: Interceptor;
    const client = new StreamChannel({
      input: process.stdin,
      output: process.stdout,
      maxMessageBytes: opts.maxMessageBytes,
      onMessage: (ev) => {
        interceptor.fromClient(ev);
        if (upstream.congested) client.pause();
      },
      onEnd: () => {
        // The client is gone: close the server's stdin and give it time to exit by itself.
        log.debug('client closed stdin; closing the server');
        upstream.end();
        timers.push(setTimeout(() => child.kill('SIGTERM'), grace).unref());
        timers.push(setTimeout(() => child.kill('SIGKILL'), 2 * grace).unref());
      },
    });
    const upstream = new StreamChannel({
      input: child.stdout,
      output: child.stdin,
      // Server messages may legitimately be large (file contents); the limit guards memory only.
      maxMessageBytes: Math.max(opts.maxMessageBytes, 64 * 1024 * 1024),
      onMessage: (ev) => {
        interceptor.fromUpstream(ev);
        if (client.congested) upstream.pause();
      },
      onEnd: () => interceptor.upstreamClosed(),
    });
    child.stdin.on('drain', () => client.resume());
    process.stdout.on('drain', () => upstream.resume());

    interceptor = new Interceptor({
      client,
      upstream,
      policy: () => opts.policy.current(),
      store: opts.store,
      sessionId,
      statePrefix: opts.statePrefix,
      failMode: opts.failMode,
      log,
    });
    opts.policy.onReload = (previous, next) => {
      if (offerSignature(previous.policy) !== offerSignature(next.policy)) interceptor.toolsChanged();
    };

    const onSignal = (signal: NodeJS.Signals) => {
      log.info(`received ${signal}; stopping the server`);
      child.kill(signal);
      timers.push(setTimeout(() => child.kill('SIGKILL'), grace).unref());
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    // 'close' fires once the child has exited and its stdout is fully read.
    child.on('close', (code, signal) => {
      interceptor.upstreamClosed();
      const status = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
      log.info('server exited', { code: code ?? undefined, signal: signal ?? undefined });
      finish(status);
    });
  });
}

/** What decides which tools tools/list offers (see CompiledPolicy.isOffered). */
function offerSignature(policy: Policy): string {
  const listed = policy.defaultAction === 'deny' ? policy.tools.map((t) => t.name).sort() : [];
  return JSON.stringify([[...policy.hide].sort(), listed]);
}
