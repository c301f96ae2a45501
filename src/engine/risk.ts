// The risk classifier: one MCP tool -> a category, a risk level and the reason. Pure.
//
// Categories, by what a call can do:
//   read         only retrieves information
//   write        creates or changes data in a way that can be undone or corrected
//   execute      runs code, queries, jobs, workflows, deployments, processes
//   financial    moves money or creates or changes a financial obligation
//   destructive  deletes data or access, or resets state, beyond easy recovery
//
// Rules, in order:
// 1. Name tokens. The name is split at `_`, `-`, `.`, `/`, `--`, spaces and camelCase
//    (`TwilioStudioV2--DeleteFlow` -> twilio studio v2 delete flow); plurals of known words count.
//    - a destructive word anywhere (delete, remove, drop, destroy, purge, wipe, truncate,
//      revoke, erase, clear, prune, reset, terminate, ...) -> destructive;
//    - else the leading verb decides: the first word that is reliably a verb (create, get,
//      execute, ...), or when there is none the first word that can be one (run, tag, post,
//      query: `list_runs` reads, `run_pipeline` executes); in `x_or_y` / `x_and_y` names the
//      strongest of them. Its category: execute (run, exec, execute, trigger, invoke, deploy,
//      start, stop, cancel, evaluate, install, apply, ...), write (create, update, add, set,
//      send, post, move, upload, click, type, ...; sending a message is write, as in the
//      catalogue), read (get, list, search, fetch, read, describe, query, navigate, ...);
//    - financial wins over write and execute: a money verb as the leading verb (pay, charge,
//      refund, payout, capture, purchase; transfer only next to a money noun), or a write or
//      execute verb next to a money noun (invoice, subscription, payment, coupon, checkout, ...).
//      Reading money (list_invoices) is read, at risk 2.
// 2. When the name has no verb we know, the first sentence of the description decides, the
//    same way, its first verb leading.
// 3. The description tightens, never loosens: a destructive verb in its first sentence
//    ("Removes all documents ...") makes any tool destructive; a money noun there ("Purchase a
//    phone number") makes a write or execute tool financial.
// 4. Annotations are untrusted hints (a server may lie to look harmless), so they only
//    tighten: `destructiveHint: true` with `readOnlyHint: false` makes a tool destructive;
//    `readOnlyHint: false` makes a read-looking tool write; `openWorldHint: true` raises a read
//    to risk 2. `readOnlyHint: true` never makes anything read.
// 5. A tool nothing above recognises is write (rate-limited), to be reviewed by a person.
//
// Risk (1-5): read 1, or 2 for secrets, financial data or the open world; write 3; execute 4,
// or 5 for arbitrary code, shell or SQL; financial 4, or 5 when the call moves money;
// destructive 5.

import { TOOL_CLASSES, type ToolClass } from '../policy/model.js';

/** A risk category is one of the policy language's tool classes (`classes:`). */
export type Category = ToolClass;
export const CATEGORIES: readonly Category[] = TOOL_CLASSES;

export interface ToolAnnotations {
  title?: string;
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

export interface ToolInfo {
  name: string;
  description?: string;
  inputSchema?: unknown;
  annotations?: ToolAnnotations;
}

export interface Classification {
  category: Category;
  risk: 1 | 2 | 3 | 4 | 5;
  reason: string;
}

const DESTRUCTIVE = words(
  'delete del remove rm rmdir unlink drop destroy purge wipe truncate revoke erase clear prune reset nuke obliterate shred terminate uninstall expunge',
);
// In prose, only unambiguous verb forms: "clear", "drop" and "reset" are too often
// adjectives or nouns ("clear description", "drop-down").
const DESTRUCTIVE_PROSE = words('delete deletes deleting remove removes removing destroy destroys purge purges wipe wipes truncate truncates revoke revokes erase erases');
const MONEY_NOUNS = words(
  'invoice subscription payment payout refund charge checkout billing coupon discount funds money wallet purchase donation payroll order dispute',
);
// Creating one of these starts it: `create_execution` triggers a flow (execute, as in the
// catalogue), while `create_task` only records something (write).
const EXECUTION_NOUNS = words('execution run deployment build job');
const STARTING = words('create new submit');
// A subscription to notifications or events is not money.
// Nor is one to an MCP resource's updates ("Toggles simulated resource subscription updates").
const NOT_MONEY = words('notification notifications webhook webhooks event events feed newsletter topic resource resources updates');
const SENSITIVE = words('secret secrets env environment credential credentials password passwords token tokens apikey key keys auth private');
const ARBITRARY_CODE = words('code script shell bash sh cmd command javascript js python sql eval evaluate');

/** A verb's category, and whether the word is reliably a verb (`create`) or often a noun
 * (`run`, `tag`, `post`): a name's leading verb is its first reliable verb, or, when it has
 * none, its first ambiguous one. So `list_runs` reads and `run_pipeline` executes. */
type VerbCategory = Exclude<Category, 'destructive'>;
interface Verb {
  category: VerbCategory;
  reliable: boolean;
}
const VERBS = new Map<string, Verb>();
function verbs(category: VerbCategory, reliable: boolean, list: string): void {
  for (const w of list.split(/\s+/)) if (w !== '') VERBS.set(w, { category, reliable });
}
verbs('execute', true, 'execute exec invoke deploy evaluate eval launch spawn install restart reboot provision rollback dispatch simulate interpret cognify kill');
verbs('execute', false, 'run trigger start stop call apply build compile shell bash sh cmd scale cancel test pause resume suspend');
verbs('write', true, 'accept finalize finalise mark create update add edit write insert upsert modify move rename copy upload send reply assign toggle enable disable save import archive unarchive generate invite publish submit approve reject dismiss fill type click press hover drag resize handle remember unstar react configure replace mutate duplicate clone restore compress convert transform ingest annotate unfollow subscribe unsubscribe grant mute unmute register set put patch');
verbs('write', false, 'post comment merge fork push tag label link attach schedule star pin unpin lock unlock share follow transition manage close new store record change complete resolve reopen select');
verbs('read', true, 'get list search fetch read describe find show view retrieve lookup count inspect analyze analyse explain validate echo browse preview summarize summarise download export extract scrape crawl navigate goto verify compare calculate estimate suggest recommend discover translate render parse detect lint');
verbs('read', false, 'query check diff status info stats screenshot snapshot tree head tail map open wait monitor watch poll print display return ls cat grep scan audit plan look format');
// Money verbs: financial whatever the object (but see `transfer`).
verbs('financial', false, 'pay charge refund payout capture purchase buy withdraw deposit transfer');

const STRENGTH: Record<Category, number> = { read: 0, write: 1, execute: 2, financial: 3, destructive: 4 };

function words(list: string): ReadonlySet<string> {
  return new Set(list.split(/\s+/).filter(Boolean));
}

/** `TwilioStudioV2--DeleteFlow` -> [twilio, studio, v2, delete, flow]. */
export function nameTokens(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter((t) => t !== '')
    .map((t) => t.toLowerCase());
}

/** The base word if `token` or its plain plural / third person (`deletes`, `pushes`,
 * `queries`) is known to `has`. */
function base(token: string, has: (w: string) => boolean): string | undefined {
  if (has(token)) return token;
  if (token.endsWith('ies') && has(token.slice(0, -3) + 'y')) return token.slice(0, -3) + 'y';
  if (token.endsWith('es') && has(token.slice(0, -2))) return token.slice(0, -2);
  if (token.endsWith('s') && has(token.slice(0, -1))) return token.slice(0, -1);
  return undefined;
}

function findIn(set: ReadonlySet<string>, tokens: readonly string[]): string | undefined {
  for (const t of tokens) {
    const hit = base(t, (w) => set.has(w));
    if (hit !== undefined) return hit;
  }
  return undefined;
}

interface Found {
  word: string;
  verb: Verb;
}

function verbsIn(tokens: readonly string[]): Found[] {
  const out: Found[] = [];
  for (const t of tokens) {
    const word = base(t, (w) => VERBS.has(w));
    if (word !== undefined) out.push({ word, verb: VERBS.get(word)! });
  }
  return out;
}

interface Verdict {
  category: Category;
  /** The word that decided, for the reason. */
  word: string;
  /** For financial: a verb that moves money (risk 5). */
  movesMoney?: boolean;
}

/** The verb that says what the tool does: for `x_or_y` / `x_and_y` names the strongest of
 * them; otherwise the first reliable verb, or the first verb at all. */
function leadingVerb(found: readonly Found[], tokens: readonly string[], positional: boolean): Found | undefined {
  if (found.length === 0) return undefined;
  if (!positional && (tokens.includes('or') || tokens.includes('and'))) {
    return found.reduce((a, b) => (STRENGTH[b.verb.category] > STRENGTH[a.verb.category] ? b : a));
  }
  if (positional) return found[0];
  return found.find((f) => f.verb.reliable) ?? found[0];
}

/** Rules 1 and 2 over one token list: destructive words, then the leading verb, then money. */
function judge(tokens: readonly string[], destructive: ReadonlySet<string>, positional: boolean): Verdict | undefined {
  const wrecks = findIn(destructive, tokens);
  if (wrecks) return { category: 'destructive', word: wrecks };
  const lead = leadingVerb(verbsIn(tokens), tokens, positional);
  if (!lead) return undefined;
  const noun = findIn(NOT_MONEY, tokens) ? undefined : findIn(MONEY_NOUNS, tokens);
  if (lead.verb.category === 'financial') {
    // "transfer" alone is as often an issue or a repository as money.
    if (lead.word !== 'transfer' || noun) return { category: 'financial', word: lead.word, movesMoney: true };
    return { category: 'write', word: lead.word };
  }
  // Financial wins over write and execute when money is what is being changed.
  if (noun && (lead.verb.category === 'write' || lead.verb.category === 'execute')) {
    return { category: 'financial', word: `${lead.word} … ${noun}` };
  }
  const started = STARTING.has(lead.word) ? findIn(EXECUTION_NOUNS, tokens) : undefined;
  if (started) return { category: 'execute', word: `${lead.word} … ${started}` };
  return { category: lead.verb.category, word: lead.word };
}

function firstSentence(description: string | undefined): string {
  if (!description) return '';
  const text = description.trim();
  const end = text.search(/[.!?](\s|$)|\n/);
  return end === -1 ? text : text.slice(0, end);
}

function proseTokens(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((t) => t !== '');
}

export function classify(tool: ToolInfo): Classification {
  const tokens = nameTokens(tool.name);
  const prose = proseTokens(firstSentence(tool.description));
  const notes: string[] = [];

  let verdict = judge(tokens, DESTRUCTIVE, false);
  let reason = '';
  if (verdict) reason = `name has "${verdict.word}"`;
  else {
    verdict = judge(prose, DESTRUCTIVE_PROSE, true);
    if (verdict) reason = `description says "${verdict.word}"`;
  }
  if (!verdict) {
    verdict = { category: 'write', word: '' };
    reason = 'no known verb in the name or description: treated as write until reviewed';
  }

  // Rule 3: the description tightens whatever the name said: a destructive verb makes the
  // tool destructive, money ("Purchase a phone number") makes a write or execute financial.
  if (verdict.category !== 'destructive') {
    const word = findIn(DESTRUCTIVE_PROSE, prose);
    const money = findIn(NOT_MONEY, prose) ? undefined : findIn(MONEY_NOUNS, prose);
    if (word) {
      notes.push(`description says "${word}"`);
      verdict = { category: 'destructive', word };
    } else if (money && (verdict.category === 'write' || verdict.category === 'execute')) {
      notes.push(`description mentions "${money}"`);
      verdict = { category: 'financial', word: money };
    }
  }

  // Rule 4: annotations tighten only.
  const a = tool.annotations ?? {};
  if (a.destructiveHint === true && a.readOnlyHint === false && verdict.category !== 'destructive') {
    notes.push('annotated destructiveHint: true');
    verdict = { category: 'destructive', word: '' };
  } else if (a.readOnlyHint === false && verdict.category === 'read') {
    notes.push('annotated readOnlyHint: false');
    verdict = { category: 'write', word: '' };
  } else if (a.readOnlyHint === true && verdict.category !== 'read') {
    notes.push('readOnlyHint: true ignored (annotations are untrusted hints)');
  }

  const risk = riskOf(verdict, tokens, prose, a);
  return { category: verdict.category, risk, reason: [reason, ...notes].join('; ') };
}

function riskOf(verdict: Verdict, tokens: readonly string[], prose: readonly string[], a: ToolAnnotations): Classification['risk'] {
  switch (verdict.category) {
    case 'read': {
      const sensitive = findIn(SENSITIVE, tokens) ?? findIn(MONEY_NOUNS, tokens);
      return sensitive || a.openWorldHint === true ? 2 : 1;
    }
    case 'write':
      return 3;
    case 'execute':
      return findIn(ARBITRARY_CODE, tokens) || findIn(ARBITRARY_CODE, prose.slice(0, 8)) ? 5 : 4;
    case 'financial':
      return verdict.movesMoney ? 5 : 4;
    case 'destructive':
      return 5;
  }
}
