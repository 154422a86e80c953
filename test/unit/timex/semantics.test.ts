/** Evaluation semantics beyond the reference's own tests: calendar edges, pinned ranges, units. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { contains, parseTimex, TimexEvalError } from '../../../src/timex/index.js';
import { at, ev, evAt, NOW } from './helpers.js';

describe('month and year arithmetic clamps the day', () => {
  test('Jan 31 + 1mo is the last day of February', () => {
    assert.equal(ev('$t + 1mo', { t: '2015-01-31T10:00:00Z' }), '2015-02-28T10:00:00.000000Z');
    assert.equal(ev('$t + 1mo', { t: '2016-01-31T10:00:00Z' }), '2016-02-29T10:00:00.000000Z');
  });
  test('Mar 31 - 1mo, May 31 + 1mo, Dec → Jan carries the year', () => {
    assert.equal(ev('$t - 1mo', { t: '2015-03-31T00:00:00Z' }), '2015-02-28T00:00:00.000000Z');
    assert.equal(ev('$t + 1mo', { t: '2015-05-31T00:00:00Z' }), '2015-06-30T00:00:00.000000Z');
    assert.equal(ev('$t + 1mo', { t: '2014-12-15T01:02:03.000004Z' }), '2015-01-15T01:02:03.000004Z');
    assert.equal(ev('$t - 1mo', { t: '2015-01-15T00:00:00Z' }), '2014-12-15T00:00:00.000000Z');
    assert.equal(ev('$t + 13mo', { t: '2014-12-15T00:00:00Z' }), '2016-01-15T00:00:00.000000Z');
    assert.equal(ev('$t - 25mo', { t: '2014-01-15T00:00:00Z' }), '2011-12-15T00:00:00.000000Z');
    assert.equal(ev('$t + 24mo', { t: '2014-01-15T00:00:00Z' }), '2016-01-15T00:00:00.000000Z');
  });
  test('leap days and years', () => {
    assert.equal(ev('$t + 1y', { t: '2016-02-29T12:00:00Z' }), '2017-02-28T12:00:00.000000Z');
    assert.equal(ev('$t - 1y', { t: '2016-02-29T12:00:00Z' }), '2015-02-28T12:00:00.000000Z');
    assert.equal(ev('$t + 4y', { t: '2016-02-29T12:00:00Z' }), '2020-02-29T12:00:00.000000Z');
    assert.equal(ev('$t + 100y', { t: '2000-02-29T00:00:00Z' }), '2100-02-28T00:00:00.000000Z');
    assert.equal(ev('$t + 1d', { t: '2016-02-28T00:00:00Z' }), '2016-02-29T00:00:00.000000Z');
    assert.equal(ev('$t + 1d', { t: '2015-02-28T00:00:00Z' }), '2015-03-01T00:00:00.000000Z');
  });
  test('years and months clamp once, on the final month (Jan 31 2015 + 1y 1mo is Feb 29 2016)', () => {
    assert.equal(ev('$t + 1y 1mo', { t: '2015-01-31T00:00:00Z' }), '2016-02-29T00:00:00.000000Z');
    assert.equal(ev('$t + 1mo 1y', { t: '2015-01-31T00:00:00Z' }), '2016-02-29T00:00:00.000000Z');
  });
  test('days and smaller apply before months, as in the reference', () => {
    assert.equal(ev('$t + 1mo 1d', { t: '2015-01-30T00:00:00Z' }), '2015-02-28T00:00:00.000000Z');
    assert.equal(ev('$t - 1mo 1d', { t: '2015-03-01T00:00:00Z' }), '2015-01-28T00:00:00.000000Z');
  });
  test('replacing a day, month or year clamps to the month too', () => {
    assert.equal(ev('$t @ 31d', { t: '2014-04-10T08:00:00Z' }), '2014-04-30T08:00:00.000000Z');
    assert.equal(ev('$t @ 2mo', { t: '2016-01-31T08:00:00Z' }), '2016-02-29T08:00:00.000000Z');
    assert.equal(ev('$t @ 2015y', { t: '2016-02-29T08:00:00Z' }), '2015-02-28T08:00:00.000000Z');
    assert.equal(ev('$t @ 2mo 31d', { t: '2015-07-04T00:00:00Z' }), '2015-02-28T00:00:00.000000Z');
  });
  test('the README examples', () => {
    const t = { timestamp: '2014-08-01T17:45:00.123456Z' };
    assert.equal(ev('($timestamp + 1d) @ 0h 0m 0s', t), '2014-08-02T00:00:00.123456Z');
    assert.equal(ev('($timestamp + 1d) @ 0h 0m 0s 0us', t), '2014-08-02T00:00:00.000000Z');
    assert.equal(ev('$timestamp + 3h', t), '2014-08-01T20:45:00.123456Z');
    assert.equal(ev('$timestamp @ 12mo 31d 12h 0m 0s', t), '2014-12-31T12:00:00.123456Z');
    const opening = { opening: '2014-08-01T09:00:00Z', closing: '2014-08-01T17:00:00Z' };
    assert.deepEqual(ev('$opening - 30m to $closing + 1h', opening), [
      '2014-08-01T08:30:00.000000Z',
      '2014-08-01T18:00:00.000000Z',
    ]);
  });
});

describe('microsecond precision', () => {
  test('carries across every field', () => {
    assert.equal(ev('$t + 1us', { t: '2014-12-31T23:59:59.999999Z' }), '2015-01-01T00:00:00.000000Z');
    assert.equal(ev('$t - 1us', { t: '2015-01-01T00:00:00Z' }), '2014-12-31T23:59:59.999999Z');
    assert.equal(ev('$t + 1500000us', { t: '2015-01-01T00:00:00.6Z' }), '2015-01-01T00:00:02.100000Z');
  });
  test('before 1970 (negative instants) floors correctly', () => {
    assert.deepEqual(evAt('day', '1969-12-31T12:00:00Z'), [
      '1969-12-31T00:00:00.000000Z',
      '1970-01-01T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('hour', '1800-05-05T05:05:05.000001Z'), [
      '1800-05-05T05:00:00.000000Z',
      '1800-05-05T06:00:00.000000Z',
    ]);
    assert.equal(ev('$t - 1us', { t: '1970-01-01T00:00:00Z' }), '1969-12-31T23:59:59.999999Z');
  });
  test('durations longer than 2^53 µs stay exact', () => {
    assert.equal(ev('$t + 110000d 1us', { t: '1750-01-01T00:00:00Z' }), '2051-03-04T00:00:00.000001Z');
    assert.equal(ev('$t - 110000d 1us', { t: '2051-03-04T00:00:00.000001Z' }), '1750-01-01T00:00:00.000000Z');
  });
  test('leaving 1700–2200 is an evaluation error', () => {
    assert.throws(() => ev('$t + 300y', { t: '2014-01-01T00:00:00Z' }), TimexEvalError);
    assert.throws(() => ev('$t - 1000000d', { t: '2014-01-01T00:00:00Z' }), TimexEvalError);
    assert.throws(() => ev('$t + 9007199254740991h', { t: '2014-01-01T00:00:00Z' }), TimexEvalError);
    assert.throws(() => ev('$t @ 1699y', { t: '2014-01-01T00:00:00Z' }), /at position 5/);
    assert.throws(() => evAt('year', '2200-06-01T00:00:00Z'), /outside the supported date range/);
  });
});

describe('range functions', () => {
  const t = '2016-02-29T13:45:30.250000Z';
  test('hour, day, month, year around a timestamp', () => {
    assert.deepEqual(evAt('hour', t), ['2016-02-29T13:00:00.000000Z', '2016-02-29T14:00:00.000000Z']);
    assert.deepEqual(evAt('day', t), ['2016-02-29T00:00:00.000000Z', '2016-03-01T00:00:00.000000Z']);
    assert.deepEqual(evAt('month', t), ['2016-02-01T00:00:00.000000Z', '2016-03-01T00:00:00.000000Z']);
    assert.deepEqual(evAt('year', t), ['2016-01-01T00:00:00.000000Z', '2017-01-01T00:00:00.000000Z']);
  });
  test('with an argument expression', () => {
    const v = { start: t };
    assert.deepEqual(ev('day($start)', v), ['2016-02-29T00:00:00.000000Z', '2016-03-01T00:00:00.000000Z']);
    assert.deepEqual(ev('day($start + 1d)', v), [
      '2016-03-01T00:00:00.000000Z',
      '2016-03-02T00:00:00.000000Z',
    ]);
    assert.deepEqual(ev('month(($start - 1mo))', v), [
      '2016-01-01T00:00:00.000000Z',
      '2016-02-01T00:00:00.000000Z',
    ]);
    assert.deepEqual(ev('hour($start @ 0h)', v), [
      '2016-02-29T00:00:00.000000Z',
      '2016-02-29T01:00:00.000000Z',
    ]);
  });
  test('month lengths follow the calendar, including century leap rules', () => {
    assert.deepEqual(evAt('month', '2100-02-10T00:00:00Z'), [
      '2100-02-01T00:00:00.000000Z',
      '2100-03-01T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('month', '2000-02-10T00:00:00Z'), [
      '2000-02-01T00:00:00.000000Z',
      '2000-03-01T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('month', '2015-12-31T23:59:59.999999Z'), [
      '2015-12-01T00:00:00.000000Z',
      '2016-01-01T00:00:00.000000Z',
    ]);
  });
  test('a range holds its own begin and not its end', () => {
    const r = parseTimex('day').evaluate({ timestamp: at('2014-08-01T00:00:00Z') }, NOW);
    assert.equal(contains(r, at('2014-08-01T00:00:00Z')), true);
    assert.equal(contains(r, at('2014-08-01T23:59:59.999999Z')), true);
    assert.equal(contains(r, at('2014-08-02T00:00:00Z')), false);
  });
});

describe('pinned ranges wrap around their timestamp', () => {
  test('hour: + - @ on both sides of the boundary', () => {
    assert.deepEqual(evAt('hour + 30m', '2014-08-01T02:10:00Z'), [
      '2014-08-01T01:30:00.000000Z',
      '2014-08-01T02:30:00.000000Z',
    ]);
    assert.deepEqual(evAt('hour + 30m', '2014-08-01T02:40:00Z'), [
      '2014-08-01T02:30:00.000000Z',
      '2014-08-01T03:30:00.000000Z',
    ]);
    assert.deepEqual(evAt('hour - 15m', '2014-08-01T02:50:00Z'), [
      '2014-08-01T02:45:00.000000Z',
      '2014-08-01T03:45:00.000000Z',
    ]);
    assert.deepEqual(evAt('hour - 15m', '2014-08-01T02:10:00Z'), [
      '2014-08-01T01:45:00.000000Z',
      '2014-08-01T02:45:00.000000Z',
    ]);
    assert.deepEqual(evAt('hour @ 30m', '2014-08-01T02:10:00Z'), [
      '2014-08-01T01:30:00.000000Z',
      '2014-08-01T02:30:00.000000Z',
    ]);
    assert.deepEqual(evAt('hour @ 30m', '2014-08-01T02:40:00Z'), [
      '2014-08-01T02:30:00.000000Z',
      '2014-08-01T03:30:00.000000Z',
    ]);
    assert.deepEqual(evAt('hour @ 30', '2014-08-01T02:10:00Z'), [
      '2014-08-01T01:30:00.000000Z',
      '2014-08-01T02:30:00.000000Z',
    ]);
  });
  test('day: + - @ when the timestamp is already inside', () => {
    assert.deepEqual(evAt('day + 6h', '2014-08-01T07:00:00Z'), [
      '2014-08-01T06:00:00.000000Z',
      '2014-08-02T06:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('day - 6h', '2014-08-01T07:00:00Z'), [
      '2014-07-31T18:00:00.000000Z',
      '2014-08-01T18:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('day @ 6h', '2014-08-01T06:00:00Z'), [
      '2014-08-01T06:00:00.000000Z',
      '2014-08-02T06:00:00.000000Z',
    ]);
  });
  test('a duration larger than the range still wraps when its units are smaller (90m on an hour)', () => {
    assert.deepEqual(evAt('hour + 90m', '2014-08-01T02:10:00Z'), [
      '2014-08-01T01:30:00.000000Z',
      '2014-08-01T02:30:00.000000Z',
    ]);
    assert.deepEqual(evAt('day + 100h', '2014-08-01T02:10:00Z'), [
      '2014-07-31T04:00:00.000000Z',
      '2014-08-01T04:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('day - 1000000m', '2014-08-01T02:10:00Z'), [
      '2014-07-31T13:20:00.000000Z',
      '2014-08-01T13:20:00.000000Z',
    ]);
  });
  test('month: wraps by the range length, as the reference does', () => {
    // [Mar 1, Apr 1) + 10d = [Mar 11, Apr 11), one 31-day step back holds Mar 5.
    assert.deepEqual(evAt('month + 10d', '2014-03-05T00:00:00Z'), [
      '2014-02-08T00:00:00.000000Z',
      '2014-03-11T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('month + 10d', '2014-03-20T00:00:00Z'), [
      '2014-03-11T00:00:00.000000Z',
      '2014-04-11T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('month - 5d', '2014-03-29T00:00:00Z'), [
      '2014-03-27T00:00:00.000000Z',
      '2014-04-27T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('month @ 15d', '2014-08-01T00:00:00Z'), [
      '2014-07-15T00:00:00.000000Z',
      '2014-08-15T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('month @ 15', '2014-08-20T00:00:00Z'), [
      '2014-08-15T00:00:00.000000Z',
      '2014-09-15T00:00:00.000000Z',
    ]);
  });
  test('year: fiscal years', () => {
    assert.deepEqual(evAt('year @ 6mo', '2014-08-01T00:00:00Z'), [
      '2014-06-01T00:00:00.000000Z',
      '2015-06-01T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('year @ 6mo', '2014-03-01T00:00:00Z'), [
      '2013-06-01T00:00:00.000000Z',
      '2014-06-01T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('year @ 6', '2014-03-01T00:00:00Z'), [
      '2013-06-01T00:00:00.000000Z',
      '2014-06-01T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('year + 3mo', '2014-02-01T00:00:00Z'), [
      '2013-04-01T00:00:00.000000Z',
      '2014-04-01T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('year - 1mo', '2014-12-15T00:00:00Z'), [
      '2014-12-01T00:00:00.000000Z',
      '2015-12-01T00:00:00.000000Z',
    ]);
  });
  test('pinning survives a chain of operations', () => {
    assert.deepEqual(evAt('day + 6h + 6h', '2014-08-01T02:10:00Z'), [
      '2014-07-31T12:00:00.000000Z',
      '2014-08-01T12:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('(day @ 6h) - 7h', '2014-08-01T02:10:00Z'), [
      '2014-07-31T23:00:00.000000Z',
      '2014-08-01T23:00:00.000000Z',
    ]);
  });
  test('a duration as large as the range moves it plainly and unpins it (the reference fails here)', () => {
    assert.deepEqual(evAt('day + 1d', '2014-08-01T02:10:00Z'), [
      '2014-08-02T00:00:00.000000Z',
      '2014-08-03T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('day - 1d 6h', '2014-08-01T02:10:00Z'), [
      '2014-07-30T18:00:00.000000Z',
      '2014-07-31T18:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('day + 1d + 6h', '2014-08-01T02:10:00Z'), [
      '2014-08-02T06:00:00.000000Z',
      '2014-08-03T06:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('day + 0mo 6h', '2014-08-01T02:10:00Z'), [
      '2014-08-01T06:00:00.000000Z',
      '2014-08-02T06:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('hour + 1h', '2014-08-01T02:10:00Z'), [
      '2014-08-01T03:00:00.000000Z',
      '2014-08-01T04:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('month + 1mo', '2014-01-31T02:10:00Z'), [
      '2014-02-01T00:00:00.000000Z',
      '2014-03-01T00:00:00.000000Z',
    ]);
    assert.deepEqual(evAt('year - 1y', '2014-01-31T02:10:00Z'), [
      '2013-01-01T00:00:00.000000Z',
      '2014-01-01T00:00:00.000000Z',
    ]);
    // Replacing the day on both ends of a day range leaves an empty range, as on any range.
    assert.deepEqual(evAt('day @ 5d', '2014-08-01T02:10:00Z'), [
      '2014-08-05T00:00:00.000000Z',
      '2014-08-05T00:00:00.000000Z',
    ]);
  });
  test('a replacement that collapses a pinned range is an error, not a hang', () => {
    assert.throws(() => evAt('hour @ 0h', '2014-08-01T02:10:00Z'), TimexEvalError);
    // At 23:xx the end falls on the next day, so the "hour" becomes the whole day.
    assert.deepEqual(evAt('hour @ 0h', '2014-08-01T23:10:00Z'), [
      '2014-08-01T00:00:00.000000Z',
      '2014-08-02T00:00:00.000000Z',
    ]);
  });
});

describe('to ranges', () => {
  const v = { a: '2014-08-01T00:00:00Z', b: '2014-08-03T00:00:00Z' };
  test('operators after to apply to its right-hand side', () => {
    assert.deepEqual(ev('$a to $b + 1h', v), ['2014-08-01T00:00:00.000000Z', '2014-08-03T01:00:00.000000Z']);
    assert.deepEqual(ev('$a + 1h to $b', v), ['2014-08-01T01:00:00.000000Z', '2014-08-03T00:00:00.000000Z']);
    assert.deepEqual(ev('($a to $b) + 1h', v), [
      '2014-08-01T01:00:00.000000Z',
      '2014-08-03T01:00:00.000000Z',
    ]);
    assert.deepEqual(ev('$a @ 6h to $b @ 6h - 1d', v), [
      '2014-08-01T06:00:00.000000Z',
      '2014-08-02T06:00:00.000000Z',
    ]);
  });
  test('an inverted range holds nothing', () => {
    const r = parseTimex('$b to $a').evaluate({ a: at(v.a), b: at(v.b) }, NOW);
    assert.equal(contains(r, at('2014-08-02T00:00:00Z')), false);
    assert.equal(contains(r, at(v.a)), false);
    assert.equal(contains(r, at(v.b)), false);
  });
  test('to ranges are not pinned: a shift does not wrap', () => {
    assert.deepEqual(ev('($a to $b) + 3d', v), [
      '2014-08-04T00:00:00.000000Z',
      '2014-08-06T00:00:00.000000Z',
    ]);
  });
  test('a unitless number takes its unit from the range length', () => {
    const w = (a: string, b: string) => ({ a, b });
    const base = '2014-08-01T00:00:00Z';
    const shift = (b: string) => (ev('($a to $b) + 5', w(base, b)) as [string, string])[0];
    assert.equal(shift('2014-08-01T00:00:59.999999Z'), '2014-08-01T00:00:00.000005Z');
    assert.equal(shift('2014-08-01T00:01:00Z'), '2014-08-01T00:00:05.000000Z');
    assert.equal(shift('2014-08-01T01:00:00Z'), '2014-08-01T00:05:00.000000Z');
    assert.equal(shift('2014-08-02T00:00:00Z'), '2014-08-01T05:00:00.000000Z');
    assert.equal(shift('2014-08-29T00:00:00Z'), '2014-08-06T00:00:00.000000Z');
    assert.equal(shift('2015-08-01T00:00:00Z'), '2015-01-01T00:00:00.000000Z');
    // The length counts in absolute value, and an empty range counts microseconds.
    assert.equal(
      (ev('($b to $a) - 5', w(base, '2014-08-02T00:00:00Z')) as string[])[0],
      '2014-08-01T19:00:00.000000Z',
    );
    assert.equal((ev('($a to $a) + 5', w(base, base)) as string[])[0], '2014-08-01T00:00:00.000005Z');
    // A unitless number adds to a written unit of the same kind.
    assert.equal(
      (ev('($a to $b) + 5 1h', w(base, '2014-08-02T00:00:00Z')) as string[])[0],
      '2014-08-01T06:00:00.000000Z',
    );
  });
  test('a unitless replacement that resolves to an impossible value fails at evaluation', () => {
    assert.throws(
      () => ev('($a to $b) @ 70', { a: '2014-08-01T00:00:00Z', b: '2014-08-01T02:00:00Z' }),
      TimexEvalError,
    );
  });
});

describe('variables', () => {
  test('$timestamp defaults to now; a given $timestamp wins', () => {
    assert.equal(ev('$timestamp'), '1999-12-31T12:34:56.789012Z');
    assert.deepEqual(ev('day'), ['1999-12-31T00:00:00.000000Z', '2000-01-01T00:00:00.000000Z']);
    assert.equal(ev('$timestamp', { timestamp: '2014-01-01T00:00:00Z' }), '2014-01-01T00:00:00.000000Z');
  });
  test('a missing variable is an evaluation error naming it', () => {
    assert.throws(() => ev('day($launched_at)'), { name: 'TimexEvalError', message: /\$launched_at/ });
    assert.throws(() => ev('$a to $b', { a: '2014-01-01T00:00:00Z' }), /\$b is not defined/);
  });
  test('variables lists the names referenced, bare range functions included', () => {
    assert.deepEqual([...parseTimex('$a + 1d to $b').variables].sort(), ['a', 'b']);
    assert.deepEqual([...parseTimex('day + 6h').variables], ['timestamp']);
    assert.deepEqual([...parseTimex('hour($x)').variables], ['x']);
    assert.deepEqual([...parseTimex('$timestamp').variables], ['timestamp']);
  });
  test('the result kind is known without evaluating', () => {
    assert.equal(parseTimex('$a + 1d').kind, 'timestamp');
    assert.equal(parseTimex('(($a)) @ 1h').kind, 'timestamp');
    assert.equal(parseTimex('$a to $b').kind, 'range');
    assert.equal(parseTimex('(day($a)) - 1h').kind, 'range');
  });
  test('a parsed expression can be evaluated many times with different values', () => {
    const e = parseTimex('day($t) + 6h');
    const a = e.evaluate({ t: at('2014-08-01T02:00:00Z') }, NOW);
    const b = e.evaluate({ t: at('2014-08-01T08:00:00Z') }, NOW);
    assert.equal(a.kind === 'range' && a.begin, at('2014-07-31T06:00:00Z'));
    assert.equal(b.kind === 'range' && b.begin, at('2014-08-01T06:00:00Z'));
    assert.equal(e.source, 'day($t) + 6h');
  });
});
