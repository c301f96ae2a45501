// Where things are: the repository root, the command a user runs, the demo and fixture servers,
// the fixture policies, and the entry scripts of MCP servers installed from npm.
//
// Exports:
//   ROOT                 the repository root (ends with a slash)
//   INTERCEPT_BIN        bin/intercept.js, the command a user runs (needs the build, dist/)
//   DEMO_SERVER          dist/demo/server.js, the demo's MCP server (needs the build)
//   EVERYTHING_SERVER    the entry script of @modelcontextprotocol/server-everything
//   TEE_SERVER, LENIENT_SERVER, MODERN_SERVER   fixture servers in test/fixtures/ (run with tsx)
//   fixturePolicy(name)  path of test/fixtures/e2e/<name>
//   packageBin(pkg)      the entry script of an installed package, read from its package.json `bin`
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The command a user runs. */
export const INTERCEPT_BIN = join(ROOT, 'bin', 'intercept.js');
/** The demo's MCP server, as built. */
export const DEMO_SERVER = join(ROOT, 'dist', 'demo', 'server.js');

/** test/fixtures/tee-server.ts: runs a command and logs every line it receives. */
export const TEE_SERVER = join(ROOT, 'test', 'fixtures', 'tee-server.ts');
/** test/fixtures/lenient-server.ts: accepts what a strict server refuses, logs what it dispatched. */
export const LENIENT_SERVER = join(ROOT, 'test', 'fixtures', 'lenient-server.ts');
/** test/fixtures/modern-server.ts: a v2-SDK server that speaks 2026-07-28 as well as 2025. */
export const MODERN_SERVER = join(ROOT, 'test', 'fixtures', 'modern-server.ts');

/** A policy file of test/fixtures/e2e/. */
export function fixturePolicy(name: string): string {
  return join(ROOT, 'test', 'fixtures', 'e2e', name);
}

const require = createRequire(import.meta.url);

/** The entry script of an installed server package, read from its package.json `bin`. */
export function packageBin(pkg: string): string {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = require(manifestPath) as { bin?: string | Record<string, string> };
  const bin = typeof manifest.bin === 'string' ? manifest.bin : Object.values(manifest.bin ?? {})[0];
  if (bin === undefined) throw new Error(`${pkg} has no bin entry`);
  return join(dirname(manifestPath), bin);
}

/** @modelcontextprotocol/server-everything's entry script. */
export const EVERYTHING_SERVER = packageBin('@modelcontextprotocol/server-everything');
