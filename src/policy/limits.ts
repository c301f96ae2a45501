// Bounds checked before a policy file is parsed. The YAML parser recurses once per level of
// nesting, so a file nested a thousand levels deep exhausts the stack (and would be reported as
// a puzzling "Maximum call stack size exceeded"); no policy needs more than a dozen levels.
// Aliases need no bound here: the loader follows an alias only where it expects a map, a list
// of maps or a scalar, never expanding one list of aliases into another, so a "billion laughs"
// document costs no more than its text.

/** The largest policy file read. The largest catalogue policies are a few hundred kilobytes;
 * 10,000 tools take about 2 MB. */
export const MAX_POLICY_BYTES = 32 * 1024 * 1024;
/** Levels of nesting (block indentation steps, flow brackets, `- - ` on one line) allowed. */
export const MAX_POLICY_DEPTH = 100;

/** What is wrong with the text's size or nesting, at a 0-based offset; undefined when fine. */
export function limitProblem(text: string): { offset: number; message: string } | undefined {
  if (text.length > MAX_POLICY_BYTES) {
    return { offset: 0, message: `policy file is larger than ${MAX_POLICY_BYTES / 1024 / 1024} MiB` };
  }
  return nestingProblem(text);
}

/** Scans once, conservatively: quoted strings and comments are skipped; a bracket counts only
 * where a flow collection can start (line start, after `: `, `- `, `[`, `{` or `,`), so a
 * regex such as `^[a-z]+$` in a plain scalar is not nesting. Block nesting is measured as the
 * number of distinct indentations open above a line. */
function nestingProblem(text: string): { offset: number; message: string } | undefined {
  const tooDeep = (offset: number) => ({ offset, message: `policy nests deeper than ${MAX_POLICY_DEPTH} levels` });
  /** Indentations of the block levels open above the current line. */
  const indents: number[] = [];
  let flow = 0;
  let i = 0;
  while (i < text.length) {
    // At a line's start: its indentation closes deeper block levels and may open one.
    let indent = 0;
    while (text[i] === ' ') {
      indent++;
      i++;
    }
    const blank = i >= text.length || text[i] === '\n' || text[i] === '\r' || text[i] === '#';
    if (!blank && flow === 0) {
      while (indents.length > 0 && indents[indents.length - 1]! >= indent) indents.pop();
      indents.push(indent);
      if (indents.length > MAX_POLICY_DEPTH) return tooDeep(i);
    }
    let tokenStart = true;
    let compact = 0;
    for (; i < text.length && text[i] !== '\n'; i++) {
      const c = text[i]!;
      if (c === '#' && (tokenStart || text[i - 1] === ' ' || text[i - 1] === '\t')) {
        while (i < text.length && text[i] !== '\n') i++;
        break;
      }
      if ((c === '"' || c === "'") && tokenStart) {
        i = skipQuoted(text, i, c);
        tokenStart = false;
        continue;
      }
      if ((c === '[' || c === '{') && tokenStart) {
        if (++flow > MAX_POLICY_DEPTH) return tooDeep(i);
        continue;
      }
      if ((c === ']' || c === '}') && flow > 0) {
        flow--;
        tokenStart = false;
        continue;
      }
      if (c === ',' && flow > 0) {
        tokenStart = true;
        continue;
      }
      if (c === ' ' || c === '\t') {
        // `- - - x`: each dash opens a level on this very line.
        if (text[i - 1] === '-' && (i === 1 || text[i - 2] === ' ' || text[i - 2] === '\n') && flow === 0) {
          if (indents.length + ++compact > MAX_POLICY_DEPTH) return tooDeep(i);
        }
        tokenStart = tokenStart || text[i - 1] === ':' || text[i - 1] === '-' || text[i - 1] === ',';
        continue;
      }
      tokenStart = false;
    }
    i++;
  }
  return undefined;
}

/** The offset just past the quoted scalar opening at `start` (or the text's end). */
function skipQuoted(text: string, start: number, quote: string): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i];
    if (quote === '"' && c === '\\') i++;
    else if (c === quote) {
      if (quote === "'" && text[i + 1] === "'") i++;
      else return i;
    }
  }
  return text.length;
}
