import type { Policy } from '../policy/model.js';
import type { PolicyInForce } from './policy-holder.js';

/** What decides which tools tools/list offers (see CompiledPolicy.isOffered). */
function offerSignature(policy: Policy): string {
  const deny = policy.defaultAction === 'deny';
  const listed = deny ? policy.tools.map((t) => t.name).sort() : [];
  const classes = deny ? (policy.classes ?? []).map((c) => c.name).sort() : [];
  return JSON.stringify([[...policy.hide].sort(), listed, classes]);
}

/** Whether a reload changed which tools are offered (the policy, or the pinned definitions), so
 * clients must be told to list the tools again. */
export function offersChanged(previous: PolicyInForce, next: PolicyInForce): boolean {
  return previous.lock !== next.lock || offerSignature(previous.policy) !== offerSignature(next.policy);
}
