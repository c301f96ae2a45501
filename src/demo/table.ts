// Renders the demo's calls as a plain-text table. Pure functions over strings: the agent decides
// what happened, this decides how it looks.

export type Verdict = 'ALLOWED' | 'DENIED' | 'ERROR';

/** One tool call as the agent observed it. */
export interface CallRow {
  tool: string;
  verdict: Verdict;
  /** The denial message, a one-line summary of the server's result, or the protocol error. */
  reason: string;
}

/** One printed row: a single call, or a run of similar consecutive calls. */
export interface TableRow {
  first: number; // 1-based call numbers
  last: number;
  tool: string;
  verdict: Verdict;
  reason: string;
}

/** Whether to colour output: only for a terminal, and never when NO_COLOR is set (no-color.org). */
export function wantsColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env.NO_COLOR ?? '') === '';
}

// Two calls belong in one row when they differ only in numbers (CH0001 vs CH0002).
const shape = (row: CallRow): string => `${row.tool}\u0000${row.verdict}\u0000${row.reason.replace(/\d+/g, '#')}`;

/** Collapses runs of similar consecutive calls into one row each. */
export function collapseRows(calls: readonly CallRow[]): TableRow[] {
  const rows: TableRow[] = [];
  let run: CallRow[] = [];
  const flush = (end: number): void => {
    const head = run[0];
    const tail = run[run.length - 1];
    if (head === undefined || tail === undefined) return;
    rows.push({
      first: end - run.length + 1,
      last: end,
      tool: head.tool,
      verdict: head.verdict,
      reason: run.length === 1 ? head.reason : joinRange(head.reason, tail.reason),
    });
  };
  calls.forEach((call, i) => {
    const head = run[0];
    if (head !== undefined && shape(head) !== shape(call)) {
      flush(i);
      run = [];
    }
    run.push(call);
  });
  flush(calls.length);
  return rows;
}

/**
 * Describes a run by its ends, sharing the words they have in common:
 * "Created conversation CH0001" + "Created conversation CH0030" -> "Created conversation CH0001 … CH0030".
 */
export function joinRange(first: string, last: string): string {
  if (first === last) return first;
  const a = first.split(' ');
  const b = last.split(' ');
  let shared = 0;
  while (shared < a.length - 1 && shared < b.length - 1 && a[shared] === b[shared]) shared++;
  return `${first} … ${b.slice(shared).join(' ')}`;
}

const ANSI = { green: 32, red: 31, yellow: 33, bold: 1, dim: 2 } as const;
type Style = keyof typeof ANSI;

/** Returns a painter: identity without colour, SGR codes with it. */
export function painter(colour: boolean): (style: Style, s: string) => string {
  return colour ? (style, s) => `\u001b[${ANSI[style]}m${s}\u001b[0m` : (_style, s) => s;
}

const verdictStyle: Record<Verdict, Style> = { ALLOWED: 'green', DENIED: 'red', ERROR: 'yellow' };

/** Formats rows as aligned text lines (no trailing newline on each). */
export function renderTable(rows: readonly TableRow[], colour: boolean): string[] {
  const paint = painter(colour);
  const cells = rows.map((r) => ({
    n: r.first === r.last ? String(r.first) : `${r.first}–${r.last}`,
    tool: r.last > r.first ? `${r.tool} ×${r.last - r.first + 1}` : r.tool,
    verdict: r.verdict,
    reason: r.reason,
  }));
  const width = (key: 'n' | 'tool' | 'verdict', title: string): number =>
    Math.max(title.length, ...cells.map((c) => c[key].length));
  const wN = width('n', '#');
  const wTool = width('tool', 'TOOL');
  const wVerdict = width('verdict', 'DECISION');
  // Pad before painting so escape codes do not upset the alignment.
  const line = (n: string, tool: string, verdict: string, reason: string, style?: Style): string =>
    `  ${n.padEnd(wN)}  ${tool.padEnd(wTool)}  ${style === undefined ? verdict : paint(style, verdict)}${' '.repeat(wVerdict - verdict.length)}  ${reason}`.trimEnd();
  return [
    paint('bold', line('#', 'TOOL', 'DECISION', 'REASON')),
    ...cells.map((c) => line(c.n, c.tool, c.verdict, c.reason, verdictStyle[c.verdict])),
  ];
}

/** First line of a server's text result, shortened to fit a table cell. */
export function summariseResult(text: string, max = 160): string {
  const firstLine = text.split('\n', 1)[0]?.trim() ?? '';
  return firstLine.length > max ? `${firstLine.slice(0, max - 1)}…` : firstLine;
}
