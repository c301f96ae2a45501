// Window arithmetic shared by every counter backend. Calendar windows are aligned to UTC
// minute/hour/day boundaries; epoch milliseconds have no leap seconds, so every minute is
// 60 000 ms and every day 86 400 000 ms and the boundaries are plain integer division.
import type { CalendarUnit, Window } from '../policy/model.js';

const UNIT_MS: Record<CalendarUnit, number> = {
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
};

/** Start (inclusive, ms since the epoch) of the calendar window containing `now`. */
export function calendarWindowStart(unit: CalendarUnit, now: number): number {
  const ms = UNIT_MS[unit];
  return Math.floor(now / ms) * ms;
}

/** End (exclusive) of the calendar window containing `now`: the next window's start. */
export function calendarWindowEnd(unit: CalendarUnit, now: number): number {
  return calendarWindowStart(unit, now) + UNIT_MS[unit];
}

/** The window's length in seconds. */
export function windowSeconds(w: Window): number {
  return w.kind === 'calendar' ? UNIT_MS[w.unit] / 1000 : w.seconds;
}

/** The window's length in milliseconds. */
export function windowMs(w: Window): number {
  return w.kind === 'calendar' ? UNIT_MS[w.unit] : w.seconds * 1000;
}

/** For messages: "per minute", "per hour", "per day", "per 60 seconds", "per second". */
export function describeWindow(w: Window): string {
  if (w.kind === 'calendar') return `per ${w.unit}`;
  return w.seconds === 1 ? 'per second' : `per ${w.seconds} seconds`;
}

/** Whether two windows are the same window definition. */
export function sameWindow(a: Window, b: Window): boolean {
  if (a.kind === 'calendar') return b.kind === 'calendar' && a.unit === b.unit;
  return b.kind === 'rolling' && a.seconds === b.seconds;
}
