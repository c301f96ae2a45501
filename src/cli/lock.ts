// `intercept scan --lock [-o intercept.lock] -- <command...>` writes a lock file: a digest of
// every tool's definition as the server lists it now. `intercept lock --update --lock
// intercept.lock -- <command...>` lists the tools again, says what changed, and accepts it;
// without --update it only says what changed (exit status 1 when something did).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { parseDuration } from '../policy/durations.js';
import { buildLock, diffLock, readLockFile, writeLockFile, type LockDiff, type LockFileData } from '../proxy/lock.js';
import { readToolPages } from '../jsonrpc/tool-pages.js';
import { listToolsLeniently, type ToolsPage } from '../scan/discover.js';

export interface LockOptions {
  /** The lock file. */
  lock?: string;
  update?: boolean;
  timeout: string;
  clientVersion?: string;
}

const MAX_PAGES = 10_000;

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
    const tools: Record<string, unknown>[] = [];
    const seen = new Set<string>();
    const onPage = (result: ToolsPage) => {
      for (const tool of result.tools) {
        if (seen.has(tool.name)) continue;
        seen.add(tool.name);
        tools.push(tool);
      }
    };
    await readToolPages((cursor) => listToolsLeniently(client, cursor), onPage, MAX_PAGES);
    return { server: { name: info?.name ?? 'unknown', version: info?.version ?? 'unknown' }, tools };
  };
  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
    await client.close().catch(() => {});
  }
}

function timeoutMs(text: string): number | undefined {
  const seconds = parseDuration(text) ?? (/^[0-9]+$/.test(text) ? Number(text) : undefined);
  return seconds === undefined || seconds <= 0 ? undefined : seconds * 1000;
}

function checkCommand(command: string[] | undefined, example: string): command is string[] {
  if (command === undefined || command.length === 0 || command[0] === '') {
    say(`the server command is needed after "--", e.g. ${example} -- npx -y @modelcontextprotocol/server-memory`);
    return false;
  }
  return true;
}

async function currentLock(command: string[], opts: { timeout: string; clientVersion?: string }): Promise<LockFileData | number> {
  const ms = timeoutMs(opts.timeout);
  if (ms === undefined) {
    say(`--timeout must be a duration such as "30s", "2m" or a number of seconds, got ${JSON.stringify(opts.timeout)}`);
    return 2;
  }
  try {
    const { server, tools } = await listDefinitions(command, ms, opts.clientVersion);
    return buildLock(server, tools, new Date());
  } catch (err) {
    say(`cannot list the tools of \`${command.join(' ')}\`: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

/** `intercept scan --lock`: pin every tool the server lists now. */
export async function runScanLock(
  opts: { output?: string; upstream?: string; timeout: string; clientVersion?: string },
  command: string[] | undefined): Promise<number> {
  if (opts.upstream !== undefined) {
    say('scan --lock works with a server command (after "--"); pinning a remote --upstream is not available yet');
    return 2;
  }
  if (!checkCommand(command, 'intercept scan --lock -o intercept.lock')) return 2;
  const lock = await currentLock(command, opts);
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

/** `intercept lock [--update] --lock intercept.lock -- <command...>`. */
export async function runLock(opts: LockOptions, command: string[] | undefined): Promise<number> {
  if (!checkCommand(command, 'intercept lock --update --lock intercept.lock')) return 2;
  const file = opts.lock ?? 'intercept.lock';
  const previous = await readLockFile(file);
  if (!previous.ok) {
    say(`${previous.message} (create it with: intercept scan --lock -o ${file} -- <command...>)`);
    return 1;
  }
  const lock = await currentLock(command, opts);
  if (typeof lock === 'number') return lock;
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
