// The policy in force (and the pinned tool definitions beside it), and hot reload of both:
// a valid edit applies to the next call; an invalid one is reported and the last good stays.
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { compile, type CompiledPolicy } from '../engine/compile.js';
import type { Denial } from '../engine/types.js';
import type { Logger } from '../log.js';
import { formatIssue } from '../policy/format.js';
import { parsePolicy } from '../policy/load.js';
import { sha256 } from '../audit/chain.js';
import type { EventSink, PolicyUnmatchedEvent } from '../audit/event.js';
import { describeUnmatched, unmatchedEntries, type UnmatchedEntry } from '../engine/unmatched.js';
import type { Policy } from '../policy/model.js';
import { ToolNameIndex } from '../policy/tool-names.js';

/** Pinned tool definitions (a lock file) in force beside the policy. Definitions are the
 * upstream's tools/list entries as they are. */
export interface ToolLockCheck {
  /** The lock file, as named to the user. */
  readonly file: string;
  /** Whether this definition of the tool is the pinned one. */
  isPinned(name: string, definition: Readonly<Record<string, unknown>>): boolean;
  /** The denial for a call to the tool, or undefined when its definition is pinned; `null`
   * when the upstream does not list the tool. */
  check(name: string, definition: Readonly<Record<string, unknown>> | null): Denial | undefined;
  /** true the first time an unpinned definition is seen, so that it is logged once. */
  firstSighting(name: string, definition: Readonly<Record<string, unknown>> | null): boolean;
}

/** Logs a tool whose definition is not the pinned one, once per definition. */
export function noteUnpinned(lock: ToolLockCheck, log: Logger, name: string, definition: Readonly<Record<string, unknown>> | null, message: string): void {
  if (lock.firstSighting(name, definition)) log.warn(`tool hidden by the lock file: ${message}`, { tool: name, lock: lock.file });
}

/** The last whole listing of the upstream's tools seen under each loaded policy, and the
 * policies already checked against one. Keyed by the loaded policy, which every session of a
 * proxy shares and a lock change keeps: each policy is checked once per process. */
const listedUnder = new WeakMap<Policy, readonly string[]>();
const checked = new WeakSet<Policy>();

/** A whole listing of the upstream's tools: the first one under a policy tells, on the log and
 * to the observers, every policy entry that matches none of them, with a did-you-mean. */
export function noteListing(policy: PolicyInForce, tools: readonly string[], log: Logger, events: EventSink | undefined): void {
  listedUnder.set(policy.policy, tools);
  if (checked.has(policy.policy)) return;
  checked.add(policy.policy);
  for (const entry of unmatchedEntries(policy, tools, new ToolNameIndex(tools))) {
    log.warn(describeUnmatched(entry));
    events?.emit(unmatchedEvent(entry, tools.length));
  }
}

function unmatchedEvent(e: UnmatchedEntry, tools: number): PolicyUnmatchedEvent {
  const event: PolicyUnmatchedEvent = { type: 'policy_unmatched', file: e.file, section: e.section, name: e.name, tools };
  if (e.pos) event.line = e.pos.line;
  if (e.pattern) event.pattern = true;
  if (e.suggestion) event.suggestion = e.suggestion.tool;
  if (e.suggestion?.also) event.alternatives = e.suggestion.also;
  return event;
}

/** What is in force: the compiled policy, and the pinned definitions beside it (a tool whose
 * definition is not pinned is hidden and refused). */
export type PolicyInForce = CompiledPolicy & { readonly lock?: ToolLockCheck };

/** The policy with a lock attached (or without one, for undefined). */
export function withLock(compiled: PolicyInForce, lock: ToolLockCheck | undefined): PolicyInForce {
  const { lock: _previous, ...rest } = compiled;
  return lock === undefined ? rest : { ...rest, lock };
}

export class PolicyHolder {
  private policy: PolicyInForce;
  private watcher?: { close(): void };
  private lastText?: string;
  private lock?: ToolLockCheck;
  private lockWatcher?: { close(): void };
  /** Called after a successful reload. */
  onReload?: (previous: PolicyInForce, next: PolicyInForce) => void;
  /** Told of every reload, taken or rejected (config_reload events). */
  events?: EventSink;
  private lockText?: string;

  /** The text of the policy in force (lastText may be a rejected edit). */
  private inForceText?: string;

  constructor(initial: PolicyInForce, initialText?: string) {
    this.policy = initial;
    this.lastText = initialText;
    this.inForceText = initialText;
  }

  /** sha256 hex of the policy text in force. */
  get policyHash(): string {
    return sha256(this.inForceText ?? '');
  }

  current(): PolicyInForce {
    return this.policy;
  }

  /** Puts a lock file's pins in force beside the policy (kept across policy reloads). */
  setLock(lock: ToolLockCheck | undefined): void {
    this.lock = lock;
    this.policy = withLock(this.policy, lock);
  }

  /** Watches the lock file as `watch` does the policy: `intercept lock --update` takes effect
   * for the next tools/list and call. `load` returns the new lock, or a reason to keep the old. */
  watchLock(file: string, load: () => Promise<ToolLockCheck | string>, log: Logger, debounceMs = 100): void {
    void readFile(file, 'utf8').then((text) => (this.lockText ??= text), () => {});
    const reload = async () => {
      const text = await readFile(file, 'utf8').catch(() => '');
      // A save that changes nothing (an editor touching the file) is not a reload, as for the policy.
      if (this.lockText !== undefined && text === this.lockText) return;
      const next = await load();
      const hashes = { oldHash: sha256(this.lockText ?? ''), newHash: sha256(text) };
      if (typeof next === 'string') {
        log.error(`lock file reload rejected; keeping the last good lock: ${next}`, { file });
        this.events?.emit({ type: 'config_reload', what: 'lock', file, ...hashes, ok: false, error: next });
        return;
      }
      const previous = this.policy;
      this.setLock(next);
      this.lockText = text;
      log.info('lock file reloaded', { file });
      this.events?.emit({ type: 'config_reload', what: 'lock', file, ...hashes, ok: true });
      this.onReload?.(previous, this.policy);
    };
    this.lockWatcher = watchDebounced(file, reload, debounceMs, (err) => log.warn('stopped watching the lock file', { file, error: String(err) }));
  }

  /** Watches the policy file; a valid edit replaces the policy for the next call, an invalid
   * one is reported and the last good policy stays. */
  watch(file: string, log: Logger, debounceMs = 100): void {
    const reload = async () => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        // Mid-save the file can be briefly missing; the next event will bring it back.
        log.debug('policy file not readable yet', { file, error: String(err) });
        return;
      }
      if (text === this.lastText) return;
      const hashes = { oldHash: sha256(this.inForceText ?? ''), newHash: sha256(text) };
      this.lastText = text;
      const result = parsePolicy(text, file);
      if (!result.ok) {
        log.error(`policy reload rejected; keeping the last good policy (${result.issues.length} error(s))`, { file });
        for (const issue of result.issues) log.error(formatIssue(issue));
        const error = result.issues.map(formatIssue).join('; ');
        this.events?.emit({ type: 'config_reload', what: 'policy', file, ...hashes, ok: false, error: error.length > 2000 ? `${error.slice(0, 2000)}…` : error });
        return;
      }
      const previous = this.policy;
      this.policy = withLock(compile(result.policy), this.lock);
      this.inForceText = text;
      log.info('policy reloaded', { file });
      this.events?.emit({ type: 'config_reload', what: 'policy', file, ...hashes, ok: true });
      for (const warning of result.warnings ?? []) log.warn(`policy warning: ${formatIssue(warning)}`);
      // The new policy is checked against the tools listed under the old one, without waiting
      // for a client to list them again.
      const listed = listedUnder.get(previous.policy);
      if (listed !== undefined) noteListing(this.policy, listed, log, this.events);
      this.onReload?.(previous, this.policy);
    };
    this.watcher = watchDebounced(file, reload, debounceMs, (err) => log.warn('stopped watching the policy file', { file, error: String(err) }));
  }

  close(): void {
    this.watcher?.close();
    this.lockWatcher?.close();
  }
}

/** Watches a file's directory rather than the file, so editors that save by renaming a new file
 * over the old one (and symlink swaps such as mounted config maps) are seen; `onChange` runs
 * once the events have been quiet for `debounceMs`. */
function watchDebounced(file: string, onChange: () => Promise<void>, debounceMs: number, onError: (err: Error) => void): { close(): void } {
  const name = basename(file);
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
    if (changed !== null && changed !== name && !changed.startsWith('..')) return;
    clearTimeout(timer);
    timer = setTimeout(() => void onChange(), debounceMs);
  });
  watcher.on('error', onError);
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
