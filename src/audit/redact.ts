// What of a call's arguments the audit trail may keep (only with --log-args; otherwise it keeps
// only their hash). The policy's `audit.args` lists apply first: drop, then keep (stored as
// sent), then hash; everything they do not name goes through heuristics that redact what names
// or looks like a credential, a key or a payment card number.
import { canonicalDigest } from '../engine/canonical-json.js';
import type { CompiledPolicy } from '../engine/compile.js';
import type { AuditArgRules, ToolClass } from '../policy/model.js';

export type { AuditArgRules } from '../policy/model.js';

/** What stands in for a value that looks secret, or for the secret part of a string. */
export const REDACTED = '[redacted]';
/** What stands in for an object or array nested deeper than MAX_ARG_DEPTH. */
export const TOO_DEEP = '[too deep]';
/** The arguments object is level 1; objects and arrays below level 64 are not walked. */
export const MAX_ARG_DEPTH = 64;

// ---------------------------------------------------------------------------------------------
// The lists in force for a tool

const NO_RULES: AuditArgRules = Object.freeze({ keep: [], hash: [], drop: [] }) as AuditArgRules;

/** Tool name → its rules, per compiled policy (a loaded policy is never changed). Bounded like
 * the compiled policy's memos: an agent inventing tool names must not grow it without end. */
const ruleCache = new WeakMap<CompiledPolicy, Map<string, AuditArgRules>>();
const RULE_CACHE_LIMIT = 4096;

/** The `audit.args` lists for one tool: the top level's, plus those of the entries governing
 * the tool, chosen as its rules are (CompiledPolicy.governingEntries). Where both name the same
 * path the tool key's list wins. The result is shared and frozen. Pass the tool's class
 * whenever it is known: without it a `classes:` entry's lists cannot apply. */
export function auditArgRules(compiled: CompiledPolicy, tool: string, toolClass?: ToolClass | null): AuditArgRules {
  let cache = ruleCache.get(compiled);
  if (!cache) ruleCache.set(compiled, (cache = new Map()));
  const key = `${toolClass ?? ''}\u0000${tool}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let rules = merge(NO_RULES, compiled.policy.audit?.args);
  for (const entry of compiled.governingEntries(tool, toolClass)) rules = merge(rules, entry.audit?.args);
  freeze(rules);
  if (cache.size >= RULE_CACHE_LIMIT) cache.clear();
  cache.set(key, rules);
  return rules;
}

/** `own` added to `top`; a path `own` names leaves `top`'s lists. A new object. */
function merge(top: AuditArgRules, own: AuditArgRules | undefined): AuditArgRules {
  if (!own) return { keep: [...top.keep], hash: [...top.hash], drop: [...top.drop] };
  const named = new Set([...own.keep, ...own.hash, ...own.drop]);
  const add = (list: readonly string[], mine: readonly string[]): string[] => [...list.filter((p) => !named.has(p)), ...mine];
  return { keep: add(top.keep, own.keep), hash: add(top.hash, own.hash), drop: add(top.drop, own.drop) };
}

function freeze(rules: AuditArgRules): AuditArgRules {
  Object.freeze(rules.keep);
  Object.freeze(rules.hash);
  Object.freeze(rules.drop);
  return Object.freeze(rules);
}

// ---------------------------------------------------------------------------------------------
// Applying them

/** `sha256:<hex>` of the value's canonical JSON (engine/canonical-json.ts). */
export function hashValue(value: unknown): string {
  return `sha256:${canonicalDigest(value)}`;
}

type ListName = 'drop' | 'keep' | 'hash';

/** The lists as a tree of path segments: a node says what its own path is in, if anything. */
interface PathNode {
  list?: ListName;
  children?: Map<string, PathNode>;
}

const treeCache = new WeakMap<AuditArgRules, PathNode>();

function pathTree(rules: AuditArgRules): PathNode {
  const cached = treeCache.get(rules);
  if (cached) return cached;
  const root: PathNode = {};
  // In this order, so that at one path drop beats keep and keep beats hash.
  for (const list of ['drop', 'keep', 'hash'] as const) {
    for (const path of rules[list]) {
      if (!path.startsWith('args.')) continue;
      let node = root;
      for (const segment of path.slice('args.'.length).split('.')) {
        node.children ??= new Map();
        let next = node.children.get(segment);
        if (!next) node.children.set(segment, (next = {}));
        node = next;
      }
      node.list ??= list;
    }
  }
  // Only frozen rules (auditArgRules') cannot change under the cache.
  if (Object.isFrozen(rules) && Object.isFrozen(rules.keep) && Object.isFrozen(rules.hash) && Object.isFrozen(rules.drop)) {
    treeCache.set(rules, root);
  }
  return root;
}

/** How a value is written: `scan` through the heuristics, `kept` as sent, `secret` redacted
 * (under a key naming a secret, walked only to reach paths the lists name). */
type Mode = 'scan' | 'kept' | 'secret';
type Container = Record<string, unknown> | unknown[];

interface Task {
  value: unknown;
  node: PathNode | undefined;
  mode: Mode;
  /** Of `value`: the arguments object is 1. */
  depth: number;
  into: Container;
  key: string | number;
}

/** The arguments as the trail may keep them. Pure: `args` is not changed, and nothing of it is
 * shared with the result except scalars. Iterative, so any nesting is safe. */
export function redactArgs(args: Record<string, unknown>, rules: AuditArgRules): Record<string, unknown> {
  const holder: Record<string, unknown> = {};
  const work: Task[] = [{ value: args, node: pathTree(rules), mode: 'scan', depth: 1, into: holder, key: 'args' }];
  for (let task = work.pop(); task; task = work.pop()) {
    const { value, node, mode, depth, into, key } = task;
    if (value === null || typeof value !== 'object') {
      put(into, key, scalar(value, mode));
      continue;
    }
    if (depth > MAX_ARG_DEPTH) {
      put(into, key, TOO_DEEP);
      continue;
    }
    const isArray = Array.isArray(value);
    const out: Container = isArray ? [] : {};
    put(into, key, out);
    const entries: [string, unknown][] = isArray ? Array.from(value, (v: unknown, i) => [String(i), v]) : Object.entries(value);
    let index = 0;
    for (const [name, child] of entries) {
      const childNode = node?.children?.get(name);
      const list = childNode?.list;
      if (list === 'drop') continue;
      // Arrays close up over dropped elements; objects keep their members' order.
      const at: string | number = isArray ? index++ : name;
      if (list === 'hash') {
        put(out, at, hashValue(child));
        continue;
      }
      let childMode: Mode = list === 'keep' ? 'kept' : mode;
      if (childMode === 'scan' && !isArray && namesSecret(name)) {
        if (!childNode?.children) {
          put(out, at, REDACTED);
          continue;
        }
        childMode = 'secret';
      }
      // A placeholder now, so the member keeps its place whatever order the work is done in.
      put(out, at, undefined);
      work.push({ value: child, node: childNode, mode: childMode, depth: depth + 1, into: out, key: at });
    }
  }
  return holder.args as Record<string, unknown>;
}

/** Sets a member; `__proto__` as an own member, never as the prototype. */
function put(into: Container, key: string | number, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
  else (into as Record<string | number, unknown>)[key] = value;
}

function scalar(value: unknown, mode: Mode): unknown {
  if (mode === 'kept') return value;
  if (mode === 'secret') return REDACTED;
  if (typeof value === 'string') return redactString(value);
  // A card number sent as a JSON number (up to 16 digits fit a double exactly).
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1e12 && isCardNumber(String(value))) return REDACTED;
  return value;
}

// ---------------------------------------------------------------------------------------------
// Heuristics: names

/** Names matched against any run of a key's words (`db_password`, `clientSecret`, `X-API-Key`). */
const SECRET_ANYWHERE = new Set([
  'password',
  'passwords',
  'passwd',
  'secret',
  'secrets',
  'apikey',
  'apikeys',
  'privatekey',
  'privatekeys',
  'credential',
  'credentials',
  'authorization',
]);
/** Names matched against a key's last words only (`access_token` but not `token_count`,
 * `card_pin` but not `pinned`). */
const SECRET_LAST = new Set([
  'pass',
  'token',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'auth',
  'cookie',
  'cookies',
  'setcookie',
  'session',
  'otp',
  'pin',
  'cvv',
  'cvc',
  'ssn',
]);
/** Names matched only as the whole key (`email_signature` is text, not a secret). */
const SECRET_WHOLE = new Set(['signature']);
/** The longest name above, in words (`x api key` is found as `api key`). */
const MAX_NAME_WORDS = 2;

const nameCache = new Map<string, boolean>();

/** Whether a member's name says its value is secret: case-insensitive, with `-`, `_`, spaces
 * and camelCase as word breaks. */
export function namesSecret(key: string): boolean {
  const hit = nameCache.get(key);
  if (hit !== undefined) return hit;
  const words = (key.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+/g) ?? []).map((w) => w.toLowerCase());
  let secret = SECRET_WHOLE.has(words.join(''));
  for (let i = 0; i < words.length && !secret; i++) {
    let run = '';
    for (let j = i; j < words.length && j < i + MAX_NAME_WORDS; j++) {
      run += words[j];
      if (SECRET_ANYWHERE.has(run) || (j === words.length - 1 && SECRET_LAST.has(run))) secret = true;
    }
  }
  if (nameCache.size >= 4096) nameCache.clear();
  nameCache.set(key, secret);
  return secret;
}

// ---------------------------------------------------------------------------------------------
// Heuristics: values

interface Finder {
  re: RegExp;
  /** A second look at a match the pattern alone cannot settle. */
  confirm?: (match: string, group: string | undefined) => boolean;
  /** The replacement, when something of the match is kept. */
  with?: string;
}

const hasDigit = (text: string): boolean => /[0-9]/.test(text);

/** In order: a header's scheme goes with its credential, and a PEM block goes before any key
 * format could match inside it. Each pattern is linear: no nested or overlapping repeats. */
const FINDERS: readonly Finder[] = [
  // PEM private keys, to the end of the text when the block is cut short.
  { re: /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|$)/g },
  // Authorization header values.
  { re: /\bbearer\s+[A-Za-z0-9._~+/-]{12,}=*/gi, confirm: hasDigit },
  { re: /\bbasic\s+([A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])/gi, confirm: (_, b64) => b64 !== undefined && isUserPass(b64) },
  // The password of a URL's user:password@ (the user may be empty, redis://:pw@host; the
  // password runs to the authority's last @, as URL parsers read it). It starts only where a
  // run of scheme characters starts: `\b` would let every `.` or `-` of a long run begin a
  // match that scans the rest of it, quadratic in the run's length.
  { re: /(?<![a-z0-9+.-])([a-z0-9+.-]+:\/\/[^\s:/?#@]*:)[^\s/?#]+@/gi, with: `$1${REDACTED}@` },
  // JWTs (and JWEs): base64url parts, the first a JSON object ({" is eyJ). Only at the start of
  // a base64url run, for the same reason (a run of `-eyJ…` would be quadratic).
  { re: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{10,}(?:\.[A-Za-z0-9_-]*){2,4}/g },
  // Key formats: OpenAI and Anthropic, Stripe secret and restricted keys (publishable pk_ keys
  // are meant to be public), GitHub, Slack, AWS access key ids, Google, SendGrid, Twilio API
  // keys (not AC... account ids), GitLab, npm.
  { re: /\bsk-[A-Za-z0-9_-]{20,}/g, confirm: hasDigit },
  { re: /\b[sr]k_(?:live|test)_[A-Za-z0-9]{10,}/g },
  { re: /\bgh[pousr]_[A-Za-z0-9]{30,}/g },
  { re: /\bgithub_pat_[A-Za-z0-9_]{22,}/g },
  { re: /\bxox[abeoprs]-[A-Za-z0-9-]{10,}/g },
  { re: /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g },
  { re: /\bAIza[A-Za-z0-9_-]{35}/g },
  { re: /\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}/g },
  { re: /\bSK[0-9a-fA-F]{32}\b/g },
  { re: /\bglpat-[A-Za-z0-9_-]{20,}/g },
  { re: /\bnpm_[A-Za-z0-9]{36}\b/g },
  // Payment card numbers: 13 to 19 digits, single spaces or dashes between them allowed, not
  // part of a longer run of digits, of a card network's prefix and length, passing Luhn.
  { re: /(?<!\d[ -]?)\d(?:[ -]?\d){12,18}(?![ -]?\d)/g, confirm: (m) => isCardNumber(m.replace(/[ -]/g, '')) },
];

/** Nothing shorter can hold any of the patterns above. */
const SHORTEST_MATCH = 12;

/** The string with every credential, key or card number in it replaced by REDACTED. */
export function redactString(text: string): string {
  if (text.length < SHORTEST_MATCH) return text;
  let out = text;
  for (const { re, confirm, with: replacement } of FINDERS) {
    re.lastIndex = 0;
    if (!re.test(out)) continue;
    re.lastIndex = 0;
    out = out.replace(re, (match: string, group: unknown) => {
      if (confirm && !confirm(match, typeof group === 'string' ? group : undefined)) return match;
      return replacement === undefined ? REDACTED : replacement.replace('$1', typeof group === 'string' ? group : '');
    });
  }
  return out;
}

/** `Basic` credentials decode to `user:password`; ordinary words (`Basic information`) decode
 * to bytes that are not text. */
function isUserPass(b64: string): boolean {
  const text = Buffer.from(b64, 'base64').toString('utf8');
  return text.indexOf(':') > 0 && !/[\u0000-\u001f\u007f\ufffd]/.test(text);
}

/** Digits only: a card network's prefix and length, and the Luhn check. */
export function isCardNumber(digits: string): boolean {
  return /^[0-9]{13,19}$/.test(digits) && networkLength(digits) && luhn(digits);
}

function networkLength(d: string): boolean {
  const n = d.length;
  const p2 = Number(d.slice(0, 2));
  const p3 = Number(d.slice(0, 3));
  const p4 = Number(d.slice(0, 4));
  if (d[0] === '4') return n === 13 || n === 16 || n === 19; // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16; // Mastercard
  if (p2 === 34 || p2 === 37) return n === 15; // American Express
  if (p2 === 36 || p2 === 38 || p2 === 39 || (p3 >= 300 && p3 <= 305)) return n >= 14 && n <= 19; // Diners Club
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19; // JCB
  if (p2 === 50 || (p2 >= 56 && p2 <= 58)) return n >= 13; // Maestro
  if (d[0] === '6') return n >= 16; // Discover, UnionPay, Maestro
  return false;
}

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}
