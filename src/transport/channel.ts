import { exceedsDepth } from '../jsonrpc/depth.js';
import type { JsonRpcId } from '../jsonrpc/message.js';

// A channel moves whole JSON-RPC messages to and from one peer. The interceptor only sees
// channels, never stdio, child processes or HTTP.

/** What a channel delivers: a parsed message (with its raw text when it had one), or the
 * reason a frame could not become one. A `too_deep` value nests beyond the limit: only its
 * top level may be read (to answer it), never walked. */
export type Inbound =
  | { kind: 'message'; value: unknown; raw?: string }
  | { kind: 'parse_error'; detail: string }
  | { kind: 'oversize'; bytes: number; limit: number }
  | { kind: 'too_deep'; value: unknown; limit: number };

export interface Channel {
  /** Serialises and sends one message. `related` is the id of the client request a server
   * request or notification belongs to, so HTTP transports can put it on that request's
   * stream; byte streams ignore it. */
  send(message: unknown, related?: JsonRpcId): void;
  /** Sends `message` as `text`, its serialisation as it arrived (for relaying what was not
   * modified): byte streams write the text, others route on the message, nothing is parsed
   * twice. */
  sendRaw(text: string, message: unknown, related?: JsonRpcId): void;
}

/** Parses one frame of text into an Inbound event (JSON.parse does not recurse, so any depth
 * parses safely; the depth is checked before anything else walks the value). */
export function parseFrame(text: string, maxDepth: number): Inbound {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { kind: 'parse_error', detail: err instanceof Error ? err.message : String(err) };
  }
  // A value nesting d levels takes at least 2d characters: short frames need no walk.
  if (text.length > 2 * maxDepth && exceedsDepth(value, maxDepth)) return { kind: 'too_deep', value, limit: maxDepth };
  return { kind: 'message', value, raw: text };
}

/** The Inbound event for a message a transport parsed itself. */
export function inboundValue(value: unknown, maxDepth: number): Inbound {
  return exceedsDepth(value, maxDepth) ? { kind: 'too_deep', value, limit: maxDepth } : { kind: 'message', value };
}
