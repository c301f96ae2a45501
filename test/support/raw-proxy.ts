// The built proxy (bin/intercept.js) driven byte by byte, as a hostile or careless client
// would: raw lines in, parsed lines out, stderr collected, exit status observed. Each proxy
// started here gets a fresh HOME, so its default counter file starts empty.
//
// Exports:
//   Exit, RunResult, runIntercept(args, opts?)   `intercept <args>` run to completion
//   RawProxy, startProxy(args)                   the proxy as a child process with piped stdio
//   TeeSession, startTeeProxy(policy, logFile, flags?, server?)   a RawProxy in front of the
//                                                tee'd server (everything by default), and its log
//   RawRun, runProxyRaw(params, lines, timeoutMs?)   the proxy from StdioParams as a plain process:
//                                                lines written, output collected until it exits
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { isRecord, type Json } from './messages.js';
import { INTERCEPT_BIN, ROOT } from './paths.js';
import type { StdioParams } from './sdk-clients.js';
import { everythingCommand, readTeeLog, teeCommand } from './servers.js';
import { freshHome } from './temp.js';
import { DEFAULT_TIMEOUT_MS, withTimeout } from './wait.js';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunResult extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs `intercept <args>` to completion (stdin closed unless `input` is given). */
export function runIntercept(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [INTERCEPT_BIN, ...args], { cwd: ROOT, env: cleanEnv(), stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`intercept ${args.join(' ')} did not finish in time\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** The environment of each proxy started here: a fresh HOME, so that its default counter file
 * (~/.intercept/state) starts empty and no two proxies share counters by accident. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: freshHome() };
  delete env.NO_COLOR;
  delete env.NODE_TEST_CONTEXT;
  return env;
}

/** The proxy as a child process with piped stdio. */
export class RawProxy {
  readonly child: ChildProcessWithoutNullStreams;
  /** Every stdout line, raw, in order (including ones that are not JSON). */
  readonly stdoutLines: string[] = [];
  private queue: unknown[] = [];
  private waiters: Array<() => void> = [];
  private stderrText = '';
  private partial = '';
  private nextId = 100_000;
  readonly exited: Promise<Exit>;
  private exit?: Exit;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [INTERCEPT_BIN, ...args], { cwd: ROOT, env: cleanEnv(), stdio: 'pipe' });
    this.child.stdin.on('error', () => {});
    this.child.stdout.setEncoding('utf8').on('data', (s: string) => this.onStdout(s));
    this.child.stderr.setEncoding('utf8').on('data', (s: string) => {
      this.stderrText += s;
      this.wake();
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.exit = { code, signal };
        this.wake();
        resolve(this.exit);
      });
    });
  }

  get stderr(): string {
    return this.stderrText;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  private onStdout(s: string): void {
    const lines = (this.partial + s).split('\n');
    this.partial = lines.pop()!;
    for (const line of lines) {
      this.stdoutLines.push(line);
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        value = { unparsedStdoutLine: line };
      }
      this.queue.push(value);
    }
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private changed(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Writes raw text to the proxy's stdin (a newline is NOT added). */
  write(data: string | Buffer): void {
    this.child.stdin.write(data);
  }

  /** Writes one line: the text plus a newline. */
  send(line: string): void {
    this.write(line + '\n');
  }

  sendJson(message: unknown): void {
    this.send(JSON.stringify(message));
  }

  /** The next stdout message, in order. */
  next(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<unknown> {
    return this.waitFor(() => true, timeoutMs, 'the next message');
  }

  /** Removes and returns the first stdout message (already received or still to come) that
   * matches; others stay queued for later waits. */
  async waitFor<T = Json>(pred: (m: unknown) => boolean, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'a matching message'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex(pred);
      if (i !== -1) return this.queue.splice(i, 1)[0] as T;
      const left = deadline - Date.now();
      if (left <= 0 || this.exit) {
        const why = this.exit ? `the proxy exited (${JSON.stringify(this.exit)})` : `none within ${timeoutMs} ms`;
        throw new Error(`waiting for ${what}: ${why}\nqueued: ${JSON.stringify(this.queue).slice(0, 2000)}\nstderr:\n${this.stderrText.slice(-4000)}`);
      }
      await this.changed(left);
    }
  }

  /** The response carrying `id` (compared as JSON, so 1 and "1" differ). */
  response(id: unknown, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Json> {
    const want = JSON.stringify(id);
    return this.waitFor(
      (m) => isRecord(m) && 'id' in m && JSON.stringify(m.id) === want && !('method' in m),
      timeoutMs,
      `the response to id ${want}`,
    );
  }

  /** Messages received and not consumed by a wait yet. */
  pending(): unknown[] {
    return [...this.queue];
  }

  /** Removes and returns every queued message. */
  drain(): unknown[] {
    const all = this.queue;
    this.queue = [];
    return all;
  }

  freshId(): number {
    return this.nextId++;
  }

  /** Sends a request and waits for its answer. */
  async request(method: string, params?: unknown, id: string | number = this.freshId()): Promise<Json> {
    this.sendJson(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params });
    return this.response(id);
  }

  callTool(name: string, args: Json = {}, id: string | number = this.freshId()): Promise<Json> {
    return this.request('tools/call', { name, arguments: args }, id);
  }

  /** A ping round trip through the upstream: once it is answered, everything sent before it
   * has been handled by the proxy and every line it forwarded has reached the upstream.
   * Returns the ping's id. */
  async barrier(): Promise<number> {
    const id = this.freshId();
    const answer = await this.request('ping', undefined, id);
    if (!isRecord(answer) || !('result' in answer)) throw new Error(`ping failed: ${JSON.stringify(answer)}`);
    return id;
  }

  /** The MCP handshake, by hand. */
  async initialize(capabilities: Json = {}, protocolVersion = '2025-06-18'): Promise<Json> {
    const answer = await this.request('initialize', {
      protocolVersion,
      capabilities,
      clientInfo: { name: 'raw-driver', version: '1.0.0' },
    });
    if (!isRecord(answer.result)) throw new Error(`initialize failed: ${JSON.stringify(answer)}`);
    this.sendJson({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return answer.result;
  }

  /** Waits until stderr matches (bounded). */
  async waitForStderr(pattern: RegExp, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.stderrText);
      if (m) return m[0];
      const left = deadline - Date.now();
      if (left <= 0 || this.exit) throw new Error(`stderr never matched ${pattern}\nstderr:\n${this.stderrText.slice(-4000)}`);
      await this.changed(left);
    }
  }

  /** Waits for the proxy to exit by itself (bounded). */
  waitForExit(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Exit> {
    return withTimeout(this.exited, timeoutMs, () => `the proxy did not exit within ${timeoutMs} ms\nstderr:\n${this.stderrText.slice(-4000)}`);
  }

  /** Closes stdin and waits for the exit; kills the process if it does not go. */
  async close(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Exit> {
    if (this.exit) return this.exit;
    this.child.stdin.end();
    try {
      return await this.waitForExit(timeoutMs);
    } catch (err) {
      this.child.kill('SIGKILL');
      await this.exited;
      throw err;
    }
  }
}

/** Starts `intercept <args>`. */
export function startProxy(args: string[]): RawProxy {
  return new RawProxy(args);
}

/** A running proxy in front of the tee'd everything server, plus its log. */
export interface TeeSession {
  proxy: RawProxy;
  logFile: string;
  /** What the upstream received so far (call `proxy.barrier()` first to be sure it is all). */
  log(): Promise<unknown[]>;
}

export function startTeeProxy(policyFile: string, logFile: string, flags: string[] = [], server: string[] = everythingCommand()): TeeSession {
  const proxy = startProxy(['-c', policyFile, ...flags, '--', ...teeCommand(logFile, server)]);
  return { proxy, logFile, log: () => readTeeLog(logFile) };
}

export interface RawRun {
  code: number | null;
  /** The JSON lines the proxy wrote to stdout. */
  messages: Array<Record<string, unknown>>;
  stderr: string;
}

/** Runs the proxy as a plain process: writes `lines` to its stdin (kept open), and collects
 * what it writes until it exits (or `timeoutMs` passes, when it is killed). */
export async function runProxyRaw(params: StdioParams, lines: unknown[], timeoutMs = 20_000): Promise<RawRun> {
  const child = spawn(params.command, params.args, { env: params.env, cwd: params.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  for (const line of lines) child.stdin!.write(JSON.stringify(line) + '\n');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  const messages = stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code, messages, stderr };
}
