// Text reports on a terminal: aligned tables, colour only when asked for, cells cut to a width.
// Shared by the commands that print tables (status, replay).

export interface Paint {
  bold(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  green(s: string): string;
  dim(s: string): string;
}

/** SGR colours when `on`, the text unchanged otherwise. */
export function paints(on: boolean): Paint {
  const sgr = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { bold: sgr('1'), red: sgr('31'), yellow: sgr('33'), green: sgr('32'), dim: sgr('2') };
}

/** Rows under a header, columns padded to their widest cell; `paint` colours a cell after
 * padding, so escape codes never count towards the width. */
export function table(header: string[], rows: string[][], paint?: (row: string[], col: number, text: string) => string): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (row: string[], isHeader: boolean) =>
    `  ${row
      .map((cell, i) => {
        const padded = i === row.length - 1 ? cell : cell.padEnd(widths[i]!);
        return isHeader || paint === undefined ? padded : paint(row, i, padded);
      })
      .join('  ')}`.trimEnd();
  return [line(header, true), ...rows.map((r) => line(r, false))];
}

/** One line of at most `max` characters. */
export function cut(text: string, max: number): string {
  const one = text.replace(/\s+/g, ' ');
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}
