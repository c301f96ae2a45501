// Rolling-window lengths of the catalogue spelling: `window: 60`, `window: 5m`, `window: hour`.

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

const WORD_SECONDS: Record<string, number> = { minute: 60, hour: 3600, day: 86400 };

/** Seconds in a duration string (`30s`, `5m`, `1h`, `1d`, or `minute`/`hour`/`day`);
 * undefined unless it is a whole, positive number of seconds. */
export function parseDuration(text: string): number | undefined {
  const word = WORD_SECONDS[text];
  if (word !== undefined) return word;
  const match = /^([0-9]+)([smhd])$/.exec(text);
  if (!match) return undefined;
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2]!]!;
  return seconds > 0 && Number.isSafeInteger(seconds) ? seconds : undefined;
}
