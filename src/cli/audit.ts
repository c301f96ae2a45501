// `intercept audit verify`: checks the hash chains of the audit trail; exit 0 when it is intact,
// 1 when something was changed, inserted, deleted or lost, 2 for usage errors.
import { verifyTrail, type VerifyProblem } from '../audit/verify.js';
import { DEFAULT_EVENTS_DIR } from '../audit/writer.js';
import { parseRetention } from './observability.js';

export interface AuditVerifyFlags {
  eventsDir?: string;
  eventsRetention?: string;
  json?: boolean;
}

const where = (p: VerifyProblem) => (p.line === undefined ? p.file : `${p.file}:${p.line}`);

export async function runAuditVerify(flags: AuditVerifyFlags): Promise<number> {
  const retentionDays = parseRetention(flags.eventsRetention);
  if (typeof retentionDays === 'string') {
    process.stderr.write(`intercept: ${retentionDays}\n`);
    return 2;
  }
  const dir = flags.eventsDir ?? DEFAULT_EVENTS_DIR;
  let report;
  try {
    report = await verifyTrail(dir, { retentionDays });
  } catch (err) {
    process.stderr.write(`intercept: cannot read the audit trail in ${dir}: ${(err as Error).message}\n`);
    return 1;
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ dir, ok: report.problems.length === 0, ...report })}\n`);
  } else {
    for (const p of report.problems) process.stdout.write(`${where(p)}: ${p.problem}\n`);
    for (const n of report.notes) process.stdout.write(`${where(n)}: note: ${n.problem}\n`);
    const counts = `${report.records} record(s) in ${report.files} file(s) from ${report.instances} process(es) in ${dir}`;
    process.stdout.write(report.problems.length === 0 ? `ok: ${counts}; every chain is intact\n` : `FAILED: ${report.problems.length} problem(s) in ${counts}\n`);
  }
  return report.problems.length === 0 ? 0 : 1;
}
