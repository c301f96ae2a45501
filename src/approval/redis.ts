// The Redis approval store: requests shared by a fleet of proxies (and the CLI) through one
// Redis server or cluster. Status rules are those of transitions.ts, run on the server as Lua
// (redis-scripts.ts): each change of status (decide, withdraw, expire, claim) is one script that
// checks the status and writes, so of two deciders or claimers anywhere, exactly one wins.
//
// Keys. One namespace per prefix, all under one hash tag (the counter store's, state/redis.ts),
// so every key of a namespace is in one slot of a cluster:
//   {intercept:<prefix>}apr:<id>          a request (a hash, fields in redis-scripts.ts)
//   {intercept:<prefix>}apr:index         every request's id, scored by the latest it can be kept
//   {intercept:<prefix>}apr:bind:<digest> the ids that may be open for a binding, scored by expiresAt
//   {intercept:<prefix>}apr:seq           creation counter, ordering requests of the same ms
// Counter keys always hold an `@` after the tag and these never do, so the two never meet.
//
// TTLs: a request lives until RETENTION_MS after it became final (for an open one: after its
// expiresAt), plus CLOCK_SKEW_MARGIN_MS; the sets and the counter live as long as their longest
// member. Reads hide what is past retention as of the caller's `now` at once, whatever the TTL.
//
// Round trips: create, get and each change are one script call; list and findOpen read the
// set's ids, then the requests in one script (a request created in between is missed, as if
// it had come a moment later).
//
// The connection is the counter store's kind (state/redis-connection.ts: fail fast, never
// resend, reconnect with a capped backoff): calls reject while the server is unreachable, and
// the gate refuses the call.
import { CLOCK_SKEW_MARGIN_MS } from '../state/redis.js';
import { RedisConnection, type RedisConnectionOptions } from '../state/redis-connection.js';
import { newApprovalId } from './ids.js';
import { defineApprovalScripts, type ApprovalScripts } from './redis-scripts.js';
import { isOpen, newestFirst, newStored } from './transitions.js';
import {
  APPROVAL_STATUSES,
  RETENTION_MS,
  type ApprovalRecord,
  type ApprovalStatus,
  type ApprovalStore,
  type ChangeOutcome,
  type Decision,
  type DecidedVia,
  type NewApproval,
} from './types.js';

/** Requests read by one script call in list (a long script would stall the server). */
const READ_CHUNK = 500;

export type RedisApprovalStoreOptions = RedisConnectionOptions;

type Op = 'read' | 'approve' | 'deny' | 'withdraw' | 'expire' | 'claim';

/** A request read back from its hash's fields, with its creation rank. */
function parseFields(flat: unknown): { record: ApprovalRecord; order: number } {
  if (!Array.isArray(flat)) throw new Error(`approval store (redis): unexpected reply ${JSON.stringify(flat)}`);
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) f.set(String(flat[i]), String(flat[i + 1]));
  const status = f.get('status') as ApprovalStatus;
  if (!APPROVAL_STATUSES.includes(status) || !f.has('r')) throw new Error('approval store (redis): a request without its fields');
  const num = (name: string) => (f.has(name) ? { [name]: Number(f.get(name)) } : {});
  const str = (name: string) => (f.has(name) ? { [name]: f.get(name) } : {});
  const record = {
    ...(JSON.parse(f.get('r')!) as Omit<ApprovalRecord, 'status'>),
    status,
    ...num('decidedAt'),
    ...str('decidedBy'),
    ...(f.has('via') ? { via: f.get('via') as DecidedVia } : {}),
    ...str('reason'),
    ...num('usedAt'),
  } as ApprovalRecord;
  return { record, order: Number(f.get('seq')) };
}

export class RedisApprovalStore implements ApprovalStore {
  private readonly scripts: ApprovalScripts;
  private readonly tag: string;
  private closed = false;

  private constructor(private readonly conn: RedisConnection) {
    this.tag = conn.tag;
    this.scripts = defineApprovalScripts(conn.client);
  }

  /** Connects to a server (`redis://…`, `rediss://…`) or a cluster (`redis+cluster://…`). Rejects
   * only for a malformed DSN; an unreachable server gives a store whose calls reject until it
   * answers (a warning is logged). */
  static async connect(dsn: string, opts: RedisApprovalStoreOptions = {}): Promise<RedisApprovalStore> {
    return new RedisApprovalStore(await RedisConnection.open(dsn, 'approval store (redis)', 'approval calls fail until it answers', opts));
  }

  async create(request: NewApproval, now: number): Promise<ApprovalRecord> {
    this.assertOpen();
    for (;;) {
      const { record } = newStored(request, newApprovalId());
      const { status: _status, ...fixed } = record;
      const reply = await this.conn.call(() =>
        this.scripts.interceptApprovalCreate(
          4,
          this.recordKey(record.id),
          this.indexKey(),
          this.bindKey(record.binding),
          `${this.tag}apr:seq`,
          ...this.common(now),
          record.id,
          JSON.stringify(fixed),
          String(record.requestedAt),
          String(record.expiresAt),
        ),
      );
      if (typeof reply === 'number') return record;
      // 'taken': an id drawn twice (practically never), so draw again.
      if (reply !== 'taken') throw new Error(`approval store (redis): unexpected reply ${JSON.stringify(reply)}`);
    }
  }

  async get(id: string, now: number): Promise<ApprovalRecord | undefined> {
    const outcome = await this.change(id, 'read', now);
    return outcome.ok ? outcome.record : undefined;
  }

  async list(now: number, filter: { status?: ApprovalStatus } = {}): Promise<ApprovalRecord[]> {
    const found = await this.readSet(this.indexKey(), false, now);
    const records = newestFirst(found).map((f) => f.record);
    return filter.status === undefined ? records : records.filter((r) => r.status === filter.status);
  }

  decide(id: string, decision: Decision, now: number): Promise<ChangeOutcome> {
    const reason = decision.reason === undefined ? ['0', ''] : ['1', decision.reason];
    return this.change(id, decision.approve ? 'approve' : 'deny', now, [decision.by, decision.via, ...reason]);
  }

  withdraw(id: string, now: number): Promise<ChangeOutcome> {
    return this.change(id, 'withdraw', now);
  }

  expire(id: string, now: number): Promise<ChangeOutcome> {
    return this.change(id, 'expire', now);
  }

  claim(id: string, now: number): Promise<ChangeOutcome> {
    return this.change(id, 'claim', now);
  }

  async findOpen(binding: string, now: number): Promise<ApprovalRecord | undefined> {
    const open = await this.readSet(this.bindKey(binding), true, now);
    return newestFirst(open.filter((f) => isOpen(f.record.status)))[0]?.record;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.conn.close();
  }

  /** The Redis key of a request (for tests and operators). */
  recordKey(id: string): string {
    return `${this.tag}apr:${id}`;
  }

  // -------------------------------------------------------------- internals

  private indexKey(): string {
    return `${this.tag}apr:index`;
  }

  private bindKey(binding: string): string {
    return `${this.tag}apr:bind:${binding}`;
  }

  private common(now: number): string[] {
    if (!Number.isFinite(now)) throw new RangeError(`now must be a finite number, got ${now}`);
    return [String(now), String(RETENTION_MS), String(CLOCK_SKEW_MARGIN_MS)];
  }

  private async change(id: string, op: Op, now: number, extra: string[] = []): Promise<ChangeOutcome> {
    this.assertOpen();
    const reply = await this.conn.call(() => this.scripts.interceptApprovalChange(1, this.recordKey(id), ...this.common(now), op, ...extra));
    if (!Array.isArray(reply) || (reply[0] !== 'not_found' && reply[0] !== 'ok' && reply[0] !== 'conflict')) {
      throw new Error(`approval store (redis): unexpected reply ${JSON.stringify(reply)}`);
    }
    if (reply[0] === 'not_found') return { ok: false, reason: 'not_found' };
    const { record } = parseFields(reply[1]);
    return reply[0] === 'ok' ? { ok: true, record } : { ok: false, reason: 'conflict', record };
  }

  /** The requests of a sorted set that may still be there (or open), read as of `now`. */
  private async readSet(set: string, onlyOpen: boolean, now: number): Promise<{ record: ApprovalRecord; order: number }[]> {
    this.assertOpen();
    const ids = (await this.conn.call((c) => c.zrangebyscore(set, `(${now}`, '+inf'))) as string[];
    const out: { record: ApprovalRecord; order: number }[] = [];
    for (let i = 0; i < ids.length; i += READ_CHUNK) {
      const chunk = ids.slice(i, i + READ_CHUNK);
      const keys = chunk.map((id) => this.recordKey(id));
      const reply = await this.conn.call(() =>
        this.scripts.interceptApprovalReadMany(1 + keys.length, set, ...keys, ...this.common(now), ...chunk, onlyOpen ? 'open' : 'all'),
      );
      if (!Array.isArray(reply)) throw new Error(`approval store (redis): unexpected reply ${JSON.stringify(reply)}`);
      for (const fields of reply) out.push(parseFields(fields));
    }
    return out;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('approval store is closed');
  }
}
