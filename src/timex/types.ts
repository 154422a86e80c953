import type { Instant } from './instant.js';

/**
 * The value of a timex expression: a single timestamp, or a half-open range [begin, end).
 * A timestamp "contains" only itself; a range contains begin ≤ t < end.
 */
export type TimexValue =
  | { readonly kind: 'timestamp'; readonly at: Instant }
  | { readonly kind: 'range'; readonly begin: Instant; readonly end: Instant };

/** Variables an expression is evaluated with, by name without the `$`. */
export type TimexVariables = Readonly<Record<string, Instant>>;

/** A parsed, reusable timex expression (parse once at config load, evaluate per event). */
export interface TimexExpression {
  /** The text it was parsed from. */
  readonly source: string;
  /** Names of the variables it references (without `$`). `timestamp` defaults to `now` when absent. */
  readonly variables: ReadonlySet<string>;
  /**
   * Evaluates the expression. `now` is the value of `$timestamp` when `vars` lacks it.
   * Throws a `TimexEvalError` when a referenced variable (other than `timestamp`) is missing
   * or the arithmetic leaves the supported date range.
   */
  evaluate(vars: TimexVariables, now: Instant): TimexValue;
}
