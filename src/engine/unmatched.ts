// The policy entries that name no tool the server offers: a `tools:` key (exact or pattern) or a
// `hide:` entry that matches nothing never applies, and nothing else says so. Pure: the offered
// names are passed in, and the did-you-mean comes from a suggester (policy/tool-names.ts), so
// the same check serves the proxy after a listing and `intercept validate` against a server.
//
// `classes:` entries are not checked: their names are a fixed vocabulary the loader already
// holds them to, and an entry for a class the server has no tool of yet is a policy written
// ahead of the server, not a mistake.
import type { SourcePos } from '../policy/model.js';
import { isGlob } from '../policy/spelling.js';
import type { CompiledPolicy } from './compile.js';
import { compileGlob, globMatches } from './glob.js';

export interface Suggestion {
  tool: string;
  also?: string[];
  by: 'spelling' | 'words';
}

export interface NameSuggester {
  suggest(name: string): Suggestion | undefined;
}

export interface UnmatchedEntry {
  section: 'tools' | 'hide';
  /** The key or entry as written. */
  name: string;
  pattern: boolean;
  /** The policy file, and where the entry is when the model knows (tool keys). */
  file: string;
  pos?: SourcePos;
  /** The offered tool it most likely means; absent when any answer would be a guess. Patterns
   * get none: which tools a pattern was meant to catch cannot be told from its text. */
  suggestion?: Suggestion;
}

/** Every entry of the policy that matches none of `tools`, in file order (`tools:` first). */
export function unmatchedEntries(compiled: CompiledPolicy, tools: readonly string[], suggester?: NameSuggester): UnmatchedEntry[] {
  const policy = compiled.policy;
  const offered = new Set(tools);
  const matchesNothing = (name: string): boolean => {
    if (!isGlob(name)) return name === '*' ? offered.size === 0 : !offered.has(name);
    const glob = compileGlob(name);
    for (const tool of offered) if (globMatches(glob, tool)) return false;
    return true;
  };
  const entry = (section: UnmatchedEntry['section'], name: string, pos: SourcePos | undefined): UnmatchedEntry => {
    const pattern = isGlob(name);
    const suggestion = pattern ? undefined : suggester?.suggest(name);
    return { section, name, pattern, file: pos?.file ?? policy.source, ...(pos ? { pos } : {}), ...(suggestion ? { suggestion } : {}) };
  };
  const out: UnmatchedEntry[] = [];
  for (const tp of policy.tools) if (matchesNothing(tp.name)) out.push(entry('tools', tp.name, tp.pos));
  policy.hide.forEach((name, i) => {
    if (matchesNothing(name)) out.push(entry('hide', name, policy.hidePos?.[i]));
  });
  return out;
}

/** `file:line:col: tools.create_conversation matches no tool the server offers; did you mean
 * "TwilioConversationsV1--CreateConversation"?`. */
export function describeUnmatched(e: UnmatchedEntry): string {
  const where = e.pos ? `${e.pos.file}:${e.pos.line}:${e.pos.col}` : e.file;
  const what = e.section === 'tools' ? `tools.${keyText(e.name)}` : `hide entry ${JSON.stringify(e.name)}`;
  const kind = e.pattern ? ' (a pattern)' : '';
  const s = e.suggestion;
  const hint = s ? `; did you mean ${JSON.stringify(s.tool)}${s.also ? ` (or ${s.also.map((t) => JSON.stringify(t)).join(', ')})` : ''}?` : '';
  return `${where}: ${what}${kind} matches no tool the server offers${hint}`;
}

function keyText(name: string): string {
  return /^[\w-]+$/.test(name) ? name : JSON.stringify(name);
}
