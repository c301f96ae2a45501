// Follows a client's walk through the pages of tools/list, so that what the upstream offers is
// known whole only when the walk went from the first page to the last, each page asked for
// with the cursor the one before it gave (the rule of jsonrpc/tool-pages.ts).
import { isObject } from '../jsonrpc/message.js';

/** A walk listing more names than this is not followed (a hostile upstream's pages). */
const MAX_NAMES = 100_000;

export class ListingWalk {
  /** The names of the walk under way; undefined when none is. */
  private names?: string[];
  /** The cursor the walk's next page is asked for with. */
  private next?: string;

  /** One page: the answer to a tools/list asked for with `cursor`. Returns every name of the
   * listing when this page completed a walk. */
  page(cursor: string | undefined, result: Record<string, unknown>): string[] | undefined {
    if (cursor === undefined) this.names = [];
    else if (cursor !== this.next) this.names = undefined;
    const names = this.names;
    if (names === undefined || !Array.isArray(result.tools)) return (this.names = undefined);
    for (const tool of result.tools) if (isObject(tool) && typeof tool.name === 'string') names.push(tool.name);
    if (names.length > MAX_NAMES) return (this.names = undefined);
    const next = result.nextCursor;
    if (typeof next === 'string' && next !== '' && next !== cursor) {
      this.next = next;
      return undefined;
    }
    this.names = undefined;
    return names;
  }

  /** The upstream's tools changed: a walk under way lists stale pages. */
  reset(): void {
    this.names = undefined;
  }
}

/** The cursor a tools/list request asks for (undefined: the first page). */
export function cursorOf(params: unknown): string | undefined {
  const cursor = isObject(params) ? params.cursor : undefined;
  return typeof cursor === 'string' ? cursor : undefined;
}
