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

/** Lines waiting for the next turn of the event loop, and whether a flush is scheduled. */
let pendingLines: string[] = [];
let flushScheduled = false;

function flushLines(): void {
  flushScheduled = false;
  if (pendingLines.length === 0) return;
  const text = pendingLines.join('');
  pendingLines = [];
  process.stderr.write(text);
}

/** The default sink. process.stderr writes synchronously to pipes and files on Linux, so one
 * write per decision would put a system call on every call's path: lines are gathered and
 * written once per turn of the event loop, and whatever is left at exit is written then. */
function bufferedStderr(line: string): void {
  pendingLines.push(line);
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flushLines);
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

export function createLogger(level: LogLevel = 'info', write: (line: string) => void = bufferedStderr): Logger {
  const min = RANK[level];
  const log = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[lvl] < min) return;
    write(`${new Date().toISOString()} intercept ${lvl.toUpperCase()} ${msg}${render(fields)}\n`);
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
