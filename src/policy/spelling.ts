// The words of the policy language, in both spellings (DESIGN.md §3): which keys each level
// accepts, and the v1 `rate_limit: N/window` shorthand.
import type { CalendarUnit } from './model.js';

export const TOP_KEYS = ['version', 'description', 'default', 'hide', 'tools', 'classes'] as const;
export const TOOL_KEYS = ['rules'] as const;
export const RULE_KEYS = [
  'name',
  'action',
  'conditions',
  'on_deny',
  'reason',
  'state',
  'rate_limit',
  // Only next to a `rate_limit: N/window` string (the maps take their own `key`).
  'key',
  'validate',
] as const;
export const CONDITION_KEYS = ['path', 'op', 'value'] as const;
export const STATE_KEYS = ['counter', 'window', 'increment', 'increment_from', 'scope', 'key'] as const;
export const RATE_LIMIT_KEYS = ['max', 'window', 'scope', 'key'] as const;
export const VALIDATE_KEYS = ['required_args', 'schema'] as const;

export const CALENDAR_UNITS: readonly CalendarUnit[] = ['minute', 'hour', 'day'];

export function isCalendarUnit(text: unknown): text is CalendarUnit {
  return typeof text === 'string' && (CALENDAR_UNITS as readonly string[]).includes(text);
}

export type Shorthand = { ok: true; count: number; unit: CalendarUnit } | { ok: false; message: string };

/** `5/hour` → 5 calls per calendar hour, with the v1 error messages. */
export function parseShorthand(text: string): Shorthand {
  const slash = text.indexOf('/');
  if (slash < 0) {
    return { ok: false, message: `rate_limit must be in the format "N/window" (e.g. "5/hour"), got ${JSON.stringify(text)}` };
  }
  const countText = text.slice(0, slash);
  const unit = text.slice(slash + 1);
  const count = Number(countText);
  if (!/^[0-9]+$/.test(countText) || count <= 0 || !Number.isSafeInteger(count)) {
    return { ok: false, message: `rate_limit count must be a positive integer, got ${JSON.stringify(countText)}` };
  }
  if (!isCalendarUnit(unit)) {
    return { ok: false, message: `rate_limit window must be "minute", "hour", or "day", got ${JSON.stringify(unit)}` };
  }
  return { ok: true, count, unit };
}

/** A key under `tools` or an entry of `hide` is a glob pattern when it holds `*` or `?`
 * (and is not `"*"` alone, the wildcard key). */
export function isGlob(name: string): boolean {
  return name !== '*' && (name.includes('*') || name.includes('?'));
}
