// The life of a request, as pure functions over a stored record, shared by the memory and
// SQLite stores (the Redis store's Lua scripts, redis-scripts.ts, do the same steps):
//
//   pending → approved | denied | withdrawn | expired;  approved → used | expired
//
// Expiry is lazy: a pending or approved request past `expiresAt` reads as expired, as if it had
// expired at `expiresAt` (a pending one records `timeout` as who and how). `finalAt` is when a
// request became final or, while it is open, the latest it can (`expiresAt`), so `finalAt` is
// never after `expiresAt`, and a request is gone once `finalAt + RETENTION_MS` has passed.
import { RETENTION_MS, type ApprovalRecord, type ApprovalStatus, type ChangeOutcome, type Decision, type NewApproval } from './types.js';

export interface StoredApproval {
  record: ApprovalRecord;
  finalAt: number;
}

export type Change = { kind: 'decide'; decision: Decision } | { kind: 'withdraw' } | { kind: 'expire' } | { kind: 'claim' };

export function isOpen(status: ApprovalStatus): boolean {
  return status === 'pending' || status === 'approved';
}

/** A new pending request. The request is copied through JSON, as a persistent store keeps it,
 * so every backend hands back the same values (and a caller's later edits do not leak in). */
export function newStored(request: NewApproval, id: string): StoredApproval {
  const record = JSON.parse(JSON.stringify({ ...request, id, status: 'pending' })) as ApprovalRecord;
  return { record, finalAt: request.expiresAt };
}

/** The request as of `now`: the same object when nothing changed, an expired copy when its
 * time ran out, undefined once it is past retention. */
export function asOf(stored: StoredApproval, now: number): StoredApproval | undefined {
  if (stored.finalAt + RETENTION_MS <= now) return undefined;
  const { record } = stored;
  if (!isOpen(record.status) || now < record.expiresAt) return stored;
  const expired: ApprovalRecord =
    record.status === 'pending'
      ? { ...record, status: 'expired', decidedAt: record.expiresAt, decidedBy: 'timeout', via: 'timeout' }
      : { ...record, status: 'expired' }; // an unused grant keeps who granted it
  return { record: expired, finalAt: stored.finalAt };
}

/** Applies `change` at `now`. `write` is what to store (undefined: nothing changed, not even
 * by expiry); a `not_found` outcome means the row may be deleted. */
export function applyChange(stored: StoredApproval, change: Change, now: number): { outcome: ChangeOutcome; write?: StoredApproval } {
  const current = asOf(stored, now);
  if (current === undefined) return { outcome: { ok: false, reason: 'not_found' } };
  const next = changed(stored, current, change, now);
  if (next === undefined) {
    return { outcome: { ok: false, reason: 'conflict', record: current.record }, ...(current !== stored ? { write: current } : {}) };
  }
  return { outcome: { ok: true, record: next.record }, write: next };
}

function changed(stored: StoredApproval, current: StoredApproval, change: Change, now: number): StoredApproval | undefined {
  const record = current.record;
  // Final at `now`, but never after expiresAt (a timeout noticed late ended at expiresAt).
  const final = (r: ApprovalRecord): StoredApproval => ({ record: r, finalAt: Math.min(now, record.expiresAt) });
  switch (change.kind) {
    case 'decide': {
      if (record.status !== 'pending') return undefined;
      const { approve, by, via, reason } = change.decision;
      const decided: ApprovalRecord = { ...record, status: approve ? 'approved' : 'denied', decidedAt: now, decidedBy: by, via, ...(reason !== undefined ? { reason } : {}) };
      return approve ? { record: decided, finalAt: current.finalAt } : final(decided);
    }
    case 'withdraw':
      return record.status === 'pending' ? final({ ...record, status: 'withdrawn', decidedAt: now }) : undefined;
    case 'expire':
      // The stored status counts: a timeout due by now is exactly what expire records.
      if (stored.record.status !== 'pending') return undefined;
      return final({ ...stored.record, status: 'expired', decidedAt: now, decidedBy: 'timeout', via: 'timeout' });
    case 'claim':
      return record.status === 'approved' ? final({ ...record, status: 'used', usedAt: now }) : undefined;
  }
}

/** Newest first: later requestedAt, then the later created. `order` is each one's creation rank. */
export function newestFirst<T extends { record: ApprovalRecord; order: number }>(items: T[]): T[] {
  return items.sort((a, b) => b.record.requestedAt - a.record.requestedAt || b.order - a.order);
}
