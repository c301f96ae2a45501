// One connection to Redis (a server or a cluster), as both Redis stores need it: the counter
// store (redis.ts) and the approval store (approval/redis.ts). What it guarantees is what a
// store of decisions needs from its connection:
//
// - Fail fast, never resend. Commands are not queued while disconnected
//   (`enableOfflineQueue: false`), each times out (default 1000 ms), and a command in flight
//   when the connection drops is rejected, never resent: the server may have run it (a charge
//   or a claim sent twice would count twice, or look lost).
// - Reconnect forever, with a backoff capped at MAX_RECONNECT_DELAY_MS; meanwhile every call
//   rejects promptly with a plain message, and after the server returns, calls succeed again.
// - On a cluster, the client as a whole reconnects with the same backoff once every node is
//   lost; a command whose node connection drops is rejected, not retried on another node
//   (retryDelayOnFailover 0), and so is one refused with CLUSTERDOWN (retryDelayOnClusterDown
//   0). A MOVED, ASK or TRYAGAIN reply means the script did not run there, so following it is safe.
// - `open` never fails because the server is unreachable (only for a malformed DSN): it logs a
//   warning and returns a connection whose calls reject until the server answers, so a proxy
//   in fail-open mode can start during an outage. It waits at most the connect timeout.
// - Connection trouble is logged at warn at most once per WARN_EVERY_MS.
import { Cluster, Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { parseRedisDsn } from './redis-dsn.js';

const DEFAULT_COMMAND_TIMEOUT_MS = 1_000;
const MAX_RECONNECT_DELAY_MS = 2_000;
const WARN_EVERY_MS = 30_000;

/** One server, or a cluster reached through its nodes. */
export type RedisClient = Redis | Cluster;

export interface RedisConnectionOptions {
  /** Namespace of every key (the proxy's --state-prefix): it becomes the keys' hash tag. */
  prefix?: string;
  /** Per-command timeout; a call rejects after this long without an answer. */
  commandTimeoutMs?: number;
  log?: Logger;
}

/** `{intercept:<prefix>}` with `{`, `}` and `%` %-escaped, so the tag ends exactly after the
 * prefix: every key of one namespace lands in one cluster slot. */
export function hashTag(prefix: string): string {
  return `{intercept:${prefix.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}}`;
}

/** `promise`, or a rejection once `ms` pass. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
  return String(err);
}

export class RedisConnection {
  /** `{intercept:<escaped prefix>}`: starts every key of the namespace. */
  readonly tag: string;
  private readonly log: Logger | undefined;
  private closed = false;
  private lastWarnAt = -Infinity;
  private suppressed = 0;
  private failing = false;
  /** Set once the first connection attempt is over; until then `open` reports trouble. */
  private started = false;

  private constructor(
    readonly client: RedisClient,
    readonly endpoint: string,
    /** What the messages call this connection's owner, e.g. "counter store (redis)". */
    private readonly name: string,
    opts: RedisConnectionOptions,
  ) {
    this.log = opts.log;
    this.tag = hashTag(opts.prefix ?? '');
    // Always listen: an 'error' event without a listener would be reported as unhandled.
    client.on('error', (err: unknown) => this.trouble(`${name} error: ${messageOf(err)}`));
    // A cluster reports each node's connection errors apart (host:port, never credentials).
    if (client instanceof Cluster) {
      client.on('node error', (err: unknown, node: unknown) => this.trouble(`${name} error on cluster node ${String(node)}: ${messageOf(err)}`));
    }
    client.on('close', () => {
      if (!this.closed && !this.failing) this.trouble(`${name} connection lost`);
    });
    client.on('ready', () => {
      if (this.failing) this.log?.info(`${name} reachable again`, { endpoint: this.endpoint });
      this.failing = false;
      void this.openNodes();
    });
  }

  /**
   * Connects to `redis://[user:pass@]host:port[/db]` or `rediss://…` (TLS), or to a Redis
   * Cluster through `redis+cluster://[user:pass@]host:port[,host:port…]` or
   * `rediss+cluster://…`. Rejects only for a DSN that is not one of these. `unreachable` ends
   * the warning logged when the server does not answer ("counter calls fail until it answers").
   */
  static async open(dsn: string, name: string, unreachable: string, opts: RedisConnectionOptions = {}): Promise<RedisConnection> {
    const target = parseRedisDsn(dsn);
    const commandTimeout = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    if (!(Number.isFinite(commandTimeout) && commandTimeout > 0)) {
      throw new RangeError(`commandTimeoutMs must be a positive number, got ${commandTimeout}`);
    }
    const connectTimeout = Math.max(2_000, commandTimeout);
    const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), MAX_RECONNECT_DELAY_MS);
    // Each connection (the server's, or each cluster node's): fail fast, never resend.
    const connection = { commandTimeout, connectTimeout, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false };
    const client: RedisClient =
      target.kind === 'server'
        ? new Redis(target.dsn, { ...connection, lazyConnect: true, enableOfflineQueue: false, retryStrategy })
        : new Cluster(target.nodes, {
            lazyConnect: true,
            enableOfflineQueue: false,
            clusterRetryStrategy: retryStrategy,
            retryDelayOnFailover: 0,
            retryDelayOnClusterDown: 0,
            slotsRefreshTimeout: Math.max(1_000, commandTimeout),
            // With TLS, keep the listed host names (certificates name hosts, not addresses).
            ...(target.tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
            redisOptions: {
              ...connection,
              ...(target.username !== undefined ? { username: target.username } : {}),
              ...(target.password !== undefined ? { password: target.password } : {}),
              ...(target.tls ? { tls: {} } : {}),
            },
          });
    const conn = new RedisConnection(client, target.endpoint, name, opts);
    const deadline = Date.now() + connectTimeout;
    try {
      const attempt = client.connect();
      attempt.catch(() => {}); // may settle after the wait below gives up (or never, on a cluster)
      await within(attempt, connectTimeout);
    } catch (err) {
      conn.log?.warn(`${name} is unreachable; ${unreachable}`, { endpoint: conn.endpoint, error: messageOf(err) });
      conn.failing = true;
      conn.lastWarnAt = Date.now();
    }
    // A cluster's node connections, opened before the first calls (best effort, same wait).
    if (!conn.failing) await within(conn.openNodes(), Math.max(0, deadline - Date.now())).catch(() => {});
    conn.started = true;
    return conn;
  }

  /** Sends one command (or script call), with a plain message when it cannot. */
  async call<T>(send: (client: RedisClient) => Promise<T>): Promise<T> {
    // Not connected: say so plainly (the client would only say its stream isn't writeable).
    if (this.client.status !== 'ready') {
      throw new Error(`${this.name} at ${this.endpoint} is not reachable (${this.client.status})`);
    }
    try {
      return await send(this.client);
    } catch (err) {
      const reason = messageOf(err).includes("isn't writeable") ? 'connection lost' : messageOf(err);
      throw new Error(`${this.name} at ${this.endpoint}: ${reason}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.client.status === 'ready') {
      try {
        await this.client.quit();
      } catch {
        // Gone already or timed out: disconnecting below is all that is left to do.
      }
    }
    this.client.disconnect();
  }

  /**
   * On a cluster, opens the connection to every node it knows now rather than at the node's
   * first command, and resolves once each is open (or failed): with no offline queue, commands
   * for a node whose connection is still opening are refused. Only once the cluster is ready
   * (its ready check must not meet a connection half open).
   */
  private openNodes(): Promise<void> {
    const client = this.client;
    if (!(client instanceof Cluster) || client.status !== 'ready') return Promise.resolve();
    const opened = client.nodes('all').map((node) => {
      if (node.status === 'wait') node.connect().catch(() => {}); // failures: 'node error'
      if (node.status === 'ready' || node.status === 'end') return undefined;
      return new Promise<void>((resolve) => {
        const done = () => {
          node.off('ready', done);
          node.off('end', done);
          resolve();
        };
        node.on('ready', done);
        node.on('end', done);
      });
    });
    return Promise.all(opened).then(() => undefined);
  }

  private trouble(message: string): void {
    this.failing = true;
    if (this.closed || !this.started) return;
    const t = Date.now();
    if (t - this.lastWarnAt < WARN_EVERY_MS) {
      this.suppressed++;
      return;
    }
    this.log?.warn(message, { endpoint: this.endpoint, suppressed: this.suppressed > 0 ? this.suppressed : undefined });
    this.lastWarnAt = t;
    this.suppressed = 0;
  }
}
