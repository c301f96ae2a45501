// Chooses the counter store from the command line: Redis for a fleet (--state-dsn redis://…, or
// redis+cluster://… for a Redis Cluster; the forms are in redis-dsn.ts),
// SQLite on this machine otherwise (--state-dir, default ~/.intercept/state), or memory for a
// single process that keeps nothing (--state-dsn memory:).
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from '../log.js';
import { MemoryCounterStore } from './memory.js';
import { REDIS_DSN_FORMS, isClusterDsn, oneOf, parseRedisDsn } from './redis-dsn.js';
import type { CounterStore } from './store.js';

export const DEFAULT_STATE_DIR = join(homedir(), '.intercept', 'state');
export const SQLITE_FILE = 'intercept.sqlite';

export interface StateFlags {
  stateDir?: string;
  stateDsn?: string;
  prefix: string;
  log: Logger;
}

export interface OpenedStore {
  store: CounterStore;
  /** For logs: the backend and where it is, with any password masked. */
  description: string;
}

/** The default counter namespace: one per policy file, so two policies on one machine (or in
 * one Redis) never share a `"*"` counter by accident, while every proxy started with the same
 * file does share its counters. */
export function policyNamespace(policyFile: string): string {
  let path = resolve(policyFile);
  try {
    path = realpathSync(path);
  } catch {
    // Keep the resolved path; the policy was readable a moment ago.
  }
  return `p${createHash('sha256').update(path).digest('hex').slice(0, 12)}:`;
}

/** A DSN with its password replaced, safe to log. */
export function maskDsn(dsn: string): string {
  try {
    const url = new URL(dsn);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    // Not a URL (a cluster DSN listing several hosts is none): the credentials are everything
    // up to the last `@`; the user name (before the first `:`) stays, as in a URL.
    return dsn.replace(/^([^/]*\/\/)(.*)@/s, (_, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      return `${scheme}${colon >= 0 ? `${userinfo.slice(0, colon)}:***` : '***'}@`;
    });
  }
}

const MEMORY_DSN = /^memory:(\/\/)?$/;
const REDIS_DSN = /^rediss?:\/\//;

/** The usage error for a --state-dsn this version cannot use, if any. */
export function checkStateDsn(dsn: string): string | undefined {
  if (MEMORY_DSN.test(dsn) || REDIS_DSN.test(dsn)) return undefined;
  if (isClusterDsn(dsn)) {
    try {
      parseRedisDsn(dsn);
      return undefined;
    } catch (err) {
      return `--state-dsn: ${(err as Error).message}`;
    }
  }
  return `--state-dsn must be ${oneOf([...REDIS_DSN_FORMS, 'memory:'])}, got ${JSON.stringify(maskDsn(dsn))}`;
}

/** Throws with a message fit for the user when the store cannot be opened. */
export async function openCounterStore(flags: StateFlags): Promise<OpenedStore> {
  const dsn = flags.stateDsn;
  if (dsn !== undefined && MEMORY_DSN.test(dsn)) return { store: new MemoryCounterStore(), description: 'memory (this process only)' };
  if (dsn !== undefined) {
    // Loaded only when used: a proxy on SQLite never carries the Redis client.
    const { RedisCounterStore } = await import('./redis.js');
    const store = await RedisCounterStore.connect(dsn, { prefix: flags.prefix, log: flags.log });
    return { store, description: `${isClusterDsn(dsn) ? 'redis cluster' : 'redis'} ${maskDsn(dsn)}` };
  }
  const path = join(flags.stateDir ?? DEFAULT_STATE_DIR, SQLITE_FILE);
  const { SqliteCounterStore } = await import('./sqlite.js');
  return { store: SqliteCounterStore.open(path, { prefix: flags.prefix }), description: `sqlite ${path}` };
}
