// state_unavailable events: a store that fails is reported when it starts failing, and then at
// most once a minute while it goes on failing, not once per call (each call's own event already
// says what the outage did to it). Wrapping the stores keeps the gate free of this.
import type { ApprovalStore } from '../approval/types.js';
import type { CounterStore } from '../state/store.js';
import type { EventSink, StateUnavailableEvent } from './event.js';

const EVERY_MS = 60_000;

type Report = (err: unknown) => void;

function reporter(events: EventSink, store: StateUnavailableEvent['store'], failMode: 'open' | 'closed' | undefined, now: () => number): { report: Report; ok: () => void } {
  let last: number | undefined;
  return {
    report(err) {
      const t = now();
      if (last !== undefined && t - last < EVERY_MS) return;
      last = t;
      events.emit({ type: 'state_unavailable', store, error: err instanceof Error ? err.message : String(err), failMode });
    },
    ok() {
      last = undefined;
    },
  };
}

/** `fn`, reporting its rejections (and passing them on) and noting its successes. */
function watched<A extends unknown[], R>(fn: (...args: A) => Promise<R>, r: { report: Report; ok: () => void }): (...args: A) => Promise<R> {
  return (...args) =>
    fn(...args).then(
      (value) => {
        r.ok();
        return value;
      },
      (err: unknown) => {
        r.report(err);
        throw err;
      },
    );
}

export function reportingCounterStore(store: CounterStore, events: EventSink, failMode: 'open' | 'closed', now: () => number = Date.now): CounterStore {
  const r = reporter(events, 'counters', failMode, now);
  return {
    reserve: watched(store.reserve.bind(store), r),
    commit: watched(store.commit.bind(store), r),
    rollback: watched(store.rollback.bind(store), r),
    read: watched(store.read.bind(store), r),
    close: () => store.close(),
  };
}

export function reportingApprovalStore(store: ApprovalStore, events: EventSink, now: () => number = Date.now): ApprovalStore {
  const r = reporter(events, 'approvals', undefined, now);
  return {
    create: watched(store.create.bind(store), r),
    get: watched(store.get.bind(store), r),
    list: watched(store.list.bind(store), r),
    decide: watched(store.decide.bind(store), r),
    withdraw: watched(store.withdraw.bind(store), r),
    expire: watched(store.expire.bind(store), r),
    claim: watched(store.claim.bind(store), r),
    findOpen: watched(store.findOpen.bind(store), r),
    close: () => store.close(),
  };
}
