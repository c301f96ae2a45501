import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  calendarWindowEnd,
  calendarWindowStart,
  describeWindow,
  sameWindow,
  windowMs,
  windowSeconds,
} from '../../src/state/windows.js';
import type { CalendarUnit, Window } from '../../src/policy/model.js';

const iso = (ms: number): string => new Date(ms).toISOString();
const at = (s: string): number => Date.parse(s);

describe('calendar windows (UTC)', () => {
  const cases: { unit: CalendarUnit; now: string; start: string; end: string }[] = [
    { unit: 'minute', now: '2026-01-15T10:07:30.250Z', start: '2026-01-15T10:07:00.000Z', end: '2026-01-15T10:08:00.000Z' },
    { unit: 'minute', now: '2026-01-15T10:07:00.000Z', start: '2026-01-15T10:07:00.000Z', end: '2026-01-15T10:08:00.000Z' },
    { unit: 'minute', now: '2026-01-15T10:07:59.999Z', start: '2026-01-15T10:07:00.000Z', end: '2026-01-15T10:08:00.000Z' },
    { unit: 'minute', now: '2026-01-15T23:59:59.999Z', start: '2026-01-15T23:59:00.000Z', end: '2026-01-16T00:00:00.000Z' },
    { unit: 'hour', now: '2026-01-15T10:07:30.250Z', start: '2026-01-15T10:00:00.000Z', end: '2026-01-15T11:00:00.000Z' },
    { unit: 'hour', now: '2026-01-15T10:00:00.000Z', start: '2026-01-15T10:00:00.000Z', end: '2026-01-15T11:00:00.000Z' },
    { unit: 'hour', now: '2026-01-15T10:59:59.999Z', start: '2026-01-15T10:00:00.000Z', end: '2026-01-15T11:00:00.000Z' },
    { unit: 'hour', now: '2026-12-31T23:59:59.999Z', start: '2026-12-31T23:00:00.000Z', end: '2027-01-01T00:00:00.000Z' },
    { unit: 'day', now: '2026-01-15T10:07:30.250Z', start: '2026-01-15T00:00:00.000Z', end: '2026-01-16T00:00:00.000Z' },
    { unit: 'day', now: '2026-01-15T00:00:00.000Z', start: '2026-01-15T00:00:00.000Z', end: '2026-01-16T00:00:00.000Z' },
    { unit: 'day', now: '2026-01-15T23:59:59.999Z', start: '2026-01-15T00:00:00.000Z', end: '2026-01-16T00:00:00.000Z' },
    { unit: 'day', now: '2026-12-31T23:59:59.999Z', start: '2026-12-31T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' },
    // Leap days.
    { unit: 'day', now: '2024-02-28T23:59:59.999Z', start: '2024-02-28T00:00:00.000Z', end: '2024-02-29T00:00:00.000Z' },
    { unit: 'day', now: '2024-02-29T00:00:00.000Z', start: '2024-02-29T00:00:00.000Z', end: '2024-03-01T00:00:00.000Z' },
    { unit: 'day', now: '2024-02-29T12:34:56.789Z', start: '2024-02-29T00:00:00.000Z', end: '2024-03-01T00:00:00.000Z' },
    { unit: 'day', now: '2024-02-29T23:59:59.999Z', start: '2024-02-29T00:00:00.000Z', end: '2024-03-01T00:00:00.000Z' },
    { unit: 'hour', now: '2024-02-29T23:30:00.000Z', start: '2024-02-29T23:00:00.000Z', end: '2024-03-01T00:00:00.000Z' },
    { unit: 'minute', now: '2000-02-29T23:59:59.999Z', start: '2000-02-29T23:59:00.000Z', end: '2000-03-01T00:00:00.000Z' },
    { unit: 'day', now: '2025-02-28T23:59:59.999Z', start: '2025-02-28T00:00:00.000Z', end: '2025-03-01T00:00:00.000Z' },
    // Before the epoch the arithmetic still rounds down.
    { unit: 'day', now: '1969-12-31T12:00:00.000Z', start: '1969-12-31T00:00:00.000Z', end: '1970-01-01T00:00:00.000Z' },
  ];
  for (const c of cases) {
    it(`${c.unit} of ${c.now} is [${c.start}, ${c.end})`, () => {
      assert.equal(iso(calendarWindowStart(c.unit, at(c.now))), c.start);
      assert.equal(iso(calendarWindowEnd(c.unit, at(c.now))), c.end);
    });
  }

  it('the end of one window is the start of the next', () => {
    for (const unit of ['minute', 'hour', 'day'] as const) {
      const now = at('2024-02-29T23:59:59.999Z');
      const end = calendarWindowEnd(unit, now);
      assert.equal(calendarWindowStart(unit, end), end);
      assert.equal(calendarWindowStart(unit, end - 1), calendarWindowStart(unit, now));
    }
  });
});

describe('window descriptions and lengths', () => {
  const cases: { window: Window; text: string; seconds: number }[] = [
    { window: { kind: 'calendar', unit: 'minute' }, text: 'per minute', seconds: 60 },
    { window: { kind: 'calendar', unit: 'hour' }, text: 'per hour', seconds: 3600 },
    { window: { kind: 'calendar', unit: 'day' }, text: 'per day', seconds: 86400 },
    { window: { kind: 'rolling', seconds: 60 }, text: 'per 60 seconds', seconds: 60 },
    { window: { kind: 'rolling', seconds: 3600 }, text: 'per 3600 seconds', seconds: 3600 },
    { window: { kind: 'rolling', seconds: 1 }, text: 'per second', seconds: 1 },
    { window: { kind: 'rolling', seconds: 0.5 }, text: 'per 0.5 seconds', seconds: 0.5 },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.window)}: "${c.text}", ${c.seconds} s`, () => {
      assert.equal(describeWindow(c.window), c.text);
      assert.equal(windowSeconds(c.window), c.seconds);
      assert.equal(windowMs(c.window), c.seconds * 1000);
    });
  }

  it('sameWindow compares kind and length', () => {
    assert.ok(sameWindow({ kind: 'calendar', unit: 'hour' }, { kind: 'calendar', unit: 'hour' }));
    assert.ok(!sameWindow({ kind: 'calendar', unit: 'hour' }, { kind: 'calendar', unit: 'day' }));
    assert.ok(!sameWindow({ kind: 'calendar', unit: 'minute' }, { kind: 'rolling', seconds: 60 }));
    assert.ok(sameWindow({ kind: 'rolling', seconds: 60 }, { kind: 'rolling', seconds: 60 }));
    assert.ok(!sameWindow({ kind: 'rolling', seconds: 60 }, { kind: 'rolling', seconds: 61 }));
  });
});
