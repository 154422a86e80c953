/**
 * Compiles a timex syntax tree into closures, so an expression parsed once at configuration load
 * evaluates per event without re-reading its source or re-deciding anything static.
 *
 * Whether a node is a timestamp or a range, whether a range is pinned, and which unit a pinned
 * range wraps by are all known from the tree; only the instants (and the unit a unitless number
 * takes, which depends on a range's length) are left for evaluation time.
 */
import { civilFromDays, dayOf, daysFromCivil } from './calendar.js';
import {
  applyShift,
  type Duration,
  makeShift,
  type RangeUnit,
  replaceComponents,
  resolveUnitless,
  type Shift,
  UNITS,
  type Unit,
  unitForRangeLength,
  wrapsWithin,
} from './duration.js';
import { TimexEvalError } from './errors.js';
import { type Instant, MAX_INSTANT, MIN_INSTANT, US_PER_DAY, US_PER_HOUR } from './instant.js';
import type { Node } from './parser.js';
import type { TimexVariables } from './types.js';

/**
 * A range as evaluated. `anchor` is the instant a pinned range must keep containing (NaN for a
 * range that is not pinned). The object is also the public `TimexValue` of a range result.
 */
export interface RangeResult {
  readonly kind: 'range';
  readonly begin: Instant;
  readonly end: Instant;
  readonly anchor: Instant;
}

export type TimestampFn = (vars: TimexVariables, now: Instant) => Instant;
export type RangeFn = (vars: TimexVariables, now: Instant) => RangeResult;

/** A compiled node: a timestamp, or a range (pinned to `pin` when it is one). */
export type Compiled =
  | { readonly type: 'timestamp'; readonly fn: TimestampFn }
  | { readonly type: 'range'; readonly fn: RangeFn; readonly pin: RangeUnit | null };

const outOfRange = () => new TimexEvalError('result is outside the supported date range (1700–2200)');

function range(begin: Instant, end: Instant, anchor: Instant): RangeResult {
  return { kind: 'range', begin, end, anchor };
}

function compileVariable(name: string): TimestampFn {
  if (name === 'timestamp') return (vars, now) => vars.timestamp ?? now;
  return (vars) => {
    const v = vars[name];
    if (v === undefined) throw new TimexEvalError(`variable $${name} is not defined`);
    return v;
  };
}

const floorTo = (t: Instant, step: number) => t - (((t % step) + step) % step);

function checked(t: Instant): Instant {
  if (!(t >= MIN_INSTANT && t <= MAX_INSTANT)) throw outOfRange();
  return t;
}

/** The unit-long range containing `t`, pinned to `t`. */
function rangeFunction(unit: RangeUnit): (t: Instant) => RangeResult {
  switch (unit) {
    case 'hour':
      return (t) => {
        const begin = checked(floorTo(t, US_PER_HOUR));
        return range(begin, checked(begin + US_PER_HOUR), t);
      };
    case 'day':
      return (t) => {
        const begin = checked(floorTo(t, US_PER_DAY));
        return range(begin, checked(begin + US_PER_DAY), t);
      };
    case 'month':
      return (t) => {
        const { year, month } = civilFromDays(dayOf(t));
        const begin = checked(daysFromCivil(year, month, 1) * US_PER_DAY);
        const end = month === 12 ? daysFromCivil(year + 1, 1, 1) : daysFromCivil(year, month + 1, 1);
        return range(begin, checked(end * US_PER_DAY), t);
      };
    case 'year':
      return (t) => {
        const { year } = civilFromDays(dayOf(t));
        const begin = checked(daysFromCivil(year, 1, 1) * US_PER_DAY);
        return range(begin, checked(daysFromCivil(year + 1, 1, 1) * US_PER_DAY), t);
      };
  }
}

/** An operation on one instant, compiled from an operator and a duration without a unitless part. */
function instantOp(op: '+' | '-' | '@', d: Duration): (t: Instant) => Instant {
  if (op === '@') return (t) => replaceComponents(t, d);
  const shift: Shift = makeShift(d, op === '+' ? 1 : -1);
  if (shift.months === 0 && shift.big === undefined) {
    const us = shift.us;
    return (t) => checked(t + us);
  }
  return (t) => applyShift(t, shift);
}

/**
 * The operation on a range's ends. A unitless number takes its unit from the range's length
 * before the operation, so one variant is compiled per possible unit and chosen per evaluation.
 */
function rangeOp(op: '+' | '-' | '@', d: Duration): (r: RangeResult) => RangeResult {
  if (d.unitless === undefined) {
    const f = instantOp(op, d);
    return (r) => range(f(r.begin), f(r.end), r.anchor);
  }
  const variants = new Map<Unit, (t: Instant) => Instant>();
  for (const u of UNITS) variants.set(u, instantOp(op, resolveUnitless(d, u)));
  return (r) => {
    const f = variants.get(unitForRangeLength(r.end - r.begin))!;
    return range(f(r.begin), f(r.end), r.anchor);
  };
}

/**
 * Moves a range by whole multiples of its own length until it contains `anchor` (the reference
 * steps one length at a time; the count is computed here, then corrected for float rounding).
 */
export function wrapAround(r: RangeResult): RangeResult {
  const { begin, end, anchor } = r;
  if (anchor >= begin && anchor < end) return r;
  const len = end - begin;
  if (len <= 0) {
    // The reference loops forever here (`hour @ 0h` on an hour before 23:00 collapses the range).
    throw new TimexEvalError('the range became empty, so it cannot be wrapped around its timestamp');
  }
  let k = begin > anchor ? -Math.ceil((begin - anchor) / len) : Math.floor((anchor - end) / len) + 1;
  while (begin + k * len > anchor) k--;
  while (end + k * len <= anchor) k++;
  return range(checked(begin + k * len), checked(end + k * len), anchor);
}

/** Compiles a node; `parseTree` has already checked the grammar and the static rules. */
export function compileNode(n: Node): Compiled {
  switch (n.k) {
    case 'var':
      return { type: 'timestamp', fn: compileVariable(n.name) };
    case 'func': {
      const arg = n.arg === null ? compileVariable('timestamp') : timestampOf(n.arg);
      const make = rangeFunction(n.unit);
      return { type: 'range', pin: n.unit, fn: (vars, now) => make(arg(vars, now)) };
    }
    case 'to': {
      const begin = timestampOf(n.begin);
      const end = timestampOf(n.end);
      return {
        type: 'range',
        pin: null,
        fn: (vars, now) => range(begin(vars, now), end(vars, now), Number.NaN),
      };
    }
    case 'op': {
      const operand = compileNode(n.operand);
      if (operand.type === 'timestamp') {
        const inner = operand.fn;
        const f = instantOp(n.op, n.duration);
        return { type: 'timestamp', fn: (vars, now) => f(inner(vars, now)) };
      }
      const inner = operand.fn;
      const f = rangeOp(n.op, n.duration);
      if (operand.pin !== null && wrapsWithin(n.duration, operand.pin)) {
        return {
          type: 'range',
          pin: operand.pin,
          fn: (vars, now) => wrapAround(f(inner(vars, now))),
        };
      }
      // A duration as large as a pinned range's unit moves the range plainly and unpins it
      // (`day + 1d` is the next day); the reference fails on this case.
      return {
        type: 'range',
        pin: null,
        fn: (vars, now) => {
          const r = f(inner(vars, now));
          return range(r.begin, r.end, Number.NaN);
        },
      };
    }
  }
}

function timestampOf(n: Node): TimestampFn {
  const c = compileNode(n);
  if (c.type !== 'timestamp')
    throw new Error('internal: parser let a range through where a timestamp belongs');
  return c.fn;
}
