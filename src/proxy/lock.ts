// Tool pinning (the rug-pull defence): a lock file records a digest of each tool's definition
// as it was reviewed; the proxy hides, and refuses calls to, any tool whose definition the
// upstream now gives differently, or that the lock does not know.
//
// A definition is the tool's name, description, inputSchema, outputSchema and annotations,
// serialised canonically (object keys sorted, absent members left out) and hashed with
// SHA-256; each of those fields is also hashed alone, so a change can be named.
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { canonicalJson } from '../engine/canonical-json.js';
import type { Denial } from '../engine/types.js';
import { isObject } from '../jsonrpc/message.js';
import type { ToolLockCheck } from './policy-holder.js';

export const PINNED_FIELDS = ['name', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;
export type PinnedField = (typeof PINNED_FIELDS)[number];

export const LOCK_VERSION = 1;

export interface PinnedTool {
  /** `sha256:<hex>` of the canonical definition. */
  sha256: string;
  /** The digest of each field the definition has. */
  fields: Partial<Record<PinnedField, string>>;
}

export interface LockFileData {
  lockVersion: number;
  /** Who the server said it is; `url` (origin and path only: no credentials, no query) when it
   * was pinned over HTTP. */
  server: { name: string; version: string; url?: string };
  /** When the definitions were pinned (ISO 8601, UTC). */
  pinnedAt: string;
  tools: Record<string, PinnedTool>;
}

function sha256(text: string): string {
  return 'sha256:' + createHash('sha256').update(text).digest('hex');
}

const pins = new WeakMap<object, PinnedTool>();

/** The digests of one tool definition as an MCP server lists it (memoised per object). */
export function pinTool(definition: Readonly<Record<string, unknown>>): PinnedTool {
  const hit = pins.get(definition);
  if (hit) return hit;
  const picked: Record<string, unknown> = {};
  const fields: Partial<Record<PinnedField, string>> = {};
  for (const field of PINNED_FIELDS) {
    const value = definition[field];
    if (value === undefined) continue;
    picked[field] = value;
    fields[field] = sha256(canonicalJson(value));
  }
  const pin = { sha256: sha256(canonicalJson(picked)), fields };
  pins.set(definition, pin);
  return pin;
}

/** The fields whose digests differ (a field present on one side only counts as changed). */
export function changedFields(pinned: PinnedTool, current: PinnedTool): PinnedField[] {
  return PINNED_FIELDS.filter((f) => pinned.fields[f] !== current.fields[f]);
}

export function buildLock(server: LockFileData['server'], tools: readonly Record<string, unknown>[], now: Date): LockFileData {
  const pinned: Record<string, PinnedTool> = {};
  const sorted = tools.filter((t) => typeof t.name === 'string').sort((a, b) => ((a.name as string) < (b.name as string) ? -1 : 1));
  for (const tool of sorted) pinned[tool.name as string] = pinTool(tool);
  return { lockVersion: LOCK_VERSION, server, pinnedAt: now.toISOString(), tools: pinned };
}

/** The file's text: two-space JSON, tools in name order, a final newline. */
export function lockText(lock: LockFileData): string {
  const tools: Record<string, PinnedTool> = {};
  for (const name of Object.keys(lock.tools).sort()) {
    const t = lock.tools[name]!;
    const fields: Record<string, string> = {};
    for (const f of PINNED_FIELDS) if (t.fields[f] !== undefined) fields[f] = t.fields[f]!;
    tools[name] = { sha256: t.sha256, fields };
  }
  const server = { name: lock.server.name, version: lock.server.version, ...(lock.server.url !== undefined ? { url: lock.server.url } : {}) };
  const ordered = { lockVersion: lock.lockVersion, server, pinnedAt: lock.pinnedAt, tools };
  return JSON.stringify(ordered, null, 2) + '\n';
}

/** Writes the file whole or not at all (a reader never sees half a lock). */
export async function writeLockFile(path: string, lock: LockFileData): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, lockText(lock));
  await rename(temp, path);
}

/** Reads and checks a lock file; the error is a sentence for the user. */
export async function readLockFile(path: string): Promise<{ ok: true; lock: LockFileData } | { ok: false; message: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return { ok: false, message: `cannot read the lock file ${path}: ${err instanceof Error ? err.message : String(err)}` };
  }
  return parseLock(text, path);
}

export function parseLock(text: string, path: string): { ok: true; lock: LockFileData } | { ok: false; message: string } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { ok: false, message: `the lock file ${path} is not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  const bad = (why: string) => ({ ok: false as const, message: `the lock file ${path} is not valid: ${why}` });
  if (!isObject(data)) return bad('it must be a JSON object');
  if (data.lockVersion !== LOCK_VERSION) return bad(`lockVersion must be ${LOCK_VERSION}, got ${JSON.stringify(data.lockVersion)}`);
  if (!isObject(data.tools)) return bad('"tools" must be an object of tool names');
  const server = isObject(data.server) ? data.server : {};
  const tools: Record<string, PinnedTool> = {};
  for (const [name, entry] of Object.entries(data.tools)) {
    if (!isObject(entry) || typeof entry.sha256 !== 'string' || !isObject(entry.fields)) {
      return bad(`tool ${JSON.stringify(name)} needs "sha256" and "fields"`);
    }
    const fields: Partial<Record<PinnedField, string>> = {};
    for (const f of PINNED_FIELDS) if (typeof entry.fields[f] === 'string') fields[f] = entry.fields[f] as string;
    tools[name] = { sha256: entry.sha256, fields };
  }
  return {
    ok: true,
    lock: {
      lockVersion: LOCK_VERSION,
      server: {
        name: String(server.name ?? 'unknown'),
        version: String(server.version ?? 'unknown'),
        ...(typeof server.url === 'string' ? { url: server.url } : {}),
      },
      pinnedAt: typeof data.pinnedAt === 'string' ? data.pinnedAt : '',
      tools,
    },
  };
}

export interface LockDiff {
  added: string[];
  removed: string[];
  changed: { name: string; fields: PinnedField[] }[];
}

/** What re-pinning `current` would change in `previous`. */
export function diffLock(previous: LockFileData, current: LockFileData): LockDiff {
  const diff: LockDiff = { added: [], removed: [], changed: [] };
  for (const name of Object.keys(current.tools).sort()) {
    const before = previous.tools[name];
    if (before === undefined) diff.added.push(name);
    else if (before.sha256 !== current.tools[name]!.sha256) diff.changed.push({ name, fields: changedFields(before, current.tools[name]!) });
  }
  for (const name of Object.keys(previous.tools).sort()) if (current.tools[name] === undefined) diff.removed.push(name);
  return diff;
}

/** Why a tool is refused, for the agent and the log. */
export type PinProblem =
  | { kind: 'changed'; fields: PinnedField[] }
  | { kind: 'not_pinned' }
  | { kind: 'not_listed' };

/** The lock in force: checks definitions against the pinned digests. */
export class ToolLock implements ToolLockCheck {
  private readonly warned = new Set<string>();

  constructor(
    readonly data: LockFileData,
    /** The lock file's name as the user gave it, for messages. */
    readonly file: string,
  ) {}

  /** undefined when the definition is the pinned one. */
  problem(name: string, definition: Readonly<Record<string, unknown>> | null): PinProblem | undefined {
    if (definition === null) return { kind: 'not_listed' };
    const pinned = this.data.tools[name];
    if (pinned === undefined) return { kind: 'not_pinned' };
    const current = pinTool(definition);
    if (current.sha256 === pinned.sha256) return undefined;
    return { kind: 'changed', fields: changedFields(pinned, current) };
  }

  isPinned(name: string, definition: Readonly<Record<string, unknown>>): boolean {
    return this.problem(name, definition) === undefined;
  }

  check(name: string, definition: Readonly<Record<string, unknown>> | null): Denial | undefined {
    const problem = this.problem(name, definition);
    if (problem === undefined) return undefined;
    const denial: Denial = { kind: 'unpinned', message: this.message(name, problem), details: { lock: this.file, problem: problem.kind } };
    if (problem.kind === 'changed') denial.details!.fields = problem.fields;
    return denial;
  }

  message(name: string, problem: PinProblem): string {
    const tool = JSON.stringify(name);
    const accept = 'run intercept lock --update to accept it';
    switch (problem.kind) {
      case 'changed':
        return `Tool ${tool} changed since it was pinned in ${this.file} (${problem.fields.join(', ')}); ${accept}`;
      case 'not_pinned':
        return `Tool ${tool} is not pinned in ${this.file}; ${accept}`;
      case 'not_listed':
        return `Tool ${tool} is not in the server's tools/list, so its definition cannot be checked against ${this.file}`;
    }
  }

  /** true the first time this definition of this tool is seen unpinned: warn once, not per call. */
  firstSighting(name: string, definition: Readonly<Record<string, unknown>> | null): boolean {
    const key = `${name}\u0000${definition === null ? '-' : pinTool(definition).sha256}`;
    if (this.warned.has(key)) return false;
    this.warned.add(key);
    return true;
  }
}
