/**
 * Shell globs over event types, with the semantics of Python's `fnmatch.fnmatch` on POSIX (what
 * the reference uses): case-sensitive; `*` matches any run of characters including dots; `?` one
 * character; `[abc]`, `[a-z]`, `[!abc]` character classes; a `[` without a closing `]` is literal.
 */

/** A compiled glob: a predicate over the whole string. */
export type GlobMatcher = (s: string) => boolean;

const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/-]/g;

function escapeChar(c: string): string {
  return `\\u{${c.codePointAt(0)!.toString(16)}}`;
}

/** Translates a character class body (between `[` and `]`, without the `!`) to a regex class body. */
function classBody(body: string): string {
  const chars = Array.from(body);
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (chars[i + 1] === '-' && i + 2 < chars.length) {
      const hi = chars[i + 2]!;
      // Python drops a reversed range such as [z-a]; a JS regex would reject it.
      if (c.codePointAt(0)! <= hi.codePointAt(0)!) out += `${escapeChar(c)}-${escapeChar(hi)}`;
      i += 2;
    } else {
      out += escapeChar(c);
    }
  }
  return out;
}

function globToRegExp(pattern: string): RegExp {
  const p = Array.from(pattern);
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      // Collapse runs of '*' (same language, less backtracking).
      while (p[i + 1] === '*') i++;
      re += '.*';
    } else if (c === '?') {
      re += '.';
    } else if (c === '[') {
      let j = i + 1;
      if (p[j] === '!') j++;
      if (p[j] === ']') j++;
      while (j < p.length && p[j] !== ']') j++;
      if (j >= p.length) {
        re += '\\[';
      } else {
        let body = p.slice(i + 1, j).join('');
        const negate = body.startsWith('!');
        if (negate) body = body.slice(1);
        const cls = classBody(body);
        // An empty class matches nothing ([!] would match anything); mirror that explicitly.
        re += cls === '' ? (negate ? '.' : '(?!)') : `[${negate ? '^' : ''}${cls}]`;
        i = j;
      }
    } else {
      re += c.replace(REGEX_SPECIAL, '\\$&');
    }
  }
  return new RegExp(`^(?:${re})$`, 'su');
}

/** Compiles one glob; literal patterns and simple prefix/suffix patterns avoid regexes. */
export function compileGlob(pattern: string): GlobMatcher {
  if (!/[*?[]/.test(pattern)) return (s) => s === pattern;
  if (/^\*+$/.test(pattern)) return () => true;
  const star = pattern.indexOf('*');
  if (!/[?[]/.test(pattern) && star === pattern.lastIndexOf('*')) {
    const prefix = pattern.slice(0, star);
    const suffix = pattern.slice(star + 1);
    const min = prefix.length + suffix.length;
    return (s) => s.length >= min && s.startsWith(prefix) && s.endsWith(suffix);
  }
  const re = globToRegExp(pattern);
  return (s) => re.test(s);
}

/**
 * The event_type rule of a definition (and of a trigger criterion): a glob or list of globs where
 * `!glob` excludes; a list of only exclusions means "everything except". Matches when some
 * inclusion matches and no exclusion does.
 */
export interface EventTypeMatcher {
  readonly test: (eventType: string) => boolean;
  /** True when the rule is exactly "everything" (`*` included, nothing excluded). */
  readonly isCatchAll: boolean;
}

/** Compiles an event_type rule (see {@link EventTypeMatcher}). */
export function compileEventTypes(patterns: readonly string[]): EventTypeMatcher {
  const included: string[] = [];
  const excluded: string[] = [];
  for (const p of patterns) {
    if (p.startsWith('!')) excluded.push(p.slice(1));
    else included.push(p);
  }
  if (excluded.length > 0 && included.length === 0) included.push('*');
  const isCatchAll = included.includes('*') && excluded.length === 0;
  const inc = included.map(compileGlob);
  const exc = excluded.map(compileGlob);
  const test = (t: string) => {
    let hit = false;
    for (const m of inc) {
      if (m(t)) {
        hit = true;
        break;
      }
    }
    if (!hit) return false;
    for (const m of exc) if (m(t)) return false;
    return true;
  };
  return { test, isCatchAll };
}
