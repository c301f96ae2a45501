// `intercept -c policy.yaml -- <command...>` (or `--upstream <url>`): our stdin/stdout face the
// client, and one interceptor sits between it and the upstream. On SIGINT or SIGTERM the calls
// in flight are answered first (drain.ts), then the signal goes on to the server.
import { randomUUID } from 'node:crypto';
import { StreamChannel } from '../transport/stdio.js';
import type { Interceptor } from './interceptor.js';
import { interceptorFor } from './pipeline.js';
import { offersChanged } from './offers.js';
import type { SessionContext } from './context.js';
import { openUpstream } from '../transport/upstream.js';
import { DEFAULT_DRAIN_MS, drain, quiesce, secondSignal } from './drain.js';

export type StdioProxyOptions = SessionContext;

/** Runs until the upstream is gone; resolves with the exit status to use. */
export async function runStdioProxy(opts: StdioProxyOptions): Promise<number> {
  const { log } = opts;
  let interceptor!: Interceptor;
  const upstream = openUpstream(
    opts.upstream,
    {
      onMessage: (ev) => {
        interceptor.fromUpstream(ev);
        if (client.congested) upstream.pause();
      },
      onEnd: (reason) => interceptor.upstreamClosed(reason),
    },
    { log, maxMessageBytes: opts.maxMessageBytes, maxDepth: opts.maxMessageDepth, graceMs: opts.graceMs },
  );
  const client = new StreamChannel({
    input: process.stdin,
    output: process.stdout,
    maxMessageBytes: opts.maxMessageBytes,
    maxDepth: opts.maxMessageDepth,
    onMessage: (ev) => {
      interceptor.fromClient(ev);
      if (upstream.congested) client.pause();
    },
    onEnd: () => {
      // The client is gone: let the server finish by itself, then make it.
      log.debug('client closed stdin; closing the server');
      upstream.shutdown();
    },
  });
  upstream.onDrain(() => client.resume());
  process.stdout.on('drain', () => upstream.resume());

  interceptor = interceptorFor(opts, client, upstream.channel, randomUUID());
  opts.policy.onReload = (previous, next) => {
    if (offersChanged(previous, next)) interceptor.toolsChanged();
  };

  const drainMs = opts.drainMs ?? DEFAULT_DRAIN_MS;
  const { hurried, hurry } = secondSignal();
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.info(`received ${signal} again; answering what is in flight now`);
      hurry();
      return;
    }
    stopping = true;
    log.info(`received ${signal}; taking no new requests`, { inFlight: interceptor.inFlight || undefined, waitMs: interceptor.inFlight ? drainMs : undefined });
    void drain([interceptor], drainMs, hurried).then(() => {
      log.info(`stopping the server (${signal})`);
      upstream.signal(signal);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const code = await upstream.done;
  interceptor.upstreamClosed();
  await quiesce([interceptor]);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.stdin.pause();
  opts.policy.close();
  // Let what is already written to stdout reach the client before exiting.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  return code;
}
