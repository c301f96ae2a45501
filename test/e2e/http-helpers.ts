// Pieces of the end-to-end tests for remote (HTTP) upstream servers: the proxy started with
// `--upstream <url>`, server-everything over HTTP on a free loopback port, and a recording
// HTTP proxy to put in front of a server to see every request that reaches it.
//
// Exports:
//   upstreamParams(policy, url, opts)      spawn parameters for `intercept -c <policy> --upstream <url>`
//   freePort()                             a free TCP port on 127.0.0.1
//   startEverything(mode) -> HttpServer    server-everything in streamableHttp or sse mode
//   startRecorder(target) -> Recorder      a node:http proxy in front of `target` that records requests
//   runProxyRaw(params, lines)             the proxy as a plain process: write lines, collect output and exit code
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { INTERCEPT_BIN, ROOT, freshHome, servers, type ProxyOptions, type StdioParams } from './helpers.js';

/** `node bin/intercept.js -c <policy> [flags] --upstream <url>`, as a client transport spawns it. */
export function upstreamParams(policy: string, url: string, opts: ProxyOptions = {}): StdioParams {
  return {
    command: process.execPath,
    args: [INTERCEPT_BIN, '-c', policy, '--log-level', opts.logLevel ?? 'info', ...(opts.flags ?? []), '--upstream', url],
    env: { ...getDefaultEnvironment(), HOME: freshHome(), ...opts.env },
    cwd: ROOT,
  };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface HttpServer {
  port: number;
  /** Base URL, e.g. http://127.0.0.1:1234 */
  origin: string;
  /** Everything the server wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

/** server-everything over HTTP: `streamableHttp` serves /mcp, `sse` serves GET /sse and POST /message. */
export async function startEverything(mode: 'streamableHttp' | 'sse'): Promise<HttpServer> {
  const port = await freePort();
  const everything = servers.everything();
  const child = spawn(everything.command, [everything.args[0]!, mode], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listening = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/(listening|running) on port/i.test(output)) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server-everything ${mode} exited with ${code}:\n${output}`)));
  });
  await withTimeout(listening, 20_000, () => `server-everything ${mode} did not start:\n${output}`);
  return { port, origin: `http://127.0.0.1:${port}`, output: () => output, stop: () => stopChild(child) };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export interface RecordedExchange {
  method: string;
  path: string;
  /** Request header names in lower case. */
  headers: Record<string, string | string[] | undefined>;
  body: string;
  status?: number;
  /** The Mcp-Session-Id the server answered with, if any. */
  sessionId?: string;
}

export interface Recorder {
  /** The recorder's address with `path` (e.g. "/mcp"). */
  url(path: string): string;
  exchanges: RecordedExchange[];
  /** JSON-RPC methods of the POSTed bodies, in order. */
  methods(): string[];
  stop(): Promise<void>;
}

/** A plain HTTP proxy in front of `target` (an origin) that records every request. */
export async function startRecorder(target: string): Promise<Recorder> {
  const upstream = new URL(target);
  const exchanges: RecordedExchange[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const exchange: RecordedExchange = { method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers }, body: body.toString('utf8') };
      exchanges.push(exchange);
      const forward = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
        (answer) => {
          exchange.status = answer.statusCode;
          const sid = answer.headers['mcp-session-id'];
          if (typeof sid === 'string') exchange.sessionId = sid;
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      res.on('close', () => forward.destroy());
      forward.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    exchanges,
    methods: () =>
      exchanges.flatMap((e) => {
        try {
          const m = (JSON.parse(e.body) as { method?: unknown }).method;
          return typeof m === 'string' ? [m] : [];
        } catch {
          return [];
        }
      }),
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface RawRun {
  code: number | null;
  /** The JSON lines the proxy wrote to stdout. */
  messages: Array<Record<string, unknown>>;
  stderr: string;
}

/** Runs the proxy as a plain process: writes `lines` to its stdin (kept open), and collects
 * what it writes until it exits (or `timeoutMs` passes, when it is killed). */
export async function runProxyRaw(params: StdioParams, lines: unknown[], timeoutMs = 20_000): Promise<RawRun> {
  const child = spawn(params.command, params.args, { env: params.env, cwd: params.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  for (const line of lines) child.stdin!.write(JSON.stringify(line) + '\n');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  const messages = stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code, messages, stderr };
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message())), ms);
    }),
  ]);
}
