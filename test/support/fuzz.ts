// Property-based fuzzing settings: a short run always (so `npm test` stays quick), a long one
// with FUZZ_RUNS=N. Each property's cases are added to the suite's figures.
import fc from 'fast-check';
import { addFigure } from './figures.js';

/** Cases per property: FUZZ_RUNS when set, else `short`. */
export function fuzzRuns(short: number): number {
  const asked = Number(process.env.FUZZ_RUNS);
  return Number.isSafeInteger(asked) && asked > 0 ? asked : short;
}

/** Checks `property` for fuzzRuns(short) cases (a failure prints its seed and shrunk case), and
 * counts the cases run. */
export async function checkProperty<T>(property: fc.IAsyncProperty<T> | fc.IProperty<T>, short: number): Promise<void> {
  const numRuns = fuzzRuns(short);
  const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
  await fc.assert(property as fc.IAsyncProperty<T>, { numRuns, ...(seed !== undefined && { seed }) });
  addFigure('fuzz cases run', numRuns);
}
