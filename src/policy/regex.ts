// Policy regexes: RE2 (the Go reference's dialect: no lookaround, no backreferences, linear
// time whatever the input). The loader validates patterns with it; the engine evaluates them
// with it. re2-wasm allocates each compiled pattern in a fixed-size heap it never shrinks, so
// a pattern is compiled once per process and shared by every policy load: hot reloads then
// cost nothing, however often they happen.
import { RE2 } from 're2-wasm';

const compiled = new Map<string, RE2>();

/** The compiled pattern; throws the compiler's error for an invalid one (not cached). */
export function compileRegex(pattern: string): RE2 {
  let re = compiled.get(pattern);
  if (re === undefined) {
    // 'u' is the mode re2-wasm requires.
    re = new RE2(pattern, 'u');
    compiled.set(pattern, re);
  }
  return re;
}
