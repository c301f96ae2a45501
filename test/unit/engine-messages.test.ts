// The texts of rate-limit denials and the denial prefix.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { denialText, rateLimitDenial } from '../../src/engine/messages.js';
import type { Charge } from '../../src/engine/types.js';
import type { Window } from '../../src/policy/model.js';

function charge(id: string, window: Window, limit: number, extra: Partial<Charge> = {}): Charge {
  return { ref: { id, owner: id.slice(0, id.lastIndexOf('.')), scope: 'global', window }, amount: 1, limits: [{ value: limit, inclusive: true }], rule: 'r', ...extra };
}

const minute: Window = { kind: 'calendar', unit: 'minute' };
const hour: Window = { kind: 'calendar', unit: 'hour' };
const day: Window = { kind: 'calendar', unit: 'day' };
const rolling = (seconds: number): Window => ({ kind: 'rolling', seconds });

describe('rateLimitDenial messages', () => {
  const cases: [string, Charge, number, number | undefined, string][] = [
    ['v1 shorthand, hour', charge('create_issue._rate_hour', hour, 5), 5, 1000, 'Rate limit of 5 per hour reached. Try again later.'],
    ['v1 shorthand, wildcard minute', charge('_global._rate_minute', minute, 60), 60, undefined, 'Rate limit of 60 per minute reached. Try again later.'],
    ['v1 shorthand, day', charge('t._rate_day', day, 100), 100, 5, 'Rate limit of 100 per day reached. Try again later.'],
    [
      'rolling, odd window',
      charge('create_conversation._rate', rolling(45), 30),
      30,
      11_001,
      'Rate limit of 30 calls per 45 seconds reached for "create_conversation"; try again in 12 seconds.',
    ],
    [
      'rolling, exactly a minute',
      charge('create_conversation._rate', rolling(60), 30),
      30,
      12_000,
      'Rate limit of 30 calls per minute reached for "create_conversation"; try again in 12 seconds.',
    ],
    ['rolling, an hour', charge('t.r', rolling(3600), 10), 10, 1, 'Rate limit of 10 calls per hour reached for "t"; try again in 1 second.'],
    ['rolling, a day, retry unknown', charge('t.r', rolling(86400), 1), 1, undefined, 'Rate limit of 1 call per day reached for "t"; try again later.'],
    ['rolling, wildcard', charge('_global.r', rolling(60), 100), 100, 500, 'Rate limit of 100 calls per minute reached across all tools; try again in 1 second.'],
    [
      'rolling, exclusive limit admits one fewer',
      { ...charge('t.r', rolling(60), 10), limits: [{ value: 10, inclusive: false }] },
      9,
      1000,
      'Rate limit of 9 calls per minute reached for "t"; try again in 1 second.',
    ],
    [
      'other counter',
      charge('pay.daily_spend', day, 1000, { amount: 200 }),
      900,
      undefined,
      'Limit of 1000 for counter pay.daily_spend (per day) reached: 900 + 200 would exceed it',
    ],
    [
      'a calendar counter not named for its window',
      charge('t._rate_minute', hour, 5),
      5,
      undefined,
      'Limit of 5 for counter t._rate_minute (per hour) reached: 5 + 1 would exceed it',
    ],
    [
      'the breached limit of several',
      { ...charge('t.c', day, 100, { amount: 5 }), limits: [{ value: 100, inclusive: true }, { value: 50, inclusive: false }] },
      45,
      undefined,
      'Limit of 50 for counter t.c (per day) reached: 45 + 5 would exceed it',
    ],
    ['the rule message wins', charge('t._rate_hour', hour, 5, { message: 'Slow down' }), 5, 1000, 'Slow down'],
  ];
  for (const [label, c, current, retryMs, expected] of cases) {
    it(label, () => assert.equal(rateLimitDenial(c, current, retryMs).message, expected));
  }

  it('carries the rule, the retry time and the details', () => {
    assert.deepEqual(rateLimitDenial(charge('send._rate', rolling(60), 30), 30, 11_001), {
      kind: 'rate_limit',
      rule: 'r',
      message: 'Rate limit of 30 calls per minute reached for "send"; try again in 12 seconds.',
      retryAfterSeconds: 12,
      details: { counter: 'send._rate', limit: 30, window: { kind: 'rolling', seconds: 60 }, current: 30, amount: 1 },
    });
  });

  it('leaves retryAfterSeconds out when it is not known', () => {
    assert.equal('retryAfterSeconds' in rateLimitDenial(charge('t._rate_hour', hour, 5), 5), false);
  });
});

describe('denialText', () => {
  it('prefixes the message', () => {
    assert.equal(denialText({ kind: 'hidden', message: 'Tool "x" is hidden by policy' }), '[INTERCEPT POLICY DENIED] Tool "x" is hidden by policy');
  });
});
