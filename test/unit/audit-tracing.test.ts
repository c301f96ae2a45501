// OpenTelemetry traces: a real OTLP/HTTP receiver on a loopback port takes what openTracer sends
// (JSON), and the spans are checked as a tracing backend would show them: trace and parent ids,
// names, kinds, attributes, statuses and times; the propagation handed to the server; invalid
// and hostile input; a receiver that is down or never answers; and no SDK loaded without
// configuration.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { register } from 'node:module';
import type { CallTracer, ToolCallEvent } from '../../src/audit/event.js';
import { createLogger, type Logger } from '../../src/log.js';
import { attrs, startReceiver, type Receiver } from '../support/otlp-receiver.js';
import { freePort, withTimeout } from '../support/wait.js';

// Counts every resolution of an @opentelemetry specifier in this process, synchronously (shared
// memory), so a test can tell whether the SDK was loaded.
const otelResolutions = new Int32Array(new SharedArrayBuffer(4));
const HOOKS = `
let counter;
export function initialize(data) { counter = data.counter; }
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@opentelemetry/')) Atomics.add(counter, 0, 1);
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(HOOKS)}`, import.meta.url, { data: { counter: otelResolutions } });
// Imported only now: a static import is loaded before the hook above is registered.
const { CLOSE_CAP_MS, MAX_ATTRIBUTE_LENGTH, openTracer } = await import('../../src/audit/tracing.js');

// OTLP's span kinds and status codes, as numbers in its JSON encoding.
const KIND_SERVER = 2;
const STATUS_OK = 1;
const STATUS_ERROR = 2;

/** A logger whose lines the test reads. */
function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger('debug', (line) => lines.push(line)), lines };
}

async function tracerFor(env: NodeJS.ProcessEnv, log: Logger): Promise<CallTracer> {
  const tracer = await openTracer({ env, log, serviceVersion: '9.8.7', instance: 'testhost-4242-abc123' });
  assert.ok(tracer, 'openTracer returned no tracer for a configured environment');
  return tracer;
}

function callEvent(over: Partial<ToolCallEvent>): ToolCallEvent {
  return { type: 'tool_call', session: 'sess-1', tool: 'read_file', decision: 'allow', decisionMs: 3, argsHash: 'a'.repeat(64), ...over };
}

/** The OTLP timestamp of `ms` since the epoch (fractional ms kept). */
function nanos(ms: number): string {
  const whole = Math.floor(ms);
  return (BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6))).toString();
}

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678) + 0.25;

describe('OpenTelemetry call tracer', () => {
  const receivers: Receiver[] = [];
  after(async () => {
    await Promise.all(receivers.map((r) => r.close()));
  });

  it('loads no OpenTelemetry package and returns undefined unless the environment asks for traces', async () => {
    const { log, lines } = capturingLogger();
    const off: NodeJS.ProcessEnv[] = [
      {},
      { OTEL_EXPORTER_OTLP_ENDPOINT: '' },
      { OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_HEADERS: 'a=b' },
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' },
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces', OTEL_SDK_DISABLED: 'TRUE' },
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'none' },
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'zipkin' },
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' },
    ];
    for (const env of off) {
      assert.equal(await openTracer({ env, log, serviceVersion: '1', instance: 'i' }), undefined, JSON.stringify(env));
    }
    assert.equal(Atomics.load(otelResolutions, 0), 0, 'an @opentelemetry package was loaded although tracing is off');
    assert.ok(lines.some((l) => / WARN .*OTEL_TRACES_EXPORTER/.test(l)), 'an exporter the proxy lacks is not reported');
    assert.ok(lines.some((l) => / WARN .*not a URL/.test(l)), 'a bad endpoint is not reported');

    // The counter does see the SDK being loaded, so the check above is not vacuous.
    const receiver = await startReceiver();
    receivers.push(receiver);
    const tracer = await tracerFor({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.base }, log);
    assert.ok(Atomics.load(otelResolutions, 0) > 0);
    await tracer.close();
  });

  it('exports one span per call, joined to the client trace when it has one, with the decision and outcome', async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const { log } = capturingLogger();
    const tracer = await tracerFor(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.base}/`,
        OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-token=s3cret%20value',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,team=platform',
      },
      log,
    );

    const joined = tracer.start('read_file', { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, tracestate: 'rojo=00f067aa0ba902b7' }, T0);
    const root = tracer.start('list_dir', undefined, T0 + 1);
    const denied = tracer.start('delete_file', { progressToken: 7 }, T0 + 2);
    const failed = tracer.start('run_query', {}, T0 + 3);
    const broken = tracer.start('send_mail', {}, T0 + 4);

    joined.end(callEvent({ upstreamMs: 12.5, outcome: 'result', approval: 'apr-42', counters: ['writes+1', 'bytes+300'] }), T0 + 40);
    joined.end(callEvent({ decision: 'deny', kind: 'deny_rule' }), T0 + 99); // a second end changes nothing
    root.end(callEvent({ tool: 'list_dir', outcome: 'result', upstreamMs: 2, dryRun: true, kind: 'rate_limit', rule: 'limit-lists' }), T0 + 10);
    denied.end(
      callEvent({ tool: 'delete_file', decision: 'deny', kind: 'deny_rule', rule: 'no-deletes', message: 'deleting files is not allowed', decisionMs: 1 }),
      T0 + 5,
    );
    failed.end(callEvent({ tool: 'run_query', outcome: 'tool_error', upstreamMs: 7 }), T0 + 20);
    broken.end(callEvent({ tool: 'send_mail', outcome: 'jsonrpc_error', error: 'mail server said no', upstreamMs: 4 }), T0 + 30);
    await tracer.close();

    const spans = receiver.spans();
    assert.deepEqual(spans.map((s) => s.name).sort(), ['tools/call delete_file', 'tools/call list_dir', 'tools/call read_file', 'tools/call run_query', 'tools/call send_mail']);
    for (const r of receiver.received) {
      assert.equal(r.path, '/v1/traces');
      assert.match(String(r.headers['content-type']), /^application\/json/);
      assert.equal(r.headers['x-collector-token'], 's3cret value');
    }
    const byName = new Map(spans.map((s) => [s.name, s]));
    const span = (tool: string) => byName.get(`tools/call ${tool}`)!;

    for (const s of spans) {
      assert.deepEqual(
        { name: s.resource['service.name'], version: s.resource['service.version'], instance: s.resource['service.instance.id'] },
        { name: 'intercept', version: '9.8.7', instance: 'testhost-4242-abc123' },
      );
      assert.equal(s.resource['deployment.environment.name'], 'test');
      assert.equal(s.resource.team, 'platform');
      assert.equal(s.kind, KIND_SERVER);
      const a = attrs(s.attributes);
      assert.equal(a['mcp.method.name'], 'tools/call');
      assert.equal(a['gen_ai.operation.name'], 'execute_tool');
      assert.equal(a['gen_ai.tool.name'], s.name.slice('tools/call '.length));
      assert.equal(a['intercept.session'], 'sess-1');
      assert.equal(a['intercept.args_hash'], 'a'.repeat(64));
    }

    // Joined to the client's trace; the propagation names the proxy's span as the parent.
    const j = span('read_file');
    assert.equal(j.traceId, CLIENT_TRACE);
    assert.equal(j.parentSpanId, CLIENT_SPAN);
    assert.equal(j.traceState, 'rojo=00f067aa0ba902b7');
    assert.notEqual(j.spanId, CLIENT_SPAN);
    assert.deepEqual(joined.propagation, { traceparent: `00-${CLIENT_TRACE}-${j.spanId}-01`, tracestate: 'rojo=00f067aa0ba902b7' });
    assert.equal(String(j.startTimeUnixNano), nanos(T0));
    assert.equal(String(j.endTimeUnixNano), nanos(T0 + 40));
    assert.deepEqual(j.status, { code: STATUS_OK });
    const ja = attrs(j.attributes);
    assert.equal(ja['intercept.decision'], 'allow');
    assert.equal(ja['intercept.outcome'], 'result');
    assert.equal(ja['intercept.upstream_ms'], 12.5);
    assert.equal(ja['intercept.decision_ms'], 3);
    assert.equal(ja['intercept.approval.id'], 'apr-42');
    assert.deepEqual(ja['intercept.counters'], ['writes+1', 'bytes+300']);
    assert.equal(ja['intercept.denial.kind'], undefined, 'the second end() changed the span');
    assert.equal(ja['error.type'], undefined);

    // No client context: a trace of its own, and the propagation starts from this span.
    const r = span('list_dir');
    assert.ok(!r.parentSpanId, 'a call without a traceparent got a parent');
    assert.match(r.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(r.traceId, CLIENT_TRACE);
    assert.deepEqual(root.propagation, { traceparent: `00-${r.traceId}-${r.spanId}-01` });
    assert.equal(String(r.startTimeUnixNano), nanos(T0 + 1));
    assert.equal(String(r.endTimeUnixNano), nanos(T0 + 10));
    const ra = attrs(r.attributes);
    assert.equal(ra['intercept.dry_run'], true);
    assert.equal(ra['intercept.denial.kind'], 'rate_limit');
    assert.equal(ra['intercept.rule'], 'limit-lists');
    assert.deepEqual(r.status, { code: STATUS_OK });

    // A denial is recorded, and is not an error.
    const d = span('delete_file');
    assert.ok(!d.parentSpanId);
    assert.notEqual(d.traceId, r.traceId);
    assert.deepEqual(d.status, { code: STATUS_OK });
    const da = attrs(d.attributes);
    assert.equal(da['intercept.decision'], 'deny');
    assert.equal(da['intercept.denial.kind'], 'deny_rule');
    assert.equal(da['intercept.rule'], 'no-deletes');
    assert.equal(da['intercept.denial.message'], 'deleting files is not allowed');
    assert.equal(da['intercept.outcome'], undefined);
    assert.equal(da['intercept.upstream_ms'], undefined);
    assert.equal(da['error.type'], undefined);
    assert.equal(da['intercept.dry_run'], undefined);
    assert.equal(String(d.endTimeUnixNano), nanos(T0 + 5));

    // A tool that answered isError: true, and a JSON-RPC error: errors, with the text.
    const f = span('run_query');
    assert.equal(f.status?.code, STATUS_ERROR);
    const fa = attrs(f.attributes);
    assert.equal(fa['error.type'], 'tool_error');
    assert.equal(fa['intercept.outcome'], 'tool_error');
    assert.equal(fa['intercept.upstream_ms'], 7);
    assert.equal(String(f.startTimeUnixNano), nanos(T0 + 3));
    assert.equal(String(f.endTimeUnixNano), nanos(T0 + 20));
    const b = span('send_mail');
    assert.deepEqual(b.status, { code: STATUS_ERROR, message: 'mail server said no' });
    assert.equal(attrs(b.attributes)['error.type'], 'jsonrpc_error');
  });

  it('takes the traces endpoint as given, the service name and signal headers from the environment, and warns that gRPC is not spoken', async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const { log, lines } = capturingLogger();
    const tracer = await tracerFor(
      {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.base}/custom/traces`,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-a=general,x-b=general',
        OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-b=traces',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_SERVICE_NAME: 'intercept-edge',
        OTEL_RESOURCE_ATTRIBUTES: 'service.name=ignored,service.instance.id=ignored-too',
      },
      log,
    );
    assert.ok(lines.some((l) => / WARN .*gRPC is not supported/.test(l)), lines.join(''));
    tracer.start('ping', undefined, T0).end(callEvent({ tool: 'ping', outcome: 'result' }), T0 + 1);
    await tracer.close();
    assert.equal(receiver.received.length, 1);
    const [got] = receiver.received;
    assert.equal(got!.path, '/custom/traces');
    assert.equal(got!.headers['x-a'], 'general');
    assert.equal(got!.headers['x-b'], 'traces');
    assert.equal(got!.resource['service.name'], 'intercept-edge');
    assert.equal(got!.resource['service.instance.id'], 'testhost-4242-abc123');
    assert.equal(got!.spans.length, 1);
  });

  it('ignores an invalid traceparent, follows a client that does not sample, and cuts hostile strings', async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const { log } = capturingLogger();
    const tracer = await tracerFor({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.base }, log);
    const invalid: Record<string, unknown>[] = [
      { traceparent: 'garbage', tracestate: 'rojo=1' },
      { traceparent: `00-${'0'.repeat(32)}-${CLIENT_SPAN}-01` },
      { traceparent: `00-${CLIENT_TRACE}-${'0'.repeat(16)}-01` },
      { traceparent: `ff-${CLIENT_TRACE}-${CLIENT_SPAN}-01` },
      { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01-extra` },
      { traceparent: `00-${CLIENT_TRACE.toUpperCase()}-${CLIENT_SPAN}-01` },
      { traceparent: 42 },
      { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01${' '.repeat(10_000)}` },
    ];
    const started = invalid.map((meta, i) => {
      const s = tracer.start(`bad_${i}`, meta, T0);
      assert.match(s.propagation.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, `meta ${i}`);
      assert.ok(!s.propagation.traceparent!.includes(CLIENT_TRACE), `meta ${i} was taken as a parent`);
      assert.equal(s.propagation.tracestate, undefined);
      return s;
    });
    started.forEach((s, i) => s.end(callEvent({ tool: `bad_${i}`, outcome: 'result' }), T0 + 1));

    // The client's span is not sampled: neither is the proxy's, and the server is told so.
    const unsampled = tracer.start('quiet', { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-00` }, T0);
    assert.match(unsampled.propagation.traceparent ?? '', new RegExp(`^00-${CLIENT_TRACE}-[0-9a-f]{16}-00$`));
    unsampled.end(callEvent({ tool: 'quiet', outcome: 'result' }), T0 + 1);

    const hugeTool = `t${'x'.repeat(200_000)}`;
    const hostile = tracer.start(hugeTool, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, tracestate: 'k=v,'.repeat(100_000) }, T0);
    hostile.end(
      callEvent({ tool: hugeTool, session: '😀'.repeat(100_000), decision: 'deny', kind: 'condition', message: 'm'.repeat(100_000), rule: 'r'.repeat(5000) }),
      T0 + 1,
    );
    const failing = tracer.start('huge_error', {}, T0);
    failing.end(callEvent({ tool: 'huge_error', outcome: 'transport_failure', error: 'e'.repeat(100_000) }), T0 + 1);
    await tracer.close();

    const spans = receiver.spans();
    assert.equal(spans.length, invalid.length + 2, 'the unsampled call was exported, or a span is missing');
    for (let i = 0; i < invalid.length; i++) {
      const s = spans.find((x) => x.name === `tools/call bad_${i}`);
      assert.ok(s, `no span for meta ${i}`);
      assert.ok(!s.parentSpanId, `meta ${i} gave the span a parent`);
      assert.notEqual(s.traceId, CLIENT_TRACE);
      assert.ok(!s.traceState);
    }
    const h = spans.find((s) => s.name.startsWith('tools/call tx'))!;
    assert.ok(h.name.length <= MAX_ATTRIBUTE_LENGTH, `span name of ${h.name.length}`);
    assert.equal(h.traceId, CLIENT_TRACE, 'a long tracestate lost the valid traceparent beside it');
    assert.ok(!h.traceState, 'an oversized tracestate was kept');
    const ha = attrs(h.attributes);
    for (const [key, value] of Object.entries(ha)) {
      if (typeof value === 'string') assert.ok(value.length <= MAX_ATTRIBUTE_LENGTH, `${key} has ${value.length} characters`);
    }
    assert.ok((ha['gen_ai.tool.name'] as string).startsWith('txxx'));
    const session = ha['intercept.session'] as string;
    assert.ok(session.length > 0 && /^(?:😀)+$/u.test(session), 'the session was cut inside a surrogate pair');
    const e = spans.find((s) => s.name === 'tools/call huge_error')!;
    assert.equal(e.status?.code, STATUS_ERROR);
    assert.ok(e.status!.message!.length <= MAX_ATTRIBUTE_LENGTH && e.status!.message!.startsWith('eee'));
  });

  it('with the receiver down, calls go on, close() finishes and every lost span is reported, in at most one warning a minute and a summary', async () => {
    const port = await freePort(); // nothing listens there
    const { log, lines } = capturingLogger();
    // Batches of two: three calls fail in two exports, the second within the minute of the first.
    const tracer = await tracerFor(
      { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_TIMEOUT: '300', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2' },
      log,
    );
    for (let i = 0; i < 3; i++) tracer.start('read_file', undefined, T0 + i).end(callEvent({ outcome: 'result' }), T0 + i + 1);
    await withTimeout(tracer.close(), 20_000, () => 'close() did not finish with the receiver down');
    await tracer.close(); // a second close is the same one
    const warned = lines.filter((l) => / WARN .*(cannot send traces|could not be reached)/.test(l));
    assert.equal(warned.length, 2, lines.join(''));
    assert.match(warned[0]!, /cannot send traces/);
    assert.match(warned[1]!, /could not be reached/);
    const lost = warned.map((l) => Number(/lostSpans=(\d+)/.exec(l)?.[1]));
    assert.equal(lost[0]! + lost[1]!, 3, lines.join(''));
    for (const l of warned) assert.match(l, new RegExp(`127\\.0\\.0\\.1:${port}`));
  });

  it('with a receiver that never answers, close() gives up after its cap', async () => {
    const receiver = await startReceiver(true);
    receivers.push(receiver);
    const { log, lines } = capturingLogger();
    const tracer = await tracerFor({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.base, OTEL_EXPORTER_OTLP_TIMEOUT: '600000', OTEL_BSP_EXPORT_TIMEOUT: '600000' }, log);
    tracer.start('slow', undefined, T0).end(callEvent({ tool: 'slow', outcome: 'result' }), T0 + 1);
    await withTimeout(tracer.close(), CLOSE_CAP_MS + 15_000, () => 'close() hung on a receiver that never answers');
    assert.ok(lines.some((l) => / WARN .*gave up sending the last traces/.test(l)), lines.join(''));
  });
});
