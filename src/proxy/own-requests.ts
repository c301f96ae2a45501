// Requests the proxy itself sends a peer: the upstream (its tools/list, when a call needs a
// schema, a class or a pinned definition the catalogue does not have yet) or the client (an
// elicitation asking its human to approve a held call). Their ids carry a random prefix, so
// they cannot collide with the peer's in practice, and their answers are consumed here, never
// relayed.
import { randomBytes } from 'node:crypto';
import { isModernParams, metaOf, MODERN_META_KEYS } from '../jsonrpc/eras.js';
import { idKey, isObject, type JsonRpcId, type JsonRpcResponse } from '../jsonrpc/message.js';
import type { PageFetcher } from './catalogue.js';

interface Waiting {
  resolve(response: JsonRpcResponse): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  /** Unhooks the abort listener. */
  done(): void;
}

export interface OwnRequestOptions {
  /** How long to wait for the answer; the default is the constructor's. */
  timeoutMs?: number;
  /** The client request this one belongs to (HTTP puts it on that request's stream). */
  related?: JsonRpcId;
  /** Aborting gives up on the answer and tells the peer with notifications/cancelled. */
  signal?: AbortSignal;
}

export class OwnRequests {
  private readonly waiting = new Map<string, Waiting>();
  private readonly prefix = `intercept-${randomBytes(6).toString('hex')}-`;
  private counter = 0;

  constructor(
    private readonly send: (message: unknown, related?: JsonRpcId) => void,
    private readonly timeoutMs: number,
    /** Who is asked, for messages: "the upstream", "the client". */
    private readonly peer = 'the upstream',
  ) {}

  request(method: string, params: Record<string, unknown>, opts: OwnRequestOptions = {}): Promise<JsonRpcResponse> {
    const id = `${this.prefix}${++this.counter}`;
    const key = idKey(id);
    const { signal, related } = opts;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new Error(`${method}: abandoned before it was sent`));
        return;
      }
      const onAbort = () => {
        if (!this.waiting.has(key)) return;
        this.finish(key)?.reject(new Error(`${method}: abandoned`));
        this.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'no longer needed' } }, related);
      };
      const timer = setTimeout(() => {
        this.finish(key)?.reject(new Error(`${method}: ${this.peer} did not answer in time`));
      }, opts.timeoutMs ?? this.timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(key, {
        resolve,
        reject,
        timer,
        done: () => signal?.removeEventListener('abort', onAbort),
      });
      this.send({ jsonrpc: '2.0', id, method, params }, related);
    });
  }

  private finish(key: string): Waiting | undefined {
    const waiting = this.waiting.get(key);
    if (!waiting) return undefined;
    this.waiting.delete(key);
    clearTimeout(waiting.timer);
    waiting.done();
    return waiting;
  }

  /** Hands an upstream answer to the request waiting for it; false when it is not ours. */
  answer(key: string, response: JsonRpcResponse): boolean {
    const waiting = this.finish(key);
    waiting?.resolve(response);
    return waiting !== undefined;
  }

  /** The peer is gone: every request still waiting fails. */
  failAll(reason: string): void {
    for (const key of [...this.waiting.keys()]) this.finish(key)?.reject(new Error(reason));
  }

  /** The proxy's own tools/list, in the era of the call that needs it (a 2026-07-28 call's
   * `_meta` is copied onto it). */
  toolsList(callParams: unknown): PageFetcher {
    // Made for every call but rarely used (only when the catalogue lacks the tool): the
    // `_meta` is picked when a page is fetched, not before.
    return async (cursor) => {
      const params: Record<string, unknown> = {};
      if (cursor !== undefined) params.cursor = cursor;
      const meta = metaOf(callParams);
      if (meta && isModernParams(callParams)) params._meta = Object.fromEntries(MODERN_META_KEYS.filter((k) => k in meta).map((k) => [k, meta[k]]));
      const response = await this.request('tools/list', params);
      if (response.error || !isObject(response.result)) {
        throw new Error(`tools/list failed: ${response.error?.message ?? 'no result'}`);
      }
      const result = response.result;
      return {
        tools: Array.isArray(result.tools) ? result.tools : [],
        nextCursor: typeof result.nextCursor === 'string' ? result.nextCursor : undefined,
      };
    };
  }
}
