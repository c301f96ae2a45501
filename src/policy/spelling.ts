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
  // require_approval rules only (see APPROVAL_KEYS).
  'timeout',
  'on_timeout',
  'approval_mode',
  'scope',
] as const;
/** The rule keys that only a `require_approval` rule may carry. */
export const APPROVAL_KEYS = ['timeout', 'on_timeout', 'approval_mode', 'scope'] as const;
/** The rule keys a `require_approval` rule must not carry: a counter or a validation belongs in
 * a rule of its own. */
export const NOT_WITH_APPROVAL = ['rate_limit', 'state', 'key', 'validate'] as const;
export const APPROVAL_MODES = ['hold', 'retry', 'client'] as const;
/** `timeout` when a require_approval rule gives none: 5 minutes. */
export const DEFAULT_APPROVAL_TIMEOUT_SECONDS = 5 * 60;
/** The longest `timeout` accepted: 7 days. A request open longer than that is forgotten, not
 * waited for, and a held request that long would outlive any client's patience. */
export const MAX_APPROVAL_TIMEOUT_SECONDS = 7 * 24 * 60 * 60;
export const CONDITION_KEYS = ['path', 'op', 'value'] as const;
/** What a condition may read of the caller: `identity.<field>`, and under `claims` any claim
 * (`identity.claims.org.role`). The same in both spellings. */
export const IDENTITY_FIELDS = ['sub', 'client_id', 'scopes', 'claims'] as const;
export type IdentityField = (typeof IDENTITY_FIELDS)[number];
/** The operators that can be true of `identity.scopes`, a list of scopes: any other compares
 * the whole list with one value and would always fail (or, `neq`, always pass). */
export const SCOPES_OPERATORS = ['contains', 'in', 'not_in', 'exists'] as const;
/** A counter's `scope`. */
export const COUNTER_SCOPES = ['session', 'global', 'identity'] as const;
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
