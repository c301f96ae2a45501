// Property-based fuzzing of the stdio framing and of frame parsing: whatever bytes arrive, cut
// wherever the pipe cuts them, the reader emits exactly the lines a simple model says (blank
// lines dropped, a trailing CR removed, over-long lines as one `oversize` each) and never holds
// more than the limit; parsing a frame never throws and never lets a too-deep value through.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { exceedsDepth } from '../../src/jsonrpc/depth.js';
import { LineReader, type Frame } from '../../src/jsonrpc/framing.js';
import { parseFrame } from '../../src/transport/channel.js';
import { checkProperty } from '../support/fuzz.js';

const LIMIT = 64;

/** What the reader should emit for `lines`, joined with LF and ended with `end`. */
function model(lines: string[]): Frame[] {
  const out: Frame[] = [];
  for (const line of lines) {
    const bytes = Buffer.byteLength(line, 'utf8');
    if (bytes > LIMIT) out.push({ kind: 'oversize', bytes });
    else {
      const text = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (text.trim() !== '') out.push({ kind: 'line', text });
    }
  }
  return out;
}

/** `bytes` cut at the given points (sorted, deduplicated, within range). */
function chunks(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(start, p));
    start = p;
  }
  return out;
}

const lineText = fc.oneof(
  fc.string({ maxLength: 80, unit: 'grapheme' }),
  fc.string({ maxLength: 10 }).map((s) => `${s}\r`),
  fc.constantFrom('', ' ', '\t', '\r', '\u0000', '\ufeff{"a":1}', 'é'.repeat(40), '{"jsonrpc":"2.0"}'),
).map((s) => s.replace(/\n/g, ''));

describe('fuzzing the framing', () => {
  it('emits the lines of any byte stream, however it is cut, and drops over-long ones whole', async () => {
    await checkProperty(
      fc.property(fc.array(lineText, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), fc.boolean(), (lines, cuts, finalNewline) => {
        const text = lines.join('\n') + (finalNewline && lines.length > 0 ? '\n' : '');
        const frames: Frame[] = [];
        const reader = new LineReader(LIMIT, (f) => frames.push(f));
        for (const chunk of chunks(Buffer.from(text, 'utf8'), cuts)) {
          reader.push(chunk);
          // Never more than the limit held, whatever the input.
          assert.ok((reader as unknown as { size: number }).size <= LIMIT);
        }
        reader.end();
        assert.deepEqual(frames, model(lines));
      }),
      500,
    );
  });

  it('parses any frame without throwing, and never hands on a value deeper than the limit', async () => {
    const nested = fc.tuple(fc.nat({ max: 80 }), fc.constantFrom('[', '{"a":')).map(([depth, open]) => {
      const close = open === '[' ? ']' : '}';
      return `${open.repeat(depth)}1${close.repeat(depth)}`;
    });
    await checkProperty(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v) ?? ''), nested), fc.integer({ min: 1, max: 40 }), (text, depth) => {
        const ev = parseFrame(text, depth);
        if (ev.kind === 'message') assert.equal(exceedsDepth(ev.value, depth), false);
        if (ev.kind === 'too_deep') assert.equal(exceedsDepth(ev.value, depth), true);
      }),
      500,
    );
  });
});
