// Reading the YAML node tree with positions: the issue collector (`Reader`), alias and field
// helpers, the scalar readers and `shown()` for messages. Knows nothing of the policy language.
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type Document,
  type LineCounter,
  type Scalar,
  type YAMLError,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import type { LoadResult, PolicyIssue, PolicyValue, SourcePos } from './model.js';
import { suggest } from './suggest.js';

export type YNode = Scalar | YAMLMap | YAMLSeq;

export interface Field {
  key: string;
  keyPos: SourcePos;
  /** Aliases resolved; undefined for a key with no value node at all (`? key`). */
  value: YNode | undefined;
  /** Where the value was written, or the key when the value is blank (`counter:`). */
  valuePos: SourcePos;
}

/** Walks the YAML node tree rather than plain data so that every issue carries the line and
 * column of the node at fault, and collects every issue instead of stopping at the first: a
 * policy is fixed in one pass, not one error at a time. */
export class Reader {
  readonly issues: PolicyIssue[] = [];

  constructor(
    private readonly file: string,
    /** For aliases; undefined for a tree from yaml-simple.ts, which has none. */
    private readonly doc: Document | undefined,
    private readonly lineCounter: LineCounter,
  ) {}

  pos(offset: number): SourcePos {
    // LineCounter.linePos's search, without its intermediate object.
    const starts = this.lineCounter.lineStarts;
    let low = 0;
    let high = starts.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (starts[mid]! < offset) low = mid + 1;
      else high = mid;
    }
    if (starts[low] === offset) return { file: this.file, line: low + 1, col: 1 };
    if (low === 0) return { file: this.file, line: 0, col: offset };
    return { file: this.file, line: low, col: offset - starts[low - 1]! + 1 };
  }

  posOf(node: { range?: readonly [number, number, number] | null } | null | undefined): SourcePos {
    return this.pos(offsetOf(node));
  }

  issue(at: SourcePos, path: string, message: string): void {
    this.issues.push({ file: this.file, line: at.line, col: at.col, path, message });
  }

  fail(): LoadResult {
    // Stable: issues on one spot keep the order they were found in.
    const issues = [...this.issues].sort((a, b) => a.line - b.line || a.col - b.col);
    return { ok: false, issues };
  }

  /** Follows aliases (`*name`) to the node they stand for. */
  resolve(node: unknown): YNode | undefined {
    let current = node;
    for (let hops = 0; isAlias(current) && this.doc && hops < 100; hops++) current = current.resolve(this.doc);
    return isScalar(current) || isMap(current) || isSeq(current) ? current : undefined;
  }

  /** The map's entries by key, in file order. Reports duplicate keys, keys that are not
   * scalars, and (when `known` is given) unknown keys, which are then left out. */
  fields(map: YAMLMap, path: string, known?: readonly string[]): Map<string, Field> {
    const out = new Map<string, Field>();
    for (const pair of map.items) {
      const keyNode = this.resolve(pair.key);
      const keyAt = offsetOf(isAlias(pair.key) ? pair.key : keyNode);
      if (!keyNode || !isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
        this.issue(this.pos(keyAt), path, 'keys must be plain names');
        continue;
      }
      const key = scalarText(keyNode);
      const first = out.get(key);
      if (first) {
        this.issue(this.pos(keyAt), path, `duplicate key ${JSON.stringify(key)} (first defined at line ${first.keyPos.line})`);
        continue;
      }
      if (known && !known.includes(key)) {
        // Two edits turn almost any short word into another (`per` into `key`): keep
        // suggestions for words of three letters or fewer to one edit.
        const guess = suggest(key, known, key.length <= 3 ? 1 : 2);
        this.issue(this.pos(keyAt), path, `unknown key ${JSON.stringify(key)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}`);
        continue;
      }
      const written = pair.value as { range?: readonly [number, number, number] | null } | null;
      const range = written?.range;
      const blank = !range || (isScalar(written) && written.value === null && range[0] === range[1]);
      out.set(key, new ReadField(this, key, keyAt, this.resolve(pair.value), blank ? undefined : range[0]));
    }
    return out;
  }
}

function offsetOf(node: { range?: readonly [number, number, number] | null } | null | undefined): number {
  return node?.range?.[0] ?? 0;
}

/** A field whose positions are worked out when first asked for: most never are. */
class ReadField implements Field {
  #keyPos: SourcePos | undefined;
  #valuePos: SourcePos | undefined;

  constructor(
    private readonly reader: Reader,
    readonly key: string,
    private readonly keyAt: number,
    readonly value: YNode | undefined,
    /** undefined: the value is blank, and its position the key's. */
    private readonly valueAt: number | undefined,
  ) {}

  get keyPos(): SourcePos {
    return (this.#keyPos ??= this.reader.pos(this.keyAt));
  }

  get valuePos(): SourcePos {
    if (this.valueAt === undefined) return this.keyPos;
    return (this.#valuePos ??= this.reader.pos(this.valueAt));
  }
}

export function isNull(node: YNode | undefined): boolean {
  return node === undefined || (isScalar(node) && node.value === null);
}

/** A scalar as the user wrote it (`1.0` stays `1.0`). */
export function scalarText(node: Scalar): string {
  if (typeof node.value === 'string') return node.value;
  if (node.value === null) return '';
  return typeof node.source === 'string' ? node.source : String(node.value);
}

/** A value for `got ...` in messages. */
export function shown(node: YNode | undefined): string {
  if (node === undefined) return '""';
  if (isScalar(node)) return JSON.stringify(scalarText(node));
  return isSeq(node) ? 'a list' : 'a map';
}

export function nonEmptyString(node: YNode | undefined): string | undefined {
  return isScalar(node) && typeof node.value === 'string' && node.value.trim() !== '' ? node.value : undefined;
}

/** String, finite number, boolean or null; undefined for anything else (lists, maps, dates,
 * binary, infinities). */
export function plainScalar(node: YNode | undefined): { value: PolicyValue } | undefined {
  if (!isScalar(node)) return undefined;
  const v = node.value;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return { value: v };
  if (typeof v === 'number' && Number.isFinite(v)) return { value: v };
  return undefined;
}

export function finiteNumber(node: YNode | undefined): number | undefined {
  return isScalar(node) && typeof node.value === 'number' && Number.isFinite(node.value) ? node.value : undefined;
}

export function yamlMessage(error: YAMLError): string {
  if (error.code === 'MULTIPLE_DOCS') return 'policy file must hold a single YAML document';
  return `invalid YAML: ${error.message}`;
}

/** The later of two fields, to point at the one that conflicts with the first. */
export function later(a: Field, b: Field): Field {
  return a.keyPos.line > b.keyPos.line || (a.keyPos.line === b.keyPos.line && a.keyPos.col > b.keyPos.col) ? a : b;
}
