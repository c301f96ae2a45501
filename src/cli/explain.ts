// `intercept explain`: the decision for one call, rule by rule, with no server. Counters are
// assumed zero unless given with --counter; validate rules need --input-schema; the caller is
// anonymous unless given with --identity. A call that needs a human's approval is shown as held
// (nobody is asked) and exits 0, as an allowed one.
import { compile } from '../engine/compile.js';
import { decisionToJson, formatDecision } from '../engine/explain.js';
import { isObject } from '../jsonrpc/message.js';
import { decideOffline, OFFLINE_SESSION, perCaller, presetCounters, ToolFacts } from '../offline/decide.js';
import { formatIssue } from '../policy/format.js';
import { loadPolicyFile } from '../policy/load.js';
import { parseToolCall } from '../proxy/call.js';
import { MemoryCounterStore } from '../state/memory.js';
import { parseIdentityFlags } from './identity-flags.js';

export interface ExplainFlags {
  config: string;
  tool: string;
  args: string;
  inputSchema?: string;
  counter: string[];
  /** --identity KEY=VALUE: who makes the call. */
  identity?: string[];
  json?: boolean;
}

function usage(message: string): number {
  process.stderr.write(`intercept explain: ${message}\n`);
  return 2;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

export async function runExplain(flags: ExplainFlags): Promise<number> {
  const loaded = await loadPolicyFile(flags.config);
  if (!loaded.ok) {
    for (const issue of loaded.issues) process.stderr.write(formatIssue(issue) + '\n');
    return usage(`the policy file has ${loaded.issues.length} error(s)`);
  }
  let args: unknown;
  let inputSchema: unknown;
  try {
    args = parseJson(flags.args, '--args');
    if (flags.inputSchema !== undefined) inputSchema = parseJson(flags.inputSchema, '--input-schema');
  } catch (err) {
    return usage((err as Error).message);
  }
  const parsed = parseToolCall({ name: flags.tool, arguments: args });
  if (!parsed.ok) return usage(parsed.message);
  if (inputSchema !== undefined && !isObject(inputSchema)) return usage('--input-schema must be a JSON object');

  const assumed = new Map<string, number>();
  for (const entry of flags.counter) {
    const eq = entry.lastIndexOf('=');
    const value = Number(entry.slice(eq + 1));
    if (eq <= 0 || !Number.isFinite(value) || value < 0) return usage(`--counter must look like <tool>.<counter>=<number>, got ${JSON.stringify(entry)}`);
    assumed.set(entry.slice(0, eq), value);
  }

  const given = flags.identity ?? [];
  const identity = given.length === 0 ? undefined : parseIdentityFlags(given);
  if (typeof identity === 'string') return usage(identity);

  const policy = compile(loaded.policy);
  for (const id of assumed.keys()) {
    if (perCaller(policy, id) && identity?.sub === undefined) return usage(`--counter ${id} is kept per caller (scope: identity): say whose it is with --identity sub=…`);
  }
  const call = parsed.call;
  // Charges are reserved against a scratch store holding the assumed values, exactly as the
  // proxy would against the real one (for a held call, once it is approved).
  const counters = { store: new MemoryCounterStore(), sessionId: OFFLINE_SESSION };
  const now = Date.now();
  await presetCounters(policy, assumed, counters, now, identity);
  const facts = new ToolFacts(call.name, inputSchema as Record<string, unknown> | undefined);
  const { decision } = await decideOffline(policy, call, facts, counters, now, identity);

  if (flags.json) process.stdout.write(JSON.stringify(decisionToJson(call, decision, identity), null, 2) + '\n');
  else process.stdout.write(formatDecision(call, decision, identity) + '\n');
  return decision.allowed ? 0 : 1;
}
