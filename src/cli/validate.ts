// `intercept validate -c policy.yaml`: every error, with file, line, column and field; and
// every warning (accepted, but worth a second look) on stderr, which does not change the exit code.
import { formatIssue } from '../policy/format.js';
import { loadPolicyFile } from '../policy/load.js';

export async function runValidate(opts: { config: string; format: 'text' | 'json' }): Promise<number> {
  const result = await loadPolicyFile(opts.config);
  const warnings = result.ok ? (result.warnings ?? []) : [];
  if (opts.format === 'json') {
    const out: Record<string, unknown> = result.ok ? { valid: true, errors: [] } : { valid: false, errors: result.issues };
    if (warnings.length > 0) out.warnings = warnings;
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return result.ok ? 0 : 1;
  }
  for (const warning of warnings) process.stderr.write(`warning: ${formatIssue(warning)}\n`);
  if (result.ok) {
    const p = result.policy;
    const rules = p.tools.reduce((n, t) => n + t.rules.length, 0) + (p.wildcard?.rules.length ?? 0);
    process.stdout.write(`Policy file is valid: ${p.tools.length} tool(s), ${rules} rule(s), ${p.hide.length} hidden, default ${p.defaultAction}.\n`);
    return 0;
  }
  for (const issue of result.issues) process.stdout.write(formatIssue(issue) + '\n');
  process.stderr.write(`intercept: policy validation failed with ${result.issues.length} error(s)\n`);
  return 1;
}
