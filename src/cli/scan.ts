// `intercept scan [-o policy.yaml] [--recommended] [--format yaml|json] [--timeout 30s] -- <command...>`:
// start the server, list its tools, classify them, and write a starting policy.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { discoverStdio, ScanError, type Discovery } from '../scan/discover.js';
import { discoverRemote } from '../scan/discover-remote.js';
import { listTimeoutMs, serverTarget, type UpstreamTransportMode } from './server-target.js';
import { buildScaffold, scaffoldJson, scaffoldYaml, type Scaffold } from '../scan/scaffold.js';
import { starterCasesPath, starterCasesYaml } from '../scan/starter-cases.js';
import { runScanLock } from './lock.js';

export interface ScanOptions {
  output?: string;
  recommended?: boolean;
  format: 'yaml' | 'json';
  timeout: string;
  upstream?: string;
  header?: string[];
  upstreamTransport?: UpstreamTransportMode;
  clientVersion?: string;
  /** Write a lock file of the tools' definitions instead of a policy. */
  lock?: boolean;
}

export async function runScan(opts: ScanOptions, command: string[] | undefined): Promise<number> {
  if (opts.lock) return runScanLock(opts, command);
  const say = (line: string) => process.stderr.write(`intercept: ${line}\n`);
  const target = serverTarget(opts, command, 'scan', 'intercept scan');
  if ('error' in target) return usage(target.error);
  const timeoutMs = listTimeoutMs(opts.timeout);
  if (typeof timeoutMs !== 'number') return usage(timeoutMs.error);

  let discovery: Discovery;
  const clientVersion = opts.clientVersion ? { clientVersion: opts.clientVersion } : {};
  try {
    discovery =
      target.kind === 'remote'
        ? await discoverRemote({ url: target.url, headers: target.headers, transport: target.transport, timeoutMs, progress: say, ...clientVersion })
        : await discoverStdio({ command: target.command[0]!, args: target.command.slice(1), timeoutMs, progress: say, ...clientVersion });
  } catch (err) {
    if (err instanceof ScanError) {
      say(err.message);
      return 1;
    }
    throw err;
  }

  const scaffold = buildScaffold(discovery);
  for (const name of scaffold.skipped) say(`left out tool ${JSON.stringify(name)}: it cannot be a policy key`);
  const text =
    opts.format === 'json'
      ? scaffoldJson(scaffold)
      : scaffoldYaml(scaffold, {
          // The header says how to scan again; header values (credentials) are left out.
          command: command ?? [],
          ...(opts.upstream !== undefined ? { remote: remoteFlags(opts) } : {}),
          date: new Date(),
          recommended: opts.recommended === true,
        });

  if (opts.output === undefined || opts.output === '-') {
    process.stdout.write(text);
    return 0;
  }
  try {
    await mkdir(dirname(opts.output), { recursive: true });
    await writeFile(opts.output, text);
  } catch (err) {
    say(`cannot write ${opts.output}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  say(`wrote ${opts.output}${opts.format === 'yaml' ? ` (check it with: intercept validate -c ${opts.output})` : ''}`);
  if (opts.format === 'yaml') return writeStarterCases(opts.output, scaffold, discovery, opts.recommended === true, say);
  return 0;
}

/** The starter test cases beside the policy, unless a file of that name is there already (it
 * holds the user's own cases, which a new scan must not overwrite). */
async function writeStarterCases(policyFile: string, scaffold: Scaffold, discovery: Discovery, recommended: boolean, say: (line: string) => void): Promise<number> {
  const casesFile = starterCasesPath(policyFile);
  const text = starterCasesYaml(scaffold, discovery.tools, { policyFile, casesFile, recommended });
  try {
    await writeFile(casesFile, text, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      say(`left ${casesFile} as it is (it exists); the starter test cases were not written`);
      return 0;
    }
    say(`cannot write ${casesFile}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  say(`wrote starter test cases to ${casesFile} (run them with: intercept test -c ${policyFile} ${casesFile})`);
  return 0;
}

function usage(message: string): number {
  process.stderr.write(`intercept: ${message}\n`);
  return 2;
}

/** The scan flags as the header shows them, standing in for a server command. */
function remoteFlags(opts: ScanOptions): string[] {
  const url = new URL(opts.upstream!);
  // Credentials in the URL stay out of the file.
  url.username = '';
  url.password = '';
  const names = (opts.header ?? []).map((h) => h.slice(0, h.indexOf(':')));
  return [
    `--upstream=${url.href}`,
    ...names.map((n) => `--header=${n}: …`),
    ...(opts.upstreamTransport && opts.upstreamTransport !== 'auto' ? [`--upstream-transport=${opts.upstreamTransport}`] : []),
  ];
}
