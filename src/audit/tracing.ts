// OpenTelemetry traces: one span per tools/call, sent over OTLP/HTTP when the standard OTEL_*
// variables ask for it. A proxy without tracing loads none of the SDK: every @opentelemetry
// import below is a type (erased) or a dynamic import() made only once tracing is configured.
//
// The SDK reads its variables from process.env, but the proxy hands its environment in (`env`),
// so they are read here, with the specification's rules, and passed to the SDK explicitly: the
// environment a caller passes is the one obeyed. Hence `@opentelemetry/sdk-trace` (the
// provider without the environment fallbacks that `sdk-trace-base` wraps around it). What is
// not read here, the exporter still reads from process.env itself (TLS certificate files).
//
// Only OTLP over HTTP with JSON bodies (`@opentelemetry/exporter-trace-otlp-http`): every OTLP
// receiver accepts JSON on /v1/traces, it needs no protobuf encoder, and what is sent can be
// read by eye and by a test.
//
// Nothing is registered globally (no global provider, propagator, context manager or diag
// logger) and nothing is patched: the spans are the proxy's own, made with explicit contexts.
import type { Attributes, Span } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, Sampler, SpanExporter } from '@opentelemetry/sdk-trace';
import type { Logger } from '../log.js';
import type { CallOutcome, CallSpan, CallTracer, ToolCallEvent } from './event.js';

export interface TracerOptions {
  /** Where the OTEL_* variables are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  log: Logger;
  /** The resource's service.version. */
  serviceVersion: string;
  /** The resource's service.instance.id: the audit trail's instance name, so a span and the
   * trail's record of the same call name the same process. */
  instance: string;
}

export const DEFAULT_SERVICE_NAME = 'intercept';
/** Attribute strings, the span name and the status text are cut to this many UTF-16 units:
 * a tool name or an error text comes from the agent or the server and could be megabytes. */
export const MAX_ATTRIBUTE_LENGTH = 1024;
/** close() waits at most this long for the last spans to go, whatever the exporter's timeout. */
export const CLOSE_CAP_MS = 3_000;
/** A failing receiver is reported at most this often. */
const WARN_EVERY_MS = 60_000;
/** The exporter's default (OTEL_EXPORTER_OTLP_TIMEOUT). */
const DEFAULT_EXPORT_TIMEOUT_MS = 10_000;
/** A traceparent is 55 characters in version 00; later versions may append fields. */
const MAX_TRACEPARENT_LENGTH = 512;
/** W3C lets a tracestate be cut past 512 characters; a longer one is not worth parsing. */
const MAX_TRACESTATE_LENGTH = 4096;
const MAX_COUNTERS = 64;
const ERROR_OUTCOMES: ReadonlySet<CallOutcome> = new Set(['tool_error', 'jsonrpc_error', 'transport_failure', 'timeout']);

type Env = NodeJS.ProcessEnv;

/** A variable's value; empty counts as unset, as the specification says. */
function read(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

/** A positive number, or undefined (a bad value is reported and ignored). */
function readPositive(env: Env, name: string, log: Logger, integer = false): number | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (Number.isFinite(n) && n > 0 && (!integer || Number.isInteger(n))) return n;
  log.warn(`${name} is not a positive ${integer ? 'integer' : 'number'}; it is ignored`, { value: cut(raw, 64) });
  return undefined;
}

/** The traces endpoint: the signal's own variable as given, or the general one with
 * v1/traces appended. */
function tracesUrl(env: Env, log: Logger): string | undefined {
  const own = read(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const general = read(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const url = own ?? (general === undefined ? undefined : `${general}${general.endsWith('/') ? '' : '/'}v1/traces`);
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    log.warn('the OTLP endpoint is not a URL; traces are off', { endpoint: cut(url, 256) });
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    log.warn('the OTLP endpoint must be an http or https URL; traces are off', { endpoint: cut(url, 256) });
    return undefined;
  }
  return parsed.href;
}

/** OTEL_RESOURCE_ATTRIBUTES: `key=value,…`, percent-encoded; on any error the whole variable is
 * discarded (the specification's rule). */
function resourceAttributes(env: Env, log: Logger): Record<string, string> {
  const raw = read(env, 'OTEL_RESOURCE_ATTRIBUTES');
  if (raw === undefined) return {};
  const out: Record<string, string> = {};
  for (const entry of raw.split(',')) {
    if (entry.trim() === '') continue;
    const parts = entry.split('=');
    const key = parts[0]?.trim() ?? '';
    if (parts.length !== 2 || key === '') {
      log.warn('OTEL_RESOURCE_ATTRIBUTES is not key=value,… with , and = percent-encoded; it is ignored');
      return {};
    }
    try {
      out[cut(decodeURIComponent(key), 255)] = cut(decodeURIComponent(parts[1]!.trim()), MAX_ATTRIBUTE_LENGTH);
    } catch {
      log.warn('OTEL_RESOURCE_ATTRIBUTES has a bad percent-encoding; it is ignored');
      return {};
    }
  }
  return out;
}

/** Whether the variables ask for traces at all; false when they name no endpoint, disable the
 * SDK, or choose no exporter (or only ones the proxy does not have). */
function tracingWanted(env: Env, log: Logger): boolean {
  if (read(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') === undefined && read(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') === undefined) return false;
  if (read(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return false;
  const exporters = (read(env, 'OTEL_TRACES_EXPORTER') ?? 'otlp')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  if (exporters.includes('none')) return false;
  const others = exporters.filter((s) => s !== 'otlp');
  if (!exporters.includes('otlp')) {
    log.warn('OTEL_TRACES_EXPORTER names no exporter the proxy has (only otlp); traces are off', { value: cut(others.join(','), 128) });
    return false;
  }
  if (others.length > 0) log.warn('OTEL_TRACES_EXPORTER: only otlp is supported; the others are ignored', { ignored: cut(others.join(','), 128) });
  return true;
}

/** OTLP/HTTP with JSON is all the proxy sends; say so when something else was asked for. */
function checkProtocol(env: Env, log: Logger, endpoint: string): void {
  const protocol = (read(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? read(env, 'OTEL_EXPORTER_OTLP_PROTOCOL'))?.toLowerCase();
  if (protocol === undefined || protocol === 'http/json') return;
  if (protocol === 'grpc') {
    log.warn('OTLP over gRPC is not supported, only over HTTP: traces are sent as OTLP/HTTP JSON', { endpoint });
  } else if (protocol === 'http/protobuf') {
    log.info('traces are sent as OTLP/HTTP JSON (http/json), not http/protobuf; OTLP receivers accept both', { endpoint });
  } else {
    log.warn('unknown OTLP protocol; traces are sent as OTLP/HTTP JSON', { protocol: cut(protocol, 64), endpoint });
  }
}

/** At most `max` UTF-16 units, never ending inside a surrogate pair. */
function cut(text: string, max = MAX_ATTRIBUTE_LENGTH): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

/** ms since the epoch (possibly fractional) as [seconds, nanoseconds], exactly: a plain number
 * would be taken by the SDK for a performance.now() reading when it is old enough. */
function hrTime(ms: number): [number, number] {
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.round((ms - seconds * 1000) * 1e6)];
}

type Sdk = {
  api: typeof import('@opentelemetry/api');
  core: typeof import('@opentelemetry/core');
  resources: typeof import('@opentelemetry/resources');
  trace: typeof import('@opentelemetry/sdk-trace');
  otlp: typeof import('@opentelemetry/exporter-trace-otlp-http');
};

/** OTEL_TRACES_SAMPLER and its argument; the default is parentbased_always_on. */
function sampler(sdk: Sdk, env: Env, log: Logger): Sampler {
  const { AlwaysOnSampler, AlwaysOffSampler, ParentBasedSampler, TraceIdRatioBasedSampler } = sdk.trace;
  const name = read(env, 'OTEL_TRACES_SAMPLER')?.toLowerCase() ?? 'parentbased_always_on';
  const ratio = () => {
    const raw = read(env, 'OTEL_TRACES_SAMPLER_ARG');
    const n = raw === undefined ? 1 : Number(raw);
    if (Number.isFinite(n) && n >= 0 && n <= 1) return n;
    log.warn('OTEL_TRACES_SAMPLER_ARG is not a ratio between 0 and 1; 1 is used', { value: cut(raw ?? '', 64) });
    return 1;
  };
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio());
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio()) });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    default:
      log.warn('unknown OTEL_TRACES_SAMPLER; parentbased_always_on is used', { value: cut(name, 64) });
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** The exporter, watched: the SDK reports a failed export only through its global diag logger,
 * which the proxy leaves silent; here a failure becomes one warning a minute at most, and
 * nothing ever reaches the caller. */
class ReportingExporter implements SpanExporter {
  /** Spans lost since the last warning. */
  private lost = 0;
  private lastWarnAt = -Infinity;
  private failing = false;

  constructor(
    private readonly inner: SpanExporter,
    private readonly codes: typeof import('@opentelemetry/core').ExportResultCode,
    private readonly log: Logger,
    private readonly endpoint: string,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const finish = (result: ExportResult) => {
      if (result.code === this.codes.SUCCESS) {
        if (this.failing) this.log.info('traces are being sent again', { endpoint: this.endpoint });
        this.failing = false;
      } else {
        this.failed(spans.length, result.error);
      }
      done(result);
    };
    try {
      this.inner.export(spans, finish);
    } catch (err) {
      finish({ code: this.codes.FAILED, error: err as Error });
    }
  }

  private failed(count: number, error: Error | undefined): void {
    this.failing = true;
    this.lost += count;
    const now = Date.now();
    if (now - this.lastWarnAt < WARN_EVERY_MS) return;
    this.lastWarnAt = now;
    this.log.warn('cannot send traces to the OTLP endpoint; their spans are dropped', {
      endpoint: this.endpoint,
      error: cut(error?.message ?? 'export failed', 256),
      lostSpans: this.lost,
    });
    this.lost = 0;
  }

  /** Spans lost since the last warning, for the summary at close. */
  takeUnreported(): number {
    const n = this.lost;
    this.lost = 0;
    return n;
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

const NO_SPAN: CallSpan = { propagation: {}, end() {} };

/** The proxy's call tracer, or undefined when the OTEL_* variables do not ask for traces (then
 * no OpenTelemetry package is loaded). */
export async function openTracer(opts: TracerOptions): Promise<CallTracer | undefined> {
  const env = opts.env ?? process.env;
  const { log } = opts;
  if (!tracingWanted(env, log)) return undefined;
  const url = tracesUrl(env, log);
  if (url === undefined) return undefined;
  checkProtocol(env, log, url);

  let sdk: Sdk;
  try {
    const [api, core, resources, trace, otlp] = await Promise.all([
      import('@opentelemetry/api'),
      import('@opentelemetry/core'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-trace'),
      import('@opentelemetry/exporter-trace-otlp-http'),
    ]);
    sdk = { api, core, resources, trace, otlp };
  } catch (err) {
    log.warn('traces are configured but the OpenTelemetry packages cannot be loaded; traces are off', { error: (err as Error).message });
    return undefined;
  }
  const { api, core } = sdk;

  // Headers: the general variable's, then the signal's over them, as the exporter combines them.
  const headers = {
    ...core.parseKeyPairsIntoRecord(read(env, 'OTEL_EXPORTER_OTLP_HEADERS')),
    ...core.parseKeyPairsIntoRecord(read(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS')),
  };
  const timeoutMillis =
    readPositive(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', log) ?? readPositive(env, 'OTEL_EXPORTER_OTLP_TIMEOUT', log) ?? DEFAULT_EXPORT_TIMEOUT_MS;
  type ExporterConfig = NonNullable<ConstructorParameters<typeof sdk.otlp.OTLPTraceExporter>[0]>;
  const config: ExporterConfig = { url, headers, timeoutMillis };
  const compression = (read(env, 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION') ?? read(env, 'OTEL_EXPORTER_OTLP_COMPRESSION'))?.toLowerCase();
  if (compression === 'gzip' || compression === 'none') config.compression = compression as ExporterConfig['compression'];
  else if (compression !== undefined) log.warn('OTLP compression must be gzip or none; none is used', { value: cut(compression, 64) });

  const endpoint = cut(url, 256);
  const exporter = new ReportingExporter(new sdk.otlp.OTLPTraceExporter(config), core.ExportResultCode, log, endpoint);
  const envResource = resourceAttributes(env, log);
  // The process's own facts (version, instance) are the proxy's to state; the name is the
  // operator's to choose.
  const resource = sdk.resources.resourceFromAttributes({
    ...envResource,
    'service.name': read(env, 'OTEL_SERVICE_NAME') ?? envResource['service.name'] ?? DEFAULT_SERVICE_NAME,
    'service.version': opts.serviceVersion,
    'service.instance.id': opts.instance,
  });
  const provider = new sdk.trace.TracerProvider({
    resource,
    sampler: sampler(sdk, env, log),
    spanProcessors: [
      new sdk.trace.BatchSpanProcessor({
        exporter,
        scheduledDelayMillis: readPositive(env, 'OTEL_BSP_SCHEDULE_DELAY', log),
        exportTimeoutMillis: readPositive(env, 'OTEL_BSP_EXPORT_TIMEOUT', log),
        maxQueueSize: readPositive(env, 'OTEL_BSP_MAX_QUEUE_SIZE', log, true),
        maxExportBatchSize: readPositive(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', log, true),
      }),
    ],
  });
  const tracer = provider.getTracer('intercept', opts.serviceVersion);
  const propagator = new core.W3CTraceContextPropagator();
  const { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter } = api;
  log.info('sending traces over OTLP/HTTP', { endpoint });

  const endSpan = (span: Span, event: ToolCallEvent, endedAt: number): void => {
    const attributes: Attributes = {
      'intercept.decision': event.decision,
      'intercept.session': cut(event.session),
      'intercept.args_hash': cut(event.argsHash, 128),
      'intercept.decision_ms': event.decisionMs,
    };
    // The semantic conventions' end user: only a caller the transport identified.
    if (event.subject !== undefined) attributes['enduser.id'] = cut(event.subject);
    if (event.kind !== undefined) attributes['intercept.denial.kind'] = event.kind;
    if (event.rule !== undefined) attributes['intercept.rule'] = cut(event.rule);
    if (event.message !== undefined) attributes['intercept.denial.message'] = cut(event.message);
    if (event.dryRun) attributes['intercept.dry_run'] = true;
    if (event.outcome !== undefined) attributes['intercept.outcome'] = event.outcome;
    if (event.upstreamMs !== undefined) attributes['intercept.upstream_ms'] = event.upstreamMs;
    if (event.approval !== undefined) attributes['intercept.approval.id'] = cut(event.approval, 256);
    if (event.counters !== undefined) attributes['intercept.counters'] = event.counters.slice(0, MAX_COUNTERS).map((c) => cut(c, 256));
    // A denial is the proxy doing its job, not a failure of the span's operation: its status is
    // OK and its decision is in the attributes. A failure of the forwarded call is an error,
    // with error.type as the MCP conventions give it (tool_error for isError: true).
    if (event.outcome !== undefined && ERROR_OUTCOMES.has(event.outcome)) {
      attributes['error.type'] = event.outcome;
      span.setAttributes(attributes);
      span.setStatus({ code: SpanStatusCode.ERROR, message: cut(event.error ?? event.outcome) });
    } else {
      span.setAttributes(attributes);
      span.setStatus({ code: SpanStatusCode.OK });
    }
    span.end(hrTime(endedAt));
  };

  let closing: Promise<void> | undefined;
  return {
    start(tool, meta, startedAt) {
      try {
        const carrier: Record<string, string> = {};
        const traceparent = meta?.traceparent;
        const tracestate = meta?.tracestate;
        if (typeof traceparent === 'string' && traceparent.length <= MAX_TRACEPARENT_LENGTH) {
          carrier.traceparent = traceparent;
          if (typeof tracestate === 'string' && tracestate.length <= MAX_TRACESTATE_LENGTH) carrier.tracestate = tracestate;
        }
        // An invalid traceparent leaves the root context: the span starts a trace of its own.
        const parent = propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
        // SERVER: the span is the proxy's handling of a request its client sent it (the MCP
        // conventions' server span); the upstream server's spans, joined through
        // `propagation`, are its children.
        const span = tracer.startSpan(
          cut(`tools/call ${tool}`),
          {
            kind: SpanKind.SERVER,
            startTime: hrTime(startedAt),
            attributes: { 'mcp.method.name': 'tools/call', 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': cut(tool) },
          },
          parent,
        );
        const propagation: Record<string, string> = {};
        propagator.inject(api.trace.setSpan(ROOT_CONTEXT, span), propagation, defaultTextMapSetter);
        let ended = false;
        return {
          propagation,
          end(event, endedAt) {
            if (ended) return;
            ended = true;
            try {
              endSpan(span, event, endedAt);
            } catch (err) {
              log.debug('a span could not be ended', { error: (err as Error).message });
            }
          },
        };
      } catch (err) {
        // An observer's bug must not reach the call it observes.
        log.debug('a span could not be started', { error: (err as Error).message });
        return NO_SPAN;
      }
    },

    close() {
      closing ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        const capped = new Promise<'capped'>((resolve) => {
          timer = setTimeout(() => resolve('capped'), CLOSE_CAP_MS);
          timer.unref();
        });
        const drained = (async () => {
          // A failed last export rejects the shutdown (the exporter counted it; its summary
          // follows) before the exporter is told to wait for the sends still under way, so
          // that wait is asked for here too: every span is then counted as sent or lost.
          await provider.shutdown().catch(() => {});
          await exporter.forceFlush().catch(() => {});
          return 'done' as const;
        })();
        const how = await Promise.race([drained, capped]);
        clearTimeout(timer);
        if (how === 'capped') log.warn(`gave up sending the last traces after ${CLOSE_CAP_MS} ms`, { endpoint });
        const lost = exporter.takeUnreported();
        if (lost > 0) log.warn('spans were dropped because the OTLP endpoint could not be reached', { endpoint, lostSpans: lost });
      })();
      return closing;
    },
  };
}
