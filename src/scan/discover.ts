// Starts an MCP server over stdio, lists every tool it offers (all pages), and stops it.
// Uses the official v1 SDK client and declares no optional client capabilities: servers that
// add tools for richer clients (sampling, elicitation, roots) show the tools any client gets.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { z } from 'zod';
import { readToolPages } from '../jsonrpc/tool-pages.js';
import type { ToolAnnotations } from '../engine/risk.js';

export interface DiscoveredTool {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: unknown;
  annotations?: ToolAnnotations;
}

export interface Discovery {
  server: { name: string; version: string };
  tools: DiscoveredTool[];
}

export interface DiscoverOptions {
  command: string;
  args: string[];
  /** Whole scan: start, handshake and every page. */
  timeoutMs: number;
  /** Progress lines for the user (stderr). */
  progress?: (line: string) => void;
  /** Extra environment for the server. */
  env?: Record<string, string>;
  clientVersion?: string;
}

/** A scan that could not finish; the message is meant for the user as it is. */
export class ScanError extends Error {}

/** Guards against a server that hands back the same cursor forever. */
const MAX_PAGES = 10_000;

export async function discoverStdio(opts: DiscoverOptions): Promise<Discovery> {
  const shown = shellJoin([opts.command, ...opts.args]);
  const progress = opts.progress ?? (() => {});
  const transport = new StdioClientTransport({
    command: opts.command,
    args: opts.args,
    env: { ...getDefaultEnvironment(), ...process.env, ...opts.env } as Record<string, string>,
    // Kept, and shown only if the scan fails: the server's own words say why.
    stderr: 'pipe',
  });
  const stderrTail: string[] = [];
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderrTail.push(...chunk.toString('utf8').split('\n').filter((l) => l.trim() !== ''));
    if (stderrTail.length > 20) stderrTail.splice(0, stderrTail.length - 20);
  });
  const client = new Client({ name: 'intercept-scan', version: opts.clientVersion ?? '0.0.0' }, { capabilities: {} });

  let closed = false;
  transport.onclose = () => {
    closed = true;
  };
  const withServerOutput = (message: string) =>
    stderrTail.length === 0 ? message : `${message}\nserver stderr (last lines):\n  ${stderrTail.join('\n  ')}`;

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new ScanError(withServerOutput(`scan timed out after ${formatMs(opts.timeoutMs)}: \`${shown}\` did not answer`)));
    }, opts.timeoutMs);
  });

  const work = async (): Promise<Discovery> => {
    progress(`starting \`${shown}\`…`);
    try {
      await client.connect(transport);
    } catch (err) {
      throw explainStartFailure(err, opts.command, shown, closed, withServerOutput);
    }
    const info = client.getServerVersion();
    const server = { name: info?.name ?? 'unknown', version: info?.version ?? 'unknown' };
    progress(`connected to ${server.name} ${server.version}`);
    if (!client.getServerCapabilities()?.tools) progress('the server does not declare the tools capability; asking anyway');

    const tools = await listAllTools(
      (cursor) => listToolsLeniently(client, cursor),
      (why) => new ScanError(withServerOutput(closed ? `\`${shown}\` exited while listing its tools` : `tools/list failed: ${why}`)),
      progress,
    );
    return { server, tools };
  };

  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
    await client.close().catch(() => {});
  }
}

/** One page of `tools/list`, as the server sent it. The SDK's own `listTools` rejects the
 * whole page when one tool breaks the schema (some published servers send an `inputSchema`
 * without `type: "object"`); a scan reports what the server offers, so it checks only what it
 * needs and keeps the rest. */
export async function listToolsLeniently(client: Client, cursor: string | undefined): Promise<ToolsPage> {
  const result = await client.request({ method: 'tools/list', params: cursor === undefined ? {} : { cursor } }, LENIENT_PAGE);
  return result as ToolsPage;
}

const LENIENT_PAGE = z.looseObject({
  tools: z.array(z.looseObject({ name: z.string() })),
  nextCursor: z.string().optional(),
});

export interface ToolsPage {
  tools: Array<{ name: string } & Record<string, unknown>>;
  nextCursor?: string;
}

/** Every tool definition over all pages as the server sent it, each name once (the first
 * wins): what a lock file pins. */
export async function listToolDefinitions(
  listPage: (cursor: string | undefined) => Promise<ToolsPage>,
  failure: (why: string) => ScanError,
): Promise<ToolsPage['tools']> {
  const tools: ToolsPage['tools'] = [];
  const seen = new Set<string>();
  const onPage = (result: ToolsPage) => {
    for (const tool of result.tools) {
      if (seen.has(tool.name)) continue; // a server repeating a tool across pages
      seen.add(tool.name);
      tools.push(tool);
    }
  };
  try {
    await readToolPages(listPage, onPage, MAX_PAGES);
  } catch (err) {
    if (err instanceof ScanError) throw err;
    throw failure(err instanceof Error ? err.message : String(err));
  }
  return tools;
}

/** Every tool over all pages, each once, with a progress line at the end. */
export async function listAllTools(
  listPage: (cursor: string | undefined) => Promise<ToolsPage>,
  failure: (why: string) => ScanError,
  progress: (line: string) => void,
): Promise<DiscoveredTool[]> {
  const tools = (await listToolDefinitions(listPage, failure)).map(pick);
  progress(`${tools.length} tool${tools.length === 1 ? '' : 's'}`);
  const unusable = tools.filter((t) => !isObjectSchema(t.inputSchema)).length;
  if (unusable > 0) {
    progress(
      `${unusable} tool${unusable === 1 ? ' has' : 's have'} no usable inputSchema (not an object schema): ` +
        'their parameters are unknown, and strict MCP clients may reject them',
    );
  }
  return tools;
}

function isObjectSchema(schema: unknown): boolean {
  return typeof schema === 'object' && schema !== null && (schema as { type?: unknown }).type === 'object';
}

function pick(tool: { name: string } & Record<string, unknown>): DiscoveredTool {
  const out: DiscoveredTool = { name: tool.name };
  if (typeof tool.title === 'string') out.title = tool.title;
  if (typeof tool.description === 'string') out.description = tool.description;
  if (tool.inputSchema !== undefined) out.inputSchema = tool.inputSchema;
  const annotations = tool.annotations;
  if (typeof annotations === 'object' && annotations !== null && !Array.isArray(annotations)) {
    const given = annotations as Record<string, unknown>;
    const a: ToolAnnotations = {};
    for (const key of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const) {
      const v = given[key];
      if (typeof v === 'boolean') a[key] = v;
    }
    if (typeof given.title === 'string') a.title = given.title;
    out.annotations = a;
  }
  return out;
}

function explainStartFailure(
  err: unknown,
  command: string,
  shown: string,
  closed: boolean,
  withServerOutput: (m: string) => string,
): ScanError {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') return new ScanError(`command not found: ${command} (in \`${shown}\`)`);
  if (code === 'EACCES') return new ScanError(`command is not executable: ${command} (in \`${shown}\`)`);
  if (closed) return new ScanError(withServerOutput(`\`${shown}\` exited before completing the MCP handshake`));
  const why = err instanceof Error ? err.message : String(err);
  return new ScanError(withServerOutput(`could not connect to \`${shown}\`: ${why}`));
}

export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** The command as one could type it again. */
export function shellJoin(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
