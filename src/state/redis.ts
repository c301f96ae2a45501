// The Redis counter store: the shared backend for a fleet of proxies. Every proxy pointing at
// the same server (and prefix) shares every counter. Behaviour matches the memory store
// (memory.ts) call for call; the contract suite pins it down.
//
// Atomicity: each operation is one Lua script (reserve, rollback, read). Redis runs a script
// to completion before any other command, so a reservation's check of every item and its
// charge of every item happen together, across all connected proxies: all or nothing.
//
// Keys. One namespace per prefix, wrapped in a single Redis Cluster hash tag so that every key
// of a reservation (and of the whole namespace) maps to one hash slot:
//   {intercept:<prefix>}<key>@<unit>:<window start ms>   calendar counter (a string)
//   {intercept:<prefix>}<key>@buckets                    rolling counter (a hash of buckets)
// `{`, `}` and `%` in the prefix are %-escaped so the tag always ends where the prefix does.
// <key> is the storage key within the namespace (keys.ts): the prefix appears only in the tag.
// The suffix after the last `@` never contains `@`, so two different counters never share a
// key. A namespace lives in one slot, i.e. on one shard: to spread load across a cluster, use
// several prefixes.
//
// Server or cluster (the DSN forms are in redis-dsn.ts): redis://… connects to one server;
// redis+cluster://host:port[,host:port…] uses ioredis's Cluster client, which learns the slot map
// from the listed nodes and follows MOVED and ASK redirections. Every script names only keys of
// one namespace, so each runs whole on the one master owning that namespace's slot.
//
// Calendar windows (UTC minute/hour/day): one key per counter and window, holding the value
// as a decimal string, with a TTL to the window's end plus CLOCK_SKEW_MARGIN_MS. A charge
// lands in the key of the window it falls in, so a rollback targets exactly that window, and
// old windows vanish by TTL. The unit is part of the key, so a counter whose window changes
// (after a policy reload) starts again. Memory: one small string per counter per live window.
//
// Rolling windows are sub-window buckets (rolling.ts), one hash per counter: field
// "<start>:<end>" (ms) -> the amount charged in that bucket. A reservation drops the fields that
// no longer count, sums the rest (at most ROLLING_BUCKETS + 1), checks, then adds to the field of
// the bucket `now` falls in (HINCRBYFLOAT) and sets the TTL to when that bucket stops counting,
// plus CLOCK_SKEW_MARGIN_MS. A limit of N per 60 s never admits N+1 calls in any 60 s span, and
// the cost of a reserve and the memory of a counter do not grow with the calls in the window.
// One round trip per reservation; commit sends nothing; a rollback is one more.
//
// Arithmetic is done in the script in IEEE doubles (the same as JavaScript) and values are
// stored and returned as 17 significant digits, which round-trip exactly, so results agree
// with the memory store to the last bit. (Rolling sums run in time order; entries of the same
// millisecond may be summed in another order, which only matters for amounts that binary
// floating point cannot represent exactly.)
//
// Time: `now` comes from the caller, never from Redis, so every proxy sharing a namespace must
// have a synchronised clock (NTP). Windows are as exact as the clocks agree; TTLs allow
// CLOCK_SKEW_MARGIN_MS of disagreement before a window's state could vanish early.
//
// Failures never crash or hang the proxy: the connection (redis-connection.ts) fails fast,
// never resends (a resend could charge twice) and reconnects forever; meanwhile every call that
// needs the server rejects promptly, and the proxy's --state-fail-mode decides what a rejection
// means. A timed-out reservation may still have been applied by the server: the error can only
// ever over-count, never under-count.
//
// Settling: commit and rollback of a reservation happen at most once (tracked in this
// process). A rollback is marked settled before it is sent, so a failed or timed-out rollback
// is never retried: at worst the charge stays (over-counting), never undone twice.
import { RedisConnection, type RedisConnectionOptions } from './redis-connection.js';
import type { CounterRead, Reservation, ReserveItem, ReserveOutcome } from './store.js';
import type { CalendarUnit, Window } from '../policy/model.js';
import { calendarWindowEnd, calendarWindowStart } from './windows.js';
import { checkItems } from './reservations.js';
import { BaseCounterStore, calendarUndoApplies } from './base-store.js';
import { bucketAt, bucketExpiry, rollingGeometry } from './rolling.js';
import { defineScripts, limitArgs, numArg, parseNum, type ScriptCommands } from './redis-scripts.js';

/** Extra TTL beyond a window's end, covering clock differences between proxies. */
export const CLOCK_SKEW_MARGIN_MS = 5_000;

export type RedisStoreOptions = RedisConnectionOptions;

// ---------------------------------------------------------------- helpers

/** What `Reservation.handle` points at: per item, the rolling bucket field it charged. */
interface Handle {
  fields: (string | undefined)[];
}

function ttlFor(ms: number): string {
  return String(Math.max(1, Math.ceil(ms + CLOCK_SKEW_MARGIN_MS)));
}

// ---------------------------------------------------------------- the store

export class RedisCounterStore extends BaseCounterStore<Handle> {
  private readonly scripts: ScriptCommands;

  private constructor(private readonly conn: RedisConnection) {
    // The server may apply a rollback whose reply never arrives: never send one twice.
    super('before-undo');
    this.scripts = defineScripts(conn.client);
  }

  /**
   * Connects to a server (`redis://…`, `rediss://…`) or a cluster (`redis+cluster://…`; the
   * forms are in redis-dsn.ts). Rejects only for a malformed DSN; an unreachable server gives
   * a store whose calls reject until it answers (a warning is logged).
   */
  static async connect(dsn: string, opts: RedisStoreOptions = {}): Promise<RedisCounterStore> {
    return new RedisCounterStore(await RedisConnection.open(dsn, 'counter store (redis)', 'counter calls fail until it answers', opts));
  }

  async reserve(items: ReserveItem[], now: number): Promise<ReserveOutcome> {
    this.assertOpen();
    checkItems(items);
    const fields: (string | undefined)[] = [];
    if (items.length > 0) {
      const keys: string[] = [];
      const args: string[] = [numArg(now)];
      for (const item of items) {
        const w = item.window;
        if (w.kind === 'calendar') {
          const end = calendarWindowEnd(w.unit, now);
          keys.push(this.calendarKey(item.key, w.unit, calendarWindowStart(w.unit, now)));
          args.push('c', numArg(item.amount), ttlFor(end - now), '0', numArg(end - now));
          fields.push(undefined);
        } else {
          const { windowMs, bucketMs } = rollingGeometry(w.seconds);
          const bucket = bucketAt(now, bucketMs);
          const field = `${bucket.start}:${bucket.end}`;
          keys.push(this.rollingKey(item.key));
          args.push('r', numArg(item.amount), ttlFor(bucketExpiry(bucket.end, windowMs) - now), numArg(windowMs), field);
          // Zero adds nothing to the sum, so there is nothing to undo (as in memory).
          fields.push(item.amount > 0 ? field : undefined);
        }
        args.push(...limitArgs(item.limits));
      }
      const reply = await this.conn.call(() => this.scripts.interceptReserve(keys.length, ...keys, ...args));
      if (!Array.isArray(reply) || (reply[0] !== 'ok' && reply[0] !== 'refused')) {
        throw new Error(`counter store (redis): unexpected reply ${JSON.stringify(reply)}`);
      }
      if (reply[0] === 'refused') {
        const index = Number(reply[1]);
        const current = parseNum(reply[2]);
        return reply[3] === '' ? { ok: false, index, current } : { ok: false, index, current, retryAfterMs: parseNum(reply[3]) };
      }
    }
    return this.grant(items, { fields }, now);
  }

  async read(counters: CounterRead[], now: number): Promise<number[]> {
    this.assertOpen();
    if (counters.length === 0) return [];
    const keys: string[] = [];
    const args: string[] = [numArg(now)];
    for (const c of counters) {
      const w: Window = c.window;
      if (w.kind === 'calendar') {
        keys.push(this.calendarKey(c.key, w.unit, calendarWindowStart(w.unit, now)));
        args.push('c', '0');
      } else {
        keys.push(this.rollingKey(c.key));
        args.push('r', numArg(w.seconds * 1000));
      }
    }
    const reply = await this.conn.call(() => this.scripts.interceptRead(keys.length, ...keys, ...args));
    if (!Array.isArray(reply) || reply.length !== counters.length) {
      throw new Error(`counter store (redis): unexpected reply ${JSON.stringify(reply)}`);
    }
    return reply.map(parseNum);
  }

  async close(): Promise<void> {
    if (this.markClosed()) await this.conn.close();
  }

  protected async undo(reservation: Reservation, handle: Handle, now: number): Promise<void> {
    const keys: string[] = [];
    const args: string[] = [];
    reservation.items.forEach((item, i) => {
      const w = item.window;
      if (w.kind === 'calendar') {
        if (!calendarUndoApplies(w.unit, reservation.at, now)) return;
        keys.push(this.calendarKey(item.key, w.unit, calendarWindowStart(w.unit, reservation.at)));
        args.push('c', numArg(item.amount), ttlFor(calendarWindowEnd(w.unit, now) - now), '');
      } else {
        const field = handle.fields[i];
        if (field === undefined) return;
        keys.push(this.rollingKey(item.key));
        args.push('r', numArg(item.amount), '0', field);
      }
    });
    if (keys.length === 0) return;
    await this.conn.call(() => this.scripts.interceptRollback(keys.length, ...keys, ...args));
  }

  /** The Redis key that holds a counter at `now` (for tests and operators). */
  keyOf(key: string, window: Window, now: number): string {
    return window.kind === 'calendar' ? this.calendarKey(key, window.unit, calendarWindowStart(window.unit, now)) : this.rollingKey(key);
  }

  // -------------------------------------------------------------- keys and plumbing

  private calendarKey(key: string, unit: CalendarUnit, start: number): string {
    return `${this.namespaced(key)}@${unit}:${start}`;
  }

  private rollingKey(key: string): string {
    return `${this.namespaced(key)}@buckets`;
  }

  /** The hash tag, then the key within the namespace: the prefix appears once, in the tag. */
  private namespaced(key: string): string {
    return this.conn.tag + key;
  }
}
