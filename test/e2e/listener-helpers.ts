// Shared pieces of the HTTP listener tests: the proxy started as a user starts it
// (`node bin/intercept.js -c <policy> --transport http --port 0 -- <server>`), its URL read from
// stderr, and the official SDK clients connected to it over HTTP (v1 Streamable HTTP and SSE,
// v2 Streamable HTTP in either era), each with a log of what crossed its transport.
//
// Exports:
//   Listener, startListener(...)      the proxy as an HTTP server (url, stderr, children, stop)
//   connectStreamableV1, connectSseV1, connectStreamableV2   connected clients (Session shape)
//   post(url, body, headers)          one raw HTTP request, for status codes and headers
//   MODERN_HEADERS(...)               the headers a 2026-07-28 request carries
//   waitFor(predicate)                polls until true, for effects outside the client
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport as V1StreamableTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ClientCapabilities as V1Capabilities } from '@modelcontextprotocol/sdk/types.js';
import {
  Client as V2Client,
  StreamableHTTPClientTransport as V2StreamableTransport,
  type ClientCapabilities as V2Capabilities,
  type VersionNegotiationOptions,
} from '@modelcontextprotocol/client';
import { INTERCEPT_BIN, MODERN, ROOT, Wire, freshHome, newV2Client, tap, type RawTransport, type ServerCommand, type Session } from './helpers.js';

// ------------------------------------------------------------------------------ the listener

export interface Listener {
  /** The URL clients connect to (…/mcp, or …/sse with --transport sse). */
  url: string;
  proc: ChildProcess;
  stderr(): string;
  /** Process ids of the proxy's child processes (one per upstream server it runs). */
  children(): number[];
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

export interface ListenerOptions {
  transport?: 'http' | 'sse';
  /** More proxy flags, placed before `--` (or before --upstream). */
  flags?: string[];
  env?: Record<string, string>;
  /** A remote upstream URL instead of a server command. */
  upstream?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/** Starts the proxy as an HTTP listener and resolves once it prints its URL. */
export async function startListener(policy: string, server: ServerCommand | undefined, opts: ListenerOptions = {}): Promise<Listener> {
  const args = [INTERCEPT_BIN, '-c', policy, '--log-level', opts.logLevel ?? 'info', '--transport', opts.transport ?? 'http', '--port', '0', ...(opts.flags ?? [])];
  if (opts.upstream !== undefined) args.push('--upstream', opts.upstream);
  else if (server) args.push('--', server.command, ...server.args);
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, HOME: freshHome(), ...server?.env, ...opts.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the listener did not start:\n${text}`)), 30_000);
    proc.stderr!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = /Intercept listening on (\S+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the listener exited with ${code}:\n${text}`));
    });
  });
  return {
    url,
    proc,
    stderr: () => text,
    children: () => {
      try {
        return execFileSync('pgrep', ['-P', String(proc.pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
      } catch {
        return []; // pgrep exits 1 when there are none
      }
    },
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

// ------------------------------------------------------------------------------ clients

export interface HttpClientOptions {
  headers?: Record<string, string>;
  capabilities?: V1Capabilities;
  setup?: (client: V1Client) => void;
}

/** The v1 client (`@modelcontextprotocol/sdk`) over Streamable HTTP. */
export async function connectStreamableV1(listener: Listener, opts: HttpClientOptions = {}): Promise<Session<V1Client> & { transport: V1StreamableTransport }> {
  const transport = new V1StreamableTransport(new URL(listener.url), { requestInit: { headers: opts.headers ?? {} } });
  return { ...(await connectV1With(transport, listener, opts)), transport };
}

/** The v1 client over the legacy HTTP+SSE transport. */
export async function connectSseV1(listener: Listener, opts: HttpClientOptions = {}): Promise<Session<V1Client>> {
  const headers = opts.headers ?? {};
  const transport = new SSEClientTransport(new URL(listener.url), { requestInit: { headers } });
  return connectV1With(transport, listener, opts);
}

async function connectV1With(transport: V1StreamableTransport | SSEClientTransport, listener: Listener, opts: HttpClientOptions): Promise<Session<V1Client>> {
  const client = new V1Client({ name: 'intercept-e2e', version: '1.0.0' }, { capabilities: opts.capabilities ?? {} });
  opts.setup?.(client);
  const wire = new Wire();
  tap(transport as unknown as RawTransport, wire);
  try {
    await client.connect(transport);
  } catch (err) {
    await client.close().catch(() => {});
    throw new Error(`connect failed: ${String(err)}\n--- stderr ---\n${listener.stderr()}`);
  }
  return { client, wire, stderr: listener.stderr, close: () => client.close() };
}

export interface V2HttpOptions {
  headers?: Record<string, string>;
  capabilities?: V2Capabilities;
  versionNegotiation?: VersionNegotiationOptions;
  setup?: (client: V2Client) => void;
}

/** The v2 client (`@modelcontextprotocol/client`) over Streamable HTTP. */
export async function connectStreamableV2(listener: Listener, opts: V2HttpOptions = {}): Promise<Session<V2Client>> {
  const client = newV2Client(opts);
  const transport = new V2StreamableTransport(new URL(listener.url), { requestInit: { headers: opts.headers ?? {} } });
  const wire = new Wire();
  tap(transport as unknown as RawTransport, wire);
  try {
    await client.connect(transport);
  } catch (err) {
    await client.close().catch(() => {});
    throw new Error(`connect failed: ${String(err)}\n--- stderr ---\n${listener.stderr()}`);
  }
  return { client, wire, stderr: listener.stderr, close: () => client.close() };
}

// ------------------------------------------------------------------------------ raw HTTP

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body as JSON, when it is JSON. */
  json?: { jsonrpc?: string; id?: unknown; error?: { code: number; message: string; data?: unknown }; result?: unknown };
}

/** One HTTP request to the listener; the whole body is read. */
export async function request(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  const res = await fetch(url, {
    method: init.method ?? 'POST',
    body: init.body,
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...init.headers },
  });
  const text = await res.text();
  let json: RawResponse['json'];
  try {
    json = JSON.parse(text) as RawResponse['json'];
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A 2025 initialize request body. */
export function initializeBody(id: number | string = 1): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
}

export { MODERN };

/** A 2026-07-28 request body (`_meta` as the v2 client sends it). */
export function modernBody(id: number, method: string, params: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id,
    method,
    params: {
      ...params,
      _meta: {
        'io.modelcontextprotocol/protocolVersion': MODERN,
        'io.modelcontextprotocol/clientCapabilities': {},
        'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
      },
    },
  };
}

/** The routing headers of a 2026-07-28 request for `body`. */
export function modernHeaders(body: Record<string, unknown>): Record<string, string> {
  const headers: Record<string, string> = { 'MCP-Protocol-Version': MODERN, 'Mcp-Method': String(body.method) };
  const params = body.params as Record<string, unknown>;
  if (typeof params.name === 'string') headers['Mcp-Name'] = params.name;
  return headers;
}

/** Polls `predicate` every 50 ms until it holds or `ms` pass. */
export async function waitFor(predicate: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
