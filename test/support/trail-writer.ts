// Writing an audit trail the way proxies do (the real EventLog), and capturing what a command
// run in this process writes to stdout and stderr: for the tests of `intercept status` and
// `intercept logs`.
//
// Exports:
//   toolCall(tool, extra?) / denial(tool, kind, rule?, extra?)   tool_call events
//   startupEvent(pid, host?) / approvalEvent(type, extra?)        other events
//   writeProxy(dir, instance, [[ms, event], …])                    one proxy's events, each at its own ms
//   captureOutput()                                                 captures stdout/stderr until restore()
//   capture(run)                                                    a command's exit code and what it wrote
import type { ProxyEvent, ToolCallEvent } from '../../src/audit/event.js';
import { EventLog } from '../../src/audit/writer.js';
import { silentLogger } from '../../src/log.js';

export type CallExtra = Partial<ToolCallEvent>;

/** An allowed call that the tool answered. */
export const toolCall = (tool: string, extra: CallExtra = {}): ProxyEvent =>
  ({ type: 'tool_call', session: 's1', tool, decision: 'allow', decisionMs: 1, upstreamMs: 2, outcome: 'result', argsHash: 'a'.repeat(64), ...extra }) as ProxyEvent;

/** A denied call. */
export const denial = (tool: string, kind: string, rule?: string, extra: CallExtra = {}): ProxyEvent =>
  ({ type: 'tool_call', session: 's1', tool, decision: 'deny', kind, ...(rule ? { rule } : {}), message: `no ${tool}`, decisionMs: 1, argsHash: 'a'.repeat(64), ...extra }) as ProxyEvent;

export const startupEvent = (pid: number, host = 'h'): ProxyEvent => ({
  type: 'startup',
  pid,
  host,
  version: '0.1.0',
  policy: '/etc/p.yaml',
  policyHash: 'b'.repeat(64),
  transport: 'stdio',
  upstream: 'node server.js',
  counters: 'memory',
});

/** An approval event of `type` for tool `pay`, rule `ask`. */
export const approvalEvent = (type: string, extra: object = {}): ProxyEvent => ({ type, id: 'apr_x', tool: 'pay', rule: 'ask', session: 's1', ...extra }) as ProxyEvent;

/** Writes `events` (each at its own ms since the epoch) as one proxy, with the real writer, and
 * closes it: the lines are in the file when this resolves. */
export async function writeProxy(dir: string, instance: string, events: readonly (readonly [number, ProxyEvent])[]): Promise<void> {
  let at = 0;
  const log = await EventLog.open({ dir, instance, log: silentLogger, retentionDays: 0, now: () => at });
  for (const [ms, event] of events) {
    at = ms;
    log.emit(event);
  }
  await log.close();
}

export interface Captured {
  /** What was written to stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Puts the real writes back. */
  restore(): void;
}

/** Captures the text written to process.stdout and process.stderr until restore(). Only text
 * is captured: binary chunks (the test runner's own reports to its parent) go through. */
export function captureOutput(): Captured {
  const out: string[] = [];
  const err: string[] = [];
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  const grab = (sink: string[], real: typeof process.stdout.write, stream: NodeJS.WriteStream) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (typeof chunk !== 'string') return (real as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
      sink.push(chunk);
      const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      if (done) process.nextTick(done);
      return true;
    }) as typeof process.stdout.write;
  process.stdout.write = grab(out, stdoutWrite, process.stdout);
  process.stderr.write = grab(err, stderrWrite, process.stderr);
  let restored = false;
  return {
    stdout: () => out.join(''),
    stderr: () => err.join(''),
    restore() {
      if (restored) return;
      restored = true;
      process.stdout.write = stdoutWrite;
      process.stderr.write = stderrWrite;
    },
  };
}

/** `run`'s exit code and what it wrote to stdout and stderr. */
export async function capture(run: () => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
  const captured = captureOutput();
  try {
    const code = await run();
    return { code, stdout: captured.stdout(), stderr: captured.stderr() };
  } finally {
    captured.restore();
  }
}
