import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CATEGORIES, classify, nameTokens, type Category, type ToolAnnotations } from '../../src/engine/risk.js';

interface Labelled {
  server: string;
  name: string;
  description: string;
  annotations?: ToolAnnotations;
  expected: Category;
}

const labelled = JSON.parse(
  readFileSync(new URL('../fixtures/classifier/labelled-tools.json', import.meta.url), 'utf8'),
) as Labelled[];

describe('nameTokens', () => {
  const cases: [string, string[]][] = [
    ['create_conversation', ['create', 'conversation']],
    ['get-tiny-image', ['get', 'tiny', 'image']],
    ['deleteConfluencePage', ['delete', 'confluence', 'page']],
    ['TwilioStudioV2--DeleteFlow', ['twilio', 'studio', 'v2', 'delete', 'flow']],
    ['TwilioApiV2010--FetchAccount', ['twilio', 'api', 'v2010', 'fetch', 'account']],
    ['Run-Funnels-Query', ['run', 'funnels', 'query']],
    ['list_HTTPRoutes', ['list', 'http', 'routes']],
    ['notion.search/pages', ['notion', 'search', 'pages']],
  ];
  for (const [name, tokens] of cases) {
    it(name, () => assert.deepEqual(nameTokens(name), tokens));
  }
});

describe('classify: rules', () => {
  const cases: { tool: Parameters<typeof classify>[0]; category: Category; risk?: number }[] = [
    // Destructive words anywhere in the name, whatever else it says.
    { tool: { name: 'TwilioStudioV2--DeleteFlow' }, category: 'destructive', risk: 5 },
    { tool: { name: 'get_and_purge_cache' }, category: 'destructive' },
    // The leading verb: reliable verbs first, nouns that look like verbs after.
    { tool: { name: 'list_runs' }, category: 'read', risk: 1 },
    { tool: { name: 'run_pipeline' }, category: 'execute', risk: 4 },
    { tool: { name: 'get_job_logs' }, category: 'read' },
    { tool: { name: 'pull_request_read' }, category: 'read' },
    { tool: { name: 'create_or_update_file' }, category: 'write', risk: 3 },
    { tool: { name: 'get_or_create_user' }, category: 'write' },
    // Money: financial over write and execute; reading money is read at risk 2.
    { tool: { name: 'create_refund' }, category: 'financial', risk: 4 },
    { tool: { name: 'pay_order' }, category: 'financial', risk: 5 },
    { tool: { name: 'list_invoices' }, category: 'read', risk: 2 },
    { tool: { name: 'transfer_issue' }, category: 'write' },
    { tool: { name: 'manage_notification_subscription' }, category: 'write' },
    { tool: { name: 'create_incoming_phone_number', description: 'Purchase a phone number' }, category: 'financial' },
    // Starting an execution is execute; creating a task is write.
    { tool: { name: 'create_execution' }, category: 'execute' },
    { tool: { name: 'create_task' }, category: 'write' },
    // Arbitrary code is execute at risk 5.
    { tool: { name: 'execute_sql' }, category: 'execute', risk: 5 },
    // Sending a message is write, as in the catalogue.
    { tool: { name: 'send_message' }, category: 'write' },
    // No verb in the name: the description's first sentence.
    { tool: { name: 'acr', description: 'List Azure Container Registry instances. Can also delete them.' }, category: 'read' },
    { tool: { name: 'prune', description: 'Clear all stored data' }, category: 'destructive' },
    // The description tightens: a destructive verb in its first sentence.
    { tool: { name: 'manage_k8s_resource', description: 'Read/create/update/delete Kubernetes resources' }, category: 'destructive' },
    // Nothing recognised: write until reviewed.
    { tool: { name: 'frobnicate', description: 'Frobnicates the widget' }, category: 'write', risk: 3 },
    { tool: { name: 'zz' }, category: 'write' },
    // Secrets read at risk 2.
    { tool: { name: 'get-env' }, category: 'read', risk: 2 },
  ];
  for (const { tool, category, risk } of cases) {
    it(`${tool.name} -> ${category}${risk ? ` ${risk}` : ''}`, () => {
      const c = classify(tool);
      assert.equal(c.category, category, c.reason);
      if (risk !== undefined) assert.equal(c.risk, risk, c.reason);
      assert.ok(c.reason.length > 0);
    });
  }
});

describe('classify: annotations only tighten', () => {
  it('readOnlyHint: true does not make a destructive name read', () => {
    const c = classify({ name: 'delete_repo', annotations: { readOnlyHint: true, destructiveHint: false } });
    assert.equal(c.category, 'destructive');
  });
  it('readOnlyHint: true does not make an unknown or write tool read', () => {
    assert.equal(classify({ name: 'frobnicate', annotations: { readOnlyHint: true } }).category, 'write');
    const c = classify({ name: 'create_issue', annotations: { readOnlyHint: true } });
    assert.equal(c.category, 'write');
    assert.match(c.reason, /readOnlyHint: true ignored/);
  });
  it('destructiveHint: true with readOnlyHint: false makes a tool destructive', () => {
    const c = classify({ name: 'write_file', annotations: { readOnlyHint: false, destructiveHint: true } });
    assert.equal(c.category, 'destructive');
    assert.match(c.reason, /destructiveHint/);
  });
  it('destructiveHint: true without readOnlyHint: false changes nothing (the hint is meaningless then)', () => {
    assert.equal(classify({ name: 'write_file', annotations: { destructiveHint: true } }).category, 'write');
    assert.equal(classify({ name: 'get_file', annotations: { readOnlyHint: true, destructiveHint: true } }).category, 'read');
  });
  it('readOnlyHint: false makes a read-looking tool write', () => {
    assert.equal(classify({ name: 'get_thing', annotations: { readOnlyHint: false } }).category, 'write');
  });
  it('openWorldHint: true raises a read to risk 2', () => {
    assert.equal(classify({ name: 'list_things' }).risk, 1);
    assert.equal(classify({ name: 'list_things', annotations: { openWorldHint: true } }).risk, 2);
  });
});

describe('classify: labelled set of real tools', () => {
  it(`has at least 150 tools in every category`, () => {
    assert.ok(labelled.length >= 150, `${labelled.length} tools`);
    for (const c of CATEGORIES) assert.ok(labelled.some((t) => t.expected === c), `no ${c} tool`);
  });

  it('reaches the accuracy floor, and never calls a destructive tool anything else', (t) => {
    const perCategory = new Map<Category, { n: number; right: number }>(CATEGORIES.map((c) => [c, { n: 0, right: 0 }]));
    const misses: string[] = [];
    const destructiveMissed: string[] = [];
    let right = 0;
    for (const tool of labelled) {
      const got = classify(tool);
      const row = perCategory.get(tool.expected)!;
      row.n++;
      if (got.category === tool.expected) {
        row.right++;
        right++;
      } else {
        misses.push(`  ${tool.server} ${tool.name}: expected ${tool.expected}, got ${got.category} (${got.reason})`);
        if (tool.expected === 'destructive') destructiveMissed.push(tool.name);
      }
    }
    const pct = (a: number, b: number) => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`);
    const table = [
      'category      tools  correct  accuracy',
      ...CATEGORIES.map((c) => {
        const { n, right: r } = perCategory.get(c)!;
        return `${c.padEnd(12)}  ${String(n).padStart(5)}  ${String(r).padStart(7)}  ${pct(r, n).padStart(8)}`;
      }),
      `${'overall'.padEnd(12)}  ${String(labelled.length).padStart(5)}  ${String(right).padStart(7)}  ${pct(right, labelled.length).padStart(8)}`,
    ];
    for (const line of [...table, `misclassified (${misses.length}):`, ...misses]) t.diagnostic(line);

    assert.deepEqual(destructiveMissed, [], 'every destructive tool must be classified destructive');
    const readButDestructive = labelled.filter((tool) => tool.expected === 'destructive' && classify(tool).category === 'read');
    assert.equal(readButDestructive.length, 0);
    assert.ok(right / labelled.length >= 0.9, `accuracy ${pct(right, labelled.length)} is below 90%`);
  });
});
