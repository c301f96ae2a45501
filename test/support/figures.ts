// The suite's own figures (fuzz cases run, bypass cases tried, faults injected, and the counts
// that must stay 0: denied calls forwarded, requests unanswered, counted calls lost). Test files
// run in processes of their own, so each figure is appended as a JSON line to the file named by
// INTERCEPT_FIGURES (set by the test command); test/support/print-figures.ts adds them up.
import { appendFileSync } from 'node:fs';

export type Figure =
  | 'fuzz cases run'
  | 'bypass cases tried'
  | 'faults injected'
  | 'denied calls forwarded'
  | 'requests unanswered'
  | 'counted calls lost';

export function addFigure(figure: Figure, count: number): void {
  const file = process.env.INTERCEPT_FIGURES;
  if (file === undefined || file === '' || count === 0) return;
  appendFileSync(file, `${JSON.stringify({ figure, count })}\n`);
}

/** The figures whose total must be 0. */
export const MUST_BE_ZERO: ReadonlySet<Figure> = new Set(['denied calls forwarded', 'requests unanswered', 'counted calls lost']);
