// The dashboard as its tests reach it: `intercept dashboard` as a user starts it (its own
// process, the built CLI), its URL read from stderr; raw HTTP requests with any Host, Origin or
// cookie, and its event stream read as it arrives; and headless Chromium to look at the page,
// or a loud failure when there is none.
//
// Exports:
//   DashboardProcess, startDashboardProcess(args, opts?)   the dashboard (url, stderr(), stop())
//   Answer, ask(url, init?)                         one raw HTTP request, the whole body read
//   StreamEvent, EventStream, openEvents(url, headers?)   a server-sent event stream, parsed
//   CHROMIUM, browserMissing()                      where Chromium is expected, and whether it is
//                                                   missing (with INTERCEPT_SKIP_BROWSER=1 allowed)
//   launchChromium()                                playwright-core's Chromium, headless
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Browser } from 'playwright-core';
import { INTERCEPT_BIN, ROOT } from './paths.js';
import { freshHome } from './temp.js';
import { eventually, withTimeout } from './wait.js';

export interface DashboardProcess {
  /** http://127.0.0.1:<port>/ */
  url: string;
  stderr(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** `intercept dashboard --port 0 <args>` (run in `cwd`, the repository by default), resolved
 * once it prints its URL. */
export async function startDashboardProcess(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<DashboardProcess> {
  const proc = spawn(process.execPath, [INTERCEPT_BIN, 'dashboard', '--port', '0', ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, HOME: freshHome(), ...opts.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (text += s));
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      const onData = () => {
        const m = /Intercept dashboard on (http:\/\/\S+\/)/.exec(text);
        if (m) resolve(m[1]!);
      };
      proc.stderr!.on('data', onData);
      proc.on('exit', (code) => reject(new Error(`intercept dashboard exited with ${code}:\n${text}`)));
    }),
    20_000,
    () => `intercept dashboard did not print its URL:\n${text}`,
  ).catch((err: unknown) => {
    proc.kill('SIGKILL');
    throw err;
  });
  return {
    url,
    stderr: () => text,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      const exited = once(proc, 'exit');
      proc.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}

// ------------------------------------------------------------------------------ raw HTTP

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed, when it is JSON. */
  json: Record<string, unknown> | undefined;
}

/** One request to `url` with exactly these headers (Host included, which fetch cannot set). */
export function ask(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: init.method ?? 'GET', headers: init.headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.on('end', () => {
        let json: Answer['json'];
        try {
          json = JSON.parse(text) as Answer['json'];
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

export interface StreamEvent {
  event: string;
  id?: string;
  data: string;
}

export interface EventStream {
  status: number;
  headers: IncomingHttpHeaders;
  /** Every event so far, in order. */
  events: StreamEvent[];
  /** The first event that `match` accepts, once it has arrived (bounded wait). */
  next(match: (e: StreamEvent) => boolean): Promise<StreamEvent>;
  close(): void;
}

/** Opens a server-sent event stream and parses it as it arrives. */
export function openEvents(url: string, headers: Record<string, string> = {}): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res: IncomingMessage) => {
      const events: StreamEvent[] = [];
      let buffer = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const e: StreamEvent = { event: 'message', data: '' };
          let fields = 0;
          for (const line of block.split('\n')) {
            const colon = line.indexOf(':');
            if (colon <= 0) continue; // a comment, or nothing
            const [name, value] = [line.slice(0, colon), line.slice(colon + 1).replace(/^ /, '')];
            fields++;
            if (name === 'event') e.event = value;
            else if (name === 'id') e.id = value;
            else if (name === 'data') e.data = e.data === '' ? value : `${e.data}\n${value}`;
            else fields--;
          }
          if (fields > 0) events.push(e);
        }
      });
      res.on('error', () => {});
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        next: (match) => eventually(() => events.find(match)),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

// ------------------------------------------------------------------------------ the browser

/** Where the system's Chromium is (Debian's `chromium` package; CI installs it). */
export const CHROMIUM = '/usr/bin/chromium';

/** Undefined when Chromium is there. When it is missing: a message when INTERCEPT_SKIP_BROWSER=1
 * allows skipping, else an error, so a machine without a browser never passes silently. */
export function browserMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const message = `${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)`;
  if (process.env.INTERCEPT_SKIP_BROWSER === '1') return `SKIPPED: ${message}; the browser tests did not run (INTERCEPT_SKIP_BROWSER=1)`;
  throw new Error(`${message}, or set INTERCEPT_SKIP_BROWSER=1 to skip the browser tests`);
}

export async function launchChromium(): Promise<Browser> {
  // Loaded here: the tests of the API alone do not need the browser driver.
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}
