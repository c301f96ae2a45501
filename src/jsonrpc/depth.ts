// How deeply a parsed JSON value nests, checked without recursion. JSON.parse itself is
// iterative, but JSON.stringify, schema validation, canonical JSON and every other walk over a
// value recurse: a message of a few kilobytes nesting thousands of arrays would overflow the
// stack in any of them. Each transport checks every message once, as it arrives, so that no
// code after it ever sees a value deeper than the limit.

/** The default limit: far beyond any real MCP message (a JSON Schema with twenty levels of
 * nested properties is about 45 deep), far below what any walk can survive. */
export const DEFAULT_MAX_DEPTH = 64;

/** True when `value` nests containers (objects and arrays) more than `limit` deep; the
 * message object itself is level 1. Stops as soon as the limit is passed. */
export function exceedsDepth(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  // Two parallel stacks (values and their depths) avoid allocating a pair per node.
  const values: object[] = [value];
  const depths: number[] = [1];
  while (values.length > 0) {
    const node = values.pop()!;
    const depth = depths.pop()!;
    if (depth > limit) return true;
    const children = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) {
        values.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}
