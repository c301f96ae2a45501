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
//   {intercept:<prefix>}<key>@rolling                    rolling counter (a sorted set)
// `{`, `}` and `%` in the prefix are %-escaped so the tag always ends where the prefix does.
// <key> is the storage key within the namespace: the proxy's keys already start with the
// prefix (keys.ts), so with `keysHavePrefix` it is taken off there and appears only in the tag.
// The suffix after the last `@` never contains `@`, so two different counters never share a
// key. A namespace lives in one slot, i.e. on one shard: to spread load across a cluster, use
// several prefixes. (This client connects to one node; the keys are ready for a cluster.)
//
// Calendar windows (UTC minute/hour/day): one key per counter and window, holding the value
// as a decimal string, with a TTL to the window's end plus CLOCK_SKEW_MARGIN_MS. A charge
// lands in the key of the window it falls in, so a rollback targets exactly that window, and
// old windows vanish by TTL. The unit is part of the key, so a counter whose window changes
// (after a policy reload) starts again. Memory: one small string per counter per live window.
//
// Rolling windows are an exact sliding log: a sorted set per counter, one member per admitted
// call (score = time in ms, member = "<amount>|<unique id>"). A reservation first drops the
// members at or before `now - window` (ZREMRANGEBYSCORE), sums the rest, checks, then adds its
// member and sets the TTL to the window length plus CLOCK_SKEW_MARGIN_MS. Nothing is
// approximated: a limit of N per 60 s never admits N+1 calls in any 60 s span. Cost: O(calls
// in the window) per reserve and read of that counter, in time and in memory (roughly 60-100
// bytes per member), so a rolling limit of 10 000 per hour keeps up to 10 000 members.
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
// Failures never crash or hang the proxy: commands are not queued while disconnected
// (`enableOfflineQueue: false`), each command times out (default 1000 ms), a command in flight
// when the connection drops is rejected and never resent (a resend could charge twice), and
// the client reconnects forever with a backoff capped at MAX_RECONNECT_DELAY_MS. Meanwhile
// every call that needs the server rejects promptly; after the server returns, calls succeed
// again. The proxy's --state-fail-mode decides what a rejection means. Connection errors are
// logged at warn at most once per WARN_EVERY_MS. A timed-out reservation may still have been
// applied by the server: the error can only ever over-count, never under-count.
//
// `connect` never fails because the server is unreachable (only for a malformed DSN): it logs
// a warning and returns a store whose calls reject until the server answers, so a proxy in
// fail-open mode can start during an outage.
//
// Settling: commit and rollback of a reservation happen at most once (tracked in this
// process). A rollback is marked settled before it is sent, so a failed or timed-out rollback
// is never retried: at worst the charge stays (over-counting), never undone twice.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { CounterRead, Reservation, ReserveItem, ReserveOutcome } from './store.js';
import type { CalendarUnit, Window } from '../policy/model.js';
import { calendarWindowEnd, calendarWindowStart } from './windows.js';
import { checkItems } from './reservations.js';
import { BaseCounterStore, calendarUndoApplies } from './base-store.js';
import { defineScripts, limitArgs, numArg, parseNum, type ScriptCommands } from './redis-scripts.js';

/** Extra TTL beyond a window's end, covering clock differences between proxies. */
export const CLOCK_SKEW_MARGIN_MS = 5_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 1_000;
const MAX_RECONNECT_DELAY_MS = 2_000;
const WARN_EVERY_MS = 30_000;

export interface RedisStoreOptions {
  /** Namespace for every key (the proxy's --state-prefix): it becomes the keys' hash tag. */
  prefix?: string;
  /** The keys passed in already start with `prefix` (storageKey applied it, as the proxy's keys
   * do): the store moves it into the hash tag instead of adding it again, and refuses a key
   * outside the namespace. By default (false) the keys are relative and the store adds it. */
  keysHavePrefix?: boolean;
  /** Per-command timeout; a call rejects after this long without an answer. */
  commandTimeoutMs?: number;
  log?: Logger;
}

// ---------------------------------------------------------------- helpers

/** What `Reservation.handle` points at: per item, the rolling member it added. */
interface Handle {
  members: (string | undefined)[];
}

function ttlFor(ms: number): string {
  return String(Math.max(1, Math.ceil(ms + CLOCK_SKEW_MARGIN_MS)));
}

/** `{`, `}` and `%` escaped, so the hash tag ends exactly after the prefix. */
function escapeTag(prefix: string): string {
  return prefix.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Host and port for log lines (never the credentials). */
function endpointOf(dsn: string): string {
  try {
    const u = new URL(dsn);
    return `${u.protocol}//${u.host}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    return 'redis';
  }
}

function messageOf(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return err.message || code || err.name;
  }
  return String(err);
}

// ---------------------------------------------------------------- the store

export class RedisCounterStore extends BaseCounterStore<Handle> {
  private readonly client: Redis;
  private readonly scripts: ScriptCommands;
  private readonly prefix: string;
  private readonly keysHavePrefix: boolean;
  /** `{intercept:<escaped prefix>}`: starts every key of the namespace. */
  private readonly tag: string;
  private readonly log: Logger | undefined;
  private readonly endpoint: string;
  /** Makes rolling members unique across every store and process sharing the server. */
  private readonly instance = randomBytes(9).toString('base64url');
  private nextMember = 1;
  private lastWarnAt = -Infinity;
  private suppressed = 0;
  private failing = false;
  /** Set once the first connection attempt is over; until then `connect` reports trouble. */
  private started = false;

  private constructor(client: Redis, endpoint: string, opts: RedisStoreOptions) {
    // The server may apply a rollback whose reply never arrives: never send one twice.
    super('before-undo');
    this.client = client;
    this.endpoint = endpoint;
    this.log = opts.log;
    this.prefix = opts.prefix ?? '';
    this.keysHavePrefix = opts.keysHavePrefix ?? false;
    this.tag = `{intercept:${escapeTag(this.prefix)}}`;
    this.scripts = defineScripts(client);
    // Always listen: an 'error' event without a listener would be reported as unhandled.
    client.on('error', (err: unknown) => this.trouble(`counter store (redis) error: ${messageOf(err)}`));
    client.on('close', () => {
      if (!this.closed && !this.failing) this.trouble('counter store (redis) connection lost');
    });
    client.on('ready', () => {
      if (this.failing) this.log?.info('counter store (redis) reachable again', { endpoint: this.endpoint });
      this.failing = false;
    });
  }

  /**
   * Connects to `redis://[user:pass@]host:port[/db]` or `rediss://…` (TLS). Rejects only for a
   * DSN that is not a Redis URL; an unreachable server gives a store whose calls reject until
   * the server answers (a warning is logged).
   */
  static async connect(dsn: string, opts: RedisStoreOptions = {}): Promise<RedisCounterStore> {
    if (!/^rediss?:\/\/[^/]/i.test(dsn)) {
      // Only the scheme is echoed: the rest may hold a password.
      const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(dsn)?.[0] ?? 'no scheme';
      throw new Error(`the counter store DSN must be redis://[user:pass@]host:port[/db] or rediss://…, got ${scheme}`);
    }
    const commandTimeout = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    if (!(Number.isFinite(commandTimeout) && commandTimeout > 0)) {
      throw new RangeError(`commandTimeoutMs must be a positive number, got ${commandTimeout}`);
    }
    const client = new Redis(dsn, {
      lazyConnect: true,
      enableOfflineQueue: false,
      commandTimeout,
      connectTimeout: Math.max(2_000, commandTimeout),
      // 0: a command in flight when the connection drops is rejected at once, not resent.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), MAX_RECONNECT_DELAY_MS),
    });
    const store = new RedisCounterStore(client, endpointOf(dsn), opts);
    try {
      await client.connect();
    } catch (err) {
      store.log?.warn('counter store (redis) is unreachable; counter calls fail until it answers', {
        endpoint: store.endpoint,
        error: messageOf(err),
      });
      store.failing = true;
      store.lastWarnAt = Date.now();
    }
    store.started = true;
    return store;
  }

  async reserve(items: ReserveItem[], now: number): Promise<ReserveOutcome> {
    this.assertOpen();
    checkItems(items);
    const members: (string | undefined)[] = [];
    if (items.length > 0) {
      const keys: string[] = [];
      const args: string[] = [numArg(now)];
      for (const item of items) {
        const w = item.window;
        if (w.kind === 'calendar') {
          const end = calendarWindowEnd(w.unit, now);
          keys.push(this.calendarKey(item.key, w.unit, calendarWindowStart(w.unit, now)));
          args.push('c', numArg(item.amount), ttlFor(end - now), '0', numArg(end - now));
          members.push(undefined);
        } else {
          const ms = w.seconds * 1000;
          // Zero adds nothing to the sum, so nothing is logged (as in memory).
          const member = item.amount > 0 ? `${numArg(item.amount)}|${this.instance}.${(this.nextMember++).toString(36)}` : undefined;
          keys.push(this.rollingKey(item.key));
          args.push('r', numArg(item.amount), ttlFor(ms), numArg(ms), member ?? '');
          members.push(member);
        }
        args.push(...limitArgs(item.limits));
      }
      const reply = await this.call(() => this.scripts.interceptReserve(keys.length, ...keys, ...args));
      if (!Array.isArray(reply) || (reply[0] !== 'ok' && reply[0] !== 'refused')) {
        throw new Error(`counter store (redis): unexpected reply ${JSON.stringify(reply)}`);
      }
      if (reply[0] === 'refused') {
        const index = Number(reply[1]);
        const current = parseNum(reply[2]);
        return reply[3] === '' ? { ok: false, index, current } : { ok: false, index, current, retryAfterMs: parseNum(reply[3]) };
      }
    }
    return this.grant(items, { members }, now);
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
    const reply = await this.call(() => this.scripts.interceptRead(keys.length, ...keys, ...args));
    if (!Array.isArray(reply) || reply.length !== counters.length) {
      throw new Error(`counter store (redis): unexpected reply ${JSON.stringify(reply)}`);
    }
    return reply.map(parseNum);
  }

  async close(): Promise<void> {
    if (!this.markClosed()) return;
    if (this.client.status === 'ready') {
      try {
        await this.client.quit();
      } catch {
        // Gone already or timed out: disconnecting below is all that is left to do.
      }
    }
    this.client.disconnect();
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
        const member = handle.members[i];
        if (member === undefined) return;
        keys.push(this.rollingKey(item.key));
        args.push('r', '0', '0', member);
      }
    });
    if (keys.length === 0) return;
    await this.call(() => this.scripts.interceptRollback(keys.length, ...keys, ...args));
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
    return `${this.namespaced(key)}@rolling`;
  }

  /** The hash tag, then the key within the namespace: the prefix appears once, in the tag. */
  private namespaced(key: string): string {
    if (!this.keysHavePrefix) return this.tag + key;
    if (!key.startsWith(this.prefix)) {
      throw new RangeError(`counter ${key}: not in this store's namespace ${JSON.stringify(this.prefix)}`);
    }
    return this.tag + key.slice(this.prefix.length);
  }

  private async call<T>(send: () => Promise<T>): Promise<T> {
    // Not connected: say so plainly (the client would only say its stream isn't writeable).
    if (this.client.status !== 'ready') {
      throw new Error(`counter store (redis) at ${this.endpoint} is not reachable (${this.client.status})`);
    }
    try {
      return await send();
    } catch (err) {
      const reason = messageOf(err).includes("isn't writeable") ? 'connection lost' : messageOf(err);
      throw new Error(`counter store (redis) at ${this.endpoint}: ${reason}`, { cause: err });
    }
  }

  /** Logs connection trouble at warn, at most once per WARN_EVERY_MS. */
  private trouble(message: string): void {
    this.failing = true;
    if (this.closed || !this.started) return;
    const t = Date.now();
    if (t - this.lastWarnAt < WARN_EVERY_MS) {
      this.suppressed++;
      return;
    }
    this.log?.warn(message, { endpoint: this.endpoint, suppressed: this.suppressed > 0 ? this.suppressed : undefined });
    this.lastWarnAt = t;
    this.suppressed = 0;
  }
}
