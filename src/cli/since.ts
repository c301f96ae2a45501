// `--since` of the commands that read the audit trail (status, logs, replay).
import { parseDuration } from '../policy/durations.js';

/** Seconds in a `--since` value (`30m`, `1h`, `7d`), or what is wrong with it. */
export function sinceSeconds(text: string): number | string {
  return parseDuration(text) ?? `--since must be a duration such as 30m, 1h or 7d, got ${JSON.stringify(text)}`;
}
