// The filter on tools/list results: what the agent may see of the upstream's tools.
import { isObject } from '../jsonrpc/message.js';
import type { ToolClass } from '../policy/model.js';
import type { PolicyInForce } from './policy-holder.js';

export interface ListFilterHooks {
  /** The class of a listed tool (for `classes:` under default deny). */
  classOf?: (name: string) => ToolClass | undefined;
  /** Told of each tool removed because its definition is not pinned in the lock. */
  onUnpinned?: (name: string, definition: Readonly<Record<string, unknown>>) => void;
}

/** Removes the tools the policy does not offer (hidden ones; unlisted ones under default deny;
 * with a lock, those whose definition is not the pinned one) from one tools/list result page,
 * keeping every other member (nextCursor, _meta, 2026 cache fields). Returns the same object
 * when nothing is removed. */
export function filterToolsList(result: Record<string, unknown>, policy: PolicyInForce, hooks: ListFilterHooks = {}): Record<string, unknown> {
  const tools = result.tools;
  if (!Array.isArray(tools)) return result;
  const lock = policy.lock;
  const classOf = policy.usesClasses && policy.policy.defaultAction === 'deny' ? hooks.classOf : undefined;
  const offered = (t: Record<string, unknown> & { name: string }): boolean => {
    if (!policy.isOffered(t.name, classOf?.(t.name))) return false;
    if (lock === undefined || lock.isPinned(t.name, t)) return true;
    hooks.onUnpinned?.(t.name, t);
    return false;
  };
  const kept = tools.filter((t) => !isObject(t) || typeof t.name !== 'string' || offered(t as Record<string, unknown> & { name: string }));
  if (kept.length === tools.length) return result;
  const filtered: Record<string, unknown> = { ...result, tools: kept };
  // A filtered list is specific to this policy: a shared cache must not serve it to others.
  if (filtered.cacheScope === 'public') filtered.cacheScope = 'private';
  return filtered;
}
