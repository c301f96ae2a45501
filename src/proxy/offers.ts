import type { Policy } from '../policy/model.js';

/** What decides which tools tools/list offers (see CompiledPolicy.isOffered): a reload that
 * changes it must tell clients to list the tools again. */
export function offerSignature(policy: Policy): string {
  const listed = policy.defaultAction === 'deny' ? policy.tools.map((t) => t.name).sort() : [];
  return JSON.stringify([[...policy.hide].sort(), listed]);
}
