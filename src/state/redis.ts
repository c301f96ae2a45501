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
// Failures never crash or hang the proxy: commands are not queued while disconnected
// (`enableOfflineQueue: false`), each command times out (default 1000 ms), a command in flight
// when the connection drops is rejected and never resent (a resend could charge twice), and
// the client reconnects forever with a backoff capped at MAX_RECONNECT_DELAY_MS. Meanwhile
// every call that needs the server rejects promptly; after the server returns, calls succeed
// again. The proxy's --state-fail-mode decides what a rejection means. Connection errors are
// logged at warn at most once per WARN_EVERY_MS. A timed-out reservation may still have been
// applied by the server: the error can only ever over-count, never under-count.
// On a cluster the same holds: the client as a whole reconnects with the same backoff once every
// node is lost, a command whose node connection drops is rejected, not retried on another node
// (retryDelayOnFailover 0), and so is one refused with CLUSTERDOWN (retryDelayOnClusterDown 0);
// a MOVED, ASK or TRYAGAIN reply means the script did not run there, so following it is safe.
//
// `connect` never fails because the server is unreachable (only for a malformed DSN): it logs
// a warning and returns a store whose calls reject until the server answers, so a proxy in
// fail-open mode can start during an outage. It waits at most the connect timeout for a first
// answer (a cluster whose state is not ok yet would otherwise keep it waiting).
//
// Settling: commit and rollback of a reservation happen at most once (tracked in this
// process). A rollback is marked settled before it is sent, so a failed or timed-out rollback
// is never retried: at worst the charge stays (over-counting), never undone twice.
import { Cluster, Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { CounterRead, Reservation, ReserveItem, ReserveOutcome } from './store.js';
import type { CalendarUnit, Window } from '../policy/model.js';
import { calendarWindowEnd, calendarWindowStart } from './windows.js';
import { checkItems } from './reservations.js';
import { BaseCounterStore, calendarUndoApplies } from './base-store.js';
import { bucketAt, bucketExpiry, rollingGeometry } from './rolling.js';
import { defineScripts, limitArgs, numArg, parseNum, type ScriptCommands } from './redis-scripts.js';
import { parseRedisDsn } from './redis-dsn.js';

/** Extra TTL beyond a window's end, covering clock differences between proxies. */
export const CLOCK_SKEW_MARGIN_MS = 5_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 1_000;
const MAX_RECONNECT_DELAY_MS = 2_000;
const WARN_EVERY_MS = 30_000;

export interface RedisStoreOptions {
  /** Namespace for every key (the proxy's --state-prefix): it becomes the keys' hash tag. */
  prefix?: string;
  /** Per-command timeout; a call rejects after this long without an answer. */
  commandTimeoutMs?: number;
  log?: Logger;
}

// ---------------------------------------------------------------- helpers

/** What `Reservation.handle` points at: per item, the rolling member it added. */
/** What `Reservation.handle` points at: per item, the rolling bucket field it charged. */
interface Handle {
  fields: (string | undefined)[];
}

function ttlFor(ms: number): string {
  return String(Math.max(1, Math.ceil(ms + CLOCK_SKEW_MARGIN_MS)));
}

/** `{`, `}` and `%` escaped, so the hash tag ends exactly after the prefix. */
function escapeTag(prefix: string): string {
  return prefix.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** One server, or a cluster reached through its nodes. */
type Client = Redis | Cluster;

/** `promise`, or a rejection once `ms` pass. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
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
  private readonly client: Client;
  private readonly scripts: ScriptCommands;
  /** `{intercept:<escaped prefix>}`: starts every key of the namespace. */
  private readonly tag: string;
  private readonly log: Logger | undefined;
  private readonly endpoint: string;
  private lastWarnAt = -Infinity;
  private suppressed = 0;
  private failing = false;
  /** Set once the first connection attempt is over; until then `connect` reports trouble. */
  private started = false;

  private constructor(client: Client, endpoint: string, opts: RedisStoreOptions) {
    // The server may apply a rollback whose reply never arrives: never send one twice.
    super('before-undo');
    this.client = client;
    this.endpoint = endpoint;
    this.log = opts.log;
    this.tag = `{intercept:${escapeTag(opts.prefix ?? '')}}`;
    this.scripts = defineScripts(client);
    // Always listen: an 'error' event without a listener would be reported as unhandled.
    client.on('error', (err: unknown) => this.trouble(`counter store (redis) error: ${messageOf(err)}`));
    // A cluster reports each node's connection errors apart (host:port, never credentials).
    if (client instanceof Cluster) {
      client.on('node error', (err: unknown, node: unknown) => this.trouble(`counter store (redis) error on cluster node ${String(node)}: ${messageOf(err)}`));
    }
    client.on('close', () => {
      if (!this.closed && !this.failing) this.trouble('counter store (redis) connection lost');
    });
    client.on('ready', () => {
      if (this.failing) this.log?.info('counter store (redis) reachable again', { endpoint: this.endpoint });
      this.failing = false;
      void this.openNodes();
    });
  }

  /**
   * Connects to `redis://[user:pass@]host:port[/db]` or `rediss://…` (TLS), or to a Redis
   * Cluster through `redis+cluster://[user:pass@]host:port[,host:port…]` or
   * `rediss+cluster://…`. Rejects only for a DSN that is not one of these; an unreachable
   * server or cluster gives a store whose calls reject until it answers (a warning is logged).
   */
  static async connect(dsn: string, opts: RedisStoreOptions = {}): Promise<RedisCounterStore> {
    const target = parseRedisDsn(dsn);
    const commandTimeout = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    if (!(Number.isFinite(commandTimeout) && commandTimeout > 0)) {
      throw new RangeError(`commandTimeoutMs must be a positive number, got ${commandTimeout}`);
    }
    const connectTimeout = Math.max(2_000, commandTimeout);
    const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), MAX_RECONNECT_DELAY_MS);
    // Each connection (the server's, or each cluster node's): fail fast, never resend.
    const connection = {
      commandTimeout,
      connectTimeout,
      // 0: a command in flight when the connection drops is rejected at once, not resent.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    };
    const client: Client =
      target.kind === 'server'
        ? new Redis(target.dsn, { ...connection, lazyConnect: true, enableOfflineQueue: false, retryStrategy })
        : new Cluster(target.nodes, {
            lazyConnect: true,
            enableOfflineQueue: false,
            // Once every node is lost, the client reconnects to the cluster with the same backoff.
            clusterRetryStrategy: retryStrategy,
            // A command whose node connection dropped is rejected, not resent elsewhere (the
            // node may have run it), and so is one the cluster refused as down: fail fast.
            retryDelayOnFailover: 0,
            retryDelayOnClusterDown: 0,
            slotsRefreshTimeout: Math.max(1_000, commandTimeout),
            // With TLS, keep the listed host names (certificates name hosts, not addresses).
            ...(target.tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
            redisOptions: {
              ...connection,
              ...(target.username !== undefined ? { username: target.username } : {}),
              ...(target.password !== undefined ? { password: target.password } : {}),
              ...(target.tls ? { tls: {} } : {}),
            },
          });
    const store = new RedisCounterStore(client, target.endpoint, opts);
    const deadline = Date.now() + connectTimeout;
    try {
      const attempt = client.connect();
      attempt.catch(() => {}); // may settle after the wait below gives up (or never, on a cluster)
      await within(attempt, connectTimeout);
    } catch (err) {
      store.log?.warn('counter store (redis) is unreachable; counter calls fail until it answers', {
        endpoint: store.endpoint,
        error: messageOf(err),
      });
      store.failing = true;
      store.lastWarnAt = Date.now();
    }
    // A cluster's node connections, opened before the first calls (best effort, same wait).
    if (!store.failing) await within(store.openNodes(), Math.max(0, deadline - Date.now())).catch(() => {});
    store.started = true;
    return store;
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
        const field = handle.fields[i];
        if (field === undefined) return;
        keys.push(this.rollingKey(item.key));
        args.push('r', numArg(item.amount), '0', field);
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
    return `${this.namespaced(key)}@buckets`;
  }

  /** The hash tag, then the key within the namespace: the prefix appears once, in the tag. */
  private namespaced(key: string): string {
    return this.tag + key;
  }

  /**
   * On a cluster, opens the connection to every node it knows now rather than at the node's
   * first command, and resolves once each is open (or failed): with no offline queue, commands
   * for a node whose connection is still opening are refused. Only once the cluster is ready
   * (its ready check must not meet a connection half open).
   */
  private openNodes(): Promise<void> {
    const client = this.client;
    if (!(client instanceof Cluster) || client.status !== 'ready') return Promise.resolve();
    const opened = client.nodes('all').map((node) => {
      if (node.status === 'wait') node.connect().catch(() => {}); // failures: 'node error'
      if (node.status === 'ready' || node.status === 'end') return undefined;
      return new Promise<void>((resolve) => {
        const done = () => {
          node.off('ready', done);
          node.off('end', done);
          resolve();
        };
        node.on('ready', done);
        node.on('end', done);
      });
    });
    return Promise.all(opened).then(() => undefined);
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
