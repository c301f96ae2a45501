/** For commands and flags whose backend arrives in a later version: say so plainly. */
export function notYet(what: string, feature: string): number {
  process.stderr.write(`intercept: ${what} is not available in this version yet (${feature} arrives in a later release).\n`);
  return 2;
}
