// An approval store opened on first use, so that a proxy whose policy never asks for approval
// opens no approval file and no second Redis connection. A failed open is retried on the next
// use (the store may come back); until then every use rejects, and the gate refuses the call.
import type { StateFlags } from '../state/open.js';
import { openApprovalStore } from './open.js';
import type { ApprovalStore } from './types.js';

/** `isOpen`: whether it was opened (a proxy whose policy asks for no approval never opens it). */
export function lazyApprovalStore(flags: StateFlags): ApprovalStore & { readonly isOpen: boolean } {
  let isOpen = false;
  let opening: Promise<ApprovalStore> | undefined;
  const store = (): Promise<ApprovalStore> => {
    if (opening !== undefined) return opening;
    const attempt = openApprovalStore(flags).then(
      (opened) => {
        flags.log.info('approval store opened', { store: opened.description });
        isOpen = true;
        return opened.store;
      },
      (err: unknown) => {
        opening = undefined;
        throw err;
      },
    );
    opening = attempt;
    return attempt;
  };
  return {
    create: async (request, now) => (await store()).create(request, now),
    get: async (id, now) => (await store()).get(id, now),
    list: async (now, filter) => (await store()).list(now, filter),
    decide: async (id, decision, now) => (await store()).decide(id, decision, now),
    withdraw: async (id, now) => (await store()).withdraw(id, now),
    expire: async (id, now) => (await store()).expire(id, now),
    claim: async (id, now) => (await store()).claim(id, now),
    findOpen: async (binding, now) => (await store()).findOpen(binding, now),
    close: async () => {
      if (opening !== undefined) await (await opening.catch(() => undefined))?.close();
    },
    get isOpen() {
      return isOpen;
    },
  };
}
