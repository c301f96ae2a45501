// The decision engine alone: decisions per second, and how long a large policy takes to load.
//   node --import tsx bench/engine.ts [--quick] [--json FILE]
// A decision here is what the gate does per tools/call once counters are at hand:
// requirements(call) then decide(...). Synthetic policies have N tools with R rules each, every
// rule one condition that passes (so every rule is walked), the conditions cycling through
// lte, in, contains and exists. "typical" is bench/policies/realistic.yaml with the proxy
// benchmark's four calls; its regex conditions stand for the regex operator (the synthetic
// policies carry none, so their figures stay comparable across runs).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { compile, type CompiledPolicy } from '../src/engine/compile.js';
import type { ToolCall, ToolSchemaInfo } from '../src/engine/types.js';
import type { Condition, Policy, Rule, ToolPolicy } from '../src/policy/model.js';
import { parsePolicy } from '../src/policy/load.js';
import { median } from './stats.js';
import { HERE, jsonFile, quick } from './cli.js';

/** Each figure is the median of this many timed runs. */
const RUNS = quick ? 3 : 7;
/** Target length of one timed run. */
const RUN_MS = quick ? 100 : 500;

const POS = { file: 'bench', line: 1, col: 1 };
const CONDITIONS: Omit<Condition, 'pos'>[] = [
  { path: 'args.amount', op: 'lte', value: 1_000_000 },
  { path: 'args.currency', op: 'in', value: ['usd', 'eur', 'gbp'] },
  { path: 'args.repo', op: 'contains', value: 'acme/' },
  { path: 'args.title', op: 'exists', value: true },
];
const ARGS = { amount: 1200, currency: 'eur', repo: 'acme/web', title: 'Bench' };

function syntheticPolicy(tools: number, rulesPerTool: number): Policy {
  const list: ToolPolicy[] = [];
  for (let t = 0; t < tools; t++) {
    const rules: Rule[] = [];
    for (let r = 0; r < rulesPerTool; r++) {
      rules.push({ name: `rule ${r}`, action: 'evaluate', conditions: [{ ...CONDITIONS[r % CONDITIONS.length]!, pos: POS }], pos: POS });
    }
    list.push({ name: `tool_${t}`, rules, pos: POS });
  }
  return { source: 'bench', defaultAction: 'allow', hide: [], tools: list };
}

/** The same policy as YAML, for the load benchmark. */
function syntheticYaml(tools: number, rulesPerTool: number): string {
  const out = ['version: "1"', 'tools:'];
  for (let t = 0; t < tools; t++) {
    out.push(`  tool_${t}:`, '    rules:');
    for (let r = 0; r < rulesPerTool; r++) {
      const c = CONDITIONS[r % CONDITIONS.length]!;
      out.push(`      - name: "rule ${r}"`, '        conditions:', `          - path: ${c.path}`, `            op: ${c.op}`, `            value: ${JSON.stringify(c.value)}`);
    }
  }
  return out.join('\n') + '\n';
}

/** Decisions per second over `calls` in turn; the median of RUNS timed runs. */
function decisionsPerSecond(policy: CompiledPolicy, calls: ToolCall[], schema?: ToolSchemaInfo): number {
  const now = Date.now();
  let sink = 0;
  const batch = (n: number) => {
    for (let i = 0; i < n; i++) {
      const call = calls[i % calls.length]!;
      const needs = policy.requirements(call);
      const decision = policy.decide({ call, now, counters: needs.reads.length > 0 ? new Map() : undefined, schema: needs.needsSchema ? schema : undefined });
      if (decision.allowed) sink++;
    }
  };
  // Calibrate the batch to about RUN_MS, after a warm-up that lets the JIT settle.
  let n = 1_000;
  for (;;) {
    const t0 = performance.now();
    batch(n);
    const ms = performance.now() - t0;
    if (ms > RUN_MS / 4) {
      n = Math.max(1, Math.round((n * RUN_MS) / ms));
      break;
    }
    n *= 4;
  }
  const rates: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    batch(n);
    rates.push(n / ((performance.now() - t0) / 1000));
  }
  if (sink === 0) throw new Error('no call was allowed: the benchmark measured denials');
  return median(rates);
}

function timeMs(f: () => void): number {
  const samples: number[] = [];
  for (let r = 0; r < (quick ? 1 : 3); r++) {
    const t0 = performance.now();
    f();
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

export interface EngineResults {
  decisions: { tools: number; rulesPerTool: number; decisionsPerSec: number }[];
  typical: { policy: string; decisionsPerSec: number };
  load: { tools: number; rulesPerTool: number; bytes: number; parseMs: number; compileMs: number; totalMs: number };
}

export function runEngineBench(): EngineResults {
  const decisions: EngineResults['decisions'] = [];
  for (const tools of [10, 1_000, 10_000]) {
    for (const rulesPerTool of [1, 10, 100]) {
      const compiled = compile(syntheticPolicy(tools, rulesPerTool));
      // Spread the calls over the tools, so a large map is really looked up in.
      const calls: ToolCall[] = Array.from({ length: 64 }, (_, i) => ({ name: `tool_${Math.floor((i * tools) / 64)}`, args: { ...ARGS } }));
      decisions.push({ tools, rulesPerTool, decisionsPerSec: decisionsPerSecond(compiled, calls) });
    }
  }

  const realistic = join(HERE, 'policies', 'realistic.yaml');
  const loaded = parsePolicy(readFileSync(realistic, 'utf8'), realistic);
  if (!loaded.ok) throw new Error(`${realistic} does not load`);
  const typicalCalls: ToolCall[] = [
    { name: 'create_issue', args: { repo: 'acme/web', title: 'Flaky test in checkout', body: 'Seen three times this week.' } },
    { name: 'create_pull_request', args: { repo: 'acme/web', title: 'Fix checkout', head: 'fix/checkout', base: 'main' } },
    { name: 'search_code', args: { query: 'useCheckout repo:acme/web', per_page: 20 } },
    { name: 'get_file_contents', args: { repo: 'acme/web', path: 'src/checkout.ts', ref: 'main' } },
  ];
  // create_pull_request validates required arguments: give decide a schema, as the gate would.
  const schema: ToolSchemaInfo = { required: ['repo', 'title'] };
  const typical = { policy: 'bench/policies/realistic.yaml', decisionsPerSec: decisionsPerSecond(compile(loaded.policy), typicalCalls, schema) };

  const LOAD_TOOLS = 10_000;
  const LOAD_RULES = 3;
  const yaml = syntheticYaml(LOAD_TOOLS, LOAD_RULES);
  let parsed: Policy | undefined;
  const parseMs = timeMs(() => {
    const result = parsePolicy(yaml, 'bench.yaml');
    if (!result.ok) throw new Error(`the synthetic policy does not load: ${result.issues[0]?.message}`);
    parsed = result.policy;
  });
  const compileMs = timeMs(() => compile(parsed!));
  const load = { tools: LOAD_TOOLS, rulesPerTool: LOAD_RULES, bytes: Buffer.byteLength(yaml), parseMs, compileMs, totalMs: parseMs + compileMs };
  return { decisions, typical, load };
}

export function engineTable(r: EngineResults): string {
  const ruleCounts = [...new Set(r.decisions.map((d) => d.rulesPerTool))];
  const lines = [
    'decisions per second (requirements + decide; every rule passes, so every rule is walked)',
    `tools    ${ruleCounts.map((n) => `${n} rule${n === 1 ? '' : 's'}/tool`.padStart(16)).join('')}`,
  ];
  for (const tools of [...new Set(r.decisions.map((d) => d.tools))]) {
    const row = ruleCounts.map((n) => Math.round(r.decisions.find((d) => d.tools === tools && d.rulesPerTool === n)!.decisionsPerSec).toLocaleString('en-US').padStart(16));
    lines.push(`${String(tools).padEnd(7)}  ${row.join('')}`);
  }
  lines.push(`typical (${r.typical.policy}, 4 calls in turn): ${Math.round(r.typical.decisionsPerSec).toLocaleString('en-US')} decisions/s`);
  lines.push(
    `policy load, ${r.load.tools.toLocaleString('en-US')} tools × ${r.load.rulesPerTool} rules (${(r.load.bytes / 1024 / 1024).toFixed(1)} MiB of YAML): ` +
      `parse ${r.load.parseMs.toFixed(0)} ms + compile ${r.load.compileMs.toFixed(0)} ms = ${r.load.totalMs.toFixed(0)} ms`,
  );
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const results = runEngineBench();
  process.stdout.write(engineTable(results) + '\n');
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ runs: RUNS, runMs: RUN_MS, ...results }, null, 2) + '\n');
}
