// The MCP servers the tests put behind the proxy, and the taps that show what reached them:
// real servers from npm and the demo server over stdio, server-everything over HTTP on a free
// port, the tee that logs every line a stdio server receives, and a recording HTTP proxy.
//
// Exports:
//   ServerCommand                         how to start an MCP server: command, arguments, environment
//   servers.{everything,filesystem,memory,modern,demo,twilio}   each server over stdio
//   everythingCommand()                   server-everything over stdio, as one argv
//   teeCommand(logFile, command?)         `command` behind test/fixtures/tee-server.ts, logging to `logFile`
//   readLogLines(logFile)                 the non-blank lines a fixture server logged (tee or lenient)
//   readTeeLog(logFile)                   every line the upstream received, parsed
//   HttpServer, startEverything(mode)     server-everything in streamableHttp or sse mode
//   RecordedExchange, Recorder, startRecorder(target)   a node:http proxy in front of `target`
//                                         that records every request
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEMO_SERVER, EVERYTHING_SERVER, MODERN_SERVER, TEE_SERVER, packageBin } from './paths.js';
import { freePort, withTimeout } from './wait.js';

// ------------------------------------------------------------------------------ stdio servers

/** How to start an MCP server: a command, its arguments, and extra environment it needs. */
export interface ServerCommand {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

export const servers = {
  /** @modelcontextprotocol/server-everything over stdio (2025 revisions only). */
  everything(): ServerCommand {
    return { command: process.execPath, args: [EVERYTHING_SERVER, 'stdio'] };
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
    return { command: process.execPath, args: ['--import', 'tsx', MODERN_SERVER] };
  },
  /** The demo's server (dist/demo/server.js). */
  demo(): ServerCommand {
    return { command: process.execPath, args: [DEMO_SERVER] };
  },
  /** @twilio-alpha/mcp with fake credentials: it lists its tools from the OpenAPI specs it ships
   * (offline), and only a call would reach Twilio. `services` are the specs to load (its
   * `--services`; by default the server loads twilio_api_v2010 alone). */
  twilio(services?: string[]): ServerCommand {
    const credentials = `AC${'0'.repeat(32)}/SK${'0'.repeat(32)}:not-a-secret`;
    return { command: process.execPath, args: [packageBin('@twilio-alpha/mcp'), credentials, ...(services ? ['--services', services.join(',')] : [])] };
  },
};

/** The real "everything" MCP server over stdio, as one argv. */
export function everythingCommand(): string[] {
  const { command, args } = servers.everything();
  return [command, ...args];
}

// ------------------------------------------------------------------------------ the tee

/** `command`, run behind the tee that records every line it receives in `logFile`. */
export function teeCommand(logFile: string, command: string[] = everythingCommand()): string[] {
  return [process.execPath, '--import', 'tsx', TEE_SERVER, logFile, '--', ...command];
}

/** The raw text of every non-blank line a fixture server logged (none before the file exists). */
export async function readLogLines(logFile: string): Promise<string[]> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.trim() !== '');
}

/** Every line the upstream received, parsed (a line that is not JSON is kept as its text). */
export async function readTeeLog(logFile: string): Promise<unknown[]> {
  return (await readLogLines(logFile)).map((l) => {
    try {
      return JSON.parse(l) as unknown;
    } catch {
      return l;
    }
  });
}

// ------------------------------------------------------------------------------ HTTP servers

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
  const child = spawn(process.execPath, [EVERYTHING_SERVER, mode], {
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

// ------------------------------------------------------------------------------ the recorder

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
