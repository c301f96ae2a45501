// What the audit trail keeps of a call's arguments under --log-args (redactArgs): the policy's
// drop, keep and hash lists at any depth, and the heuristics for everything they do not name:
// names that say secret, and values that look like credentials, keys or card numbers.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { auditArgRules, hashValue, MAX_ARG_DEPTH, REDACTED, redactArgs, TOO_DEEP, type AuditArgRules } from '../../src/audit/redact.js';
import { compile } from '../../src/engine/compile.js';
import { formatIssues } from '../../src/policy/format.js';
import { parsePolicy } from '../../src/policy/load.js';

const NONE: AuditArgRules = { keep: [], hash: [], drop: [] };
const rules = (r: Partial<AuditArgRules>): AuditArgRules => ({ ...NONE, ...r });
const sha256 = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;

/** What the trail keeps of one argument sent on its own, with no lists. */
const stored = (name: string, value: unknown): unknown => redactArgs({ [name]: value }, NONE)[name];
/** What the trail keeps of a string sent under a name that says nothing. */
const storedText = (value: string): unknown => stored('text', value);

describe('redactArgs: the policy lists', () => {
  it('drops, keeps and hashes at nested paths, and leaves the rest to the heuristics', () => {
    const args = {
      order: { id: 'o-1', customer: { email: 'ann@example.com', phone: '+15550100' }, blob: 'JVBERi0x' },
      amount: 4200,
    };
    const out = redactArgs(args, rules({ drop: ['args.order.blob'], hash: ['args.order.customer.email'], keep: ['args.order.id'] }));
    assert.deepEqual(out, {
      order: { id: 'o-1', customer: { email: sha256('"ann@example.com"'), phone: '+15550100' } },
      amount: 4200,
    });
  });

  it('drops a whole member, and hashes a whole object or array', () => {
    const out = redactArgs({ a: 1, card: { number: '4242424242424242', exp: '12/30' }, tags: ['x', 'y'] }, rules({ drop: ['args.a'], hash: ['args.card', 'args.tags'] }));
    assert.deepEqual(out, { card: hashValue({ number: '4242424242424242', exp: '12/30' }), tags: sha256('["x","y"]') });
  });

  it('reaches into arrays by index, and an array closes up over what is dropped', () => {
    const args = { items: [{ sku: 'a', card: '1' }, { sku: 'b', card: '2' }, { sku: 'c', card: '3' }], files: ['f0', 'f1', 'f2', 'f3'] };
    const out = redactArgs(args, rules({ drop: ['args.files.0', 'args.files.2', 'args.items.1'], hash: ['args.items.2.card'] }));
    assert.deepEqual(out, {
      items: [
        { sku: 'a', card: '1' },
        { sku: 'c', card: sha256('"3"') },
      ],
      files: ['f1', 'f3'],
    });
  });

  it('keeps a kept value as sent, even where its name or content looks secret', () => {
    const args = { password: 'hunter2', auth: { token: 'tok', note: 'Bearer abc123def456ghi789' }, url: 'https://u:pw@host/' };
    const out = redactArgs(args, rules({ keep: ['args.password', 'args.auth', 'args.url'] }));
    assert.deepEqual(out, args);
  });

  it('drops or hashes a path inside a kept value', () => {
    const args = { headers: { 'user-agent': 'curl/8', cookie: 'sid=1', authorization: 'Basic dXNlcjpwYXNzd29yZA==' } };
    const out = redactArgs(args, rules({ keep: ['args.headers'], drop: ['args.headers.cookie'], hash: ['args.headers.authorization'] }));
    assert.deepEqual(out, { headers: { 'user-agent': 'curl/8', authorization: sha256('"Basic dXNlcjpwYXNzd29yZA=="') } });
  });

  it('at one path, drop beats keep and keep beats hash', () => {
    // The loader never lets a block name a path twice, but merged lists of two entries may.
    const out = redactArgs({ a: 'x', b: 'secret=1', c: 'y' }, rules({ drop: ['args.a'], keep: ['args.a', 'args.b'], hash: ['args.b'] }));
    assert.deepEqual(out, { b: 'secret=1', c: 'y' });
  });

  it('reaches a listed path under a member whose name says secret, and redacts the rest of it', () => {
    const args = { credentials: { user: 'bob', key: 'k-1', region: 'eu' } };
    assert.deepEqual(redactArgs(args, NONE), { credentials: REDACTED });
    assert.deepEqual(redactArgs(args, rules({ keep: ['args.credentials.user'], hash: ['args.credentials.key'] })), {
      credentials: { user: 'bob', key: sha256('"k-1"'), region: REDACTED },
    });
  });

  it('ignores a path that is absent from the call, or that runs through a scalar', () => {
    const out = redactArgs({ a: 'x', n: 5 }, rules({ drop: ['args.missing'], hash: ['args.n.deeper', 'args.a.b'] }));
    assert.deepEqual(out, { a: 'x', n: 5 });
  });
});

describe('redactArgs: names that say secret', () => {
  for (const name of ['password', 'db_password', 'clientSecret', 'X-API-Key', 'access_token', 'Authorization', 'card_pin', 'apiKey', 'refresh_token', 'Set-Cookie', 'cvv', 'ssn']) {
    it(`redacts the value of ${JSON.stringify(name)} whatever it is`, () => {
      assert.equal(stored(name, 'plain words'), REDACTED);
      assert.equal(stored(name, 12345), REDACTED);
      assert.equal(stored(name, { nested: 'object' }), REDACTED);
    });
  }
  for (const name of ['token_count', 'pinned', 'email_signature', 'author', 'passage', 'tokens', 'sessionId']) {
    it(`keeps the value of ${JSON.stringify(name)}`, () => {
      assert.equal(stored(name, 'plain words'), 'plain words');
      assert.equal(stored(name, 42), 42);
    });
  }
  it('takes "signature" alone as a secret', () => {
    assert.equal(stored('signature', 'abc'), REDACTED);
  });
});

describe('redactArgs: values that look secret', () => {
  it('redacts Bearer and Basic credentials, scheme included', () => {
    assert.equal(storedText('Authorization: Bearer abc123def456ghi789'), 'Authorization: [redacted]');
    assert.equal(storedText('curl -H "Authorization: Basic dXNlcjpwYXNzd29yZA==" host'), 'curl -H "Authorization: [redacted]" host');
    // Words after "bearer" or "basic" are not credentials.
    assert.equal(storedText('the bearer of this letter'), 'the bearer of this letter');
    assert.equal(storedText('Basic information about accounts'), 'Basic information about accounts');
  });

  it("redacts a URL's password and keeps its user and host", () => {
    assert.equal(storedText('see https://u:pw@host/path?x=1'), 'see https://u:[redacted]@host/path?x=1');
    assert.equal(storedText('postgres://admin:s3cr3t@db.internal:5432/app'), 'postgres://admin:[redacted]@db.internal:5432/app');
    // No user, and a password holding an @ (URL parsers split at the last one).
    assert.equal(storedText('redis://:hunter2@cache:6379'), 'redis://:[redacted]@cache:6379');
    assert.equal(storedText('https://bob:p@ss@host/x'), 'https://bob:[redacted]@host/x');
    // A port, or an @ in the path, is not a password.
    assert.equal(storedText('http://host:8080/x@y'), 'http://host:8080/x@y');
  });

  it('redacts a JWT', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
    assert.equal(storedText(`token=${jwt};`), 'token=[redacted];');
  });

  it('redacts a PEM private key, also one cut short, and keeps a public key', () => {
    const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\n-----END RSA PRIVATE KEY-----';
    assert.equal(storedText(`key:\n${pem}\nthanks`), 'key:\n[redacted]\nthanks');
    assert.equal(storedText('here: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nMIIE'), 'here: [redacted]');
    const pub = '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----';
    assert.equal(storedText(pub), pub);
  });

  it('redacts API keys of the usual formats', () => {
    const keys = [
      'sk-proj-abc123def456ghi789jkl012mno', // OpenAI
      'sk-ant-api03-abcdefghijklmnop1234567890', // Anthropic
      'sk_live_4eC39HqLyjWDarjtT1zdp7dc', // Stripe secret
      'rk_test_4eC39HqLyjWDarjtT1zdp7dc', // Stripe restricted
      'ghp_abcdefghijklmnopqrstuvwxyz0123456789', // GitHub
      'xoxb-123456789012-1234567890123-abcdefghijklmnop', // Slack
      'AKIAIOSFODNN7EXAMPLE', // AWS access key id
      'AIzaSyA1234567890abcdefghijklmnopqrstuv', // Google
    ];
    for (const key of keys) assert.equal(storedText(`use ${key} here`), 'use [redacted] here', key);
  });

  it('keeps what is meant to be public or only looks like a key', () => {
    for (const text of ['pk_live_4eC39HqLyjWDarjtT1zdp7dc', 'my sk-learn classifier', 'AKIA is a prefix', 'ghp_short']) {
      assert.equal(storedText(text), text);
    }
  });

  it('redacts card numbers that pass Luhn, with spaces or dashes, and keeps one that fails it', () => {
    assert.equal(storedText('card 4242 4242 4242 4242 exp 12/30'), 'card [redacted] exp 12/30');
    assert.equal(storedText('5555-5555-5555-4444'), REDACTED);
    assert.equal(storedText('amex 378282246310005.'), 'amex [redacted].');
    assert.equal(storedText('card 4242 4242 4242 4241 exp 12/30'), 'card 4242 4242 4242 4241 exp 12/30');
    // Not a card network's prefix or length.
    assert.equal(storedText('order 12345678901234 shipped'), 'order 12345678901234 shipped');
  });

  it('redacts a card number sent as a JSON number', () => {
    assert.equal(stored('n', 4242424242424242), REDACTED);
    assert.equal(stored('n', 4242424242424241), 4242424242424241);
    assert.equal(stored('n', 1700000000000), 1700000000000);
  });

  it('leaves ordinary text, numbers and other values untouched', () => {
    const args = { text: 'Refund order 1234 for Ann, call +1 555 0100.', n: 12.5, id: '9007199254740993', yes: true, none: null, list: [1, 'two'] };
    assert.deepEqual(redactArgs(args, NONE), args);
  });
});

describe('redactArgs: safety', () => {
  it('never changes its input, and shares no object with the result', () => {
    const args = { a: { password: 'x', keep: { deep: [1, { card: '4242424242424242' }] } }, b: ['sk_live_4eC39HqLyjWDarjtT1zdp7dc'] };
    const copy = structuredClone(args);
    const out = redactArgs(args, rules({ keep: ['args.a.keep'], drop: ['args.b.0'] }));
    assert.deepEqual(args, copy);
    const kept = (out.a as { keep: { deep: unknown[] } }).keep;
    assert.deepEqual(kept, args.a.keep);
    assert.notEqual(kept, args.a.keep);
    assert.notEqual(kept.deep, args.a.keep.deep);
    assert.notEqual(kept.deep[1], args.a.keep.deep[1]);
  });

  it('keeps __proto__ as an own member and pollutes no prototype', () => {
    const args = JSON.parse('{"__proto__": {"password": "x", "polluted": "yes"}, "a": {"__proto__": {"b": 1}}}') as Record<string, unknown>;
    const out = redactArgs(args, NONE);
    assert.deepEqual(Object.keys(out), ['__proto__', 'a']);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    const own = Object.getOwnPropertyDescriptor(out, '__proto__')?.value as Record<string, unknown>;
    assert.deepEqual({ ...own }, { password: REDACTED, polluted: 'yes' });
    assert.equal((out as { polluted?: unknown }).polluted, undefined);
    assert.equal(({} as { polluted?: unknown }).polluted, undefined);
    assert.equal(JSON.stringify(out), '{"__proto__":{"password":"[redacted]","polluted":"yes"},"a":{"__proto__":{"b":1}}}');
  });

  it('returns from 10,000 levels of nesting, cut at the depth limit', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 10_000; i++) deep = i % 2 === 0 ? { x: deep } : [deep];
    const out = redactArgs({ deep }, NONE);
    // The arguments are level 1; the value at level MAX_ARG_DEPTH + 1 is cut.
    let node: unknown = out;
    let levels = 1;
    while (typeof node === 'object' && node !== null) {
      node = Array.isArray(node) ? node[0] : (node as Record<string, unknown>)[levels === 1 ? 'deep' : 'x'];
      levels++;
    }
    assert.equal(node, TOO_DEEP);
    assert.equal(levels, MAX_ARG_DEPTH + 1);
    // And a hash of such a value is still made.
    assert.match(String(redactArgs({ deep }, rules({ hash: ['args.deep'] })).deep), /^sha256:[0-9a-f]{64}$/);
  });

  // No assertion on time: at a megabyte each, a pattern that could start a match at every `.`
  // or `-` of a long run (as the URL and JWT patterns once could) would take many minutes, far
  // past this test's timeout, instead of milliseconds.
  it('returns on megabyte adversarial strings, unchanged', { timeout: 60_000 }, () => {
    const inputs = ['a.'.repeat(500_000), 'sk-a-'.repeat(200_000), 'eyJaaaaaaaaaa-'.repeat(75_000), 'SG.a.SG.a.'.repeat(100_000), 'a://u:'.repeat(170_000)];
    for (const text of inputs) assert.equal(storedText(text), text);
  });
});

describe('hashValue', () => {
  it('is sha256: and the hex SHA-256 of the canonical JSON', () => {
    assert.equal(hashValue({ b: [1, 'x'], a: null }), sha256('{"a":null,"b":[1,"x"]}'));
    assert.equal(hashValue('ann@example.com'), sha256('"ann@example.com"'));
    assert.equal(hashValue(42), sha256('42'));
  });

  it('does not depend on key order', () => {
    assert.equal(hashValue({ a: 1, b: { c: 2, d: 3 } }), hashValue({ b: { d: 3, c: 2 }, a: 1 }));
    assert.notEqual(hashValue({ a: 1 }), hashValue({ a: 2 }));
  });
});

describe('the worked example of docs/policy.md', () => {
  it('stores what the reference says', () => {
    const text = [
      'audit:',
      '  args:',
      '    hash: [args.email]',
      '    drop: [args.attachment]',
      'tools:',
      '  create_refund:',
      '    audit:',
      '      args:',
      '        keep: [args.order_token]',
      '        hash: [args.card.number]',
      '    rules:',
      '      - action: allow',
      '        rate_limit: {max: 5, window: 60}',
      '',
    ].join('\n');
    const result = parsePolicy(text, 'policy.yaml');
    if (!result.ok) assert.fail(formatIssues(result.issues));
    const args = {
      order_token: 'ord_8f3a21',
      email: 'ann@example.com',
      amount: 4200,
      card: { number: '4242 4242 4242 4242', holder: 'Ann Lee', cvc: '123' },
      attachment: 'JVBERi0xLjQKJcfsj6IK',
      note: 'Customer called; see https://ops:hunter2@tickets.example.com/T-9',
    };
    const out = redactArgs(args, auditArgRules(compile(result.policy), 'create_refund'));
    assert.deepEqual(out, {
      order_token: 'ord_8f3a21',
      // printf '"ann@example.com"' | sha256sum
      email: 'sha256:61c26e6edb6acdd1208f2c2003c5b6929b85ddb08049a8cd9ac5f39831fe54ea',
      amount: 4200,
      card: { number: 'sha256:c5ed752663664ebc8edc4532d5e9fa2cbcf1f9cabfd7cbc73850418cd17be58c', holder: 'Ann Lee', cvc: '[redacted]' },
      note: 'Customer called; see https://ops:[redacted]@tickets.example.com/T-9',
    });
    // Another tool keeps only the top level's lists: its order_token is redacted by name.
    const other = redactArgs(args, auditArgRules(compile(result.policy), 'get_order'));
    assert.equal(other.order_token, REDACTED);
    assert.equal((other.card as Record<string, unknown>).number, REDACTED);
  });
});
