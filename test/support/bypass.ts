// What the bypass tests share. A Front is the real CLI driven with raw text, as a hostile client
// would drive it: on stdio (a line), or on the HTTP listener (a POST body) in a 2025 session or
// as 2026-07-28 stateless requests; the server behind it sits behind the tee, so every exchange
// also says what the server really received. A Tally counts what one test sent and what leaked,
// into the suite's figures, and fails the test on any leak.
//
// Exports:
//   Era, FrontKind, Front, Reply, SendOptions, FrontOptions   a way in, and what one message
//                                          sent through it got
//   openFront(kind, policy, logFile, opts?)   the proxy on stdio, or the listener in one era,
//                                          with a tee'd server (server-everything, or the
//                                          2026-capable fixture for 2026-07-28, unless told)
//   asHttp(front), asStdio(front), stdioReceived(front)   what only one kind of front can do
//                                          (an HTTP front opens streams and siblings: more
//                                          agents on the same listener)
//   Tally, withTally(denied, body)        counts inputs and leaks; adds the figures once per test
//   readsAsCallTo(line, names?)           whether an upstream line is a call to one of `names`,
//                                          read exactly or as a case-insensitive decoder reads it
//   rogueServer()                         test/fixtures/rogue-server.ts, the server that misbehaves on cue
//   teed(logFile, server)                 a server behind the tee, as a ServerCommand
//   MODERN_META                           the `_meta` a 2026-07-28 request of the raw client carries
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { encodeHeaderValue } from '../../src/jsonrpc/eras.js';
import { addFigure } from './figures.js';
import { MessageStream, request, startListener, type Listener } from './listener.js';
import { initializeBody, isRecord, MODERN, modernBody, type Json } from './messages.js';
import { ROOT } from './paths.js';
import { startProxy, type RawProxy } from './raw-proxy.js';
import { readLogLines, servers, teeCommand, type ServerCommand } from './servers.js';

export type Era = '2025' | '2026';
export type FrontKind = 'stdio' | 'http' | 'http-2026';

const ROGUE_SERVER = join(ROOT, 'test', 'fixtures', 'rogue-server.ts');

/** test/fixtures/rogue-server.ts: answers the proxy's own requests with garbage and forges
 * answers, on cue. */
export function rogueServer(): ServerCommand {
  return { command: process.execPath, args: ['--import', 'tsx', ROGUE_SERVER] };
}

/** `server` behind the tee, logging every line it receives to `logFile`. */
export function teed(logFile: string, server: ServerCommand): ServerCommand {
  const [command, ...args] = teeCommand(logFile, [server.command, ...server.args]);
  return { command: command!, args, env: server.env };
}

/** The `_meta` of a 2026-07-28 request from the raw client (as the v2 client sends it). */
export const MODERN_META = (modernBody(0, 'ping').params as Json)._meta as Json;

/** The `_meta` member a barrier ping carries, so it can be told from the test's own pings. */
const BARRIER = 'bypass-test/barrier';

// ------------------------------------------------------------------------------ leaks

const foldKey = (k: string) => k.normalize('NFKC').toLowerCase();

/** A member read the way a case-insensitive decoder reads it (Go's encoding/json: the last of
 * the names that fold alike wins). */
function member(obj: Json, name: string): unknown {
  let found: unknown;
  for (const [k, v] of Object.entries(obj)) if (foldKey(k) === name) found = v;
  return found;
}

/** Whether `line` (one message the upstream received) calls one of `names` (any tool when
 * `names` is not given): read exactly, or with member names and the method folded by case and
 * Unicode compatibility, as a lenient server would read it. */
export function readsAsCallTo(line: unknown, names?: ReadonlySet<string>): boolean {
  if (!isRecord(line)) return false;
  const named = (name: unknown) => typeof name === 'string' && (names === undefined || names.has(name));
  if (line.method === 'tools/call' && isRecord(line.params) && named(line.params.name)) return true;
  const method = member(line, 'method');
  if (typeof method !== 'string' || foldKey(method).replace(/\s/g, '') !== 'tools/call') return false;
  const params = member(line, 'params');
  return isRecord(params) && named(member(params, 'name'));
}

// ------------------------------------------------------------------------------ the tally

/** One test's count of the distinct inputs it sent and of the denied calls that reached the
 * upstream anyway. */
export class Tally {
  private readonly inputs = new Set<string>();
  private readonly denied: ReadonlySet<string>;
  leaked = 0;

  constructor(denied: Iterable<string>) {
    this.denied = new Set(denied);
  }

  get tried(): number {
    return this.inputs.size;
  }

  /** Counts one input (by its bytes: the same text sent twice is one input). */
  input(text: string | Buffer): void {
    this.inputs.add(typeof text === 'string' ? text : `bytes:${text.toString('base64')}`);
  }

  /** Counts the lines among `forwarded` that call a denied tool, and fails on any. */
  check(forwarded: unknown[], context: string): void {
    const leaks = forwarded.filter((line) => readsAsCallTo(line, this.denied));
    this.leak(leaks.length);
    assert.deepEqual(leaks, [], `a denied call reached the upstream: ${context}`);
  }

  /** For a message the proxy must stop whatever tool it names: fails unless nothing reached
   * the upstream, counting any call that did as a leak. */
  nothingForwarded(reply: Reply, context: string): void {
    this.leak(reply.forwarded.filter((line) => readsAsCallTo(line)).length);
    assert.deepEqual(reply.forwarded, [], `nothing may reach the upstream: ${context}`);
  }

  /** Counts leaks found some other way (a limit passed, a cancelled call that ran). */
  leak(n: number): void {
    this.leaked += n;
  }

  /** Sends one input through `front`, counts it, and checks that nothing denied got through. */
  async send(front: Front, text: string | Buffer, opts: SendOptions = {}): Promise<Reply> {
    this.input(text);
    const reply = await front.send(text, opts);
    this.check(reply.forwarded, `${front.label}: ${shown(text)}`);
    return reply;
  }
}

/** Runs a test body with a Tally; its figures are added once, whatever the outcome, and any
 * leak fails the test. */
export async function withTally<T>(denied: Iterable<string>, body: (tally: Tally) => Promise<T>): Promise<T> {
  const tally = new Tally(denied);
  try {
    return await body(tally);
  } finally {
    addFigure('bypass cases tried', tally.tried);
    addFigure('denied calls forwarded', tally.leaked);
    assert.equal(tally.leaked, 0, 'denied calls forwarded');
  }
}

/** An input as a failure message shows it: cut short, bytes as text. */
function shown(text: string | Buffer): string {
  const s = typeof text === 'string' ? text : `<${text.length} bytes> ${text.subarray(0, 120).toString('utf8')}`;
  return JSON.stringify(s.length > 300 ? `${s.slice(0, 300)}… (${s.length} chars)` : s);
}

// ------------------------------------------------------------------------------ fronts

/** What one message sent through a front got. */
export interface Reply {
  /** The HTTP status (undefined on stdio). */
  status?: number;
  /** What came back: on stdio every message that arrived until a barrier after the awaited
   * answers; over HTTP the whole response body. */
  messages: Json[];
  /** What the upstream received meanwhile (the barrier left out), parsed where it is JSON. */
  forwarded: unknown[];
  /** The same, as the raw lines the upstream read. */
  forwardedRaw: string[];
}

export interface SendOptions {
  /** stdio: the ids whose answers to wait for (null for a parse error); by default guessed
   * from the text (expectedIds). `batch` waits for one array. */
  expect?: unknown[] | 'batch';
  /** HTTP: headers to send instead of (or beside) the derived ones. */
  headers?: Record<string, string>;
  /** How long to wait for each answer. */
  timeoutMs?: number;
  /** 2025 HTTP: send without the session's headers. */
  noSession?: boolean;
  /** HTTP: send the body in 1 MiB chunks without a Content-Length. */
  chunked?: boolean;
}

export interface Front {
  readonly kind: FrontKind;
  readonly label: string;
  readonly era: Era;
  /** One message as raw text: a line on stdio (a newline is added), a POST body over HTTP. */
  send(text: string | Buffer, opts?: SendOptions): Promise<Reply>;
  /** The JSON text of a request in this front's era (2026-07-28: with `_meta`). */
  requestText(id: unknown, method: string, params?: Json): string;
  /** A tools/call as JSON text. */
  callText(id: unknown, name: unknown, args?: unknown): string;
  /** The text of a request whose params are given as raw JSON text (for duplicate members and
   * escapes JSON.stringify cannot write); `idText` and `paramsText` go in as they are. */
  rawRequest(idText: string, methodText: string, paramsText: string): string;
  /** A ping through the upstream: once it is answered, everything sent before it has reached
   * the upstream. */
  barrier(): Promise<void>;
  /** The raw lines the upstream received so far. */
  upstreamLines(): Promise<string[]>;
  /** Where the upstream's log stands now, for `forwardedSince`. */
  mark(): Promise<number>;
  /** After a barrier: what the upstream received since `mark`, barriers left out. */
  forwardedSince(mark: number): Promise<Pick<Reply, 'forwarded' | 'forwardedRaw'>>;
  /** Whether the proxy is still running. */
  running(): boolean;
  stderr(): string;
  close(): Promise<void>;
}

export interface FrontOptions {
  /** Proxy flags (before `--`). */
  flags?: string[];
  /** The server behind the tee (default: server-everything, or the 2026-capable fixture). */
  server?: ServerCommand;
  /** 2026-07-28: the client name in `_meta` (the session key of stateless clients). */
  client?: string;
  /** stdio and 2025 HTTP: false leaves the session uninitialized (default true). */
  initialize?: boolean;
}

/** Opens the proxy in front of a tee'd server, on stdio or as a listener in one era. */
export async function openFront(kind: FrontKind, policy: string, logFile: string, opts: FrontOptions = {}): Promise<Front> {
  const server = teed(logFile, opts.server ?? (kind === 'http-2026' ? servers.modern() : servers.everything()));
  if (kind === 'stdio') return StdioFront.open(policy, logFile, server, opts);
  return HttpFront.open(kind, policy, logFile, server, opts);
}

let barriers = 0;

/** Whether an upstream line is a barrier ping. */
function isBarrier(line: unknown): boolean {
  return isRecord(line) && line.method === 'ping' && isRecord(line.params) && isRecord(line.params._meta) && BARRIER in line.params._meta;
}

function parsed(lines: string[]): unknown[] {
  return lines.map((l) => {
    try {
      return JSON.parse(l) as unknown;
    } catch {
      return l;
    }
  });
}

abstract class BaseFront implements Front {
  abstract readonly kind: FrontKind;
  abstract readonly label: string;
  abstract readonly era: Era;

  constructor(protected readonly logFile: string) {}

  abstract barrier(): Promise<void>;
  abstract running(): boolean;
  abstract stderr(): string;
  abstract close(): Promise<void>;
  protected abstract exchange(text: string | Buffer, opts: SendOptions): Promise<{ status?: number; messages: Json[] }>;

  upstreamLines(): Promise<string[]> {
    return readLogLines(this.logFile);
  }

  async mark(): Promise<number> {
    return (await this.upstreamLines()).length;
  }

  async forwardedSince(mark: number): Promise<Pick<Reply, 'forwarded' | 'forwardedRaw'>> {
    await this.barrier();
    const raw = (await this.upstreamLines()).slice(mark);
    const all = parsed(raw);
    const keep = all.map((line) => !isBarrier(line));
    return { forwarded: all.filter((_, i) => keep[i]), forwardedRaw: raw.filter((_, i) => keep[i]) };
  }

  async send(text: string | Buffer, opts: SendOptions = {}): Promise<Reply> {
    const mark = await this.mark();
    const { status, messages } = await this.exchange(text, opts);
    return { status, messages, ...(await this.forwardedSince(mark)) };
  }

  protected meta(): Json | undefined {
    return undefined;
  }

  requestText(id: unknown, method: string, params: Json = {}): string {
    const meta = this.meta();
    const withMeta = meta ? { ...params, _meta: { ...meta, ...(isRecord(params._meta) ? params._meta : {}) } } : params;
    return JSON.stringify(id === undefined ? { jsonrpc: '2.0', method, params: withMeta } : { jsonrpc: '2.0', id, method, params: withMeta });
  }

  callText(id: unknown, name: unknown, args: unknown = {}): string {
    return this.requestText(id, 'tools/call', { name, arguments: args } as Json);
  }

  rawRequest(idText: string, methodText: string, paramsText: string): string {
    const meta = this.meta();
    // The `_meta` goes first, so the params' own members (duplicates too) keep their order.
    const params = meta ? `{"_meta":${JSON.stringify(meta)}${paramsText === '{}' ? '' : `,${paramsText.slice(1, -1)}`}}` : paramsText;
    return `{"jsonrpc":"2.0","id":${idText},"method":${methodText},"params":${params}}`;
  }

  protected barrierParams(): Json {
    return { _meta: { ...(this.meta() ?? {}), [BARRIER]: ++barriers } };
  }
}

/** The ids a stdio client waits for after sending `text`: the request's id; null for text that
 * is not JSON or a message the proxy cannot answer by id; none for notifications and answers. */
function expectedIds(text: string): unknown[] | 'batch' {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [null];
  }
  // A batch is answered with one error per request in it, or one error when it has none.
  if (Array.isArray(value)) return value.some((m) => isRecord(m) && typeof m.method === 'string' && isId(m.id)) ? 'batch' : [null];
  if (!isRecord(value)) return [null];
  const usable = isId(value.id);
  if ('method' in value) return !('id' in value) ? [] : [usable ? value.id : null];
  if (('result' in value) !== ('error' in value)) return [];
  return [usable ? value.id : null];
}

const isId = (id: unknown) => typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));

class StdioFront extends BaseFront {
  readonly kind = 'stdio';
  readonly label = 'stdio';
  readonly era = '2025';
  /** Every message an exchange took off the proxy's stdout, in order. */
  readonly history: Json[] = [];

  private constructor(
    readonly proxy: RawProxy,
    logFile: string,
  ) {
    super(logFile);
  }

  static async open(policy: string, logFile: string, server: ServerCommand, opts: FrontOptions): Promise<StdioFront> {
    const proxy = startProxy(['-c', policy, ...(opts.flags ?? []), '--', server.command, ...server.args]);
    const front = new StdioFront(proxy, logFile);
    if (opts.initialize === false) return front;
    await proxy.initialize();
    await front.barrier();
    proxy.drain();
    return front;
  }

  protected async exchange(text: string | Buffer, opts: SendOptions): Promise<{ messages: Json[] }> {
    const bytes = typeof text === 'string' ? Buffer.from(text) : text;
    this.proxy.write(Buffer.concat([bytes, Buffer.from('\n')]));
    const expect = opts.expect ?? expectedIds(bytes.toString('utf8'));
    const messages: Json[] = [];
    if (expect === 'batch') {
      messages.push(await this.proxy.waitFor((m) => Array.isArray(m), opts.timeoutMs, 'the batch answer'));
    } else {
      for (const id of expect) messages.push(await this.proxy.response(id, opts.timeoutMs));
    }
    await this.barrier();
    messages.push(...(this.proxy.drain() as Json[]));
    this.history.push(...messages);
    return { messages };
  }

  async barrier(): Promise<void> {
    await this.proxy.request('ping', this.barrierParams());
  }

  running(): boolean {
    return this.proxy.running;
  }

  stderr(): string {
    return this.proxy.stderr;
  }

  async close(): Promise<void> {
    await this.proxy.close();
  }
}

/** A body sent in 1 MiB pieces, without a Content-Length. */
function chunkedBody(body: string | Buffer): ReadableStream<Uint8Array> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 1024 * 1024) controller.enqueue(bytes.subarray(i, i + 1024 * 1024));
      controller.close();
    },
  });
}

/** POSTs `body`; the answer is read as it arrives. */
async function post(url: string, body: string | Buffer, headers: Record<string, string>, chunked = false): Promise<MessageStream> {
  const init = { method: 'POST', body: chunked ? chunkedBody(body) : body, duplex: 'half', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers } };
  const res = await fetch(url, init as RequestInit);
  return new MessageStream(res.status, res.headers, res.body);
}

class HttpFront extends BaseFront {
  readonly label: string;
  readonly era: Era;
  private session: Record<string, string> = {};

  private constructor(
    readonly kind: FrontKind,
    readonly listener: Listener,
    logFile: string,
    private readonly client: string,
    /** Whether closing this front stops the listener (not for a sibling's). */
    private readonly owner: boolean,
  ) {
    super(logFile);
    this.era = kind === 'http-2026' ? '2026' : '2025';
    this.label = kind === 'http-2026' ? `http ${MODERN}` : 'http 2025';
  }

  static async open(kind: FrontKind, policy: string, logFile: string, server: ServerCommand, opts: FrontOptions): Promise<HttpFront> {
    const listener = await startListener(policy, server, { flags: opts.flags });
    const front = new HttpFront(kind, listener, logFile, opts.client ?? 'raw', true);
    if (kind === 'http' && opts.initialize === false) return front;
    return front.start();
  }

  /** Another agent on the same listener: a new 2025 session, or a 2026-07-28 client of
   * another name (its own session key, so its own upstream). Its server logs to the same
   * file, which its tee starts afresh: open every sibling before counting anything. */
  sibling(kind: FrontKind, client = 'raw'): Promise<HttpFront> {
    return new HttpFront(kind, this.listener, this.logFile, client, false).start();
  }

  /** Opens the session (2025) and starts the upstream (a 2026 client key's first request
   * does), before anything is counted. */
  private async start(): Promise<HttpFront> {
    if (this.era === '2025') await this.initialize();
    else await this.barrier();
    return this;
  }

  get url(): string {
    return this.listener.url;
  }

  /** A new 2025 session (initialize, then notifications/initialized unless `ack` is false);
   * later sends use it. */
  async initialize(ack = true): Promise<Record<string, string>> {
    const init = await request(this.url, { body: initializeBody('init') });
    assert.equal(init.status, 200, init.text);
    const id = init.headers.get('mcp-session-id');
    assert.ok(id, 'an Mcp-Session-Id header');
    this.session = { 'Mcp-Session-Id': id, 'MCP-Protocol-Version': '2025-06-18' };
    if (ack) {
      const res = await request(this.url, { body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers: this.session });
      assert.equal(res.status, 202, res.text);
    }
    await this.barrier();
    return this.session;
  }

  protected override meta(): Json | undefined {
    if (this.era !== '2026') return undefined;
    return { ...MODERN_META, 'io.modelcontextprotocol/clientInfo': { name: this.client, version: '1' } };
  }

  /** The headers a 2026-07-28 request carries for what its body says (a body that is not
   * JSON names only the version). */
  private modernHeaders(text: string): Record<string, string> {
    const headers: Record<string, string> = { 'MCP-Protocol-Version': MODERN };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return headers;
    }
    if (!isRecord(body)) return headers;
    const version = isRecord(body.params) && isRecord(body.params._meta) ? body.params._meta['io.modelcontextprotocol/protocolVersion'] : undefined;
    if (typeof version === 'string') headers['MCP-Protocol-Version'] = version;
    if (typeof body.method === 'string') headers['Mcp-Method'] = encodeHeaderValue(body.method);
    const name = isRecord(body.params) ? body.params.name : undefined;
    if (body.method === 'tools/call' && name !== undefined) headers['Mcp-Name'] = encodeHeaderValue(typeof name === 'string' ? name : JSON.stringify(name));
    return headers;
  }

  private headersFor(text: string, opts: SendOptions = {}): Record<string, string> {
    if (this.era === '2026') return this.modernHeaders(text);
    return opts.noSession ? {} : this.session;
  }

  protected async exchange(text: string | Buffer, opts: SendOptions): Promise<{ status: number; messages: Json[] }> {
    const asText = typeof text === 'string' ? text : text.toString('utf8');
    const res = await post(this.url, text, { ...this.headersFor(asText, opts), ...opts.headers }, opts.chunked);
    return { status: res.status, messages: await res.rest(opts.timeoutMs ?? 30_000) };
  }

  /** POSTs a body and hands back the answer as it arrives (for calls that stay open). */
  open(text: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<MessageStream> {
    return fetch(this.url, {
      method: 'POST',
      body: text,
      signal,
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...this.headersFor(text), ...headers },
    }).then((res) => new MessageStream(res.status, res.headers, res.body));
  }

  async barrier(): Promise<void> {
    // A 2025 front without a session has no upstream yet: nothing can have reached one.
    if (this.era === '2025' && this.session['Mcp-Session-Id'] === undefined) return;
    const params = this.barrierParams();
    const id = `barrier-${barriers}`;
    const text = this.requestText(id, 'ping', params);
    const res = await post(this.url, text, this.headersFor(text));
    // Any answer will do, an error too (the 2026-07-28 revision has no ping): it came back
    // from the upstream, after everything sent before it.
    const answer = await res.next((m) => m.id === id);
    assert.ok(answer, `the barrier ping got no answer (${res.status})\n${this.stderr().slice(-2000)}`);
  }

  running(): boolean {
    return this.listener.proc.exitCode === null;
  }

  stderr(): string {
    return this.listener.stderr();
  }

  async close(): Promise<void> {
    if (this.owner) await this.listener.stop();
  }
}

/** The HTTP front of a Front, for what only HTTP can do (open a stream, start a session). */
export function asHttp(front: Front): HttpFront {
  assert.ok(front instanceof HttpFront, `${front.label} is not an HTTP front`);
  return front;
}

/** The stdio proxy of a Front, for what only a byte stream can do. */
export function asStdio(front: Front): RawProxy {
  assert.ok(front instanceof StdioFront, `${front.label} is not the stdio front`);
  return front.proxy;
}

/** Everything the stdio front's proxy wrote so far: what exchanges took, and what is queued
 * (for answers to calls left running while others were sent). */
export function stdioReceived(front: Front): Json[] {
  assert.ok(front instanceof StdioFront, `${front.label} is not the stdio front`);
  return [...front.history, ...(front.proxy.pending() as Json[])];
}
