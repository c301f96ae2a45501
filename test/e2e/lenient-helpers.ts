// Pieces of the hostile-input tests: the lenient server (test/fixtures/lenient-server.ts) and
// what it dispatched, deep JSON text, and raw HTTP exchanges that read an SSE response as it
// arrives (the SDK clients cannot be made to send hostile bytes).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, type ServerCommand } from './helpers.js';

export type Json = Record<string, unknown>;

const LENIENT = join(ROOT, 'test', 'fixtures', 'lenient-server.ts');

/** The lenient server over stdio, logging what it dispatched to `logFile`. */
export function lenientServer(logFile: string): ServerCommand {
  return { command: process.execPath, args: ['--import', 'tsx', LENIENT, logFile] };
}

/** The lenient server over Streamable HTTP; resolves with its URL. */
export async function startLenientHttp(logFile: string): Promise<{ url: string; stop(): void }> {
  const proc: ChildProcess = spawn(process.execPath, ['--import', 'tsx', LENIENT, logFile, '--http'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
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

export async function dispatched(logFile: string): Promise<Dispatched[]> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Dispatched);
}

/** JSON text of an array nesting `depth` levels (JSON.stringify cannot make one that deep). */
export function deepText(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

export const DEPTHS = [100, 1_000, 10_000, 100_000];

// ------------------------------------------------------------------------------ raw HTTP

/** The messages of one HTTP response, read as they arrive (SSE events, or one JSON body). */
export class MessageStream {
  private buffer = '';
  private queue: unknown[] = [];
  private done = false;
  private wake?: () => void;

  constructor(
    readonly status: number,
    readonly headers: Headers,
    body: ReadableStream<Uint8Array> | null,
  ) {
    void this.pump(body, (headers.get('content-type') ?? '').includes('text/event-stream'));
  }

  private async pump(body: ReadableStream<Uint8Array> | null, sse: boolean): Promise<void> {
    const decoder = new TextDecoder();
    let whole = '';
    try {
      if (body) {
        for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
          const text = decoder.decode(chunk, { stream: true });
          if (sse) this.feed(text);
          else whole += text;
        }
      }
    } catch {
      // the stream was cut: what arrived stays readable
    }
    if (!sse && whole.trim() !== '') {
      try {
        this.queue.push(JSON.parse(whole));
      } catch {
        this.queue.push({ unparsedBody: whole });
      }
    }
    this.done = true;
    this.wake?.();
  }

  private feed(text: string): void {
    this.buffer += text.replace(/\r\n/g, '\n');
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) !== -1) {
      const event = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const data = event
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      const name = /^event:\s*(.*)$/m.exec(event)?.[1];
      if (data === '') continue;
      if (name === 'endpoint') this.queue.push({ endpoint: data });
      else this.queue.push(JSON.parse(data));
    }
    this.wake?.();
  }

  /** The next message matching `pred` (others before it are discarded), or undefined when
   * the response ends first. */
  async next(pred: (m: Json) => boolean = () => true, timeoutMs = 10_000): Promise<Json | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.queue.length > 0) {
        const m = this.queue.shift() as Json;
        if (pred(m)) return m;
      }
      if (this.done) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no matching message in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Every message until the response ends. */
  async rest(timeoutMs = 10_000): Promise<Json[]> {
    const all: Json[] = [];
    for (;;) {
      const m = await this.next(() => true, timeoutMs);
      if (m === undefined) return all;
      all.push(m);
    }
  }
}

const BASE_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

/** POSTs raw text; the response's messages can be read while it is still open. */
export async function postRaw(url: string, body: string, headers: Record<string, string> = {}): Promise<MessageStream> {
  const res = await fetch(url, { method: 'POST', body, headers: { ...BASE_HEADERS, ...headers } });
  return new MessageStream(res.status, res.headers, res.body);
}

/** A legacy HTTP+SSE session opened by hand: its stream, and where to POST. */
export async function openSse(url: string): Promise<{ stream: MessageStream; postUrl: string; close(): void }> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { Accept: 'text/event-stream' }, signal: abort.signal });
  const stream = new MessageStream(res.status, res.headers, res.body);
  const endpoint = await stream.next((m) => typeof m.endpoint === 'string');
  if (!endpoint) throw new Error('no endpoint event');
  return { stream, postUrl: new URL(String(endpoint.endpoint), url).href, close: () => abort.abort() };
}

/** The JSON-RPC error of a message, if it is one. */
export function errorOf(m: Json | undefined): { code: number; message: string } | undefined {
  const e = m?.error as { code?: unknown; message?: unknown } | undefined;
  return e && typeof e.code === 'number' && typeof e.message === 'string' ? { code: e.code, message: e.message } : undefined;
}

/** The first text block of a tools/call response's result. */
export function resultText(m: Json | undefined): string | undefined {
  const result = m?.result as { content?: Array<{ text?: unknown }> } | undefined;
  const text = result?.content?.[0]?.text;
  return typeof text === 'string' ? text : undefined;
}
