// The listener's approval endpoints: served only to the approvals token (never to the agents'
// token), listing and deciding the requests a call made, and refusing what cannot be decided;
// and the webhook, which a local receiver checks for its HMAC signature.
// The agent is the official SDK client over Streamable HTTP; the calls use retry mode, so the
// request exists as soon as the call is answered.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { eventually } from '../support/wait.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { assertDenied, assertNotDenied, isRecord, type Json } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { connectStreamableV1, startListener, type Listener } from '../support/listener.js';
import type { Session } from '../support/sdk-clients.js';

const TIMEOUT = { timeout: 120_000 };
const AGENT_TOKEN = 'agent-token-0123456789';
const APPROVER_TOKEN = 'approver-token-9876543210';

const POLICY = `version: "1"
tools:
  echo:
    rules:
      - name: "every echo"
        action: require_approval
        approval_mode: retry
`;

const WEBHOOK_SECRET = 'webhook-secret';

let dir: TempDir;
let listener: Listener;
let agent: Session<Client>;
let receiver: Server;
const hooks: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];

before(async () => {
  dir = await makeTempDir('intercept-approvals-http-');
  const policy = await writePolicy(dir.path, POLICY);
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooks.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const port = (receiver.address() as { port: number }).port;
  listener = await startListener(policy, servers.everything(), {
    flags: [
      '--auth-token', AGENT_TOKEN,
      '--approvals-token', APPROVER_TOKEN,
      '--state-dir', `${dir.path}/state`,
      '--approval-webhook', `http://127.0.0.1:${port}/hook`,
      '--approval-webhook-secret', WEBHOOK_SECRET,
    ],
  });
  agent = await connectStreamableV1(listener, { headers: { Authorization: `Bearer ${AGENT_TOKEN}` } });
});
after(async () => {
  await agent?.close();
  await listener?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
  await dir?.cleanup();
});

function approvalsUrl(path = ''): string {
  return new URL(`/approvals${path}`, listener.url).href;
}

async function api(path: string, token: string | undefined, init: RequestInit = {}): Promise<{ status: number; body: Json }> {
  const headers: Record<string, string> = { ...(init.headers as Record<string, string> | undefined) };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(approvalsUrl(path), { ...init, headers });
  return { status: res.status, body: (await res.json()) as Json };
}

async function pendingFor(message: string): Promise<string> {
  const result = await agent.client.callTool({ name: 'echo', arguments: { message } });
  assertDenied(result, { kind: 'approval_pending', rule: 'every echo' });
  const meta = isRecord(result._meta) ? result._meta['intercept/approval'] : undefined;
  assert.ok(isRecord(meta));
  return String(meta.id);
}

describe('the listener\'s approval endpoints', TIMEOUT, () => {
  it('answer only to the approvals token: not to the agents\' token, not to none', async () => {
    const id = await pendingFor('token check');
    assert.equal((await api('', AGENT_TOKEN)).status, 401);
    assert.equal((await api('', undefined)).status, 401);
    assert.equal((await api(`/${id}/approve`, AGENT_TOKEN, { method: 'POST' })).status, 401);
    const shown = await api(`/${id}`, APPROVER_TOKEN);
    assert.equal(shown.status, 200);
    assert.equal(shown.body.status, 'pending', 'the agent\'s attempts changed nothing');
  });

  it('list and decide requests; the approved call then passes once', async () => {
    const id = await pendingFor('over http');
    const list = await api('?status=pending', APPROVER_TOKEN);
    assert.equal(list.status, 200);
    const entry = (list.body.approvals as Json[]).find((r) => r.id === id);
    assert.deepEqual(entry?.arguments, { message: 'over http' });
    assert.equal(entry?.tool, 'echo');

    const approved = await api(`/${id}/approve`, APPROVER_TOKEN, { method: 'POST', body: JSON.stringify({ by: 'alice', reason: 'ok' }), headers: { 'Content-Type': 'application/json' } });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.status, 'approved');
    assert.equal(approved.body.decidedBy, 'alice');
    assert.equal(approved.body.via, 'http');
    assertNotDenied(await agent.client.callTool({ name: 'echo', arguments: { message: 'over http' } }));
    assert.equal((await api(`/${id}`, APPROVER_TOKEN)).body.status, 'used');

    const again = await api(`/${id}/deny`, APPROVER_TOKEN, { method: 'POST' });
    assert.equal(again.status, 409);
    assert.equal((again.body.approval as Json).status, 'used');
  });

  it('deny with a reason the agent reads', async () => {
    const id = await pendingFor('denied over http');
    const denied = await api(`/${id}/deny`, APPROVER_TOKEN, { method: 'POST', body: JSON.stringify({ reason: 'no' }) });
    assert.equal(denied.status, 200);
    assert.equal(denied.body.status, 'denied');
  });

  it('refuse what is not a decision: unknown ids, wrong methods, bad bodies, bad filters', async () => {
    assert.equal((await api('/apr_aaaaaaaaaaaaaaaa', APPROVER_TOKEN)).status, 404);
    assert.equal((await api('/apr_aaaaaaaaaaaaaaaa/approve', APPROVER_TOKEN, { method: 'POST' })).status, 404);
    const id = await pendingFor('bad requests');
    assert.equal((await api(`/${id}/approve`, APPROVER_TOKEN)).status, 405);
    assert.equal((await api(`/${id}/approve`, APPROVER_TOKEN, { method: 'POST', body: '[1]' })).status, 400);
    assert.equal((await api(`/${id}/approve`, APPROVER_TOKEN, { method: 'POST', body: '{"by": 5}' })).status, 400);
    assert.equal((await api(`/${id}/launch`, APPROVER_TOKEN, { method: 'POST' })).status, 404);
    assert.equal((await api('?status=maybe', APPROVER_TOKEN)).status, 400);
    assert.equal((await api(`/${id}`, APPROVER_TOKEN)).body.status, 'pending');
  });

  it('post each new request to the webhook, signed with the secret', async () => {
    const id = await pendingFor('webhook');
    const hook = await eventually(() => hooks.find((h) => h.body.includes(id)));
    const payload = JSON.parse(hook.body) as Json;
    assert.equal(payload.event, 'approval.requested');
    assert.equal((payload.approval as Json).id, id);
    assert.deepEqual((payload.approval as Json).arguments, { message: 'webhook' });
    const timestamp = String(hook.headers['x-intercept-timestamp']);
    const expected = createHmac('sha256', WEBHOOK_SECRET).update(`${timestamp}.${hook.body}`).digest('hex');
    assert.equal(hook.headers['x-intercept-signature'], `sha256=${expected}`);
    assert.ok(Math.abs(Number(timestamp) - Date.now() / 1000) < 60);
  });
});
