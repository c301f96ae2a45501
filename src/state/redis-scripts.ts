// The Lua scripts of the Redis counter store (redis.ts) and the encoding of their arguments
// and replies. Each script runs atomically and names every key it touches in KEYS.
import type { Cluster, Redis } from 'ioredis';
import type { Limit } from '../policy/model.js';

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
-- A rolling bucket's field is "<start>:<end>" (ms); it counts while its end is after now - window.
local function bucket_end(field)
  return tonumber(string.match(field, ':(%-?%d+)$'))
end
`;

// reserve: checks every item's limits against its stored value and, only if all hold,
// charges every item (calendar: add to the string and set its TTL; rolling: add to the hash
// field of the bucket `now` falls in and set the TTL). Drops a rolling counter's buckets that
// no longer count on the way, so a hash holds at most a window of buckets.
// KEYS[i]: item i's key. ARGV: now, then per item: kind ('c' | 'r'), amount, ttl ms,
// window ms, extra (calendar: ms until the window ends; rolling: the bucket's field),
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
    v = 0
    local all = redis.call('HGETALL', it.key)
    for j = 1, #all, 2 do
      if bucket_end(all[j]) <= now - it.ms then redis.call('HDEL', it.key, all[j]) else v = v + num(all[j + 1]) end
    end
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
        -- Oldest buckets leave first: the first expiry after which the call fits.
        local buckets = {}
        local all = redis.call('HGETALL', it.key)
        for j = 1, #all, 2 do buckets[#buckets + 1] = { bucket_end(all[j]), num(all[j + 1]) } end
        table.sort(buckets, function(a, b) return a[1] < b[1] end)
        local remaining = current
        for _, b in ipairs(buckets) do
          remaining = remaining - b[2]
          if fits(math.max(0, remaining) + need, it.limits) then
            retry = fmt(math.max(1, b[1] + it.ms - now))
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
    redis.call('HINCRBYFLOAT', it.key, it.extra, fmt(it.amount))
    redis.call('PEXPIRE', it.key, it.ttl)
  end
end
return { 'ok' }
`;

// rollback: undoes a reservation's charges (calendar: subtract, never below 0, keeping a TTL;
// rolling: subtract from the bucket it charged, dropping the field at 0). Calendar items reach
// here only while their window is still current (the caller checks, see calendarUndoApplies);
// a bucket that no longer counts, or is gone, is left as it is.
// KEYS[i]: the key to undo. ARGV per key: kind ('c' | 'r'), amount, ttl ms (calendar; '0' for
// rolling), field (rolling; '' for calendar). Returns 1.
const ROLLBACK_LUA = `${LUA_COMMON}
local p = 1
for i = 1, #KEYS do
  local kind, amount, ttl, m = ARGV[p], num(ARGV[p + 1]), ARGV[p + 2], ARGV[p + 3]
  p = p + 4
  if kind == 'c' then
    local v = redis.call('GET', KEYS[i])
    if v then redis.call('SET', KEYS[i], fmt(math.max(0, num(v) - amount)), 'PX', ttl) end
  else
    local v = redis.call('HGET', KEYS[i], m)
    if v then
      local left = num(v) - amount
      if left > 0 then redis.call('HSET', KEYS[i], m, fmt(left)) else redis.call('HDEL', KEYS[i], m) end
    end
  end
end
return 1
`;

// read: every counter's current value, from one snapshot. Read-only: rolling buckets that no
// longer count are skipped, not removed (reserve and TTLs remove them).
// KEYS[i]: a counter's key. ARGV: now, then per key: kind ('c' | 'r'), window ms ('0' for
// calendar). Returns one value per key.
const READ_LUA = `${LUA_COMMON}
local now = num(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local kind, ms = ARGV[2 * i], num(ARGV[2 * i + 1])
  if kind == 'c' then
    out[i] = fmt(num(redis.call('GET', KEYS[i]) or '0'))
  else
    local v = 0
    local all = redis.call('HGETALL', KEYS[i])
    for j = 1, #all, 2 do
      if bucket_end(all[j]) > now - ms then v = v + num(all[j + 1]) end
    end
    out[i] = fmt(v)
  end
end
return out
`;

type ScriptFn = (numKeys: number, ...args: string[]) => Promise<unknown>;

/** The scripts as client commands (ioredis sends EVALSHA, and EVAL when the server lacks one). */
export interface ScriptCommands {
  interceptReserve: ScriptFn;
  interceptRollback: ScriptFn;
  interceptRead: ScriptFn;
}

/** Registers the scripts on `client`. */
export function defineScripts(client: Redis | Cluster): ScriptCommands {
  client.defineCommand('interceptReserve', { lua: RESERVE_LUA });
  client.defineCommand('interceptRollback', { lua: ROLLBACK_LUA });
  client.defineCommand('interceptRead', { lua: READ_LUA });
  return client as unknown as ScriptCommands;
}

/** A number as the scripts read it. */
export function numArg(x: number): string {
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  return String(x);
}

/** A number as the scripts write it. */
export function parseNum(s: unknown): number {
  if (s === 'inf') return Infinity;
  if (s === '-inf') return -Infinity;
  const n = Number(s);
  if (typeof s !== 'string' || s === '' || Number.isNaN(n)) throw new Error(`unexpected reply from redis: ${JSON.stringify(s)}`);
  return n;
}

/** An item's limits as the reserve script reads them. */
export function limitArgs(limits: readonly Limit[]): string[] {
  const out = [String(limits.length)];
  for (const l of limits) {
    // A NaN limit holds for no value, as in the memory store's comparison.
    if (Number.isNaN(l.value)) out.push('no', '0');
    else out.push(l.inclusive ? 'le' : 'lt', numArg(l.value));
  }
  return out;
}
