// `intercept validate -c policy.yaml`: every error, with file, line, column and field.
import { formatIssue } from '../policy/format.js';
import { loadPolicyFile } from '../policy/load.js';

export async function runValidate(opts: { config: string; format: 'text' | 'json' }): Promise<number> {
  const result = await loadPolicyFile(opts.config);
  if (opts.format === 'json') {
    process.stdout.write(JSON.stringify(result.ok ? { valid: true, errors: [] } : { valid: false, errors: result.issues }, null, 2) + '\n');
    return result.ok ? 0 : 1;
  }
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
