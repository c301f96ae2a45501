// A real Redis Cluster for tests: three masters (no replicas) on free ports of 127.0.0.1, each a
// `redis-server --cluster-enabled yes` with no persistence of data, in one temporary directory
// that keeps their cluster config files, joined by `redis-cli --cluster create`. Ready once every
// node says `cluster_state:ok`. The nodes can be killed and started again from their config
// files (same ports, same node ids, same slots; the data is gone), and are always stopped
// afterwards (SIGTERM, then SIGKILL), even when the test run dies.
//
// Needs redis-server and redis-cli; without them the tests skip loudly, or fail under CI (see
// redis-binaries.ts).
//
// Exports:
//   RedisClusterHandle, startRedisCluster(opts?)   a running cluster (ports, dsn) to query, kill, restart, stop
//   redisClusterSkipReason                         why cluster tests cannot run here, or undefined
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { binariesSkipReason, requireBinaries } from './redis-binaries.js';
import { makeTempDir, type TempDir } from './temp.js';
import { freePort, waitUntil } from './wait.js';

const run = promisify(execFile);
const BINARIES = ['redis-server', 'redis-cli'];
/** How long a node gets to exit after SIGTERM before it is killed. */
const STOP_GRACE_MS = 5_000;
/** How long the cluster gets to form (or to come back after a restart). */
const FORM_TIMEOUT_MS = 30_000;
/** The cluster bus of a node listens on its port + 10000 (the Redis default). */
const BUS_OFFSET = 10_000;

export interface RedisClusterHandle {
  /** The masters' ports, in the order they were given to `redis-cli --cluster create`. */
  ports: number[];
  /** `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`: every node. */
  dsn: string;
  /** A DSN naming only some of the nodes (the client learns the rest). */
  dsnOf(...ports: number[]): string;
  /** Sends one command to one node directly (no redirections) and returns its reply. */
  command(port: number, ...args: (string | number)[]): Promise<unknown>;
  /** CLUSTER KEYSLOT: the slot of a key, as the cluster computes it. */
  keySlot(key: string): Promise<number>;
  /** The port of the master that serves `slot` (asked of the first node). */
  masterOf(slot: number): Promise<number>;
  /** Waits until every node says cluster_state:ok (after a test changed the slots, say). */
  formed(): Promise<void>;
  /** SIGKILL every node: the cluster vanishes without closing connections. Waits for the exits. */
  kill(): Promise<void>;
  /** Starts every node again (stopping any that runs) from its cluster config file, and waits
   * until every node says cluster_state:ok. */
  restart(): Promise<void>;
  /** Stops every node (SIGTERM, SIGKILL after STOP_GRACE_MS) and removes the directory. */
  stop(): Promise<void>;
}

/** Why Redis Cluster tests cannot run here, or undefined when they can (CI-aware, loud). */
export const redisClusterSkipReason: string | undefined = binariesSkipReason('the Redis Cluster tests', BINARIES);

const children = new Set<ChildProcess>();
// Never leave a node behind, even when a test run dies.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** `count` distinct free ports whose cluster bus ports (port + 10000) are free as well. */
async function clusterPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tries = 0; ports.length < count; tries++) {
    if (tries > 200) throw new Error('found no free ports for a Redis Cluster (each needs port + 10000 free too)');
    const port = await freePort();
    const bus = port + BUS_OFFSET;
    if (bus > 65_535 || ports.includes(port) || ports.some((p) => p + BUS_OFFSET === port || p === bus)) continue;
    if (await portIsFree(bus)) ports.push(port);
  }
  return ports;
}

/** One command to one node, on a connection of its own that never retries. */
async function nodeCommand(port: number, args: (string | number)[]): Promise<unknown> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2_000,
    commandTimeout: 5_000,
  });
  client.on('error', () => {}); // reported by the rejection below
  try {
    await client.connect();
    const [name, ...rest] = args.map(String);
    return await client.call(name!, ...rest);
  } finally {
    client.disconnect();
  }
}

const exited = (c: ChildProcess) =>
  c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => c.once('exit', () => resolve()));

/** Ends a process: `signal`, then SIGKILL if it is still there after STOP_GRACE_MS. */
async function end(c: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  c.kill(signal);
  if (signal === 'SIGKILL') return exited(c);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited(c), new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS)))]);
  clearTimeout(timer);
  if (c.exitCode === null && c.signalCode === null) {
    c.kill('SIGKILL');
    await exited(c);
  }
}

export async function startRedisCluster(opts: { masters?: number } = {}): Promise<RedisClusterHandle> {
  requireBinaries(BINARIES);
  const masters = opts.masters ?? 3;
  const ports = await clusterPorts(masters);
  const dir: TempDir = await makeTempDir('intercept-redis-cluster-');
  const nodes = new Map<number, { child: ChildProcess; stderr: () => string }>();

  /** Starts the node of `port` (from its config file when it has one) and waits for PING. */
  async function launch(port: number): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', '5000',
        '--save', '',
        '--appendonly', 'no',
        '--dir', dir.path,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.add(child);
    let output = '';
    child.stdout?.on('data', (chunk) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk) => (output += chunk.toString()));
    child.once('exit', () => children.delete(child));
    nodes.set(port, { child, stderr: () => output.trim().split('\n').slice(-5).join('\n') });
    await waitUntil(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server exited while starting on port ${port}: ${output.trim()}`);
        return (await nodeCommand(port, ['PING']).catch(() => undefined)) === 'PONG';
      },
      10_000,
      `the cluster node on port ${port} to answer PING`,
    );
  }

  /** Waits until every node says cluster_state:ok. */
  async function formed(): Promise<void> {
    await waitUntil(
      async () => {
        for (const port of ports) {
          const node = nodes.get(port);
          if (!node || node.child.exitCode !== null || node.child.signalCode !== null) throw new Error(`the cluster node on port ${port} is not running: ${node?.stderr() ?? ''}`);
          const info = await nodeCommand(port, ['CLUSTER', 'INFO']).catch(() => '');
          if (!/^cluster_state:ok\r?$/m.test(String(info))) return false;
        }
        return true;
      },
      FORM_TIMEOUT_MS,
      `cluster_state:ok on every node (ports ${ports.join(', ')})`,
    );
  }

  const endAll = (signal: NodeJS.Signals) => Promise.all([...nodes.values()].map(({ child }) => end(child, signal)));

  try {
    for (const port of ports) await launch(port);
    try {
      await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: FORM_TIMEOUT_MS });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`redis-cli --cluster create failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    await formed();
  } catch (err) {
    await endAll('SIGKILL');
    await dir.cleanup();
    throw err;
  }

  const dsnOf = (...some: number[]) => `redis+cluster://${some.map((p) => `127.0.0.1:${p}`).join(',')}`;
  return {
    ports,
    dsn: dsnOf(...ports),
    dsnOf,
    command: (port, ...args) => nodeCommand(port, args),
    keySlot: async (key) => Number(await nodeCommand(ports[0]!, ['CLUSTER', 'KEYSLOT', key])),
    masterOf: async (slot) => {
      const shards = (await nodeCommand(ports[0]!, ['CLUSTER', 'SLOTS'])) as [number, number, [string, number, string]][];
      const shard = shards.find(([from, to]) => from <= slot && slot <= to);
      if (!shard) throw new Error(`no master serves slot ${slot}`);
      return Number(shard[2][1]);
    },
    formed,
    kill: async () => {
      await endAll('SIGKILL');
    },
    restart: async () => {
      await endAll('SIGTERM');
      for (const port of ports) await launch(port);
      await formed();
    },
    stop: async () => {
      await endAll('SIGTERM');
      await dir.cleanup();
    },
  };
}
