// `intercept -c policy.yaml -- <command...>` (and later `--upstream <url>`): our stdin/stdout
// face the client, and one interceptor sits between it and the upstream.
import { randomUUID } from 'node:crypto';
import { StreamChannel } from '../transport/stdio.js';
import type { Interceptor } from './interceptor.js';
import { interceptorFor } from './pipeline.js';
import { offersChanged } from './offers.js';
import type { SessionContext } from './context.js';
import { openUpstream } from '../transport/upstream.js';

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
      onEnd: () => interceptor.upstreamClosed(),
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

  const onSignal = (signal: NodeJS.Signals) => {
    log.info(`received ${signal}; stopping the server`);
    upstream.signal(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const code = await upstream.done;
  interceptor.upstreamClosed();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.stdin.pause();
  opts.policy.close();
  // Let what is already written to stdout reach the client before exiting.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  return code;
}
