// Regenerates the catalogue in policies/: installs each server below from npm into a temporary
// directory (install scripts off, so nothing downloads a browser or builds anything), scans it
// as `intercept scan --recommended` does, writes policies/<file>, and rewrites the index,
// policies/README.md. Needs network to the npm registry only: the servers get fake credentials
// and list their tools without calling their APIs.
//
//   npm run policies              every server
//   npm run policies -- github    only the entries whose file name contains "github"
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { CATEGORIES, type Category } from '../src/engine/risk.js';
import { discoverStdio } from '../src/scan/discover.js';
import { buildScaffold, categoryCounts, scaffoldYaml } from '../src/scan/scaffold.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const OUT = join(ROOT, 'policies');

interface Entry {
  /** The file in policies/. */
  file: string;
  /** The server's name in the index. */
  title: string;
  package: string;
  version: string;
  /** Arguments as the header shows them (placeholders for credentials and paths). */
  args?: string[];
  /** Arguments the scan really uses, when they differ from `args`; `dir` is a scratch directory. */
  runArgs?: (dir: string) => string[];
  /** Fake credentials and settings the server needs to start. */
  env?: (dir: string) => Record<string, string>;
}

// Fake Twilio credentials in the form the server checks (AC/SK followed by 32 hex digits).
const TWILIO_FAKE = `AC${'0'.repeat(32)}/SK${'0'.repeat(32)}:secret`;
const TWILIO_SHOWN = 'YOUR_ACCOUNT_SID/YOUR_API_KEY:YOUR_API_SECRET';

/** The pinned servers. Bump a version here and run `npm run policies`. */
export const SERVERS: Entry[] = [
  { file: 'twilio.yaml', title: 'Twilio (core API, the default service)', package: '@twilio-alpha/mcp', version: '0.7.0', args: [TWILIO_SHOWN], runArgs: () => [TWILIO_FAKE] },
  {
    file: 'twilio-conversations-studio.yaml',
    title: 'Twilio (Conversations and Studio)',
    package: '@twilio-alpha/mcp',
    version: '0.7.0',
    args: [TWILIO_SHOWN, '--services', 'twilio_conversations_v1,twilio_studio_v2'],
    runArgs: () => [TWILIO_FAKE, '--services', 'twilio_conversations_v1,twilio_studio_v2'],
  },
  { file: 'everything.yaml', title: 'Everything (MCP test server)', package: '@modelcontextprotocol/server-everything', version: '2026.8.31', args: ['stdio'] },
  {
    file: 'filesystem.yaml',
    title: 'Filesystem',
    package: '@modelcontextprotocol/server-filesystem',
    version: '2026.8.31',
    args: ['/path/to/allowed/dir'],
    runArgs: (dir) => [dir],
  },
  {
    file: 'memory.yaml',
    title: 'Memory (knowledge graph)',
    package: '@modelcontextprotocol/server-memory',
    version: '2026.8.31',
    env: (dir) => ({ MEMORY_FILE_PATH: join(dir, 'memory.jsonl') }),
  },
  { file: 'github.yaml', title: 'GitHub', package: '@modelcontextprotocol/server-github', version: '2025.4.8', env: () => ({ GITHUB_PERSONAL_ACCESS_TOKEN: 'ghp_fake' }) },
  { file: 'gitlab.yaml', title: 'GitLab', package: '@modelcontextprotocol/server-gitlab', version: '2025.4.25', env: () => ({ GITLAB_PERSONAL_ACCESS_TOKEN: 'glpat-fake' }) },
  { file: 'postgres.yaml', title: 'PostgreSQL', package: '@modelcontextprotocol/server-postgres', version: '0.6.2', args: ['postgresql://localhost/mydb'] },
  { file: 'slack.yaml', title: 'Slack', package: '@modelcontextprotocol/server-slack', version: '2025.4.25', env: () => ({ SLACK_BOT_TOKEN: 'xoxb-fake', SLACK_TEAM_ID: 'T00000000' }) },
  { file: 'puppeteer.yaml', title: 'Puppeteer (browser automation)', package: '@modelcontextprotocol/server-puppeteer', version: '2025.5.12' },
  { file: 'sequential-thinking.yaml', title: 'Sequential Thinking', package: '@modelcontextprotocol/server-sequential-thinking', version: '2026.8.31' },
  { file: 'brave-search.yaml', title: 'Brave Search', package: '@modelcontextprotocol/server-brave-search', version: '0.6.2', env: () => ({ BRAVE_API_KEY: 'fake' }) },
  { file: 'google-maps.yaml', title: 'Google Maps', package: '@modelcontextprotocol/server-google-maps', version: '0.6.2', env: () => ({ GOOGLE_MAPS_API_KEY: 'fake' }) },
  { file: 'everart.yaml', title: 'EverArt (image generation)', package: '@modelcontextprotocol/server-everart', version: '0.6.2', env: () => ({ EVERART_API_KEY: 'fake' }) },
];

/** Nothing may download a browser or call home while a server is installed or scanned. */
const QUIET_ENV: Record<string, string> = { PUPPETEER_SKIP_DOWNLOAD: '1', PUPPETEER_SKIP_CHROMIUM_DOWNLOAD: '1', PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' };

interface Row {
  file: string;
  title: string;
  spec: string;
  counts: Record<Category, number>;
  total: number;
}

async function generate(entry: Entry, date: Date): Promise<Row> {
  const spec = `${entry.package}@${entry.version}`;
  const dir = await mkdtemp(join(tmpdir(), 'intercept-policies-'));
  try {
    await run('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', spec], {
      env: { ...process.env, ...QUIET_ENV },
    });
    const bin = await binOf(join(dir, 'node_modules', entry.package));
    const discovery = await discoverStdio({
      command: process.execPath,
      args: [bin, ...(entry.runArgs?.(dir) ?? entry.args ?? [])],
      env: { ...QUIET_ENV, ...entry.env?.(dir) },
      timeoutMs: 60_000,
    });
    const scaffold = buildScaffold(discovery);
    const text = scaffoldYaml(scaffold, {
      command: ['npx', '-y', spec, ...(entry.args ?? [])],
      package: spec,
      date,
      recommended: true,
    });
    await writeFile(join(OUT, entry.file), text);
    const counts = Object.fromEntries(CATEGORIES.map((c) => [c, scaffold.tools.filter((t) => t.category === c).length])) as Record<Category, number>;
    process.stderr.write(`${entry.file}: ${spec}, ${scaffold.tools.length} tool(s) (${categoryCounts(scaffold.tools)})\n`);
    return { file: entry.file, title: entry.title, spec, counts, total: scaffold.tools.length };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function binOf(packageDir: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as { bin?: string | Record<string, string> };
  const bin = typeof pkg.bin === 'string' ? pkg.bin : Object.values(pkg.bin ?? {})[0];
  if (!bin) throw new Error(`${packageDir} has no bin`);
  return join(packageDir, bin);
}

/** A row for a file this run did not regenerate, read back from its header. */
async function rowFromFile(entry: Entry): Promise<Row | undefined> {
  let text: string;
  try {
    text = await readFile(join(OUT, entry.file), 'utf8');
  } catch {
    return undefined;
  }
  const spec = /^# Server package: (\S+)$/m.exec(text)?.[1] ?? `${entry.package}@${entry.version}`;
  const tools = Object.keys((parse(text) as { tools?: Record<string, unknown> }).tools ?? {});
  const counts = Object.fromEntries(
    CATEGORIES.map((c) => [c, Number(new RegExp(`(\\d+) ${c}\\b`).exec(/^# \d+ tools?: (.*)$/m.exec(text)?.[1] ?? '')?.[1] ?? 0)]),
  ) as Record<Category, number>;
  return { file: entry.file, title: entry.title, spec, counts, total: tools.length };
}

function index(rows: Row[]): string {
  const head = `| Server | Package | Tools | ${CATEGORIES.map((c) => c[0]!.toUpperCase() + c.slice(1)).join(' | ')} | File |`;
  const rule = `|${' --- |'.repeat(3 + CATEGORIES.length + 1)}`;
  const lines = rows.map(
    (r) => `| ${r.title} | \`${r.spec}\` | ${r.total} | ${CATEGORIES.map((c) => r.counts[c]).join(' | ')} | [${r.file}](${r.file}) |`,
  );
  return `# Policy catalogue

Ready-made starting policies for MCP servers published on npm, one file per server. Each was
written by \`intercept scan --recommended\` against the pinned package version named in its
header: every tool the server lists, grouped by category, with the recommended rules enabled
(read 60 calls a minute, write 30, execute 10 with required arguments checked, financial 5
with an amount cap, destructive denied).

The categories are a first guess from tool names, descriptions and annotations. Read the file,
change what does not fit how you use the server, check it with \`intercept validate -c <file>\`,
then run the server behind it:

\`\`\`sh
intercept -c policies/github.yaml -- npx -y @modelcontextprotocol/server-github
\`\`\`

For a server that is not here, or another version, scan it yourself:
\`intercept scan --recommended -o policy.yaml -- <server command>\` (or \`--upstream <url>\` for a
remote one).

${head}
${rule}
${lines.join('\n')}

Regenerate every file with \`npm run policies\` (versions are pinned in
\`scripts/generate-policies.ts\`; it needs the npm registry, nothing else: servers get fake
credentials and only list their tools).
`;
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const chosen = only.length === 0 ? SERVERS : SERVERS.filter((e) => only.some((o) => e.file.includes(o)));
  if (chosen.length === 0) throw new Error(`no entry matches ${only.join(', ')}`);
  const date = new Date();
  const rows = new Map<string, Row>();
  const failures: string[] = [];
  // A few at a time: each is an npm install and a node process.
  const queue = [...chosen];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let entry = queue.shift(); entry; entry = queue.shift()) {
        try {
          rows.set(entry.file, await generate(entry, date));
        } catch (err) {
          failures.push(`${entry.file}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }),
  );
  for (const entry of SERVERS) {
    if (rows.has(entry.file)) continue;
    const row = await rowFromFile(entry);
    if (row) rows.set(entry.file, row);
  }
  await writeFile(join(OUT, 'README.md'), index(SERVERS.flatMap((e) => rows.get(e.file) ?? [])));
  const stray = (await readdir(OUT)).filter((f) => f.endsWith('.yaml') && !SERVERS.some((e) => e.file === f));
  if (stray.length > 0) process.stderr.write(`not in the table (delete them, or add them): ${stray.join(', ')}\n`);
  if (failures.length > 0) {
    process.stderr.write(`failed:\n  ${failures.join('\n  ')}\n`);
    process.exitCode = 1;
  }
}

// Run when executed, not when imported (the catalogue test reads SERVERS).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
