import type { JsonRpcId } from '../jsonrpc/message.js';

// A channel moves whole JSON-RPC messages to and from one peer. The interceptor only sees
// channels, never stdio, child processes or HTTP.

/** What a channel delivers: a parsed message (with its raw text when it had one), or the
 * reason a frame could not become one. */
export type Inbound =
  | { kind: 'message'; value: unknown; raw?: string }
  | { kind: 'parse_error'; detail: string }
  | { kind: 'oversize'; bytes: number; limit: number };

export interface Channel {
  /** Serialises and sends one message. `related` is the id of the client request a server
   * request or notification belongs to, so HTTP transports can put it on that request's
   * stream; byte streams ignore it. */
  send(message: unknown, related?: JsonRpcId): void;
  /** Sends an already-serialised message unchanged (for relaying what was not modified). */
  sendRaw(text: string, related?: JsonRpcId): void;
}

/** Parses one frame of text into an Inbound event. */
export function parseFrame(text: string): Inbound {
  try {
    return { kind: 'message', value: JSON.parse(text), raw: text };
  } catch (err) {
    return { kind: 'parse_error', detail: err instanceof Error ? err.message : String(err) };
  }
}
