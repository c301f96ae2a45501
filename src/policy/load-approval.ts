// The settings of a `require_approval` rule: `timeout`, `on_timeout`, `approval_mode` and
// `scope`, each with its default, and the warning `on_timeout: allow` earns.
import { isScalar } from 'yaml';
import { parseDuration } from './durations.js';
import type { ApprovalMode, ApprovalSettings, PolicyIssue, Scope } from './model.js';
import { APPROVAL_MODES, DEFAULT_APPROVAL_TIMEOUT_SECONDS, MAX_APPROVAL_TIMEOUT_SECONDS } from './spelling.js';
import { shown, type Field, type Reader, type YNode } from './yaml-reader.js';

/** What `intercept validate` prints, and the proxy logs, for `on_timeout: allow`. */
export const ON_TIMEOUT_ALLOW_WARNING =
  'on_timeout: allow lets the call run when nobody answers in time; the approval only delays the call';

/** The approval settings of a require_approval rule whose fields are `f`; undefined after an
 * issue. `warnings` receives what is accepted but deserves a second look. */
export function readApproval(r: Reader, f: Map<string, Field>, path: string, warnings: PolicyIssue[]): ApprovalSettings | undefined {
  const before = r.issues.length;
  const settings: ApprovalSettings = {
    timeoutSeconds: DEFAULT_APPROVAL_TIMEOUT_SECONDS,
    onTimeout: 'deny',
    mode: 'hold',
    scope: 'session',
  };

  const timeoutField = f.get('timeout');
  if (timeoutField) {
    const checked = checkTimeout(timeoutField.value);
    if ('message' in checked) r.issue(timeoutField.valuePos, path, checked.message);
    else settings.timeoutSeconds = checked.seconds;
  }

  const onTimeoutField = f.get('on_timeout');
  if (onTimeoutField) {
    const v = onTimeoutField.value;
    if (isScalar(v) && (v.value === 'deny' || v.value === 'allow')) {
      settings.onTimeout = v.value;
      if (v.value === 'allow') {
        const at = onTimeoutField.valuePos;
        warnings.push({ file: at.file, line: at.line, col: at.col, path, message: ON_TIMEOUT_ALLOW_WARNING });
      }
    } else {
      r.issue(onTimeoutField.valuePos, path, `on_timeout must be "deny" or "allow", got ${shown(v)}`);
    }
  }

  const modeField = f.get('approval_mode');
  if (modeField) {
    const v = modeField.value;
    const text = isScalar(v) && typeof v.value === 'string' ? v.value : undefined;
    if (text !== undefined && (APPROVAL_MODES as readonly string[]).includes(text)) settings.mode = text as ApprovalMode;
    else r.issue(modeField.valuePos, path, `approval_mode must be "hold", "retry" or "client", got ${shown(v)}`);
  }

  const scopeField = f.get('scope');
  if (scopeField) {
    const v = scopeField.value;
    if (isScalar(v) && (v.value === 'session' || v.value === 'global')) settings.scope = v.value as Scope;
    else r.issue(scopeField.valuePos, path, `scope must be "session" or "global", got ${shown(v)}`);
  }

  return r.issues.length > before ? undefined : settings;
}

const TIMEOUT_FORMAT = 'timeout must be a whole number of seconds or a duration such as "30s", "5m" or "2h"';

/** `timeout: 90`, `timeout: 30s`, `5m`, `2h`, `1d`: more than 0, at most 7 days. */
function checkTimeout(node: YNode | undefined): { seconds: number } | { message: string } {
  let seconds: number | undefined;
  let zero = false;
  if (isScalar(node) && typeof node.value === 'number') {
    if (Number.isSafeInteger(node.value) && node.value > 0) seconds = node.value;
    else zero = Number.isInteger(node.value) && node.value <= 0;
  } else if (isScalar(node) && typeof node.value === 'string') {
    seconds = parseDuration(node.value);
    zero = /^0+[smhd]$/.test(node.value);
  }
  if (zero) return { message: `timeout must be greater than 0, got ${shown(node)}` };
  if (seconds === undefined) return { message: `${TIMEOUT_FORMAT}, got ${shown(node)}` };
  if (seconds > MAX_APPROVAL_TIMEOUT_SECONDS) {
    return { message: `timeout must be at most 7 days ("7d", ${MAX_APPROVAL_TIMEOUT_SECONDS} seconds), got ${shown(node)}` };
  }
  return { seconds };
}
