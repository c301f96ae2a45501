// The store wrappers that feed the trail: every change of an approval's status is told once, by
// the process that made it; a failing store is told when it starts failing and then at most once
// a minute, and its errors still reach the caller.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryApprovalStore } from '../../src/approval/memory.js';
import type { ProxyEvent } from '../../src/audit/event.js';
import { fanOut } from '../../src/audit/event.js';
import { observedApprovals } from '../../src/audit/observed-approvals.js';
import { reportingCounterStore } from '../../src/audit/store-trouble.js';
import { MemoryCounterStore } from '../../src/state/memory.js';
import type { CounterStore } from '../../src/state/store.js';
import { request, T0 } from './approval-store-contract.js';

function collector(): { events: ProxyEvent[]; emit(e: ProxyEvent): void } {
  const events: ProxyEvent[] = [];
  return { events, emit: (e) => events.push(e) };
}

describe('observedApprovals', () => {
  it('tells each request, decision and use once; a losing decider and a second claim tell nothing', async () => {
    const sink = collector();
    const inner = new MemoryApprovalStore();
    const store = observedApprovals(inner, sink);
    const record = await store.create(request(), T0);
    assert.equal((await store.decide(record.id, { approve: true, by: 'alice', via: 'cli', reason: 'ok' }, T0 + 1)).ok, true);
    assert.equal((await store.decide(record.id, { approve: false, by: 'bob', via: 'http' }, T0 + 2)).ok, false);
    assert.equal((await store.claim(record.id, T0 + 3)).ok, true);
    assert.equal((await store.claim(record.id, T0 + 4)).ok, false);
    assert.deepEqual(
      sink.events.map((e) => e.type),
      ['approval_requested', 'approval_decided', 'approval_used'],
    );
    const [requested, decided] = sink.events as [Extract<ProxyEvent, { type: 'approval_requested' }>, Extract<ProxyEvent, { type: 'approval_decided' }>];
    assert.equal(requested.id, record.id);
    assert.equal(requested.argsHash, record.argumentsHash);
    assert.equal(requested.expiresAt, new Date(record.expiresAt).toISOString());
    assert.deepEqual([decided.approved, decided.by, decided.via, decided.reason], [true, 'alice', 'cli', 'ok']);
  });

  it('tells withdrawals and expiries', async () => {
    const sink = collector();
    const store = observedApprovals(new MemoryApprovalStore(), sink);
    const a = await store.create(request({ tool: 'a' }), T0);
    const b = await store.create(request({ tool: 'b' }), T0);
    await store.withdraw(a.id, T0 + 1);
    await store.expire(b.id, T0 + 1);
    assert.deepEqual(
      sink.events.slice(2).map((e) => [e.type, 'tool' in e ? e.tool : undefined]),
      [
        ['approval_withdrawn', 'a'],
        ['approval_expired', 'b'],
      ],
    );
  });
});

/** A counter store that fails while `down` is set. */
function flaky(inner: CounterStore): CounterStore & { down: boolean } {
  const boom = () => Promise.reject(new Error('connection refused'));
  const store = {
    down: false,
    reserve: (...a: Parameters<CounterStore['reserve']>) => (store.down ? boom() : inner.reserve(...a)),
    commit: (...a: Parameters<CounterStore['commit']>) => (store.down ? boom() : inner.commit(...a)),
    rollback: (...a: Parameters<CounterStore['rollback']>) => (store.down ? boom() : inner.rollback(...a)),
    read: (...a: Parameters<CounterStore['read']>) => (store.down ? boom() : inner.read(...a)),
    close: () => inner.close(),
  };
  return store as CounterStore & { down: boolean };
}

describe('reportingCounterStore', () => {
  it('tells an outage when it starts, then at most once a minute, again after a recovery; errors still reach the caller', async () => {
    const sink = collector();
    let now = T0;
    const inner = flaky(new MemoryCounterStore());
    const store = reportingCounterStore(inner, sink, 'closed', () => now);
    const read = () => store.read([{ key: 'k', window: { kind: 'rolling', seconds: 60 } }], now);
    await read();
    inner.down = true;
    await assert.rejects(read(), /connection refused/);
    await assert.rejects(read(), /connection refused/);
    now += 30_000;
    await assert.rejects(read());
    assert.equal(sink.events.length, 1);
    assert.deepEqual(sink.events[0], { type: 'state_unavailable', store: 'counters', error: 'connection refused', failMode: 'closed' });
    now += 31_000;
    await assert.rejects(read());
    assert.equal(sink.events.length, 2, 'still failing a minute later: told again');
    inner.down = false;
    await read();
    inner.down = true;
    await assert.rejects(read());
    assert.equal(sink.events.length, 3, 'a new outage after a recovery is told at once');
  });
});

describe('fanOut', () => {
  it('gives every event to every sink, and a sink that throws does not stop the others', () => {
    const a = collector();
    const b = collector();
    const sink = fanOut([
      a,
      {
        emit() {
          throw new Error('observer bug');
        },
      },
      undefined,
      b,
    ]);
    sink.emit({ type: 'shutdown', code: 0 });
    assert.equal(a.events.length, 1);
    assert.equal(b.events.length, 1);
  });
});
