import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { formatIssues } from '../../src/policy/format.js';
import { parsePolicy } from '../../src/policy/load.js';
import { OPERATORS } from '../../src/policy/model.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/policies/', import.meta.url));
const SCHEMA_FILE = fileURLToPath(new URL('../../schema/policy.schema.json', import.meta.url));

type SchemaNode = { [key: string]: unknown };
const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as SchemaNode;
const validate = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(schema);

function schemaErrors(text: string): string {
  return (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join('\n') || text;
}

const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml'));

describe('policy JSON Schema: valid fixtures', () => {
  it('has fixtures to check', () => {
    assert.ok(fixtures.length >= 10);
  });
  for (const name of fixtures) {
    it(`accepts ${name}, as the loader does`, () => {
      const text = readFileSync(join(FIXTURES, name), 'utf8');
      assert.ok(validate(parse(text)), schemaErrors(text));
      const result = parsePolicy(text, name);
      assert.ok(result.ok, result.ok ? '' : formatIssues(result.issues));
    });
  }
});

/** Mistakes both the schema and the loader must reject. */
const INVALID: [string, string][] = [
  ['unknown top-level key', 'tool: {}\n'],
  ['unknown rule key', 'tools:\n  t:\n    rules:\n      - action: allow\n        rate-limit: 5/hour\n'],
  ['unknown tool entry key', 'tools:\n  t:\n    rule: []\n'],
  ['bad action', 'tools:\n  t:\n    rules:\n      - action: block\n'],
  ['require_approval with a rate_limit', 'tools:\n  t:\n    rules:\n      - action: require_approval\n        rate_limit: 5/hour\n'],
  ['require_approval with validate', 'tools:\n  t:\n    rules:\n      - action: require_approval\n        validate: {required_args: true}\n'],
  ['require_approval with a zero timeout', 'tools:\n  t:\n    rules:\n      - action: require_approval\n        timeout: 0\n'],
  ['require_approval with a bad timeout', 'tools:\n  t:\n    rules:\n      - action: require_approval\n        timeout: 5x\n'],
  ['require_approval with a bad on_timeout', 'tools:\n  t:\n    rules:\n      - action: require_approval\n        on_timeout: wait\n'],
  ['require_approval with a bad approval_mode', 'tools:\n  t:\n    rules:\n      - action: require_approval\n        approval_mode: poll\n'],
  ['timeout on an allow rule', 'tools:\n  t:\n    rules:\n      - action: allow\n        timeout: 5m\n'],
  ['scope on a rule that is not require_approval', 'tools:\n  t:\n    rules:\n      - rate_limit: {max: 5, window: 60}\n        scope: global\n'],
  ['v1 require_approval with conditions and no name', 'version: "1"\ntools:\n  t:\n    rules:\n      - action: require_approval\n        conditions: [{path: args.a, op: eq, value: 1}]\n'],
  ['bad operator', 'tools:\n  t:\n    rules:\n      - name: a\n        conditions: [{path: args.a, op: equals, value: 1}]\n'],
  ['condition without value', 'tools:\n  t:\n    rules:\n      - name: a\n        conditions: [{path: args.a, op: eq}]\n'],
  ['condition path without prefix', 'tools:\n  t:\n    rules:\n      - name: a\n        conditions: [{path: amount, op: eq, value: 1}]\n'],
  ['numeric operator with a string', 'tools:\n  t:\n    rules:\n      - name: a\n        conditions: [{path: args.a, op: lt, value: "5"}]\n'],
  ['in with a scalar', 'tools:\n  t:\n    rules:\n      - name: a\n        conditions: [{path: args.a, op: in, value: usd}]\n'],
  ['exists with a string', 'tools:\n  t:\n    rules:\n      - name: a\n        conditions: [{path: args.a, op: exists, value: "yes"}]\n'],
  ['bad state window', 'tools:\n  t:\n    rules:\n      - name: a\n        state: {counter: c, window: week}\n'],
  ['bad rate_limit string', 'tools:\n  t:\n    rules:\n      - name: a\n        rate_limit: 5/week\n'],
  ['rate_limit map with an unknown key', 'tools:\n  t:\n    rules:\n      - rate_limit: {max: 5, window: 60, per: user}\n'],
  ['rate_limit map with a quoted max', 'tools:\n  t:\n    rules:\n      - rate_limit: {max: "5", window: 60}\n'],
  ['rate_limit map with a bad duration', 'tools:\n  t:\n    rules:\n      - rate_limit: {max: 5, window: 5x}\n'],
  ['deny with conditions', 'tools:\n  t:\n    rules:\n      - name: a\n        action: deny\n        conditions: [{path: args.a, op: eq, value: 1}]\n'],
  ['evaluate rule checking nothing', 'tools:\n  t:\n    rules:\n      - name: a\n'],
  ['conditions without a name', 'tools:\n  t:\n    rules:\n      - conditions: [{path: args.a, op: eq, value: 1}]\n'],
  ['on_deny and reason', 'tools:\n  t:\n    rules:\n      - action: deny\n        on_deny: a\n        reason: b\n'],
  ['empty validate', 'tools:\n  t:\n    rules:\n      - validate: {}\n'],
  ['default in capitals', 'default: Deny\n'],
  ['version 2', 'version: "2"\n'],
  ['hide as a scalar', 'hide: delete_repo\n'],
  ['key a single path without brackets', 'tools:\n  t:\n    rules:\n      - rate_limit: {max: 5, window: 60, key: args.to}\n'],
  ['key an unknown word', 'tools:\n  t:\n    rules:\n      - rate_limit: {max: 5, window: 60, key: all}\n'],
  ['key an empty list', 'tools:\n  t:\n    rules:\n      - rate_limit: {max: 5, window: 60, key: []}\n'],
  ['key entry without args.', 'tools:\n  t:\n    rules:\n      - name: a\n        state: {counter: c, window: hour, key: [to]}\n'],
  ['key entry with an empty segment', 'tools:\n  t:\n    rules:\n      - rate_limit: {max: 5, window: 60, key: [args.a..b]}\n'],
  ['key path listed twice', 'tools:\n  t:\n    rules:\n      - rate_limit: {max: 5, window: 60, key: [args.a, args.a]}\n'],
  ['rule-level key with a rate_limit map', 'tools:\n  t:\n    rules:\n      - rate_limit: {max: 5, window: 60}\n        key: [args.to]\n'],
  ['rule-level key with a state block', 'tools:\n  t:\n    rules:\n      - name: a\n        state: {counter: c, window: hour}\n        key: [args.to]\n'],
  ['rule-level key with no counter', 'tools:\n  t:\n    rules:\n      - name: a\n        conditions: [{path: args.a, op: eq, value: 1}]\n        key: args\n'],
];

describe('policy JSON Schema: invalid snippets', () => {
  for (const [name, text] of INVALID) {
    it(`rejects ${name}, as the loader does`, () => {
      assert.equal(validate(parse(text)), false, 'schema accepted it');
      assert.equal(parsePolicy(text, 'p.yaml').ok, false, 'loader accepted it');
    });
  }
});

describe('policy JSON Schema: shape', () => {
  it('is draft-07', () => {
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  });

  it('lists exactly the operators the loader knows', () => {
    const condition = (schema.definitions as SchemaNode).condition as SchemaNode;
    const op = (condition.properties as SchemaNode).op as SchemaNode;
    assert.deepEqual(op.enum, [...OPERATORS]);
  });

  it('describes every property and closes every object', () => {
    const missing: string[] = [];
    const open: string[] = [];
    const walk = (node: unknown, where: string): void => {
      if (Array.isArray(node)) {
        node.forEach((n, i) => walk(n, `${where}[${i}]`));
        return;
      }
      if (!node || typeof node !== 'object') return;
      const obj = node as SchemaNode;
      if (obj.properties && typeof obj.properties === 'object' && obj.type !== undefined) {
        if (obj.additionalProperties !== false) open.push(where);
        for (const [key, prop] of Object.entries(obj.properties as SchemaNode)) {
          const p = prop as SchemaNode;
          const target = typeof p.$ref === 'string' ? resolveRef(p.$ref) : p;
          if (typeof target.description !== 'string' || target.description === '') missing.push(`${where}.${key}`);
        }
      }
      for (const [key, value] of Object.entries(obj)) walk(value, `${where}.${key}`);
    };
    walk(schema, '#');
    assert.deepEqual(missing, []);
    assert.deepEqual(open, []);
  });
});

function resolveRef(ref: string): SchemaNode {
  return ref
    .slice(2)
    .split('/')
    .reduce<SchemaNode>((node, part) => node[part] as SchemaNode, schema);
}
