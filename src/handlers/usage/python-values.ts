/**
 * Trait values seen through Python's eyes. The reference's usage audit works on plain dicts of
 * Python values (str, int, float, naive UTC datetime) and its verdicts depend on Python's rules:
 * truthiness (`if not deleted_at`), `==`/`!=` across types, ordering comparisons that raise on
 * mixed types, and `str()` of a value inside an error message. These helpers give the same answers
 * for our typed traits, so the same stream gets the same verdict and the same message.
 */
import type { TraitValue } from '../../model/event.js';
import { toFields } from '../../timex/instant.js';

/** Python truthiness of a dict value; `undefined` is a missing key or a None. */
export function truthy(v: TraitValue | undefined): boolean {
  if (v === undefined) return false;
  switch (v.type) {
    case 'text':
      return v.value !== '';
    case 'int':
    case 'float':
      return v.value !== 0;
    case 'datetime':
      return true;
  }
}

const isNumber = (v: TraitValue): boolean => v.type === 'int' || v.type === 'float';

/** Python `a == b`: numbers compare by value whatever their type; other types must match. */
export function pyEquals(a: TraitValue | undefined, b: TraitValue | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (isNumber(a) && isNumber(b)) return a.value === b.value;
  return a.type === b.type && a.value === b.value;
}

/** Python `v == s` for a string literal. */
export function pyEqualsText(v: TraitValue | undefined, s: string): boolean {
  return v !== undefined && v.type === 'text' && v.value === s;
}

/** Thrown where Python would raise TypeError: ordering values of types that do not order together. */
export class IncomparableError extends Error {
  override name = 'IncomparableError';
}

function pyTypeName(v: TraitValue | undefined): string {
  if (v === undefined) return 'NoneType';
  return v.type === 'text' ? 'str' : v.type;
}

// Python orders str by code point; JS `<` orders UTF-16 code units, which differ only when a
// surrogate pair meets a character in U+E000–U+FFFF.
function compareText(a: string, b: string): number {
  if (!/[\ud800-\udfff]/.test(a) && !/[\ud800-\udfff]/.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  const ca = Array.from(a, (c) => c.codePointAt(0)!);
  const cb = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    if (ca[i] !== cb[i]) return ca[i]! - cb[i]!;
  }
  return ca.length - cb.length;
}

/**
 * Python's ordering of two values as a sign (negative, 0, positive). Throws {@link IncomparableError}
 * for a missing value or types Python refuses to order (a datetime and a str, anything and None).
 */
export function pyCompare(a: TraitValue | undefined, b: TraitValue | undefined): number {
  if (a !== undefined && b !== undefined) {
    if (isNumber(a) && isNumber(b)) return (a.value as number) - (b.value as number);
    if (a.type === 'text' && b.type === 'text') return compareText(a.value, b.value);
    if (a.type === 'datetime' && b.type === 'datetime') return a.value - b.value;
  }
  throw new IncomparableError(`'<' not supported between ${pyTypeName(a)} and ${pyTypeName(b)}`);
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** Python `str()` of a naive datetime: `2015-01-22 02:50:22.702356`, no fraction when it is zero. */
export function pyDatetimeStr(t: number): string {
  const f = toFields(t);
  const base = `${pad(f.year, 4)}-${pad(f.month, 2)}-${pad(f.day, 2)} ${pad(f.hour, 2)}:${pad(f.minute, 2)}:${pad(f.second, 2)}`;
  return f.microsecond === 0 ? base : `${base}.${pad(f.microsecond, 6)}`;
}

/**
 * Python `repr()`/`str()` of a float: the shortest digits that read back (as JS also finds), laid
 * out as Python does — positional when the decimal exponent is in [-4, 16), otherwise scientific
 * with a signed exponent of at least two digits; always a `.0` on integral positional values.
 */
export function pyFloatStr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = x.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = negative ? '-' : '';
  if (exp >= -4 && exp < 16) {
    let s: string;
    if (exp < 0) s = `0.${'0'.repeat(-exp - 1)}${digits}`;
    else if (digits.length <= exp + 1) s = `${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
    else s = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
    return sign + s;
  }
  const m = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
  const e = `${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return `${sign}${m}e${e}`;
}

/** Python `str()` of a value, as `'%s' % value` puts it into a message; a missing value is `None`. */
export function pyStr(v: TraitValue | undefined): string {
  if (v === undefined) return 'None';
  switch (v.type) {
    case 'text':
      return v.value;
    case 'int':
      return String(v.value);
    case 'float':
      return pyFloatStr(v.value);
    case 'datetime':
      return pyDatetimeStr(v.value);
  }
}
