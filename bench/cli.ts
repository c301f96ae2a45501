// What every benchmark script shares: where things are, and how its flags are read.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(HERE, '..');
export const INTERCEPT = join(ROOT, 'bin', 'intercept.js');
export const ECHO = join(HERE, 'echo-server.mjs');
export const NODE = process.execPath;

/** The value after a flag on the command line (`--rounds 5`). */
export function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
export const quick = process.argv.includes('--quick');
export const jsonFile = flag('--json');
