// The root command: check the flags, load the policy, start the proxy.
import { readFile } from 'node:fs/promises';
import { compile } from '../engine/compile.js';
import { parseByteSize } from '../jsonrpc/framing.js';
import { createLogger, type LogLevel } from '../log.js';
import { formatIssue } from '../policy/format.js';
import { parsePolicy } from '../policy/load.js';
import { PolicyHolder } from '../proxy/policy-holder.js';
import { readLockFile, ToolLock } from '../proxy/lock.js';
import { runStdioProxy } from '../proxy/run-stdio.js';
import { parseSessionKey } from '../proxy/session-key.js';
import { checkOrigin, isLoopback } from '../transport/http-guard.js';
import type { SessionContext } from '../proxy/context.js';
import { prepareUpstream, type UpstreamSpec } from '../transport/upstream.js';
import { checkStateDsn, openCounterStore, policyNamespace } from '../state/open.js';
import { lazyApprovalStore } from '../approval/lazy.js';
import { approvalWebhook } from '../approval/webhook.js';
import { sha256 } from '../audit/chain.js';
import { openObservability, parseMetricsPort, parseRetention, type ObservabilityFlags } from './observability.js';
import { parseIdentityFlags } from './identity-flags.js';
import { checkUrlFlag, type OAuthSettings } from '../proxy/oauth.js';

export interface ProxyFlags extends ObservabilityFlags {
  /** Intercept's own version, for the startup event. */
  version: string;
  config?: string;
  upstream?: string;
  header: string[];
  upstreamTransport: 'auto' | 'streamable' | 'sse';
  transport: 'stdio' | 'http' | 'sse';
  bind: string;
  port: string;
  stateDir?: string;
  stateDsn?: string;
  statePrefix?: string;
  stateFailMode: 'open' | 'closed';
  logLevel: LogLevel;
  maxMessageSize: string;
  maxMessageDepth: string;
  watch: boolean;
  /** Lock file of pinned tool definitions. */
  lock?: string;
  /** --bind or --port was given on the command line (not just defaulted). */
  listenerFlagsGiven: boolean;
  /** HTTP listener: bearer token every request must carry (or env INTERCEPT_AUTH_TOKEN). */
  authToken?: string;
  /** HTTP listener: bearer token of the /approvals endpoints (or env INTERCEPT_APPROVALS_TOKEN). */
  approvalsToken?: string;
  /** POST each new approval request here. */
  approvalWebhook?: string;
  approvalWebhookSecret?: string;
  /** HTTP listener: browser origins allowed besides localhost ones. */
  allowedOrigin?: string[];
  /** HTTP listener: how agents are told apart (session, token, client-info, header:<Name>). */
  sessionKey?: string;
  /** HTTP listener: seconds an unused session lives. */
  sessionIdleTimeout?: string;
  /** How long a forwarded call may go unanswered ("5m"; "0": forever). */
  callTimeout?: string;
  /** On SIGINT or SIGTERM, how long calls in flight get to be answered ("5s"). */
  drainTimeout?: string;
  /** --identity KEY=VALUE: who the stdio session's calls are made by. */
  identity?: string[];
  /** HTTP listener: the OAuth authorization server whose bearer JWTs are accepted. */
  oauthIssuer?: string;
  jwksUrl?: string;
  oauthAudience?: string;
  oauthResource?: string;
  oauthRequiredScope?: string[];
}

function usage(message: string): number {
  process.stderr.write(`intercept: ${message}\nRun 'intercept --help' for usage.\n`);
  return 2;
}

export async function runProxyCommand(flags: ProxyFlags, command: string[] | undefined): Promise<number> {
  if (!flags.config) return usage('a policy file is required: -c policy.yaml');
  if (flags.listenerFlagsGiven && flags.transport === 'stdio') {
    return usage('--bind, --port, --auth-token, --approvals-token, --allowed-origin, --session-key and --session-idle-timeout require --transport http or --transport sse');
  }
  if (flags.header.length > 0 && !flags.upstream) return usage('--header requires --upstream');
  const identityFlags = flags.identity ?? [];
  if (identityFlags.length > 0 && flags.transport !== 'stdio') return usage('--identity applies to --transport stdio only: one caller for the one session');
  const identity = identityFlags.length === 0 ? undefined : parseIdentityFlags(identityFlags);
  if (typeof identity === 'string') return usage(identity);
  if ((flags.upstreamTransport ?? 'auto') !== 'auto' && !flags.upstream) return usage('--upstream-transport requires --upstream');
  const headers = parseHeaderFlags(flags.header);
  if (typeof headers === 'string') return usage(headers);
  if (flags.upstream !== undefined) {
    const bad = checkUpstreamUrl(flags.upstream);
    if (bad) return usage(bad);
  }
  if (flags.stateDir && flags.stateDsn) return usage('--state-dir and --state-dsn cannot be used together');
  const badDsn = flags.stateDsn === undefined ? undefined : checkStateDsn(flags.stateDsn);
  if (badDsn) return usage(badDsn);
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return usage(`--port must be a port number, got ${JSON.stringify(flags.port)}`);
  const maxMessageBytes = parseByteSize(flags.maxMessageSize);
  if (maxMessageBytes === null) return usage(`--max-message-size must be a size such as 4MiB, got ${JSON.stringify(flags.maxMessageSize)}`);
  const maxMessageDepth = Number(flags.maxMessageDepth);
  if (!Number.isInteger(maxMessageDepth) || maxMessageDepth < 8 || maxMessageDepth > 1000) {
    return usage(`--max-message-depth must be a whole number from 8 to 1000, got ${JSON.stringify(flags.maxMessageDepth)}`);
  }
  const hasCommand = command !== undefined && command.length > 0;
  if (hasCommand && flags.upstream) return usage('cannot specify both a server command (after --) and --upstream URL');
  if (!hasCommand && !flags.upstream) return usage("specify either a server command after '--' or --upstream URL");

  const sessionKey = parseSessionKey(flags.sessionKey ?? 'session');
  if (typeof sessionKey === 'string') return usage(sessionKey);
  for (const origin of flags.allowedOrigin ?? []) {
    const bad = checkOrigin(origin);
    if (bad) return usage(bad);
  }
  const idleSeconds = Number(flags.sessionIdleTimeout ?? '1800');
  if (!Number.isFinite(idleSeconds) || idleSeconds < 0) {
    return usage(`--session-idle-timeout must be a number of seconds (0 = never), got ${JSON.stringify(flags.sessionIdleTimeout)}`);
  }
  const authToken = flags.authToken === undefined || flags.authToken === '' ? undefined : flags.authToken;
  const oauth = oauthSettings(flags, authToken !== undefined);
  if (typeof oauth === 'string') return usage(oauth);
  const approvalsToken = flags.approvalsToken === undefined || flags.approvalsToken === '' ? undefined : flags.approvalsToken;
  if (approvalsToken !== undefined && approvalsToken === authToken) {
    return usage('--approvals-token must differ from --auth-token: an agent holding its own token must not be able to approve its calls');
  }
  if (flags.approvalWebhook !== undefined && !/^https?:\/\//.test(flags.approvalWebhook)) {
    return usage(`--approval-webhook must be an http:// or https:// URL, got ${JSON.stringify(flags.approvalWebhook)}`);
  }

  const callTimeoutMs = timeoutFlag('--call-timeout', flags.callTimeout ?? '5m');
  if (typeof callTimeoutMs === 'string') return usage(callTimeoutMs);
  const drainMs = timeoutFlag('--drain-timeout', flags.drainTimeout ?? '5s');
  if (typeof drainMs === 'string') return usage(drainMs);

  const retention = parseRetention(flags.eventsRetention);
  if (typeof retention === 'string') return usage(retention);
  const metricsPort = parseMetricsPort(flags.metricsPort);
  if (typeof metricsPort === 'string') return usage(metricsPort);
  if (flags.metricsBind !== undefined && metricsPort === undefined) return usage('--metrics-bind requires --metrics-port');

  const log = createLogger(flags.logLevel);
  let text: string;
  try {
    text = await readFile(flags.config, 'utf8');
  } catch (err) {
    log.error(`cannot read the policy file ${JSON.stringify(flags.config)}: ${(err as Error).message}`);
    return 1;
  }
  const loaded = parsePolicy(text, flags.config);
  if (!loaded.ok) {
    log.error(`the policy file has ${loaded.issues.length} error(s); not starting`);
    for (const issue of loaded.issues) process.stderr.write(formatIssue(issue) + '\n');
    return 1;
  }
  for (const warning of loaded.warnings ?? []) log.warn(`policy warning: ${formatIssue(warning)}`);
  const loadLock = async (file: string): Promise<ToolLock | string> => {
    const read = await readLockFile(file);
    return read.ok ? new ToolLock(read.lock, file) : read.message;
  };
  const lock = flags.lock === undefined ? undefined : await loadLock(flags.lock);
  if (typeof lock === 'string') {
    log.error(`${lock}; not starting`);
    return 1;
  }
  const statePrefix = flags.statePrefix ?? policyNamespace(flags.config);
  let state;
  try {
    state = await openCounterStore({ stateDir: flags.stateDir, stateDsn: flags.stateDsn, prefix: statePrefix, log });
  } catch (err) {
    log.error(`cannot open the counter store: ${(err as Error).message}`);
    return 1;
  }
  // Opened on first use: a proxy whose policy never asks for approval keeps no approval file
  // or connection. Should it fail to open then, calls that need approval are refused.
  const lazyApprovals = lazyApprovalStore({ stateDir: flags.stateDir, stateDsn: flags.stateDsn, prefix: statePrefix, log });
  const holder = new PolicyHolder(compile(loaded.policy), text);
  let observed;
  try {
    const parts = { counters: state.store, approvals: lazyApprovals, failMode: flags.stateFailMode, policy: () => holder.current(), env: process.env, version: flags.version };
    observed = await openObservability(flags, parts, log);
  } catch (err) {
    log.error(`${(err as Error).message}; not starting`);
    await state.store.close().catch(() => {});
    return 1;
  }
  const { approvals } = observed;
  const onApprovalRequested = flags.approvalWebhook === undefined ? undefined : approvalWebhook(flags.approvalWebhook, flags.approvalWebhookSecret, log);
  holder.events = observed.events;
  if (flags.watch) holder.watch(flags.config, log);
  if (lock !== undefined) {
    holder.setLock(lock);
    if (flags.watch) holder.watchLock(lock.file, () => loadLock(lock.file), log);
    log.info('tools pinned', { lock: lock.file, tools: Object.keys(lock.data.tools).length });
  }

  let upstream: UpstreamSpec;
  let server: string;
  if (flags.upstream) {
    upstream = { kind: 'http', url: flags.upstream, headers, transport: flags.upstreamTransport ?? 'auto' };
    const { describeUrl } = await import('../transport/http-negotiation.js');
    server = describeUrl(new URL(flags.upstream));
  } else {
    const [cmd, ...args] = command!;
    upstream = { kind: 'command', command: cmd!, args };
    server = cmd!;
  }
  log.info('starting', { policy: flags.config, server, counters: state.description, failMode: flags.stateFailMode, dryRun: flags.dryRun || undefined });
  if (flags.dryRun) log.warn('dry run: every call is decided and recorded, and forwarded even when the policy would deny it');
  await prepareUpstream(upstream);
  observed.started({ version: flags.version, policy: flags.config, policyHash: sha256(text), transport: flags.transport, upstream: server, counters: state.description });
  const session: SessionContext = {
    upstream,
    policy: holder,
    store: observed.counters,
    approvals,
    onApprovalRequested,
    observers: observed.observers,
    log,
    maxMessageBytes,
    maxMessageDepth,
    failMode: flags.stateFailMode,
    callTimeoutMs,
    drainMs,
    identity,
  };
  const listen = async (context: SessionContext): Promise<number> => {
    const { runHttpProxy } = await import('../proxy/run-http.js');
    if (!isLoopback(flags.bind) && authToken === undefined && oauth === undefined) {
      process.stderr.write(
        `\nintercept: WARNING: listening on ${flags.bind}, which other machines can reach, without --auth-token.\n` +
          'intercept: WARNING: anyone who can connect can use the MCP server behind this proxy. Set --auth-token (or INTERCEPT_AUTH_TOKEN).\n\n',
      );
    }
    return runHttpProxy({
      ...context,
      mode: flags.transport as 'http' | 'sse',
      bind: flags.bind,
      port,
      authToken,
      oauth,
      keyBySubject: oauth !== undefined && flags.sessionKey === undefined,
      approvalsToken,
      allowedOrigins: flags.allowedOrigin ?? [],
      sessionKey,
      idleTimeoutMs: idleSeconds * 1000,
      onListening: (url) => process.stderr.write(`Intercept listening on ${url}\n`),
    });
  };
  const code = flags.transport === 'stdio' ? await runStdioProxy(session) : await listen(session);
  await observed.stopped(code);
  await Promise.all([state.store.close(), approvals.close()]).catch(() => {});
  // Exit now: a stdio client may still hold our stdin open, and the server is gone.
  process.exit(code);
}

/** The --oauth-* and --jwks-url flags as settings (undefined: OAuth is off), or why they cannot
 * be used. */
export function oauthSettings(flags: ProxyFlags, hasAuthToken: boolean): OAuthSettings | undefined | string {
  const scopes = flags.oauthRequiredScope ?? [];
  const given = [
    flags.jwksUrl !== undefined && '--jwks-url',
    flags.oauthAudience !== undefined && '--oauth-audience',
    flags.oauthResource !== undefined && '--oauth-resource',
    scopes.length > 0 && '--oauth-required-scope',
  ].filter((f): f is string => f !== false);
  if (flags.oauthIssuer === undefined) {
    return given.length === 0 ? undefined : `${given[0]} requires --oauth-issuer (tokens are accepted from that issuer only)`;
  }
  if (flags.transport === 'stdio') return '--oauth-issuer requires --transport http or --transport sse: on stdio there is no bearer token to verify (use --identity)';
  if (hasAuthToken) return '--auth-token and --oauth-issuer cannot be used together: choose one way of checking bearer tokens';
  for (const [name, value] of [['--oauth-issuer', flags.oauthIssuer], ['--jwks-url', flags.jwksUrl], ['--oauth-resource', flags.oauthResource]] as const) {
    const bad = value === undefined ? undefined : checkUrlFlag(name, value);
    if (bad) return bad;
  }
  if (flags.oauthAudience === '') return '--oauth-audience must not be empty';
  for (const scope of scopes) {
    // RFC 6749 §3.3: a scope token is printable ASCII without space, `"` or `\`.
    if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope)) return `--oauth-required-scope must be one scope (no spaces or quotes), got ${JSON.stringify(scope)}`;
  }
  if (flags.oauthResource === undefined && (flags.bind === '0.0.0.0' || flags.bind === '::' || flags.bind === '[::]')) {
    return `--oauth-resource is required with --bind ${flags.bind}: give the URL clients reach the listener by (tokens name it as their audience)`;
  }
  return {
    issuer: flags.oauthIssuer,
    jwksUrl: flags.jwksUrl,
    resource: flags.oauthResource,
    audience: flags.oauthAudience,
    requiredScopes: [...new Set(scopes)],
  };
}

/** A timeout flag in milliseconds: `0` (none), whole seconds (`90`), or a number with a unit
 * (`500ms`, `30s`, `5m`, `1h`); a sentence saying why not otherwise. */
export function timeoutFlag(name: string, text: string): number | string {
  const m = /^([0-9]{1,9})(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return `${name} must be a duration such as 30s, 5m or 500ms (0 for none), got ${JSON.stringify(text)}`;
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']!;
  return Number(m[1]) * scale;
}

/** Headers the upstream transport sets itself (or HTTP does): --header cannot set them. */
const TRANSPORT_HEADERS = new Set([
  'accept',
  'connection',
  'content-length',
  'content-type',
  'host',
  'last-event-id',
  'mcp-method',
  'mcp-name',
  'mcp-protocol-version',
  'mcp-session-id',
  'transfer-encoding',
]);

/** `--header "Name: Value"` flags as a header map, or what is wrong with them. */
export function parseHeaderFlags(values: string[]): Record<string, string> | string {
  const headers: Record<string, string> = {};
  const seen = new Set<string>();
  for (const raw of values) {
    const colon = raw.indexOf(':');
    const name = colon === -1 ? '' : raw.slice(0, colon);
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) return `--header must look like "Name: Value", got ${JSON.stringify(raw)}`;
    const value = raw.slice(colon + 1).trim();
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) return `--header ${JSON.stringify(name)} has a control character in its value`;
    const lower = name.toLowerCase();
    if (TRANSPORT_HEADERS.has(lower)) return `--header cannot set ${name}: the proxy sets it itself`;
    if (seen.has(lower)) return `--header ${name} is given more than once; give each header one value`;
    seen.add(lower);
    headers[name] = value;
  }
  return headers;
}

/** Why an --upstream value cannot be used, or undefined when it can. */
export function checkUpstreamUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `--upstream must be an http:// or https:// URL, got ${JSON.stringify(value)}`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `--upstream must be an http:// or https:// URL, got ${JSON.stringify(value)}`;
  return undefined;
}
