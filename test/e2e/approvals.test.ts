// Human approval end to end: server-everything behind the proxy (through a tee that logs what
// reaches it), the official SDK client as the agent, and `intercept approvals` run as its own
// process on the same SQLite store, as a second terminal would. A held call waits, is approved
// or denied from the command line, times out, or is withdrawn by the client's cancellation; a
// call in retry mode is refused with a pending request, then passes exactly once after approval;
// a grant never covers other arguments, and a global grant survives a restart of the proxy.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { approvalMeta, approvalsCli, callsReaching, type ApprovalsCli } from '../support/approvals-cli.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { eventually } from '../support/wait.js';
import { assertDenied, assertNotDenied, textOf } from '../support/messages.js';
import { teeCommand } from '../support/servers.js';
import { connectV1, proxyParams, type Session } from '../support/sdk-clients.js';

const TIMEOUT = { timeout: 120_000 };

const POLICY = `version: "1"
tools:
  echo:
    rules:
      - name: "loud messages"
        action: require_approval
        conditions:
          - path: args.message
            op: regex
            value: "^LOUD"
        on_deny: "Loud messages need an operator"
  get-env:
    rules:
      - name: "environment"
        action: require_approval
        timeout: 2s
  get-sum:
    rules:
      - name: "retried sums"
        action: require_approval
        approval_mode: retry
  get-tiny-image:
    rules:
      - name: "images for anyone"
        action: require_approval
        approval_mode: retry
        scope: global
`;

let dir: TempDir;
let policy: string;
let tee: string;
let stateDir: string;

before(async () => {
  dir = await makeTempDir('intercept-approvals-');
  policy = await writePolicy(dir.path, POLICY);
  tee = `${dir.path}/upstream.log`;
  stateDir = `${dir.path}/state`;
  cli = approvalsCli(policy, stateDir);
});
after(async () => {
  await dir?.cleanup();
});

async function startProxy(): Promise<Session<Client>> {
  const [command, ...args] = teeCommand(tee);
  return connectV1(proxyParams(policy, { command: command!, args }, { flags: ['--state-dir', stateDir] }));
}

let cli: ApprovalsCli;
const approvals = (...args: string[]) => cli.run(...args);
const listed = () => cli.listed();
const requestFor = (tool: string, marker: string, status?: string) => cli.requestFor(tool, marker, status);

const reached = (marker: string) => callsReaching(marker, tee);

describe('human approval, held calls (hold)', TIMEOUT, () => {
  let proxy: Session<Client>;
  before(async () => {
    proxy = await startProxy();
  });
  after(async () => {
    await proxy?.close();
  });

  it('passes a call whose conditions do not ask for approval, without a request', async () => {
    assertNotDenied(await proxy.client.callTool({ name: 'echo', arguments: { message: 'quiet one' } }));
    assert.equal(await reached('quiet one'), 1);
    assert.equal((await listed()).filter((r) => JSON.stringify(r.arguments).includes('quiet one')).length, 0);
  });

  it('holds a call until it is approved from another process, with progress meanwhile; it runs once and shows as used', async () => {
    const progress: unknown[] = [];
    const call = proxy.client.callTool({ name: 'echo', arguments: { message: 'LOUD hello' } }, CallToolResultSchema, {
      onprogress: (p) => progress.push(p),
      timeout: 60_000,
      resetTimeoutOnProgress: true,
    });
    const request = await requestFor('echo', 'LOUD hello');
    assert.equal(request.rule, 'loud messages');
    assert.equal(request.mode, 'hold');
    assert.deepEqual(request.arguments, { message: 'LOUD hello' });
    assert.match(String(request.id), /^apr_[a-z2-7]{16}$/);
    assert.ok(Date.parse(String(request.expiresAt)) > Date.parse(String(request.requestedAt)));
    await eventually(() => (progress.length > 0 ? true : undefined), 15_000);
    assert.equal(await reached('LOUD hello'), 0, 'a held call must not reach the server');

    const shown = await approvals('show', String(request.id));
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /status: +pending/);
    assert.match(shown.stdout, /LOUD hello/);

    const approved = await approvals('approve', String(request.id), '--reason', 'looks fine');
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /^Approved apr_/);
    const result = await call;
    assertNotDenied(result);
    assert.match(textOf(result), /LOUD hello/);
    assert.equal(await reached('LOUD hello'), 1);
    const used = await requestFor('echo', 'LOUD hello', 'used');
    assert.equal(used.via, 'cli');
    assert.equal(used.reason, 'looks fine');
    assert.equal(typeof used.decidedBy, 'string');
    assert.ok(used.usedAt);
    // Decided once: a second decision is refused and says what happened.
    const again = await approvals('deny', String(request.id));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is used/);
  });

  it('denies a held call a human denies, with the rule\'s message and their reason; the server never sees it', async () => {
    const call = proxy.client.callTool({ name: 'echo', arguments: { message: 'LOUD no' } });
    const request = await requestFor('echo', 'LOUD no');
    const denied = await approvals('deny', String(request.id), '--reason', 'not today');
    assert.equal(denied.code, 0, denied.stderr);
    assertDenied(await call, { kind: 'approval_denied', rule: 'loud messages', message: 'Loud messages need an operator: not today' });
    assert.equal(await reached('LOUD no'), 0);
    assert.equal((await requestFor('echo', 'LOUD no', 'denied')).reason, 'not today');
  });

  it('denies a held call nobody decides in time, and records it as expired', async () => {
    const result = await proxy.client.callTool({ name: 'get-env', arguments: {} });
    assertDenied(result, { kind: 'approval_expired', rule: 'environment', message: 'Nobody approved the call to "get-env" within 2 seconds (rule "environment")' });
    const expired = (await listed()).find((r) => r.tool === 'get-env');
    assert.equal(expired?.status, 'expired');
    assert.equal(expired?.via, 'timeout');
    assert.equal(await reached('"get-env"'), 0);
  });

  it('withdraws the request when the client cancels the call', async () => {
    const abort = new AbortController();
    const call = proxy.client.callTool({ name: 'echo', arguments: { message: 'LOUD cancelled' } }, CallToolResultSchema, { signal: abort.signal });
    const request = await requestFor('echo', 'LOUD cancelled');
    abort.abort();
    await assert.rejects(call);
    await requestFor('echo', 'LOUD cancelled', 'withdrawn');
    const late = await approvals('approve', String(request.id));
    assert.equal(late.code, 1, 'a withdrawn request can no longer be approved');
    assert.equal(await reached('LOUD cancelled'), 0);
    // The session goes on.
    assertNotDenied(await proxy.client.callTool({ name: 'echo', arguments: { message: 'after the cancel' } }));
  });

  it('names an unknown id plainly', async () => {
    const out = await approvals('approve', 'apr_aaaaaaaaaaaaaaaa');
    assert.equal(out.code, 1);
    assert.match(out.stderr, /no approval request "apr_aaaaaaaaaaaaaaaa"/);
  });
});

describe('human approval, retried calls (retry)', TIMEOUT, () => {
  let proxy: Session<Client>;
  before(async () => {
    proxy = await startProxy();
  });
  after(async () => {
    await proxy?.close();
  });

  it('refuses at once with a pending request, then passes the same call exactly once after approval', async () => {
    const args = { a: 7, b: 35 };
    const first = await proxy.client.callTool({ name: 'get-sum', arguments: args });
    assertDenied(first, { kind: 'approval_pending', rule: 'retried sums', message: /Retry the same call once it is approved/ });
    const meta = approvalMeta(first);
    assert.match(String(meta.id), /^apr_/);
    assert.ok(Date.parse(String(meta.expiresAt)) > Date.now());

    // Asked again before anyone decided: the same request, not a new one.
    const second = await proxy.client.callTool({ name: 'get-sum', arguments: { b: 35, a: 7 } });
    assertDenied(second, { kind: 'approval_pending' });
    assert.equal(approvalMeta(second).id, meta.id, 'the same canonical arguments find the same request');
    assert.equal(await reached('"a":7'), 0);

    const approved = await approvals('approve', String(meta.id));
    assert.equal(approved.code, 0, approved.stderr);
    // Other arguments are another request.
    const other = await proxy.client.callTool({ name: 'get-sum', arguments: { a: 8, b: 35 } });
    assertDenied(other, { kind: 'approval_pending' });
    assert.notEqual(approvalMeta(other).id, meta.id);

    const passed = await proxy.client.callTool({ name: 'get-sum', arguments: args });
    assertNotDenied(passed);
    assert.match(textOf(passed), /42/);
    assert.equal(await reached('"a":7'), 1);
    // Used: the next identical call asks anew.
    const after = await proxy.client.callTool({ name: 'get-sum', arguments: args });
    assertDenied(after, { kind: 'approval_pending' });
    assert.notEqual(approvalMeta(after).id, meta.id);
    assert.equal(await reached('"a":7'), 1);
  });

  it('keeps a global grant across a restart of the proxy', async () => {
    const first = await proxy.client.callTool({ name: 'get-tiny-image', arguments: {} });
    const { id } = approvalMeta(first);
    assert.equal((await approvals('approve', String(id))).code, 0);
    await proxy.close();
    proxy = await startProxy();
    const passed = await proxy.client.callTool({ name: 'get-tiny-image', arguments: {} });
    assertNotDenied(passed);
    assert.equal((await listed()).find((r) => r.id === id)?.status, 'used');
  });
});
