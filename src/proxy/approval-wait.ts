// Waiting for a human: a held call's request is polled in the approval store (whoever decides,
// from whichever process, writes there) until it is approved, denied, withdrawn or expired.
// Polling keeps one mechanism for every backend; a decision is seen within POLL_MS.
import type { ApprovalRecord, ApprovalStore } from '../approval/types.js';
import type { Logger } from '../log.js';

export const POLL_MS = 250;
/** How often a held call with a progress token tells the client it is still waiting. */
export const PROGRESS_EVERY_MS = 5000;

export type WaitEnd = { kind: 'approved' | 'denied' | 'expired' | 'withdrawn' | 'used'; record: ApprovalRecord };

export interface WaitOptions {
  store: ApprovalStore;
  now: () => number;
  log: Logger;
  /** True once the client cancelled the call or the session ended: the request is withdrawn. */
  abandoned: () => boolean;
  /** Called every PROGRESS_EVERY_MS while waiting, with the count of calls so far. */
  onProgress?: (count: number) => void;
  pollMs?: number;
}

export async function waitForDecision(request: ApprovalRecord, opts: WaitOptions): Promise<WaitEnd> {
  const pollMs = opts.pollMs ?? POLL_MS;
  const started = opts.now();
  let progress = 0;
  let last = request;
  for (;;) {
    await sleep(pollMs);
    const now = opts.now();
    if (opts.abandoned()) {
      const out = await opts.store.withdraw(request.id, now).catch(() => undefined);
      return { kind: 'withdrawn', record: out?.ok ? out.record : last };
    }
    try {
      if (now >= request.expiresAt) {
        // Expired first, then read: a store reads a request past its time as expired (and may
        // write it so), and then expire() would find nothing to do and no expiry be recorded.
        // Only the process whose expire() succeeds records it.
        const out = await opts.store.expire(request.id, now);
        if (out.ok) return { kind: 'expired', record: out.record };
      }
      // Decided (perhaps at the last moment), withdrawn, expired by another process, or pending.
      const record = await opts.store.get(request.id, now);
      if (record === undefined) return { kind: 'withdrawn', record: { ...last, status: 'withdrawn' } };
      last = record;
      if (record.status !== 'pending') return { kind: record.status, record };
    } catch (err) {
      opts.log.warn('approval store unavailable while waiting; still waiting', { id: request.id, error: String(err) });
      if (now >= request.expiresAt) return { kind: 'expired', record: { ...last, status: 'expired' } };
    }
    const due = Math.floor((now - started) / PROGRESS_EVERY_MS);
    if (opts.onProgress && due > progress) {
      progress = due;
      opts.onProgress(progress);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
