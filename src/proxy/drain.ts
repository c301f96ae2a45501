// Stopping on SIGINT or SIGTERM, for every runner: no new request is taken and calls held for
// approval are withdrawn; calls in flight get a while (--drain-timeout) to be answered by the
// server; what is left is answered with an error. Only then is the upstream stopped, so no
// request goes unanswered and every call is recorded before the shutdown event.
import type { Interceptor } from './interceptor.js';

export const DEFAULT_DRAIN_MS = 5000;

/** After the wait, how long the proxy lets calls still being decided finish (a held call's
 * request withdrawn, a charge given back) before it goes on stopping anyway. */
const QUIESCE_MS = 2000;

/** What a request still unanswered when the wait is over is answered with. */
export const LEFT_AT_STOP = 'The policy proxy stopped before the MCP server answered; the server was asked to cancel the request';

/** Resolves once every request of `interceptors` has been answered. `hurry` (a second signal)
 * ends the wait early. */
export async function drain(interceptors: readonly Interceptor[], ms: number, hurry: Promise<void>): Promise<void> {
  for (const interceptor of interceptors) interceptor.stop();
  await Promise.race([Promise.all(interceptors.map((i) => i.idle())), sleep(ms), hurry]);
  for (const interceptor of interceptors) interceptor.abandon(LEFT_AT_STOP);
  await quiesce(interceptors);
}

/** Waits (a bounded while) for the interceptors' decisions and settlements to finish. */
export async function quiesce(interceptors: readonly Interceptor[]): Promise<void> {
  await Promise.race([Promise.all(interceptors.map((i) => i.quiesce())), sleep(QUIESCE_MS)]);
}

/** A promise that a second SIGINT or SIGTERM resolves, and the handler to install. */
export function secondSignal(): { hurried: Promise<void>; hurry: () => void } {
  let hurry!: () => void;
  const hurried = new Promise<void>((resolve) => (hurry = resolve));
  return { hurried, hurry };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
