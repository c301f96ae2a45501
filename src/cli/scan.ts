// `intercept scan [-o policy.yaml] [--recommended] [--format yaml|json] [--timeout 30s] -- <command...>`:
// start the server, list its tools, classify them, and write a starting policy.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseDuration } from '../policy/durations.js';
import { notYet } from './not-yet.js';
import { discoverStdio, ScanError } from '../scan/discover.js';
import { buildScaffold, scaffoldJson, scaffoldYaml } from '../scan/scaffold.js';

export interface ScanOptions {
  output?: string;
  recommended?: boolean;
  format: 'yaml' | 'json';
  timeout: string;
  upstream?: string;
  clientVersion?: string;
}

export async function runScan(opts: ScanOptions, command: string[] | undefined): Promise<number> {
  const say = (line: string) => process.stderr.write(`intercept: ${line}\n`);
  if (opts.upstream !== undefined) {
    // Remote upstreams arrive with the HTTP client transport.
    return notYet('intercept scan --upstream', 'scanning remote servers');
  }
  if (command === undefined || command.length === 0 || command[0] === '') {
    say('scan needs the server command after "--", e.g. intercept scan -- npx -y @modelcontextprotocol/server-memory');
    return 2;
  }
  const seconds = parseDuration(opts.timeout) ?? (/^[0-9]+$/.test(opts.timeout) ? Number(opts.timeout) : undefined);
  if (seconds === undefined || seconds <= 0) {
    say(`--timeout must be a duration such as "30s", "2m" or a number of seconds, got ${JSON.stringify(opts.timeout)}`);
    return 2;
  }

  let discovery;
  try {
    discovery = await discoverStdio({
      command: command[0]!,
      args: command.slice(1),
      timeoutMs: seconds * 1000,
      progress: say,
      ...(opts.clientVersion ? { clientVersion: opts.clientVersion } : {}),
    });
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
      : scaffoldYaml(scaffold, { command, date: new Date(), recommended: opts.recommended === true });

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
  return 0;
}
