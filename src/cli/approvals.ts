// `intercept approvals list|show|approve|deny`: the human side of require_approval. It opens the
// same store as the proxy (same -c, --state-dir, --state-dsn, --state-prefix), so it reaches
// requests made by any proxy sharing that store, on this machine or, with Redis, anywhere.
import { hostname } from 'node:os';
import { observedApprovals } from '../audit/observed-approvals.js';
import { DEFAULT_EVENTS_DIR, EventLog, instanceName } from '../audit/writer.js';
import { localDecider } from '../approval/decider.js';
import { openApprovalStore } from '../approval/open.js';
import { APPROVAL_STATUSES, type ApprovalRecord, type ApprovalStatus, type ApprovalStore } from '../approval/types.js';
import { approvalView } from '../approval/view.js';
import { createLogger } from '../log.js';
import { checkStateDsn, policyNamespace } from '../state/open.js';

export interface ApprovalsFlags {
  config?: string;
  stateDir?: string;
  stateDsn?: string;
  statePrefix?: string;
  json?: boolean;
  status?: string;
  reason?: string;
  /** Decisions are recorded in the audit trail here (false with --no-events). */
  events?: boolean;
  eventsDir?: string;
}

type Action = { kind: 'list' } | { kind: 'show'; id: string } | { kind: 'decide'; id: string; approve: boolean };

export async function runApprovals(action: Action, flags: ApprovalsFlags): Promise<number> {
  const prefix = flags.statePrefix ?? (flags.config !== undefined ? policyNamespace(flags.config) : undefined);
  if (prefix === undefined) return usage('give the proxy\'s policy file with -c (or its --state-prefix), so the approvals of that proxy are found');
  const dsnProblem = flags.stateDsn === undefined ? undefined : checkStateDsn(flags.stateDsn);
  if (dsnProblem) return usage(dsnProblem);
  if (flags.status !== undefined && !(APPROVAL_STATUSES as readonly string[]).includes(flags.status)) {
    return usage(`--status must be one of ${APPROVAL_STATUSES.join(', ')}, got ${JSON.stringify(flags.status)}`);
  }
  const log = createLogger('warn');
  let store: ApprovalStore;
  try {
    store = (await openApprovalStore({ stateDir: flags.stateDir, stateDsn: flags.stateDsn, prefix, log })).store;
  } catch (err) {
    process.stderr.write(`intercept: cannot open the approval store: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const now = Date.now();
    switch (action.kind) {
      case 'list': {
        const records = await store.list(now, flags.status ? { status: flags.status as ApprovalStatus } : undefined);
        if (flags.json) print(JSON.stringify(records.map(approvalView), null, 2));
        else print(records.length === 0 ? 'No approval requests.' : table(records, now));
        return 0;
      }
      case 'show': {
        const record = await store.get(action.id, now);
        if (record === undefined) return notFound(action.id);
        print(flags.json ? JSON.stringify(approvalView(record), null, 2) : details(record, now));
        return 0;
      }
      case 'decide': {
        const by = localDecider();
        // The decision is recorded by the process that made it, in its own trail file.
        const trail = flags.events === false ? undefined : await EventLog.open({ dir: flags.eventsDir ?? DEFAULT_EVENTS_DIR, instance: instanceName(`cli-${hostname()}`), retentionDays: 0, log });
        const deciding = trail === undefined ? store : observedApprovals(store, trail);
        const out = await deciding.decide(action.id, { approve: action.approve, by, via: 'cli', reason: flags.reason }, now).finally(() => trail?.close());
        if (!out.ok) {
          if (out.reason === 'not_found') return notFound(action.id);
          const r = out.record;
          process.stderr.write(`intercept: request ${r.id} is ${r.status}${r.decidedBy ? ` (by ${r.decidedBy} via ${r.via})` : ''}; it can no longer be ${action.approve ? 'approved' : 'denied'}\n`);
          return 1;
        }
        if (flags.json) print(JSON.stringify(approvalView(out.record), null, 2));
        else print(`${action.approve ? 'Approved' : 'Denied'} ${out.record.id}: ${out.record.tool} (rule ${JSON.stringify(out.record.rule)}), by ${by}.`);
        return 0;
      }
    }
  } catch (err) {
    process.stderr.write(`intercept: the approval store failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await store.close().catch(() => {});
  }
}

function table(records: ApprovalRecord[], now: number): string {
  const rows = [['ID', 'STATUS', 'TOOL', 'RULE', 'REQUESTED', 'EXPIRES', 'ARGUMENTS']];
  for (const r of records) {
    rows.push([r.id, r.status, r.tool, r.rule, ago(now - r.requestedAt), isOpen(r) ? `in ${span(r.expiresAt - now)}` : '—', short(JSON.stringify(r.arguments), 60)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

function details(r: ApprovalRecord, now: number): string {
  const lines = [
    `id:         ${r.id}`,
    `status:     ${r.status}`,
    `tool:       ${r.tool}`,
    `rule:       ${r.rule} (${r.mode}, scope ${r.scope}, on timeout ${r.onTimeout})`,
    `requested:  ${new Date(r.requestedAt).toISOString()} (${ago(now - r.requestedAt)})`,
    `expires:    ${new Date(r.expiresAt).toISOString()}${isOpen(r) ? ` (in ${span(r.expiresAt - now)})` : ''}`,
  ];
  if (r.decidedAt !== undefined) lines.push(`decided:    ${new Date(r.decidedAt).toISOString()} by ${r.decidedBy ?? '?'} via ${r.via ?? '?'}${r.reason ? `: ${r.reason}` : ''}`);
  if (r.usedAt !== undefined) lines.push(`used:       ${new Date(r.usedAt).toISOString()}`);
  lines.push('arguments:', ...JSON.stringify(r.arguments, null, 2).split('\n').map((l) => `  ${l}`));
  return lines.join('\n');
}

const isOpen = (r: ApprovalRecord) => r.status === 'pending' || r.status === 'approved';
const ago = (ms: number) => `${span(ms)} ago`;
const short = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** 75 s → "1m 15s"; 2 h → "2h 0m". */
function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function print(text: string): void {
  process.stdout.write(text + '\n');
}

function notFound(id: string): number {
  process.stderr.write(`intercept: no approval request ${JSON.stringify(id)} (wrong id, another policy's store, or swept a day after it ended)\n`);
  return 1;
}

function usage(message: string): number {
  process.stderr.write(`intercept approvals: ${message}\n`);
  return 2;
}
