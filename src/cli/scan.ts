// `intercept scan [-o policy.yaml] [--recommended] [--format yaml|json] [--timeout 30s] -- <command...>`:
// start the server, list its tools, classify them, and write a starting policy.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseDuration } from '../policy/durations.js';
import { discoverStdio, ScanError, type Discovery } from '../scan/discover.js';
import { discoverRemote } from '../scan/discover-remote.js';
import { checkUpstreamUrl, parseHeaderFlags } from './proxy.js';
import { buildScaffold, scaffoldJson, scaffoldYaml } from '../scan/scaffold.js';
import { runScanLock } from './lock.js';

export interface ScanOptions {
  output?: string;
  recommended?: boolean;
  format: 'yaml' | 'json';
  timeout: string;
  upstream?: string;
  header?: string[];
  upstreamTransport?: 'auto' | 'streamable' | 'sse';
  clientVersion?: string;
  /** Write a lock file of the tools' definitions instead of a policy. */
  lock?: boolean;
}

export async function runScan(opts: ScanOptions, command: string[] | undefined): Promise<number> {
  if (opts.lock) return runScanLock(opts, command);
  const say = (line: string) => process.stderr.write(`intercept: ${line}\n`);
  const hasCommand = command !== undefined && command.length > 0 && command[0] !== '';
  const headerFlags = opts.header ?? [];
  if (opts.upstream !== undefined) {
    if (hasCommand) return usage('cannot scan both a server command (after --) and --upstream URL');
    const bad = checkUpstreamUrl(opts.upstream);
    if (bad) return usage(bad);
  } else {
    if (headerFlags.length > 0) return usage('--header requires --upstream');
    if ((opts.upstreamTransport ?? 'auto') !== 'auto') return usage('--upstream-transport requires --upstream');
    if (!hasCommand) {
      return usage('scan needs the server command after "--", e.g. intercept scan -- npx -y @modelcontextprotocol/server-memory, or --upstream URL');
    }
  }
  const headers = parseHeaderFlags(headerFlags);
  if (typeof headers === 'string') return usage(headers);
  const seconds = parseDuration(opts.timeout) ?? (/^[0-9]+$/.test(opts.timeout) ? Number(opts.timeout) : undefined);
  if (seconds === undefined || seconds <= 0) {
    return usage(`--timeout must be a duration such as "30s", "2m" or a number of seconds, got ${JSON.stringify(opts.timeout)}`);
  }

  let discovery: Discovery;
  const clientVersion = opts.clientVersion ? { clientVersion: opts.clientVersion } : {};
  try {
    discovery =
      opts.upstream !== undefined
        ? await discoverRemote({
            url: opts.upstream,
            headers,
            transport: opts.upstreamTransport ?? 'auto',
            timeoutMs: seconds * 1000,
            progress: say,
            ...clientVersion,
          })
        : await discoverStdio({ command: command![0]!, args: command!.slice(1), timeoutMs: seconds * 1000, progress: say, ...clientVersion });
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
