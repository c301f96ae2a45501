// The in-memory approval store: one process, nothing survives a restart (--state-dsn memory:).
// It is the reference the contract suite pins the other backends to; the status rules are in
// transitions.ts. Calls are synchronous underneath, so a change of status is atomic.
import { newApprovalId } from './ids.js';
import { applyChange, asOf, isOpen, newestFirst, newStored, type Change, type StoredApproval } from './transitions.js';
import type { ApprovalRecord, ApprovalStatus, ApprovalStore, ChangeOutcome, Decision, NewApproval } from './types.js';

/** Writes between two sweeps of requests past retention (reads hide them meanwhile). */
const SWEEP_EVERY = 100;

interface Entry extends StoredApproval {
  order: number;
}

export class MemoryApprovalStore implements ApprovalStore {
  /** In creation order. */
  private readonly entries = new Map<string, Entry>();
  private created = 0;
  private writesSinceSweep = 0;
  private closed = false;

  async create(request: NewApproval, now: number): Promise<ApprovalRecord> {
    this.assertOpen();
    let id = newApprovalId();
    while (this.entries.has(id)) id = newApprovalId();
    const entry: Entry = { ...newStored(request, id), order: ++this.created };
    this.entries.set(id, entry);
    this.wrote(now);
    return copy(entry.record);
  }

  async get(id: string, now: number): Promise<ApprovalRecord | undefined> {
    this.assertOpen();
    const entry = this.current(id, now);
    return entry && copy(entry.record);
  }

  async list(now: number, filter: { status?: ApprovalStatus } = {}): Promise<ApprovalRecord[]> {
    this.assertOpen();
    const out: Entry[] = [];
    for (const id of [...this.entries.keys()]) {
      const entry = this.current(id, now);
      if (entry && (filter.status === undefined || entry.record.status === filter.status)) out.push(entry);
    }
    return newestFirst(out).map((e) => copy(e.record));
  }

  decide(id: string, decision: Decision, now: number): Promise<ChangeOutcome> {
    return this.change(id, { kind: 'decide', decision }, now);
  }

  withdraw(id: string, now: number): Promise<ChangeOutcome> {
    return this.change(id, { kind: 'withdraw' }, now);
  }

  expire(id: string, now: number): Promise<ChangeOutcome> {
    return this.change(id, { kind: 'expire' }, now);
  }

  claim(id: string, now: number): Promise<ChangeOutcome> {
    return this.change(id, { kind: 'claim' }, now);
  }

  async findOpen(binding: string, now: number): Promise<ApprovalRecord | undefined> {
    this.assertOpen();
    const open: Entry[] = [];
    for (const [id, entry] of this.entries) {
      if (entry.record.binding !== binding) continue;
      const current = this.current(id, now);
      if (current && isOpen(current.record.status)) open.push(current);
    }
    const newest = newestFirst(open)[0];
    return newest && copy(newest.record);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.entries.clear();
  }

  /** Requests held, past retention or not (for tests). */
  get size(): number {
    return this.entries.size;
  }

  private async change(id: string, change: Change, now: number): Promise<ChangeOutcome> {
    this.assertOpen();
    const entry = this.entries.get(id);
    if (entry === undefined) return { ok: false, reason: 'not_found' };
    const { outcome, write } = applyChange(entry, change, now);
    if (outcome.ok === false && outcome.reason === 'not_found') this.entries.delete(id);
    else if (write) this.entries.set(id, { ...write, order: entry.order });
    this.wrote(now);
    return outcome.ok || outcome.reason === 'conflict' ? { ...outcome, record: copy(outcome.record) } : outcome;
  }

  /** The entry as of `now`, stored so (deleted once past retention). */
  private current(id: string, now: number): Entry | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    const current = asOf(entry, now);
    if (current === undefined) {
      this.entries.delete(id);
      return undefined;
    }
    if (current === entry) return entry;
    const next = { ...current, order: entry.order };
    this.entries.set(id, next);
    return next;
  }

  private wrote(now: number): void {
    if (++this.writesSinceSweep < SWEEP_EVERY) return;
    this.writesSinceSweep = 0;
    for (const [id, entry] of this.entries) if (asOf(entry, now) === undefined) this.entries.delete(id);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('approval store is closed');
  }
}

/** A copy the caller may change freely. */
function copy(record: ApprovalRecord): ApprovalRecord {
  return structuredClone(record);
}
