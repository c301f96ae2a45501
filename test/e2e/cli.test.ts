// The offline subcommands as a user runs them: `intercept validate`, `intercept explain`, and
// status and logs on an empty trail. Needs the build (dist/).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/paths.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { runIntercept } from '../support/raw-proxy.js';

const GOOD = `version: "1"
hide: [get-env]
tools:
  create_issue:
    rules:
      - name: hourly
        rate_limit: 5/hour
      - name: no bugs
        conditions:
          - path: args.label
            op: neq
            value: bug
        on_deny: "No bug labels"
  create_execution:
    rules:
      - action: allow
        validate:
          required_args: true
`;

const BAD = `version: "1"
default: maybe
tools:
  echo:
    rules:
      - name: r1
        conditions:
          - path: args.x
            op: lessthan
            value: 3
      - name: r2
        action: evaluate
`;

/** The three issues of BAD, as line:col and message. */
const BAD_ISSUES = [
  { line: 2, col: 10, path: '', message: /default must be "allow" or "deny", got "maybe"/ },
  { line: 9, col: 17, path: 'tools.echo.rules[0].conditions[0]', message: /unknown operator "lessthan"/ },
  { line: 11, col: 9, path: 'tools.echo.rules[1]', message: /evaluate rules must have at least one condition/ },
];

let tmp: TempDir;
let good: string;
let bad: string;

before(async () => {
  tmp = await makeTempDir();
  good = await writePolicy(tmp.path, GOOD, 'good.yaml');
  bad = await writePolicy(tmp.path, BAD, 'bad.yaml');
});
after(async () => {
  await tmp?.cleanup();
});

describe('intercept validate', { timeout: 60_000 }, () => {
  it('exits 0 with a one-line summary for a valid policy', async () => {
    const run = await runIntercept(['validate', '-c', good]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'Policy file is valid: 2 tool(s), 3 rule(s), 1 hidden, default allow.\n');
  });

  const fixtures = readdirSync(join(ROOT, 'test', 'fixtures', 'policies')).filter((f) => f.endsWith('.yaml'));
  for (const name of fixtures) {
    it(`accepts the fixture ${name}`, async () => {
      const run = await runIntercept(['validate', '-c', join(ROOT, 'test', 'fixtures', 'policies', name)]);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /^Policy file is valid: /);
    });
  }

  it('exits 1 and prints every error as a file:line:col line', async () => {
    const run = await runIntercept(['validate', '-c', bad]);
    assert.equal(run.code, 1);
    const lines = run.stdout.trimEnd().split('\n');
    assert.equal(lines.length, BAD_ISSUES.length, run.stdout);
    lines.forEach((line, i) => {
      const want = BAD_ISSUES[i]!;
      const prefix = want.path === '' ? `${bad}:${want.line}:${want.col}: ` : `${bad}:${want.line}:${want.col}: ${want.path}: `;
      assert.ok(line.startsWith(prefix), `${line}\ndoes not start with ${prefix}`);
      assert.match(line, want.message);
    });
    assert.match(run.stderr, /validation failed with 3 error\(s\)/);
  });

  it('--format json: valid', async () => {
    const run = await runIntercept(['validate', '-c', good, '--format', 'json']);
    assert.equal(run.code, 0);
    assert.deepEqual(JSON.parse(run.stdout), { valid: true, errors: [] });
  });

  it('--format json: every error with file, line, col, path and message', async () => {
    const run = await runIntercept(['validate', '-c', bad, '--format', 'json']);
    assert.equal(run.code, 1);
    const out = JSON.parse(run.stdout) as { valid: boolean; errors: Array<{ file: string; line: number; col: number; path: string; message: string }> };
    assert.equal(out.valid, false);
    assert.equal(out.errors.length, BAD_ISSUES.length);
    out.errors.forEach((e, i) => {
      const want = BAD_ISSUES[i]!;
      assert.deepEqual([e.file, e.line, e.col, e.path], [bad, want.line, want.col, want.path]);
      assert.match(e.message, want.message);
    });
  });

  it('exits 1 for a file that cannot be read, naming it', async () => {
    const missing = join(tmp.path, 'missing.yaml');
    const run = await runIntercept(['validate', '-c', missing]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, new RegExp(`^${escape(missing)}:1:1: cannot read policy file`));
  });

  it('exits 2 without -c', async () => {
    const run = await runIntercept(['validate']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--config/);
  });

  it('exits 2 for an unknown --format', async () => {
    const run = await runIntercept(['validate', '-c', good, '--format', 'xml']);
    assert.equal(run.code, 2);
  });
});

describe('intercept explain', { timeout: 60_000 }, () => {
  it('an allowed call: exit 0, each rule with its outcome and the charge it makes', async () => {
    const run = await runIntercept(['explain', '-c', good, '--tool', 'create_issue', '--args', '{"label":"docs"}']);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split('\n');
    assert.equal(lines[0], 'Call: create_issue {"label":"docs"}');
    assert.ok(lines.some((l) => /^\s+1\. create_issue › hourly: PASSED$/.test(l)), run.stdout);
    assert.ok(lines.some((l) => /^\s+2\. create_issue › no bugs: PASSED$/.test(l)), run.stdout);
    assert.match(run.stdout, /charges counter create_issue\._rate_hour \+1 \(limit ≤ 5/);
    assert.match(run.stdout, /✓ args\.label neq "bug" \(actual: "docs"\)/);
    assert.match(run.stdout, /^Decision: ALLOWED$/m);
  });

  it('a call denied by a condition: exit 1, the failing condition with the actual value, and the reason', async () => {
    const run = await runIntercept(['explain', '-c', good, '--tool', 'create_issue', '--args', '{"label":"bug"}']);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /2\. create_issue › no bugs: DENIED/);
    assert.match(run.stdout, /✗ args\.label neq "bug" \(actual: "bug"\)/);
    assert.match(run.stdout, /^Decision: DENIED \(condition\) — No bug labels$/m);
    assert.match(run.stdout, /not charged: the call is denied/);
  });

  it('--counter assumes a counter value: at the limit the call is rate-limited', async () => {
    const under = await runIntercept(['explain', '-c', good, '--tool', 'create_issue', '--args', '{"label":"x"}', '--counter', 'create_issue._rate_hour=4']);
    assert.equal(under.code, 0, under.stdout + under.stderr);
    const at = await runIntercept(['explain', '-c', good, '--tool', 'create_issue', '--args', '{"label":"x"}', '--counter', 'create_issue._rate_hour=5']);
    assert.equal(at.code, 1, at.stdout + at.stderr);
    assert.match(at.stdout, /^Decision: DENIED \(rate_limit\) — Rate limit of 5 per hour reached/m);
  });

  it('--json prints the decision as JSON', async () => {
    const run = await runIntercept(['explain', '-c', good, '--tool', 'create_issue', '--args', '{"label":"bug"}', '--json']);
    assert.equal(run.code, 1);
    const out = JSON.parse(run.stdout) as { call: unknown; allowed: boolean; trace: Array<{ rule: string; outcome: string }>; denial?: { kind: string } };
    assert.deepEqual(out.call, { name: 'create_issue', arguments: { label: 'bug' } });
    assert.equal(out.allowed, false);
    assert.deepEqual(
      out.trace.map((t) => [t.rule, t.outcome]),
      [
        ['hourly', 'passed'],
        ['no bugs', 'denied'],
      ],
    );

    const allowed = await runIntercept(['explain', '-c', good, '--tool', 'create_issue', '--json']);
    assert.equal(allowed.code, 1, 'no label: args.label neq "bug" on a missing path denies');
    const ok = await runIntercept(['explain', '-c', good, '--tool', 'create_issue', '--args', '{"label":"x"}', '--json']);
    assert.equal(ok.code, 0);
    assert.equal((JSON.parse(ok.stdout) as { allowed: boolean }).allowed, true);
  });

  it('--input-schema lets validate rules check required arguments', async () => {
    const schema = '{"type":"object","properties":{"to":{"type":"string"}},"required":["to"]}';
    const missing = await runIntercept(['explain', '-c', good, '--tool', 'create_execution', '--args', '{}', '--input-schema', schema]);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /Missing required argument "to" for tool "create_execution"/);

    const present = await runIntercept(['explain', '-c', good, '--tool', 'create_execution', '--args', '{"to":"+15550100"}', '--input-schema', schema]);
    assert.equal(present.code, 0, present.stdout);

    const unknown = await runIntercept(['explain', '-c', good, '--tool', 'create_execution', '--args', '{}']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stdout, /inputSchema/);
  });

  it('a hidden tool is denied before any rule', async () => {
    const run = await runIntercept(['explain', '-c', good, '--tool', 'get-env']);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^Decision: DENIED \(hidden\) — Tool "get-env" is hidden by policy$/m);
  });

  const usage: Array<[string, string[], RegExp]> = [
    ['--args that is not JSON', ['--tool', 'x', '--args', '{bad'], /--args is not valid JSON/],
    ['--args that is not an object', ['--tool', 'x', '--args', '[1]'], /arguments must be an object/],
    ['--args with a number out of range', ['--tool', 'x', '--args', '{"n":1e400}'], /range of a double/],
    ['a --counter without a value', ['--tool', 'x', '--counter', 'foo'], /--counter must look like/],
    ['a negative --counter', ['--tool', 'x', '--counter', 'x._rate_hour=-1'], /--counter must look like/],
    ['--input-schema that is not an object', ['--tool', 'x', '--input-schema', '[]'], /--input-schema must be a JSON object/],
    ['no --tool', [], /--tool/],
  ];
  for (const [label, args, message] of usage) {
    it(`exits 2 for ${label}`, async () => {
      const run = await runIntercept(['explain', '-c', good, ...args]);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assert.match(run.stderr, message);
      assert.equal(run.stdout, '');
    });
  }

  it('exits 2 for a policy that does not load, listing its errors', async () => {
    const run = await runIntercept(['explain', '-c', bad, '--tool', 'echo']);
    assert.equal(run.code, 2);
    for (const want of BAD_ISSUES) assert.match(run.stderr, new RegExp(`${escape(bad)}:${want.line}:${want.col}: `));
  });
});

describe('status and logs on an empty trail', { timeout: 60_000 }, () => {
  it('status says there are no events and exits 0; --json says so in numbers', async () => {
    const dir = join(tmp.path, 'no-events');
    const text = await runIntercept(['status', '--events-dir', dir]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^no events in .*no-events since /);
    const json = await runIntercept(['status', '--events-dir', dir, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as { records: number; calls: { total: number }; proxies: unknown[] };
    assert.deepEqual([report.records, report.calls.total, report.proxies.length], [0, 0, 0]);
  });

  it('logs prints nothing and says so on stderr', async () => {
    const run = await runIntercept(['logs', '--events-dir', join(tmp.path, 'no-events'), '--denied']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /no matching events/);
  });

  it('a bad --since is a usage error naming the flag', async () => {
    for (const command of ['status', 'logs']) {
      const run = await runIntercept([command, '--since', 'yesterday']);
      assert.equal(run.code, 2, `${command}: ${run.stderr}`);
      assert.match(run.stderr, /--since must be a duration/);
    }
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
