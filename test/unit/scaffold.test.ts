import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parsePolicy } from '../../src/policy/load.js';
import type { DiscoveredTool } from '../../src/scan/discover.js';
import { buildScaffold, parametersOf, scaffoldJson, scaffoldYaml, shellJoin, wrap } from '../../src/scan/scaffold.js';

const server = { name: 'test-server', version: '1.2.3' };
const meta = (recommended: boolean) => ({ command: ['node', 'my server.js', '--flag'], date: new Date('2026-03-04T10:00:00Z'), recommended });

const tools: DiscoveredTool[] = [
  { name: 'delete_repo', description: 'Delete a repository.', inputSchema: { type: 'object', properties: { repo: { type: 'string' } }, required: ['repo'] } },
  { name: 'list_repos', description: 'List repositories.' },
  { name: 'get_repo', description: 'Get one repository.' },
  { name: 'run_workflow', description: 'Run a workflow.', inputSchema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } },
  {
    name: 'create_refund',
    description: 'Refund a charge.',
    inputSchema: {
      type: 'object',
      properties: { reason: { type: 'string' }, amount: { type: 'integer' }, charge: { type: 'string' } },
      required: ['charge'],
    },
  },
  { name: 'create_issue', description: 'Create an issue.' },
];

/** Tool names that a YAML writer must quote, or that look like other things. */
const awkward = ['yes', 'no', 'on', 'null', '~', 'true', '123', '1e3', '0x1F', 'a: b', '#hash', '- dash', '[x]', '{y}', '"q"', "it's", 'tab\there', 'with space', 'unicodé', '&anchor', '*alias', '!tag', '%pct', '@at', '`tick`', 'a.b', 'a#1', '? q', '|', '>'];

function toolNames(yamlText: string): string[] {
  return Object.keys((parse(yamlText) as { tools: Record<string, unknown> }).tools);
}

function assertLoads(yamlText: string): void {
  const result = parsePolicy(yamlText, 'scaffold.yaml');
  assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.issues, null, 2) + '\n' + yamlText);
}

describe('scaffold: grouping and order', () => {
  it('groups by category (read, write, execute, financial, destructive) and sorts by name', () => {
    const text = scaffoldYaml(buildScaffold({ server, tools }), meta(false));
    assert.deepEqual(toolNames(text), ['get_repo', 'list_repos', 'create_issue', 'run_workflow', 'create_refund', 'delete_repo']);
    const sections = [...text.matchAll(/── (\w+) tools \((\d+)\) ──/g)].map((m) => `${m[1]} ${m[2]}`);
    assert.deepEqual(sections, ['Read 2', 'Write 1', 'Execute 1', 'Financial 1', 'Destructive 1']);
  });

  it('writes a header with the server, counts per category, date and the exact command', () => {
    const text = scaffoldYaml(buildScaffold({ server, tools }), meta(false));
    const head = text.slice(0, text.indexOf('version:'));
    assert.match(head, /test-server 1\.2\.3/);
    assert.match(head, /6 tools: 2 read, 1 write, 1 execute, 1 financial, 1 destructive/);
    assert.match(head, /2026-03-04/);
    assert.match(head, /intercept scan -- node 'my server\.js' --flag/);
  });

  it('comments each tool with its description, parameters (required first), category, risk and reason', () => {
    const text = scaffoldYaml(buildScaffold({ server, tools }), meta(false));
    const block = text.slice(text.indexOf('# Refund a charge.'), text.indexOf('create_refund:'));
    assert.match(block, /Parameters:\n\s+#\s+charge \(string, required\)\n\s+#\s+reason \(string\)\n\s+#\s+amount \(integer\)/);
    assert.match(block, /Category: Financial, risk 4\/5 \(name has "create … refund"\)/);
  });
});

describe('scaffold: recommended rules', () => {
  it('without --recommended every tool is allowed and the recommendation is commented out', () => {
    const text = scaffoldYaml(buildScaffold({ server, tools }), meta(false));
    const policy = parse(text) as { tools: Record<string, { rules: unknown[] }> };
    for (const name of Object.keys(policy.tools)) assert.deepEqual(policy.tools[name], { rules: [] }, name);
    assert.match(text, /#   - action: deny\n\s+#     reason: "Destructive tool/);
    assert.match(text, /#     rate_limit: \{ max: 10, window: 60 \}\n\s+#     validate: \{ required_args: true \}/);
    assertLoads(text);
  });

  it('with --recommended the rules are enabled, per category', () => {
    const text = scaffoldYaml(buildScaffold({ server, tools }), meta(true));
    assertLoads(text);
    const policy = parse(text) as { tools: Record<string, { rules: Record<string, unknown>[] }> };
    assert.deepEqual(policy.tools.get_repo!.rules, [{ action: 'allow', rate_limit: { max: 60, window: 60 } }]);
    assert.deepEqual(policy.tools.create_issue!.rules, [{ action: 'allow', rate_limit: { max: 30, window: 60 } }]);
    assert.deepEqual(policy.tools.run_workflow!.rules, [
      { action: 'allow', rate_limit: { max: 10, window: 60 }, validate: { required_args: true } },
    ]);
    assert.deepEqual(policy.tools.create_refund!.rules, [
      { action: 'allow', rate_limit: { max: 5, window: 60 }, validate: { required_args: true } },
      {
        name: 'amount cap',
        action: 'allow',
        conditions: [{ path: 'args.amount', op: 'lte', value: 100 }],
        on_deny: 'amount is above the cap this policy allows',
      },
    ]);
    assert.match(text, /SET THE CAP/);
    assert.equal(policy.tools.delete_repo!.rules[0]!.action, 'deny');
    assert.ok(typeof policy.tools.delete_repo!.rules[0]!.reason === 'string');
  });

  it('a financial tool without a numeric amount-like argument gets no cap', () => {
    const scaffold = buildScaffold({ server, tools: [{ name: 'cancel_subscription', inputSchema: { type: 'object', properties: { amount: { type: 'string' } } } }] });
    assert.equal(scaffold.tools[0]!.category, 'financial');
    assert.equal(scaffold.tools[0]!.recommended.rules.length, 1);
  });
});

describe('scaffold: names that need quoting', () => {
  const odd: DiscoveredTool[] = awkward.map((name, i) => ({ name, description: i % 2 ? 'Delete things' : 'Get things' }));
  for (const recommended of [false, true]) {
    it(`every name survives as the same key, and the file loads (recommended: ${recommended})`, () => {
      const text = scaffoldYaml(buildScaffold({ server, tools: odd }), meta(recommended));
      assert.deepEqual(new Set(toolNames(text)), new Set(awkward));
      assertLoads(text);
      const result = parsePolicy(text, 'x.yaml');
      assert.ok(result.ok);
      assert.deepEqual(new Set(result.policy.tools.map((t) => t.name)), new Set(awkward));
    });
  }

  it('YAML 1.1 booleans are quoted', () => {
    const text = scaffoldYaml(buildScaffold({ server, tools: [{ name: 'yes' }, { name: 'off' }] }), meta(false));
    assert.match(text, /^ {2}"yes":$/m);
    assert.match(text, /^ {2}"off":$/m);
  });

  it('leaves out "*" and empty names, which cannot be tool keys, and says so', () => {
    const scaffold = buildScaffold({ server, tools: [{ name: '*' }, { name: '' }, { name: 'get_x' }] });
    assert.deepEqual(scaffold.skipped, ['*', '']);
    const text = scaffoldYaml(scaffold, meta(true));
    assert.deepEqual(toolNames(text), ['get_x']);
    assert.match(text, /Not listed: "\*", ""/);
    assertLoads(text);
  });

  it('descriptions with newlines, control characters and YAML syntax stay inside comments', () => {
    const description = 'Line one\r\nline two: {x}\n\n---\ntools:\n  evil: {rules: [{action: deny}]}\u0007\u2028end';
    const text = scaffoldYaml(buildScaffold({ server: { name: 'n\nx: 1', version: '#' }, tools: [{ name: 'get_x', description }] }), meta(false));
    assertLoads(text);
    assert.deepEqual(toolNames(text), ['get_x']);
  });
});

describe('scaffold: every tool of the labelled set', () => {
  const labelled = JSON.parse(readFileSync(new URL('../fixtures/classifier/labelled-tools.json', import.meta.url), 'utf8')) as DiscoveredTool[];
  const unique = [...new Map(labelled.map((t) => [t.name, t])).values()];
  for (const recommended of [false, true]) {
    it(`loads with no issues (recommended: ${recommended})`, () => {
      const text = scaffoldYaml(buildScaffold({ server, tools: unique }), meta(recommended));
      assertLoads(text);
      assert.equal(toolNames(text).length, unique.length);
    });
  }
});

describe('scaffold: JSON format', () => {
  it('has the server and every tool with its classification, parameters and recommended rules', () => {
    const doc = JSON.parse(scaffoldJson(buildScaffold({ server, tools }))) as {
      server: unknown;
      tools: { name: string; category: string; risk: number; reason: string; annotations: unknown; parameters: unknown; recommended: { rules: unknown[] }; description: string }[];
    };
    assert.deepEqual(doc.server, server);
    assert.deepEqual(doc.tools.map((t) => t.name), ['get_repo', 'list_repos', 'create_issue', 'run_workflow', 'create_refund', 'delete_repo']);
    const refund = doc.tools.find((t) => t.name === 'create_refund')!;
    assert.equal(refund.category, 'financial');
    assert.equal(refund.risk, 4);
    assert.equal(refund.description, 'Refund a charge.');
    assert.deepEqual(refund.annotations, {});
    assert.deepEqual(refund.parameters, [
      { name: 'charge', type: 'string', required: true },
      { name: 'reason', type: 'string', required: false },
      { name: 'amount', type: 'integer', required: false },
    ]);
    assert.equal(refund.recommended.rules.length, 2);
    assert.deepEqual(Object.keys(refund).sort(), ['annotations', 'category', 'description', 'name', 'parameters', 'reason', 'recommended', 'risk']);
  });
});

describe('helpers', () => {
  it('parametersOf reads types, unions, arrays and enums', () => {
    assert.deepEqual(
      parametersOf({
        type: 'object',
        properties: { a: { type: ['string', 'null'] }, b: { type: 'array', items: { type: 'number' } }, c: { enum: ['x'] }, d: { anyOf: [{ type: 'string' }, { type: 'integer' }] }, e: {} },
        required: ['e'],
      }),
      [
        { name: 'e', type: 'any', required: true },
        { name: 'a', type: 'string | null', required: false },
        { name: 'b', type: 'number[]', required: false },
        { name: 'c', type: 'enum', required: false },
        { name: 'd', type: 'string | integer', required: false },
      ],
    );
    assert.deepEqual(parametersOf(undefined), []);
  });

  it('wrap keeps lines within the width', () => {
    const lines = wrap('word '.repeat(100), 40);
    assert.ok(lines.length > 1);
    for (const l of lines) assert.ok(l.length <= 40, l);
  });

  it('shellJoin quotes what a shell would split', () => {
    assert.equal(shellJoin(['node', 'a b.js', "it's", '--x=1']), `node 'a b.js' 'it'\\''s' --x=1`);
  });
});
