// The HTTP upstream's ledger of requests: those forwarded and still awaiting the server's
// answer, those answered here with an error instead (so the server's late answer is dropped,
// never delivered twice), and the refusals the fetch wrapper saw, kept until the send that
// caused them asks why it failed.
import { classify, idFromKey, idKey, type JsonRpcId } from '../jsonrpc/message.js';
import type { Refusal } from './http-negotiation.js';

/** A forwarded request awaiting its answer. */
export interface InFlight {
  method: string;
  /** Aborts this request's own HTTP exchange (cancellation in the 2026-07-28 era). */
  abort?: AbortController;
}

/** The id of a message that is a request (the ledger's key); undefined for anything else. */
export function requestId(message: unknown): JsonRpcId | undefined {
  const c = classify(message);
  return c.kind === 'request' ? c.msg.id : undefined;
}

export class InFlightLedger {
  private readonly awaiting = new Map<string, InFlight>();
  /** Requests answered here; a late answer from the upstream is dropped. */
  private readonly answeredHere = new Set<string>();
  /** Refusals recorded by the fetch wrapper, keyed by the request body that was refused. */
  private readonly refusals = new Map<string, Refusal>();

  /** A request goes out and awaits its answer; an id the client uses again starts afresh. */
  sent(id: JsonRpcId, entry: InFlight): void {
    this.awaiting.set(idKey(id), entry);
    this.answeredHere.delete(idKey(id));
  }

  get(id: JsonRpcId): InFlight | undefined {
    return this.awaiting.get(idKey(id));
  }

  awaits(id: JsonRpcId): boolean {
    return this.awaiting.has(idKey(id));
  }

  get size(): number {
    return this.awaiting.size;
  }

  /** Every request still awaiting an answer: a copy, since answering one removes it. */
  pending(): JsonRpcId[] {
    return [...this.awaiting.keys()].map(idFromKey);
  }

  /** Stops awaiting a request (its answer came, or it was cancelled); returns what it was. */
  take(id: JsonRpcId): InFlight | undefined {
    const key = idKey(id);
    const entry = this.awaiting.get(key);
    this.awaiting.delete(key);
    return entry;
  }

  /** Whether the server's answer to `id` comes too late: the request was answered here already.
   * True once per answer given here. */
  lateAnswer(id: JsonRpcId): boolean {
    return this.answeredHere.delete(idKey(id));
  }

  /** Marks a request answered here; false when it no longer awaited an answer (answered or
   * cancelled meanwhile), and then no answer may be given. */
  answerHere(id: JsonRpcId): boolean {
    const key = idKey(id);
    if (!this.awaiting.delete(key)) return false;
    this.answeredHere.add(key);
    return true;
  }

  /** The fetch wrapper saw this POST body refused. */
  refused(body: string, refusal: Refusal): void {
    this.refusals.set(body, refusal);
  }

  /** Why the server refused this message, if it did; asked once, by the send that failed. */
  refusalFor(message: unknown): Refusal | undefined {
    const key = JSON.stringify(message);
    const refusal = this.refusals.get(key);
    this.refusals.delete(key);
    return refusal;
  }
}
