// An approval store that tells the trail of every change it makes. Each change of status is
// atomic in the store, so only the process that made it hears `ok`: every request, decision,
// expiry, withdrawal and use is recorded once, by the process that caused it (a proxy, or the
// approvals command run by an operator), whichever proxy holds the call.
import type { ApprovalRecord, ApprovalStore, ChangeOutcome } from '../approval/types.js';
import type { ApprovalEndedEvent, EventSink } from './event.js';

const about = (r: ApprovalRecord) => ({ id: r.id, tool: r.tool, rule: r.rule, session: r.session });

export function observedApprovals(store: ApprovalStore, events: EventSink): ApprovalStore {
  const ended = (type: ApprovalEndedEvent['type']) => (out: ChangeOutcome) => {
    if (out.ok) events.emit({ type, ...about(out.record) });
    return out;
  };
  return {
    async create(request, now) {
      const record = await store.create(request, now);
      events.emit({
        type: 'approval_requested',
        ...about(record),
        mode: record.mode,
        scope: record.scope,
        argsHash: record.argumentsHash,
        expiresAt: new Date(record.expiresAt).toISOString(),
      });
      return record;
    },
    get: (id, now) => store.get(id, now),
    list: (now, filter) => store.list(now, filter),
    async decide(id, decision, now) {
      const out = await store.decide(id, decision, now);
      if (out.ok) {
        events.emit({ type: 'approval_decided', ...about(out.record), approved: decision.approve, by: decision.by, via: decision.via, reason: decision.reason });
      }
      return out;
    },
    withdraw: (id, now) => store.withdraw(id, now).then(ended('approval_withdrawn')),
    expire: (id, now) => store.expire(id, now).then(ended('approval_expired')),
    claim: (id, now) => store.claim(id, now).then(ended('approval_used')),
    findOpen: (binding, now) => store.findOpen(binding, now),
    close: () => store.close(),
  };
}
