// Policy regexes: RE2 (the Go reference's dialect: no lookaround, no backreferences, linear
// time whatever the input), through the native `re2` binding: a match of a short argument
// costs a fraction of a microsecond (re2-wasm, which copied every string into a WebAssembly
// heap, took about 7 µs). The loader validates patterns with it; the engine evaluates them
// with it. A pattern is compiled once per process and shared by every policy load, so hot
// reloads recompile nothing.
import RE2 from 're2';

const compiled = new Map<string, RE2>();

/** The compiled pattern; throws the compiler's error for an invalid one (not cached). */
export function compileRegex(pattern: string): RE2 {
  let re = compiled.get(pattern);
  if (re === undefined) {
    // 'u': patterns and inputs are Unicode text, not bytes.
    re = new RE2(pattern, 'u');
    compiled.set(pattern, re);
  }
  return re;
}
