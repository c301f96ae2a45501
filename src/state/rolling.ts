// Rolling windows kept as sub-window buckets, the same way on every store. A window of W
// seconds is cut into ROLLING_BUCKETS buckets of width w = W / ROLLING_BUCKETS; a charge adds
// to the bucket its time falls in, and a bucket counts for as long as any instant in it is
// within the last W seconds, i.e. while `now < bucket end + W`. So:
//   - never more than `max` is admitted in any W-second span (a charge counts at least W after
//     it was made), whatever the times of the calls;
//   - a charge may count up to one bucket width longer than exactly W (the early-denial bound);
//   - a counter holds at most ROLLING_BUCKETS + 1 live buckets, whatever the limit and however
//     many calls the window saw, so a reserve costs the same on the millionth call.
// Buckets carry their own bounds, so a window changed by a policy reload keeps counting what
// was charged under the old one (each bucket for the current W after its own end).

/** Buckets per window: a charge counts for at most 1/60 of the window longer than exactly. */
export const ROLLING_BUCKETS = 60;

export interface Bucket {
  /** [start, end) in ms since the epoch. */
  start: number;
  end: number;
  amount: number;
}

/** The window length and bucket width for a window of `seconds`. */
export function rollingGeometry(seconds: number): { windowMs: number; bucketMs: number } {
  const windowMs = seconds * 1000;
  return { windowMs, bucketMs: Math.max(1, Math.ceil(windowMs / ROLLING_BUCKETS)) };
}

/** The bounds of the bucket a charge at `now` falls in. */
export function bucketAt(now: number, bucketMs: number): { start: number; end: number } {
  const start = Math.floor(now / bucketMs) * bucketMs;
  return { start, end: start + bucketMs };
}

/** Whether a bucket still counts at `now` for a window of `windowMs`. */
export function bucketCounts(end: number, now: number, windowMs: number): boolean {
  return now < end + windowMs;
}

/** When a bucket stops counting (for TTLs and sweeps). */
export function bucketExpiry(end: number, windowMs: number): number {
  return end + windowMs;
}
