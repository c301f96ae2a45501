// `intercept demo` as a user runs it: a child process whose stdout is read back and parsed.
// Needs the build (dist/), which `npm test` makes first.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { runDemo } from '../../src/demo/agent.js';
import { DEMO_SERVER, INTERCEPT_BIN, ROOT } from '../support/paths.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function intercept(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.NO_COLOR;
    const child = spawn(process.execPath, [INTERCEPT_BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Row {
  n: string;
  tool: string;
  decision: string;
  reason: string;
}

// A table row: call number(s), tool (maybe "name ×N"), decision, reason; columns are 2+ spaces apart.
function tableRows(stdout: string): Row[] {
  const rows: Row[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^ {2}(\d+(?:–\d+)?) +(\S+(?: ×\d+)?) +(ALLOWED|DENIED|ERROR)(?: +(.*))?$/.exec(line);
    if (m) rows.push({ n: m[1]!, tool: m[2]!, decision: m[3]!, reason: m[4] ?? '' });
  }
  return rows;
}

/** The demo's trail, the status and logs commands and the metrics it printed all tell the same
 * calls and denials, and `audit verify` catches a hand-edited line. Removes the trail. */
async function checkTrail(stdout: string): Promise<void> {
  const dir = /^Audit trail: (\S+) \(38 calls, 4 denied\)$/m.exec(stdout)?.[1];
  assert.ok(dir, `the demo names its audit trail:\n${stdout}`);
  try {
    assert.match(stdout, /^Metrics: +http:\/\/127\.0\.0\.1:\d+\/metrics counted 38 calls, 4 denied$/m);
    for (const command of ['status', 'logs --denied', 'audit verify']) assert.ok(stdout.includes(`node bin/intercept.js ${command} --events-dir ${dir}`), command);

    const status = await intercept(['status', '--events-dir', dir, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const report = JSON.parse(status.stdout) as { calls: { total: number; allowed: number; denied: number }; approvals: { approved: number; used: number } };
    assert.deepEqual(report.calls, { ...report.calls, total: 38, allowed: 34, denied: 4 });
    assert.deepEqual([report.approvals.approved, report.approvals.used], [1, 1]);

    const logs = await intercept(['logs', '--events-dir', dir, '--denied', '--json']);
    assert.equal(logs.code, 0, logs.stderr);
    const denied = logs.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { tool: string; kind: string });
    assert.deepEqual(denied.map((d) => [d.tool, d.kind]), [
      ['create_conversation', 'rate_limit'],
      ['create_execution', 'missing_args'],
      ['delete_conversation', 'deny_rule'],
      ['delete_flow', 'hidden'],
    ]);

    const intact = await intercept(['audit', 'verify', '--events-dir', dir]);
    assert.equal(intact.code, 0, intact.stdout + intact.stderr);
    // Turn the denial of delete_conversation into an allow, by hand.
    const file = (await readdir(dir)).find((n) => !n.includes('demo-operator'))!;
    const lines = (await readFile(join(dir, file), 'utf8')).split('\n');
    const at = lines.findIndex((l) => l.includes('"delete_conversation"') && l.includes('"deny"'));
    assert.ok(at >= 0);
    lines[at] = lines[at]!.replace('"deny"', '"allow"');
    await writeFile(join(dir, file), lines.join('\n'));
    const edited = await intercept(['audit', 'verify', '--events-dir', dir]);
    assert.equal(edited.code, 1);
    assert.ok(`${edited.stdout}${edited.stderr}`.includes(`${file}:${at + 1}`), `names the edited line ${file}:${at + 1}:\n${edited.stdout}${edited.stderr}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('intercept demo', { timeout: 60_000 }, () => {
  it('shows each call through the bundled policy as a table row, then a summary', async () => {
    const { code, stdout, stderr } = await intercept(['demo']);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^tools\/list: 7 tools visible, delete_flow hidden by policy$/m);

    const rows = tableRows(stdout);
    assert.deepEqual(
      rows.map((r) => [r.n, r.tool, r.decision]),
      [
        ['1', 'list_conversations', 'ALLOWED'],
        ['2–31', 'create_conversation ×30', 'ALLOWED'],
        ['32', 'create_conversation', 'DENIED'],
        ['33', 'send_conversation_message', 'ALLOWED'],
        ['34', 'create_execution', 'DENIED'],
        ['35', 'create_execution', 'ALLOWED'],
        ['36', 'create_execution', 'ALLOWED'],
        ['37', 'delete_conversation', 'DENIED'],
        ['38', 'delete_flow', 'DENIED'],
      ],
    );
    const [list, created, limited, sent, missingTo, executed, held, deleted, hidden] = rows;
    assert.equal(list?.reason, '0 conversations');
    assert.equal(created?.reason, 'Created conversation CH0001 ("Support ticket 1") … CH0030 ("Support ticket 30")');
    assert.match(limited!.reason, /rate limit/i);
    assert.match(limited!.reason, /\b30\b/);
    assert.match(sent!.reason, /^Sent message IM0001 to CH0001\b/);
    assert.match(missingTo!.reason, /required/i);
    assert.match(missingTo!.reason, /["'`]to["'`]/);
    assert.match(executed!.reason, /^Started execution FN0001 of flow FW0001\b/);
    // Held for the number outside the allow-list, approved by the scripted operator, run once.
    assert.match(held!.reason, /^held for approval, approved by the operator \(apr_[a-z2-7]{16}\): Started execution FN0002\b/);
    assert.match(stdout, /^ {2}operator: create_execution to \+15550100999 is held \(apr_[a-z2-7]{16}\); approving it$/m);
    assert.equal(deleted?.reason, 'Deleting conversations is not permitted for agents');
    assert.match(hidden!.reason, /delete_flow/);
    assert.match(hidden!.reason, /hidden/);

    assert.match(stdout, /^38 calls: 34 allowed, 4 denied\.$/m);
    assert.match(stdout, /--policy my-policy\.yaml/);
    // Piped output carries no colour codes, and the proxy's log stays out of sight.
    assert.doesNotMatch(stdout, /\u001b\[/);
    assert.equal(stderr, '');
    await checkTrail(stdout);
  });

  it('enforces the policy given with --policy instead', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'intercept-demo-test-'));
    try {
      const policy = join(dir, 'my-policy.yaml');
      await writeFile(
        policy,
        ['tools:', '  list_conversations:', '    rules:', '      - action: deny', '        reason: "No browsing today"', ''].join('\n'),
      );
      const { code, stdout, stderr } = await intercept(['demo', '--policy', policy]);
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^tools\/list: 8 tools visible, none hidden by policy$/m);
      const rows = tableRows(stdout);
      assert.deepEqual(rows[0], { n: '1', tool: 'list_conversations', decision: 'DENIED', reason: 'No browsing today' });
      // No rate limit: all 31 conversations are created. No validation: the server itself rejects the bad call.
      assert.deepEqual(rows[1] && [rows[1].tool, rows[1].decision], ['create_conversation ×31', 'ALLOWED']);
      assert.match(rows.find((r) => r.tool === 'create_execution')?.reason ?? '', /^server error: .*\bto$/);
      assert.equal(rows.find((r) => r.tool === 'delete_flow')?.decision, 'ALLOWED');
      assert.match(stdout, /^38 calls: 37 allowed, 1 denied\.$/m);
      const trail = /^Audit trail: (\S+) \(38 calls, 1 denied\)$/m.exec(stdout)?.[1];
      assert.ok(trail, 'the trail of this run is named');
      await rm(trail, { recursive: true, force: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 1 and says why when the policy cannot be used', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'intercept-demo-test-'));
    try {
      const missing = await intercept(['demo', '--policy', join(dir, 'nope.yaml')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /nope\.yaml/);

      const broken = join(dir, 'broken.yaml');
      await writeFile(broken, 'tools:\n  create_conversation:\n    rules:\n      - action: explode\n');
      const invalid = await intercept(['demo', '--policy', broken]);
      assert.equal(invalid.code, 1);
      assert.match(invalid.stderr, /explode/);
      assert.doesNotMatch(invalid.stdout, /ALLOWED|DENIED/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('colours decisions on a terminal unless NO_COLOR is set', async () => {
    const capture = () => {
      let text = '';
      const out = Object.assign(
        new Writable({
          write(chunk: Buffer, _enc, done) {
            text += chunk.toString('utf8');
            done();
          },
        }),
        { isTTY: true },
      );
      return { out, text: () => text };
    };
    const saved = process.env.NO_COLOR;
    try {
      delete process.env.NO_COLOR;
      const tty = capture();
      assert.equal(await runDemo({ direct: true, out: tty.out }), 0);
      assert.match(tty.text(), /\u001b\[32mALLOWED/);

      process.env.NO_COLOR = '1';
      const plain = capture();
      assert.equal(await runDemo({ direct: true, out: plain.out }), 0);
      assert.doesNotMatch(plain.text(), /\u001b\[/);
      assert.match(plain.text(), /ALLOWED/);
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  });
});

describe('the demo server', { timeout: 30_000 }, () => {
  const connect = async (): Promise<Client> => {
    const client = new Client({ name: 'demo-server-test', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [DEMO_SERVER], stderr: 'pipe' }));
    return client;
  };
  const textOf = (result: unknown): string => {
    const content = (result as { content: Array<{ type: string; text?: string }> }).content;
    return content.map((b) => b.text ?? '').join('\n');
  };

  it('offers the eight Twilio tools with schemas and annotations a policy can rely on', async () => {
    const client = await connect();
    try {
      const { tools } = await client.listTools();
      const byName = new Map(tools.map((t) => [t.name, t]));
      assert.deepEqual(
        [...byName.keys()].sort(),
        [
          'create_conversation',
          'create_execution',
          'delete_conversation',
          'delete_flow',
          'fetch_conversation',
          'list_conversation_messages',
          'list_conversations',
          'send_conversation_message',
        ],
      );
      assert.equal(byName.get('create_execution')?.description?.startsWith('Trigger a Studio flow execution'), true);
      assert.deepEqual(byName.get('create_execution')?.inputSchema.required, ['flow_sid', 'to', 'from']);
      assert.deepEqual(byName.get('send_conversation_message')?.inputSchema.required, ['conversation_sid', 'body']);
      assert.equal(byName.get('create_conversation')?.inputSchema.required, undefined);
      const hints = (name: string) => byName.get(name)?.annotations;
      for (const name of ['delete_conversation', 'delete_flow']) assert.equal(hints(name)?.destructiveHint, true, name);
      for (const name of ['list_conversations', 'fetch_conversation', 'list_conversation_messages']) {
        assert.equal(hints(name)?.readOnlyHint, true, name);
      }
      for (const name of ['create_conversation', 'send_conversation_message', 'create_execution']) {
        assert.equal(hints(name)?.readOnlyHint, false, name);
        assert.equal(hints(name)?.destructiveHint, false, name);
      }
    } finally {
      await client.close();
    }
  });

  it('keeps real state: created conversations can be messaged, read and deleted', async () => {
    const client = await connect();
    const call = (name: string, args: Record<string, unknown> = {}) => client.callTool({ name, arguments: args });
    try {
      assert.equal(textOf(await call('create_conversation', { friendly_name: 'Support' })), 'Created conversation CH0001 ("Support")');
      assert.equal(textOf(await call('create_conversation')), 'Created conversation CH0002');
      assert.match(
        textOf(await call('send_conversation_message', { conversation_sid: 'CH0001', body: 'Hello', author: 'ana' })),
        /^Sent message IM0001 to CH0001/,
      );
      assert.match(textOf(await call('fetch_conversation', { conversation_sid: 'CH0001' })), /^Conversation CH0001 \("Support"\), 1 message,/);
      assert.equal(
        textOf(await call('list_conversation_messages', { conversation_sid: 'CH0001' })),
        '1 message in CH0001\nIM0001 from ana: Hello',
      );
      assert.match(textOf(await call('list_conversations')), /^2 conversations\nCH0001 \("Support"\), 1 message, .*\nCH0002, 0 messages, /);
      assert.equal(
        textOf(await call('delete_conversation', { conversation_sid: 'CH0001' })),
        'Deleted conversation CH0001 ("Support") and 1 message',
      );
      const gone = await call('fetch_conversation', { conversation_sid: 'CH0001' });
      assert.equal(gone.isError, true);
      assert.equal(textOf(gone), 'Conversation CH0001 not found');

      assert.match(
        textOf(await call('create_execution', { flow_sid: 'FW0001', to: '+15558675310', from: '+15017122661' })),
        /^Started execution FN0001 of flow FW0001/,
      );
      assert.equal(textOf(await call('delete_flow', { flow_sid: 'FW0001' })), 'Deleted flow FW0001 ("Appointment reminder")');
      const noFlow = await call('create_execution', { flow_sid: 'FW0001', to: '+15558675310', from: '+15017122661' });
      assert.equal(noFlow.isError, true);
      assert.equal(textOf(noFlow), 'Flow FW0001 not found');
    } finally {
      await client.close();
    }
  });
});
