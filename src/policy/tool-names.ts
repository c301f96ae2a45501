// "Did you mean" for a policy's tool names against the names a server offers. Two kinds of
// mistake are common: a typo (`echoo` for `echo`), and a policy written for another spelling of
// the same server (the catalogue's `create_conversation` for the Twilio server's
// `TwilioConversationsV1--CreateConversation`). The first is found by edit distance, the second
// by the words of both names. Everything about the offered names is worked out once, so
// thousands of tools and hundreds of entries stay cheap.
import { suggest } from './suggest.js';

export interface ToolNameSuggestion {
  /** The offered tool most likely meant. */
  tool: string;
  /** Other tools that fit exactly as well (at most two). */
  also?: string[];
  /** `spelling`: within a couple of edits; `words`: the same words, spelt another way. */
  by: 'spelling' | 'words';
}

/** Names longer than this are not analysed (MCP tool names are short; this bounds the work). */
const MAX_NAME = 256;
/** Offered names beyond this many are not considered. */
const MAX_TOOLS = 20_000;
const MAX_EDITS = 2;

/** Verbs that mean the same operation, so `send_message` finds `CreateMessage`. */
const VERB_GROUPS: readonly (readonly string[])[] = [
  ['get', 'fetch', 'read', 'retrieve', 'show', 'view', 'describe', 'lookup'],
  ['list', 'enumerate', 'browse'],
  ['search', 'find', 'query'],
  ['create', 'add', 'new', 'make', 'send', 'post', 'insert', 'submit'],
  ['update', 'edit', 'modify', 'set', 'patch', 'change', 'rename'],
  ['delete', 'remove', 'destroy', 'drop', 'erase', 'purge'],
  ['run', 'execute', 'exec', 'invoke', 'trigger', 'start'],
];
const VERB_GROUP = new Map<string, number>(VERB_GROUPS.flatMap((group, i) => group.map((verb) => [verb, i] as const)));
/** The verb group of a word; -1 for a word that is not a verb. */
const groupOf = (word: string): number => VERB_GROUP.get(word) ?? -1;

/** A name's words: `body` after its namespace, `prefix` the namespace (`TwilioConversationsV1`
 * in `TwilioConversationsV1--CreateConversation`, `github` in `github.create_issue`). Words are
 * lower case and singular, so `Conversations` and `conversation` are one word. */
export interface NameWords {
  prefix: string[];
  body: string[];
}

/** Splits at `--`, `.`, `/`, `__` and `:` (namespace), other punctuation, and case changes. */
export function nameWords(name: string): NameWords {
  const text = name.slice(0, MAX_NAME);
  const cut = Math.max(text.lastIndexOf('--'), text.lastIndexOf('__'), text.lastIndexOf('.'), text.lastIndexOf('/'), text.lastIndexOf(':'));
  const body = words(cut < 0 ? text : text.slice(cut + 1));
  // A name that is all namespace (`foo--`) keeps its words as its body.
  return cut < 0 || body.length === 0 ? { prefix: [], body: words(text) } : { prefix: words(text.slice(0, cut)), body };
}

const WORD = /\p{Lu}+(?!\p{Ll})|\p{Lu}?\p{Ll}+|\p{N}+|\p{L}+/gu;

function words(text: string): string[] {
  return (text.match(WORD) ?? []).map(singular);
}

/** Lower case, and a plural made singular the simple way (both sides get the same treatment,
 * so only consistency matters). */
function singular(word: string): string {
  const w = word.toLowerCase();
  if (w.length > 4 && w.endsWith('ies')) return `${w.slice(0, -3)}y`;
  if (w.length > 3 && w.endsWith('s') && !w.endsWith('ss')) return w.slice(0, -1);
  return w;
}

interface Offered {
  name: string;
  lower: string;
  /** Word ids (see ToolNameIndex.ids) of the namespace and of the rest. */
  prefix: Int32Array;
  body: Int32Array;
}

/** The offered names, indexed for suggestions. */
export class ToolNameIndex {
  private readonly tools: Offered[] = [];
  /** Every word of an offered name, as a small number, so that comparing is cheap. */
  private readonly ids = new Map<string, number>();
  /** Per word id: its verb group, or -1. */
  private readonly groups: number[] = [];
  /** Per word id: the tools (indexes, in listing order) whose body has it. */
  private readonly byWord: number[][] = [];
  /** Name length -> the tools (indexes, in listing order) of that length, for edit distance. */
  private readonly byLength = new Map<number, number[]>();
  /** Per tool, its words shared with the name being looked up (reset after each look-up). */
  private readonly shared: Int32Array;

  constructor(names: Iterable<string>) {
    for (const name of names) {
      if (this.tools.length >= MAX_TOOLS) break;
      if (name.length > MAX_NAME) continue;
      const words = nameWords(name);
      const body = Int32Array.from(new Set(words.body), (w) => this.idOf(w));
      const i = this.tools.push({ name, lower: name.toLowerCase(), prefix: Int32Array.from(words.prefix, (w) => this.idOf(w)), body }) - 1;
      for (const id of body) this.byWord[id]!.push(i);
      const sameLength = this.byLength.get(name.length);
      if (sameLength === undefined) this.byLength.set(name.length, [i]);
      else sameLength.push(i);
    }
    this.shared = new Int32Array(this.tools.length);
  }

  private idOf(word: string): number {
    let id = this.ids.get(word);
    if (id === undefined) {
      id = this.groups.push(groupOf(word)) - 1;
      this.ids.set(word, id);
      this.byWord.push([]);
    }
    return id;
  }

  /** The offered tool `name` most likely means; undefined when any answer would be a guess. */
  suggest(name: string): ToolNameSuggestion | undefined {
    if (name.length > MAX_NAME) return undefined;
    const typo = this.closeSpelling(name);
    if (typo !== undefined) return { tool: typo, by: 'spelling' };
    return this.sameWords(name);
  }

  /** Within MAX_EDITS edits, and fewer than half the name's length (`ab` is not `cd`). */
  private closeSpelling(name: string): string | undefined {
    const bound = Math.min(MAX_EDITS, Math.floor((name.length - 1) / 2));
    if (bound < 1) return undefined;
    const letters = new LetterCount(name.toLowerCase());
    const near: number[] = [];
    for (let length = name.length - bound; length <= name.length + bound; length++) {
      // Each edit changes the letters used by at most two, so most names are ruled out by
      // counting letters, before the quadratic distance.
      for (const i of this.byLength.get(length) ?? []) if (letters.differenceFrom(this.tools[i]!.lower) <= 2 * bound) near.push(i);
    }
    letters.release();
    // suggest() breaks ties by order: the earliest listed wins.
    near.sort((a, b) => a - b);
    return suggest(name, near.map((i) => this.tools[i]!.name), bound);
  }

  /** The tool whose words hold the most of the name's words: the same verb (or one meaning the
   * same) preferred, then the fewest words of its own. At least half the name's words other
   * than verbs must be found, and one at the least. */
  private sameWords(name: string): ToolNameSuggestion | undefined {
    const entry = nameWords(name);
    // A word no offered name has matches nothing (-1).
    const idsOf = (words: readonly string[]) => [...new Set(words)].map((w) => this.ids.get(w) ?? -1);
    const entryIds = idsOf([...entry.prefix, ...entry.body]);
    const verbs = entry.body.filter((w) => groupOf(w) >= 0);
    const verbIds = idsOf(verbs);
    const verbGroups = verbs.map(groupOf);
    const contentWords = [...new Set(entry.body.filter((w) => groupOf(w) < 0))];
    const content = contentWords.map((w) => this.ids.get(w) ?? -1);
    const contentCount = contentWords.length;

    // Only tools sharing a word can fit, and of those only the ones sharing the most: count
    // each tool's shared words from the postings (a name of verbs alone must find its verb).
    const shared = this.shared;
    const touched: number[] = [];
    let most = 0;
    for (const id of contentCount > 0 ? content : verbIds) {
      const postings = id < 0 ? [] : this.byWord[id]!;
      for (let k = 0; k < postings.length; k++) {
        const i = postings[k]!;
        const n = ++shared[i]!;
        if (n === 1) touched.push(i);
        if (n > most) most = n;
      }
    }
    let best: number[] = [];
    if (most > 0 && most * 2 >= contentCount) {
      let bestKey: Key | undefined;
      for (const i of touched) {
        if (shared[i] !== most) continue;
        const key = this.fit(this.tools[i]!, entryIds, verbIds, verbGroups);
        if (contentCount === 0 && key[0] < 2) continue;
        const cmp = bestKey === undefined ? 1 : compareKeys(key, bestKey);
        if (cmp > 0) {
          bestKey = key;
          best = [i];
        } else if (cmp === 0) best.push(i);
      }
    }
    for (const i of touched) shared[i] = 0;
    // A name of verbs alone that several tools fit as well tells nothing about which.
    if (best.length === 0 || (contentCount === 0 && best.length > 1)) return undefined;
    const [first, ...rest] = best.sort((x, y) => x - y).map((i) => this.tools[i]!.name);
    return rest.length > 0 ? { tool: first!, also: rest.slice(0, 2), by: 'words' } : { tool: first!, by: 'words' };
  }

  /** How a tool sharing the most words fits: verb (2 the same, 1 one meaning the same), the
   * name's words found only in the tool's namespace (`slack_post_message` for
   * `slack.post_message`), and minus the tool's words the name does not have. */
  private fit(tool: Offered, entryIds: readonly number[], verbIds: readonly number[], verbGroups: readonly number[]): Key {
    let verb = 0;
    let extra = 0;
    for (const id of tool.body) {
      if (verbIds.includes(id)) verb = 2;
      else if (verbGroups.includes(this.groups[id]!)) verb = Math.max(verb, 1);
      else if (!entryIds.includes(id)) extra++;
    }
    let inPrefix = 0;
    for (const id of entryIds) if (id >= 0 && tool.prefix.includes(id) && !tool.body.includes(id)) inPrefix++;
    return [verb, inPrefix, -extra];
  }
}

/** How well a tool fits a name, compared in order. */
type Key = [verb: number, inPrefix: number, extra: number];

function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** One UTF-16 unit count per code, shared by every LetterCount (one is in use at a time). */
const COUNTS = new Int32Array(65536);

/** The characters of one string counted, to compare many others against without allocating. */
class LetterCount {
  private readonly taken: number[] = [];

  constructor(private readonly text: string) {
    for (let i = 0; i < text.length; i++) COUNTS[text.charCodeAt(i)]!++;
  }

  /** How many characters the two strings do not have in common, counted as multisets. */
  differenceFrom(other: string): number {
    let common = 0;
    for (let i = 0; i < other.length; i++) {
      const c = other.charCodeAt(i);
      if (COUNTS[c]! > 0) {
        COUNTS[c]!--;
        this.taken.push(c);
        common++;
      }
    }
    for (const c of this.taken) COUNTS[c]!++;
    this.taken.length = 0;
    return this.text.length + other.length - 2 * common;
  }

  release(): void {
    for (let i = 0; i < this.text.length; i++) COUNTS[this.text.charCodeAt(i)]!--;
  }
}
