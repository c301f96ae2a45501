// `intercept replay -c new-policy.yaml [--events DIR] [--since 7d] [--input-schemas FILE] [--json]`:
// what a new policy would have changed, decided again over the calls the audit trail recorded
// (audit/replay.ts). Exit 0 with a report; 2 for a usage error or a policy that does not load.
import { readTrail } from '../audit/reader.js';
import { replay, type ReplayReport, type UndecidableReason, type Verdict } from '../audit/replay.js';
import { DEFAULT_EVENTS_DIR } from '../audit/writer.js';
import { compile, type CompiledPolicy } from '../engine/compile.js';
import { sinceSeconds } from './since.js';
import { formatIssue } from '../policy/format.js';
import { loadPolicyFile } from '../policy/load.js';
import { readInputSchemas } from './input-schemas.js';
import { localTime } from './logs.js';
import { cut, paints, table } from './table.js';

export interface ReplayFlags {
  config: string;
  events?: string;
  eventsDir?: string;
  since?: string;
  inputSchemas?: string;
  json?: boolean;
  color?: boolean;
}

const DEFAULT_SINCE = '7d';
/** Rows per table in the text report (--json lists up to the report's own limit). */
const TEXT_ROWS = 50;

export async function runReplay(flags: ReplayFlags): Promise<number> {
  const sinceText = flags.since ?? DEFAULT_SINCE;
  const seconds = sinceSeconds(sinceText);
  if (typeof seconds === 'string') return usage(seconds);
  if (flags.events !== undefined && flags.eventsDir !== undefined && flags.events !== flags.eventsDir) {
    return usage('--events and --events-dir name the same directory: give one');
  }
  const policy = await loadPolicy(flags);
  if (typeof policy === 'number') return policy;

  const dir = flags.events ?? flags.eventsDir ?? DEFAULT_EVENTS_DIR;
  const now = Date.now();
  let read;
  try {
    read = await readTrail(dir, { since: now - seconds * 1000 });
  } catch (err) {
    process.stderr.write(`intercept replay: cannot read the events directory ${JSON.stringify(dir)}: ${(err as Error).message}\n`);
    return 1;
  }
  if (read.problems.length > 0) {
    process.stderr.write(`intercept replay: warning: skipped ${read.problems.length} unreadable line(s) of the trail, the first ${read.problems[0]} (intercept audit verify checks the trail)\n`);
  }

  let tools;
  if (flags.inputSchemas !== undefined) {
    const called = new Set<string>();
    for (const r of read.records) if (r.type === 'tool_call' && typeof r.tool === 'string') called.add(r.tool);
    tools = await readInputSchemas(flags.inputSchemas, called);
    if (typeof tools === 'string') return usage(`--input-schemas: ${tools}`);
  }

  const report = await replay(read.records, policy, { now, tools });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ ...report, eventsDir: dir }, null, 2)}\n`);
    return 0;
  }
  const color = flags.color ?? (process.stdout.isTTY === true && !process.env.NO_COLOR);
  process.stdout.write(`${render(report, { color, since: sinceText, eventsDir: dir, schemas: flags.inputSchemas !== undefined })}\n`);
  return 0;
}

/** The policy compiled, or the exit status after saying why it is not. */
async function loadPolicy(flags: ReplayFlags): Promise<CompiledPolicy | number> {
  const loaded = await loadPolicyFile(flags.config);
  if (!loaded.ok) {
    if (flags.json) process.stdout.write(`${JSON.stringify({ valid: false, errors: loaded.issues }, null, 2)}\n`);
    else for (const issue of loaded.issues) process.stderr.write(`${formatIssue(issue)}\n`);
    return usage(`the policy file has ${loaded.issues.length} error(s)`);
  }
  for (const warning of loaded.warnings ?? []) process.stderr.write(`warning: ${formatIssue(warning)}\n`);
  try {
    return compile(loaded.policy);
  } catch (err) {
    return usage(`the policy does not compile: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The text report

const REASONS: Record<UndecidableReason, string> = {
  args_not_logged: 'arguments not logged',
  args_redacted: 'arguments redacted in the trail',
  schema_unknown: "the tool's inputSchema not given",
  class_unknown: "the tool's class not known",
  identity_not_recorded: "the caller's scopes or claims (the trail keeps only the subject)",
};

const WAS: Record<Verdict, string> = { allow: 'allowed', deny: 'denied', hold: 'held' };

/** Text from the trail (tool names, sessions, messages come from agents), one line, no
 * control characters to reach the terminal. */
function shown(text: string | undefined, max = 40): string {
  return cut((text ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?'), max);
}

const when = (iso: string) => localTime(iso).slice(0, 19);
const count = (n: number) => (n === 0 ? '' : String(n));

function render(report: ReplayReport, opts: { color: boolean; since: string; eventsDir: string; schemas: boolean }): string {
  const p = paints(opts.color);
  const out: string[] = [];
  const section = (title: string) => out.push('', p.bold(title));
  const limited = <T>(rows: T[]): T[] => rows.slice(0, TEXT_ROWS);
  const moreNote = (rows: number, omitted: number) => {
    const more = Math.max(0, rows - TEXT_ROWS) + omitted;
    if (more > 0) out.push(`  ${p.dim(`… and ${more} more (--json lists them)`)}`);
  };

  if (report.calls === 0) {
    out.push(`no tool calls in ${opts.eventsDir} in the last ${opts.since} to replay under ${report.policy}`);
    return out.join('\n');
  }
  const t = report.totals;
  out.push(`Replay of ${report.calls} call(s) recorded in ${opts.eventsDir} from ${when(report.from!)} to ${when(report.until!)} (the last ${opts.since}), under ${report.policy}`);
  out.push(
    `  unchanged ${t.unchanged}   newly denied ${t.newlyDenied > 0 ? p.red(String(t.newlyDenied)) : '0'}   newly allowed ${t.newlyAllowed > 0 ? p.green(String(t.newlyAllowed)) : '0'}   newly held ${t.newlyHeld > 0 ? p.yellow(String(t.newlyHeld)) : '0'}   undecidable ${t.undecidable > 0 ? p.yellow(String(t.undecidable)) : '0'}`,
  );
  out.push(`  decided: ${report.decided.withArgs} with their logged arguments, ${report.decided.byTool} by tool only (no arguments logged, and no rule that decided them reads any)`);
  const why = Object.entries(report.undecidableBy).filter(([, n]) => n > 0);
  if (why.length > 0) out.push(`  undecidable: ${why.map(([r, n]) => `${REASONS[r as UndecidableReason]} ${n}`).join(', ')}`);
  if (report.withdrawn > 0 || report.malformed > 0) {
    out.push(`  not replayed: ${report.withdrawn} withdrawn by the client before a decision, ${report.malformed} malformed record(s)`);
  }
  if (report.omitted.changes > 0) out.push(`  ${p.dim(`${report.omitted.changes} smaller group(s) of changes are left out of the report`)}`);
  out.push(`  ${p.dim('counters start from zero at the first call replayed; held calls count as if approved at once')}`);

  const changeTable = (change: string, title: string, colour: (s: string) => string) => {
    const rows = report.changes.filter((c) => c.change === change);
    section(title);
    if (rows.length === 0) return out.push(`  ${p.dim('none')}`);
    out.push(
      ...table(
        ['TOOL', 'WAS', 'KIND', 'RULE', 'CALLS', 'BY TOOL', 'FIRST', 'LAST', 'SESSION', 'MESSAGE'],
        limited(rows).map((c) => [shown(c.tool), WAS[c.was], shown(c.kind), shown(c.rule), String(c.count), count(c.byTool), when(c.first), when(c.last), shown(c.session, 24), shown(c.message, 72)]),
        (_row, col, text) => (col === 2 || col === 4 ? colour(text) : text),
      ),
    );
    moreNote(rows.length, 0);
  };
  changeTable('newly_denied', 'Newly denied (allowed or held before, denied now)', p.red);
  changeTable('newly_allowed', 'Newly allowed (denied or held before; KIND and RULE are the old denial\'s)', p.green);
  changeTable('newly_held', 'Newly held for a human (require_approval)', p.yellow);

  section('Undecidable (not guessed; not counted against any limit)');
  if (report.undecidable.length === 0) out.push(`  ${p.dim('none')}`);
  else {
    out.push(
      ...table(
        ['TOOL', 'WHY', 'RULE', 'CALLS', 'FIRST', 'LAST', 'SESSION'],
        limited(report.undecidable).map((u) => [shown(u.tool), REASONS[u.reason], shown(u.rule), String(u.count), when(u.first), when(u.last), shown(u.session, 24)]),
        (_row, col, text) => (col === 1 ? p.yellow(text) : text),
      ),
    );
    moreNote(report.undecidable.length, report.omitted.undecidable);
    const hints: string[] = [];
    if (report.undecidableBy.args_not_logged > 0) hints.push('run the proxy with --log-args to keep arguments');
    if (report.undecidableBy.schema_unknown > 0 || report.undecidableBy.class_unknown > 0) {
      hints.push(opts.schemas ? 'the --input-schemas file lacks some tools (or, for validate: {schema: true}, their full inputSchema)' : 'give --input-schemas (e.g. saved from intercept scan --format json)');
    }
    if (hints.length > 0) out.push(`  ${p.dim(hints.join('; '))}`);
  }

  const tallyHeader = ['UNCHANGED', 'NEWLY DENIED', 'NEWLY ALLOWED', 'NEWLY HELD', 'UNDECIDABLE'];
  /** `unchanged`: the column of UNCHANGED; the changes follow it. */
  const tallyPaint = (unchanged: number) => (_row: string[], col: number, text: string) =>
    text.trim() === '' ? text : col === unchanged + 1 ? p.red(text) : col === unchanged + 2 ? p.green(text) : col > unchanged + 2 ? p.yellow(text) : text;
  section('By tool');
  out.push(
    ...table(
      ['TOOL', 'CALLS', ...tallyHeader],
      limited(report.tools).map((x) => [shown(x.tool), String(x.calls), String(x.unchanged), count(x.newlyDenied), count(x.newlyAllowed), count(x.newlyHeld), count(x.undecidable)]),
      tallyPaint(2),
    ),
  );
  moreNote(report.tools.length, report.omitted.tools);
  section('By rule (of the new policy; of the old one for newly allowed calls)');
  if (report.rules.length === 0) out.push(`  ${p.dim('no rule denied, held or stopped at any call')}`);
  else {
    out.push(
      ...table(
        ['RULE', ...tallyHeader],
        limited(report.rules).map((x) => [shown(x.rule), String(x.unchanged), count(x.newlyDenied), count(x.newlyAllowed), count(x.newlyHeld), count(x.undecidable)]),
        tallyPaint(1),
      ),
    );
    moreNote(report.rules.length, report.omitted.rules);
  }
  return out.join('\n');
}

function usage(message: string): number {
  process.stderr.write(`intercept replay: ${message}\n`);
  return 2;
}
