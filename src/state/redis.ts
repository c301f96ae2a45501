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
//   {intercept:<prefix>}<storage key>@<unit>:<window start ms>   calendar counter (a string)
//   {intercept:<prefix>}<storage key>@rolling                    rolling counter (a sorted set)
// `{`, `}` and `%` in the prefix are %-escaped so the tag always ends where the prefix does.
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
import type { CounterRead, CounterStore, Reservation, ReserveItem, ReserveOutcome } from './store.js';
import type { Limit, Window } from '../policy/model.js';
import { calendarWindowEnd, calendarWindowStart } from './windows.js';
import { checkItems, OpenReservations } from './reservations.js';

/** Extra TTL beyond a window's end, covering clock differences between proxies. */
export const CLOCK_SKEW_MARGIN_MS = 5_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 1_000;
const MAX_RECONNECT_DELAY_MS = 2_000;
const WARN_EVERY_MS = 30_000;

export interface RedisStoreOptions {
  /** Namespace for every key (the proxy's --state-prefix). */
  prefix?: string;
  /** Per-command timeout; a call rejects after this long without an answer. */
  commandTimeoutMs?: number;
  log?: Logger;
}

// ---------------------------------------------------------------- Lua

// Shared helpers. Numbers travel as strings: JavaScript's shortest round-trip form in, 17
// significant digits out (Lua's own tostring keeps only 14). "inf"/"-inf" for infinities.
const LUA_COMMON = `
local function num(s)
  if s == 'inf' then return math.huge elseif s == '-inf' then return -math.huge end
  return tonumber(s)
end
local function fmt(x)
  if x == math.huge then return 'inf' elseif x == -math.huge then return '-inf' end
  return string.format('%.17g', x)
end
local function member_amount(m)
  return num(string.match(m, '^[^|]*'))
end
`;

// KEYS[i]: item i's key. ARGV: now, then per item: kind ('c' | 'r'), amount, ttl ms,
// window ms, extra (calendar: ms until the window ends; rolling: the member to add),
// number of limits, then per limit: op ('le' | 'lt' | 'no'), value.
// Returns {'ok'} or {'refused', index (0-based), current, retry-after ms or ''}.
const RESERVE_LUA = `${LUA_COMMON}
local now = num(ARGV[1])
local items = {}
local p = 2
for i = 1, #KEYS do
  local it = { key = KEYS[i], kind = ARGV[p], amount = num(ARGV[p + 1]), ttl = ARGV[p + 2],
               ms = num(ARGV[p + 3]), extra = ARGV[p + 4], limits = {} }
  local n = tonumber(ARGV[p + 5])
  p = p + 6
  for j = 1, n do
    it.limits[j] = { ARGV[p], num(ARGV[p + 1]) }
    p = p + 2
  end
  items[i] = it
end

local function fits(v, limits)
  for _, l in ipairs(limits) do
    if l[1] == 'le' then
      if not (v <= l[2]) then return false end
    elseif l[1] == 'lt' then
      if not (v < l[2]) then return false end
    else
      return false
    end
  end
  return true
end

-- Each key's stored value, read once (dropping expired rolling entries first).
local values = {}
local function value(it)
  local v = values[it.key]
  if v ~= nil then return v end
  if it.kind == 'c' then
    v = num(redis.call('GET', it.key) or '0')
  else
    redis.call('ZREMRANGEBYSCORE', it.key, '-inf', fmt(now - it.ms))
    v = 0
    for _, m in ipairs(redis.call('ZRANGE', it.key, 0, -1)) do v = v + member_amount(m) end
  end
  values[it.key] = v
  return v
end

-- Check every item against its stored value plus what earlier items add to the same key.
local pending = {}
for i, it in ipairs(items) do
  local current = value(it)
  local need = (pending[it.key] or 0) + it.amount
  if not fits(current + need, it.limits) then
    local retry = ''
    if fits(need, it.limits) then
      if it.kind == 'c' then
        retry = it.extra
      else
        -- Oldest entries leave first: the first expiry after which the call fits.
        local remaining = current
        local entries = redis.call('ZRANGE', it.key, 0, -1, 'WITHSCORES')
        for j = 1, #entries, 2 do
          remaining = remaining - member_amount(entries[j])
          if fits(math.max(0, remaining) + need, it.limits) then
            retry = fmt(math.max(1, num(entries[j + 1]) + it.ms - now))
            break
          end
        end
      end
    end
    return { 'refused', i - 1, fmt(current), retry }
  end
  pending[it.key] = need
end

-- Charge every item.
for _, it in ipairs(items) do
  if it.kind == 'c' then
    local v = num(redis.call('GET', it.key) or '0') + it.amount
    redis.call('SET', it.key, fmt(v), 'PX', it.ttl)
  elseif it.amount > 0 then
    redis.call('ZADD', it.key, fmt(now), it.extra)
    redis.call('PEXPIRE', it.key, it.ttl)
  end
end
return { 'ok' }
`;

// KEYS[i]: the key to undo. ARGV per key: kind, amount, ttl ms (calendar) and member (rolling).
// Calendar items reach here only while their window is still current.
const ROLLBACK_LUA = `${LUA_COMMON}
local p = 1
for i = 1, #KEYS do
  local kind, amount, ttl, m = ARGV[p], num(ARGV[p + 1]), ARGV[p + 2], ARGV[p + 3]
  p = p + 4
  if kind == 'c' then
    local v = redis.call('GET', KEYS[i])
    if v then redis.call('SET', KEYS[i], fmt(math.max(0, num(v) - amount)), 'PX', ttl) end
  else
    redis.call('ZREM', KEYS[i], m)
  end
end
return 1
`;

// KEYS[i]: a counter's key. ARGV: now, then per key: kind, window ms. Read-only.
const READ_LUA = `${LUA_COMMON}
local now = num(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local kind, ms = ARGV[2 * i], num(ARGV[2 * i + 1])
  if kind == 'c' then
    out[i] = fmt(num(redis.call('GET', KEYS[i]) or '0'))
  else
    local v = 0
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. fmt(now - ms), '+inf')) do
      v = v + member_amount(m)
    end
    out[i] = fmt(v)
  end
end
return out
`;

type ScriptFn = (numKeys: number, ...args: string[]) => Promise<unknown>;
interface ScriptCommands {
  interceptReserve: ScriptFn;
  interceptRollback: ScriptFn;
  interceptRead: ScriptFn;
}

// ---------------------------------------------------------------- helpers

/** What `Reservation.handle` points at: per item, the rolling member it added. */
interface Handle {
  members: (string | undefined)[];
}

/** A number as the scripts read it. */
function numArg(x: number): string {
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  return String(x);
}

/** A number as the scripts write it. */
function parseNum(s: unknown): number {
  if (s === 'inf') return Infinity;
  if (s === '-inf') return -Infinity;
  const n = Number(s);
  if (typeof s !== 'string' || s === '' || Number.isNaN(n)) throw new Error(`unexpected reply from redis: ${JSON.stringify(s)}`);
  return n;
}

function limitArgs(limits: readonly Limit[]): string[] {
  const out = [String(limits.length)];
  for (const l of limits) {
    // A NaN limit holds for no value, as in the memory store's comparison.
    if (Number.isNaN(l.value)) out.push('no', '0');
    else out.push(l.inclusive ? 'le' : 'lt', numArg(l.value));
  }
  return out;
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

export class RedisCounterStore implements CounterStore {
  private readonly client: Redis;
  private readonly scripts: ScriptCommands;
  private readonly tag: string;
  private readonly log: Logger | undefined;
  private readonly endpoint: string;
  /** Makes rolling members unique across every store and process sharing the server. */
  private readonly instance = randomBytes(9).toString('base64url');
  private nextMember = 1;
  /** Handles this store issued and not yet settled by commit or rollback. */
  private readonly open = new OpenReservations<Handle>();
  private closed = false;
  private lastWarnAt = -Infinity;
  private suppressed = 0;
  private failing = false;
  /** Set once the first connection attempt is over; until then `connect` reports trouble. */
  private started = false;

  private constructor(client: Redis, endpoint: string, opts: RedisStoreOptions) {
    this.client = client;
    this.endpoint = endpoint;
    this.log = opts.log;
    this.tag = `{intercept:${escapeTag(opts.prefix ?? '')}}`;
    client.defineCommand('interceptReserve', { lua: RESERVE_LUA });
    client.defineCommand('interceptRollback', { lua: ROLLBACK_LUA });
    client.defineCommand('interceptRead', { lua: READ_LUA });
    this.scripts = client as unknown as ScriptCommands;
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
    const handle: Handle = { members };
    this.open.add(handle);
    return { ok: true, reservation: { items: [...items], handle, at: now } };
  }

  async commit(reservation: Reservation, _now: number): Promise<void> {
    this.assertOpen();
    // The charge already counts; committing only means it can no longer be rolled back.
    this.open.settle(reservation.handle);
  }

  async rollback(reservation: Reservation, now: number): Promise<void> {
    this.assertOpen();
    const handle = reservation.handle;
    if (!this.open.has(handle)) return;
    this.open.settle(handle);
    const keys: string[] = [];
    const args: string[] = [];
    reservation.items.forEach((item, i) => {
      const w = item.window;
      if (w.kind === 'calendar') {
        // Only while the reservation's window is still the current one: never take quota
        // away from (or give it back to) a newer window.
        const start = calendarWindowStart(w.unit, reservation.at);
        if (calendarWindowStart(w.unit, now) !== start) return;
        keys.push(this.calendarKey(item.key, w.unit, start));
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
    if (this.closed) return;
    this.closed = true;
    if (this.client.status === 'ready') {
      try {
        await this.client.quit();
      } catch {
        // Gone already or timed out: disconnecting below is all that is left to do.
      }
    }
    this.client.disconnect();
  }

  private calendarKey(key: string, unit: string, start: number): string {
    return `${this.tag}${key}@${unit}:${start}`;
  }

  private rollingKey(key: string): string {
    return `${this.tag}${key}@rolling`;
  }

  /** The Redis key that holds a counter at `now` (for tests and operators). */
  keyOf(key: string, window: Window, now: number): string {
    return window.kind === 'calendar' ? this.calendarKey(key, window.unit, calendarWindowStart(window.unit, now)) : this.rollingKey(key);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('counter store is closed');
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
