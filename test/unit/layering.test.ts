// The layering of src/, as docs/architecture.md states it, checked on every import (static and
// lazy `import()`): dependencies point inward, the decision engine depends on nothing but the
// policy model, transports know nothing of the proxy, and no two folders depend on each other.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

interface Import {
  from: string; // file, relative to src/
  to: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const IMPORT = /(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

const imports: Import[] = sourceFiles(SRC).flatMap((file) =>
  [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((m) => ({
    from: relative(SRC, file),
    to: relative(SRC, resolve(dirname(file), (m[1] ?? m[2])!.replace(/\.js$/, '.ts'))),
  })),
);

/** The folder of a file under src/ ('.' for files at its top). */
const folder = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : '.');
const crossing = imports.filter((i) => folder(i.from) !== folder(i.to));

/** The imports out of `from` that are not to one of `allowed` (folders, or files under src/). */
function outside(from: string, allowed: string[]): string[] {
  return crossing
    .filter((i) => folder(i.from) === from && !allowed.some((a) => (a.endsWith('.ts') ? i.to === a : folder(i.to) === a)))
    .map((i) => `${i.from} imports ${i.to}`);
}

describe('layering of src/', () => {
  it('reads the imports (the check below is not vacuous)', () => {
    assert.ok(imports.length > 200, `only ${imports.length} imports found`);
    assert.ok(crossing.some((i) => i.from === 'proxy/interceptor.ts' && i.to === 'jsonrpc/message.ts'));
    assert.ok(crossing.some((i) => i.from === 'cli/main.ts' && i.to.startsWith('jsonrpc/')));
  });

  it('engine/ (the pure decision) imports only itself and the policy language definitions', () => {
    assert.deepEqual(outside('engine', ['policy/model.ts', 'policy/spelling.ts', 'policy/regex.ts']), []);
  });

  it('policy/ imports only itself', () => {
    assert.deepEqual(outside('policy', []), []);
  });

  it('jsonrpc/ (the protocol vocabulary) imports only itself', () => {
    assert.deepEqual(outside('jsonrpc', []), []);
  });

  it('transport/ knows nothing of the proxy, the policy or the stores', () => {
    assert.deepEqual(outside('transport', ['jsonrpc', 'log.ts']), []);
  });

  it('state/ imports only the policy model, engine types and the logger', () => {
    assert.deepEqual(outside('state', ['policy/model.ts', 'engine/types.ts', 'log.ts']), []);
  });

  it('approval/ imports only itself, the policy model, canonical JSON, the state stores and the logger', () => {
    assert.deepEqual(outside('approval', ['policy/model.ts', 'engine/canonical-json.ts', 'state', 'log.ts']), []);
  });

  it('audit/ (the trail and its readers, metrics, traces) reads decisions and stores, never the proxy or a transport', () => {
    assert.deepEqual(outside('audit', ['engine', 'policy/model.ts', 'approval/types.ts', 'state', 'log.ts']), []);
  });

  it('dashboard/ reads the trail and the stores and uses the HTTP guards, never the proxy, a command or a channel', () => {
    assert.deepEqual(outside('dashboard', ['audit', 'approval', 'state', 'engine', 'policy', 'log.ts', 'transport/http-guard.ts']), []);
  });

  it('scan/ uses the protocol, the risk classifier and the transports, not the proxy', () => {
    assert.deepEqual(outside('scan', ['jsonrpc', 'engine/risk.ts', 'transport', 'policy', 'log.ts']), []);
  });

  it("offline/ (decisions without a server: explain's and policy tests') uses the engine, the policy language, the stores and the proxy's call parsing and catalogue", () => {
    assert.deepEqual(outside('offline', ['engine', 'policy', 'state', 'proxy/call.ts', 'proxy/catalogue.ts']), []);
  });

  it('no two folders import each other, and folders form no cycle', () => {
    const graph = new Map<string, Set<string>>();
    for (const i of crossing) {
      if (!graph.has(folder(i.from))) graph.set(folder(i.from), new Set());
      graph.get(folder(i.from))!.add(folder(i.to));
    }
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (node: string, path: string[]) => {
      if (state.get(node) === 'done') return;
      if (state.get(node) === 'open') {
        cycles.push([...path.slice(path.indexOf(node)), node].join(' -> '));
        return;
      }
      state.set(node, 'open');
      for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
      state.set(node, 'done');
    };
    for (const node of graph.keys()) visit(node, []);
    const evidence = cycles.map((c) => {
      const [a, b] = c.split(' -> ');
      return `${c} (e.g. ${crossing.find((i) => folder(i.from) === a && folder(i.to) === b)?.from})`;
    });
    assert.deepEqual(evidence, []);
  });
});
