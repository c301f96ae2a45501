// `intercept scan --lock [-o intercept.lock] (-- <command...> | --upstream URL)` writes a lock
// file: a digest of every tool's definition as the server lists it now. `intercept lock --update
// --lock intercept.lock (-- <command...> | --upstream URL)` lists the tools again, says what
// changed, and accepts it; without --update it only says what changed (exit status 1 when
// something did). A remote server is reached as `scan --upstream` reaches it.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { buildLock, diffLock, readLockFile, writeLockFile, type LockDiff, type LockFileData } from '../proxy/lock.js';
import { listToolDefinitions, listToolsLeniently, ScanError, shellJoin } from '../scan/discover.js';
import { listRemoteDefinitions } from '../scan/discover-remote.js';
import { describeUrl } from '../transport/http-negotiation.js';
import { listTimeoutMs, serverTarget, type ServerTarget, type ServerTargetFlags } from './server-target.js';

export interface LockOptions extends ServerTargetFlags {
  /** The lock file. */
  lock?: string;
  update?: boolean;
  timeout: string;
  clientVersion?: string;
}

function say(line: string): void {
  process.stderr.write(`intercept: ${line}\n`);
}

/** Every tool definition the server lists (all pages), as it sent them, and who it is. */
export async function listDefinitions(
  command: string[],
  timeoutMs: number,
  clientVersion = '0.0.0',
): Promise<{ server: { name: string; version: string }; tools: Record<string, unknown>[] }> {
  const transport = new StdioClientTransport({
    command: command[0]!,
    args: command.slice(1),
    env: { ...getDefaultEnvironment(), ...process.env } as Record<string, string>,
    stderr: 'pipe',
  });
  transport.stderr?.on('data', () => {});
  const client = new Client({ name: 'intercept-lock', version: clientVersion }, { capabilities: {} });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the server did not list its tools within ${timeoutMs / 1000}s`)), timeoutMs);
  });
  const work = async () => {
    await client.connect(transport);
    const info = client.getServerVersion();
    const tools = await listToolDefinitions((cursor) => listToolsLeniently(client, cursor), (why) => new ScanError(`tools/list failed: ${why}`));
    return { server: { name: info?.name ?? 'unknown', version: info?.version ?? 'unknown' }, tools };
  };
  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
    await client.close().catch(() => {});
  }
}

/** The server the flags name, or the exit status of a usage error (said on stderr). */
function targetOf(opts: ServerTargetFlags, command: string[] | undefined, verb: string, example: string): ServerTarget | number {
  const target = serverTarget(opts, command, verb, example);
  if (!('error' in target)) return target;
  say(target.error);
  return 2;
}

/** How the lock file and messages name the server: a remote one by origin and path only, so
 * credentials and query parameters (often tokens) stay out of the file. */
function targetName(target: ServerTarget): string {
  return target.kind === 'remote' ? describeUrl(new URL(target.url)) : `\`${shellJoin(target.command)}\``;
}

async function currentLock(target: ServerTarget, opts: { timeout: string; clientVersion?: string }): Promise<LockFileData | number> {
  const ms = listTimeoutMs(opts.timeout);
  if (typeof ms !== 'number') {
    say(ms.error);
    return 2;
  }
  try {
    if (target.kind === 'command') {
      const { server, tools } = await listDefinitions(target.command, ms, opts.clientVersion);
      return buildLock(server, tools, new Date());
    }
    const { server, tools } = await listRemoteDefinitions({
      url: target.url,
      headers: target.headers,
      transport: target.transport,
      timeoutMs: ms,
      progress: say,
      ...(opts.clientVersion ? { clientVersion: opts.clientVersion } : {}),
    });
    return buildLock({ ...server, url: targetName(target) }, tools, new Date());
  } catch (err) {
    // A remote failure already names the URL and what it answered.
    if (err instanceof ScanError && target.kind === 'remote') say(err.message);
    else say(`cannot list the tools of ${targetName(target)}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

/** `intercept scan --lock`: pin every tool the server lists now. */
export async function runScanLock(
  opts: ServerTargetFlags & { output?: string; timeout: string; clientVersion?: string },
  command: string[] | undefined,
): Promise<number> {
  const target = targetOf(opts, command, 'scan', 'intercept scan --lock -o intercept.lock');
  if (typeof target === 'number') return target;
  const lock = await currentLock(target, opts);
  if (typeof lock === 'number') return lock;
  const file = opts.output ?? 'intercept.lock';
  try {
    await writeLockFile(file, lock);
  } catch (err) {
    say(`cannot write ${file}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  const count = Object.keys(lock.tools).length;
  say(`pinned ${count} tool${count === 1 ? '' : 's'} of ${lock.server.name} ${lock.server.version} in ${file} (use it with: intercept --lock ${file} ...)`);
  return 0;
}

/** `intercept lock [--update] --lock intercept.lock (-- <command...> | --upstream URL)`. */
export async function runLock(opts: LockOptions, command: string[] | undefined): Promise<number> {
  const target = targetOf(opts, command, 'lock', 'intercept lock --update --lock intercept.lock');
  if (typeof target === 'number') return target;
  const file = opts.lock ?? 'intercept.lock';
  const previous = await readLockFile(file);
  if (!previous.ok) {
    const scan = target.kind === 'remote' ? '--upstream <url>' : '-- <command...>';
    say(`${previous.message} (create it with: intercept scan --lock -o ${file} ${scan})`);
    return 1;
  }
  const lock = await currentLock(target, opts);
  if (typeof lock === 'number') return lock;
  const pinnedUrl = previous.lock.server.url;
  if (pinnedUrl !== undefined && pinnedUrl !== lock.server.url) say(`note: ${file} was pinned from ${pinnedUrl}`);
  const diff = diffLock(previous.lock, lock);
  const lines = describeDiff(diff);
  for (const line of lines) process.stdout.write(line + '\n');
  if (lines.length === 0) {
    say(`no changes: the ${Object.keys(lock.tools).length} tools of ${lock.server.name} match ${file}`);
    return 0;
  }
  if (!opts.update) {
    say(`the server's tools differ from ${file}; run intercept lock --update to accept them`);
    return 1;
  }
  try {
    await writeLockFile(file, lock);
  } catch (err) {
    say(`cannot write ${file}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  say(`updated ${file}`);
  return 0;
}

/** One line per change: `added  x`, `removed  y`, `changed  z (description, inputSchema)`. */
export function describeDiff(diff: LockDiff): string[] {
  return [
    ...diff.added.map((name) => `added    ${name}`),
    ...diff.removed.map((name) => `removed  ${name}`),
    ...diff.changed.map((c) => `changed  ${c.name} (${c.fields.join(', ')})`),
  ];
}
