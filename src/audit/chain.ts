// The hash chain of the audit trail. Each line is a JSON object whose last member is `hash`: the
// SHA-256 of the line's own text without that member. Each record names the hash of the one
// before it (`prev`), so an edited, inserted, reordered or deleted line breaks the chain where
// it happened. The hash is taken over the text as written, not over a re-serialisation, so a
// verifier needs no canonical form: it cuts the member off and hashes what is left.
import { createHash } from 'node:crypto';

/** `prev` of an instance's first record. */
export const GENESIS = '0'.repeat(64);

const HASH_MEMBER = ',"hash":"';
const HASH_TAIL = /,"hash":"([0-9a-f]{64})"\}$/;

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The line for `body` (a record with `prev`, without `hash`), and its hash. */
export function sealLine(body: Record<string, unknown>): { line: string; hash: string } {
  const text = JSON.stringify(body);
  const hash = sha256(text);
  return { line: `${text.slice(0, -1)}${HASH_MEMBER}${hash}"}`, hash };
}

export type OpenedLine =
  | { ok: true; record: Record<string, unknown>; hash: string }
  | { ok: false; problem: string };

/** Reads one line back: it must be a JSON object ending in its own correct hash. */
export function openLine(line: string): OpenedLine {
  const tail = HASH_TAIL.exec(line);
  if (tail === null) return { ok: false, problem: 'has no hash at its end' };
  const hash = tail[1]!;
  const body = `${line.slice(0, tail.index)}}`;
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return { ok: false, problem: 'is not JSON' };
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return { ok: false, problem: 'is not a JSON object' };
  if (sha256(body) !== hash) return { ok: false, problem: 'was changed after it was written (its hash does not match its text)' };
  return { ok: true, record: record as Record<string, unknown>, hash };
}
