// Tool-name globs for `tools:` keys and `hide:` entries: `*` matches any run of characters
// (none included), `?` exactly one; every other character, `[` and `\` included, stands for
// itself. Matching walks the two strings with one backtrack point (no regex), so it takes at
// most length(name) × length(pattern) steps whatever the pattern.

export interface Glob {
  readonly text: string;
  /** Characters that are not wildcards: how specific the pattern is. */
  readonly literals: number;
}

export function compileGlob(text: string): Glob {
  let literals = 0;
  for (const ch of text) if (ch !== '*' && ch !== '?') literals++;
  return { text, literals };
}

/** Whether `name` matches the whole pattern. Both are compared by UTF-16 code unit, except that
 * `?` takes a whole character (a surrogate pair counts as one). */
export function globMatches(glob: Glob, name: string): boolean {
  const p = glob.text;
  let i = 0; // in name
  let j = 0; // in pattern
  let starJ = -1; // pattern position after the last `*`
  let starI = 0; // name position that `*` was last tried against
  while (i < name.length) {
    const pc = j < p.length ? p.charCodeAt(j) : -1;
    if (pc === 0x2a /* * */) {
      starJ = ++j;
      starI = i;
      continue;
    }
    if (pc === 0x3f /* ? */) {
      i += charLength(name, i);
      j++;
      continue;
    }
    if (pc !== -1 && pc === name.charCodeAt(i)) {
      i++;
      j++;
      continue;
    }
    if (starJ < 0) return false;
    // Let the last `*` take one more character and try again from there.
    starI += charLength(name, starI);
    i = starI;
    j = starJ;
  }
  while (j < p.length && p.charCodeAt(j) === 0x2a) j++;
  return j === p.length;
}

function charLength(s: string, at: number): number {
  const c = s.charCodeAt(at);
  if (c >= 0xd800 && c <= 0xdbff && at + 1 < s.length) {
    const d = s.charCodeAt(at + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return 2;
  }
  return 1;
}
