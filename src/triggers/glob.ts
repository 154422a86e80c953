/**
 * Shell-style globs as Python's `fnmatch.fnmatch` reads them on POSIX (what the reference uses
 * for `event_type`): `*` any run of characters (dots included), `?` one character, `[abc]` /
 * `[a-z]` a set, `[!abc]` its complement; case-sensitive; a `[` without a closing `]` is literal.
 */

/** A compiled set of globs: true when the string matches any of them. */
export type GlobMatcher = (s: string) => boolean;

const META = /[*?[]/;

/** Translates one glob into the source of an anchored-free RegExp body. */
export function globToRegExpSource(glob: string): string {
  let out = '';
  let i = 0;
  const n = glob.length;
  while (i < n) {
    const c = glob[i++] as string;
    if (c === '*') {
      // Consecutive stars mean the same as one; collapsing keeps the RegExp linear.
      while (glob[i] === '*') i++;
      out += '[\\s\\S]*';
    } else if (c === '?') {
      out += '[\\s\\S]';
    } else if (c === '[') {
      let j = i;
      if (glob[j] === '!') j++;
      if (glob[j] === ']') j++;
      while (j < n && glob[j] !== ']') j++;
      if (j >= n) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i, j);
      i = j + 1;
      let negate = false;
      if (body.startsWith('!')) {
        negate = true;
        body = body.slice(1);
      }
      // Inside a class only `\`, `]`, `^` and `[` need escaping; `-` keeps its range meaning.
      const escaped = body.replace(/[\\\]^[]/g, (m) => `\\${m}`);
      out += negate ? `[^${escaped}]` : body === '' ? '(?!)' : `[${escaped}]`;
    } else {
      out += c.replace(/[.*+?^${}()|[\]\\/]/g, (m) => `\\${m}`);
    }
  }
  return out;
}

/**
 * Compiles globs into one matcher. Literal patterns go in a Set (one hash lookup), a bare `*`
 * short-circuits, and the rest share a single RegExp, so the hot path costs at most one lookup
 * and one regex test however many patterns a criterion lists.
 */
export function compileGlobs(globs: readonly string[]): GlobMatcher {
  if (globs.length === 0) return () => false;
  if (globs.some((g) => /^\*+$/.test(g))) return () => true;
  const literals = new Set<string>();
  const patterns: string[] = [];
  for (const g of globs) {
    if (META.test(g)) patterns.push(globToRegExpSource(g));
    else literals.add(g);
  }
  if (patterns.length === 0) {
    if (literals.size === 1) {
      const only = literals.values().next().value as string;
      return (s) => s === only;
    }
    return (s) => literals.has(s);
  }
  const re = new RegExp(`^(?:${patterns.join('|')})$`);
  if (literals.size === 0) return (s) => re.test(s);
  return (s) => literals.has(s) || re.test(s);
}
