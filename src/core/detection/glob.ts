// Glob matching without regular expressions: `*` is any run of characters, `?` exactly one, `\` escapes.

/** A glob split into literal text and wildcard tokens, ready for repeated matching. */
export type CompiledGlob = readonly GlobToken[];
type GlobToken = { kind: 'literal'; text: string } | { kind: 'any' } | { kind: 'one' };

/** Tokenises a glob once; consecutive `*` collapse into one. */
export function compileGlob(pattern: string): CompiledGlob {
  const tokens: GlobToken[] = [];
  let literal = '';
  const flush = () => {
    if (literal !== '') tokens.push({ kind: 'literal', text: literal });
    literal = '';
  };
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i];
    if (char === '\\' && i + 1 < pattern.length) {
      literal += pattern[++i];
    } else if (char === '*') {
      flush();
      if (tokens[tokens.length - 1]?.kind !== 'any') tokens.push({ kind: 'any' });
    } else if (char === '?') {
      flush();
      tokens.push({ kind: 'one' });
    } else {
      literal += char;
    }
  }
  flush();
  return tokens;
}

/**
 * Whole-string match. Backtracks only to the most recent `*` (the classic two-pointer method), so the
 * cost is bounded by pattern tokens × text length: no pattern can make it blow up.
 */
export function matchGlob(glob: CompiledGlob, text: string): boolean {
  let token = 0;
  let position = 0;
  let starToken = -1;
  let starPosition = 0;
  while (true) {
    const current = glob[token];
    if (current === undefined) {
      if (position === text.length) return true;
    } else if (current.kind === 'any') {
      starToken = token;
      starPosition = position;
      token++;
      continue;
    } else if (current.kind === 'one') {
      if (position < text.length) {
        token++;
        position++;
        continue;
      }
    } else if (text.startsWith(current.text, position)) {
      token++;
      position += current.text.length;
      continue;
    }
    // Mismatch: let the last `*` swallow one more character, or give up.
    if (starToken < 0 || starPosition >= text.length) return false;
    starPosition++;
    token = starToken + 1;
    position = starPosition;
  }
}
