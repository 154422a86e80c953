/** Shared helpers for the timex tests: datetimes as text in, text out. */
import { parseTimex } from '../../../src/timex/index.js';
import { formatInstant, type Instant, parseDatetime } from '../../../src/timex/instant.js';

/** A datetime literal (UTC) as an Instant. */
export const at = (s: string): Instant => parseDatetime(s);

/** A fixed "now" far from every date the tests use, so a test that leaks it fails visibly. */
export const NOW = at('1999-12-31T12:34:56.789012Z');

/**
 * Evaluates `source` with datetime-string variables and renders the result as
 * `[begin, end]` for a range or a single string for a timestamp (ISO, µs, Z).
 */
export function ev(
  source: string,
  vars: Record<string, string> = {},
  now: Instant = NOW,
): string | [string, string] {
  const values: Record<string, Instant> = {};
  for (const [k, v] of Object.entries(vars)) values[k] = at(v);
  const r = parseTimex(source).evaluate(values, now);
  return r.kind === 'range' ? [formatInstant(r.begin), formatInstant(r.end)] : formatInstant(r.at);
}

/** `ev` for an expression evaluated at `$timestamp = t`. */
export const evAt = (source: string, t: string) => ev(source, { timestamp: t });
