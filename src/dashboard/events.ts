// GET /api/events: the trail as server-sent events, the records already there since a time and
// then each one a proxy appends (audit/reader.ts followTrail), with a heartbeat so the page can
// tell a quiet trail from a lost connection. Each event's id names its record, so a browser
// that reconnects (sending Last-Event-ID) resumes just after the last record it had.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditRecord } from '../audit/event.js';
import { byTime, followTrail } from '../audit/reader.js';

export interface EventStreamOptions {
  dir: string;
  heartbeatMs: number;
  pollMs?: number;
  now: () => number;
}

/** Without `since`, the stream starts this far back. */
export const DEFAULT_BACK_MS = 60 * 60 * 1000;
/** The furthest back a stream may start. */
const MAX_BACK_MS = 7 * 24 * 60 * 60 * 1000;
/** A record larger than this is sent without its arguments (kept only with --log-args). */
const MAX_RECORD_CHARS = 64 * 1024;
/** A browser that reads slower than the trail grows is cut off past this much unsent data;
 * it reconnects and resumes from its last event. */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

type Start = { since: number; after?: Pick<AuditRecord, 'ts' | 'instance' | 'seq'> };

/** Where a stream starts: after the Last-Event-ID's record, else at `since` (ISO time or ms
 * since the epoch), else DEFAULT_BACK_MS ago; never more than MAX_BACK_MS ago. Undefined when
 * `since` is given but is neither. */
export function streamStart(since: string | null, lastEventId: string | undefined, now: number): Start | undefined {
  const floor = now - MAX_BACK_MS;
  const after = lastEventId === undefined ? undefined : parseEventId(lastEventId);
  if (after !== undefined) return { since: Math.max(floor, Date.parse(after.ts)), after };
  if (since === null) return { since: now - DEFAULT_BACK_MS };
  const ms = /^\d{1,15}$/.test(since) ? Number(since) : Date.parse(since);
  if (!Number.isFinite(ms)) return undefined;
  return { since: Math.max(floor, ms) };
}

export function serveEvents(req: IncomingMessage, res: ServerResponse, start: Start, opts: EventStreamOptions, onEnd: () => void): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write('retry: 2000\n\n');
  const stop = new AbortController();
  const end = () => {
    if (stop.signal.aborted) return;
    stop.abort();
    clearInterval(heartbeat);
    res.end();
    onEnd();
  };
  const heartbeat = setInterval(() => send('heartbeat', undefined, { at: new Date(opts.now()).toISOString() }), opts.heartbeatMs);
  req.on('close', end);
  res.on('error', end);

  function send(event: string, id: string | undefined, data: unknown): void {
    if (stop.signal.aborted) return;
    res.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    if (res.writableLength > MAX_UNSENT_BYTES) end();
  }

  const after = start.after;
  followTrail(
    opts.dir,
    (record) => {
      if (after !== undefined && byTime(record, after as AuditRecord) <= 0) return;
      send('record', eventId(record), shown(record));
    },
    { since: start.since, signal: stop.signal, pollMs: opts.pollMs },
  ).then(end, (err: unknown) => {
    send('trouble', undefined, { error: `cannot read the trail: ${(err as Error).message}` });
    end();
  });
}

/** `<ts> <instance> <seq>`: none of the three holds a space. */
function eventId(r: AuditRecord): string {
  return `${r.ts} ${r.instance} ${r.seq}`;
}

function parseEventId(id: string): Start['after'] {
  const m = /^(\S{1,40}) ([A-Za-z0-9-]{1,80}) (\d{1,15})$/.exec(id);
  if (m === null || Number.isNaN(Date.parse(m[1]!))) return undefined;
  return { ts: m[1]!, instance: m[2]!, seq: Number(m[3]) };
}

/** The record as the page gets it: without the chain's hashes, and without arguments too
 * large to send. */
function shown(record: AuditRecord): Record<string, unknown> {
  const { prev: _prev, hash: _hash, prevFile: _prevFile, ...rest } = record;
  const out: Record<string, unknown> = rest;
  if ('args' in out && JSON.stringify(out).length > MAX_RECORD_CHARS) {
    delete out.args;
    out.argsOmitted = true;
  }
  return out;
}
