// Prometheus metrics: events in, a real scrape over HTTP out, the exposition text parsed and
// checked series by series; the pulled gauges, failing sources, hostile tool names, and the
// endpoint's answers and shutdown.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMetrics, MAX_LABEL_LENGTH, OTHER_TOOL, type Metrics, type MetricsOptions } from '../../src/audit/metrics.js';
import { metricsUrl, serveMetrics } from '../../src/audit/metrics-server.js';
import { EventLog } from '../../src/audit/writer.js';
import type { ProxyEvent, ToolCallEvent } from '../../src/audit/event.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import { makeTempDir } from '../support/temp.js';
import { deferred, waitUntil, withTimeout } from '../support/wait.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format's sample lines (comments skipped), label escapes undone. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = m[2]?.slice(1, -1) ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let pos = 0;
    for (let l = re.exec(body); l; l = re.exec(body)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      pos = re.lastIndex;
    }
    assert.equal(pos, body.length, `labels not parsed whole: ${line}`);
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The series of one metric, as `labels → value`, label sets written as sorted JSON. */
function series(samples: Sample[], name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples.filter((x) => x.name === name)) out.set(key(s.labels), s.value);
  return out;
}
const key = (labels: Record<string, string>) => JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b))));

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return series(samples, name).get(key(labels));
}

function call(tool: string, over: Partial<ToolCallEvent> = {}): ToolCallEvent {
  return { type: 'tool_call', session: 's1', tool, decision: 'allow', decisionMs: 1, argsHash: 'a'.repeat(64), outcome: 'result', upstreamMs: 10, ...over };
}

/** A logger that keeps its lines. */
function recordingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger('warn', (line) => lines.push(line)), lines };
}

const servers: { close(): Promise<void> }[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function scrape(metrics: Metrics): Promise<{ status: number; contentType: string | null; text: string; samples: Sample[] }> {
  const server = await serveMetrics(metrics, { port: 0, bind: '127.0.0.1', log: silentLogger });
  servers.push(server);
  const res = await fetch(server.url);
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), text, samples: parseExposition(text) };
}

function metricsWith(opts: Partial<MetricsOptions> = {}): Metrics {
  return createMetrics({ log: silentLogger, ...opts });
}

describe('metrics from events', () => {
  it('counts a known sequence of events, by exact label sets', async () => {
    const metrics = metricsWith();
    const events: ProxyEvent[] = [
      call('read_file', { decisionMs: 2, upstreamMs: 30, outcome: 'result' }),
      call('read_file', { decisionMs: 1, upstreamMs: 10, outcome: 'tool_error' }),
      { type: 'tool_call', session: 's1', tool: 'send_email', decision: 'deny', kind: 'rate_limit', rule: 'email-limit', message: 'limit', decisionMs: 0.5, argsHash: 'b'.repeat(64) },
      call('delete_file', { kind: 'deny_rule', rule: 'no-deletes', dryRun: true, decisionMs: 0.25, upstreamMs: 5, outcome: 'result' }),
      { type: 'approval_requested', id: 'r1', tool: 'wire_money', rule: 'ask', session: 's1', mode: 'hold', scope: 'session', argsHash: 'c'.repeat(64), expiresAt: '2030-01-01T00:00:00.000Z' },
      { type: 'state_unavailable', store: 'counters', error: 'connection refused', failMode: 'closed' },
      { type: 'config_reload', file: 'policy.yaml', what: 'policy', oldHash: 'd', newHash: 'e', ok: true },
      { type: 'config_reload', file: 'policy.yaml', what: 'policy', oldHash: 'e', newHash: 'f', ok: false, error: 'bad yaml' },
    ];
    for (const e of events) metrics.sink.emit(e);
    const before = Date.now() / 1000;
    metrics.sink.emit({ type: 'startup', pid: process.pid, host: 'h', version: '0.1.0', policy: 'policy.yaml', policyHash: 'x', transport: 'stdio', upstream: 'server', counters: 'memory' });
    const afterStart = Date.now() / 1000;

    const { status, contentType, samples } = await scrape(metrics);
    assert.equal(status, 200);
    assert.equal(contentType, 'text/plain; version=0.0.4; charset=utf-8');

    assert.deepEqual(
      series(samples, 'intercept_tool_calls_total'),
      new Map([
        [key({ tool: 'read_file', decision: 'allow', kind: '', dry_run: 'false' }), 2],
        [key({ tool: 'send_email', decision: 'deny', kind: 'rate_limit', dry_run: 'false' }), 1],
        [key({ tool: 'delete_file', decision: 'allow', kind: 'deny_rule', dry_run: 'true' }), 1],
      ]),
    );
    assert.deepEqual(
      series(samples, 'intercept_tool_call_outcomes_total'),
      new Map([
        [key({ tool: 'read_file', outcome: 'result' }), 1],
        [key({ tool: 'read_file', outcome: 'tool_error' }), 1],
        [key({ tool: 'delete_file', outcome: 'result' }), 1],
      ]),
    );

    // Histograms: milliseconds in, seconds out; buckets cumulative and inclusive.
    assert.equal(value(samples, 'intercept_decision_duration_seconds_count', { decision: 'allow' }), 3);
    assert.ok(Math.abs(value(samples, 'intercept_decision_duration_seconds_sum', { decision: 'allow' })! - 0.00325) < 1e-12);
    assert.equal(value(samples, 'intercept_decision_duration_seconds_bucket', { decision: 'allow', le: '0.001' }), 2);
    assert.equal(value(samples, 'intercept_decision_duration_seconds_bucket', { decision: 'allow', le: '+Inf' }), 3);
    assert.equal(value(samples, 'intercept_decision_duration_seconds_count', { decision: 'deny' }), 1);
    assert.ok(Math.abs(value(samples, 'intercept_decision_duration_seconds_sum', { decision: 'deny' })! - 0.0005) < 1e-12);
    assert.equal(value(samples, 'intercept_upstream_duration_seconds_count', { tool: 'read_file' }), 2);
    assert.ok(Math.abs(value(samples, 'intercept_upstream_duration_seconds_sum', { tool: 'read_file' })! - 0.04) < 1e-12);
    assert.equal(value(samples, 'intercept_upstream_duration_seconds_count', { tool: 'delete_file' }), 1);
    assert.equal(value(samples, 'intercept_upstream_duration_seconds_count', { tool: 'send_email' }), undefined, 'a denied call has no upstream time');

    assert.deepEqual(series(samples, 'intercept_approval_events_total'), new Map([[key({ type: 'approval_requested' }), 1]]));
    assert.deepEqual(series(samples, 'intercept_store_errors_total'), new Map([[key({ store: 'counters' }), 1]]));
    assert.deepEqual(
      series(samples, 'intercept_config_reloads_total'),
      new Map([
        [key({ what: 'policy', result: 'ok' }), 1],
        [key({ what: 'policy', result: 'rejected' }), 1],
      ]),
    );
    const started = value(samples, 'intercept_proxy_start_time_seconds');
    assert.ok(started !== undefined && started >= before && started <= afterStart, `start time ${started}`);

    // The process metrics of prom-client's default collectors, in this registry.
    assert.ok(value(samples, 'process_cpu_user_seconds_total') !== undefined);
    assert.ok(samples.some((s) => s.name === 'nodejs_heap_size_used_bytes'));
  });

  it('shows no start time before the startup event', async () => {
    const { samples } = await scrape(metricsWith());
    assert.equal(value(samples, 'intercept_proxy_start_time_seconds'), undefined);
  });

  it('keeps each Metrics to its own registry', async () => {
    const a = metricsWith();
    const b = metricsWith();
    a.sink.emit(call('only_in_a'));
    const { samples } = await scrape(b);
    assert.equal(series(samples, 'intercept_tool_calls_total').size, 0);
  });
});

describe('metrics pulled at scrape time', () => {
  it('reads pending approvals, counter usage and the audit trail health from their sources', async () => {
    const dir = await makeTempDir('intercept-metrics-');
    const trail = await EventLog.open({ dir: dir.path, log: silentLogger, retentionDays: 0 });
    try {
      let pending = 3;
      let usage: { counter: string; ratio: number }[] = [
        { counter: 'emails-per-hour', ratio: 0.5 },
        { counter: 'deletes-per-day', ratio: 1 },
      ];
      const metrics = metricsWith({
        pendingApprovals: async () => pending,
        counterUsage: async () => usage,
        auditHealth: () => trail.health,
      });
      for (let i = 0; i < 3; i++) trail.emit(call(`t${i}`));
      await waitUntil(() => trail.health.written === 3, undefined, 'three records written');

      const first = (await scrape(metrics)).samples;
      assert.equal(value(first, 'intercept_approvals_pending'), 3);
      assert.deepEqual(
        series(first, 'intercept_counter_usage_ratio'),
        new Map([
          [key({ counter: 'emails-per-hour' }), 0.5],
          [key({ counter: 'deletes-per-day' }), 1],
        ]),
      );
      assert.equal(value(first, 'intercept_audit_events_written_total'), 3);
      assert.equal(value(first, 'intercept_audit_write_errors_total'), 0);
      assert.equal(value(first, 'intercept_audit_events_lost_total'), 0);

      // A counter gone from the policy vanishes; the values follow their sources.
      pending = 1;
      usage = [{ counter: 'emails-per-hour', ratio: 0.75 }];
      const second = (await scrape(metrics)).samples;
      assert.equal(value(second, 'intercept_approvals_pending'), 1);
      assert.deepEqual(series(second, 'intercept_counter_usage_ratio'), new Map([[key({ counter: 'emails-per-hour' }), 0.75]]));
    } finally {
      await trail.close();
      await dir.cleanup();
    }
  });

  it('exposes the audit counts as counters, with the values the writer reports', async () => {
    const health = { written: 10, writeErrors: 2, lost: 7 };
    const { text, samples } = await scrape(metricsWith({ auditHealth: () => health }));
    assert.match(text, /^# TYPE intercept_audit_events_lost_total counter$/m);
    assert.match(text, /^# TYPE intercept_audit_write_errors_total counter$/m);
    assert.equal(value(samples, 'intercept_audit_events_written_total'), 10);
    assert.equal(value(samples, 'intercept_audit_write_errors_total'), 2);
    assert.equal(value(samples, 'intercept_audit_events_lost_total'), 7);
  });

  it('leaves out the audit counts when there is no trail, and the pulled gauges without sources', async () => {
    const { samples } = await scrape(metricsWith({ auditHealth: () => undefined }));
    for (const name of ['intercept_audit_events_written_total', 'intercept_audit_write_errors_total', 'intercept_audit_events_lost_total', 'intercept_approvals_pending']) {
      assert.equal(samples.filter((s) => s.name === name).length, 0, name);
    }
  });

  it('a source that throws, rejects or hangs is left out and warned about once; the rest still renders', async () => {
    const { log, lines } = recordingLogger();
    const metrics = createMetrics({
      log,
      sourceTimeoutMs: 200,
      pendingApprovals: () => {
        throw new Error('approval store closed');
      },
      counterUsage: async () => {
        throw new Error('redis down');
      },
      auditHealth: () => {
        throw new Error('writer gone');
      },
    });
    metrics.sink.emit(call('read_file'));
    for (let i = 0; i < 2; i++) {
      const { status, samples } = await scrape(metrics);
      assert.equal(status, 200);
      assert.equal(value(samples, 'intercept_tool_calls_total', { tool: 'read_file', decision: 'allow', kind: '', dry_run: 'false' }), 1);
      assert.ok(value(samples, 'process_cpu_user_seconds_total') !== undefined);
      for (const name of ['intercept_approvals_pending', 'intercept_counter_usage_ratio', 'intercept_audit_events_written_total', 'intercept_audit_events_lost_total']) {
        assert.equal(samples.filter((s) => s.name === name).length, 0, name);
      }
    }
    // Two scrapes, one warning per source.
    const warns = lines.filter((l) => l.includes(' WARN '));
    assert.equal(warns.length, 3, warns.join(''));
    assert.ok(warns.some((l) => l.includes('source=pendingApprovals') && l.includes('approval store closed')));
    assert.ok(warns.some((l) => l.includes('source=counterUsage') && l.includes('redis down')));
    assert.ok(warns.some((l) => l.includes('source=auditHealth') && l.includes('writer gone')));

    const hanging = createMetrics({ log: silentLogger, sourceTimeoutMs: 100, pendingApprovals: () => new Promise<number>(() => {}), counterUsage: async () => [{ counter: 'c', ratio: 0.2 }] });
    const { status, samples } = await withTimeout(scrape(hanging), 5_000, () => 'a hanging source held the scrape');
    assert.equal(status, 200);
    assert.equal(samples.filter((s) => s.name === 'intercept_approvals_pending').length, 0);
    assert.equal(value(samples, 'intercept_counter_usage_ratio', { counter: 'c' }), 0.2);
  });
});

describe('hostile tool names', () => {
  it('caps distinct tool labels, counting further new names as _other', async () => {
    const { log, lines } = recordingLogger();
    const metrics = createMetrics({ log, maxToolLabels: 3 });
    for (let i = 0; i < 6; i++) metrics.sink.emit(call(`t${i}`));
    metrics.sink.emit(call('t0')); // a name seen before the cap keeps its label
    const { samples } = await scrape(metrics);
    const calls = series(samples, 'intercept_tool_calls_total');
    const labelled = (tool: string) => key({ tool, decision: 'allow', kind: '', dry_run: 'false' });
    assert.deepEqual(
      calls,
      new Map([
        [labelled('t0'), 2],
        [labelled('t1'), 1],
        [labelled('t2'), 1],
        [labelled(OTHER_TOOL), 3],
      ]),
    );
    assert.equal(value(samples, 'intercept_upstream_duration_seconds_count', { tool: OTHER_TOOL }), 3);
    assert.deepEqual(new Set(samples.filter((s) => s.name === 'intercept_tool_call_outcomes_total').map((s) => s.labels.tool)), new Set(['t0', 't1', 't2', OTHER_TOOL]));
    assert.equal(lines.filter((l) => l.includes('_other')).length, 1, 'the cap is reported once');
  });

  it('cuts long names and replaces unprintable characters, so no line can be injected', async () => {
    const metrics = metricsWith();
    const injected = 'a"} 1\nintercept_fake_total 99\r\n#\u0000\u202e';
    const long = 'x'.repeat(300);
    const emoji = '\u{1F600}'.repeat(200);
    for (const tool of [injected, long, emoji]) metrics.sink.emit(call(tool));
    const { text, samples } = await scrape(metrics); // parseExposition fails on any stray line
    assert.equal(samples.filter((s) => s.name === 'intercept_fake_total').length, 0);
    const tools = samples.filter((s) => s.name === 'intercept_tool_calls_total').map((s) => s.labels.tool!);
    assert.deepEqual(new Set(tools), new Set(['a"} 1_intercept_fake_total 99__#__', 'x'.repeat(MAX_LABEL_LENGTH), '\u{1F600}'.repeat(MAX_LABEL_LENGTH)]));
    for (const tool of tools) {
      assert.ok(Array.from(tool).length <= MAX_LABEL_LENGTH);
      assert.doesNotMatch(tool, /\p{C}/u, 'no control, format or lone surrogate code points');
    }
    assert.ok(!text.includes('\r'));
  });
});

describe('the metrics endpoint', () => {
  async function served() {
    const server = await serveMetrics(metricsWith(), { port: 0, bind: '127.0.0.1', log: silentLogger });
    servers.push(server);
    return server;
  }

  it('answers GET and HEAD /metrics, points / to it, 404s other paths and 405s other methods', async () => {
    const server = await served();
    assert.equal(server.url, `http://127.0.0.1:${server.port}/metrics`);
    assert.ok(server.port > 0);
    const base = `http://127.0.0.1:${server.port}`;

    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(await head.text(), '');

    const withQuery = await fetch(`${base}/metrics?x=1`);
    assert.equal(withQuery.status, 200);
    assert.match(await withQuery.text(), /^process_cpu_user_seconds_total /m);

    const root = await fetch(`${base}/`);
    assert.equal(root.status, 200);
    const rootText = await root.text();
    assert.match(rootText, /\/metrics/);
    assert.equal(rootText.trim().split('\n').length, 1);

    const missing = await fetch(`${base}/nope`);
    assert.equal(missing.status, 404);
    await missing.text();

    const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x'.repeat(1000) });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.text();
  });

  it('close() finishes while clients hold connections open (idle keep-alive, and mid-scrape)', async () => {
    // The scrape in progress waits on a source that never answers; the test knows the server
    // has it once the source is asked.
    const asked = deferred();
    const metrics = metricsWith({
      sourceTimeoutMs: 600_000,
      pendingApprovals: () => {
        asked.resolve();
        return new Promise<number>(() => {});
      },
    });
    const server = await serveMetrics(metrics, { port: 0, bind: '127.0.0.1', log: silentLogger });
    const agent = new Agent({ keepAlive: true });
    try {
      const get = (path: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request(`http://127.0.0.1:${server.port}${path}`, { agent }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          });
          req.on('error', reject);
          req.end();
        });
      const root = await get('/');
      assert.equal(root.status, 200);
      assert.equal(Object.values(agent.freeSockets).flat().length, 1, 'the connection is kept alive');
      const stuck = get('/metrics');
      stuck.catch(() => {});
      await withTimeout(asked.promise, 5_000, () => 'the scrape never reached the source');
      await withTimeout(server.close(), 5_000, () => 'close() waited for the open connections');
      await assert.rejects(withTimeout(stuck, 5_000, () => 'the scrape in progress was left open'), /socket hang up|ECONNRESET/);
      await assert.rejects(fetch(server.url), 'the server no longer answers');
    } finally {
      agent.destroy();
    }
  });

  it('rejects, naming the address, when the port is taken or the address is not local', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      await assert.rejects(serveMetrics(metricsWith(), { port, bind: '127.0.0.1', log: silentLogger }), (err: Error) => {
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
        assert.match(err.message, /in use/);
        return true;
      });
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    // TEST-NET-1: never an address of this host.
    await assert.rejects(serveMetrics(metricsWith(), { port: 0, bind: '192.0.2.1', log: silentLogger }), /192\.0\.2\.1:0/);
    await assert.rejects(serveMetrics(metricsWith(), { port: 70000, bind: '127.0.0.1', log: silentLogger }), /127\.0\.0\.1:70000.*port/);
  });

  it('puts an IPv6 address in brackets in the url', () => {
    assert.equal(metricsUrl('::1', 9464), 'http://[::1]:9464/metrics');
    assert.equal(metricsUrl('0.0.0.0', 9464), 'http://0.0.0.0:9464/metrics');
    assert.equal(metricsUrl('localhost', 1), 'http://localhost:1/metrics');
  });
});
