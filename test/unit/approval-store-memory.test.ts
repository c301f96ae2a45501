import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryApprovalStore } from '../../src/approval/memory.js';
import { RETENTION_MS } from '../../src/approval/types.js';
import { approvalStoreContract, request, T0 } from './approval-store-contract.js';

approvalStoreContract('MemoryApprovalStore', { shared: false, fresh: () => async () => new MemoryApprovalStore() });

describe('MemoryApprovalStore specifics', () => {
  it('forgets requests past retention every so many writes, even ones nobody reads', async () => {
    const store = new MemoryApprovalStore();
    for (let i = 0; i < 50; i++) {
      const { id } = await store.create(request(), T0);
      await store.withdraw(id, T0 + 1);
    }
    assert.equal(store.size, 50);
    const later = T0 + 1 + RETENTION_MS;
    for (let i = 0; i < 100; i++) await store.create(request({ at: later }), later);
    assert.equal(store.size, 100);
    await store.close();
  });
});
