// The scripted agent behind `intercept demo`: it starts the proxy in front of the bundled demo
// server, makes a fixed series of calls through it with the official MCP client, and prints what
// happened to each as a table. This output is for people, so it goes to stdout.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { APPROVALS_FILE } from '../approval/open.js';
import { silentLogger } from '../log.js';
import { policyNamespace } from '../state/open.js';
import { DEMO_TOOL_NAMES } from './server.js';
import { collapseRows, painter, renderTable, summariseResult, wantsColour, type CallRow } from './table.js';

export interface DemoOptions {
  /** Policy file to enforce; defaults to the bundled demo/policy.yaml. */
  policy?: string;
  /** Show the proxy's log (stderr) instead of hiding it. */
  verbose?: boolean;
  /** Talk to the demo server without the proxy (for comparison and development). */
  direct?: boolean;
  /** Where the table goes; defaults to stdout. */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** What every denial starts with, as any agent sees it on the wire. */
const DENIAL_PREFIX = '[INTERCEPT POLICY DENIED] ';

// src/demo/ and dist/demo/ are both two levels below the package root.
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_DEMO_POLICY = join(packageRoot, 'demo', 'policy.yaml');

interface ScriptedCall {
  name: string;
  arguments: Record<string, unknown>;
}

/** Classifies a tools/call result the way an agent would see it. */
export function classifyResult(tool: string, result: unknown): CallRow {
  const r = (result ?? {}) as { isError?: unknown; content?: unknown };
  const blocks = Array.isArray(r.content) ? (r.content as Array<{ type?: unknown; text?: unknown }>) : [];
  const firstText = blocks.find((b) => b.type === 'text' && typeof b.text === 'string')?.text as string | undefined;
  if (r.isError === true && firstText?.startsWith(DENIAL_PREFIX)) {
    return { tool, verdict: 'DENIED', reason: firstText.slice(DENIAL_PREFIX.length) };
  }
  const summary = firstText === undefined ? '(no text result)' : summariseResult(firstText);
  // The policy let it through; the server itself refused.
  return { tool, verdict: 'ALLOWED', reason: r.isError === true ? `server error: ${summary}` : summary };
}

/** Runs the demo and returns the process exit code. */
export async function runDemo(opts: DemoOptions = {}): Promise<number> {
  const out = opts.out ?? process.stdout;
  const paint = painter(wantsColour(out));
  const print = (line = ''): void => void out.write(`${line}\n`);
  const fail = (message: string): number => {
    process.stderr.write(`intercept demo: ${message}\n`);
    return 1;
  };

  const policy = resolve(opts.policy ?? DEFAULT_DEMO_POLICY);
  const server = join(packageRoot, 'dist', 'demo', 'server.js');
  const proxy = join(packageRoot, 'bin', 'intercept.js');
  if (!opts.direct && !existsSync(policy)) return fail(`policy file not found: ${policy}`);
  for (const built of opts.direct ? [server] : [server, join(packageRoot, 'dist', 'cli', 'main.js')]) {
    if (!existsSync(built)) return fail(`${built} is missing; run \`npm run build\` first`);
  }

  // Counters go to a throwaway directory, so each run starts fresh and leaves nothing behind.
  // The audit trail goes to one that is kept, so that it can be looked at afterwards.
  const stateDir = opts.direct ? undefined : await mkdtemp(join(tmpdir(), 'intercept-demo-'));
  const eventsDir = opts.direct ? undefined : await mkdtemp(join(tmpdir(), 'intercept-demo-events-'));
  let keepTrail = false;
  const args = opts.direct
    ? [server]
    : [proxy, '-c', policy, '--state-dir', stateDir!, '--events-dir', eventsDir!, '--metrics-port', '0', '--', process.execPath, server];
  const transport = new StdioClientTransport({ command: process.execPath, args, env: inheritedEnv(), stderr: 'pipe' });
  // Keep the log, shown with --verbose, so a failure to start can still be explained and the
  // metrics endpoint's address is known.
  let log = '';
  let metricsUrl: string | undefined;
  transport.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    if (opts.verbose) process.stderr.write(text);
    metricsUrl ??= /\bmetrics url=(\S+)/.exec(log + text)?.[1];
    log = (log + text).slice(-4000);
  });

  const client = new Client({ name: 'intercept-demo-agent', version: '1.0.0' });
  try {
    try {
      await client.connect(transport);
    } catch (err) {
      const what = opts.direct ? 'the demo server' : 'the proxy';
      // Its own log says why better than the client's "connection closed" does.
      return fail(log ? `${what} did not start:\n${log.trimEnd()}` : `could not start ${what}: ${message(err)}`);
    }

    const route = opts.direct ? 'directly, without the proxy' : 'through the Intercept proxy';
    print(paint('bold', `Intercept demo: a scripted agent calls a Twilio-like MCP server ${route}.`));
    print(`  policy  ${opts.direct ? '(none)' : displayPath(policy)}`);
    print(`  server  twilio-demo, simulated in memory (nothing leaves this machine)`);
    print();

    const { tools } = await client.listTools();
    const visible = new Set(tools.map((t) => t.name));
    const hidden = DEMO_TOOL_NAMES.filter((name) => !visible.has(name));
    print(
      `tools/list: ${plural(visible.size, 'tool')} visible, ${hidden.length === 0 ? 'none' : hidden.join(', ')} hidden${opts.direct ? '' : ' by policy'}`,
    );
    print();

    const rows: CallRow[] = [];
    const call = async ({ name, arguments: args }: ScriptedCall): Promise<CallRow> => {
      let row: CallRow;
      try {
        row = classifyResult(name, await client.callTool({ name, arguments: args }));
      } catch (err) {
        row = { tool: name, verdict: 'ERROR', reason: message(err) };
      }
      rows.push(row);
      return row;
    };

    await call({ name: 'list_conversations', arguments: {} });
    let firstConversation: string | undefined;
    for (let i = 1; i <= 31; i++) {
      const row = await call({ name: 'create_conversation', arguments: { friendly_name: `Support ticket ${i}` } });
      firstConversation ??= /\bCH\d+\b/.exec(row.reason)?.[0];
    }
    const conversation = firstConversation ?? 'CH0001';
    await call({
      name: 'send_conversation_message',
      arguments: { conversation_sid: conversation, body: 'Hi! Your order has shipped.', author: 'support-bot' },
    });
    const execution = { flow_sid: 'FW0001', to: '+15558675310', from: '+15017122661' };
    await call({ name: 'create_execution', arguments: { flow_sid: execution.flow_sid, from: execution.from } });
    await call({ name: 'create_execution', arguments: { ...execution, parameters: { appointment: '2025-06-03T09:30' } } });
    // A number outside the policy's allow-list: the call is held until the scripted operator
    // (standing in for `intercept approvals approve <id>` in a second terminal) approves it.
    const unknown = { ...execution, to: '+15550100999' };
    if (stateDir === undefined) await call({ name: 'create_execution', arguments: unknown });
    else {
      const operator = approveWhenAsked(policy, stateDir, eventsDir!, (line) => print(paint('dim', line)));
      const row = await call({ name: 'create_execution', arguments: unknown });
      const approved = await operator.stop();
      if (approved !== undefined) row.reason = `held for approval, approved by the operator (${approved}): ${row.reason}`;
    }
    await call({ name: 'delete_conversation', arguments: { conversation_sid: conversation } });
    await call({ name: 'delete_flow', arguments: { flow_sid: 'FW0001' } });

    for (const line of renderTable(collapseRows(rows), wantsColour(out))) print(line);
    print();

    const count = (verdict: CallRow['verdict']): number => rows.filter((r) => r.verdict === verdict).length;
    const errors = count('ERROR');
    print(
      paint(
        'bold',
        `${plural(rows.length, 'call')}: ${count('ALLOWED')} allowed, ${count('DENIED')} denied` +
          (errors > 0 ? `, ${errors} failed` : '') +
          '.',
      ),
    );
    if (eventsDir !== undefined) {
      const scraped = metricsUrl === undefined ? undefined : await scrapeCalls(metricsUrl);
      await client.close();
      const recorded = await recordedCalls(eventsDir);
      print();
      print(`Audit trail: ${eventsDir} (${plural(recorded.calls, 'call')}, ${recorded.denied} denied)`);
      if (scraped !== undefined) print(`Metrics:     ${metricsUrl} counted ${plural(scraped.calls, 'call')}, ${scraped.denied} denied`);
      print('See them again, or check that no line of the trail was edited:');
      for (const command of ['status', 'logs --denied', 'audit verify']) print(`  ${interceptCommand(`${command} --events-dir ${eventsDir}`)}`);
      keepTrail = true;
    }
    print();
    print(
      `Try your own policy: copy ${displayPath(DEFAULT_DEMO_POLICY)} to my-policy.yaml, edit it, ` +
        `then run ${paint('bold', demoCommand('--policy my-policy.yaml'))}`,
    );
    return 0;
  } catch (err) {
    return fail(`${message(err)}${log ? `\n${log.trimEnd()}` : ''}`);
  } finally {
    await client.close().catch(() => undefined);
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true }).catch(() => undefined);
    // A run that failed leaves no trail to look at.
    if (eventsDir !== undefined && !keepTrail) await rm(eventsDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** The demo's operator: watches the proxy's approval store and approves the first request it
 * sees, as a person would with `intercept approvals approve <id>`, and as that command does,
 * records the decision in the audit trail. `stop` returns its id. */
function approveWhenAsked(policy: string, stateDir: string, eventsDir: string, say: (line: string) => void): { stop(): Promise<string | undefined> } {
  let stopped = false;
  let approved: string | undefined;
  const watching = (async () => {
    const { SqliteApprovalStore } = await import('../approval/sqlite.js');
    const { observedApprovals } = await import('../audit/observed-approvals.js');
    const { EventLog, instanceName } = await import('../audit/writer.js');
    const trail = await EventLog.open({ dir: eventsDir, instance: instanceName('demo-operator'), retentionDays: 0, log: silentLogger });
    const sqlite = SqliteApprovalStore.open(join(stateDir, APPROVALS_FILE), { prefix: policyNamespace(policy) });
    const store = observedApprovals(sqlite, trail);
    try {
      while (!stopped && approved === undefined) {
        const [request] = await store.list(Date.now(), { status: 'pending' });
        if (request !== undefined) {
          say(`  operator: ${request.tool} to ${String(request.arguments.to)} is held (${request.id}); approving it`);
          const out = await store.decide(request.id, { approve: true, by: 'demo-operator', via: 'cli' }, Date.now());
          if (out.ok) approved = request.id;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await store.close();
      await trail.close();
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await watching;
      return approved;
    },
  };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A path relative to the working directory when it lies inside it, else absolute. */
function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/** Calls and denials in intercept_tool_calls_total; undefined when the scrape fails. */
async function scrapeCalls(url: string): Promise<{ calls: number; denied: number } | undefined> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).text();
    let calls = 0;
    let denied = 0;
    for (const m of text.matchAll(/^intercept_tool_calls_total\{([^}]*)\} (\S+)$/gm)) {
      const n = Number(m[2]);
      calls += n;
      if (/\bdecision="deny"/.test(m[1]!)) denied += n;
    }
    return { calls, denied };
  } catch {
    return undefined;
  }
}

/** The tool_call events of the trail, and how many of them were denials. */
async function recordedCalls(dir: string): Promise<{ calls: number; denied: number }> {
  const { readTrail } = await import('../audit/reader.js');
  const calls = (await readTrail(dir)).records.filter((r) => r.type === 'tool_call');
  return { calls: calls.length, denied: calls.filter((r) => r.type === 'tool_call' && r.decision === 'deny').length };
}

/** How the user can run another intercept command from where they are. */
function interceptCommand(args: string): string {
  return resolve(process.cwd()) === resolve(packageRoot) ? `node bin/intercept.js ${args}` : `intercept ${args}`;
}

/** How the user can run the demo again from where they are. */
function demoCommand(args: string): string {
  return resolve(process.cwd()) === resolve(packageRoot) ? `npm run demo -- ${args}` : `intercept demo ${args}`;
}

// The SDK passes only a few variables to the child by default; the proxy should see the user's
// whole environment (HOME, log settings, NO_COLOR), as it would when started by any MCP client.
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  return env;
}
