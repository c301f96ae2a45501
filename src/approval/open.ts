// Chooses the approval store from the same flags as the counter store (state/open.ts): memory
// for --state-dsn memory:, Redis (server or cluster) for a Redis DSN, else SQLite in its own
// file beside the counter file, so the CLI can decide what a proxy on this machine asked.
import { join } from 'node:path';
import { DEFAULT_STATE_DIR, maskDsn, type StateFlags } from '../state/open.js';
import { isClusterDsn } from '../state/redis-dsn.js';
import { MemoryApprovalStore } from './memory.js';
import type { ApprovalStore } from './types.js';

export const APPROVALS_FILE = 'approvals.sqlite';
const MEMORY_DSN = /^memory:(\/\/)?$/;

export interface OpenedApprovalStore {
  store: ApprovalStore;
  /** For logs: the backend and where it is, with any password masked. */
  description: string;
}

/** Throws with a message fit for the user when the store cannot be opened. */
export async function openApprovalStore(flags: StateFlags): Promise<OpenedApprovalStore> {
  const dsn = flags.stateDsn;
  if (dsn !== undefined && MEMORY_DSN.test(dsn)) return { store: new MemoryApprovalStore(), description: 'memory (this process only)' };
  if (dsn !== undefined) {
    // Loaded only when used: a proxy on SQLite never carries the Redis client.
    const { RedisApprovalStore } = await import('./redis.js');
    const store = await RedisApprovalStore.connect(dsn, { prefix: flags.prefix, log: flags.log });
    return { store, description: `${isClusterDsn(dsn) ? 'redis cluster' : 'redis'} ${maskDsn(dsn)}` };
  }
  const path = join(flags.stateDir ?? DEFAULT_STATE_DIR, APPROVALS_FILE);
  const { SqliteApprovalStore } = await import('./sqlite.js');
  return { store: SqliteApprovalStore.open(path, { prefix: flags.prefix }), description: `sqlite ${path}` };
}
