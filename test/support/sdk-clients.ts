// The official SDK clients talking to the proxy over stdio, as an agent does: the proxy's spawn
// parameters (`node bin/intercept.js -c <policy> -- <server>`, or `--upstream <url>`) and the
// server's alone, the v1 (`@modelcontextprotocol/sdk`) and v2 (`@modelcontextprotocol/client`)
// clients, and the tap that records every JSON-RPC message crossing a client's transport.
// Needs the build (dist/), which `npm test` makes first.
//
// Exports:
//   StdioParams, ProxyOptions              spawn parameters, in the shape both SDKs' StdioClientTransport take
//   proxyParams(policy, server, opts?)     the proxy in front of a server command
//   upstreamParams(policy, url, opts?)     the proxy in front of a remote (HTTP) upstream
//   directParams(server)                   the server alone, for comparing what the proxy changes
//   WireMessage, Wire                      every JSON-RPC message a client sent and received
//   RawTransport, tap(transport, wire)     records a transport's traffic (install before connect)
//   Session, openSession(client, transport, stderr)   a client connected over any transport, with its wire log
//   V1Options, newV1Client(opts), connectV1(params, opts?)   the v1 client (not yet connected / over stdio)
//   V2Options, newV2Client(opts), connectV2(params, opts?)   the v2 client (not yet connected / over stdio)
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as V1StdioTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { ClientCapabilities as V1Capabilities } from '@modelcontextprotocol/sdk/types.js';
import { Client as V2Client, type ClientCapabilities as V2Capabilities, type VersionNegotiationOptions } from '@modelcontextprotocol/client';
import { StdioClientTransport as V2StdioTransport } from '@modelcontextprotocol/client/stdio';
import { INTERCEPT_BIN, ROOT } from './paths.js';
import type { ServerCommand } from './servers.js';
import { freshHome } from './temp.js';

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
  /** More proxy flags, placed before `--` (or before --upstream). */
  flags?: string[];
  /** More environment for the proxy (and so for the server it spawns). */
  env?: Record<string, string>;
}

function environment(...extra: (Record<string, string> | undefined)[]): Record<string, string> {
  return Object.assign({}, getDefaultEnvironment(), ...extra.filter(Boolean));
}

/** `bin/intercept.js -c <policy> --log-level <level> [flags]`: the proxy's arguments before the upstream. */
function proxyArgs(policy: string, opts: ProxyOptions): string[] {
  return [INTERCEPT_BIN, '-c', policy, '--log-level', opts.logLevel ?? 'info', ...(opts.flags ?? [])];
}

/** `node bin/intercept.js -c <policy> [flags] -- <server>`, as a client transport spawns it. */
export function proxyParams(policy: string, server: ServerCommand, opts: ProxyOptions = {}): StdioParams {
  return {
    command: process.execPath,
    args: [...proxyArgs(policy, opts), '--', server.command, ...server.args],
    env: environment(server.env, { HOME: freshHome() }, opts.env),
    cwd: ROOT,
  };
}

/** `node bin/intercept.js -c <policy> [flags] --upstream <url>`, as a client transport spawns it. */
export function upstreamParams(policy: string, url: string, opts: ProxyOptions = {}): StdioParams {
  return {
    command: process.execPath,
    args: [...proxyArgs(policy, opts), '--upstream', url],
    env: environment({ HOME: freshHome() }, opts.env),
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

/** Taps `transport`, connects `client` over it, and returns the session; on failure the client
 * is closed and the error carries `stderr()` (the proxy's log). Works for either SDK and any
 * transport. */
export async function openSession<T extends object, C extends { connect(transport: T): Promise<void>; close(): Promise<void> }>(
  client: C,
  transport: T,
  stderr: () => string,
): Promise<Session<C>> {
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

/** A v1 SDK client with the test's capabilities and handlers (not connected yet). */
export function newV1Client(opts: V1Options): V1Client {
  const client = new V1Client({ name: 'intercept-e2e', version: '1.0.0' }, { capabilities: opts.capabilities ?? {} });
  opts.setup?.(client);
  return client;
}

/** The v1 SDK client (`@modelcontextprotocol/sdk`), connected over stdio. */
export async function connectV1(params: StdioParams, opts: V1Options = {}): Promise<Session<V1Client>> {
  const client = newV1Client(opts);
  const transport = new V1StdioTransport({ ...params, stderr: 'pipe' });
  return openSession(client, transport, collectStderr(transport.stderr as NodeJS.ReadableStream | null));
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
  return openSession(client, transport, collectStderr(transport.stderr as NodeJS.ReadableStream | null));
}
