// Redis DSNs: which client a --state-dsn asks for, where it points, and how to name it in a log
// line without its credentials. Pure: no client is loaded here, so open.ts can check a DSN before
// anything loads ioredis.
//
//   redis://[user:pass@]host:port[/db]                        one server (rediss:// for TLS)
//   redis+cluster://[user:pass@]host:port[,host:port...]      a Redis Cluster (rediss+cluster:// for TLS)
//
// A cluster DSN lists one or more of its nodes (the port defaults to 6379; an IPv6 address goes
// in brackets); the client learns the rest of the cluster from whichever answers first. A cluster
// has only database 0, so it takes no /db. The credentials are everything before the last `@`,
// split at the first `:`, each percent-decoded; they are used for every node. No error message
// ever echoes them.

export interface ClusterNodeAddress {
  host: string;
  port: number;
}

export type RedisTarget =
  /** One server: the DSN is handed to the client as is. */
  | { kind: 'server'; dsn: string; endpoint: string }
  | { kind: 'cluster'; tls: boolean; nodes: ClusterNodeAddress[]; username?: string; password?: string; endpoint: string };

/** The DSN forms, for error messages. */
export const REDIS_DSN_FORMS: readonly string[] = ['redis://[user:pass@]host:port[/db]', 'rediss://…', 'redis+cluster://[user:pass@]host:port[,host:port…]', 'rediss+cluster://…'];

/** `a, b, c or d`. */
export function oneOf(forms: readonly string[]): string {
  return forms.length <= 1 ? (forms[0] ?? '') : `${forms.slice(0, -1).join(', ')} or ${forms.at(-1)}`;
}

const SERVER_DSN = /^rediss?:\/\/[^/]/i;
const CLUSTER_SCHEME = /^(rediss?)\+cluster:\/\//i;
const DEFAULT_PORT = 6379;
/** A host name or IPv4 address (IPv6 is matched in brackets separately). */
const HOST_NAME = /^[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?$/i;

/** Whether `dsn` asks for a Redis Cluster (it may still be malformed). */
export function isClusterDsn(dsn: string): boolean {
  return CLUSTER_SCHEME.test(dsn);
}

/** Where the DSN points and with which client. Throws an Error fit for the user (without the
 * credentials) when it is not one of the Redis forms or is malformed. */
export function parseRedisDsn(dsn: string): RedisTarget {
  const cluster = CLUSTER_SCHEME.exec(dsn);
  if (cluster) return parseCluster(cluster[1]!.toLowerCase() === 'rediss', dsn.slice(cluster[0].length));
  if (SERVER_DSN.test(dsn)) return { kind: 'server', dsn, endpoint: serverEndpoint(dsn) };
  // Only the scheme is echoed: the rest may hold a password.
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(dsn)?.[0] ?? 'no scheme';
  throw new Error(`the counter store DSN must be ${oneOf(REDIS_DSN_FORMS)}, got ${scheme}`);
}

/** Host and port for log lines (never the credentials). */
function serverEndpoint(dsn: string): string {
  try {
    const u = new URL(dsn);
    return `${u.protocol}//${u.host}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    return 'redis';
  }
}

function parseCluster(tls: boolean, rest: string): RedisTarget {
  const scheme = tls ? 'rediss+cluster://' : 'redis+cluster://';
  const bad = (why: string) => new Error(`the counter store DSN ${scheme}… ${why}; the form is redis+cluster://[user:pass@]host:port[,host:port…]`);
  const at = rest.lastIndexOf('@');
  const userinfo = at >= 0 ? rest.slice(0, at) : undefined;
  let hosts = at >= 0 ? rest.slice(at + 1) : rest;
  if (hosts.endsWith('/')) hosts = hosts.slice(0, -1);
  if (/[/?#]/.test(hosts)) throw bad('has a path or options: a cluster has only database 0, and takes no /db');

  const nodes: ClusterNodeAddress[] = [];
  for (const entry of hosts.split(',')) {
    const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]*))(?::([^:]*))?$/i.exec(entry);
    const host = m?.[1] ?? m?.[2];
    if (!m || !host || (m[2] !== undefined && !HOST_NAME.test(host))) {
      throw bad(entry === '' ? 'lists an empty node' : `has a node that is not host:port: ${JSON.stringify(entry)}`);
    }
    const port = m[3] === undefined ? DEFAULT_PORT : Number(m[3]);
    if (!/^\d{1,5}$/.test(m[3] ?? '6379') || port < 1 || port > 65535) throw bad(`has a node whose port is not a port number: ${JSON.stringify(entry)}`);
    nodes.push({ host, port });
  }

  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    try {
      const user = decodeURIComponent(colon >= 0 ? userinfo.slice(0, colon) : userinfo);
      if (user !== '') username = user;
      if (colon >= 0) password = decodeURIComponent(userinfo.slice(colon + 1));
    } catch {
      throw bad('has credentials that are not percent-encoded properly');
    }
  }
  const endpoint = scheme + nodes.map((n) => (n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(',');
  return { kind: 'cluster', tls, nodes, endpoint, ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}) };
}
