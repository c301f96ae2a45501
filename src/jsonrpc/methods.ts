// The MCP methods the proxy acts on, and the refusal of names that only look different.
//
// The gate acts on `tools/call`, the filter on `tools/list`, and the interceptor reads a few
// more (initialize, cancellations, progress, list_changed). A peer whose dispatch is lenient
// (it lower-cases, trims or Unicode-normalises method names) would run `"Tools/Call"` or
// `"tools/call "` as the real thing, while an exact comparison here would pass it through
// ungated. So any method that folds onto one of these without being spelt exactly so is
// refused, in both directions.

/** Every method whose exact name the proxy looks at. A new feature that acts on a method adds
 * it here, and its look-alikes are refused from then on. */
export const ACTED_ON_METHODS: ReadonlySet<string> = new Set([
  'initialize',
  'tools/call',
  'tools/list',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/tools/list_changed',
]);

/** Characters a lenient reader may drop: whitespace, controls, format characters (zero-width
 * spaces and joiners, the BOM, bidirectional marks) and other default-ignorable code points. */
const IGNORABLE = /[\p{White_Space}\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}]/gu;

/** A name that cannot fold onto anything but itself: lower-case ASCII letters, digits, `_`,
 * `-`, `.` and inner slashes. Nearly every real method, so the full fold is rarely needed. */
const PLAIN = /^[a-z0-9_.-]+(?:\/[a-z0-9_.-]+)*$/;

/** The folded form a lenient dispatcher could reduce `method` to: NFKC (fullwidth and other
 * compatibility forms), ignorable characters removed, lower case, outer slashes trimmed. */
export function foldMethod(method: string): string {
  let folded = method.normalize('NFKC').replace(IGNORABLE, '').toLowerCase();
  // Lower-casing can produce new compatibility forms (e.g. U+0130); fold once more.
  folded = folded.normalize('NFKC').replace(IGNORABLE, '');
  return folded.replace(/^\/+|\/+$/g, '');
}

/** The acted-on method `method` impersonates (folds onto without being it), if any. */
export function impersonatedMethod(method: string): string | undefined {
  if (ACTED_ON_METHODS.has(method) || PLAIN.test(method)) return undefined;
  const folded = foldMethod(method);
  return ACTED_ON_METHODS.has(folded) ? folded : undefined;
}
