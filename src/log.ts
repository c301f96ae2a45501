// Logs go to stderr, one line each: stdout belongs to the protocol.
import { writeSync } from 'node:fs';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function render(fields: LogFields | undefined): string {
  if (!fields) return '';
  let out = '';
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const s = String(v);
    out += ` ${k}=${/^[\w.:/@#*+-]+$/.test(s) ? s : JSON.stringify(s)}`;
  }
  return out;
}

/** How long an info or debug line may wait to be written, and how much may wait. */
const FLUSH_MS = 20;
const FLUSH_BYTES = 64 * 1024;

let pendingLines: string[] = [];
let pendingBytes = 0;
let flushTimer: NodeJS.Timeout | undefined;
let flushSoon = false;

function flushLines(): void {
  if (flushTimer !== undefined) clearTimeout(flushTimer);
  flushTimer = undefined;
  flushSoon = false;
  if (pendingLines.length === 0) return;
  const text = pendingLines.join('');
  pendingLines = [];
  pendingBytes = 0;
  process.stderr.write(text);
}

/** The default sink. process.stderr writes synchronously to pipes and files on Linux, and a
 * write also wakes whatever reads the log: one write per decision put a system call and a
 * context switch on every call's path. Info and debug lines are gathered and written at most
 * FLUSH_MS later (sooner when FLUSH_BYTES wait); a warning or an error goes out at the end of
 * the current turn of the event loop, with what waited before it (so a flood of them still
 * costs one write per turn); whatever is left at exit is written then. A SIGKILL loses at
 * most the last FLUSH_MS of info and debug lines. */
function bufferedStderr(line: string, level: LogLevel): void {
  pendingLines.push(line);
  pendingBytes += line.length;
  if (pendingBytes >= FLUSH_BYTES) {
    flushLines();
  } else if (RANK[level] >= RANK.warn) {
    if (!flushSoon) {
      flushSoon = true;
      setImmediate(flushLines);
    }
  } else if (flushTimer === undefined) {
    flushTimer = setTimeout(flushLines, FLUSH_MS).unref();
  }
}

process.on('exit', () => {
  if (pendingLines.length === 0) return;
  try {
    writeSync(2, pendingLines.join(''));
  } catch {
    // stderr is gone: nothing can be told.
  }
  pendingLines = [];
});

export function createLogger(level: LogLevel = 'info', write: (line: string, level: LogLevel) => void = bufferedStderr): Logger {
  const min = RANK[level];
  const log = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[lvl] < min) return;
    write(`${new Date().toISOString()} intercept ${lvl.toUpperCase()} ${msg}${render(fields)}\n`, lvl);
  };
  return {
    level,
    enabled: (lvl) => RANK[lvl] >= min,
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
  };
}

export const silentLogger: Logger = createLogger('error', () => {});
