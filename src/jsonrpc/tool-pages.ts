// The one loop over the pages of `tools/list`, for the proxy's catalogue, `scan` and `lock`.
// A page without `nextCursor` (or with an empty one) is the last; a server that hands back the
// cursor it was given, or pages without end, is stopped rather than followed forever.

export interface ToolsPageLike {
  nextCursor?: string;
}

/** Fetches pages in order, handing each to `onPage` (which may return false to stop early).
 * Resolves true when the last page was read, false when stopped before it. */
export async function readToolPages<P extends ToolsPageLike>(
  fetchPage: (cursor: string | undefined) => Promise<P>,
  onPage: (page: P) => boolean | void,
  maxPages: number,
): Promise<boolean> {
  let cursor: string | undefined;
  for (let n = 0; n < maxPages; n++) {
    const page = await fetchPage(cursor);
    if (onPage(page) === false) return false;
    if (!page.nextCursor || page.nextCursor === cursor) return true;
    cursor = page.nextCursor;
  }
  return false;
}
