import { civilFromDays, dayOf, daysFromCivil, monthLength } from './calendar.js';
import { TimexEvalError } from './errors.js';
import {
  type Instant,
  MAX_INSTANT,
  MIN_INSTANT,
  US_PER_DAY,
  US_PER_HOUR,
  US_PER_MINUTE,
  US_PER_SECOND,
} from './instant.js';

/** Calendar units from the largest to the smallest; the order matters for comparisons. */
export const UNITS = ['year', 'month', 'day', 'hour', 'minute', 'second', 'microsecond'] as const;
export type Unit = (typeof UNITS)[number];

/** The units a range function covers (`hour($t)`, `day`, …). */
export type RangeUnit = 'hour' | 'day' | 'month' | 'year';

/**
 * A duration as written: a count per unit. A unit that was not written is absent, which is not
 * the same as 0 (`@ 0h` replaces the hour; an absent hour is left alone). `unitless` is a bare
 * number (`day @ 2`), legal only on ranges, where the range's length picks its unit.
 */
export interface Duration {
  readonly year?: number;
  readonly month?: number;
  readonly day?: number;
  readonly hour?: number;
  readonly minute?: number;
  readonly second?: number;
  readonly microsecond?: number;
  readonly unitless?: number;
}

/** Unit names as they are written after a number. */
export const UNIT_WORDS: Readonly<Record<string, Unit>> = {
  us: 'microsecond',
  s: 'second',
  sec: 'second',
  m: 'minute',
  min: 'minute',
  h: 'hour',
  hr: 'hour',
  d: 'day',
  mo: 'month',
  y: 'year',
  yr: 'year',
};

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Juxtaposed durations add up per unit (`1h 30m 1h` is 2h 30m). */
export function addDurations(a: Duration, b: Duration): Duration {
  const out: Mutable<Duration> = { ...a };
  for (const key of [...UNITS, 'unitless'] as const) {
    const v = b[key];
    if (v !== undefined) out[key] = (out[key] ?? 0) + v;
  }
  return out;
}

/**
 * Whether an operation with `d` on a range pinned to `unit` wraps around its anchor. The
 * reference compares durations unit by unit from the largest: any unit larger than the range's
 * (even written as 0) makes the duration "not smaller"; at the range's own unit only 0 is
 * smaller; otherwise (only smaller units, or only a unitless number) it is smaller. So
 * `day + 23h`, `day + 90h` and `day + 0d 6h` wrap, `day + 1d` and `day + 0mo 6h` do not.
 */
export function wrapsWithin(d: Duration, unit: RangeUnit): boolean {
  for (const u of UNITS) {
    const v = d[u];
    if (u === unit) return v === undefined || v < 1;
    if (v !== undefined) return false;
  }
  return true;
}

/**
 * The unit a unitless number takes on a range `length` µs long (the reference's rule: a
 * year-long range counts months, a month-long one days, a day-long one hours, …).
 */
export function unitForRangeLength(length: number): Unit {
  const len = Math.abs(length);
  if (len >= 365 * US_PER_DAY) return 'month';
  if (len >= 28 * US_PER_DAY) return 'day';
  if (len >= US_PER_DAY) return 'hour';
  if (len >= US_PER_HOUR) return 'minute';
  if (len >= US_PER_MINUTE) return 'second';
  return 'microsecond';
}

/** The duration with its unitless number folded into `unit`. */
export function resolveUnitless(d: Duration, unit: Unit): Duration {
  if (d.unitless === undefined) return d;
  const { unitless, ...rest } = d;
  return addDurations(rest, { [unit]: unitless });
}

const US_PER: Readonly<Record<'day' | 'hour' | 'minute' | 'second' | 'microsecond', number>> = {
  day: US_PER_DAY,
  hour: US_PER_HOUR,
  minute: US_PER_MINUTE,
  second: US_PER_SECOND,
  microsecond: 1,
};

const outOfRange = () => new TimexEvalError('result is outside the supported date range (1700–2200)');

/**
 * A precomputed add or subtract: a fixed number of microseconds (days and smaller), then a
 * number of calendar months (months and years), in that order, as the reference does it.
 */
export interface Shift {
  /** Signed microseconds; exact when `big` is undefined. */
  readonly us: number;
  /** The same microseconds as a bigint when they exceed 2^53 (a span of more than ~285 years). */
  readonly big: bigint | undefined;
  /** Signed calendar months (years count 12). */
  readonly months: number;
}

/** Compiles a duration without a unitless part into a shift; `sign` is +1 to add, -1 to subtract. */
export function makeShift(d: Duration, sign: 1 | -1): Shift {
  let us = 0;
  let big = 0n;
  for (const u of ['day', 'hour', 'minute', 'second', 'microsecond'] as const) {
    const v = d[u];
    if (v === undefined) continue;
    us += v * US_PER[u];
    big += BigInt(v) * BigInt(US_PER[u]);
  }
  const exact = Number.isSafeInteger(us);
  return {
    us: sign * us,
    big: exact ? undefined : BigInt(sign) * big,
    months: sign * ((d.year ?? 0) * 12 + (d.month ?? 0)),
  };
}

/**
 * Moves an instant by a shift. Months clamp the day to the target month's length (Jan 31 + 1mo
 * is Feb 28 or 29; Feb 29 + 1y is Feb 28), where the reference would fail.
 */
export function applyShift(t: Instant, s: Shift): Instant {
  const r = s.big === undefined ? t + s.us : Number(BigInt(t) + s.big);
  if (!(r >= MIN_INSTANT && r <= MAX_INSTANT)) throw outOfRange();
  return s.months === 0 ? r : addMonths(r, s.months);
}

function addMonths(t: Instant, months: number): Instant {
  const days = dayOf(t);
  const timeOfDay = t - days * US_PER_DAY;
  const f = civilFromDays(days);
  const total = f.year * 12 + (f.month - 1) + months;
  const year = Math.floor(total / 12);
  const month = total - year * 12 + 1;
  if (year < 1700 || year > 2200) throw outOfRange();
  const day = Math.min(f.day, monthLength(year, month));
  const r = daysFromCivil(year, month, day) * US_PER_DAY + timeOfDay;
  if (!(r >= MIN_INSTANT && r <= MAX_INSTANT)) throw outOfRange();
  return r;
}

/** Allowed values per unit for a replacement (`@`); a day is then clamped to its month. */
const REPLACE_LIMITS: Readonly<Record<Unit, readonly [number, number]>> = {
  year: [1700, 2200],
  month: [1, 12],
  day: [1, 31],
  hour: [0, 23],
  minute: [0, 59],
  second: [0, 59],
  microsecond: [0, 999_999],
};

/** The first unit of `d` whose value can never be a replacement, with its limits, or undefined. */
export function invalidReplacement(
  d: Duration,
): { unit: Unit; value: number; min: number; max: number } | undefined {
  for (const u of UNITS) {
    const v = d[u];
    if (v === undefined) continue;
    const [min, max] = REPLACE_LIMITS[u];
    if (v < min || v > max) return { unit: u, value: v, min, max };
  }
  return undefined;
}

/**
 * Replaces the written components of an instant (`$t @ 0h 0m 0s`). A day past the end of the
 * resulting month is clamped to its last day (`@ 31d` in April is April 30), where the
 * reference would fail.
 */
export function replaceComponents(t: Instant, d: Duration): Instant {
  const bad = invalidReplacement(d);
  if (bad) {
    throw new TimexEvalError(`cannot replace ${bad.unit} with ${bad.value} (allowed ${bad.min}–${bad.max})`);
  }
  const days = dayOf(t);
  const tod = t - days * US_PER_DAY;
  const f = civilFromDays(days);
  const year = d.year ?? f.year;
  const month = d.month ?? f.month;
  const day = Math.min(d.day ?? f.day, monthLength(year, month));
  const hour = d.hour ?? Math.floor(tod / US_PER_HOUR);
  const minute = d.minute ?? Math.floor((tod % US_PER_HOUR) / US_PER_MINUTE);
  const second = d.second ?? Math.floor((tod % US_PER_MINUTE) / US_PER_SECOND);
  const microsecond = d.microsecond ?? tod % US_PER_SECOND;
  const r =
    daysFromCivil(year, month, day) * US_PER_DAY +
    hour * US_PER_HOUR +
    minute * US_PER_MINUTE +
    second * US_PER_SECOND +
    microsecond;
  if (!(r >= MIN_INSTANT && r <= MAX_INSTANT)) throw outOfRange();
  return r;
}

/** Renders a duration the way it would be written (`1d 6h`), for messages and debugging. */
export function formatDuration(d: Duration): string {
  const short: Record<Unit, string> = {
    year: 'y',
    month: 'mo',
    day: 'd',
    hour: 'h',
    minute: 'm',
    second: 's',
    microsecond: 'us',
  };
  const parts: string[] = [];
  for (const u of UNITS) if (d[u] !== undefined) parts.push(`${d[u]}${short[u]}`);
  if (d.unitless !== undefined) parts.push(String(d.unitless));
  return parts.join(' ');
}
