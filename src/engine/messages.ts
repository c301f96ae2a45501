// The texts an agent reads when a call is denied. A rule's own message (`on_deny` / `reason`)
// always wins where the policy author can give one; the defaults name what failed.
import { GLOBAL_OWNER, type ApprovalSettings, type Limit, type PolicyValue, type Window } from '../policy/model.js';
import type { BucketKey, Charge, Denial } from './types.js';

/** Every denial reaches the agent behind this prefix (the Go reference's, which agents know). */
export const DENIAL_PREFIX = '[INTERCEPT POLICY DENIED] ';

export function denialText(denial: Denial): string {
  return DENIAL_PREFIX + denial.message;
}

export function toolQuoted(name: string): string {
  return JSON.stringify(name);
}

const MAX_VALUE_CHARS = 80;

/** A call's value as it appears in a message: JSON, cut short so that a huge argument does
 * not flood the agent's context. */
export function formatValue(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > MAX_VALUE_CHARS ? text.slice(0, MAX_VALUE_CHARS) + '…' : text;
}

/** Why a condition failed, e.g. `args.amount must be lte 50000, got 60000`. */
export function conditionFailure(path: string, op: string, expected: PolicyValue, actual: unknown, missing: boolean): string {
  if (missing) return `${path} is missing`;
  if (op === 'exists') return expected === true ? `${path} must be present, got null` : `${path} must be absent, got ${formatValue(actual)}`;
  const want = op === 'regex' ? `match regex ${formatValue(expected)}` : op === 'contains' ? `contain ${formatValue(expected)}` : `be ${op} ${formatValue(expected)}`;
  return `${path} must ${want}, got ${formatValue(actual)}`;
}

export function ruleDenied(rule: string): string {
  return `Denied by rule ${JSON.stringify(rule)}`;
}

export function missingArgsMessage(tool: string, missing: readonly string[]): string {
  const names = missing.map((n) => JSON.stringify(n)).join(', ');
  const noun = missing.length === 1 ? 'argument' : 'arguments';
  return `Missing required ${noun} ${names} for tool ${toolQuoted(tool)}`;
}

export function invalidArgsMessage(tool: string, errors: readonly string[]): string {
  return `Invalid arguments for tool ${toolQuoted(tool)}: ${errors.join('; ')}`;
}

export function schemaUnavailableMessage(rule: string, tool: string): string {
  return `${ruleDenied(rule)}: cannot check the arguments of ${toolQuoted(tool)}: the server did not provide its inputSchema`;
}

export function stateUnavailableMessage(rule: string, path: string): string {
  return `${ruleDenied(rule)}: counter ${path} is unavailable`;
}

/** `identity_required`: a counter kept per caller (scope: identity), and a caller with no
 * subject to keep it for. Never the rule's message: it says what is missing. */
export function identityRequiredMessage(rule: string, counter: string): string {
  return `${ruleDenied(rule)}: counter ${counter} is kept per caller (scope: identity) and this call has no identity (no subject)`;
}

export function badIncrementMessage(rule: string, path: string, value: unknown, missing: boolean): string {
  const tail = missing ? 'but it is missing' : `got ${formatValue(value)}`;
  return `${ruleDenied(rule)}: ${path} must be a non-negative number to count it, ${tail}`;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "minute", "hour", "day", or "45 seconds". */
export function windowUnit(window: Window): string {
  if (window.kind === 'calendar') return window.unit;
  switch (window.seconds) {
    case 60:
      return 'minute';
    case 3600:
      return 'hour';
    case 86400:
      return 'day';
    default:
      return plural(window.seconds, 'second', 'seconds');
  }
}

/** The limit the refused charge ran into: the first one `current + amount` breaks. */
function breachedLimit(limits: readonly Limit[], current: number, amount: number): Limit | undefined {
  const total = current + amount;
  for (const limit of limits) {
    if (limit.inclusive ? total > limit.value : total >= limit.value) return limit;
  }
  return limits[0];
}

/** How many calls a limit admits per window (an `lt 10` admits 9). */
function callsAllowed(limit: Limit): number {
  return limit.inclusive ? limit.value : Math.ceil(limit.value) - 1;
}

/** Which bucket of a keyed counter, for messages: `with to="+15551234567"` (paths shown without
 * `args.`, values cut like other values) or `for identical calls to "send_sms"`. */
export function bucketPhrase(key: BucketKey): string {
  if ('all' in key) return `for identical calls to ${toolQuoted(key.tool)}`;
  const parts = key.paths.map((path, i) => `${path.startsWith('args.') ? path.slice('args.'.length) : path}=${formatValue(key.values[i])}`);
  return `with ${parts.join(', ')}`;
}

/** A bucket's key for `details.key`: `"args"`, or each path with its value. */
function bucketDetail(key: BucketKey): unknown {
  if ('all' in key) return 'args';
  return Object.fromEntries(key.paths.map((path, i) => [path, key.values[i]]));
}

/** The denial for a charge the counter store refused. */
export function rateLimitDenial(charge: Charge, current: number, retryAfterMs?: number): Denial {
  const { ref, amount, key } = charge;
  const limit = breachedLimit(charge.limits, current, amount);
  const retryAfterSeconds =
    retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0 ? Math.ceil(retryAfterMs / 1000) : undefined;
  const unit = windowUnit(ref.window);
  // A keyed counter is named by its own id, and the bucket by the values that chose it.
  const counterId = ref.counter ?? ref.id;
  const bucket = key === undefined ? '' : ` ${bucketPhrase(key)}`;
  let message = charge.message;
  if (message === undefined) {
    if (limit === undefined) {
      message = `Limit for counter ${counterId} (per ${unit}) reached${bucket}: ${current} + ${amount} would exceed it`;
    } else if (ref.window.kind === 'calendar' && counterId.endsWith(`._rate_${ref.window.unit}`)) {
      // The v1 reference's exact text for the `rate_limit: N/unit` shorthand.
      message = `Rate limit of ${callsAllowed(limit)} per ${unit} reached${bucket}. Try again later.`;
    } else if (ref.window.kind === 'rolling') {
      const owner = ref.owner;
      let target = owner === GLOBAL_OWNER ? 'across all tools' : `for ${toolQuoted(owner)}`;
      if (key !== undefined) target = 'all' in key ? bucketPhrase(key) : `${target}${bucket}`;
      const retry = retryAfterSeconds !== undefined ? `try again in ${plural(Math.max(1, retryAfterSeconds), 'second', 'seconds')}` : 'try again later';
      message = `Rate limit of ${plural(callsAllowed(limit), 'call', 'calls')} per ${unit} reached ${target}; ${retry}.`;
    } else {
      message = `Limit of ${limit.value} for counter ${counterId} (per ${unit}) reached${bucket}: ${current} + ${amount} would exceed it`;
    }
  }
  const details: Record<string, unknown> = { counter: ref.id, limit: limit?.value, window: ref.window, current, amount };
  if (key !== undefined) details.key = bucketDetail(key);
  const denial: Denial = {
    kind: 'rate_limit',
    rule: charge.rule,
    message,
    details,
  };
  if (retryAfterSeconds !== undefined) denial.retryAfterSeconds = retryAfterSeconds;
  return denial;
}

// ---------------------------------------------------------------------------------------------
// Approvals

/** A timeout in the policy's own notation: `30s`, `5m`, `2h`, `7d`, or `90s` when it is not a
 * whole number of a larger unit. */
export function durationShort(seconds: number): string {
  if (seconds > 0 && seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds > 0 && seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds > 0 && seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/** A timeout in words: `5 minutes`, `2 hours`, `1 day`, `90 seconds`. */
export function durationWords(seconds: number): string {
  if (seconds > 0 && seconds % 86400 === 0) return plural(seconds / 86400, 'day', 'days');
  if (seconds > 0 && seconds % 3600 === 0) return plural(seconds / 3600, 'hour', 'hours');
  if (seconds > 0 && seconds % 60 === 0) return plural(seconds / 60, 'minute', 'minutes');
  return plural(seconds, 'second', 'seconds');
}

/** The trace note of a require_approval rule whose conditions hold: `needs approval (hold, 5m)`,
 * with `, then allow` for `on_timeout: allow` and `, global` for a global grant. */
export function approvalNote(settings: ApprovalSettings): string {
  const extra = (settings.onTimeout === 'allow' ? ', then allow' : '') + (settings.scope === 'global' ? ', global' : '');
  return `needs approval (${settings.mode}, ${durationShort(settings.timeoutSeconds)}${extra})`;
}

/** `approval_pending` (retry mode): asked; the same call passes once approved, before `expiresAt`
 * (ms since the epoch). */
export function approvalPendingMessage(tool: string, rule: string, id: string, expiresAt: number): string {
  return (
    `Call to ${toolQuoted(tool)} needs a human's approval (rule ${JSON.stringify(rule)}); request ${id} is pending. ` +
    `Retry the same call once it is approved, before ${new Date(expiresAt).toISOString()}.`
  );
}

/** `approval_denied`: the rule's own message (on_deny / reason) if it has one, else who said no;
 * then the human's reason, if they gave one. */
export function approvalDeniedMessage(tool: string, rule: string, ruleMessage?: string, reason?: string): string {
  const base = ruleMessage ?? `A human denied the call to ${toolQuoted(tool)} (rule ${JSON.stringify(rule)})`;
  return reason !== undefined && reason.trim() !== '' ? `${base}: ${reason}` : base;
}

/** `approval_expired`: nobody decided within the rule's timeout (and on_timeout is deny). The
 * rule's own message wins. */
export function approvalExpiredMessage(tool: string, rule: string, timeoutSeconds: number, ruleMessage?: string): string {
  return ruleMessage ?? `Nobody approved the call to ${toolQuoted(tool)} within ${durationWords(timeoutSeconds)} (rule ${JSON.stringify(rule)})`;
}

/** `approval_unavailable`: the approval store could not be reached, so the call is refused (fail
 * closed). Never the rule's message: it says what went wrong. */
export function approvalUnavailableMessage(tool: string, rule: string): string {
  return `Call to ${toolQuoted(tool)} needs a human's approval (rule ${JSON.stringify(rule)}) and the approval store is unavailable, so the call is refused.`;
}
