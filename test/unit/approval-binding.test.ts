import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { approvalBinding, argumentsHash } from '../../src/approval/binding.js';
import { isApprovalId, newApprovalId } from '../../src/approval/ids.js';

describe('approval ids', () => {
  it('are apr_ and 16 lowercase base32 characters, all different', () => {
    const ids = new Set(Array.from({ length: 2000 }, newApprovalId));
    assert.equal(ids.size, 2000);
    const chars = new Set<string>();
    for (const id of ids) {
      assert.match(id, /^apr_[a-z2-7]{16}$/);
      assert.ok(isApprovalId(id));
      for (const c of id.slice(4)) chars.add(c);
    }
    assert.equal(chars.size, 32, 'every base32 character turns up');
    assert.equal(isApprovalId('apr_AAAAAAAAAAAAAAAA'), false);
    assert.equal(isApprovalId('apr_aaaaaaaaaaaaaaa1'), false);
  });
});

describe('approval binding', () => {
  const parts = { tool: 'write_file', argumentsHash: argumentsHash({ a: 1 }), ruleVersion: 'r1', scope: 'session', session: 's1' } as const;

  it('hashes the arguments’ canonical JSON: key order does not matter, values do', () => {
    assert.match(argumentsHash({ a: 1 }), /^[0-9a-f]{64}$/);
    assert.equal(argumentsHash({ a: 1, b: { c: [1, 2], d: 'x' } }), argumentsHash({ b: { d: 'x', c: [1, 2] }, a: 1 }));
    assert.notEqual(argumentsHash({ a: 1 }), argumentsHash({ a: '1' }));
    assert.notEqual(argumentsHash({ a: [1, 2] }), argumentsHash({ a: [2, 1] }));
  });

  it('changes with the tool, the arguments, the rule version and, under session scope, the session', () => {
    const base = approvalBinding(parts);
    assert.match(base, /^[0-9a-f]{64}$/);
    assert.equal(approvalBinding({ ...parts }), base);
    for (const change of [{ tool: 'write_files' }, { argumentsHash: argumentsHash({ a: 2 }) }, { ruleVersion: 'r2' }, { session: 's2' }, { scope: 'global' as const }]) {
      assert.notEqual(approvalBinding({ ...parts, ...change }), base, JSON.stringify(change));
    }
  });

  it('under global scope ignores the session', () => {
    const global = { ...parts, scope: 'global' as const };
    assert.equal(approvalBinding({ ...global, session: 's1' }), approvalBinding({ ...global, session: 's2' }));
    // A session literally named `*` does not share the global grant.
    assert.notEqual(approvalBinding({ ...parts, session: '*' }), approvalBinding(global));
  });

  it('keeps field boundaries: moving text from one field to the next gives another binding', () => {
    const a = approvalBinding({ ...parts, tool: 'a', ruleVersion: 'bc' });
    const b = approvalBinding({ ...parts, tool: 'ab', ruleVersion: 'c' });
    assert.notEqual(a, b);
    assert.notEqual(approvalBinding({ ...parts, tool: 'x","y' }), approvalBinding({ ...parts, tool: 'x', ruleVersion: 'y' }));
  });
});
