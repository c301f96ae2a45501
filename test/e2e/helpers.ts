// Shared pieces of the end-to-end tests: the proxy run as a user runs it (`node bin/intercept.js
// -c <policy> -- <server command>`), real MCP servers from npm, and the official SDK clients
// (v1 `@modelcontextprotocol/sdk` and v2 `@modelcontextprotocol/client`) talking to it over
// stdio. Needs the build (dist/), which `npm test` makes first.
//
// Exports (kept stable; other e2e files import them):
//   ROOT, INTERCEPT_BIN, DENIAL_PREFIX, DENIAL_META_KEY, MODERN   paths and wire constants
//   ServerCommand, servers.{everything,filesystem,memory,modern}   how to start each server
//   fixturePolicy(name)                     path of test/fixtures/e2e/<name>
//   makeTempDir(prefix) -> TempDir          a scratch directory, removed by cleanup()
//   writePolicy(dir, yaml, name?)           writes a policy file, returns its path
//   StdioParams, proxyParams(...), directParams(...)   spawn parameters for the SDK transports
//   Wire, WireMessage                       every JSON-RPC message a client sent and received
//   Session, connectV1(...), connectV2(...) a connected client with its wire log and stderr
//   newV2Client(opts)                      a v2 client, not yet connected (for any transport)
//   tap(transport, wire)                   records a transport's traffic (install before connect)
//   ToolResult, textOf, denialOf, assertDenied, assertNotDenied   reading tool results
//   deferred()                              a promise resolved from a handler, for awaiting
//                                           server-initiated traffic without sleeping
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as V1StdioTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { ClientCapabilities as V1Capabilities } from '@modelcontextprotocol/sdk/types.js';
import { Client as V2Client, type ClientCapabilities as V2Capabilities, type VersionNegotiationOptions } from '@modelcontextprotocol/client';
import { StdioClientTransport as V2StdioTransport } from '@modelcontextprotocol/client/stdio';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The command a user runs. */
export const INTERCEPT_BIN = join(ROOT, 'bin', 'intercept.js');
/** What every denial's text starts with. */
export const DENIAL_PREFIX = '[INTERCEPT POLICY DENIED] ';
/** Where a denial's machine-readable detail sits in the result's `_meta`. */
/** The stateless protocol revision. */
export const MODERN = '2026-07-28';

export const DENIAL_META_KEY = 'intercept/denial';

// ------------------------------------------------------------------------------ servers

/** How to start an MCP server: a command, its arguments, and extra environment it needs. */
export interface ServerCommand {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

const require = createRequire(import.meta.url);

/** The entry script of an installed server package, read from its package.json `bin`. */
function packageBin(pkg: string): string {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = require(manifestPath) as { bin?: string | Record<string, string> };
  const bin = typeof manifest.bin === 'string' ? manifest.bin : Object.values(manifest.bin ?? {})[0];
  if (bin === undefined) throw new Error(`${pkg} has no bin entry`);
  return join(dirname(manifestPath), bin);
}

export const servers = {
  /** @modelcontextprotocol/server-everything over stdio (2025 revisions only). */
  everything(): ServerCommand {
    return { command: process.execPath, args: [packageBin('@modelcontextprotocol/server-everything'), 'stdio'] };
  },
  /** @modelcontextprotocol/server-filesystem, allowed to touch `root` only. */
  filesystem(root: string): ServerCommand {
    return { command: process.execPath, args: [packageBin('@modelcontextprotocol/server-filesystem'), root] };
  },
  /** @modelcontextprotocol/server-memory, keeping its knowledge graph in `file` (JSON lines). */
  memory(file: string): ServerCommand {
    return { command: process.execPath, args: [packageBin('@modelcontextprotocol/server-memory')], env: { MEMORY_FILE_PATH: file } };
  },
  /** test/fixtures/modern-server.ts: a v2-SDK server that speaks 2026-07-28 as well as 2025. */
  modern(): ServerCommand {
    return { command: process.execPath, args: ['--import', 'tsx', join(ROOT, 'test', 'fixtures', 'modern-server.ts')] };
  },
};

// ------------------------------------------------------------------------------ files

/** A policy file of test/fixtures/e2e/. */
export function fixturePolicy(name: string): string {
  return join(ROOT, 'test', 'fixtures', 'e2e', name);
}

export interface TempDir {
  path: string;
  /** A path inside the directory. */
  file(name: string): string;
  cleanup(): Promise<void>;
}

export async function makeTempDir(prefix = 'intercept-e2e-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, file: (name) => join(path, name), cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** Writes `yaml` to `<dir>/<name>` and returns the path. */
export async function writePolicy(dir: string, yaml: string, name = 'policy.yaml'): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, yaml);
  return path;
}

// ------------------------------------------------------------------------------ spawning

/** Spawn parameters, in the shape both SDKs' StdioClientTransport take. */
export interface StdioParams {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

export interface ProxyOptions {
  /** --log-level (default: info). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** More proxy flags, placed before `--`. */
  flags?: string[];
  /** More environment for the proxy (and so for the server it spawns). */
  env?: Record<string, string>;
}

function environment(...extra: (Record<string, string> | undefined)[]): Record<string, string> {
  return Object.assign({}, getDefaultEnvironment(), ...extra.filter(Boolean));
}

/** A new empty home directory: a proxy started with it as HOME keeps its default counter file
 * (~/.intercept/state/intercept.sqlite) to itself, so tests never share counters by accident. */
export function freshHome(): string {
  return mkdtempSync(join(tmpdir(), 'intercept-home-'));
}

/** `node bin/intercept.js -c <policy> [flags] -- <server>`, as a client transport spawns it. */
export function proxyParams(policy: string, server: ServerCommand, opts: ProxyOptions = {}): StdioParams {
  return {
    command: process.execPath,
    args: [INTERCEPT_BIN, '-c', policy, '--log-level', opts.logLevel ?? 'info', ...(opts.flags ?? []), '--', server.command, ...server.args],
    env: environment(server.env, { HOME: freshHome() }, opts.env),
    cwd: ROOT,
  };
}

/** The server alone, for comparing what the proxy changes with what the server really says. */
export function directParams(server: ServerCommand): StdioParams {
  return { command: server.command, args: server.args, env: environment(server.env), cwd: ROOT };
}

// ------------------------------------------------------------------------------ the wire

/** A JSON-RPC message as it crossed the client's transport. */
export interface WireMessage {
  jsonrpc?: string;
  id?: string | number | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: unknown };
}

/** Every message a client's transport sent and received, in order. */
export class Wire {
  readonly sent: WireMessage[] = [];
  readonly received: WireMessage[] = [];

  /** Methods of the requests and notifications the client sent. */
  methodsSent(): string[] {
    return this.sent.flatMap((m) => (m.method !== undefined ? [m.method] : []));
  }

  /** The last tools/call the client sent for `tool`. */
  lastCall(tool: string): WireMessage | undefined {
    return this.sent.findLast((m) => m.method === 'tools/call' && m.params?.name === tool);
  }

  /** The response the client received to its request `id`. */
  responseTo(id: string | number | null | undefined): WireMessage | undefined {
    return this.received.find((m) => m.method === undefined && m.id === id);
  }

  /** The raw response to the last tools/call of `tool`, as it arrived. */
  responseToLastCall(tool: string): WireMessage | undefined {
    return this.responseTo(this.lastCall(tool)?.id);
  }

  /** Server-initiated requests the client received (sampling, roots, elicitation, ping). */
  requestsReceived(): WireMessage[] {
    return this.received.filter((m) => m.method !== undefined && m.id !== undefined);
  }

  /** Responses to requests the client never sent: the proxy's own traffic leaking through. */
  strayResponses(): WireMessage[] {
    const ids = new Set(this.sent.filter((m) => m.method !== undefined && m.id !== undefined).map((m) => m.id));
    return this.received.filter((m) => m.method === undefined && !ids.has(m.id));
  }
}

export interface RawTransport {
  send(message: unknown, options?: unknown): Promise<void>;
  onmessage?: (message: unknown, extra?: unknown) => void;
}

/** Records traffic in both directions without changing it. Installed before connect so the
 * handshake is recorded too: the SDK assigns `onmessage` during connect, which lands in the
 * setter here. */
export function tap(transport: RawTransport, wire: Wire): void {
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    wire.sent.push(structuredClone(message) as WireMessage);
    return send(message, options);
  };
  let inner: RawTransport['onmessage'];
  const outer = (message: unknown, extra?: unknown) => {
    wire.received.push(structuredClone(message) as WireMessage);
    inner?.(message, extra);
  };
  Object.defineProperty(transport, 'onmessage', {
    configurable: true,
    get: () => (inner ? outer : undefined),
    set: (fn: RawTransport['onmessage']) => {
      inner = fn;
    },
  });
}

// ------------------------------------------------------------------------------ clients

export interface Session<C> {
  client: C;
  wire: Wire;
  /** Everything the spawned process wrote to stderr so far (the proxy's log and the server's). */
  stderr(): string;
  close(): Promise<void>;
}

function collectStderr(stream: NodeJS.ReadableStream | null): () => string {
  let text = '';
  // Always drained: an unread pipe would stall the proxy once its buffer fills.
  stream?.on('data', (chunk: Buffer | string) => (text += chunk.toString()));
  return () => text;
}

export interface V1Options {
  capabilities?: V1Capabilities;
  /** Runs before connect: register handlers for server requests and notifications here, since
   * some servers send them right after the handshake. */
  setup?: (client: V1Client) => void;
}

/** The v1 SDK client (`@modelcontextprotocol/sdk`), connected over stdio. */
export async function connectV1(params: StdioParams, opts: V1Options = {}): Promise<Session<V1Client>> {
  const client = new V1Client({ name: 'intercept-e2e', version: '1.0.0' }, { capabilities: opts.capabilities ?? {} });
  opts.setup?.(client);
  const transport = new V1StdioTransport({ ...params, stderr: 'pipe' });
  const stderr = collectStderr(transport.stderr as NodeJS.ReadableStream | null);
  const wire = new Wire();
  tap(transport as unknown as RawTransport, wire);
  try {
    await client.connect(transport);
  } catch (err) {
    await client.close().catch(() => {});
    throw new Error(`connect failed: ${String(err)}\n--- stderr ---\n${stderr()}`);
  }
  return { client, wire, stderr, close: () => client.close() };
}

export interface V2Options {
  capabilities?: V2Capabilities;
  /** `{ mode: { pin: '2026-07-28' } }` for the modern era; the default is the 2025 handshake. */
  versionNegotiation?: VersionNegotiationOptions;
  setup?: (client: V2Client) => void;
}

/** A v2 SDK client with the test's capabilities, era and handlers (not connected yet). */
export function newV2Client(opts: Pick<V2Options, 'capabilities' | 'versionNegotiation' | 'setup'>): V2Client {
  const client = new V2Client(
    { name: 'intercept-e2e', version: '2.0.0' },
    { capabilities: opts.capabilities ?? {}, ...(opts.versionNegotiation ? { versionNegotiation: opts.versionNegotiation } : {}) },
  );
  opts.setup?.(client);
  return client;
}

/** The v2 SDK client (`@modelcontextprotocol/client`), connected over stdio. */
export async function connectV2(params: StdioParams, opts: V2Options = {}): Promise<Session<V2Client>> {
  const client = newV2Client(opts);
  const transport = new V2StdioTransport({ ...params, stderr: 'pipe' });
  const stderr = collectStderr(transport.stderr as NodeJS.ReadableStream | null);
  const wire = new Wire();
  tap(transport as unknown as RawTransport, wire);
  try {
    await client.connect(transport);
  } catch (err) {
    await client.close().catch(() => {});
    throw new Error(`connect failed: ${String(err)}\n--- stderr ---\n${stderr()}`);
  }
  return { client, wire, stderr, close: () => client.close() };
}

// ------------------------------------------------------------------------------ results

/** A tools/call result as either SDK returns it. */
export interface ToolResult {
  content?: unknown;
  isError?: boolean;
  _meta?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The text blocks of a result, joined with newlines. */
export function textOf(result: unknown): string {
  const content = (result as ToolResult).content;
  if (!Array.isArray(content)) return '';
  return content
    .filter((b): b is { type: 'text'; text: string } => typeof b === 'object' && b !== null && b.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text)
    .join('\n');
}

/** A policy denial as the agent sees it. */
export interface DenialView {
  /** The text after the prefix. */
  message: string;
  kind: string;
  rule?: string;
  retryAfterSeconds?: number;
  /** The whole `_meta["intercept/denial"]` object. */
  detail: Record<string, unknown>;
}

/** The denial carried by a result, or undefined when the result is not a policy denial. */
export function denialOf(result: unknown): DenialView | undefined {
  const r = result as ToolResult;
  const detail = r._meta?.[DENIAL_META_KEY];
  if (typeof detail !== 'object' || detail === null) return undefined;
  const d = detail as Record<string, unknown>;
  const text = textOf(r);
  const view: DenialView = {
    message: text.startsWith(DENIAL_PREFIX) ? text.slice(DENIAL_PREFIX.length) : text,
    kind: String(d.kind),
    detail: d,
  };
  if (typeof d.rule === 'string') view.rule = d.rule;
  if (typeof d.retryAfterSeconds === 'number') view.retryAfterSeconds = d.retryAfterSeconds;
  return view;
}

export interface ExpectedDenial {
  kind: string;
  rule?: string;
  /** The whole message after the prefix, or a pattern it must match. */
  message?: string | RegExp;
}

/** Asserts the shape every denial has (isError, one text block behind the prefix, the detail
 * under `_meta`) and the expected kind, rule and message. Returns the denial for more checks. */
export function assertDenied(result: unknown, expected: ExpectedDenial): DenialView {
  const r = result as ToolResult;
  assert.equal(r.isError, true, `expected a denial, got ${JSON.stringify(result)}`);
  assert.ok(Array.isArray(r.content) && r.content.length === 1, `a denial has one content block: ${JSON.stringify(result)}`);
  const text = textOf(r);
  assert.ok(text.startsWith(DENIAL_PREFIX), `denial text must start with the prefix: ${JSON.stringify(text)}`);
  const denial = denialOf(r);
  assert.ok(denial, `expected _meta["${DENIAL_META_KEY}"] on ${JSON.stringify(result)}`);
  assert.equal(denial.kind, expected.kind, `denial kind (message: ${denial.message})`);
  if (expected.rule !== undefined) assert.equal(denial.rule, expected.rule, 'denial rule');
  if (typeof expected.message === 'string') assert.equal(denial.message, expected.message);
  else if (expected.message) assert.match(denial.message, expected.message);
  return denial;
}

/** Asserts the result came from the server, not from the policy. */
export function assertNotDenied(result: unknown): void {
  assert.equal(denialOf(result), undefined, `unexpected denial: ${JSON.stringify(result)}`);
  assert.ok(!textOf(result).startsWith(DENIAL_PREFIX), `unexpected denial text: ${textOf(result)}`);
}

// ------------------------------------------------------------------------------ waiting

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

/** A promise to resolve from a handler, so a test awaits server traffic instead of sleeping. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
