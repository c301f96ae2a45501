// Takes docs/dashboard.png (1280×800): the demo's scene on the dashboard. The bundled demo
// server runs behind the proxy with demo/policy.yaml, an agent (the official SDK client) makes
// the demo's calls — one rate-limited, one missing arguments, one denied by rule, one hidden —
// and leaves one create_execution held for approval; `intercept dashboard` shows it all, and
// headless Chromium takes the picture. So that the chart has a past, the trail starts with an
// earlier run of the same proxy over the last half hour, written by the real trail writer.
//
//   npm run build && node --import tsx scripts/dashboard-screenshot.ts [output.png]
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProxyEvent } from '../src/audit/event.js';
import { EventLog } from '../src/audit/writer.js';
import { silentLogger } from '../src/log.js';
import { launchChromium, startDashboardProcess } from '../test/support/dashboard.js';
import { DEMO_SERVER, ROOT } from '../test/support/paths.js';
import { connectV1, proxyParams } from '../test/support/sdk-clients.js';
import { makeTempDir } from '../test/support/temp.js';
import { eventually } from '../test/support/wait.js';

const MINUTE = 60_000;
const output = process.argv[2] ?? join(ROOT, 'docs', 'dashboard.png');

// Everything in one scratch directory, named relative to it, so the picture shows no path of
// the machine that took it.
const dir = await makeTempDir('intercept-dashboard-shot-');
const policy = dir.file('policy.yaml');
const events = dir.file('events');
const state = dir.file('state');
try {
  await copyFile(join(ROOT, 'demo', 'policy.yaml'), policy);
  await earlierRun(events, Date.now());

  const server = { command: 'node', args: [DEMO_SERVER] };
  const proxy = await connectV1(proxyParams(policy, server, { flags: ['--events-dir', events, '--state-dir', state], logLevel: 'warn' }));
  const call = (name: string, args: Record<string, unknown>) => proxy.client.callTool({ name, arguments: args });
  await call('list_conversations', {});
  for (let i = 1; i <= 31; i++) await call('create_conversation', { friendly_name: `Support ticket ${i}` });
  await call('send_conversation_message', { conversation_sid: 'CH0001', body: 'Hi! Your order has shipped.', author: 'support-bot' });
  await call('create_execution', { flow_sid: 'FW0001', from: '+15017122661' });
  await call('create_execution', { flow_sid: 'FW0001', to: '+15558675310', from: '+15017122661' });
  await call('delete_conversation', { conversation_sid: 'CH0001' });
  await call('delete_flow', { flow_sid: 'FW0001' });
  // Held until someone decides; the picture is taken meanwhile, and closing the client withdraws it.
  const held = proxy.client.callTool({ name: 'create_execution', arguments: { flow_sid: 'FW0001', to: '+15550100999', from: '+15017122661' } }, CallToolResultSchema, { timeout: 120_000 });
  held.catch(() => {});

  const dashboard = await startDashboardProcess(['--events-dir', 'events', '-c', 'policy.yaml', '--state-dir', 'state', '--log-level', 'warn'], { cwd: dir.path });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(dashboard.url);
    await page.locator('#approvals .approval', { hasText: 'create_execution' }).waitFor({ timeout: 30_000 });
    await page.locator('#denials-body tr.denial', { hasText: 'delete_conversation' }).first().waitFor();
    await page.locator('#counters .counter').first().waitFor();
    await page.locator('#connection', { hasText: 'live' }).waitFor();
    await eventually(async () => ((await page.locator('#total-calls').innerText()) !== '–' ? true : undefined));
    // Let the arrival highlight fade.
    await page.waitForTimeout(1500);
    await page.screenshot({ path: output });
    process.stderr.write(`wrote ${output}\n`);
  } finally {
    await browser.close();
    await dashboard.stop();
    await proxy.close();
  }
} finally {
  await dir.cleanup();
}

/** The same proxy's trail from an earlier run: calls spread over the half hour before `now`,
 * a few denied, written as a proxy writes them. */
async function earlierRun(eventsDir: string, now: number): Promise<void> {
  let at = now - 32 * MINUTE;
  const log = await EventLog.open({ dir: eventsDir, instance: 'demo-host-4100-3c052b', retentionDays: 0, log: silentLogger, now: () => at });
  const emit = (ms: number, event: ProxyEvent) => {
    at = ms;
    log.emit(event);
  };
  const call = (tool: string, extra: Record<string, unknown> = {}): ProxyEvent =>
    ({ type: 'tool_call', session: 'agent-7f3a', tool, decision: 'allow', decisionMs: 1, upstreamMs: 3, outcome: 'result', argsHash: '0'.repeat(64), ...extra }) as ProxyEvent;
  const denied = (tool: string, kind: string, message: string, rule?: string): ProxyEvent =>
    call(tool, { decision: 'deny', kind, message, ...(rule ? { rule } : {}), upstreamMs: undefined, outcome: undefined });
  emit(at, { type: 'startup', pid: 4100, host: 'demo-host', version: '0.1.0', policy: 'policy.yaml', policyHash: '0'.repeat(64), transport: 'stdio', upstream: 'node', counters: 'sqlite' });
  for (let m = 31; m >= 4; m--) {
    const start = now - m * MINUTE;
    const calls = 2 + ((m * 7) % 6);
    for (let i = 0; i < calls; i++) emit(start + i * 5000, call(i % 3 === 0 ? 'list_conversations' : i % 3 === 1 ? 'create_conversation' : 'send_conversation_message'));
    if (m % 5 === 0) emit(start + 40_000, denied('delete_conversation', 'deny_rule', 'Deleting conversations is not permitted for agents', 'delete_conversation#1'));
    if (m % 7 === 0) emit(start + 45_000, denied('create_execution', 'missing_args', 'Missing required argument "to" for tool "create_execution"', 'create_execution#1'));
  }
  emit(now - 3 * MINUTE, { type: 'shutdown', code: 0 });
  await log.close();
}
