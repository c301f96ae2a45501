// Deciding with identities: conditions on who calls (present, absent, nested claims, lists,
// prototype names), `scope: identity` counters bound to their subject in requirements and
// charges, the refusal of a caller without a subject, the storage keys (no scope, session or
// subject meets another), and the policy view a session's interceptor is handed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compile, type CompiledPolicy } from '../../src/engine/compile.js';
import { formatDecision } from '../../src/engine/explain.js';
import type { CounterRef, DecideInput, Decision, Identity } from '../../src/engine/types.js';
import { formatIssues } from '../../src/policy/format.js';
import { parsePolicy } from '../../src/policy/load.js';
import { policyFor } from '../../src/proxy/caller.js';
import { storageKey } from '../../src/state/keys.js';

const NOW = 1_700_000_000_000;

function policy(text: string): CompiledPolicy {
  const result = parsePolicy(text, 'policy.yaml');
  if (!result.ok) assert.fail(formatIssues(result.issues));
  return compile(result.policy);
}

function who(extra: Partial<Identity> = {}): Identity {
  return { scopes: [], claims: {}, ...extra };
}

function decide(p: CompiledPolicy, tool: string, identity?: Identity, extra: Partial<DecideInput> = {}): Decision {
  return p.decide({ call: { name: tool, args: {} }, now: NOW, identity, ...extra }, { trace: true });
}

function verdict(d: Decision): string {
  return d.allowed ? 'allow' : `deny ${d.denial!.kind}`;
}

const CONDITIONS = policy(`
tools:
  pay:
    rules:
      - name: finance
        action: allow
        conditions: [{ path: identity.claims.groups, op: contains, value: finance }]
  admin:
    rules:
      - name: role
        action: allow
        conditions: [{ path: identity.claims.org.role, op: in, value: [admin, owner] }]
  write:
    rules:
      - name: scope
        action: allow
        conditions: [{ path: identity.scopes, op: contains, value: "files:write" }]
  any_of:
    rules:
      - name: one of
        action: allow
        conditions: [{ path: identity.scopes, op: in, value: [admin, ops] }]
  not_admin:
    rules:
      - name: none of
        action: allow
        conditions: [{ path: identity.claims.roles, op: not_in, value: [admin] }]
  named:
    rules:
      - name: known caller
        action: allow
        conditions:
          - { path: identity.sub, op: exists, value: true }
          - { path: identity.client_id, op: neq, value: legacy }
  proto:
    rules:
      - name: own claims only
        action: allow
        conditions: [{ path: identity.claims.constructor, op: exists, value: true }]
  proto_nested:
    rules:
      - name: own nested claims only
        action: allow
        conditions: [{ path: identity.claims.__proto__.admin, op: eq, value: true }]
`);

describe('conditions on identity.*', () => {
  it('a list claim: contains finance lets finance through and no one else', () => {
    assert.equal(verdict(decide(CONDITIONS, 'pay', who({ claims: { groups: ['ops', 'finance'] } }))), 'allow');
    const ops = decide(CONDITIONS, 'pay', who({ sub: 'bob', claims: { groups: ['ops'] } }));
    assert.equal(verdict(ops), 'deny condition');
    assert.equal(ops.denial!.message, 'Denied by rule "finance": identity.claims.groups must contain "finance", got ["ops"]');
  });

  it('a missing claim denies, as a missing argument does, with the same wording', () => {
    for (const identity of [undefined, who(), who({ sub: 'carol', claims: { group: 'finance' } })]) {
      const d = decide(CONDITIONS, 'pay', identity);
      assert.equal(d.denial?.message, 'Denied by rule "finance": identity.claims.groups is missing');
      assert.equal(d.trace[0]!.conditions[0]!.missing, true);
    }
  });

  it('nested claims are walked like nested arguments', () => {
    assert.equal(verdict(decide(CONDITIONS, 'admin', who({ claims: { org: { role: 'owner' } } }))), 'allow');
    assert.equal(verdict(decide(CONDITIONS, 'admin', who({ claims: { org: { role: 'member' } } }))), 'deny condition');
    assert.equal(verdict(decide(CONDITIONS, 'admin', who({ claims: { org: 'acme' } }))), 'deny condition');
    assert.equal(verdict(decide(CONDITIONS, 'admin', who({ claims: { org: ['owner'] } }))), 'deny condition');
  });

  it('scopes: contains asks for one scope; an anonymous caller has none', () => {
    assert.equal(verdict(decide(CONDITIONS, 'write', who({ scopes: ['files:read', 'files:write'] }))), 'allow');
    assert.equal(verdict(decide(CONDITIONS, 'write', who({ scopes: ['files:read'] }))), 'deny condition');
    const anonymous = decide(CONDITIONS, 'write');
    assert.equal(anonymous.denial?.message, 'Denied by rule "scope": identity.scopes must contain "files:write", got []');
  });

  it('a list the caller holds is a set: in = holds one of them, not_in = holds none', () => {
    assert.equal(verdict(decide(CONDITIONS, 'any_of', who({ scopes: ['read', 'ops'] }))), 'allow');
    assert.equal(verdict(decide(CONDITIONS, 'any_of', who({ scopes: ['read'] }))), 'deny condition');
    assert.equal(verdict(decide(CONDITIONS, 'any_of', who())), 'deny condition');
    assert.equal(verdict(decide(CONDITIONS, 'not_admin', who({ claims: { roles: ['dev', 'admin'] } }))), 'deny condition');
    assert.equal(verdict(decide(CONDITIONS, 'not_admin', who({ claims: { roles: ['dev'] } }))), 'allow');
    assert.equal(verdict(decide(CONDITIONS, 'not_admin', who({ claims: { roles: 'admin' } }))), 'deny condition');
    // Missing denies, not_in included.
    assert.equal(verdict(decide(CONDITIONS, 'not_admin', who())), 'deny condition');
  });

  it('sub and client_id: absent is missing (exists false), present compares as a string', () => {
    assert.equal(verdict(decide(CONDITIONS, 'named', who({ sub: 'alice', client_id: 'cli' }))), 'allow');
    assert.equal(verdict(decide(CONDITIONS, 'named', who({ sub: 'alice', client_id: 'legacy' }))), 'deny condition');
    // neq on a missing client_id denies: a missing value never satisfies a check.
    assert.equal(decide(CONDITIONS, 'named', who({ sub: 'alice' })).denial?.message, 'Denied by rule "known caller": identity.client_id is missing');
    assert.equal(decide(CONDITIONS, 'named').denial?.message, 'Denied by rule "known caller": identity.sub is missing');
  });

  it('claim paths follow own properties only: constructor and __proto__ reach no prototype', () => {
    assert.equal(verdict(decide(CONDITIONS, 'proto', who({ sub: 'x' }))), 'deny condition');
    assert.equal(verdict(decide(CONDITIONS, 'proto_nested', who({ claims: {} }))), 'deny condition');
    // Built as JSON.parse builds a token's payload: "__proto__" is then an own claim like any other.
    const claims = JSON.parse('{"__proto__":{"admin":true},"constructor":"c"}') as Record<string, unknown>;
    assert.equal(verdict(decide(CONDITIONS, 'proto_nested', who({ claims }))), 'allow');
    assert.equal(verdict(decide(CONDITIONS, 'proto', who({ claims }))), 'allow');
    assert.equal(({} as Record<string, unknown>).admin, undefined);
  });

  it('explain shows the caller, and a trace shows each identity value as found', () => {
    const d = decide(CONDITIONS, 'pay', who({ sub: 'alice', scopes: ['read'], claims: { groups: ['finance'] } }));
    const text = formatDecision({ name: 'pay', args: {} }, d, who({ sub: 'alice', scopes: ['read'], claims: { groups: ['finance'] } }));
    assert.match(text, /^Caller: sub "alice", scopes \["read"\], claims \{"groups":\["finance"\]\}$/m);
    assert.match(text, /✓ identity\.claims\.groups contains "finance" \(actual: \["finance"\]\)/);
    assert.match(formatDecision({ name: 'pay', args: {} }, decide(CONDITIONS, 'pay', who()), who()), /^Caller: anonymous$/m);
  });

  it('a require_approval rule on a claim asks only for those callers', () => {
    const p = policy(`
tools:
  deploy:
    rules:
      - action: require_approval
        name: interns ask
        conditions: [{ path: identity.claims.title, op: eq, value: intern }]
`);
    assert.equal(decide(p, 'deploy', who({ claims: { title: 'intern' } })).approval?.rule, 'interns ask');
    assert.equal(decide(p, 'deploy', who({ claims: { title: 'lead' } })).approval, undefined);
    assert.equal(decide(p, 'deploy').approval, undefined);
  });
});

const COUNTERS = policy(`
tools:
  search:
    rules:
      - action: allow
        rate_limit: { max: 3, window: 60, scope: identity }
  keyed:
    rules:
      - action: allow
        rate_limit: { max: 1, window: 60, scope: identity, key: [args.repo] }
  reads:
    rules:
      - name: reads
        conditions: [{ path: state.search._rate:search#1, op: lt, value: 2 }]
  both:
    rules:
      - action: allow
        rate_limit: { max: 9, window: 60 }
      - action: allow
        rate_limit: { max: 9, window: 60, scope: global }
`);

describe('scope: identity counters', () => {
  it('charges the caller\'s own count: the ref carries the subject, and its key is the subject\'s', () => {
    const d = decide(COUNTERS, 'search', who({ sub: 'alice' }));
    assert.equal(verdict(d), 'allow');
    const ref = d.charges[0]!.ref;
    assert.deepEqual([ref.id, ref.scope, ref.subject], ['search._rate:search#1', 'identity', 'alice']);
    assert.equal(storageKey(ref, 'session-1'), 'i:alice:search._rate:search#1');
    // Another session of the same caller: the same key.
    assert.equal(storageKey(ref, 'session-2'), 'i:alice:search._rate:search#1');
    assert.match(formatDecision({ name: 'search', args: {} }, d), /scope identity \(sub "alice"\)/);
  });

  it('refuses a caller without a subject rather than counting it in a shared bucket', () => {
    for (const identity of [undefined, who(), who({ client_id: 'cli', scopes: ['read'], claims: { groups: ['x'] } })]) {
      const d = decide(COUNTERS, 'search', identity);
      assert.equal(verdict(d), 'deny identity_required');
      assert.deepEqual(d.charges, []);
      assert.equal(
        d.denial!.message,
        'Denied by rule "search#1": counter search._rate:search#1 is kept per caller (scope: identity) and this call has no identity (no subject)',
      );
    }
  });

  it('a keyed per-caller counter: one bucket per value, per caller', () => {
    const alice = decide(COUNTERS, 'keyed', who({ sub: 'alice' }), { call: { name: 'keyed', args: { repo: 'a/b' } } });
    const bob = decide(COUNTERS, 'keyed', who({ sub: 'bob' }), { call: { name: 'keyed', args: { repo: 'a/b' } } });
    const [a, b] = [alice.charges[0]!.ref, bob.charges[0]!.ref];
    assert.equal(a.id, b.id);
    assert.deepEqual([a.subject, b.subject], ['alice', 'bob']);
    assert.notEqual(storageKey(a, 's'), storageKey(b, 's'));
  });

  it('requirements read the caller\'s own count, and nothing for a caller without a subject', () => {
    const call = { name: 'reads', args: {} };
    const reads = COUNTERS.requirements(call, undefined, who({ sub: 'alice' })).reads;
    assert.deepEqual(reads.map((r) => [r.id, r.subject]), [['search._rate:search#1', 'alice']]);
    assert.deepEqual(COUNTERS.requirements(call).reads, []);
    const counters = new Map([['search._rate:search#1', 1]]);
    assert.equal(verdict(decide(COUNTERS, 'reads', who({ sub: 'alice' }), { counters })), 'allow');
    assert.equal(verdict(decide(COUNTERS, 'reads', who({ sub: 'alice' }), { counters: new Map([['search._rate:search#1', 2]]) })), 'deny condition');
    // No subject: refused before any read is looked at (the gate read none).
    assert.equal(verdict(decide(COUNTERS, 'reads', undefined, { counters })), 'deny identity_required');
  });

  it('session and global counters are untouched by who calls', () => {
    const d = decide(COUNTERS, 'both', who({ sub: 'alice' }));
    assert.deepEqual(d.charges.map((c) => [c.ref.scope, c.ref.subject]), [['session', undefined], ['global', undefined]]);
    assert.equal(verdict(decide(COUNTERS, 'both')), 'allow');
  });
});

describe('storage keys', () => {
  const ref = (scope: CounterRef['scope'], id: string, subject?: string): CounterRef => {
    const r: CounterRef = { id, owner: 'tool', scope, window: { kind: 'rolling', seconds: 60 } };
    if (subject !== undefined) r.subject = subject;
    return r;
  };

  it('an identity key: i:<subject>:<id>, the subject escaped as a session is', () => {
    assert.equal(storageKey(ref('identity', 'x.y', 'alice'), 'abc'), 'i:alice:x.y');
    assert.equal(storageKey(ref('identity', 'x.y', 'a:b'), 'abc', 'p/'), 'p/i:a%3Ab:x.y');
    assert.equal(storageKey(ref('identity', 'x.y', '50%'), 'abc'), 'i:50%25:x.y');
  });

  it('refuses an identity-scoped ref without its subject', () => {
    assert.throws(() => storageKey(ref('identity', 'x.y'), 'abc'), /kept per caller and has no subject/);
  });

  it('never gives two different (scope, session or subject, id) triples the same key', () => {
    const parts = ['', ':', 'a', 'a:b', 'b:c', '%', '%3A', 'a%3Ab', 'g:', 's:', 'i:', 's:a', 'i:a', 'g:a:b', 'c'];
    const seen = new Map<string, string>();
    let triples = 0;
    const note = (key: string, triple: string): void => {
      const before = seen.get(key);
      assert.ok(before === undefined || before === triple, `${triple} and ${before} share ${key}`);
      if (before === undefined) triples++;
      seen.set(key, triple);
    };
    for (const id of parts) {
      note(storageKey(ref('global', id), 'x', 'p'), `global|${id}`);
      for (const owner of parts) {
        note(storageKey(ref('session', id), owner, 'p'), `session|${owner}|${id}`);
        // An identity key depends on the subject only, never on the session.
        note(storageKey(ref('identity', id, owner), 'some-session', 'p'), `identity|${owner}|${id}`);
        note(storageKey(ref('identity', id, owner), owner, 'p'), `identity|${owner}|${id}`);
      }
    }
    assert.equal(triples, parts.length + 2 * parts.length * parts.length);
  });
});

describe("a session's view of the policy in force", () => {
  it('decides with the session\'s identity, and follows a reload', () => {
    let inForce: CompiledPolicy = CONDITIONS;
    const view = policyFor(() => inForce, who({ sub: 'alice', claims: { groups: ['finance'] } }));
    const decideNow = () => view().decide({ call: { name: 'pay', args: {} }, now: NOW });
    assert.equal(verdict(decideNow()), 'allow');
    assert.equal(view(), view(), 'one view per policy in force, not one per call');
    assert.deepEqual(view().requirements({ name: 'search', args: {} }).reads, []);

    inForce = COUNTERS;
    const reads = view().requirements({ name: 'reads', args: {} }).reads;
    assert.deepEqual(reads.map((r) => r.subject), ['alice']);
    assert.equal(view().decide({ call: { name: 'search', args: {} }, now: NOW }).charges[0]!.ref.subject, 'alice');
  });
});
