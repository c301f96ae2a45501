// The catalogue in policies/: every file loads without issues, says in its header which server
// package and version it was made from, when, and how many tools of each category it has; and
// the index lists exactly the files present.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parsePolicy } from '../../src/policy/load.js';
import { formatIssue } from '../../src/policy/format.js';
import { CATEGORIES } from '../../src/engine/risk.js';
import { SERVERS } from '../../scripts/generate-policies.js';

const DIR = fileURLToPath(new URL('../../policies/', import.meta.url));
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .sort();
const index = readFileSync(join(DIR, 'README.md'), 'utf8');

/** Index rows: | Server | `pkg@version` | total | read | write | execute | financial | destructive | [file](file) | */
const rows = index
  .split('\n')
  .filter((l) => /^\|.*\]\(.*\)\s*\|$/.test(l))
  .map((l) => {
    const cells = l.split('|').slice(1, -1).map((c) => c.trim());
    return { spec: cells[1]!.replace(/`/g, ''), counts: cells.slice(2, 8).map(Number), link: /\]\(([^)]+)\)/.exec(cells[8]!)![1]! };
  });

describe('the policy catalogue', () => {
  it('has at least ten servers, Twilio among them', () => {
    const packages = new Set(rows.map((r) => r.spec.replace(/@[^@]+$/, '')));
    assert.ok(packages.size >= 10, `${packages.size} packages`);
    assert.ok(packages.has('@twilio-alpha/mcp'));
  });

  it('the index lists exactly the files present, each once', () => {
    assert.deepEqual(rows.map((r) => r.link).sort(), files);
  });

  it('the generator table and the files agree', () => {
    assert.deepEqual(SERVERS.map((s) => s.file).sort(), files);
  });

  for (const file of files) {
    describe(file, () => {
      const text = readFileSync(join(DIR, file), 'utf8');

      it('loads with no issues', () => {
        const loaded = parsePolicy(text, file);
        assert.ok(loaded.ok, loaded.ok ? '' : loaded.issues.map(formatIssue).join('\n'));
      });

      it('has the header: server package and version, date, tools per category', () => {
        const pkg = /^# Server package: (\S+@\d\S*)$/m.exec(text);
        assert.ok(pkg, 'a "# Server package: name@version" line');
        assert.match(text, /^# Generated \d{4}-\d{2}-\d{2} by: intercept scan --recommended -- npx -y \S+/m);
        const counts = new RegExp(`^# (\\d+) tools?: ${CATEGORIES.map((c) => `(\\d+) ${c}`).join(', ')}$`, 'm').exec(text);
        assert.ok(counts, 'a "# N tools: n read, n write, …" line');
        const [total, ...perCategory] = counts.slice(1).map(Number);
        const tools = Object.keys((parse(text) as { tools: Record<string, unknown> }).tools);
        assert.equal(total, tools.length, 'the total is the number of tools in the file');
        assert.equal(perCategory.reduce((a, b) => a + b, 0), total);

        const row = rows.find((r) => r.link === file);
        assert.ok(row, 'listed in the index');
        assert.equal(row.spec, pkg[1], 'the index names the same package and version');
        assert.deepEqual(row.counts, [total, ...perCategory], 'the index has the same counts');
      });
    });
  }
});
