// Counters: a v1 `state:` block (calendar window, `increment`, `increment_from`), the catalogue's
// `rate_limit: {max, window}` map (rolling window), and the `key:` and `scope:` they share.
import { isAlias, isMap, isScalar, isSeq, type YAMLMap } from 'yaml';
import { parseDuration } from './durations.js';
import { checkArgsPath } from './load-conditions.js';
import type { Counter, CounterKey, CounterScope } from './model.js';
import { COUNTER_SCOPES, isCalendarUnit, RATE_LIMIT_KEYS, STATE_KEYS } from './spelling.js';
import { suggest } from './suggest.js';
import { finiteNumber, later, nonEmptyString, shown, type Field, type Reader } from './yaml-reader.js';

export function readState(r: Reader, field: Field, rulePath: string, owner: string): Counter | undefined {
  const node = field.value;
  const path = `${rulePath}.state`;
  if (!isMap(node)) {
    r.issue(field.valuePos, path, `state must be a map with counter and window, got ${shown(node)}`);
    return undefined;
  }
  const before = r.issues.length;
  const at = r.posOf(node);
  const f = r.fields(node, path, STATE_KEYS);

  const counterField = f.get('counter');
  const name = nonEmptyString(counterField?.value);
  if (name === undefined) r.issue(counterField ? counterField.valuePos : at, path, 'counter must not be empty');

  const windowField = f.get('window');
  const windowNode = windowField?.value;
  const unit = isScalar(windowNode) ? windowNode.value : undefined;
  if (!isCalendarUnit(unit)) {
    r.issue(
      windowField ? windowField.valuePos : at,
      path,
      `window must be "minute", "hour", or "day", got ${shown(windowField?.value)}`,
    );
  }

  const incrementField = f.get('increment');
  let increment = 1;
  if (incrementField) {
    const n = finiteNumber(incrementField.value);
    if (n === undefined || n <= 0) r.issue(incrementField.valuePos, path, 'increment must be a positive number');
    else increment = n;
  }

  const fromField = f.get('increment_from');
  let incrementFrom: string | undefined;
  if (fromField) {
    const checked = checkArgsPath(fromField.value, 'increment_from');
    if ('message' in checked) r.issue(fromField.valuePos, path, checked.message);
    else incrementFrom = checked.path;
  }
  if (incrementField && fromField) {
    r.issue(later(incrementField, fromField).keyPos, path, 'use either increment or increment_from, not both');
  }

  const scope = readScope(r, f.get('scope'), path, 'global');
  const keyField = f.get('key');
  const key = keyField ? readKey(r, keyField, path) : undefined;
  if (r.issues.length > before || name === undefined || !isCalendarUnit(unit)) return undefined;
  const counter: Counter = {
    name,
    owner,
    window: { kind: 'calendar', unit },
    scope,
    increment,
    limits: [],
    pos: at,
  };
  if (incrementFrom !== undefined) counter.incrementFrom = incrementFrom;
  if (key) counter.key = key;
  return counter;
}

/** The catalogue's `rate_limit: {max, window, scope}`: a rolling window, per session by default. */
export function readRollingLimit(r: Reader, node: YAMLMap, path: string, owner: string, ruleName: string): Counter | undefined {
  const before = r.issues.length;
  const at = r.posOf(node);
  const f = r.fields(node, path, RATE_LIMIT_KEYS);

  const maxField = f.get('max');
  const max = finiteNumber(maxField?.value);
  if (!maxField) r.issue(at, path, 'max is required');
  else if (max === undefined || max <= 0 || !Number.isSafeInteger(max)) {
    r.issue(maxField.valuePos, path, `max must be a positive integer, got ${shown(maxField.value)}`);
  }

  const windowField = f.get('window');
  let seconds: number | undefined;
  if (!windowField) r.issue(at, path, 'window is required');
  else {
    const v = windowField.value;
    if (isScalar(v) && typeof v.value === 'number') {
      seconds = Number.isSafeInteger(v.value) && v.value > 0 ? v.value : undefined;
    } else if (isScalar(v) && typeof v.value === 'string') {
      seconds = parseDuration(v.value);
    }
    if (seconds === undefined) {
      r.issue(
        windowField.valuePos,
        path,
        `window must be a whole number of seconds or a duration such as "30s", "5m", "1h" or "1d", got ${shown(v)}`,
      );
    }
  }

  const scope = readScope(r, f.get('scope'), path, 'session');
  const keyField = f.get('key');
  const key = keyField ? readKey(r, keyField, path) : undefined;
  if (r.issues.length > before || max === undefined || seconds === undefined) return undefined;
  const counter: Counter = {
    name: `_rate:${ruleName}`,
    owner,
    window: { kind: 'rolling', seconds },
    scope,
    increment: 1,
    limits: [{ value: max, inclusive: true }],
    pos: at,
  };
  if (key) counter.key = key;
  return counter;
}

/** `key: args`, or `key: [args.a, args.b.c]`: what splits a counter into buckets. */
export function readKey(r: Reader, field: Field, path: string): CounterKey | undefined {
  const node = field.value;
  if (isScalar(node) && node.value === 'args') return { all: true };
  if (!isSeq(node)) {
    // One path written without brackets is the likeliest slip; show the fix.
    const written = checkArgsPath(node, 'key');
    const hint = 'path' in written ? ` (write key: [${written.path}])` : '';
    r.issue(field.valuePos, path, `key must be "args" or a list of "args." paths, got ${shown(node)}${hint}`);
    return undefined;
  }
  if (node.items.length === 0) {
    r.issue(field.valuePos, path, 'key must not be an empty list');
    return undefined;
  }
  const before = r.issues.length;
  const seen = new Map<string, number>();
  node.items.forEach((item, i) => {
    const entry = r.resolve(item);
    const at = r.posOf(isAlias(item) ? item : entry ?? node);
    const checked = checkArgsPath(entry, `key[${i}]`);
    if ('message' in checked) {
      const hint = isScalar(entry) && entry.value === 'args' ? ' (write key: args, without brackets, to key by all the arguments)' : '';
      r.issue(at, path, checked.message + hint);
      return;
    }
    const first = seen.get(checked.path);
    if (first !== undefined) r.issue(at, path, `duplicate key path ${JSON.stringify(checked.path)} (also key[${first}])`);
    else seen.set(checked.path, i);
  });
  return r.issues.length > before ? undefined : { paths: [...seen.keys()] };
}

function readScope(r: Reader, field: Field | undefined, path: string, fallback: CounterScope): CounterScope {
  if (!field) return fallback;
  const v = field.value;
  const text = isScalar(v) && typeof v.value === 'string' ? v.value : undefined;
  if (text !== undefined && (COUNTER_SCOPES as readonly string[]).includes(text)) return text as CounterScope;
  // `user`, `subject`, `caller`: the per-caller scope under another name.
  const guess = text === undefined ? undefined : ['user', 'subject', 'sub', 'caller', 'principal'].includes(text.toLowerCase()) ? 'identity' : suggest(text, COUNTER_SCOPES, 2);
  r.issue(field.valuePos, path, `scope must be "session", "global" or "identity", got ${shown(v)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}`);
  return fallback;
}
