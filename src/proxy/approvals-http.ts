// The listener's approval endpoints, for web UIs and chat bridges:
//   GET  /approvals[?status=pending]      the requests, newest first
//   GET  /approvals/<id>                  one request
//   POST /approvals/<id>/approve|deny     body (optional): {"reason": "...", "by": "alice"}
// They answer only to the approvals token (--approvals-token), never to the agents' token: an
// agent that can reach the listener (a fetch tool, a shell) must not be able to approve its
// own calls. Without an approvals token the endpoints do not exist (404).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { APPROVAL_STATUSES, type ApprovalStatus, type ApprovalStore } from '../approval/types.js';
import { approvalView } from '../approval/view.js';
import type { Logger } from '../log.js';
import { bearerToken, readBody, tokenMatches } from '../transport/http-guard.js';

export const APPROVALS_PATH = '/approvals';
const MAX_BODY_BYTES = 16 * 1024;
const MAX_BY_CHARS = 200;

export interface ApprovalsEndpointOptions {
  store: ApprovalStore;
  /** Undefined: the endpoints are off. */
  token: string | undefined;
  log: Logger;
  now: () => number;
}

/** Whether the path is one of the approval endpoints' (the caller routes on it). */
export function isApprovalsPath(path: string): boolean {
  return path === APPROVALS_PATH || path.startsWith(`${APPROVALS_PATH}/`);
}

export async function serveApprovals(req: IncomingMessage, res: ServerResponse, path: string, opts: ApprovalsEndpointOptions): Promise<void> {
  if (opts.token === undefined) return reply(res, 404, { error: 'The approval endpoints are off: start the listener with --approvals-token to serve them' });
  if (!tokenMatches(bearerToken(req), opts.token)) {
    opts.log.warn('refused an approvals request without the approvals token');
    return reply(res, 401, { error: 'Unauthorized: the approvals token is required' }, { 'WWW-Authenticate': 'Bearer' });
  }
  const parts = path.slice(APPROVALS_PATH.length).split('/').filter((p) => p !== '');
  const now = opts.now();
  try {
    if (parts.length === 0) {
      if (req.method !== 'GET') return reply(res, 405, { error: 'Use GET' }, { Allow: 'GET' });
      const status = new URL(req.url ?? '/', 'http://localhost').searchParams.get('status') ?? undefined;
      if (status !== undefined && !(APPROVAL_STATUSES as readonly string[]).includes(status)) {
        return reply(res, 400, { error: `status must be one of ${APPROVAL_STATUSES.join(', ')}` });
      }
      const records = await opts.store.list(now, status ? { status: status as ApprovalStatus } : undefined);
      return reply(res, 200, { approvals: records.map(approvalView) });
    }
    const id = decodeURIComponent(parts[0]!);
    if (parts.length === 1) {
      if (req.method !== 'GET') return reply(res, 405, { error: 'Use GET' }, { Allow: 'GET' });
      const record = await opts.store.get(id, now);
      return record ? reply(res, 200, approvalView(record)) : reply(res, 404, { error: `No approval request ${JSON.stringify(id)}` });
    }
    const verb = parts[1];
    if (parts.length !== 2 || (verb !== 'approve' && verb !== 'deny')) return reply(res, 404, { error: 'Not found' });
    if (req.method !== 'POST') return reply(res, 405, { error: 'Use POST' }, { Allow: 'POST' });
    const body = await decisionBody(req);
    if ('error' in body) return reply(res, 400, { error: body.error });
    const by = body.by ?? 'http';
    const out = await opts.store.decide(id, { approve: verb === 'approve', by, via: 'http', reason: body.reason }, opts.now());
    if (!out.ok) {
      if (out.reason === 'not_found') return reply(res, 404, { error: `No approval request ${JSON.stringify(id)}` });
      return reply(res, 409, { error: `Request ${id} is ${out.record.status}; it can no longer be decided`, approval: approvalView(out.record) });
    }
    opts.log.info(`approval ${verb === 'approve' ? 'approved' : 'denied'} over HTTP`, { id, by });
    return reply(res, 200, approvalView(out.record));
  } catch (err) {
    opts.log.error('approval store failed while serving an approvals request', { error: String(err) });
    return reply(res, 503, { error: 'The approval store is unavailable' });
  }
}

async function decisionBody(req: IncomingMessage): Promise<{ reason?: string; by?: string } | { error: string }> {
  const body = await readBody(req, MAX_BODY_BYTES);
  if (body.kind !== 'ok') return { error: `The body must be JSON of at most ${MAX_BODY_BYTES} bytes` };
  if (body.text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(body.text);
  } catch {
    return { error: 'The body is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'The body must be a JSON object' };
  const { reason, by } = value as Record<string, unknown>;
  if (reason !== undefined && typeof reason !== 'string') return { error: 'reason must be a string' };
  if (by !== undefined && (typeof by !== 'string' || by === '' || by.length > MAX_BY_CHARS)) {
    return { error: `by must be a non-empty string of at most ${MAX_BY_CHARS} characters` };
  }
  return { reason, by };
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}
