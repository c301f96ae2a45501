// `intercept -c policy.yaml --transport http|sse ...`: an HTTP listener in front of the upstream.
//   http  Streamable HTTP at /mcp. 2025 clients get a session each (Mcp-Session-Id) with its own
//         interceptor and upstream; 2026-07-28 clients are served statelessly (modern-hub.ts).
//   sse   the legacy HTTP+SSE transport: GET /sse opens a session, POST /message?sessionId=.
// Streamable HTTP is answered by Intercept's own framing (transport/streamable-server.ts); the
// legacy transport by the SDK's SSE server transport, loaded only in that mode. This file
// decides who gets in (http-guard.ts; with --oauth-issuer, oauth.ts, whose verified subject then
// owns the session), which session a request belongs to, and when sessions end. On SIGINT or
// SIGTERM no session is started any more, the calls in flight get a while to be answered
// (drain.ts), and then every session ends.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { isModernVersion, modernVersionOf } from '../jsonrpc/eras.js';
import { HEADER_MISMATCH, INVALID_REQUEST, PARSE_ERROR, SESSION_NOT_FOUND, TRANSPORT_ERROR } from '../jsonrpc/errors.js';
import { exceedsDepth } from '../jsonrpc/depth.js';
import { classify, isObject } from '../jsonrpc/message.js';
import {
  OriginPolicy,
  bearerToken,
  hostAllowed,
  readBody,
  sendHttpError,
  tokenMatches,
} from '../transport/http-guard.js';
import { headerMismatch } from '../transport/modern-http.js';
import { StreamableSessionTransport } from '../transport/streamable-server.js';
import type { SessionContext } from './context.js';
import { HttpSession } from './http-session.js';
import { ModernHub } from './modern-hub.js';
import { offersChanged } from './offers.js';
import { isApprovalsPath, serveApprovals } from './approvals-http.js';
import { sessionKeyFor, type SessionKeySpec } from './session-key.js';
import { DEFAULT_DRAIN_MS, drain, secondSignal } from './drain.js';
import type { Interceptor } from './interceptor.js';
import type { Identity } from '../engine/types.js';
import { OAuthVerifier, type Caller, type OAuthSettings } from './oauth.js';

export interface HttpProxyOptions extends SessionContext {
  mode: 'http' | 'sse';
  bind: string;
  /** 0 picks a free port. */
  port: number;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  authToken?: string;
  /** When set, every request needs a bearer JWT of this authorization server (oauth.ts), and
   * each session is its subject's. Not together with `authToken`. */
  oauth?: OAuthSettings;
  /** With `oauth` and no --session-key: `scope: session` counters are kept per subject. */
  keyBySubject?: boolean;
  /** When set, the approval endpoints (approvals-http.ts) are served to this token only. */
  approvalsToken?: string;
  allowedOrigins: string[];
  sessionKey: SessionKeySpec;
  /** Sessions unused this long are ended; 0 keeps them until they end otherwise. */
  idleTimeoutMs: number;
  /** Called once the listener accepts connections, with the URL clients use. */
  onListening?(url: string): void;
}

export const MCP_PATH = '/mcp';
export const SSE_PATH = '/sse';
export const MESSAGE_PATH = '/message';

/** 192 random bits, URL-safe: session ids must be unguessable. */
function newSessionId(): string {
  return randomBytes(24).toString('base64url');
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

const NOT_FOUND_SESSION = 'Session not found; start a new one (initialize without Mcp-Session-Id)';

/** Slow clients are cut off (Node answers 408 and closes the connection): the request's
 * headers must have arrived within HEADERS_TIMEOUT_MS, and all of it within REQUEST_TIMEOUT_MS
 * (answers may take as long as they take). Checked every CHECK_EVERY_MS. */
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
const CHECK_EVERY_MS = 1_000;

/** Runs the listener until SIGINT or SIGTERM; resolves with the exit status (0). */
export async function runHttpProxy(opts: HttpProxyOptions): Promise<number> {
  const listener = new HttpListener(opts);
  const url = await listener.listen();
  opts.onListening?.(url);
  const { hurried, hurry } = secondSignal();
  let signalled!: (signal: NodeJS.Signals) => void;
  const first = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      opts.log.info(`received ${signal} again; answering what is in flight now`);
      hurry();
      return;
    }
    stopping = true;
    signalled(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const signal = await first;
  opts.log.info(`received ${signal}; taking no new sessions or requests, then ending every session`);
  await listener.close(opts.drainMs ?? DEFAULT_DRAIN_MS, hurried);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return 0;
}

export class HttpListener {
  private readonly server: Server;
  private readonly sessions = new Map<string, HttpSession>();
  private readonly hubs = new Map<string, ModernHub>();
  private readonly origins: OriginPolicy;
  private verifier?: OAuthVerifier;
  /** With OAuth, each session's and each stateless client's caller, updated by every request
   * of the same subject (a refreshed token may carry other scopes or claims). */
  private readonly callers = new WeakMap<object, Caller>();
  private sweeper?: NodeJS.Timeout;
  /** Stopping: no new session is started (the sessions' interceptors refuse new requests). */
  private closing = false;
  /** Stopped: every request is refused. */
  private closed = false;
  /** Everything that must finish before the proxy exits (each upstream's end). */
  private readonly ending = new Set<Promise<void>>();

  constructor(private readonly opts: HttpProxyOptions) {
    this.origins = new OriginPolicy(opts.allowedOrigins);
    const limits = { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: CHECK_EVERY_MS };
    this.server = createServer(limits, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        opts.log.error('internal error while serving an HTTP request', { error: String(err) });
        sendHttpError(res, 500, TRANSPORT_ERROR, 'Internal error in the policy proxy');
      });
    });
    opts.policy.onReload = (previous, next) => {
      if (!offersChanged(previous, next)) return;
      for (const s of this.sessions.values()) s.interceptor?.toolsChanged();
      for (const h of this.hubs.values()) h.interceptor.toolsChanged();
    };
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.bind, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    if (this.opts.idleTimeoutMs > 0) {
      const every = Math.max(100, Math.min(this.opts.idleTimeoutMs / 2, 30_000));
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
    const { address, port } = this.server.address() as AddressInfo;
    const host = address.includes(':') ? `[${address}]` : address;
    const url = `http://${host}:${port}${this.localPath}`;
    if (this.opts.oauth) {
      // The audience and the metadata name the listener's URL, known only now (port 0).
      this.verifier = new OAuthVerifier(this.opts.oauth, url, this.opts.log);
      await this.verifier.prepare();
    }
    return url;
  }

  /** The path MCP clients are served at. */
  private get localPath(): string {
    return this.opts.mode === 'http' ? MCP_PATH : SSE_PATH;
  }

  /** Stops taking new sessions and requests, gives the calls in flight up to `drainMs` to be
   * answered (answering the rest with an error), then ends every session and waits for their
   * upstreams to be gone. `hurry` ends the wait early. */
  async close(drainMs = 0, hurry: Promise<void> = new Promise(() => {})): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    const interceptors: Interceptor[] = [...this.hubs.values()].map((h) => h.interceptor);
    for (const s of this.sessions.values()) if (s.interceptor) interceptors.push(s.interceptor);
    await drain(interceptors, drainMs, hurry);
    this.closed = true;
    this.server.close();
    for (const s of [...this.sessions.values()]) s.end('the proxy is stopping');
    for (const h of [...this.hubs.values()]) h.end('the proxy is stopping');
    await Promise.all(this.ending);
    // Last, so the answers given while stopping have left.
    this.server.closeAllConnections();
    this.opts.policy.close();
  }

  private sweep(): void {
    const cutoff = Date.now() - this.opts.idleTimeoutMs;
    for (const s of [...this.sessions.values()]) {
      if (s.busy === 0 && s.channel.pending === 0 && !s.interceptor?.inFlight && s.lastActive < cutoff) s.end('idle timeout');
    }
    for (const h of [...this.hubs.values()]) {
      if (h.idle && h.lastActive < cutoff) h.end('idle timeout');
    }
  }

  // ---------------------------------------------------------------- the front door

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.closed) {
      sendHttpError(res, 503, TRANSPORT_ERROR, 'The proxy is shutting down', { Connection: 'close' });
      return;
    }
    if (!hostAllowed(req.headers.host, this.opts.bind)) {
      this.opts.log.warn('refused a request with a foreign Host header (DNS rebinding?)', { host: req.headers.host });
      sendHttpError(res, 403, TRANSPORT_ERROR, `Forbidden: Host ${JSON.stringify(req.headers.host ?? '')} is not allowed`);
      return;
    }
    const origin = header(req, 'origin');
    if (!this.origins.allows(origin)) {
      this.opts.log.warn('refused a request from a foreign Origin', { origin });
      sendHttpError(res, 403, TRANSPORT_ERROR, `Forbidden: Origin ${JSON.stringify(origin)} is not allowed`);
      return;
    }
    if (origin !== undefined) {
      // A browser page of an allowed origin may read the answers and the session header.
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Expose-Headers', 'Mcp-Session-Id, WWW-Authenticate');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET, POST, DELETE, OPTIONS',
        'Access-Control-Allow-Headers': header(req, 'access-control-request-headers') ?? 'Content-Type, Authorization, Mcp-Session-Id, MCP-Protocol-Version',
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return;
    }
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    // The approval endpoints have a token of their own (the agents' token must not approve).
    if (isApprovalsPath(path) && this.opts.approvals !== undefined) {
      return serveApprovals(req, res, path, { store: this.opts.approvals, token: this.opts.approvalsToken, log: this.opts.log, now: Date.now });
    }
    if (this.opts.authToken !== undefined && !tokenMatches(bearerToken(req), this.opts.authToken)) {
      this.opts.log.warn('refused a request without the right bearer token');
      sendHttpError(res, 401, TRANSPORT_ERROR, 'Unauthorized: a valid bearer token is required', { 'WWW-Authenticate': 'Bearer' });
      return;
    }
    let caller: Caller | undefined;
    if (this.verifier) {
      // The metadata is how a client learns where to get a token: it needs none itself.
      if (this.verifier.isMetadataPath(path, this.localPath)) return this.serveMetadata(req, res, this.verifier);
      const verdict = await this.verifier.verify(bearerToken(req));
      if (!verdict.ok) {
        this.opts.log.warn(`refused a request: ${verdict.message}`);
        sendHttpError(res, verdict.status, TRANSPORT_ERROR, verdict.message, verdict.challenge === undefined ? {} : { 'WWW-Authenticate': verdict.challenge });
        return;
      }
      caller = verdict.identity;
    }
    if (this.opts.mode === 'http') {
      if (path === MCP_PATH) return this.streamable(req, res, caller);
    } else {
      if (path === SSE_PATH) return this.sseOpen(req, res, caller);
      if (path === MESSAGE_PATH) return this.ssePost(req, res, caller);
    }
    sendHttpError(res, 404, TRANSPORT_ERROR, `Not found: this proxy serves ${this.opts.mode === 'http' ? MCP_PATH : `${SSE_PATH} and ${MESSAGE_PATH}`}`);
  }

  private serveMetadata(req: IncomingMessage, res: ServerResponse, verifier: OAuthVerifier): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendHttpError(res, 405, TRANSPORT_ERROR, 'Method Not Allowed', { Allow: 'GET' });
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'max-age=300' });
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify(verifier.metadata()));
  }

  /** With OAuth, a session belongs to the subject that opened it: another subject's token on
   * it is refused (403), while the same subject's newer token becomes what the policy reads. */
  private sameCaller(res: ServerResponse, owner: object, caller: Caller | undefined): boolean {
    const bound = this.callers.get(owner);
    if (caller === undefined || bound === undefined) return true;
    if (caller.sub !== bound.sub) {
      this.opts.log.warn("refused a request carrying another subject's token on a session", { subject: caller.sub, owner: bound.sub });
      sendHttpError(res, 403, TRANSPORT_ERROR, 'Forbidden: this session belongs to another subject');
      return false;
    }
    bound.scopes = caller.scopes;
    bound.claims = caller.claims;
    if (caller.client_id === undefined) delete bound.client_id;
    else bound.client_id = caller.client_id;
    return true;
  }

  /** Opens a session or a stateless client's hub (`open`) with its own copy of the caller, bound
   * to it for sameCaller. */
  private withCaller<T extends object>(caller: Caller | undefined, open: (ctx: SessionContext) => T): T {
    if (caller === undefined) return open(this.opts);
    const identity = { ...caller };
    const owner = open({ ...this.opts, identity });
    this.callers.set(owner, identity);
    return owner;
  }

  /** The counter key of a request: the token's subject with --oauth-* and no --session-key. */
  private keyFor(req: IncomingMessage, message: unknown, sessionId: string | undefined, caller: Identity | undefined): ReturnType<typeof sessionKeyFor> {
    if (this.opts.keyBySubject && caller?.sub !== undefined) return { ok: true, key: `subject:${caller.sub}` };
    return sessionKeyFor(this.opts.sessionKey, req, message, sessionId);
  }

  /** The body of a POST as one JSON-RPC object, or undefined when an error was sent. */
  private async body(req: IncomingMessage, res: ServerResponse): Promise<Record<string, unknown> | undefined> {
    const body = await readBody(req, this.opts.maxMessageBytes);
    if (body.kind === 'too_large') {
      this.opts.log.warn('refused an oversized request body', { limit: this.opts.maxMessageBytes });
      sendHttpError(res, 413, TRANSPORT_ERROR, `Payload Too Large: the proxy accepts messages up to ${this.opts.maxMessageBytes} bytes`, { Connection: 'close' });
      return undefined;
    }
    if (body.kind === 'aborted') return undefined;
    let value: unknown;
    try {
      value = JSON.parse(body.text);
    } catch {
      sendHttpError(res, 400, PARSE_ERROR, 'Parse error: the body is not JSON');
      return undefined;
    }
    if (Array.isArray(value)) {
      // As on stdio: refusing a batch whole is the one answer that cannot let an element
      // slip past the gate.
      sendHttpError(res, 400, INVALID_REQUEST, 'Invalid Request: JSON-RPC batches are not supported; send each message on its own');
      return undefined;
    }
    if (!isObject(value)) {
      sendHttpError(res, 400, INVALID_REQUEST, 'Invalid Request: a message must be a JSON object');
      return undefined;
    }
    const limit = this.opts.maxMessageDepth;
    if (exceedsDepth(value, limit)) {
      // Checked here, once, before the SDK's transport or anything else walks the body. The
      // session's interceptor still hears of a refused answer to a server request, so that the
      // server gets an error instead of waiting for it.
      const c = classify(value);
      const session = this.sessions.get(header(req, 'mcp-session-id') ?? new URL(req.url ?? '/', 'http://localhost').searchParams.get('sessionId') ?? '');
      if (c.kind === 'response' && session?.interceptor) session.interceptor.fromClient({ kind: 'too_deep', value, limit });
      else this.opts.log.warn(`refused a request body: the message nests deeper than ${limit} levels`);
      sendHttpError(res, 400, INVALID_REQUEST, `Invalid Request: the message nests deeper than ${limit} levels`);
      return undefined;
    }
    return value;
  }

  // ---------------------------------------------------------------- Streamable HTTP

  /** The session a request names, if it exists and belongs to the same agent; otherwise the
   * request has been answered (404, or the agent check's refusal). */
  private knownSession(sessionId: string, req: IncomingMessage, res: ServerResponse, caller: Caller | undefined): HttpSession | undefined {
    const session = this.sessions.get(sessionId);
    if (!session) {
      sendHttpError(res, 404, SESSION_NOT_FOUND, NOT_FOUND_SESSION);
      return undefined;
    }
    return this.sameCaller(res, session, caller) && this.sameAgent(req, res, session) ? session : undefined;
  }

  private async streamable(req: IncomingMessage, res: ServerResponse, caller: Caller | undefined): Promise<void> {
    const method = req.method ?? 'GET';
    const sessionId = header(req, 'mcp-session-id');
    if (method === 'GET' || method === 'DELETE') {
      if (isModernVersion(header(req, 'mcp-protocol-version')) || sessionId === undefined) {
        sendHttpError(res, 405, TRANSPORT_ERROR, 'Method Not Allowed: without a session, only POST is served', { Allow: 'POST' });
        return;
      }
      const session = this.knownSession(sessionId, req, res, caller);
      if (session) await this.serveSession(session, req, res, undefined);
      return;
    }
    if (method !== 'POST') {
      sendHttpError(res, 405, TRANSPORT_ERROR, 'Method Not Allowed', { Allow: 'GET, POST, DELETE' });
      return;
    }
    const message = await this.body(req, res);
    if (!message) return;

    if (modernVersionOf(message) !== undefined || isModernVersion(header(req, 'mcp-protocol-version'))) {
      return this.modern(req, res, message, caller);
    }
    if (sessionId !== undefined) {
      const session = this.knownSession(sessionId, req, res, caller);
      if (session) await this.serveSession(session, req, res, message);
      return;
    }
    if (message.method !== 'initialize') {
      sendHttpError(res, 400, TRANSPORT_ERROR, 'Bad Request: Mcp-Session-Id header is required (or initialize to start a session)');
      return;
    }
    if (this.closing) return this.refuseWhileStopping(res);
    const id = newSessionId();
    const key = this.keyFor(req, message, id, caller);
    if (!key.ok) {
      sendHttpError(res, 400, TRANSPORT_ERROR, `Bad Request: ${key.message}`);
      return;
    }
    const session = this.addSession(id, new StreamableSessionTransport(id), false, caller);
    session.start(key.key);
    // Refused (a wrong Accept header, say): no session after all.
    if (!(await this.serveSession(session, req, res, message))) session.end('the initialize request was refused');
  }

  /** Serves one exchange of a session; false when a POST was refused. */
  private async serveSession(session: HttpSession, req: IncomingMessage, res: ServerResponse, message: Record<string, unknown> | undefined): Promise<boolean> {
    const transport = session.transport as StreamableSessionTransport;
    session.lastActive = Date.now();
    if (message === undefined) {
      if (req.method === 'GET') transport.get(req, res);
      else transport.delete(req, res);
      return true;
    }
    // A session with a request in flight is not idle; an open GET stream alone does not keep
    // it alive.
    session.busy++;
    res.on('close', () => {
      session.busy--;
      session.lastActive = Date.now();
    });
    await session.writable();
    return transport.post(req, res, message);
  }

  private async modern(req: IncomingMessage, res: ServerResponse, message: Record<string, unknown>, caller: Caller | undefined): Promise<void> {
    const mismatch = headerMismatch(req.headers, message);
    if (mismatch) {
      sendHttpError(res, 400, HEADER_MISMATCH, `Header mismatch: ${mismatch.header} does not match the request body`, {}, { mismatch });
      return;
    }
    if (typeof message.method !== 'string') {
      sendHttpError(res, 400, INVALID_REQUEST, 'Invalid Request: a stateless request must be a request or a notification');
      return;
    }
    const key = this.keyFor(req, message, undefined, caller);
    if (!key.ok) {
      sendHttpError(res, 400, TRANSPORT_ERROR, `Bad Request: ${key.message}`);
      return;
    }
    // With OAuth, one hub per subject even when another key (a header) is shared by several.
    const hubKey = caller === undefined || key.key === `subject:${caller.sub}` ? key.key : `${key.key}\u0000subject:${caller.sub}`;
    let hub = this.hubs.get(hubKey);
    if (!hub && this.closing) return this.refuseWhileStopping(res);
    if (!hub) {
      hub = this.withCaller(caller, (ctx) => new ModernHub(key.key, ctx, (h) => {
        if (this.hubs.get(hubKey) === h) this.hubs.delete(hubKey);
      }));
      this.hubs.set(hubKey, hub);
      this.track(hub.done);
    } else if (!this.sameCaller(res, hub, caller)) {
      return;
    }
    await hub.handle(req, res, message);
  }

  // ---------------------------------------------------------------- legacy HTTP+SSE

  private async sseOpen(req: IncomingMessage, res: ServerResponse, caller: Caller | undefined): Promise<void> {
    if (req.method !== 'GET') {
      sendHttpError(res, 405, TRANSPORT_ERROR, 'Method Not Allowed', { Allow: 'GET' });
      return;
    }
    if (this.closing) return this.refuseWhileStopping(res);
    const id = newSessionId();
    // Refuse at once when the agent cannot be identified (client info comes with initialize).
    if (this.opts.sessionKey.kind === 'header' || this.opts.sessionKey.kind === 'token') {
      const key = sessionKeyFor(this.opts.sessionKey, req, undefined, id);
      if (!key.ok) {
        sendHttpError(res, 400, TRANSPORT_ERROR, `Bad Request: ${key.message}`);
        return;
      }
    }
    const sse = await import('@modelcontextprotocol/sdk/server/sse.js');
    const transport = new sse.SSEServerTransport(MESSAGE_PATH, res);
    // The SDK names SSE sessions with a UUID (122 random bits); ours carry 192.
    (transport as unknown as { _sessionId: string })._sessionId = id;
    this.addSession(id, transport as unknown as HttpSession['transport'], true, caller);
    await transport.start();
  }

  private async ssePost(req: IncomingMessage, res: ServerResponse, caller: Caller | undefined): Promise<void> {
    if (req.method !== 'POST') {
      sendHttpError(res, 405, TRANSPORT_ERROR, 'Method Not Allowed', { Allow: 'POST' });
      return;
    }
    const id = new URL(req.url ?? '/', 'http://localhost').searchParams.get('sessionId');
    if (!id) {
      sendHttpError(res, 400, TRANSPORT_ERROR, 'Bad Request: the sessionId query parameter is required');
      return;
    }
    const session = this.sessions.get(id);
    if (!session) {
      sendHttpError(res, 404, SESSION_NOT_FOUND, 'Session not found; open a new SSE stream');
      return;
    }
    if (!this.sameCaller(res, session, caller)) return;
    const message = await this.body(req, res);
    if (!message) return;
    if (!session.started) {
      const key = this.keyFor(req, message, id, caller);
      if (!key.ok) {
        sendHttpError(res, 400, TRANSPORT_ERROR, `Bad Request: ${key.message}`);
        return;
      }
      session.start(key.key);
    } else if (!this.sameAgent(req, res, session)) {
      return;
    }
    session.lastActive = Date.now();
    session.busy++;
    res.on('close', () => {
      session.busy--;
      session.lastActive = Date.now();
    });
    await session.writable();
    await (session.transport as unknown as SSEServerTransport).handlePostMessage(req, res, message);
  }

  private refuseWhileStopping(res: ServerResponse): void {
    sendHttpError(res, 503, TRANSPORT_ERROR, 'The proxy is shutting down', { Connection: 'close' });
  }

  // ---------------------------------------------------------------- sessions

  private addSession(id: string, transport: HttpSession['transport'], standing: boolean, caller: Caller | undefined): HttpSession {
    const session = this.withCaller(caller, (ctx) => new HttpSession(id, transport, ctx, (s) => this.sessions.delete(s.id), standing));
    this.sessions.set(id, session);
    this.track(session.done);
    return session;
  }

  private track(done: Promise<void>): void {
    this.ending.add(done);
    void done.then(() => this.ending.delete(done));
  }

  /** With a header or token key, every request of a session must name the same agent. */
  private sameAgent(req: IncomingMessage, res: ServerResponse, session: HttpSession): boolean {
    const spec = this.opts.sessionKey;
    if (spec.kind !== 'header' && spec.kind !== 'token') return true;
    const key = sessionKeyFor(spec, req, undefined, session.id);
    if (!key.ok) {
      sendHttpError(res, 400, TRANSPORT_ERROR, `Bad Request: ${key.message}`);
      return false;
    }
    if (session.key !== undefined && key.key !== session.key) {
      sendHttpError(res, 400, TRANSPORT_ERROR, 'Bad Request: the agent identity changed within the session');
      return false;
    }
    return true;
  }
}
