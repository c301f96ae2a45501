// The dashboard's API over real HTTP, on a trail written by the real EventLog and the proxy's
// real SQLite stores (opened as the proxy opens them, namespace included): the summary with
// counters against their limits, the event stream (records already there, a record appended
// later, heartbeats, resuming after the last event), the approvals listed, and decisions made
// through the store and recorded in the trail with `via: dashboard`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { openApprovalStore } from '../../src/approval/open.js';
import type { ApprovalRecord, ApprovalStore, NewApproval } from '../../src/approval/types.js';
import { EventLog, instanceName } from '../../src/audit/writer.js';
import { startDashboard, type Dashboard } from '../../src/dashboard/server.js';
import { counterRef, declaredCounters } from '../../src/engine/compile.js';
import { silentLogger } from '../../src/log.js';
import { parsePolicy } from '../../src/policy/load.js';
import { storageKey } from '../../src/state/keys.js';
import { openCounterStore, policyNamespace } from '../../src/state/open.js';
import { ask, openEvents } from '../support/dashboard.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { trailRecords } from '../support/trail.js';
import { denial, startupEvent, toolCall, writeProxy } from '../support/trail-writer.js';
import { eventually } from '../support/wait.js';

const MINUTE = 60_000;
const POLICY = `
tools:
  create_issue:
    rules:
      - name: "hourly issue limit"
        rate_limit: 5/hour
  pay:
    rules:
      - name: ask
        action: require_approval
`;

const request = (session: string, amount: number, now: number): NewApproval => ({
  tool: 'pay',
  arguments: { amount, note: '<b>bold</b>' },
  argumentsHash: 'a'.repeat(64),
  rule: 'ask',
  ruleVersion: 'v1',
  mode: 'hold',
  scope: 'session',
  session,
  binding: `b-${session}-${amount}`,
  onTimeout: 'deny',
  requestedAt: now,
  expiresAt: now + 5 * MINUTE,
});

describe('dashboard API', () => {
  let dir: TempDir;
  let events: string;
  let stateDir: string;
  let policyFile: string;
  let store: ApprovalStore;
  let trail: EventLog;
  let dashboard: Dashboard;
  let origin: string;
  const now = Date.now();
  let first: ApprovalRecord;
  let second: ApprovalRecord;

  before(async () => {
    dir = await makeTempDir('intercept-dashboard-');
    events = dir.file('events');
    stateDir = dir.file('state');
    policyFile = await writePolicy(dir.path, POLICY);
    await writeProxy(events, 'here-1-aaaaaa', [
      [now - 5 * MINUTE, startupEvent(999_999)],
      [now - 4 * MINUTE, toolCall('create_issue', { session: 'alice' })],
      [now - 3 * MINUTE, denial('delete_repo', 'deny_rule', 'never delete', { session: 'bob', message: 'Deleting is not for agents' })],
    ]);
    const prefix = policyNamespace(policyFile);
    // The counters and the approvals as a proxy started with this policy file left them.
    const counters = (await openCounterStore({ stateDir, prefix, log: silentLogger })).store;
    const loaded = parsePolicy(POLICY, policyFile);
    assert.ok(loaded.ok);
    const [id, counter] = [...declaredCounters(loaded.policy)][0]!;
    const ref = counterRef(id, counter);
    assert.ok((await counters.reserve([{ key: storageKey(ref, ''), window: ref.window, amount: 2, limits: counter.limits }], now)).ok);
    await counters.close();
    store = (await openApprovalStore({ stateDir, prefix, log: silentLogger })).store;
    first = await store.create(request('alice', 10, now - 2 * MINUTE), now - 2 * MINUTE);
    second = await store.create(request('bob', 20, now - MINUTE), now - MINUTE);

    trail = await EventLog.open({ dir: events, instance: instanceName('dashboard-test'), retentionDays: 0, log: silentLogger });
    dashboard = await startDashboard({
      bind: '127.0.0.1',
      port: 0,
      eventsDir: events,
      stores: { config: policyFile, stateDir },
      trail,
      log: silentLogger,
      heartbeatMs: 100,
      pollMs: 50,
    });
    origin = new URL(dashboard.url).origin;
  });
  after(async () => {
    await dashboard?.close();
    await trail?.close();
    await store?.close();
    await dir?.cleanup();
  });

  const post = (path: string, body?: unknown) =>
    ask(`${dashboard.url}${path}`, { method: 'POST', headers: { Origin: origin, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  it('summarises the trail as status does, with the counters against their limits', async () => {
    const answer = await ask(`${dashboard.url}api/summary?since=1h`);
    assert.equal(answer.status, 200);
    const s = answer.json!;
    assert.equal((s.calls as { total: number }).total, 2);
    assert.equal((s.calls as { denied: number }).denied, 1);
    const denials = s.recentDenials as { tool: string; kind: string; rule: string; message: string; session: string }[];
    assert.deepEqual(denials.map((d) => [d.tool, d.kind, d.rule, d.message, d.session]), [['delete_repo', 'deny_rule', 'never delete', 'Deleting is not for agents', 'bob']]);
    const proxies = s.proxies as { instance: string; state: string }[];
    assert.deepEqual(proxies.map((p) => p.instance), ['here-1-aaaaaa']);
    assert.equal(s.policy, policyFile);
    assert.equal(s.eventsDir, events);
    assert.deepEqual(s.counters, [{ counter: 'create_issue._rate_hour', scope: 'global', value: 2, max: 5, window: 'hour', ratio: 0.4 }]);

    assert.equal((await ask(`${dashboard.url}api/summary?since=yesterday`)).status, 400);
    assert.equal((await ask(`${dashboard.url}api/summary?since=30d`)).status, 400);
  });

  it('lists the pending approvals with their arguments, newest first; other statuses when asked', async () => {
    const answer = await ask(`${dashboard.url}api/approvals`);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['cache-control'], 'no-store');
    const listed = answer.json!.approvals as { id: string; status: string; arguments: unknown }[];
    assert.deepEqual(listed.map((a) => a.id), [second.id, first.id]);
    assert.deepEqual(listed[0]!.arguments, { amount: 20, note: '<b>bold</b>' });
    assert.equal((await ask(`${dashboard.url}api/approvals?status=used`)).json!.approvals instanceof Array, true);
    assert.equal((await ask(`${dashboard.url}api/approvals?status=bogus`)).status, 400);
  });

  it('streams the records already in the trail, then one a proxy appends, with heartbeats', async () => {
    const stream = await openEvents(`${dashboard.url}api/events?since=${now - 10 * MINUTE}`);
    try {
      assert.equal(stream.status, 200);
      assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
      assert.equal(stream.headers['cache-control'], 'no-store');
      const denied = await stream.next((e) => e.event === 'record' && e.data.includes('delete_repo'));
      const record = JSON.parse(denied.data) as Record<string, unknown>;
      assert.equal(record.type, 'tool_call');
      assert.equal(record.kind, 'deny_rule');
      assert.equal(record.hash, undefined, 'the chain stays on disk');
      assert.ok(denied.id);

      await writeProxy(events, 'there-2-bbbbbb', [[Date.now(), denial('send_money', 'rate_limit', 'money limit', { session: 'carol' })]]);
      const appended = await stream.next((e) => e.event === 'record' && e.data.includes('send_money'));
      assert.equal((JSON.parse(appended.data) as { rule: string }).rule, 'money limit');
      await stream.next((e) => e.event === 'heartbeat');

      // A browser that reconnects with the last id it had gets only what came after it.
      const resumed = await openEvents(`${dashboard.url}api/events`, { 'Last-Event-ID': denied.id! });
      try {
        await resumed.next((e) => e.event === 'record' && e.data.includes('send_money'));
        assert.equal(resumed.events.filter((e) => e.data.includes('delete_repo') || e.data.includes('"create_issue"')).length, 0);
      } finally {
        resumed.close();
      }
    } finally {
      stream.close();
    }
    assert.equal((await ask(`${dashboard.url}api/events?since=soon`)).status, 400);
  });

  it('approves through the store, as the approvals command does, and records the decision in the trail', async () => {
    const answer = await post(`api/approvals/${first.id}/approve`, { reason: 'fine by me' });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json!.status, 'approved');
    assert.equal(answer.json!.via, 'dashboard');
    assert.equal(answer.json!.decidedBy, userInfo().username);
    const stored = await store.get(first.id, Date.now());
    assert.equal(stored?.status, 'approved');
    assert.equal(stored?.reason, 'fine by me');

    const decided = await eventually(async () => (await trailRecords(events)).find((r) => r.type === 'approval_decided' && r.id === first.id));
    assert.equal(decided.approved, true);
    assert.equal(decided.via, 'dashboard');
    assert.equal(decided.tool, 'pay');
    assert.equal(decided.reason, 'fine by me');
    assert.match(String(decided.instance), /^dashboard-test-/);

    const again = await post(`api/approvals/${first.id}/deny`);
    assert.equal(again.status, 409);
    assert.match(String(again.json!.error), /is approved \(by .* via dashboard\)/);
  });

  it('denies with a reason, and the page\'s list no longer has it', async () => {
    const answer = await post(`api/approvals/${second.id}/deny`, { reason: 'not today' });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json!.status, 'denied');
    assert.equal((await store.get(second.id, Date.now()))?.reason, 'not today');
    assert.deepEqual((await ask(`${dashboard.url}api/approvals`)).json!.approvals, []);
    const decided = await eventually(async () => (await trailRecords(events)).find((r) => r.type === 'approval_decided' && r.id === second.id));
    assert.equal(decided.approved, false);
    assert.equal(decided.reason, 'not today');
  });

  it('answers 404 for ids that are malformed or unknown, and 400 for a bad reason', async () => {
    for (const id of ['nope', 'apr_AAAAAAAAAAAAAAAA', '%2e%2e', 'apr_aaaaaaaaaaaaaaaa']) {
      const answer = await post(`api/approvals/${id}/approve`, {});
      assert.equal(answer.status, 404, id);
    }
    assert.equal((await post('api/approvals/apr_aaaaaaaaaaaaaaaa/maybe', {})).status, 404);
    const pending = await store.create(request('dave', 30, Date.now()), Date.now());
    assert.equal((await post(`api/approvals/${pending.id}/approve`, { reason: 42 })).status, 400);
    assert.equal((await post(`api/approvals/${pending.id}/approve`, ['x'])).status, 400);
    assert.equal((await ask(`${dashboard.url}api/approvals/${pending.id}/approve`)).status, 405);
    assert.equal((await store.get(pending.id, Date.now()))?.status, 'pending', 'nothing was decided');
  });

  it('without -c, or with stores that cannot be opened, says so instead of failing', async () => {
    const bare = await startDashboard({ bind: '127.0.0.1', port: 0, eventsDir: events, trail, log: silentLogger });
    const notADir = dir.file('not-a-dir');
    await writeFile(notADir, 'a file where the state directory should be');
    const broken = await startDashboard({ bind: '127.0.0.1', port: 0, eventsDir: events, stores: { config: policyFile, stateDir: notADir }, trail, log: silentLogger });
    try {
      const approvals = (await ask(`${bare.url}api/approvals`)).json!;
      assert.equal(approvals.enabled, false);
      assert.match(String(approvals.problem), /-c/);
      assert.match(String((await ask(`${bare.url}api/summary`)).json!.countersProblem), /-c/);
      const noStore = await ask(`${bare.url}api/approvals/apr_aaaaaaaaaaaaaaaa/approve`, { method: 'POST', headers: { Origin: new URL(bare.url).origin } });
      assert.equal(noStore.status, 404);

      assert.match(String((await ask(`${broken.url}api/approvals`)).json!.problem), /cannot read the approval store/);
      const summary = await ask(`${broken.url}api/summary`);
      assert.equal(summary.status, 200);
      assert.match(String(summary.json!.countersProblem), /cannot read the counter store/);
    } finally {
      await bare.close();
      await broken.close();
    }
  });
});
