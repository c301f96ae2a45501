// One proxy run seen four ways, which must agree: the audit trail's records, a Prometheus scrape
// of --metrics-port, `intercept status --json` and `intercept logs --json`; then --log-args
// redaction and the spans a local OTLP receiver gets. The agent is the official SDK client in
// front of server-everything.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { assertDenied, assertNotDenied, type Json } from '../support/messages.js';
import type { StatusReport } from '../../src/cli/status.js';
import { attrs, startReceiver, type Receiver } from '../support/otlp-receiver.js';
import { readTeeLog, servers, teeCommand } from '../support/servers.js';
import { connectV1, proxyParams, type Session } from '../support/sdk-clients.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { intercept, toolCalls, trailFiles, trailRecords } from '../support/trail.js';
import { eventually } from '../support/wait.js';

const TIMEOUT = { timeout: 120_000 };

const POLICY = `version: "1"
default: allow
tools:
  get-env:
    rules:
      - name: "no environment"
        action: deny
  echo:
    rules:
      - name: "three echoes"
        action: allow
        rate_limit: { max: 3, window: 3600, scope: global }
`;

/** The samples of a Prometheus text exposition: `name{labels} value`. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const sum = (xs: { value: number }[]) => xs.reduce((n, x) => n + x.value, 0);

/** Every line of the trail as stored, in time order (one proxy: its files' order). */
async function trailLines(dir: string): Promise<string[]> {
  const lines: string[] = [];
  for (const name of await trailFiles(dir)) lines.push(...(await readFile(join(dir, name), 'utf8')).split('\n').filter((l) => l !== ''));
  return lines;
}

describe('a proxy run seen through the trail and the metrics endpoint', TIMEOUT, () => {
  let tmp: TempDir;
  let events: string;
  let proxy: Session<Client>;
  let metricsUrl: string;
  let policy: string;

  before(async () => {
    tmp = await makeTempDir('intercept-observe-');
    events = join(tmp.path, 'events');
    policy = await writePolicy(tmp.path, POLICY);
    proxy = await connectV1(proxyParams(policy, servers.everything(), { flags: ['--events-dir', events, '--state-dir', join(tmp.path, 'state'), '--metrics-port', '0'] }));
    metricsUrl = await eventually(() => /metrics url=(\S+)/.exec(proxy.stderr())?.[1]);
    for (let i = 0; i < 5; i++) await proxy.client.callTool({ name: 'echo', arguments: { message: `m${i}` } });
    assertDenied(await proxy.client.callTool({ name: 'get-env', arguments: {} }), { kind: 'deny_rule' });
    assertNotDenied(await proxy.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }));
  });
  after(async () => {
    await proxy?.close();
    await tmp?.cleanup();
  });

  it('serves only on the loopback address by default', () => {
    assert.match(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  });

  it('counts what the trail records, call for call', async () => {
    const response = await fetch(metricsUrl);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
    const scraped = samples(await response.text());
    const calls = scraped.filter((s) => s.name === 'intercept_tool_calls_total');
    const count = (tool: string, decision: string, kind = '') => sum(calls.filter((s) => s.labels.tool === tool && s.labels.decision === decision && s.labels.kind === kind));
    assert.equal(count('echo', 'allow'), 3);
    assert.equal(count('echo', 'deny', 'rate_limit'), 2);
    assert.equal(count('get-env', 'deny', 'deny_rule'), 1);
    assert.equal(count('get-sum', 'allow'), 1);

    const records = toolCalls(await trailRecords(events));
    assert.equal(sum(calls), records.length);
    for (const r of records as Json[]) {
      const same = records.filter((o) => o.tool === r.tool && o.decision === r.decision && (o.kind ?? '') === (r.kind ?? '')).length;
      assert.equal(count(String(r.tool), String(r.decision), String(r.kind ?? '')), same);
    }

    const decisions = scraped.find((s) => s.name === 'intercept_decision_duration_seconds_count' && s.labels.decision === 'allow');
    assert.equal(decisions?.value, 4);
    const upstream = sum(scraped.filter((s) => s.name === 'intercept_upstream_duration_seconds_count'));
    assert.equal(upstream, 4, 'each forwarded call has its upstream time');
    assert.ok(scraped.some((s) => s.name === 'process_cpu_user_seconds_total'), 'the default process metrics are there');
    assert.ok(scraped.some((s) => s.name === 'intercept_audit_events_written_total'));
    const usage = scraped.filter((s) => s.name === 'intercept_counter_usage_ratio');
    assert.deepEqual(usage.map((s) => [s.labels.counter?.startsWith('echo.'), s.value]), [[true, 1]], 'the three-echo limit is used up');
  });

  it('status --json counts what the trail records, and reads the used-up limit from the store', async () => {
    const records = toolCalls(await trailRecords(events));
    const run = await intercept('status', '--events-dir', events, '--json', '-c', policy, '--state-dir', join(tmp.path, 'state'));
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as StatusReport;
    const denials = records.filter((r) => r.decision === 'deny');
    assert.equal(report.calls.total, records.length);
    assert.equal(report.calls.denied, denials.length);
    assert.equal(report.calls.allowed, records.length - denials.length);
    assert.equal(report.calls.deniedShare, denials.length / records.length);
    assert.deepEqual(report.topDeniedRules, [{ name: 'three echoes', count: 2 }, { name: 'no environment', count: 1 }]);
    assert.deepEqual(new Set(report.recentDenials.map((d) => d.tool)), new Set(['echo', 'get-env']));
    assert.equal(report.proxies.length, 1);
    assert.equal(report.proxies[0]!.state, 'running');
    assert.equal(report.proxies[0]!.calls, records.length);
    assert.deepEqual(report.pendingApprovals, []);
    const echo = report.counters?.find((c) => c.counter.startsWith('echo.'));
    assert.deepEqual(echo && [echo.scope, echo.value, echo.max, echo.ratio], ['global', 3, 3, 1]);
  });

  it('logs --json prints the stored lines; --denied only the denials', async () => {
    const stored = (await trailLines(events)).filter((l) => (JSON.parse(l) as Json).type === 'tool_call');
    const all = await intercept('logs', '--events-dir', events, '--json', '--type', 'tool_call');
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(all.stdout.trimEnd().split('\n'), stored);
    const denied = await intercept('logs', '--events-dir', events, '--json', '--denied');
    const lines = denied.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Json);
    assert.deepEqual(lines.map((r) => [r.tool, r.kind]), [['echo', 'rate_limit'], ['echo', 'rate_limit'], ['get-env', 'deny_rule']]);
    const text = await intercept('logs', '--events-dir', events, '--denied', '--tool', 'get-*');
    assert.equal(text.stdout.trimEnd().split('\n').length, 1);
    assert.match(text.stdout, /tool_call\s+DENY\s+get-env kind=deny_rule rule="no environment"/);
  });
});

describe('--log-args and OpenTelemetry through a real proxy', TIMEOUT, () => {
  const AUDITED = `version: "1"
default: allow
audit:
  args:
    hash: [args.message]
tools:
  get-sum:
    audit:
      args:
        drop: [args.b]
`;
  const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const CLIENT_SPAN = '00f067aa0ba902b7';
  let tmp: TempDir;
  let events: string;
  let tee: string;
  let receiver: Receiver;

  before(async () => {
    tmp = await makeTempDir('intercept-observe-args-');
    events = join(tmp.path, 'events');
    tee = join(tmp.path, 'tee.log');
    receiver = await startReceiver();
    const policy = await writePolicy(tmp.path, AUDITED);
    const [command, ...args] = teeCommand(tee);
    const proxy = await connectV1(
      proxyParams(policy, { command: command!, args }, { flags: ['--events-dir', events, '--log-args'], env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.base, OTEL_SERVICE_NAME: 'intercept-e2e' } }),
    );
    try {
      await proxy.client.callTool({ name: 'echo', arguments: { message: 'hello', password: 'hunter2', note: 'key sk-ant-api03-abcdefghijklmnop0123456789' }, _meta: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` } });
      await proxy.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } });
    } finally {
      // Closing the proxy flushes its spans.
      await proxy.close();
    }
  });
  after(async () => {
    await receiver?.close();
    await tmp?.cleanup();
  });

  it('keeps the arguments redacted as the policy and the heuristics say', async () => {
    const [echo, sum] = toolCalls(await trailRecords(events));
    assert.deepEqual(echo!.args, { message: `sha256:${createHash('sha256').update('"hello"').digest('hex')}`, password: '[redacted]', note: 'key [redacted]' });
    assert.deepEqual(sum!.args, { a: 1 });
    // The server got the arguments as sent: redaction is of the record only.
    const received = (await readTeeLog(tee)) as Json[];
    const sent = received.find((m) => m.method === 'tools/call' && (m.params as Json).name === 'echo');
    assert.equal(((sent!.params as Json).arguments as Json).password, 'hunter2');
  });

  it('sends a span per call to the OTLP receiver, joined to the client\'s trace and passed upstream', async () => {
    const spans = await eventually(() => (receiver.spans().length >= 2 ? receiver.spans() : undefined));
    const echo = spans.find((s) => attrs(s.attributes)['gen_ai.tool.name'] === 'echo');
    assert.ok(echo, 'a span for the echo call');
    assert.equal(echo.traceId, CLIENT_TRACE);
    assert.equal(echo.parentSpanId, CLIENT_SPAN);
    assert.equal(attrs(echo.attributes)['intercept.decision'], 'allow');
    assert.equal(attrs(echo.attributes)['intercept.outcome'], 'result');
    assert.equal(echo.resource['service.name'], 'intercept-e2e');
    const sum = spans.find((s) => attrs(s.attributes)['gen_ai.tool.name'] === 'get-sum');
    assert.ok(sum && sum.traceId !== CLIENT_TRACE, 'a call without a traceparent starts its own trace');
    // What the server received names the proxy's span as its parent.
    const received = (await readTeeLog(tee)) as Json[];
    const sent = received.find((m) => m.method === 'tools/call' && (m.params as Json).name === 'echo');
    const meta = (sent!.params as Json)._meta as Json;
    assert.equal(meta.traceparent, `00-${CLIENT_TRACE}-${echo.spanId}-01`);
  });
});
