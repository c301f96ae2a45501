// The Lua scripts of the Redis approval store (redis.ts). Each runs atomically on the server,
// so a status is checked and changed with no other command in between, across every proxy.
// Every key a script touches is in KEYS, and all of them share the namespace's hash tag, so
// each script runs whole on the one node owning that slot of a cluster.
//
// A request is a hash: `r` (the request as created, JSON, never rewritten), `status`,
// `requestedAt`, `expiresAt`, `finalAt`, `seq` (creation rank, for ties of requestedAt), and
// once set `decidedAt`, `decidedBy`, `via`, `reason`, `usedAt`. The scripts only ever touch the
// scalar fields, so the arguments' JSON comes back exactly as written. The rules mirror
// transitions.ts (see there): lazy expiry as of `now`, `finalAt` never after `expiresAt`, and a
// request is gone once `finalAt + retention` has passed (then deleted).
import type { Cluster, Redis } from 'ioredis';

// ARGV[1] now (ms), ARGV[2] retention (ms), ARGV[3] TTL margin (ms); times as decimal strings.
const COMMON = `
local now = tonumber(ARGV[1])
local retention = tonumber(ARGV[2])
local margin = tonumber(ARGV[3])
local function is_open(s) return s == 'pending' or s == 'approved' end
-- Sets the key's TTL to last until \`at\` (caller's clock) plus the margin.
local function keep_until(key, at)
  redis.call('PEXPIRE', key, math.max(1, math.floor(at - now + margin)))
end
-- Lengthens the key's TTL to \`at\` plus the margin, never shortens it.
local function extend(key, at)
  local want = math.max(1, math.floor(at - now + margin))
  if redis.call('PTTL', key) < want then redis.call('PEXPIRE', key, want) end
end
-- The request as of now: its status, or false when absent or past retention (then deleted).
-- A pending or approved request past expiresAt becomes expired, as of expiresAt.
local function current(key)
  local f = redis.call('HMGET', key, 'status', 'expiresAt', 'finalAt')
  if not f[1] then return false end
  if tonumber(f[3]) + retention <= now then
    redis.call('DEL', key)
    return false
  end
  if is_open(f[1]) and now >= tonumber(f[2]) then
    if f[1] == 'pending' then
      redis.call('HSET', key, 'status', 'expired', 'decidedAt', f[2], 'decidedBy', 'timeout', 'via', 'timeout')
    else
      redis.call('HSET', key, 'status', 'expired')
    end
    return 'expired'
  end
  return f[1]
end
`;

// KEYS: record, index, binding set, sequence. ARGV[4..7]: id, request JSON, requestedAt, expiresAt.
// The index is scored by the latest a request can be kept (expiresAt + retention), a binding
// set by expiresAt (after which its member is no longer open), so stale members are dropped by
// score here without looking at the requests. Returns the creation rank, or 'taken'.
const CREATE = `${COMMON}
local id, expires = ARGV[4], tonumber(ARGV[7])
if redis.call('EXISTS', KEYS[1]) == 1 then return 'taken' end
local seq = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'r', ARGV[5], 'status', 'pending', 'requestedAt', ARGV[6], 'expiresAt', ARGV[7],
  'finalAt', ARGV[7], 'seq', seq)
keep_until(KEYS[1], expires + retention)
redis.call('ZADD', KEYS[2], expires + retention, id)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
extend(KEYS[2], expires + retention)
extend(KEYS[4], expires + retention)
redis.call('ZADD', KEYS[3], expires, id)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
extend(KEYS[3], expires)
return seq
`;

// KEYS[1]: the request. ARGV[4]: read | approve | deny | withdraw | expire | claim; for a
// decision ARGV[5] by, ARGV[6] via, ARGV[7] '1' when ARGV[8] is a reason.
// Returns {'not_found'} or {'ok' | 'conflict', the request's fields (HGETALL)}.
const CHANGE = `${COMMON}
local key, op = KEYS[1], ARGV[4]
local stored = redis.call('HGET', key, 'status')
local status = current(key)
if not status then return {'not_found'} end
-- Final now, but never after expiresAt (a timeout noticed late ended at expiresAt).
local function final(fields)
  local expires = redis.call('HGET', key, 'expiresAt')
  local at = now < tonumber(expires) and ARGV[1] or expires
  redis.call('HSET', key, 'finalAt', at, unpack(fields))
  keep_until(key, tonumber(at) + retention)
end
local outcome = 'ok'
if op == 'read' then
  -- nothing to change
elseif op == 'expire' then
  -- The stored status counts: a timeout due by now is exactly what expire records.
  if stored == 'pending' then
    final({'status', 'expired', 'decidedAt', ARGV[1], 'decidedBy', 'timeout', 'via', 'timeout'})
  else
    outcome = 'conflict'
  end
elseif (op == 'approve' or op == 'deny') and status == 'pending' then
  local fields = {'status', op == 'approve' and 'approved' or 'denied', 'decidedAt', ARGV[1], 'decidedBy', ARGV[5], 'via', ARGV[6]}
  if ARGV[7] == '1' then table.insert(fields, 'reason') table.insert(fields, ARGV[8]) end
  if op == 'approve' then redis.call('HSET', key, unpack(fields)) else final(fields) end
elseif op == 'withdraw' and status == 'pending' then
  final({'status', 'withdrawn', 'decidedAt', ARGV[1]})
elseif op == 'claim' and status == 'approved' then
  final({'status', 'used', 'usedAt', ARGV[1]})
else
  outcome = 'conflict'
end
return {outcome, redis.call('HGETALL', key)}
`;

// KEYS[1]: the index or a binding set; KEYS[2..]: requests (ARGV[4..]: their ids). With
// ARGV[4 + #ids] = 'open', only open requests are returned. Members gone (or, for a binding
// set, no longer open) are removed from KEYS[1]. Returns the fields of each request kept.
const READ_MANY = `${COMMON}
local out = {}
local only_open = ARGV[#ARGV] == 'open'
for i = 2, #KEYS do
  local status = current(KEYS[i])
  if status and (not only_open or is_open(status)) then
    table.insert(out, redis.call('HGETALL', KEYS[i]))
  elseif not status or only_open then
    redis.call('ZREM', KEYS[1], ARGV[i + 2])
  end
end
return out
`;

export interface ApprovalScripts {
  interceptApprovalCreate(numKeys: number, ...args: string[]): Promise<unknown>;
  interceptApprovalChange(numKeys: number, ...args: string[]): Promise<unknown>;
  interceptApprovalReadMany(numKeys: number, ...args: string[]): Promise<unknown>;
}

/** Registers the scripts (sent by EVALSHA, loaded on first use) and returns the client typed with them. */
export function defineApprovalScripts(client: Redis | Cluster): ApprovalScripts {
  client.defineCommand('interceptApprovalCreate', { lua: CREATE });
  client.defineCommand('interceptApprovalChange', { lua: CHANGE });
  client.defineCommand('interceptApprovalReadMany', { lua: READ_MANY });
  return client as unknown as ApprovalScripts;
}
