// What one session's interceptor is handed when its calls are made by a known caller (an
// `Identity`): the policy in force as that caller's calls see it, a log whose every line names
// the subject, and observers that record it. Neither the interceptor nor the gate needs to know
// the caller: an identity-scoped counter comes out of the engine bound to its subject
// (CounterRef's `subject`), and storageKey makes the caller's key from it.
import type { Identity } from '../engine/types.js';
import type { LogFields, Logger, LogLevel } from '../log.js';
import { UNOBSERVED, type Observers } from './call-trail.js';
import type { PolicyInForce } from './policy-holder.js';

/** The policy in force (`inForce()`), deciding with `identity`. One view per policy put in
 * force (a reload makes the next), not one per call. */
export function policyFor(inForce: () => PolicyInForce, identity: Identity): () => PolicyInForce {
  let seen: PolicyInForce | undefined;
  let view!: PolicyInForce;
  return () => {
    const current = inForce();
    if (current !== seen) {
      seen = current;
      view = {
        ...current,
        requirements: (call, toolClass) => current.requirements(call, toolClass, identity),
        decide: (input, options) => current.decide({ ...input, identity }, options),
      };
    }
    return view;
  };
}

/** `log`, with `subject=<sub>` on every line: each decision logged says whose call it was. */
export function logFor(log: Logger, subject: string): Logger {
  const withSubject = (fields: LogFields | undefined): LogFields => ({ ...fields, subject });
  return {
    get level(): LogLevel {
      return log.level;
    },
    enabled: (level) => log.enabled(level),
    debug: (msg, fields) => log.debug(msg, withSubject(fields)),
    info: (msg, fields) => log.info(msg, withSubject(fields)),
    warn: (msg, fields) => log.warn(msg, withSubject(fields)),
    error: (msg, fields) => log.error(msg, withSubject(fields)),
  };
}

/** `observers`, telling each call's event and span whose call it was. */
export function observersFor(observers: Observers | undefined, subject: string): Observers {
  return { ...(observers ?? UNOBSERVED), subject };
}
