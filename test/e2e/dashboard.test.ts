// The dashboard in a real browser: server-everything behind the proxy (through the tee that
// logs what reaches it), the official SDK client as the agent, `intercept dashboard` as its own
// process on the proxy's trail and SQLite store, and headless Chromium on the page. A denied
// call shows up with its tool, kind and rule; a held call shows up under pending approvals, its
// arguments as text; clicking Approve releases it, so the agent gets the server's answer and
// the server sees the call exactly once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Browser, Page } from 'playwright-core';
import { callsReaching } from '../support/approvals-cli.js';
import { browserMissing, launchChromium, startDashboardProcess, type DashboardProcess } from '../support/dashboard.js';
import { assertDenied, assertNotDenied, textOf } from '../support/messages.js';
import { connectV1, proxyParams, type Session } from '../support/sdk-clients.js';
import { teeCommand } from '../support/servers.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { trailRecords } from '../support/trail.js';
import { eventually } from '../support/wait.js';

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
  get-sum:
    rules:
      - name: "no sums"
        action: deny
        on_deny: "Sums are not for agents"
`;

let missing: string | undefined;
let noBrowser: Error | undefined;
try {
  missing = browserMissing();
} catch (err) {
  noBrowser = err as Error;
}
if (missing !== undefined) process.stderr.write(`\n********\n${missing}\n********\n\n`);

describe('the dashboard in headless Chromium', { skip: missing ?? false, timeout: 180_000 }, () => {
  let dir: TempDir;
  let tee: string;
  let events: string;
  let proxy: Session<Client>;
  let dashboard: DashboardProcess;
  let browser: Browser;
  let page: Page;
  const pageProblems: string[] = [];

  before(async () => {
    if (noBrowser) throw noBrowser;
    dir = await makeTempDir('intercept-dashboard-');
    const policy = await writePolicy(dir.path, POLICY);
    tee = dir.file('upstream.log');
    events = dir.file('events');
    const state = dir.file('state');
    const [command, ...args] = teeCommand(tee);
    proxy = await connectV1(proxyParams(policy, { command: command!, args }, { flags: ['--events-dir', events, '--state-dir', state] }));
    dashboard = await startDashboardProcess(['--events-dir', events, '-c', policy, '--state-dir', state]);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // A script error or a blocked resource (the CSP refusing something) is a failure too.
    page.on('pageerror', (err) => pageProblems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageProblems.push(`console: ${msg.text()}`);
    });
    await page.goto(dashboard.url);
    await page.locator('#connection', { hasText: 'live' }).waitFor();
  });

  after(async () => {
    await browser?.close();
    await dashboard?.stop();
    await proxy?.close();
    await dir?.cleanup();
  });

  it('shows a denied call with its tool, kind and rule', async () => {
    assertDenied(await proxy.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }), { kind: 'deny_rule', rule: 'no sums' });
    const row = page.locator('#denials-body tr.denial', { hasText: 'get-sum' }).first();
    await row.waitFor();
    const cells = await row.locator('td').allInnerTexts();
    assert.deepEqual(cells.slice(1), ['get-sum', 'deny_rule', 'no sums']);
    assert.match(await row.locator('xpath=following-sibling::tr[1]').innerText(), /Sums are not for agents/);
    const call = await page.locator('#calls-body tr', { hasText: 'get-sum' }).first().locator('td').allInnerTexts();
    assert.equal(call[2], 'deny');
  });

  it('lists a held call under pending approvals; Approve releases it, and it reaches the server once', async () => {
    // Markup in the arguments must arrive as text, never as elements of the page.
    const message = 'LOUD <img id=injected src=x onerror=alert(1)> from the page';
    const call = proxy.client.callTool({ name: 'echo', arguments: { message } }, CallToolResultSchema, { timeout: 120_000 });
    call.catch(() => {}); // awaited below; a failure before then must not be left unhandled
    const card = page.locator('#approvals .approval', { hasText: 'echo' }).first();
    await card.waitFor();
    assert.match(await card.locator('.approval-rule').innerText(), /loud messages/);
    assert.ok((await card.locator('.approval-args').innerText()).includes(message));
    assert.equal(await page.locator('#injected').count(), 0);
    assert.equal(await page.locator('#total-pending').innerText(), '1');
    assert.equal(await callsReaching('from the page', tee), 0, 'a held call must not reach the server');

    await card.locator('.approval-reason').fill('checked on the dashboard');
    await card.locator('button.approve').click();
    const result = await call;
    assertNotDenied(result);
    assert.match(textOf(result), /from the page/);
    assert.equal(await callsReaching('from the page', tee), 1);

    await card.locator('.approval-result', { hasText: 'Approved by' }).waitFor();
    await page.locator('#approvals .approval').first().waitFor({ state: 'detached' });
    assert.equal(await page.locator('#total-pending').innerText(), '0');
    const decided = await eventually(async () => (await trailRecords(events)).find((r) => r.type === 'approval_decided'));
    assert.equal(decided.via, 'dashboard');
    assert.equal(decided.approved, true);
    assert.equal(decided.reason, 'checked on the dashboard');
    assert.equal(decided.tool, 'echo');
    // The released call shows as allowed among the live calls.
    await page.locator('#calls-body tr', { hasText: 'echo' }).filter({ hasText: 'allow' }).first().waitFor();
  });

  it('draws the calls and denials of this minute in the chart, and filters by tool and decision', async () => {
    assert.ok((await page.locator('#chart rect.bar-denied').count()) >= 1);
    assert.ok((await page.locator('#chart rect.bar-allowed').count()) >= 1);
    await page.locator('#filter-decision').selectOption('deny');
    await eventually(async () => ((await page.locator('#calls-body tr', { hasText: 'echo' }).count()) === 0 ? true : undefined));
    assert.equal(await page.locator('#chart rect.bar-allowed').count(), 0);
    await page.locator('#filter-decision').selectOption('');
    await page.locator('#filter-tool').selectOption('echo');
    await eventually(async () => ((await page.locator('#calls-body tr', { hasText: 'get-sum' }).count()) === 0 ? true : undefined));
    assert.ok((await page.locator('#calls-body tr', { hasText: 'echo' }).count()) >= 1);
    assert.equal(await page.locator('#denials-body tr').count(), 0);
  });

  it('ran without a script error or a refused resource', () => {
    assert.deepEqual(pageProblems, []);
  });
});
