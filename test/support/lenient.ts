// The lenient server (test/fixtures/lenient-server.ts) of the hostile-input tests: it accepts
// what a strict server would refuse and logs every message it dispatched, so a test can show
// what got through the proxy.
//
// Exports:
//   lenientServer(logFile)          the lenient server over stdio (a ServerCommand)
//   startLenientHttp(logFile)       the lenient server over Streamable HTTP; resolves with its URL
//   Dispatched, dispatched(logFile) what it dispatched: each method as sent and as dispatched
import { spawn, type ChildProcess } from 'node:child_process';
import { LENIENT_SERVER, ROOT } from './paths.js';
import { readLogLines, type ServerCommand } from './servers.js';

/** The lenient server over stdio, logging what it dispatched to `logFile`. */
export function lenientServer(logFile: string): ServerCommand {
  return { command: process.execPath, args: ['--import', 'tsx', LENIENT_SERVER, logFile] };
}

/** The lenient server over Streamable HTTP; resolves with its URL. */
export async function startLenientHttp(logFile: string): Promise<{ url: string; stop(): void }> {
  const proc: ChildProcess = spawn(process.execPath, ['--import', 'tsx', LENIENT_SERVER, logFile, '--http'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`the lenient server did not start: ${text}`)), 20_000);
    proc.stderr!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = /lenient server on (\S+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { url, stop: () => proc.kill('SIGKILL') };
}

/** One message as the lenient server received it: the method as sent and as it dispatched it. */
export interface Dispatched {
  raw?: string;
  method?: string;
  id?: unknown;
  name?: unknown;
}

/** Every message the lenient server dispatched so far, in order. */
export async function dispatched(logFile: string): Promise<Dispatched[]> {
  return (await readLogLines(logFile)).map((l) => JSON.parse(l) as Dispatched);
}
