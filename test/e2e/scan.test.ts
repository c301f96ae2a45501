// `intercept scan` as a user runs it, against real MCP servers from npm. Needs the build (dist/).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { INTERCEPT_BIN, ROOT } from '../support/paths.js';
import { makeTempDir, type TempDir } from '../support/temp.js';
import { freePort } from '../support/wait.js';
import { servers, startEverything, startRecorder, type HttpServer, type Recorder, type ServerCommand } from '../support/servers.js';
import { connectV1, directParams } from '../support/sdk-clients.js';
import { startModernHttpServer, type ModernHttpServer } from '../fixtures/modern-http-server.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function intercept(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [INTERCEPT_BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

/** What the official SDK client sees when it lists the server's tools itself. */
async function directToolNames(server: ServerCommand): Promise<string[]> {
  const session = await connectV1(directParams(server));
  try {
    const names: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await session.client.listTools(cursor === undefined ? {} : { cursor });
      names.push(...page.tools.map((t) => t.name));
      cursor = page.nextCursor;
    } while (cursor);
    return names.sort();
  } finally {
    await session.close();
  }
}

function policyToolNames(yamlText: string): string[] {
  return Object.keys((parse(yamlText) as { tools: Record<string, unknown> }).tools).sort();
}

let tmp: TempDir;
before(async () => {
  tmp = await makeTempDir('intercept-scan-');
});
after(async () => {
  await tmp.cleanup();
});

describe('intercept scan against real servers', () => {
  const cases: { label: string; server: () => ServerCommand }[] = [
    { label: 'everything', server: () => servers.everything() },
    { label: 'filesystem', server: () => servers.filesystem(tmp.path) },
    { label: 'memory', server: () => servers.memory(tmp.file('memory.jsonl')) },
  ];
  for (const { label, server } of cases) {
    it(`${label}: lists every tool the server has, as a policy that validates`, async () => {
      const cmd = server();
      const run = await intercept(['scan', '--', cmd.command, ...cmd.args], cmd.env);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(policyToolNames(run.stdout), await directToolNames(cmd));
      assert.match(run.stderr, /starting/);
      assert.match(run.stderr, /connected to \S+ \S+/);
      assert.match(run.stderr, /\d+ tools/);

      const file = tmp.file(`${label}/nested/policy.yaml`);
      const written = await intercept(['scan', '--recommended', '-o', file, '--', cmd.command, ...cmd.args], cmd.env);
      assert.equal(written.code, 0, written.stderr);
      assert.equal(written.stdout, '');
      const text = await readFile(file, 'utf8');
      assert.deepEqual(policyToolNames(text), policyToolNames(run.stdout));
      const validate = await intercept(['validate', '-c', file]);
      assert.equal(validate.code, 0, validate.stdout + validate.stderr);
      assert.match(validate.stdout, /Policy file is valid/);
    });
  }

  it('--format json lists every tool with its classification', async () => {
    const cmd = servers.memory(tmp.file('memory-json.jsonl'));
    const run = await intercept(['scan', '--format', 'json', '--', cmd.command, ...cmd.args], cmd.env);
    assert.equal(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout) as { server: { name: string }; tools: { name: string; category: string; recommended: { rules: unknown[] } }[] };
    assert.equal(doc.server.name, 'memory-server');
    assert.deepEqual(doc.tools.map((t) => t.name).sort(), await directToolNames(cmd));
    const byName = new Map(doc.tools.map((t) => [t.name, t]));
    assert.equal(byName.get('delete_entities')?.category, 'destructive');
    assert.equal(byName.get('read_graph')?.category, 'read');
    assert.equal(byName.get('create_entities')?.category, 'write');
  });
});

describe('intercept scan failures', () => {
  it('a command that does not exist: exit 1, naming it', async () => {
    const run = await intercept(['scan', '--', 'no-such-mcp-server-xyz', '--arg']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /command not found: no-such-mcp-server-xyz/);
    assert.equal(run.stdout, '');
  });

  it('a server that exits early: exit 1, naming the command', async () => {
    const run = await intercept(['scan', '--', process.execPath, '-e', 'console.error("boom: no token"); process.exit(3)']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /exited before completing the MCP handshake/);
    assert.match(run.stderr, /boom: no token/);
  });

  it('a server that never answers: --timeout 1s gives up with "timed out"', async () => {
    const run = await intercept(['scan', '--timeout', '1s', '--', process.execPath, '-e', 'setInterval(() => {}, 1e9)']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /timed out after 1s/);
    assert.match(run.stderr, /setInterval/);
    assert.ok(run.ms < 15_000, `took ${run.ms} ms`);
  });

  it('no command: exit 2 with usage', async () => {
    const run = await intercept(['scan']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /needs the server command after "--"/);
  });

  it('a bad --timeout: exit 2', async () => {
    const run = await intercept(['scan', '--timeout', 'soon', '--', 'x']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--timeout/);
  });
});

// ------------------------------------------------------------------ remote servers

/** An HTTP server on a free loopback port, answering with `handle`. */
async function listen(handle: Parameters<typeof createServer>[1] & {}): Promise<{ url: string; server: Server }> {
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, server };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A server that speaks only the 2026-07-28 protocol: 2025-era requests are refused. */
async function startModernOnlyServer(): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const handler = createMcpHandler(
    () => {
      const server = new McpServer({ name: 'modern-only', version: '3.1.4' }, { capabilities: { tools: {} } });
      server.registerTool('list_widgets', { description: 'Lists the widgets' }, async () => ({ content: [] }));
      server.registerTool('delete_widget', { description: 'Deletes a widget' }, async () => ({ content: [] }));
      return server;
    },
    { legacy: 'reject' },
  );
  const { url, server } = await listen((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers.set(name, value);
      const response = await handler.fetch(
        new Request(`http://${req.headers.host}${req.url}`, {
          method: req.method,
          headers,
          body: req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks),
        }),
      );
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (response.body) Readable.fromWeb(response.body as import('node:stream/web').ReadableStream).pipe(res);
      else res.end();
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  return {
    url,
    server,
    async close() {
      await handler.close();
      await close(server);
    },
  };
}

describe('intercept scan --upstream', { timeout: 120_000 }, () => {
  let streamable: HttpServer;
  let sse: HttpServer;
  let recorder: Recorder;
  /** The tools server-everything lists over stdio: the same server, reached another way. */
  let expected: string[];

  before(async () => {
    [streamable, sse, expected] = await Promise.all([startEverything('streamableHttp'), startEverything('sse'), directToolNames(servers.everything())]);
    recorder = await startRecorder(streamable.origin);
  });
  after(async () => {
    await recorder?.stop();
    await Promise.all([streamable?.stop(), sse?.stop()]);
  });

  it('Streamable HTTP: every tool, --header on every request, and no header value in the file', async () => {
    const file = tmp.file('remote/everything.yaml');
    const run = await intercept(['scan', '--recommended', '-o', file, '--upstream', recorder.url('/mcp'), '--header', 'Authorization: Bearer scan-secret-7']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /connected to mcp-servers\/everything \S+ over Streamable HTTP/);
    const text = await readFile(file, 'utf8');
    assert.deepEqual(policyToolNames(text), expected);
    assert.match(text, /^# Generated \S+ by: intercept scan --recommended --upstream=http:\/\/127\.0\.0\.1:\d+\/mcp '--header=Authorization: …'$/m);
    assert.doesNotMatch(text, /scan-secret-7/);
    const posts = recorder.exchanges.filter((e) => e.method === 'POST');
    assert.ok(posts.length >= 2, 'initialize and tools/list were POSTed');
    for (const e of posts) assert.equal(e.headers.authorization, 'Bearer scan-secret-7');
    assert.ok(recorder.methods().includes('tools/list'));
    assert.ok(recorder.exchanges.some((e) => e.method === 'DELETE'), 'the scan ends its session');
    const validate = await intercept(['validate', '-c', file]);
    assert.equal(validate.code, 0, validate.stdout + validate.stderr);
  });

  it('legacy HTTP+SSE: a /sse URL is scanned over HTTP+SSE', async () => {
    const run = await intercept(['scan', '--format', 'json', '--upstream', `${sse.origin}/sse`]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /over HTTP\+SSE/);
    assert.deepEqual((JSON.parse(run.stdout) as { tools: { name: string }[] }).tools.map((t) => t.name).sort(), expected);
  });

  it('auto: an /mcp URL on an HTTP+SSE-only server falls back to its /sse sibling', async () => {
    const run = await intercept(['scan', '--upstream', `${sse.origin}/mcp`]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /does not speak Streamable HTTP \(HTTP 404\); trying HTTP\+SSE/);
    assert.deepEqual(policyToolNames(run.stdout), expected);
  });

  it('--upstream-transport streamable does not fall back: exit 1 with the HTTP status', async () => {
    const run = await intercept(['scan', '--upstream-transport', 'streamable', '--upstream', `${sse.origin}/mcp`]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /answered HTTP 404/);
    assert.equal(run.stdout, '');
  });

  it('--upstream-transport sse against a Streamable HTTP server: exit 1', async () => {
    const run = await intercept(['scan', '--upstream-transport', 'sse', '--timeout', '10s', '--upstream', `${streamable.origin}/mcp`]);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
  });
});

describe('intercept scan --upstream, both protocol eras', { timeout: 60_000 }, () => {
  let modern: ModernHttpServer;
  let strict: Awaited<ReturnType<typeof startModernOnlyServer>>;
  before(async () => {
    [modern, strict] = await Promise.all([startModernHttpServer(), startModernOnlyServer()]);
  });
  after(async () => {
    await Promise.all([modern?.close(), strict?.close()]);
  });

  it('a server of the v2 SDK that serves both eras', async () => {
    const run = await intercept(['scan', '--format', 'json', '--upstream', modern.url]);
    assert.equal(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout) as { server: { name: string }; tools: { name: string; category: string }[] };
    assert.equal(doc.server.name, 'intercept-modern-http-fixture');
    assert.deepEqual(doc.tools.map((t) => t.name).sort(), ['add', 'delete_all', 'echo', 'secret_admin', 'seen']);
    assert.equal(doc.tools.find((t) => t.name === 'delete_all')?.category, 'destructive');
  });

  it('a server that speaks only 2026-07-28: negotiated with, every tool listed', async () => {
    const run = await intercept(['scan', '--upstream', strict.url]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /speaks only the 2026-07-28 protocol/);
    assert.match(run.stderr, /connected to modern-only 3\.1\.4/);
    assert.deepEqual(policyToolNames(run.stdout), ['delete_widget', 'list_widgets']);
    assert.match(run.stdout, /^# Intercept policy scaffold for modern-only 3\.1\.4$/m);
  });
});

describe('intercept scan --upstream failures', { timeout: 60_000 }, () => {
  it('nothing listening: exit 1, "cannot reach"', async () => {
    const port = await freePort();
    const run = await intercept(['scan', '--upstream', `http://127.0.0.1:${port}/mcp`]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/mcp`));
    assert.equal(run.stdout, '');
  });

  it('HTTP 401: exit 1, saying how to pass credentials', async () => {
    const { url, server } = await listen((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'unauthorized' }));
    });
    try {
      const run = await intercept(['scan', '--upstream', url]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /answered HTTP 401 Unauthorized: pass credentials with --header/);
    } finally {
      await close(server);
    }
  });

  const usage: { label: string; args: string[]; message: RegExp }[] = [
    { label: 'both a command and --upstream', args: ['--upstream', 'http://127.0.0.1:9/mcp', '--', 'node', 'x.js'], message: /cannot scan both/ },
    { label: 'a URL that is not http(s)', args: ['--upstream', 'ftp://example.com/mcp'], message: /--upstream must be an http:\/\/ or https:\/\/ URL/ },
    { label: '--header without --upstream', args: ['--header', 'A: b', '--', 'node', 'x.js'], message: /--header requires --upstream/ },
    { label: '--upstream-transport without --upstream', args: ['--upstream-transport', 'sse', '--', 'node', 'x.js'], message: /--upstream-transport requires --upstream/ },
    { label: 'a malformed --header', args: ['--upstream', 'http://127.0.0.1:9/mcp', '--header', 'no colon'], message: /--header must look like "Name: Value"/ },
    { label: 'a --header the transport sets', args: ['--upstream', 'http://127.0.0.1:9/mcp', '--header', 'Mcp-Session-Id: x'], message: /--header cannot set Mcp-Session-Id/ },
  ];
  for (const { label, args, message } of usage) {
    it(`${label}: exit 2`, async () => {
      const run = await intercept(['scan', ...args]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
    });
  }
});
