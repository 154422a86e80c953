/**
 * Splits a PostgreSQL script into its statements, for drivers that run one statement per query
 * (slonik refuses multi-statement results). Understands what can hide a `;`: single-quoted strings
 * (with `''` and E'\'' escapes), quoted identifiers, dollar-quoted bodies (`$$…$$`, `$fn$…$fn$`),
 * line comments and nested block comments. Comment-only and empty pieces are dropped.
 */

const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;

/** The statements of `script`, each trimmed and without its terminating `;`. */
export function splitSqlStatements(script: string): string[] {
  const out: string[] = [];
  let start = 0;
  let meaningful = false; // the current piece has something besides whitespace and comments
  let i = 0;
  const n = script.length;
  const unterminated = (what: string, at: number): never => {
    throw new SyntaxError(`unterminated ${what} starting at offset ${at}`);
  };
  while (i < n) {
    const c = script[i] as string;
    const next = script[i + 1];
    if (c === '-' && next === '-') {
      const end = script.indexOf('\n', i);
      i = end === -1 ? n : end + 1;
      continue;
    }
    if (c === '/' && next === '*') {
      const at = i;
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i >= n) unterminated('block comment', at);
        if (script[i] === '/' && script[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (script[i] === '*' && script[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      continue;
    }
    if (c === ';') {
      if (meaningful) out.push(script.slice(start, i).trim());
      start = i + 1;
      meaningful = false;
      i++;
      continue;
    }
    if (!/\s/.test(c)) meaningful = true;
    if (c === "'" || c === '"') {
      const at = i;
      // E'…' strings may escape the quote with a backslash.
      const backslashes = c === "'" && i > 0 && /[eE]/.test(script[i - 1] as string);
      i++;
      for (;;) {
        if (i >= n) unterminated(c === "'" ? 'string' : 'quoted identifier', at);
        const d = script[i];
        if (backslashes && d === '\\') i += 2;
        else if (d === c && script[i + 1] === c) i += 2;
        else if (d === c) {
          i++;
          break;
        } else i++;
      }
      continue;
    }
    if (c === '$') {
      DOLLAR_TAG.lastIndex = i;
      const m = DOLLAR_TAG.exec(script);
      // `$1` (a parameter) does not match; an identifier character before `$` means it is part of a name.
      if (m !== null && !(i > 0 && /[A-Za-z0-9_]/.test(script[i - 1] as string))) {
        const end = script.indexOf(m[0], i + m[0].length);
        if (end === -1) unterminated(`dollar-quoted string ${m[0]}`, i);
        i = end + m[0].length;
        continue;
      }
    }
    i++;
  }
  const rest = script.slice(start).trim();
  if (meaningful && rest !== '') out.push(rest);
  return out;
}
