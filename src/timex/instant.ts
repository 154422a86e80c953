/**
 * An instant in time as an integer count of microseconds since 1970-01-01T00:00:00Z (UTC).
 *
 * JS `Date` keeps milliseconds only; a plain number of microseconds is exact (a safe integer)
 * for every date between the years 1685 and 2255, which covers any OpenStack notification, and
 * compares and sorts with the ordinary operators. Calendar work converts to {@link DateFields}.
 */
export type Instant = number;

export const US_PER_MS = 1000;
export const US_PER_SECOND = 1_000_000;
export const US_PER_MINUTE = 60 * US_PER_SECOND;
export const US_PER_HOUR = 60 * US_PER_MINUTE;
export const US_PER_DAY = 24 * US_PER_HOUR;

/** Smallest and largest instants this representation keeps exact (years 1700 and 2200, inclusive). */
export const MIN_INSTANT: Instant = Date.UTC(1700, 0, 1) * US_PER_MS;
export const MAX_INSTANT: Instant = Date.UTC(2201, 0, 1) * US_PER_MS - 1;

/** Calendar fields of an instant in UTC. `month` is 1–12, `day` 1–31. */
export interface DateFields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  microsecond: number;
}

/** Thrown for a datetime string that cannot be read, or one outside the supported years. */
export class DatetimeError extends Error {
  override name = 'DatetimeError';
}

export function isInstantInRange(t: Instant): boolean {
  return Number.isSafeInteger(t) && t >= MIN_INSTANT && t <= MAX_INSTANT;
}

/** Splits an instant into UTC calendar fields. */
export function toFields(t: Instant): DateFields {
  const ms = Math.floor(t / US_PER_MS);
  const d = new Date(ms);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    microsecond: t - ms * US_PER_MS + d.getUTCMilliseconds() * US_PER_MS,
  };
}

/** Days in a month of a (proleptic Gregorian) year; month is 1–12. */
export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * Builds an instant from UTC calendar fields. Fields must already be valid (month 1–12,
 * day within the month, …); throws a {@link DatetimeError} otherwise, like Python's datetime.
 */
export function fromFields(f: DateFields): Instant {
  if (
    !Number.isInteger(f.year) ||
    f.month < 1 ||
    f.month > 12 ||
    f.day < 1 ||
    f.day > daysInMonth(f.year, f.month) ||
    f.hour < 0 ||
    f.hour > 23 ||
    f.minute < 0 ||
    f.minute > 59 ||
    f.second < 0 ||
    f.second > 59 ||
    f.microsecond < 0 ||
    f.microsecond > 999_999
  ) {
    throw new DatetimeError(`invalid date fields ${JSON.stringify(f)}`);
  }
  const ms = new Date(0);
  ms.setUTCFullYear(f.year, f.month - 1, f.day);
  ms.setUTCHours(f.hour, f.minute, f.second, 0);
  const t = ms.getTime() * US_PER_MS + f.microsecond;
  if (!isInstantInRange(t))
    throw new DatetimeError(`date out of the supported range (1700–2200): year ${f.year}`);
  return t;
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');

/** ISO-8601 UTC with six fractional digits and `Z`: `2015-01-22T02:50:22.702356Z` (the CLI contract). */
export function formatInstant(t: Instant): string {
  const f = toFields(t);
  return `${pad(f.year, 4)}-${pad(f.month, 2)}-${pad(f.day, 2)}T${pad(f.hour, 2)}:${pad(f.minute, 2)}:${pad(f.second, 2)}.${pad(f.microsecond, 6)}Z`;
}

// YYYY-MM-DD, then optionally [T or space] HH:MM[:SS[.ffffff]], then optionally Z or ±HH[:MM].
const DATETIME =
  /^\s*(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?\s*$/;

/**
 * Reads a datetime as OpenStack emits it and converts it to UTC: `2015-01-22 02:50:22.702356`,
 * ISO-8601 with `T`, with or without fraction, with `Z` or a `±HH:MM` offset. A datetime without
 * an offset is taken as UTC. Fractions beyond microseconds are truncated.
 */
export function parseDatetime(s: string): Instant {
  const m = DATETIME.exec(s);
  if (!m)
    throw new DatetimeError(`not a datetime: ${JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s)}`);
  const frac = m[7] ?? '';
  const base = fromFields({
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    hour: Number(m[4] ?? 0),
    minute: Number(m[5] ?? 0),
    second: Number(m[6] ?? 0),
    microsecond: Number(frac.padEnd(6, '0').slice(0, 6)),
  });
  if (m[9] === undefined) return base;
  const oh = Number(m[10]);
  const om = Number(m[11] ?? 0);
  if (oh > 23 || om > 59) throw new DatetimeError(`invalid UTC offset in ${JSON.stringify(s)}`);
  const offset = (oh * 60 + om) * US_PER_MINUTE;
  const t = m[9] === '+' ? base - offset : base + offset;
  if (!isInstantInRange(t)) throw new DatetimeError(`date out of the supported range (1700–2200): ${s}`);
  return t;
}

/** The current wall-clock time (millisecond resolution, as the platform gives it). */
export function nowInstant(): Instant {
  return Date.now() * US_PER_MS;
}
