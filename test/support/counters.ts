// Pieces the counter-store tests share: windows, a fixed start time, limits, one-item
// reservations and a logger that keeps its lines.
//
// Exports: MINUTE, HOUR, DAY, ROLL60, T0, lte, one, recordingLogger
import { createLogger, type Logger } from '../../src/log.js';
import type { Limit, Window } from '../../src/policy/model.js';
import type { ReserveItem } from '../../src/state/store.js';

export const MINUTE: Window = { kind: 'calendar', unit: 'minute' };
export const HOUR: Window = { kind: 'calendar', unit: 'hour' };
export const DAY: Window = { kind: 'calendar', unit: 'day' };
export const ROLL60: Window = { kind: 'rolling', seconds: 60 };
/** 2026-01-15T10:00:00.000Z: the start of a minute and an hour. */
export const T0 = Date.UTC(2026, 0, 15, 10, 0, 0, 0);

export const lte = (value: number): Limit => ({ value, inclusive: true });

/** A reservation item for one counter. */
export const one = (key: string, window: Window, limits: Limit[] = [], amount = 1): ReserveItem => ({ key, window, amount, limits });

/** A logger that keeps its lines. */
export function recordingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger('debug', (l) => lines.push(l)), lines };
}
