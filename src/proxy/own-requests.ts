// Requests the proxy itself sends the upstream (its tools/list, when a call needs a schema, a
// class or a pinned definition the catalogue does not have yet). Their ids carry a random
// prefix, so they cannot collide with the client's in practice, and their answers are consumed
// here, never relayed.
import { randomBytes } from 'node:crypto';
import { isModernParams, metaOf, MODERN_META_KEYS } from '../jsonrpc/eras.js';
import { idKey, isObject, type JsonRpcResponse } from '../jsonrpc/message.js';
import type { PageFetcher } from './catalogue.js';

interface Waiting {
  resolve(response: JsonRpcResponse): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class OwnRequests {
  private readonly waiting = new Map<string, Waiting>();
  private readonly prefix = `intercept-${randomBytes(6).toString('hex')}-`;
  private counter = 0;

  constructor(
    private readonly send: (message: unknown) => void,
    private readonly timeoutMs: number,
  ) {}

  request(method: string, params: Record<string, unknown>): Promise<JsonRpcResponse> {
    const id = `${this.prefix}${++this.counter}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(idKey(id));
        reject(new Error(`${method}: the upstream did not answer in time`));
      }, this.timeoutMs);
      this.waiting.set(idKey(id), { resolve, reject, timer });
      this.send({ jsonrpc: '2.0', id, method, params });
    });
  }

  /** Hands an upstream answer to the request waiting for it; false when it is not ours. */
  answer(key: string, response: JsonRpcResponse): boolean {
    const waiting = this.waiting.get(key);
    if (!waiting) return false;
    this.waiting.delete(key);
    clearTimeout(waiting.timer);
    waiting.resolve(response);
    return true;
  }

  /** The upstream is gone: every request still waiting fails. */
  failAll(reason: string): void {
    for (const [key, waiting] of this.waiting) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error(reason));
      this.waiting.delete(key);
    }
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
