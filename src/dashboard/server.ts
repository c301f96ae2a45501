// `intercept dashboard`'s web server, on Node's http: the page (plain HTML, JS and CSS from the
// package's dashboard/ folder, read once at start) and its API:
//   GET  /api/summary[?since=1h]              the trail's summary; with -c, the counters
//   GET  /api/events[?since=<ISO time|ms>]    the trail's records as server-sent events
//   GET  /api/approvals[?status=pending|all|…]  approval requests, newest first
//   POST /api/approvals/<id>/approve|deny     body (optional): {"reason": "..."}
// Every request passes the guard first (guard.ts). The page's data is the trail's, which any
// process writing to the trail controls: the page renders it as text only, under a
// Content-Security-Policy that allows no inline script and nothing from elsewhere.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { isApprovalId } from '../approval/ids.js';
import type { EventSink } from '../audit/event.js';
import type { Logger } from '../log.js';
import { parseDuration } from '../policy/durations.js';
import { isLoopback, readBody } from '../transport/http-guard.js';
import { DashboardData } from './data.js';
import { serveEvents, streamStart } from './events.js';
import { DashboardGuard } from './guard.js';
import type { ProxyStoreFlags } from './proxy-stores.js';

export interface DashboardOptions {
  bind: string;
  /** 0 picks a free port. */
  port: number;
  token?: string;
  eventsDir: string;
  /** With -c: the proxy's stores, for approvals and counters. */
  stores?: ProxyStoreFlags;
  /** Where this process records the decisions made on the page. */
  trail: EventSink;
  log: Logger;
  /** Between heartbeats on the event stream (default 15 s). */
  heartbeatMs?: number;
  /** How often the trail's files are looked at for new records (default 250 ms). */
  pollMs?: number;
}

export interface Dashboard {
  /** http://<bind>:<port>/ */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The options cannot be served safely (the message says why). */
export class DashboardRefused extends Error {}

const DEFAULT_HEARTBEAT_MS = 15_000;
const DEFAULT_SINCE_MS = 60 * 60 * 1000;
const MAX_SINCE_MS = 7 * 24 * 60 * 60 * 1000;
const MAX_BODY_BYTES = 16 * 1024;
/** Open event streams at once (a browser tab holds one). */
const MAX_STREAMS = 32;
const DECIDE_PATH = /^\/api\/approvals\/([^/]+)\/(approve|deny)$/;

const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

// src/dashboard/ and dist/dashboard/ are both two levels below the package root.
const ASSETS_DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url));
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

/** Why these options cannot be served safely, or undefined: beyond loopback, a token. */
export function refusal(opts: Pick<DashboardOptions, 'bind' | 'token'>): string | undefined {
  if (isLoopback(opts.bind) || opts.token !== undefined) return undefined;
  return `--bind ${opts.bind} can be reached from other machines: set --token (or INTERCEPT_DASHBOARD_TOKEN), which every request must then carry`;
}

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const refused = refusal(opts);
  if (refused !== undefined) throw new DashboardRefused(refused);
  let assets: Map<string, { body: Buffer; type: string }>;
  try {
    assets = new Map(Object.entries(ASSETS).map(([path, a]) => [path, { body: readFileSync(ASSETS_DIR + a.file), type: a.type }]));
  } catch (err) {
    throw new Error(`the page's files cannot be read from ${ASSETS_DIR} (a broken install?): ${(err as Error).message}`);
  }
  const data = new DashboardData({ eventsDir: opts.eventsDir, stores: opts.stores, trail: opts.trail, log: opts.log, now: Date.now });
  let guard: DashboardGuard | undefined;
  let streams = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (guard === undefined) return json(res, 503, { error: 'Starting' });
    const admitted = guard.admit(req, url);
    if (admitted.ok === 'login') {
      res.writeHead(303, { Location: '/', 'Set-Cookie': admitted.cookie, 'Cache-Control': 'no-store' });
      return void res.end();
    }
    if (!admitted.ok) {
      // A page left open across a restart asks without a valid cookie every few seconds: only
      // the guards' refusals are worth a warning.
      const fields = { status: admitted.status, path: url.pathname, host: req.headers.host, origin: req.headers.origin };
      if (admitted.status === 403) opts.log.warn('refused a dashboard request', fields);
      else opts.log.debug('refused a dashboard request without the token', fields);
      const extra: Record<string, string> = admitted.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {};
      if (url.pathname.startsWith('/api/')) return json(res, admitted.status, { error: admitted.message }, extra);
      res.writeHead(admitted.status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...extra });
      return void res.end(`${admitted.message}\n`);
    }

    const path = url.pathname;
    const asset = assets.get(path);
    if (asset !== undefined) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'Use GET' }, { Allow: 'GET, HEAD' });
      res.writeHead(200, { 'Content-Type': asset.type, 'Content-Length': String(asset.body.length), 'Cache-Control': 'no-cache' });
      return void res.end(req.method === 'HEAD' ? undefined : asset.body);
    }
    if (path === '/api/summary') {
      if (req.method !== 'GET') return json(res, 405, { error: 'Use GET' }, { Allow: 'GET' });
      const sinceText = url.searchParams.get('since');
      const seconds = sinceText === null ? DEFAULT_SINCE_MS / 1000 : parseDuration(sinceText);
      if (seconds === undefined || seconds * 1000 > MAX_SINCE_MS) return json(res, 400, { error: 'since must be a duration such as 30m, 1h or 7d (at most 7d)' });
      try {
        return json(res, 200, await data.summary(seconds * 1000));
      } catch (err) {
        return json(res, 503, { error: `cannot read the events directory ${JSON.stringify(opts.eventsDir)}: ${(err as Error).message}` });
      }
    }
    if (path === '/api/events') {
      if (req.method !== 'GET') return json(res, 405, { error: 'Use GET' }, { Allow: 'GET' });
      const lastId = req.headers['last-event-id'];
      const start = streamStart(url.searchParams.get('since'), typeof lastId === 'string' ? lastId : undefined, Date.now());
      if (start === undefined) return json(res, 400, { error: 'since must be an ISO time or milliseconds since the epoch' });
      if (streams >= MAX_STREAMS) return json(res, 503, { error: 'Too many open event streams' }, { 'Retry-After': '5' });
      streams++;
      return serveEvents(req, res, start, { dir: opts.eventsDir, heartbeatMs: opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS, pollMs: opts.pollMs, now: Date.now }, () => streams--);
    }
    if (path === '/api/approvals') {
      if (req.method !== 'GET') return json(res, 405, { error: 'Use GET' }, { Allow: 'GET' });
      const listed = await data.listApprovals(url.searchParams.get('status') ?? undefined);
      return 'badStatus' in listed ? json(res, 400, { error: listed.badStatus }) : json(res, 200, listed);
    }
    const decide = DECIDE_PATH.exec(path);
    if (decide !== null) {
      if (req.method !== 'POST') return json(res, 405, { error: 'Use POST' }, { Allow: 'POST' });
      const id = decide[1]!;
      if (!isApprovalId(id)) return json(res, 404, { error: `No approval request ${JSON.stringify(id)}` });
      const body = await jsonBody(req);
      if (body.error !== undefined) return json(res, body.status, { error: body.error });
      const out = await data.decide(id, decide[2] === 'approve', body.value);
      return out.status === 200 ? json(res, 200, out.approval) : json(res, out.status, { error: out.error, approval: out.approval });
    }
    return json(res, 404, { error: 'Not found' });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.log.error('internal error while serving a dashboard request', { error: String(err) });
      if (!res.headersSent) json(res, 500, { error: 'Internal error' });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.bind, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  guard = new DashboardGuard({ bind: opts.bind, port, token: opts.token });
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}/`,
    port,
    async close() {
      server.close();
      server.closeAllConnections();
      await data.close();
    },
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/** A POST's body: empty, or JSON (sent as application/json, which no plain HTML form can). */
async function jsonBody(req: IncomingMessage): Promise<{ value: unknown; error?: undefined } | { error: string; status: 400 | 413 | 415 }> {
  const body = await readBody(req, MAX_BODY_BYTES);
  if (body.kind === 'too_large') return { error: `The body must be at most ${MAX_BODY_BYTES} bytes`, status: 413 };
  if (body.kind === 'aborted') return { error: 'The body was not received', status: 400 };
  if (body.text.trim() === '') return { value: undefined };
  if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) return { error: 'The body must be sent as application/json', status: 415 };
  try {
    return { value: JSON.parse(body.text) as unknown };
  } catch {
    return { error: 'The body is not JSON', status: 400 };
  }
}
