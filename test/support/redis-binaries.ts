// Whether the Redis binaries the tests start are here. Without them the tests skip, loudly: the
// reason is the skip message and is printed on stderr. Except under CI (the environment variable
// CI set, and not "0" or "false"): there a skip would hide that nothing was tested, so the tests
// run and fail, saying what is missing.
//
// Exports:
//   binariesSkipReason(what, bins, hint?)   why the tests of `what` cannot run here, or undefined (CI-aware, loud)
//   requireBinaries(bins)                   throws, naming what is missing, unless every binary runs
import { spawnSync } from 'node:child_process';

const CI = !['', '0', 'false'].includes((process.env['CI'] ?? '').trim().toLowerCase());
const INSTALL = 'install Redis (e.g. apt-get install redis-server)';

const runs = new Map<string, boolean>();
/** The binaries of `binaries` that cannot be run (each probed once, with --version). */
function missing(binaries: readonly string[]): string[] {
  return binaries.filter((bin) => {
    if (!runs.has(bin)) runs.set(bin, !spawnSync(bin, ['--version'], { stdio: 'ignore' }).error);
    return !runs.get(bin);
  });
}

/** Why the tests of `what` (needing `binaries`) cannot run here, or undefined when they can.
 * A reason is also printed on stderr, so a skip is seen. Under CI a missing binary is no reason
 * to skip: undefined, and starting the server (requireBinaries) fails, naming what is missing. */
export function binariesSkipReason(what: string, binaries: readonly string[], hint = INSTALL): string | undefined {
  const absent = missing(binaries);
  if (absent.length === 0 || CI) return undefined;
  const reason = `${absent.join(' and ')} not found: ${hint}`;
  process.stderr.write(`# SKIPPING ${what}: ${reason} (with CI set, this fails instead)\n`);
  return reason;
}

/** Throws unless every binary runs: under CI, this is what turns a missing binary into a failure. */
export function requireBinaries(binaries: readonly string[]): void {
  const absent = missing(binaries);
  if (absent.length > 0) {
    throw new Error(`${absent.join(' and ')} not found${CI ? ' and CI is set: the Redis tests must run here, not be skipped' : ''}; ${INSTALL}`);
  }
}
