// `intercept test -c policy.yaml cases.yaml [--json]`: policy tests for CI. Each case gives a
// call (and what came before it) and the decision the policy must make, decided as the proxy
// would and without any server. Exit 0 when every case passes, 1 when one fails, 2 when the
// policy or the cases file does not load.
import { compile } from '../engine/compile.js';
import { loadCasesFile } from '../offline/load-cases.js';
import { formatReport, reportJson } from '../offline/report.js';
import { checkCases, runCases } from '../offline/run-cases.js';
import { formatIssue } from '../policy/format.js';
import { loadPolicyFile } from '../policy/load.js';
import type { PolicyIssue } from '../policy/model.js';

export interface PolicyTestFlags {
  config: string;
  json?: boolean;
}

function refuse(issues: readonly PolicyIssue[], what: string): number {
  for (const issue of issues) process.stderr.write(formatIssue(issue) + '\n');
  process.stderr.write(`intercept test: ${what} has ${issues.length} error(s)\n`);
  return 2;
}

export async function runPolicyTest(casesPath: string, flags: PolicyTestFlags): Promise<number> {
  const loaded = await loadPolicyFile(flags.config);
  if (!loaded.ok) return refuse(loaded.issues, 'the policy file');
  const cases = await loadCasesFile(casesPath);
  if (!cases.ok) return refuse(cases.issues, 'the cases file');
  const policy = compile(loaded.policy);
  const unknown = checkCases(policy, cases.cases);
  if (unknown.length > 0) return refuse(unknown, 'the cases file');
  if (cases.cases.cases.length === 0) process.stderr.write(`intercept test: ${casesPath} has no cases\n`);

  const results = await runCases(policy, cases.cases);
  if (flags.json) process.stdout.write(JSON.stringify(reportJson(results, { policy: flags.config, cases: casesPath }), null, 2) + '\n');
  else process.stdout.write(formatReport(results, casesPath) + '\n');
  return results.every((r) => r.passed) ? 0 : 1;
}
