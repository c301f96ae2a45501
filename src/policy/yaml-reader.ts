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
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
  ) {}

  pos(offset: number): SourcePos {
    const { line, col } = this.lineCounter.linePos(offset);
    return { file: this.file, line, col };
  }

  posOf(node: { range?: readonly [number, number, number] | null } | null | undefined): SourcePos {
    return this.pos(node?.range?.[0] ?? 0);
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
    for (let hops = 0; isAlias(current) && hops < 100; hops++) current = current.resolve(this.doc);
    return isScalar(current) || isMap(current) || isSeq(current) ? current : undefined;
  }

  /** The map's entries by key, in file order. Reports duplicate keys, keys that are not
   * scalars, and (when `known` is given) unknown keys, which are then left out. */
  fields(map: YAMLMap, path: string, known?: readonly string[]): Map<string, Field> {
    const out = new Map<string, Field>();
    for (const pair of map.items) {
      const keyNode = this.resolve(pair.key);
      const keyPos = this.posOf(isAlias(pair.key) ? pair.key : keyNode);
      if (!keyNode || !isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
        this.issue(keyPos, path, 'keys must be plain names');
        continue;
      }
      const key = scalarText(keyNode);
      const first = out.get(key);
      if (first) {
        this.issue(keyPos, path, `duplicate key ${JSON.stringify(key)} (first defined at line ${first.keyPos.line})`);
        continue;
      }
      if (known && !known.includes(key)) {
        // Two edits turn almost any short word into another (`per` into `key`): keep
        // suggestions for words of three letters or fewer to one edit.
        const guess = suggest(key, known, key.length <= 3 ? 1 : 2);
        this.issue(keyPos, path, `unknown key ${JSON.stringify(key)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}`);
        continue;
      }
      const written = pair.value as { range?: readonly [number, number, number] | null } | null;
      const blank = !written?.range || (isScalar(written) && written.value === null && written.range[0] === written.range[1]);
      out.set(key, { key, keyPos, value: this.resolve(pair.value), valuePos: blank ? keyPos : this.posOf(written) });
    }
    return out;
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
