// Lean MCP clients for the proxy benchmark: JSON-RPC with ids and nothing else, so the client's
// own cost stays small next to what it measures. No SDK, no schema validation.
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request, type IncomingMessage } from 'node:http';

export interface Driver {
  /** Sends a request and resolves with its result; rejects on a JSON-RPC error. */
  call(method: string, params: Record<string, unknown>): Promise<unknown>;
  close(): Promise<void>;
}

interface RpcResponse {
  id?: unknown;
  result?: unknown;
  error?: { message?: string };
}

const PROTOCOL_VERSION = '2025-06-18';
const INITIALIZE = {
  protocolVersion: PROTOCOL_VERSION,
  capabilities: {},
  clientInfo: { name: 'intercept-bench', version: '1.0.0' },
};

function settle(response: RpcResponse, resolve: (v: unknown) => void, reject: (e: Error) => void): void {
  if (response.error) reject(new Error(`JSON-RPC error: ${response.error.message ?? JSON.stringify(response.error)}`));
  else resolve(response.result);
}

/** A client over a child process's stdin/stdout, newline-delimited JSON. */
export class StdioDriver implements Driver {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private buffered = '';
  private exited: Promise<void>;

  private constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.onData(chunk));
    // Drained and dropped: a client that keeps the server's stderr (into its own log) reads it.
    child.stderr?.on('data', () => {});
    child.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', (code, signal) => {
      for (const w of this.waiting.values()) w.reject(new Error(`the process exited (${signal ?? code})`));
      this.waiting.clear();
    });
  }

  /** Starts the command and completes the MCP handshake. */
  static async start(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<StdioDriver> {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    const driver = new StdioDriver(child);
    await driver.call('initialize', INITIALIZE);
    child.stdin!.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
    return driver;
  }

  call(method: string, params: Record<string, unknown>): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.stdin!.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  }

  private onData(chunk: string): void {
    const text = this.buffered + chunk;
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf('\n', start)) !== -1) {
      const line = text.slice(start, nl);
      start = nl + 1;
      if (line.trim() === '') continue;
      const msg = JSON.parse(line) as RpcResponse;
      if (typeof msg.id !== 'number') continue; // notifications
      const w = this.waiting.get(msg.id);
      if (!w) continue;
      this.waiting.delete(msg.id);
      settle(msg, w.resolve, w.reject);
    }
    this.buffered = text.slice(start);
  }

  async close(): Promise<void> {
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A Streamable HTTP client: one session, POSTs on keep-alive connections, answers as JSON or
 * as an SSE stream (whichever the server chooses). */
export class HttpDriver implements Driver {
  private nextId = 1;
  private session: string | undefined;

  private constructor(
    private readonly url: URL,
    private readonly agent: Agent,
    /** Whether the agent is this driver's own (and is destroyed with it). */
    private readonly ownAgent: boolean,
  ) {}

  /** Initializes a session, retrying until the listener is up (or `timeoutMs` passes). With
   * `agent`, requests go through that agent (shared with other drivers, left open by close()). */
  static async connect(url: string, opts: { timeoutMs?: number; agent?: Agent } = {}): Promise<HttpDriver> {
    const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
    for (;;) {
      const driver = new HttpDriver(new URL(url), opts.agent ?? new Agent({ keepAlive: true, maxSockets: 256 }), opts.agent === undefined);
      try {
        await driver.call('initialize', INITIALIZE);
        await driver.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
        return driver;
      } catch (err) {
        if (driver.ownAgent) driver.agent.destroy();
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** The session id the server gave, if any. */
  get sessionId(): string | undefined {
    return this.session;
  }

  async call(method: string, params: Record<string, unknown>): Promise<unknown> {
    const id = this.nextId++;
    const response = await this.post({ jsonrpc: '2.0', id, method, params });
    if (response === undefined) throw new Error(`no answer to ${method}`);
    return new Promise((resolve, reject) => settle(response, resolve, reject));
  }

  /** POSTs one message; resolves with the response to it (undefined for a notification). */
  private post(message: { id?: number; [member: string]: unknown }): Promise<RpcResponse | undefined> {
    const body = JSON.stringify(message);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'content-length': String(Buffer.byteLength(body)),
    };
    if (this.session !== undefined) {
      headers['mcp-session-id'] = this.session;
      headers['mcp-protocol-version'] = PROTOCOL_VERSION;
    }
    return new Promise((resolve, reject) => {
      const req = request(this.url, { method: 'POST', agent: this.agent, headers }, (res) => {
        const sid = res.headers['mcp-session-id'];
        if (typeof sid === 'string') this.session = sid;
        readAnswer(res, message.id).then(resolve, reject);
      });
      req.setNoDelay(true);
      req.on('error', reject);
      req.end(body);
    });
  }

  async close(): Promise<void> {
    if (this.session !== undefined) {
      await new Promise<void>((resolve) => {
        const req = request(this.url, { method: 'DELETE', agent: this.agent, headers: { 'mcp-session-id': this.session!, 'mcp-protocol-version': PROTOCOL_VERSION } }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', () => resolve());
        req.end();
      });
    }
    if (this.ownAgent) this.agent.destroy();
  }
}

/** The JSON-RPC response with `id` in an HTTP answer: a JSON body, or an SSE stream's events. */
function readAnswer(res: IncomingMessage, id: number | undefined): Promise<RpcResponse | undefined> {
  return new Promise((resolve, reject) => {
    const status = res.statusCode ?? 0;
    const type = String(res.headers['content-type'] ?? '');
    let text = '';
    let done = false;
    res.setEncoding('utf8');
    const finish = (value: RpcResponse | undefined, err?: Error) => {
      if (done) return;
      done = true;
      if (err) reject(err);
      else resolve(value);
    };
    res.on('data', (chunk: string) => {
      text += chunk;
      if (!type.includes('text/event-stream')) return;
      // Events end with a blank line; the answer may come before the stream closes.
      let end: number;
      while ((end = text.indexOf('\n\n')) !== -1) {
        const event = text.slice(0, end);
        text = text.slice(end + 2);
        const data = event
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trimStart())
          .join('\n');
        if (data === '') continue;
        const msg = JSON.parse(data) as RpcResponse;
        if (msg.id === id) {
          finish(msg);
          res.resume();
        }
      }
    });
    res.on('end', () => {
      if (status >= 400) return finish(undefined, new Error(`HTTP ${status}: ${text.slice(0, 200)}`));
      if (id === undefined) return finish(undefined);
      if (type.includes('application/json')) {
        try {
          return finish(JSON.parse(text) as RpcResponse);
        } catch (err) {
          return finish(undefined, err as Error);
        }
      }
      finish(undefined, new Error(`the answer to request ${id} never came (HTTP ${status}, ${type || 'no content type'})`));
    });
    res.on('error', (err) => finish(undefined, err));
  });
}
