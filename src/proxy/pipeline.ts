// One session's pipeline: the upstream (a child process or a remote server) and the
// interceptor in front of it, wired together, with backpressure towards the client.
import type { Channel, Inbound } from '../transport/channel.js';
import { openUpstream, type Upstream } from '../transport/upstream.js';
import { logFor, observersFor, policyFor } from './caller.js';
import type { SessionContext } from './context.js';
import { Interceptor } from './interceptor.js';

/** An interceptor and the upstream behind it: what each HTTP session and each stateless
 * 2026-07-28 client key runs its messages through. */
export interface Pipeline {
  interceptor: Interceptor;
  upstream: Upstream;
  /** Resolves when the upstream is writable again (backpressure towards the client). */
  writable(): Promise<void>;
}

/** The interceptor for one session of a proxy run, whatever the transports. With
 * `ctx.identity`, its calls are decided, logged and recorded as that caller's (caller.ts). */
export function interceptorFor(ctx: SessionContext, client: Channel, upstream: Channel, sessionId: string): Interceptor {
  const { identity } = ctx;
  const subject = identity?.sub;
  return new Interceptor({
    client,
    upstream,
    policy: identity === undefined ? () => ctx.policy.current() : policyFor(() => ctx.policy.current(), identity),
    store: ctx.store,
    approvals: ctx.approvals,
    onApprovalRequested: ctx.onApprovalRequested,
    sessionId,
    failMode: ctx.failMode,
    observers: subject === undefined ? ctx.observers : observersFor(ctx.observers, subject),
    log: subject === undefined ? ctx.log : logFor(ctx.log, subject),
    callTimeoutMs: ctx.callTimeoutMs,
  });
}

/** Opens the upstream and the interceptor for one session. `key` is what its session-scoped
 * counters are kept under. */
export function openPipeline(ctx: SessionContext, key: string, client: Channel, onUpstreamEnd: () => void): Pipeline {
  let interceptor!: Interceptor;
  const upstream = openUpstream(
    ctx.upstream,
    {
      onMessage: (ev: Inbound) => interceptor.fromUpstream(ev),
      onEnd: (reason) => {
        interceptor.upstreamClosed(reason);
        onUpstreamEnd();
      },
    },
    { log: ctx.log, maxMessageBytes: ctx.maxMessageBytes, maxDepth: ctx.maxMessageDepth, graceMs: ctx.graceMs },
  );
  interceptor = interceptorFor(ctx, client, upstream.channel, key);
  let waiters: (() => void)[] = [];
  upstream.onDrain(() => {
    const ready = waiters;
    waiters = [];
    for (const resolve of ready) resolve();
  });
  return {
    interceptor,
    upstream,
    writable: () => (upstream.congested ? new Promise<void>((resolve) => waiters.push(resolve)) : Promise.resolve()),
  };
}
