// The fault tests' misbehaving upstream (test/fixtures/faulty-server.ts): over stdio, as a
// command for the proxy, or over HTTP as a server of its own that can be killed and started
// again on the same port; and its log, which says what reached it and what ran there.
//
// Exports:
//   FAULTY_SERVER                       the fixture's path
//   faultyServer(logFile)               the fixture over stdio, as a ServerCommand
//   faultyArgv(logFile)                 the same, as one argv (for RawProxy)
//   FaultyHttp, startFaultyHttp(logFile, port?)   the fixture over Streamable HTTP
//   FaultyEvent, faultyLog(logFile)     what the fixture logged
//   callsReceived, callsRan             the tools/call ids (or arguments) it received, and ran
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { ROOT } from './paths.js';
import { readLogLines, type ServerCommand } from './servers.js';
import { withTimeout } from './wait.js';

export const FAULTY_SERVER = join(ROOT, 'test', 'fixtures', 'faulty-server.ts');

export function faultyServer(logFile: string): ServerCommand {
  return { command: process.execPath, args: ['--import', 'tsx', FAULTY_SERVER, '--log', logFile] };
}

export function faultyArgv(logFile: string): string[] {
  const { command, args } = faultyServer(logFile);
  return [command, ...args];
}

export interface FaultyHttp {
  /** http://127.0.0.1:<port>/mcp */
  url: string;
  port: number;
  /** SIGKILL: the server vanishes, its connections are reset. Waits for the exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after kill). */
  restart(): Promise<void>;
}

/** The fixture over Streamable HTTP, on `port` (0: a free one). */
export async function startFaultyHttp(logFile: string, port = 0): Promise<FaultyHttp> {
  let child: ChildProcess | undefined;
  const launch = async (on: number): Promise<string> => {
    const c = spawn(process.execPath, ['--import', 'tsx', FAULTY_SERVER, '--log', logFile, '--http', '--port', String(on)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    child = c;
    let out = '';
    const url = new Promise<string>((resolve, reject) => {
      c.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /listening on (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      c.once('exit', (code) => reject(new Error(`faulty-server exited with ${code} while starting`)));
    });
    return withTimeout(url, 20_000, () => 'faulty-server did not start');
  };
  const url = await launch(port);
  const bound = Number(new URL(url).port);
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGKILL');
    await exited;
  };
  // Never leave one behind.
  process.on('exit', () => child?.kill('SIGKILL'));
  return {
    url,
    port: bound,
    kill,
    restart: async () => {
      await kill();
      await launch(bound);
    },
  };
}

export interface FaultyEvent {
  event: 'call' | 'ran' | 'cancelled';
  id?: string | number;
  tool?: string;
  arguments?: Record<string, unknown>;
  requestId?: string | number;
  reason?: string;
}

export async function faultyLog(logFile: string): Promise<FaultyEvent[]> {
  return (await readLogLines(logFile)).map((line) => JSON.parse(line) as FaultyEvent);
}

/** The tools/call requests the fixture received (`tool` given: of that tool only). */
export function callsReceived(events: readonly FaultyEvent[], tool?: string): FaultyEvent[] {
  return events.filter((e) => e.event === 'call' && (tool === undefined || e.tool === tool));
}

/** The tools/call requests whose tool ran there. */
export function callsRan(events: readonly FaultyEvent[], tool?: string): FaultyEvent[] {
  return events.filter((e) => e.event === 'ran' && (tool === undefined || e.tool === tool));
}
