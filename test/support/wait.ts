// Waiting without sleeping blindly: bounded polling, promises resolved from handlers, a time
// limit on any promise, and free loopback ports for the servers the tests start.
//
// Exports:
//   DEFAULT_TIMEOUT_MS                          how long a wait lasts unless told (10 s)
//   eventually(check, timeoutMs?, intervalMs?)  polls until `check` returns a value; errors count as "not yet"
//   waitUntil(predicate, timeoutMs?, what?)     polls until `predicate` holds; an error ends the wait
//   withTimeout(promise, ms, message)           the promise, or a rejection once `ms` pass
//   Deferred, deferred()                        a promise resolved from a handler, for awaiting
//                                               server-initiated traffic without sleeping
//   freePort()                                  a TCP port of 127.0.0.1 that was free a moment ago
import { createServer } from 'node:net';

export const DEFAULT_TIMEOUT_MS = 10_000;

const POLL_INTERVAL_MS = 50;

/** The one polling loop: calls `check` until it returns a value other than undefined, every
 * `intervalMs`, for at most `timeoutMs`. With `retryErrors`, an error thrown by `check` counts
 * as "not yet" (and is reported if time runs out); without, it ends the wait. */
async function poll<T>(
  check: () => Promise<T | undefined> | T | undefined,
  opts: { timeoutMs: number; intervalMs: number; what: string; retryErrors: boolean },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      if (!opts.retryErrors) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out waiting for ${opts.what} (${opts.timeoutMs} ms)${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs));
  }
}

/** Polls `check` until it returns a value other than undefined, and returns that value. An
 * error thrown by `check` counts as "not yet": for calls that fail until something comes back. */
export function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = DEFAULT_TIMEOUT_MS, intervalMs = POLL_INTERVAL_MS): Promise<T> {
  return poll(check, { timeoutMs, intervalMs, what: 'a value', retryErrors: true });
}

/** Polls `predicate` until it holds (bounded), for effects outside the client. An error thrown
 * by `predicate` ends the wait at once. */
export async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'condition'): Promise<void> {
  await poll(async () => ((await predicate()) ? true : undefined), { timeoutMs, intervalMs: POLL_INTERVAL_MS, what, retryErrors: false });
}

/** `promise`, or a rejection with `message()` once `ms` pass. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message())), ms);
    }),
  ]);
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

/** A promise to resolve from a handler, so a test awaits server traffic instead of sleeping. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A port that was free a moment ago (listen on port 0 of 127.0.0.1, close, reuse the number). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
