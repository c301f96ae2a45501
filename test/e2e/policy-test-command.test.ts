// `intercept test` as a user runs it in CI: the demo policy's own cases, a broken copy of the
// policy that the cases catch, files that do not load, and the starter cases `intercept scan -o`
// writes for a real server (server-memory), run against the scaffold it wrote. Needs the build.
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT } from '../support/paths.js';
import { runIntercept } from '../support/raw-proxy.js';
import { servers } from '../support/servers.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';

const DEMO_POLICY = join(ROOT, 'demo', 'policy.yaml');
const DEMO_CASES = join(ROOT, 'demo', 'policy.cases.yaml');

let tmp: TempDir;
before(async () => {
  tmp = await makeTempDir('intercept-policy-test-');
});
after(async () => {
  await tmp.cleanup();
});

/** The PASS/FAIL line of each case: the report's first block (the failures' details follow). */
function caseRows(stdout: string): string[] {
  return stdout.slice(0, stdout.indexOf('\n\n')).split('\n');
}

interface JsonReport {
  passed: number;
  failed: number;
  cases: { name: string; passed: boolean; expected: { decision: string }; actual: { decision: string; kind?: string }; differs: string[]; decision?: { trace: unknown[] } }[];
}

describe('intercept test on the demo policy', { timeout: 60_000 }, () => {
  it('every case of demo/policy.cases.yaml passes: exit 0, a PASS line per case and the count', async () => {
    const run = await runIntercept(['test', '-c', DEMO_POLICY, DEMO_CASES]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const rows = caseRows(run.stdout);
    assert.ok(rows.length >= 10, run.stdout);
    assert.ok(rows.every((l) => l.startsWith('PASS  ')), run.stdout);
    assert.equal(run.stdout, `${rows.join('\n')}\n\n${rows.length} passed, 0 failed\n`);
    assert.ok(rows.includes('PASS  a hidden tool is denied, even when called by name'));
    assert.equal(run.stderr, '');
  });

  it('a copy of the policy with the conversation limit raised to 300 fails the rate-limit case: exit 1, with the diff and the trace', async () => {
    const broken = (await readFile(DEMO_POLICY, 'utf8')).replace(/max: 30\n/g, 'max: 300\n');
    assert.match(broken, /max: 300/);
    const policy = await writePolicy(tmp.path, broken, 'broken.yaml');
    const run = await runIntercept(['test', '-c', policy, DEMO_CASES]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /^FAIL {2}the 31st conversation in a minute is rate-limited$/m);
    const detail = run.stdout.slice(run.stdout.indexOf('\n\nFAIL'));
    assert.match(detail, /^ {2}case {6}.*demo\/policy\.cases\.yaml:\d+:5$/m);
    assert.match(detail, /^ {2}expected {2}deny \(kind rate_limit, message containing "Rate limit of 30 calls per minute"\)$/m);
    assert.match(detail, /^ {2}actual {4}allow$/m);
    assert.match(detail, /^ {2}differs {3}decision$/m);
    assert.match(detail, /^ {2}before {4}30 calls: 30 allowed$/m);
    assert.match(detail, /^ {4}Call: create_conversation \{"friendly_name":"Support ticket 31"\}$/m);
    assert.match(detail, /charges counter create_conversation\._rate:create_conversation#1 \+1 \(limit ≤ 300, window rolling 60s/);
    assert.match(detail, /^ {4}Decision: ALLOWED$/m);
    const rows = caseRows(run.stdout);
    assert.equal(rows.filter((l) => l.startsWith('FAIL')).length, 1, run.stdout);
    assert.ok(rows.every((l) => /^(PASS|FAIL) {2}/.test(l)), run.stdout);
    assert.ok(run.stdout.trimEnd().endsWith(`${rows.length - 1} passed, 1 failed`));
  });

  it('--json gives the same verdicts as data, with the failing decision and its trace', async () => {
    const broken = (await readFile(DEMO_POLICY, 'utf8')).replace('reason: "Deleting conversations is not permitted for agents"', 'reason: "No deleting"');
    const policy = await writePolicy(tmp.path, broken, 'reworded.yaml');
    const run = await runIntercept(['test', '-c', policy, DEMO_CASES, '--json']);
    assert.equal(run.code, 1, run.stderr);
    const report = JSON.parse(run.stdout) as JsonReport;
    assert.equal(report.failed, 1);
    assert.equal(report.passed, report.cases.length - 1);
    const failed = report.cases.find((c) => !c.passed)!;
    assert.equal(failed.name, "deleting a conversation is denied with the policy's reason");
    assert.deepEqual(failed.differs, ['message']);
    assert.equal(failed.actual.kind, 'deny_rule');
    assert.equal(failed.decision!.trace.length, 1);
  });
});

describe('intercept test: what does not load exits 2', { timeout: 60_000 }, () => {
  it('a cases file with errors: each one on stderr as file:line:col: field: message, nothing on stdout', async () => {
    const cases = await writePolicy(
      tmp.path,
      ['cases:', '  - name: one', '    call: { tool: create_conversation }', '    expect: { deny: rate-limit }', '  - name: two', '    cal: { tool: x }', '    expect: allow', ''].join('\n'),
      'bad.cases.yaml',
    );
    const run = await runIntercept(['test', '-c', DEMO_POLICY, cases]);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, new RegExp(`^${escape(cases)}:4:21: cases\\[0\\]\\.expect\\.deny: unknown denial kind "rate-limit" \\(did you mean "rate_limit"\\?\\)`, 'm'));
    assert.match(run.stderr, new RegExp(`^${escape(cases)}:6:5: cases\\[1\\]: unknown key "cal" \\(did you mean "call"\\?\\)$`, 'm'));
    assert.match(run.stderr, /intercept test: the cases file has 3 error\(s\)/);
  });

  it('a counter the policy does not have, naming its line', async () => {
    const cases = await writePolicy(
      tmp.path,
      ['cases:', '  - name: one', '    call: { tool: create_conversation }', '    counters: { create_conversation._rate_minute: 3 }', '    expect: allow', ''].join('\n'),
      'counter.cases.yaml',
    );
    const run = await runIntercept(['test', '-c', DEMO_POLICY, cases]);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /:4:17: cases\[0\]\.counters: the policy has no counter "create_conversation\._rate_minute"; its counters are create_conversation\._rate:create_conversation#1, /);
  });

  it('a policy that does not load, a cases file that is not there, and no cases argument', async () => {
    const bad = await writePolicy(tmp.path, 'default: maybe\n', 'bad-policy.yaml');
    const policy = await runIntercept(['test', '-c', bad, DEMO_CASES]);
    assert.equal(policy.code, 2);
    assert.match(policy.stderr, /bad-policy\.yaml:1:10: default must be "allow" or "deny"/);
    assert.match(policy.stderr, /the policy file has 1 error/);

    const missing = await runIntercept(['test', '-c', DEMO_POLICY, tmp.file('nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.yaml:1:1: cannot read cases file: ENOENT/);

    const none = await runIntercept(['test', '-c', DEMO_POLICY]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /missing required argument 'cases'/);
    assert.equal(none.stdout, '');
  });
});

describe('intercept scan -o writes starter cases that pass against its scaffold (server-memory)', { timeout: 120_000 }, () => {
  /** The memory server, its file in the temp dir, started through env(1) since scan passes the
   * command on as given. */
  const memoryCommand = () => {
    const cmd = servers.memory(tmp.file('memory.jsonl'));
    return ['env', ...Object.entries(cmd.env ?? {}).map(([k, v]) => `${k}=${v}`), cmd.command, ...cmd.args];
  };

  for (const recommended of [true, false]) {
    it(`${recommended ? 'with' : 'without'} --recommended: the cases file beside the policy passes, and a second scan leaves it alone`, async () => {
      const policy = tmp.file(`scan-${recommended}/memory.yaml`);
      const casesFile = tmp.file(`scan-${recommended}/memory.cases.yaml`);
      const scan = await runIntercept(['scan', ...(recommended ? ['--recommended'] : []), '-o', policy, '--', ...memoryCommand()], { timeoutMs: 60_000 });
      assert.equal(scan.code, 0, scan.stderr);
      assert.ok(scan.stderr.includes(`wrote starter test cases to ${casesFile} (run them with: intercept test -c ${policy} ${casesFile})`), scan.stderr);

      const run = await runIntercept(['test', '-c', policy, casesFile]);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const rows = caseRows(run.stdout);
      // server-memory: 3 read, 3 write and 3 destructive tools.
      const want = recommended
        ? ['open_nodes is allowed', 'open_nodes: the 61st call in a minute is rate-limited', 'create_entities: the 31st call in a minute is rate-limited', 'delete_entities is denied']
        : ['open_nodes is allowed', 'read_graph is allowed', 'search_nodes is allowed'];
      for (const name of want) assert.ok(rows.includes(`PASS  ${name}`), `${name}:\n${run.stdout}`);
      assert.equal(rows.length, recommended ? 12 : 3, run.stdout);
      assert.match(run.stdout, new RegExp(`${rows.length} passed, 0 failed\\n$`));

      const edited = (await readFile(casesFile, 'utf8')) + '# my own edits\n';
      await writeFile(casesFile, edited);
      const again = await runIntercept(['scan', '-o', policy, '--', ...memoryCommand()], { timeoutMs: 60_000 });
      assert.equal(again.code, 0, again.stderr);
      assert.ok(again.stderr.includes(`left ${casesFile} as it is (it exists)`), again.stderr);
      assert.equal(await readFile(casesFile, 'utf8'), edited);
    });
  }

  it('--format json writes no cases file', async () => {
    const out = tmp.file('scan-json/memory.json');
    const scan = await runIntercept(['scan', '--format', 'json', '-o', out, '--', ...memoryCommand()], { timeoutMs: 60_000 });
    assert.equal(scan.code, 0, scan.stderr);
    await assert.rejects(stat(tmp.file('scan-json/memory.json.cases.yaml')));
    assert.doesNotMatch(scan.stderr, /test cases/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
