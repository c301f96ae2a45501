// A real redis-server for tests. With REDIS_URL set, that server is used as is (it cannot be
// stopped or restarted, so outage tests skip). Otherwise a private server is started on a free
// port of 127.0.0.1, with no persistence, in a temporary directory, and stopped afterwards.
//
// Without redis-server the tests skip loudly, or fail under CI (see redis-binaries.ts).
//
// Exports:
//   RedisHandle, startRedis(opts?)   a server (url, port, managed) to stop, kill or restart
//   redisSkipReason                  why Redis tests cannot run here, or undefined when they can
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { binariesSkipReason, requireBinaries } from './redis-binaries.js';
import { makeTempDir } from './temp.js';
import { freePort, waitUntil } from './wait.js';

export interface RedisHandle {
  url: string;
  port: number;
  /** false when REDIS_URL points at a server these tests do not control. */
  managed: boolean;
  /** Shuts the server down and waits for it to exit. */
  stop(): Promise<void>;
  /** SIGKILL: the server vanishes without closing connections cleanly. Waits for the exit. */
  kill(): Promise<void>;
  /** Starts the server again on the same port (stopping it first if it runs). */
  restart(): Promise<void>;
}

/** Why Redis tests cannot run here, or undefined when they can. */
export const redisSkipReason: string | undefined = process.env['REDIS_URL']
  ? undefined
  : binariesSkipReason('the tests needing a redis-server', ['redis-server'], 'install it or set REDIS_URL');

/** Whether something on the port answers PING with PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

const children = new Set<ChildProcess>();
// Never leave a server behind, even when a test run dies.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export async function startRedis(opts: { port?: number } = {}): Promise<RedisHandle> {
  const external = process.env['REDIS_URL'];
  if (external) {
    const port = Number(new URL(external).port || 6379);
    const refuse = async () => {
      throw new Error('the server given by REDIS_URL is not controlled by the tests');
    };
    return { url: external, port, managed: false, stop: async () => {}, kill: refuse, restart: refuse };
  }

  requireBinaries(['redis-server']);
  const port = opts.port ?? (await freePort());
  let child: ChildProcess | undefined;

  const exited = (c: ChildProcess) =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => c.once('exit', () => resolve()));

  async function launch(): Promise<void> {
    const dir = await makeTempDir('intercept-redis-');
    const c = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.add(c);
    let stderr = '';
    c.stderr?.on('data', (chunk) => (stderr += chunk.toString()));
    c.once('exit', () => {
      children.delete(c);
      void dir.cleanup();
    });
    child = c;
    try {
      await waitUntil(
        async () => {
          if (c.exitCode !== null || c.signalCode !== null) throw new Error(`redis-server exited while starting on port ${port}: ${stderr.trim()}`);
          return ping(port);
        },
        10_000,
        `redis-server to answer PING on port ${port}`,
      );
    } catch (err) {
      c.kill('SIGKILL');
      throw err;
    }
  }

  async function end(signal: NodeJS.Signals): Promise<void> {
    const c = child;
    child = undefined;
    if (!c) return;
    c.kill(signal);
    await exited(c);
  }

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    managed: true,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    restart: async () => {
      await end('SIGTERM');
      await launch();
    },
  };
}
