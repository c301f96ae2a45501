// Scratch space: temporary directories, policy files written into them, and a fresh HOME for
// each proxy, so that no two proxies share a default counter file by accident.
//
// Exports:
//   TempDir, makeTempDir(prefix?)    a scratch directory (path, file(name)), removed by cleanup()
//   writePolicy(dir, yaml, name?)    writes a policy file, returns its path
//   freshHome()                      a new empty directory to start a proxy with as HOME
import { mkdtempSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  path: string;
  /** A path inside the directory. */
  file(name: string): string;
  cleanup(): Promise<void>;
}

export async function makeTempDir(prefix = 'intercept-e2e-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, file: (name) => join(path, name), cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** Writes `yaml` to `<dir>/<name>` and returns the path. */
export async function writePolicy(dir: string, yaml: string, name = 'policy.yaml'): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, yaml);
  return path;
}

/** A new empty home directory: a proxy started with it as HOME keeps its default counter file
 * (~/.intercept/state/intercept.sqlite) to itself, so tests never share counters by accident. */
export function freshHome(): string {
  return mkdtempSync(join(tmpdir(), 'intercept-home-'));
}
