// The stores of the proxies that enforce one policy file, reached as those proxies reach them
// (the same --state-dir or --state-dsn, and the namespace derived from the policy file's path
// unless --state-prefix names it), for the commands that read them from beside the proxy:
// `intercept status` and the dashboard.
import { readFile } from 'node:fs/promises';
import { counterUsage, type CounterUsage } from '../audit/usage.js';
import { compile, type CompiledPolicy } from '../engine/compile.js';
import type { Logger } from '../log.js';
import { formatIssue } from '../policy/format.js';
import { parsePolicy } from '../policy/load.js';
import { policyNamespace, type StateFlags } from '../state/open.js';
import type { CounterStore } from '../state/store.js';

export interface ProxyStoreFlags {
  /** The proxy's policy file. */
  config: string;
  stateDir?: string;
  stateDsn?: string;
  statePrefix?: string;
}

/** The flags that open the proxy's stores (state/open.ts, approval/open.ts). */
export function proxyState(flags: ProxyStoreFlags, log: Logger): StateFlags {
  return { stateDir: flags.stateDir, stateDsn: flags.stateDsn, prefix: flags.statePrefix ?? policyNamespace(flags.config), log };
}

export type CountersPolicy = { ok: true; policy: CompiledPolicy } | { ok: false; problem: string };

/** The policy whose counters are read, compiled; or why its counters cannot be shown. */
export async function loadCountersPolicy(file: string): Promise<CountersPolicy> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { ok: false, problem: `cannot read the policy file ${JSON.stringify(file)}, so its counters are not shown: ${(err as Error).message}` };
  }
  const loaded = parsePolicy(text, file);
  if (!loaded.ok) return { ok: false, problem: `the policy file has ${loaded.issues.length} error(s), so its counters are not shown; the first: ${formatIssue(loaded.issues[0]!)}` };
  try {
    return { ok: true, policy: compile(loaded.policy) };
  } catch (err) {
    return { ok: false, problem: `the policy does not compile, so its counters are not shown: ${(err as Error).message}` };
  }
}

/** Every limited counter of the policy, most used first (audit/usage.ts). A store that fails
 * throws. */
export function readUsage(policy: CompiledPolicy, store: CounterStore, sessions: readonly string[], now: number): Promise<CounterUsage[]> {
  // The store applies the namespace itself; the gate's keys carry no prefix of their own.
  return counterUsage({ policy, store, prefix: '', sessions, now });
}
