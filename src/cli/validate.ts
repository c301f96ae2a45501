// `intercept validate -c policy.yaml`: every error, with file, line, column and field; and
// every warning (accepted, but worth a second look) on stderr, which does not change the exit code.
// Given a server (`-- <command...>` or `--upstream URL`), it also lists the server's tools and
// reports every policy entry that matches none of them, with a did-you-mean, as the proxy does
// when it starts; `--strict` makes such an entry fail the check.
import { compile } from '../engine/compile.js';
import { describeUnmatched, unmatchedEntries, type UnmatchedEntry } from '../engine/unmatched.js';
import { formatIssue } from '../policy/format.js';
import { loadPolicyFile } from '../policy/load.js';
import type { Policy } from '../policy/model.js';
import { ToolNameIndex } from '../policy/tool-names.js';
import { discoverRemote } from '../scan/discover-remote.js';
import { discoverStdio, ScanError, type Discovery } from '../scan/discover.js';
import { listTimeoutMs, serverTarget, type ServerTarget, type ServerTargetFlags } from './server-target.js';

export interface ValidateOptions extends ServerTargetFlags {
  config: string;
  format: 'text' | 'json';
  strict?: boolean;
  timeout?: string;
  clientVersion?: string;
}

export async function runValidate(opts: ValidateOptions, command?: string[]): Promise<number> {
  const wantsServer = command !== undefined || opts.upstream !== undefined;
  let target: ServerTarget | undefined;
  let timeoutMs = 0;
  if (wantsServer) {
    const named = serverTarget(opts, command, 'validate', 'intercept validate -c policy.yaml');
    if ('error' in named) return usage(named.error);
    const ms = listTimeoutMs(opts.timeout ?? '30s');
    if (typeof ms !== 'number') return usage(ms.error);
    target = named;
    timeoutMs = ms;
  } else if (opts.strict) {
    return usage('--strict needs a server to check the policy against: -- <command...> or --upstream URL');
  }

  const result = await loadPolicyFile(opts.config);
  const warnings = result.ok ? (result.warnings ?? []) : [];
  let checked: { discovery: Discovery; unmatched: UnmatchedEntry[] } | undefined;
  if (result.ok && target !== undefined) {
    const discovery = await discover(target, timeoutMs, opts.clientVersion);
    if (typeof discovery === 'string') {
      process.stderr.write(`intercept: ${discovery}\n`);
      return 1;
    }
    checked = { discovery, unmatched: checkAgainst(result.policy, discovery) };
  }
  const failsStrict = opts.strict === true && checked !== undefined && checked.unmatched.length > 0;

  if (opts.format === 'json') {
    const out: Record<string, unknown> = result.ok ? { valid: true, errors: [] } : { valid: false, errors: result.issues };
    if (warnings.length > 0) out.warnings = warnings;
    if (checked) {
      out.server = { ...checked.discovery.server, tools: checked.discovery.tools.length };
      out.unmatched = checked.unmatched.map(unmatchedJson);
    }
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return result.ok && !failsStrict ? 0 : 1;
  }
  for (const warning of warnings) process.stderr.write(`warning: ${formatIssue(warning)}\n`);
  if (!result.ok) {
    for (const issue of result.issues) process.stdout.write(formatIssue(issue) + '\n');
    process.stderr.write(`intercept: policy validation failed with ${result.issues.length} error(s)\n`);
    return 1;
  }
  const p = result.policy;
  const rules = p.tools.reduce((n, t) => n + t.rules.length, 0) + (p.wildcard?.rules.length ?? 0);
  process.stdout.write(`Policy file is valid: ${p.tools.length} tool(s), ${rules} rule(s), ${p.hide.length} hidden, default ${p.defaultAction}.\n`);
  if (checked) {
    const { server, tools } = checked.discovery;
    const of = `${server.name} ${server.version} (${tools.length} tool${tools.length === 1 ? '' : 's'})`;
    for (const entry of checked.unmatched) process.stdout.write(describeUnmatched(entry) + '\n');
    const n = checked.unmatched.length;
    process.stdout.write(n === 0 ? `Every entry matches a tool of ${of}.\n` : `${n} entr${n === 1 ? 'y matches' : 'ies match'} no tool of ${of}.\n`);
  }
  return failsStrict ? 1 : 0;
}

/** The entries of the policy that match none of the server's tools. */
function checkAgainst(policy: Policy, discovery: Discovery): UnmatchedEntry[] {
  const names = discovery.tools.map((t) => t.name);
  return unmatchedEntries(compile(policy), names, new ToolNameIndex(names));
}

/** The server's tools, or why they could not be listed. */
async function discover(target: ServerTarget, timeoutMs: number, clientVersion: string | undefined): Promise<Discovery | string> {
  const progress = (line: string) => process.stderr.write(`intercept: ${line}\n`);
  const version = clientVersion ? { clientVersion } : {};
  try {
    return target.kind === 'remote'
      ? await discoverRemote({ url: target.url, headers: target.headers, transport: target.transport, timeoutMs, progress, ...version })
      : await discoverStdio({ command: target.command[0]!, args: target.command.slice(1), timeoutMs, progress, ...version });
  } catch (err) {
    if (err instanceof ScanError) return err.message;
    throw err;
  }
}

function unmatchedJson(e: UnmatchedEntry): Record<string, unknown> {
  return {
    section: e.section,
    name: e.name,
    pattern: e.pattern,
    file: e.file,
    ...(e.pos ? { line: e.pos.line, col: e.pos.col } : {}),
    ...(e.suggestion ? { suggestion: e.suggestion.tool, ...(e.suggestion.also ? { alternatives: e.suggestion.also } : {}), suggestedBy: e.suggestion.by } : {}),
  };
}

function usage(message: string): number {
  process.stderr.write(`intercept: ${message}\n`);
  return 2;
}
