// The proxy as an HTTP listener, started as a user starts it (`node bin/intercept.js -c <policy>
// --transport http|sse --port 0 -- <server>`, or with --upstream), its URL read from stderr;
// the official SDK clients connected to it over HTTP (v1 Streamable HTTP and SSE, v2 Streamable
// HTTP in either era), each with a log of what crossed its transport; and raw HTTP exchanges,
// for status codes, headers and the bytes the SDK clients cannot be made to send.
//
// Exports:
//   Listener, ListenerOptions, startListener(policy, server, opts?)   the proxy as an HTTP server
//                                          (url, stderr, children, stop)
//   HttpClientOptions, connectStreamableV1, connectSseV1   the v1 client over HTTP (Session shape)
//   V2HttpOptions, connectStreamableV2     the v2 client over Streamable HTTP (Session shape)
//   RawResponse, request(url, init?)       one raw HTTP request, the whole body read
//   MessageStream                          the messages of one response, read as they arrive (SSE or JSON)
//   postRaw(url, body, headers?)           POSTs raw text; the answer read as a MessageStream
//   openSse(url)                           a legacy HTTP+SSE session opened by hand (stream, postUrl, close)
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import type { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport as V1StreamableTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StreamableHTTPClientTransport as V2StreamableTransport, type Client as V2Client } from '@modelcontextprotocol/client';
import type { Json } from './messages.js';
import { INTERCEPT_BIN, ROOT } from './paths.js';
import { newV1Client, newV2Client, openSession, type Session, type V1Options, type V2Options } from './sdk-clients.js';
import type { ServerCommand } from './servers.js';
import { freshHome } from './temp.js';

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

export interface HttpClientOptions extends V1Options {
  headers?: Record<string, string>;
}

/** The v1 client (`@modelcontextprotocol/sdk`) over Streamable HTTP. */
export async function connectStreamableV1(listener: Listener, opts: HttpClientOptions = {}): Promise<Session<V1Client> & { transport: V1StreamableTransport }> {
  const transport = new V1StreamableTransport(new URL(listener.url), { requestInit: { headers: opts.headers ?? {} } });
  return { ...(await openSession(newV1Client(opts), transport, listener.stderr)), transport };
}

/** The v1 client over the legacy HTTP+SSE transport. */
export async function connectSseV1(listener: Listener, opts: HttpClientOptions = {}): Promise<Session<V1Client>> {
  const transport = new SSEClientTransport(new URL(listener.url), { requestInit: { headers: opts.headers ?? {} } });
  return openSession(newV1Client(opts), transport, listener.stderr);
}

export interface V2HttpOptions extends V2Options {
  headers?: Record<string, string>;
}

/** The v2 client (`@modelcontextprotocol/client`) over Streamable HTTP. */
export async function connectStreamableV2(listener: Listener, opts: V2HttpOptions = {}): Promise<Session<V2Client>> {
  const transport = new V2StreamableTransport(new URL(listener.url), { requestInit: { headers: opts.headers ?? {} } });
  return openSession(newV2Client(opts), transport, listener.stderr);
}

// ------------------------------------------------------------------------------ raw HTTP

/** What a client posts with: a JSON body, and either a JSON or an SSE answer accepted. */
const BASE_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

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
    headers: { ...BASE_HEADERS, ...init.headers },
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

/** The messages of one HTTP response, read as they arrive (SSE events, or one JSON body). */
export class MessageStream {
  private buffer = '';
  private queue: unknown[] = [];
  private done = false;
  private wake?: () => void;

  constructor(
    readonly status: number,
    readonly headers: Headers,
    body: ReadableStream<Uint8Array> | null,
  ) {
    void this.pump(body, (headers.get('content-type') ?? '').includes('text/event-stream'));
  }

  private async pump(body: ReadableStream<Uint8Array> | null, sse: boolean): Promise<void> {
    const decoder = new TextDecoder();
    let whole = '';
    try {
      if (body) {
        for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
          const text = decoder.decode(chunk, { stream: true });
          if (sse) this.feed(text);
          else whole += text;
        }
      }
    } catch {
      // the stream was cut: what arrived stays readable
    }
    if (!sse && whole.trim() !== '') {
      try {
        this.queue.push(JSON.parse(whole));
      } catch {
        this.queue.push({ unparsedBody: whole });
      }
    }
    this.done = true;
    this.wake?.();
  }

  private feed(text: string): void {
    this.buffer += text.replace(/\r\n/g, '\n');
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) !== -1) {
      const event = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const data = event
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      const name = /^event:\s*(.*)$/m.exec(event)?.[1];
      if (data === '') continue;
      if (name === 'endpoint') this.queue.push({ endpoint: data });
      else this.queue.push(JSON.parse(data));
    }
    this.wake?.();
  }

  /** The next message matching `pred` (others before it are discarded), or undefined when
   * the response ends first. */
  async next(pred: (m: Json) => boolean = () => true, timeoutMs = 10_000): Promise<Json | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.queue.length > 0) {
        const m = this.queue.shift() as Json;
        if (pred(m)) return m;
      }
      if (this.done) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no matching message in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Every message until the response ends. */
  async rest(timeoutMs = 10_000): Promise<Json[]> {
    const all: Json[] = [];
    for (;;) {
      const m = await this.next(() => true, timeoutMs);
      if (m === undefined) return all;
      all.push(m);
    }
  }
}

/** POSTs raw text; the response's messages can be read while it is still open. */
export async function postRaw(url: string, body: string, headers: Record<string, string> = {}): Promise<MessageStream> {
  const res = await fetch(url, { method: 'POST', body, headers: { ...BASE_HEADERS, ...headers } });
  return new MessageStream(res.status, res.headers, res.body);
}

/** A legacy HTTP+SSE session opened by hand: its stream, and where to POST. */
export async function openSse(url: string): Promise<{ stream: MessageStream; postUrl: string; close(): void }> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { Accept: 'text/event-stream' }, signal: abort.signal });
  const stream = new MessageStream(res.status, res.headers, res.body);
  const endpoint = await stream.next((m) => typeof m.endpoint === 'string');
  if (!endpoint) throw new Error('no endpoint event');
  return { stream, postUrl: new URL(String(endpoint.endpoint), url).href, close: () => abort.abort() };
}
