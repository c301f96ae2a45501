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
    // Indexed and for-in loops allocate nothing (Object.values made an array per object and
    // took about four times as long on an answer of many small objects).
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) push(values, depths, node[i], depth + 1);
    } else {
      for (const key in node) push(values, depths, (node as Record<string, unknown>)[key], depth + 1);
    }
  }
  return false;
}

function push(values: object[], depths: number[], child: unknown, depth: number): void {
  if (typeof child === 'object' && child !== null) {
    values.push(child);
    depths.push(depth);
  }
}
