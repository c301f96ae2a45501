// The requests a channel has sent its peer and still awaits answers to. An upstream delivers
// an answer only when it answers one of them: a server answering an id it was never sent (a
// call the gate is still deciding, or has denied), or answering one twice, would otherwise
// hand the interceptor what it takes for the real answer, and the client would read the
// server's word where the policy's belongs.
import { classify, idKey, type JsonRpcId } from '../jsonrpc/message.js';

/** Beyond this many requests awaiting answers the oldest is forgotten (its answer is then
 * dropped), so a peer that never answers cannot grow the table without end. */
const MAX_AWAITED = 65_536;

export class SentRequests {
  private readonly awaited = new Set<string>();

  /** Notes a message sent to the peer: a request awaits its answer; a cancellation ends the
   * wait for the request it names (none is owed after it). */
  sent(message: unknown): void {
    const c = classify(message);
    if (c.kind === 'request') {
      const key = idKey(c.msg.id);
      this.awaited.delete(key);
      this.awaited.add(key);
      if (this.awaited.size > MAX_AWAITED) this.awaited.delete(this.awaited.values().next().value!);
    } else if (c.kind === 'notification' && c.msg.method === 'notifications/cancelled') {
      const id = (c.msg.params as { requestId?: unknown } | undefined)?.requestId;
      if (typeof id === 'string' || typeof id === 'number') this.awaited.delete(idKey(id));
    }
  }

  /** The id of `message` when it is an answer to no request awaiting one (which is then
   * dropped); undefined for anything that may be delivered, an awaited answer included (the
   * wait ends with it). Only the top level is read, so a value nesting too deep is safe. */
  unsolicited(message: unknown): JsonRpcId | undefined {
    const c = classify(message);
    if (c.kind !== 'response' || c.msg.id === null) return undefined;
    return this.awaited.delete(idKey(c.msg.id)) ? undefined : c.msg.id;
  }
}
