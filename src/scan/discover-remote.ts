// Lists the tools of a remote MCP server (`intercept scan --upstream <url>`, with or without
// `--lock`). The transport is chosen as the proxy's remote upstream chooses it: Streamable HTTP
// through the official v1 SDK client, falling back to the legacy HTTP+SSE transport when the
// first POST is refused the way only an old server refuses it; a server that answers that POST
// with a 2026-07-28 error (it speaks only the new era) is asked again with the v2 client, which
// negotiates the era.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  describeUrl,
  errorText,
  isModernRefusal,
  jsonRpcErrorOf,
  speaksLegacySse,
  sseCandidates,
  startsWithSse,
  type Refusal,
} from '../transport/http-negotiation.js';
import { formatMs, listAllTools, listToolDefinitions, listToolsLeniently, ScanError, type Discovery, type ToolsPage } from './discover.js';

export interface RemoteDiscoverOptions {
  url: string;
  /** Extra request headers (`--header`), e.g. Authorization. */
  headers: Record<string, string>;
  transport: 'auto' | 'streamable' | 'sse';
  /** Whole scan: connect, handshake and every page. */
  timeoutMs: number;
  progress?: (line: string) => void;
  clientVersion?: string;
}

/** The open connection of one attempt, whichever client made it. */
interface Connected {
  server: { name: string; version: string };
  via: string;
  listPage: (cursor: string | undefined) => Promise<ToolsPage>;
}

/** The server's tools as the scaffold describes them (`intercept scan`). */
export function discoverRemote(opts: RemoteDiscoverOptions): Promise<Discovery> {
  return withRemoteServer(opts, async (connected, progress) => ({
    server: connected.server,
    tools: await listAllTools(connected.listPage, (why) => new ScanError(`tools/list failed: ${why}`), progress),
  }));
}

/** Every tool definition exactly as the server lists it, for a lock file (`scan --lock`). */
export function listRemoteDefinitions(opts: RemoteDiscoverOptions): Promise<{ server: { name: string; version: string }; tools: ToolsPage['tools'] }> {
  return withRemoteServer(opts, async (connected) => ({
    server: connected.server,
    tools: await listToolDefinitions(connected.listPage, (why) => new ScanError(`tools/list failed: ${why}`)),
  }));
}

/** Connects (choosing the transport), hands the connection to `use`, and closes it; the
 * timeout covers all of it. */
async function withRemoteServer<T>(opts: RemoteDiscoverOptions, use: (connected: Connected, progress: (line: string) => void) => Promise<T>): Promise<T> {
  const url = new URL(opts.url);
  const where = describeUrl(url);
  const progress = opts.progress ?? (() => {});
  const clientInfo = { name: 'intercept-scan', version: opts.clientVersion ?? '0.0.0' };
  const userHeaders = new Headers(opts.headers);

  let reached = false;
  /** The last POST the server refused: what it said decides the fallback. */
  let refusal: Refusal | undefined;
  const fetchWithHeaders: FetchLike = async (target, init) => {
    // The transport's own headers win over the user's (the flags cannot set those anyway).
    const headers = new Headers(userHeaders);
    new Headers(init?.headers).forEach((value, name) => headers.set(name, value));
    const response = await fetch(target, { ...init, headers });
    reached = true;
    if (init?.method === 'POST' && !response.ok) {
      const text = await response.clone().text().catch(() => '');
      refusal = { status: response.status, statusText: response.statusText, error: jsonRpcErrorOf(text), hadSession: headers.has('mcp-session-id') };
    }
    return response;
  };

  const open: Array<() => Promise<void>> = [];
  async function connectV1(transport: Transport, via: string): Promise<Connected> {
    const client = new Client(clientInfo, { capabilities: {} });
    open.push(async () => {
      // A Streamable HTTP session is ended, not just left to expire.
      if (transport instanceof StreamableHTTPClientTransport && transport.sessionId) await transport.terminateSession().catch(() => {});
      await client.close();
    });
    await client.connect(transport);
    const info = client.getServerVersion();
    return {
      server: { name: info?.name ?? 'unknown', version: info?.version ?? 'unknown' },
      via,
      listPage: (cursor) => listToolsLeniently(client, cursor),
    };
  }

  async function connectSse(candidates: URL[]): Promise<Connected> {
    let lastError: unknown;
    for (const candidate of candidates) {
      try {
        return await connectV1(new SSEClientTransport(candidate, { fetch: fetchWithHeaders }), 'HTTP+SSE');
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  /** The v2 client, loaded only for servers that speak nothing but the 2026-07-28 era. */
  async function connectModern(): Promise<Connected> {
    const v2 = await import('@modelcontextprotocol/client');
    const client = new v2.Client(clientInfo, { capabilities: {}, versionNegotiation: { mode: 'auto' } });
    open.push(() => client.close());
    await client.connect(new v2.StreamableHTTPClientTransport(url, { fetch: fetchWithHeaders }));
    const info = client.getServerVersion();
    return {
      server: { name: info?.name ?? 'unknown', version: info?.version ?? 'unknown' },
      via: 'Streamable HTTP (2026-07-28)',
      listPage: async (cursor) => (await client.listTools(cursor === undefined ? {} : { cursor })) as unknown as ToolsPage,
    };
  }

  /** Why the server could not be used, from what it said (or that nothing answered). */
  function failure(err: unknown): ScanError {
    if (!reached) return new ScanError(`cannot reach ${where}: ${errorText(err)}`);
    const r = refusal;
    if (r) {
      const status = `HTTP ${r.status}${r.statusText ? ` ${r.statusText}` : ''}`;
      if (r.status === 401 || r.status === 403) {
        return new ScanError(`${where} answered ${status}: pass credentials with --header, e.g. --header "Authorization: Bearer <token>"`);
      }
      return new ScanError(`${where} answered ${status}${r.error ? `: ${r.error.message}` : ''}`);
    }
    return new ScanError(`could not connect to ${where}: ${errorText(err)}`);
  }

  async function connect(): Promise<Connected> {
    if (startsWithSse(url, opts.transport)) {
      try {
        return await connectSse([url]);
      } catch (err) {
        throw failure(err);
      }
    }
    try {
      return await connectV1(new StreamableHTTPClientTransport(url, { fetch: fetchWithHeaders }), 'Streamable HTTP');
    } catch (err) {
      const first = refusal;
      if (first && isModernRefusal(first)) {
        progress('the server speaks only the 2026-07-28 protocol; negotiating with it');
        try {
          return await connectModern();
        } catch (modernErr) {
          throw failure(modernErr);
        }
      }
      if (opts.transport === 'auto' && first && speaksLegacySse(first)) {
        progress(`the server does not speak Streamable HTTP (HTTP ${first.status}); trying HTTP+SSE`);
        try {
          return await connectSse(sseCandidates(url));
        } catch {
          // Not an HTTP+SSE server either: the first refusal is the answer.
          refusal = first;
        }
      }
      throw failure(err);
    }
  }

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ScanError(`scan timed out after ${formatMs(opts.timeoutMs)}: ${where} did not answer`)), opts.timeoutMs);
  });

  const work = async (): Promise<T> => {
    progress(`connecting to ${where}…`);
    const connected = await connect();
    progress(`connected to ${connected.server.name} ${connected.server.version} over ${connected.via}`);
    return use(connected, progress);
  };

  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
    await Promise.all(open.map((close) => close().catch(() => {})));
  }
}
