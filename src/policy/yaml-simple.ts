// A fast reader for the YAML that policy files are written in. yaml's parseDocument reads about
// 1 MB/s (a 10,000-tool policy took over 3 s, all of it in yaml's lexer, parser and composer);
// this reads the common subset in one pass over the lines and builds the node tree yaml would:
// Scalar, YAMLMap, YAMLSeq and Pair nodes with the same value, source, type and range start,
// plain scalars resolved by yaml's own core-schema tags, and the same line table.
//
// The subset: block maps and block lists (a list may sit at its key's indentation), one-line
// plain, single-quoted and (escape-free) double-quoted scalars, one-line flow lists and maps of
// such scalars, comments and blank lines. Anything else — anchors, aliases, tags, block scalars,
// multi-line scalars, escapes, explicit keys, document markers, directives, tabs, CR, control
// characters, empty list items, unusual indentation, anything yaml might report as an error —
// returns undefined and the caller uses yaml itself. range[0], the one offset the readers use, is
// yaml's; the other two are where the written value ends (yaml's third also covers a comment).
import { Document, isMap, isPair, isScalar, isSeq, LineCounter, Pair, Scalar, YAMLMap, YAMLSeq, type Schema } from 'yaml';

export interface SimpleDocument {
  contents: YAMLMap;
  lineCounter: LineCounter;
}

type Node = Scalar | YAMLMap | YAMLSeq;

/** The tags yaml tries on a plain scalar, in its order (composeScalar's findScalarTagByTest). */
interface PlainTag {
  test: RegExp;
  format?: string;
  resolve(value: string, onError: (message: string) => void, options: object): unknown;
}

const BASE = new Document(null, { uniqueKeys: false, prettyErrors: false });
const SCHEMA: Schema = BASE.schema;
const PLAIN_TAGS: PlainTag[] = (SCHEMA.tags as { default?: unknown; collection?: unknown; test?: RegExp }[]).filter(
  (tag): tag is PlainTag & { default: true } => tag.default === true && !tag.collection && tag.test instanceof RegExp,
);

/** Anything outside these characters (controls, tab, CR, DEL, C1, BOM, surrogates, noncharacters)
 * goes to yaml. */
const UNUSUAL_CHAR = /[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]/;
/** Characters a plain scalar may not start with here (YAML's indicators). `-` is allowed before a
 * digit or a dot (negative numbers). */
const NOT_PLAIN_START = new Set('-?:,[]{}#&*!|>\'"%@`'.split('').map((c) => c.charCodeAt(0)));
/** yaml reports implicit keys longer than 1024 characters: lines (other than comments) longer
 * than this go to yaml. */
const MAX_LINE = 1000;

const SPACE = 32;
const DQUOTE = 34;
const HASH = 35;
const PERCENT = 37;
const SQUOTE = 39;
const COMMA = 44;
const DASH = 45;
const DOT = 46;
const COLON = 58;
const LBRACKET = 91;
const RBRACKET = 93;
const LBRACE = 123;
const RBRACE = 125;

class NotSimple extends Error {}

// yaml tells its nodes apart by a symbol-keyed property (identity.js) that its constructors define
// on every node with Object.defineProperty; on a large file that was most of the time spent
// building the tree. These classes carry the property on their prototype instead, and inherit
// everything else from yaml's classes: isScalar/isMap/isSeq/isPair and instanceof hold for them.
// If a yaml release marks nodes some other way, the check below turns this reader off.
const NODE_TYPE = Symbol.for('yaml.node.type');

/** A node's range, [start, end, end], is made when asked for: an array stored on every node was
 * a third of the tree's memory, and most are never read. Assigning one stores it. */
interface Spanned {
  start: number;
  end: number;
}
const RANGE: PropertyDescriptorMap = {
  range: {
    get(this: Spanned): [number, number, number] {
      return [this.start, this.end, this.end];
    },
    set(this: Spanned, value: unknown) {
      Object.defineProperty(this, 'range', { value, writable: true, enumerable: true, configurable: true });
    },
    configurable: true,
  },
};

class FastScalar implements Spanned {
  value: unknown;
  source: string;
  type: Scalar.Type;
  start: number;
  end: number;
  constructor(value: unknown, source: string, type: Scalar.Type, start: number, end: number) {
    this.value = value;
    this.source = source;
    this.type = type;
    this.start = start;
    this.end = end;
  }
}

class FastCollection implements Spanned {
  items: unknown[];
  flow: boolean;
  start: number;
  end: number;
  constructor(items: unknown[], flow: boolean, start: number, end: number) {
    this.items = items;
    this.flow = flow;
    this.start = start;
    this.end = end;
  }
}
class FastMap extends FastCollection {}
class FastSeq extends FastCollection {}

class FastPair {
  key: unknown;
  value: unknown;
  constructor(key: unknown, value: unknown) {
    this.key = key;
    this.value = value;
  }
}

function inherit(cls: { prototype: object }, base: { prototype: object }, sample: object, extra: PropertyDescriptorMap): void {
  Object.setPrototypeOf(cls.prototype, base.prototype);
  Object.defineProperties(cls.prototype, { [NODE_TYPE]: { value: (sample as Record<symbol, unknown>)[NODE_TYPE] }, ...extra });
}
const SCHEMA_PROP: PropertyDescriptorMap = { schema: { value: SCHEMA, writable: true, configurable: true } };
inherit(FastScalar, Scalar, new Scalar(null), RANGE);
inherit(FastMap, YAMLMap, new YAMLMap(), { ...RANGE, ...SCHEMA_PROP });
inherit(FastSeq, YAMLSeq, new YAMLSeq(), { ...RANGE, ...SCHEMA_PROP });
inherit(FastPair, Pair, new Pair(null), {});

const newScalar = (value: unknown, source: string, type: Scalar.Type, start: number, end: number): Scalar =>
  new FastScalar(value, source, type, start, end) as unknown as Scalar;
const newMap = (items: Pair[], flow: boolean, start: number, end: number): YAMLMap =>
  new FastMap(items, flow, start, end) as unknown as YAMLMap;
const newSeq = (items: unknown[], flow: boolean, start: number, end: number): YAMLSeq =>
  new FastSeq(items, flow, start, end) as unknown as YAMLSeq;
const newPair = (key: unknown, value: unknown): Pair => new FastPair(key, value) as unknown as Pair;

const NODES_WORK = (() => {
  const scalar: unknown = newScalar('x', 'x', 'PLAIN', 0, 1);
  const map: unknown = newMap([], false, 0, 0);
  const seq: unknown = newSeq([], false, 0, 0);
  const pair: unknown = newPair(scalar, scalar);
  const kinds = (node: unknown) => [isScalar(node), isMap(node), isSeq(node), isPair(node)].join();
  return (
    kinds(scalar) === 'true,false,false,false' &&
    kinds(map) === 'false,true,false,false' &&
    kinds(seq) === 'false,false,true,false' &&
    kinds(pair) === 'false,false,false,true' &&
    scalar instanceof Scalar &&
    map instanceof YAMLMap &&
    seq instanceof YAMLSeq &&
    pair instanceof Pair
  );
})();

/** The node tree and line table yaml would build for `source`, or undefined when `source` is not
 * in the subset described above. */
export function parseSimpleYaml(source: string): SimpleDocument | undefined {
  if (!NODES_WORK || UNUSUAL_CHAR.test(source)) return undefined;
  try {
    return new SimpleParser(source).document();
  } catch (err) {
    if (err instanceof NotSimple) return undefined;
    throw err;
  }
}

function notSimple(): never {
  throw new NotSimple('outside the simple subset');
}

class SimpleParser {
  /** Per content line (not blank, not a comment): offset of the first non-space character, of
   * the line's end, and the indentation. (Typed arrays: outside the heap the collector copies.) */
  private readonly starts: Int32Array;
  private readonly ends: Int32Array;
  private readonly indents: Int32Array;
  private readonly count: number;
  /** The content line being read. */
  private line = 0;
  /** Set by item(): whether what it read is a key (followed by `: `, or by a `:` ending the line),
   * and the offset just after it (after the colon, for a key). */
  private isKey = false;
  private after = 0;
  /** Items of the collections being read; each collection takes an exact-size copy of its own,
   * the top of the stack, when done. */
  private readonly stack: unknown[] = [];
  /** Plain scalars already resolved, by text (the text kept is the first one: repeated keys and
   * values then share one string). */
  private readonly resolved = new Map<string, { text: string; value: unknown; format: string | undefined }>();
  readonly lineCounter = new LineCounter();

  constructor(private readonly src: string) {
    const { lineCounter } = this;
    let lines = 1;
    for (let nl = src.indexOf('\n'); nl >= 0; nl = src.indexOf('\n', nl + 1)) lines++;
    this.starts = new Int32Array(lines);
    this.ends = new Int32Array(lines);
    this.indents = new Int32Array(lines);
    let count = 0;
    // As yaml's parser does: line 1 starts at 0, and a line after every newline.
    lineCounter.addNewLine(0);
    let lineStart = 0;
    const length = src.length;
    while (lineStart <= length) {
      let end = src.indexOf('\n', lineStart);
      if (end < 0) end = length;
      let p = lineStart;
      while (p < end && src.charCodeAt(p) === SPACE) p++;
      if (p < end && src.charCodeAt(p) !== HASH) {
        if (end - lineStart > MAX_LINE) notSimple();
        if (p === lineStart) {
          // Document markers and directives.
          const c = src.charCodeAt(p);
          if (c === PERCENT || src.startsWith('---', p) || src.startsWith('...', p)) notSimple();
        }
        this.starts[count] = p;
        this.ends[count] = end;
        this.indents[count] = p - lineStart;
        count++;
      }
      if (end === length) break;
      lineStart = end + 1;
      lineCounter.addNewLine(lineStart);
    }
    this.count = count;
  }

  document(): SimpleDocument {
    // An empty file, or one whose top is not a map: yaml (and the messages it leads to).
    if (this.count === 0 || this.indents[0] !== 0 || this.isSeqItem(0)) notSimple();
    const first = this.starts[0]!;
    const contents = this.map(0, first, this.item(first, this.ends[0]!, true));
    if (this.line !== this.count) notSimple();
    return { contents, lineCounter: this.lineCounter };
  }

  private isSeqItem(line: number): boolean {
    const s = this.starts[line]!;
    return this.src.charCodeAt(s) === DASH && (s + 1 === this.ends[line] || this.src.charCodeAt(s + 1) === SPACE);
  }

  private skipSpaces(p: number, end: number): number {
    while (p < end && this.src.charCodeAt(p) === SPACE) p++;
    return p;
  }

  /** The items pushed since `base`, as an array of their own. */
  private take(base: number): unknown[] {
    return this.stack.splice(base);
  }

  /** A block collection starting on the current line, more indented than its parent. */
  private block(): Node {
    const line = this.line;
    if (this.isSeqItem(line)) return this.seq(this.indents[line]!);
    const first = this.starts[line]!;
    return this.map(this.indents[line]!, first, this.item(first, this.ends[line]!, true));
  }

  /** A block map whose keys sit at column `col`; its first key, at `first` on the current line
   * (perhaps after a `- `), has just been read by item(). */
  private map(col: number, first: number, firstKey: Node): YAMLMap {
    const { src, starts, ends, indents, count, stack } = this;
    const base = stack.length;
    let key = firstKey;
    let last = first;
    for (;;) {
      const end = ends[this.line]!;
      if (!this.isKey) notSimple();
      const p = this.skipSpaces(this.after, end);
      let value: Node;
      if (p === end || src.charCodeAt(p) === HASH) {
        this.line++;
        const next = this.line;
        if (next < count && indents[next]! > col) value = this.block();
        else if (next < count && indents[next] === col && this.isSeqItem(next)) value = this.seq(col);
        else value = newScalar(null, '', 'PLAIN', p, p); // yaml's null for a key with no value
      } else {
        value = this.item(p, end, false);
        this.line++;
      }
      stack.push(newPair(key, value));
      last = (value as unknown as Spanned).end;
      const next = this.line;
      if (next >= count || indents[next]! < col) break;
      if (indents[next]! > col || this.isSeqItem(next)) notSimple();
      key = this.item(starts[next]!, ends[next]!, true);
    }
    return newMap(this.take(base) as Pair[], false, first, last);
  }

  /** A block list whose `- ` sit at column `col`, the first on the current line. */
  private seq(col: number): YAMLSeq {
    const { src, starts, ends, indents, count, stack } = this;
    const base = stack.length;
    const first = starts[this.line]!;
    let last = first;
    for (;;) {
      const line = this.line;
      const end = ends[line]!;
      const p = this.skipSpaces(starts[line]! + 1, end);
      let item: Node;
      if (p === end || src.charCodeAt(p) === HASH) {
        this.line++;
        // An empty item is a null whose position yaml decides: leave it to yaml.
        if (this.line >= count || indents[this.line]! <= col) notSimple();
        item = this.block();
      } else if (src.charCodeAt(p) === DASH && (p + 1 === end || src.charCodeAt(p + 1) === SPACE)) {
        notSimple(); // `- - x`
      } else {
        const written = this.item(p, end, true);
        if (this.isKey) item = this.map(p - (starts[line]! - indents[line]!), p, written);
        else {
          item = written;
          this.line++;
        }
      }
      stack.push(item);
      last = (item as unknown as Spanned).end;
      const next = this.line;
      if (next >= count || indents[next]! < col) break;
      if (indents[next]! > col) notSimple();
      // A key at this column ends a list written at its key's indentation; the caller checks.
      if (!this.isSeqItem(next)) break;
    }
    return newSeq(this.take(base), false, first, last);
  }

  /** A key or a value written on one line from `p`: a scalar or a flow collection, followed by
   * nothing, a comment or (a key) the colon. Sets isKey and after. */
  private item(p: number, end: number, allowKey: boolean): Node {
    const { src } = this;
    const c = src.charCodeAt(p);
    if (c === DQUOTE || c === SQUOTE) {
      const node = this.quoted(p, end);
      const after = node.end;
      if (after < end && src.charCodeAt(after) === COLON && (after + 1 === end || src.charCodeAt(after + 1) === SPACE)) {
        if (!allowKey) notSimple();
        this.isKey = true;
        this.after = after + 1;
        return node as unknown as Scalar;
      }
      this.endOfValue(after, end);
      return node as unknown as Scalar;
    }
    if (c === LBRACKET || c === LBRACE) {
      const node = c === LBRACKET ? this.flowSeq(p, end) : this.flowMap(p, end);
      this.endOfValue((node as unknown as Spanned).end, end);
      return node;
    }
    this.checkPlainStart(p, end);
    let i = p + 1;
    for (; i < end; i++) {
      const ch = src.charCodeAt(i);
      if (ch === COLON) {
        if (i + 1 === end || src.charCodeAt(i + 1) === SPACE) {
          // `a: b: c` is an error in yaml; `a : b` is rare.
          if (!allowKey || src.charCodeAt(i - 1) === SPACE) notSimple();
          const node = this.plain(p, i);
          // yaml would merge `<<` under some options; not worth knowing which.
          if (node.source === '<<') notSimple();
          this.isKey = true;
          this.after = i + 1;
          return node;
        }
      } else if (ch === HASH && src.charCodeAt(i - 1) === SPACE) break;
    }
    let e = i;
    while (src.charCodeAt(e - 1) === SPACE) e--;
    this.isKey = false;
    this.after = e;
    return this.plain(p, e);
  }

  /** After a value that ends at `after`: nothing but spaces and perhaps a comment. */
  private endOfValue(after: number, end: number): void {
    const s = this.skipSpaces(after, end);
    if (s !== end && !(s > after && this.src.charCodeAt(s) === HASH)) notSimple();
    this.isKey = false;
    this.after = after;
  }

  private checkPlainStart(p: number, end: number): void {
    const c = this.src.charCodeAt(p);
    if (c === DASH) {
      const next = p + 1 < end ? this.src.charCodeAt(p + 1) : 0;
      if (!((next >= 48 && next <= 57) || next === DOT)) notSimple();
    } else if (NOT_PLAIN_START.has(c)) notSimple();
  }

  /** A plain scalar `src[from, to)`, resolved as yaml's core schema does. */
  private plain(from: number, to: number): Scalar {
    const text = this.src.slice(from, to);
    let resolved = this.resolved.get(text);
    if (resolved === undefined) {
      const tag = PLAIN_TAGS.find((t) => t.test.test(text));
      if (tag === undefined) resolved = { text, value: text, format: undefined };
      else {
        const value = tag.resolve(text, notSimple, BASE.options);
        resolved = { text, value: isScalar(value) ? value.value : value, format: tag.format };
      }
      this.resolved.set(text, resolved);
    }
    const node = newScalar(resolved.value, resolved.text, 'PLAIN', from, to);
    if (resolved.format !== undefined) node.format = resolved.format;
    return node;
  }

  /** A one-line quoted scalar starting at `p`: double-quoted without escapes, or single-quoted. */
  private quoted(p: number, end: number): FastScalar {
    const { src } = this;
    let value: string;
    let close: number;
    const double = src.charCodeAt(p) === DQUOTE;
    if (double) {
      close = src.indexOf('"', p + 1);
      if (close < 0 || close >= end) notSimple();
      value = src.slice(p + 1, close);
      if (value.includes('\\')) notSimple();
    } else {
      close = p;
      let doubled = false;
      for (;;) {
        close = src.indexOf("'", close + 1);
        if (close < 0 || close >= end) notSimple();
        if (src.charCodeAt(close + 1) !== SQUOTE) break;
        doubled = true;
        close++;
      }
      value = src.slice(p + 1, close);
      if (doubled) value = value.replace(/''/g, "'");
    }
    return new FastScalar(value, value, double ? 'QUOTE_DOUBLE' : 'QUOTE_SINGLE', p, close + 1);
  }

  /** A scalar inside a one-line flow collection. */
  private flowScalar(p: number, end: number, isKey: boolean): FastScalar {
    const { src } = this;
    if (p >= end) notSimple();
    const c = src.charCodeAt(p);
    if (c === DQUOTE || c === SQUOTE) return this.quoted(p, end);
    this.checkPlainStart(p, end);
    let i = p + 1;
    for (; i < end; i++) {
      const ch = src.charCodeAt(i);
      if (ch === COMMA || ch === LBRACKET || ch === RBRACKET || ch === LBRACE || ch === RBRACE) break;
      if (ch === COLON) {
        if (isKey && src.charCodeAt(i + 1) === SPACE) break;
        notSimple();
      }
      if (ch === HASH) notSimple();
    }
    let e = i;
    while (src.charCodeAt(e - 1) === SPACE) e--;
    return this.plain(p, e) as unknown as FastScalar;
  }

  /** After an entry of a flow collection: the offset of the next entry, or of the closing
   * bracket `close`. */
  private nextEntry(after: number, end: number, close: number): number {
    const { src } = this;
    const i = this.skipSpaces(after, end);
    const ch = src.charCodeAt(i);
    if (ch === close) return i;
    if (ch !== COMMA) notSimple();
    const next = this.skipSpaces(i + 1, end);
    // `[a, ]` and `[a,, b]`: yaml's business.
    if (next >= end || src.charCodeAt(next) === close || src.charCodeAt(next) === COMMA) notSimple();
    return next;
  }

  /** `[a, "b", 1]` on one line. */
  private flowSeq(p: number, end: number): YAMLSeq {
    const { src, stack } = this;
    const base = stack.length;
    let i = this.skipSpaces(p + 1, end);
    while (i < end && src.charCodeAt(i) !== RBRACKET) {
      const item = this.flowScalar(i, end, false);
      stack.push(item);
      i = this.nextEntry(item.end, end, RBRACKET);
    }
    if (i >= end) notSimple();
    return newSeq(this.take(base), true, p, i + 1);
  }

  /** `{ max: 60, window: 60 }` on one line. */
  private flowMap(p: number, end: number): YAMLMap {
    const { src, stack } = this;
    const base = stack.length;
    let i = this.skipSpaces(p + 1, end);
    while (i < end && src.charCodeAt(i) !== RBRACE) {
      const key = this.flowScalar(i, end, true);
      if (key.source === '<<') notSimple();
      const colon = key.end;
      if (src.charCodeAt(colon) !== COLON || src.charCodeAt(colon + 1) !== SPACE) notSimple();
      const value = this.flowScalar(this.skipSpaces(colon + 1, end), end, false);
      stack.push(newPair(key, value));
      i = this.nextEntry(value.end, end, RBRACE);
    }
    if (i >= end) notSimple();
    return newMap(this.take(base) as Pair[], true, p, i + 1);
  }
}
