// `audit:` at the top level and under a tool key: which argument paths the audit trail keeps as
// sent, hashes or leaves out. Paths are written as conditions write them (`args.a.b`).
import { isAlias, isMap, isSeq } from 'yaml';
import { checkArgsPath } from './load-conditions.js';
import type { AuditArgRules, AuditSettings, SourcePos } from './model.js';
import { isNull, shown, type Field, type Reader } from './yaml-reader.js';

export const AUDIT_KEYS = ['args'] as const;
/** The lists of `audit.args`, in the order they apply: drop, then keep, then hash. */
export const AUDIT_ARG_KEYS = ['drop', 'keep', 'hash'] as const;
export type AuditList = (typeof AUDIT_ARG_KEYS)[number];

/** One path of an audit block, where it was written. */
export interface AuditEntry {
  path: string;
  list: AuditList;
  /** 0-based position in its list. */
  index: number;
  at: SourcePos;
}

export interface ParsedAudit {
  settings: AuditSettings;
  entries: AuditEntry[];
  /** The issue path of the block's `args` map (`audit.args`, `tools.t.audit.args`). */
  issuePath: string;
}

const VERB: Record<AuditList, string> = { drop: 'dropped', keep: 'kept', hash: 'hashed whole' };
const TOP_VERB: Record<AuditList, string> = { drop: 'drops', keep: 'keeps', hash: 'hashes whole' };

/** `audit: {args: {keep, hash, drop}}`; `path` is the block's issue path (`audit`,
 * `tools.t.audit`). Undefined after an issue. */
export function readAudit(r: Reader, field: Field, path: string): ParsedAudit | undefined {
  const node = field.value;
  const issuePath = `${path}.args`;
  const empty = (): ParsedAudit => ({ settings: { args: { keep: [], hash: [], drop: [] }, pos: field.keyPos }, entries: [], issuePath });
  if (isNull(node)) return empty();
  if (!isMap(node)) {
    r.issue(field.valuePos, path, `audit must be a map with args, got ${shown(node)}`);
    return undefined;
  }
  const before = r.issues.length;
  const argsField = r.fields(node, path, AUDIT_KEYS).get('args');
  const parsed = empty();
  if (argsField && !isNull(argsField.value)) {
    const args = argsField.value;
    if (!isMap(args)) {
      r.issue(argsField.valuePos, issuePath, `args must be a map of keep, hash and drop lists, got ${shown(args)}`);
    } else {
      const lists = r.fields(args, issuePath, AUDIT_ARG_KEYS);
      for (const list of AUDIT_ARG_KEYS) {
        const listField = lists.get(list);
        if (listField) parsed.entries.push(...readList(r, listField, list, issuePath));
      }
    }
  }
  checkOverlaps(r, parsed.entries, issuePath);
  if (r.issues.length > before) return undefined;
  const rules: AuditArgRules = parsed.settings.args;
  for (const entry of parsed.entries) rules[entry.list].push(entry.path);
  return parsed;
}

function readList(r: Reader, field: Field, list: AuditList, issuePath: string): AuditEntry[] {
  const node = field.value;
  if (isNull(node)) return [];
  if (!isSeq(node)) {
    // One path written without brackets is the likeliest slip; show the fix.
    const written = checkArgsPath(node, list);
    const hint = 'path' in written ? ` (write ${list}: [${written.path}])` : '';
    r.issue(field.valuePos, issuePath, `${list} must be a list of "args." paths, got ${shown(node)}${hint}`);
    return [];
  }
  const entries: AuditEntry[] = [];
  node.items.forEach((item, index) => {
    const entry = r.resolve(item);
    const at = r.posOf(isAlias(item) ? item : entry ?? node);
    const checked = checkArgsPath(entry, `${list}[${index}]`);
    if ('message' in checked) r.issue(at, issuePath, checked.message);
    else entries.push({ path: checked.path, list, index, at });
  });
  return entries;
}

/** `args.a.b` is inside `args.a` (and not inside `args.ab`). */
export function isInside(inner: string, outer: string): boolean {
  return inner.length > outer.length && inner.startsWith(outer) && inner[outer.length] === '.';
}

/** Within one block: a path goes in one list once, and a path inside another must change
 * something (only a drop or a hash inside a kept value does: a dropped or hashed value is
 * gone whole, and a kept one is kept whole). */
function checkOverlaps(r: Reader, entries: readonly AuditEntry[], issuePath: string): void {
  const first = new Map<string, AuditEntry>();
  for (const entry of entries) {
    const seen = first.get(entry.path);
    if (!seen) {
      first.set(entry.path, entry);
      continue;
    }
    // Report on the later of the two, as duplicate keys are.
    const [earlier, later] = seen.at.line < entry.at.line || (seen.at.line === entry.at.line && seen.at.col <= entry.at.col) ? [seen, entry] : [entry, seen];
    const also = `${earlier.list}[${earlier.index}]`;
    const message =
      earlier.list === later.list
        ? `duplicate path ${JSON.stringify(later.path)} (also ${also})`
        : `${JSON.stringify(later.path)} is also in ${earlier.list} (${also}); a path goes in one list only`;
    r.issue(later.at, issuePath, message);
  }
  for (const inner of entries) {
    const outer = entries.find((o) => isInside(inner.path, o.path) && !refines(inner.list, o.list));
    if (outer) {
      r.issue(
        inner.at,
        issuePath,
        `${JSON.stringify(inner.path)} is inside ${JSON.stringify(outer.path)} (${outer.list}[${outer.index}]), which is ${VERB[outer.list]}, so it has no effect`,
      );
    }
  }
}

/** Whether a path in `inner` changes anything inside a path in `outer`. */
function refines(inner: AuditList, outer: AuditList): boolean {
  return outer === 'keep' && inner !== 'keep';
}

/** A tool key's paths against the top level's: the tool's list wins where both name the same
 * path, but a tool path inside a path the top level drops, hashes (or keeps, for a keep) would
 * change nothing. */
export function checkToolAudit(r: Reader, tool: ParsedAudit, top: ParsedAudit | undefined): void {
  if (!top) return;
  for (const inner of tool.entries) {
    const outer = top.entries.find((o) => isInside(inner.path, o.path) && !refines(inner.list, o.list));
    if (!outer) continue;
    // Unless the tool itself names the outer path, and so takes it over.
    if (tool.entries.some((e) => e.path === outer.path)) continue;
    r.issue(
      inner.at,
      tool.issuePath,
      `${JSON.stringify(inner.path)} is inside ${JSON.stringify(outer.path)}, which the top-level audit ${TOP_VERB[outer.list]} (line ${outer.at.line}), so it has no effect`,
    );
  }
}

/** `intercept validate` prints it when, under `default: deny`, a key holds `audit` but no `rules`. */
export const AUDIT_LISTS_TOOL_WARNING =
  'this key has audit but no rules, and under default: deny any key lists its tools, so their calls are allowed; write rules: [] to allow them on purpose, or remove the key';
