/**
 * Shell-style globs as Python's `fnmatch.fnmatch` reads them on POSIX (what the reference uses
 * for `event_type` in event definitions and trigger criteria): `*` any run of characters (dots
 * included), `?` one character, `[abc]` / `[a-z]` a set, `[!abc]` its complement; case-sensitive;
 * a `[` without a closing `]` is literal. A reversed range (`[z-a]`) is refused by
 * {@link globError} at load time (the reference crashed on it when matching).
 *
 * The distiller and the triggers both compile their `event_type` rules here.
 */

/** Why a glob cannot be used (e.g. a reversed range `[z-a]`), or undefined when it is valid. */
export function globError(glob: string): string | undefined {
  try {
    new RegExp(`^(?:${globToRegExpSource(glob)})$`);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message.replace(/^Invalid regular expression: /, '') : String(err);
  }
}

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
 * Compiles globs into one matcher (check them with {@link globError} first: an invalid one
 * makes this throw). Literal patterns go in a Set (one hash lookup), a bare `*`
 * short-circuits, and the rest share a single RegExp, so the hot path costs at most one lookup
 * and one regex test however many patterns a criterion lists.
 */
export function compileGlobs(globs: readonly string[]): GlobMatcher {
  if (globs.length === 0) return () => false;
  if (globs.some((g) => /^\*+$/.test(g))) return () => true;
  const literals = new Set<string>();
  const prefixes = new Set<string>();
  const patterns: string[] = [];
  for (const g of globs) {
    const prefix = /^([^*?[]+)\*+$/.exec(g);
    if (prefix) prefixes.add(prefix[1] as string);
    else if (META.test(g)) patterns.push(globToRegExpSource(g));
    else literals.add(g);
  }
  const tests: GlobMatcher[] = [];
  if (literals.size === 1) {
    const only = literals.values().next().value as string;
    tests.push((s) => s === only);
  } else if (literals.size > 1) {
    tests.push((s) => literals.has(s));
  }
  // `compute.instance.*` is by far the most common shape: a startsWith beats a RegExp.
  const pre = [...prefixes];
  if (pre.length === 1) {
    const only = pre[0] as string;
    tests.push((s) => s.startsWith(only));
  } else if (pre.length > 1) {
    tests.push((s) => {
      for (let i = 0; i < pre.length; i++) if (s.startsWith(pre[i] as string)) return true;
      return false;
    });
  }
  if (patterns.length > 0) {
    const re = new RegExp(`^(?:${patterns.join('|')})$`);
    tests.push((s) => re.test(s));
  }
  if (tests.length === 1) return tests[0] as GlobMatcher;
  if (tests.length === 2) {
    const [a, b] = tests as [GlobMatcher, GlobMatcher];
    return (s) => a(s) || b(s);
  }
  return (s) => tests.some((t) => t(s));
}

/** Compiles one glob (see {@link compileGlobs}). */
export function compileGlob(glob: string): GlobMatcher {
  return compileGlobs([glob]);
}

/**
 * The `event_type` rule of an event definition or a trigger criterion: a list of globs where
 * `!glob` excludes; a list of only exclusions means "everything except". Matches when some
 * inclusion matches and no exclusion does.
 */
export interface EventTypeMatcher {
  readonly test: GlobMatcher;
  /** True when the rule is exactly "everything" (`*` included, nothing excluded). */
  readonly isCatchAll: boolean;
}

/** Compiles an event_type rule (see {@link EventTypeMatcher}); check each glob with {@link globError} first. */
export function compileEventTypes(patterns: readonly string[]): EventTypeMatcher {
  const included: string[] = [];
  const excluded: string[] = [];
  for (const p of patterns) {
    if (p.startsWith('!')) excluded.push(p.slice(1));
    else included.push(p);
  }
  if (excluded.length > 0 && included.length === 0) included.push('*');
  const isIncluded = compileGlobs(included);
  const isCatchAll = excluded.length === 0 && included.some((g) => /^\*+$/.test(g));
  if (excluded.length === 0) return { test: isIncluded, isCatchAll };
  const isExcluded = compileGlobs(excluded);
  return { test: (t) => isIncluded(t) && !isExcluded(t), isCatchAll };
}
