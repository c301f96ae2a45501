// --approval-webhook: each new request is POSTed as JSON, so a chat bridge or a web UI can show
// it the moment it is made. With a secret, the body is signed: X-Intercept-Signature is
// `sha256=` + hex HMAC-SHA256 over `<X-Intercept-Timestamp>.<body>`, so a receiver can check
// both who sent it and that it is fresh. Delivery is best effort (one try, 5 s): the request
// stands in the store whatever happens to the webhook.
import { createHmac } from 'node:crypto';
import type { Logger } from '../log.js';
import type { ApprovalRecord } from './types.js';
import { approvalView } from './view.js';

const TIMEOUT_MS = 5000;

export function approvalWebhook(url: string, secret: string | undefined, log: Logger): (record: ApprovalRecord) => void {
  return (record) => {
    const body = JSON.stringify({ event: 'approval.requested', approval: approvalView(record) });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'User-Agent': 'intercept-approvals',
      'X-Intercept-Event': 'approval.requested',
      'X-Intercept-Timestamp': timestamp,
    };
    if (secret !== undefined) headers['X-Intercept-Signature'] = `sha256=${webhookSignature(secret, timestamp, body)}`;
    fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) }).then(
      async (res) => {
        await res.body?.cancel();
        if (!res.ok) log.warn('the approval webhook refused a request', { id: record.id, status: res.status });
      },
      (err: unknown) => log.warn('the approval webhook could not be reached', { id: record.id, error: String(err) }),
    );
  };
}

export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}
