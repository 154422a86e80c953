/**
 * The reference converts trait values with Python's `str()`, `int()` and `float()`; these are the
 * same conversions over JSON values, so existing definitions yield the same traits.
 *
 * One unavoidable difference: JSON `1.0` and `1` are the same JS number, so a `text` trait of the
 * JSON number `1.0` is `"1"` here and `"1.0"` in the reference.
 */

/** Thrown for a value the target type cannot be made from (Python's ValueError/TypeError). */
export class ConversionError extends Error {
  override name = 'ConversionError';
}

// Python's str.strip() with no argument removes Unicode whitespace; \s is the same set plus \uFEFF.
const INT_TEXT = /^\s*([+-]?)(\d+(?:_\d+)*)\s*$/;
const FLOAT_TEXT =
  /^\s*[+-]?(?:\d+(?:_\d+)*(?:\.(?:\d+(?:_\d+)*)?)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+(?:_\d+)*)?\s*$/;
const NON_FINITE_TEXT = /^\s*[+-]?(?:inf|infinity|nan)\s*$/i;

function describe(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : pyStr(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/** Python `int(value)` for JSON values: ints, bools, floats (truncated) and integer strings. */
export function pyInt(v: unknown): number {
  let n: number;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ConversionError(`cannot convert ${describe(v)} to int`);
    n = Math.trunc(v);
  } else if (typeof v === 'boolean') {
    n = v ? 1 : 0;
  } else if (typeof v === 'string') {
    const m = INT_TEXT.exec(v);
    if (!m) throw new ConversionError(`invalid literal for int: ${describe(v)}`);
    n = Number(m[1] + m[2]!.replaceAll('_', ''));
  } else {
    throw new ConversionError(`cannot convert ${describe(v)} to int`);
  }
  // Python ints are unbounded; ours must stay exact.
  if (!Number.isSafeInteger(n)) throw new ConversionError(`int out of range: ${describe(v)}`);
  return n === 0 ? 0 : n; // no -0
}

/** Python `float(value)` for JSON values; NaN and infinities are rejected (JSON cannot carry them). */
export function pyFloat(v: unknown): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'boolean') n = v ? 1 : 0;
  else if (typeof v === 'string') {
    if (NON_FINITE_TEXT.test(v)) throw new ConversionError(`non-finite float: ${describe(v)}`);
    if (!FLOAT_TEXT.test(v)) throw new ConversionError(`could not convert string to float: ${describe(v)}`);
    n = Number(v.trim().replaceAll('_', ''));
  } else {
    throw new ConversionError(`cannot convert ${describe(v)} to float`);
  }
  if (!Number.isFinite(n)) throw new ConversionError(`non-finite float: ${describe(v)}`);
  return n;
}

/** Python's `repr()` of a float whose value is `n` (shortest round-trip digits, Python's layout). */
export function pyFloatRepr(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0.0' : '0.0';
  const [mant, expText] = n.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let body: string;
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  } else if (exp < 0) {
    body = `0.${'0'.repeat(-exp - 1)}${digits}`;
  } else if (digits.length <= exp + 1) {
    body = `${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
  } else {
    body = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  return neg ? `-${body}` : body;
}

/** Python's repr() of a str: single quotes unless the text has ' and no ", escapes for controls. */
function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

function pyRepr(v: unknown): string {
  if (typeof v === 'string') return pyStrRepr(v);
  return pyStr(v);
}

/**
 * Python `str(value)` for a JSON value: strings as-is, `True`/`False`, `None`, numbers as Python
 * prints them (integral numbers as ints), lists and objects as Python's repr of a list/dict.
 */
export function pyStr(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'boolean':
      return v ? 'True' : 'False';
    case 'number':
      if (Number.isInteger(v)) return Math.abs(v) < 1e21 ? String(v === 0 ? 0 : v) : BigInt(v).toString();
      return pyFloatRepr(v);
    case 'bigint':
      return v.toString();
    case 'undefined':
      return 'None';
    case 'object':
      if (v === null) return 'None';
      if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
      if (v instanceof Date) return v.toISOString();
      return `{${Object.entries(v)
        .map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`)
        .join(', ')}}`;
    default:
      return String(v);
  }
}

/**
 * Python `==` between a value from YAML and one from JSON (the bitfield plugin's `value`):
 * numbers and booleans compare numerically (True == 1), containers element-wise.
 */
export function pyEquals(a: unknown, b: unknown): boolean {
  const num = (x: unknown) => (typeof x === 'boolean' ? (x ? 1 : 0) : x);
  const x = num(a);
  const y = num(b);
  if (typeof x === 'number' && typeof y === 'number') return x === y;
  if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return x === y;
  if (Array.isArray(x) !== Array.isArray(y)) return false;
  if (Array.isArray(x) && Array.isArray(y))
    return x.length === y.length && x.every((e, i) => pyEquals(e, y[i]));
  const xo = x as Record<string, unknown>;
  const yo = y as Record<string, unknown>;
  const keys = Object.keys(xo);
  if (keys.length !== Object.keys(yo).length) return false;
  return keys.every((k) => Object.hasOwn(yo, k) && pyEquals(xo[k], yo[k]));
}
