/**
 * The reference implementation's own test cases (stacktach-timex tests/test_parse.py and
 * tests/test_expression.py), re-expressed as expressions over our API. Where the reference
 * tested an object directly (a TimeRange, a PinnedTimeRange), the same object is built with an
 * expression: `$begin to $end`, or `day($mid) + 1h` for a day range starting at 01:00 pinned to $mid.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addDurations, wrapsWithin } from '../../../src/timex/duration.js';
import { contains, parseTimex, TimexEvalError, TimexSyntaxError } from '../../../src/timex/index.js';
import { at, ev, NOW } from './helpers.js';

describe('reference test_parse', () => {
  const dt = '2014-08-01T02:10:23.000550Z';
  const other = '2014-08-07T03:20:00.000000Z';
  const vars = { test_thingy: dt, other };

  test('a variable is a timestamp', () => {
    assert.equal(parseTimex('$test_thingy').kind, 'timestamp');
    assert.equal(ev('$test_thingy', vars), dt);
  });
  test('timestamp + 1d 2h', () =>
    assert.equal(ev('$test_thingy + 1d 2h', vars), '2014-08-02T04:10:23.000550Z'));
  test('timestamp - 1d 2h', () =>
    assert.equal(ev('$test_thingy - 1d 2h', vars), '2014-07-31T00:10:23.000550Z'));
  test('timestamp @ 7d 6h', () =>
    assert.equal(ev('$test_thingy @ 7d 6h', vars), '2014-08-07T06:10:23.000550Z'));
  test('a to b', () => {
    assert.equal(parseTimex('$test_thingy to $other').kind, 'range');
    assert.deepEqual(ev('$test_thingy to $other', vars), [dt, other]);
  });
  test('(a to b) + 1d 2h', () =>
    assert.deepEqual(ev('($test_thingy to $other) + 1d 2h', vars), [
      '2014-08-02T04:10:23.000550Z',
      '2014-08-08T05:20:00.000000Z',
    ]));
  test('(a to b) - 1d 2h', () =>
    assert.deepEqual(ev('($test_thingy to $other) - 1d 2h', vars), [
      '2014-07-31T00:10:23.000550Z',
      '2014-08-06T01:20:00.000000Z',
    ]));
  test('(a to b) @ 6h', () =>
    assert.deepEqual(ev('($test_thingy to $other) @ 6h', vars), [
      '2014-08-01T06:10:23.000550Z',
      '2014-08-07T06:20:00.000000Z',
    ]));
  test('day($x) and bare day', () => {
    const day: [string, string] = ['2014-08-01T00:00:00.000000Z', '2014-08-02T00:00:00.000000Z'];
    assert.deepEqual(ev('day($test_thingy)', vars), day);
    assert.deepEqual(ev('day', { timestamp: dt }), day);
  });
  test('day @ 6h wraps back to contain $timestamp', () =>
    assert.deepEqual(ev('day @ 6h', { timestamp: dt }), [
      '2014-07-31T06:00:00.000000Z',
      '2014-08-01T06:00:00.000000Z',
    ]));
  test('day + 6h wraps back to contain $timestamp', () =>
    assert.deepEqual(ev('day + 6h', { timestamp: dt }), [
      '2014-07-31T06:00:00.000000Z',
      '2014-08-01T06:00:00.000000Z',
    ]));
  test('day - 6h wraps forward to contain $timestamp', () =>
    assert.deepEqual(ev('day - 6h', { timestamp: '2014-08-01T19:45:30.000225Z' }), [
      '2014-08-01T18:00:00.000000Z',
      '2014-08-02T18:00:00.000000Z',
    ]));
  test('a unitless number on a day range counts hours', () =>
    assert.deepEqual(ev('day @ 2', { timestamp: dt }), [
      '2014-08-01T02:00:00.000000Z',
      '2014-08-02T02:00:00.000000Z',
    ]));
});

describe('reference test_expression: Timestamp', () => {
  const t = { t: '2014-08-01T02:10:23.000550Z' };
  const other = at('2014-08-07T02:00:00Z');

  test('a timestamp contains only itself', () => {
    const v = parseTimex('$t').evaluate({ t: at(t.t) }, NOW);
    assert.equal(contains(v, at(t.t)), true);
    assert.equal(contains(v, other), false);
    assert.equal(contains(v, at(t.t) + 1), false);
  });
  test('add each unit', () => {
    assert.equal(ev('$t + 10us', t), '2014-08-01T02:10:23.000560Z');
    assert.equal(ev('$t + 10s', t), '2014-08-01T02:10:33.000550Z');
    assert.equal(ev('$t + 7m', t), '2014-08-01T02:17:23.000550Z');
    assert.equal(ev('$t + 1h', t), '2014-08-01T03:10:23.000550Z');
    assert.equal(ev('$t + 2d', t), '2014-08-03T02:10:23.000550Z');
    assert.equal(ev('$t + 6mo', t), '2015-02-01T02:10:23.000550Z');
    assert.equal(ev('$t + 3y', t), '2017-08-01T02:10:23.000550Z');
  });
  test('subtract each unit', () => {
    assert.equal(ev('$t - 10us', t), '2014-08-01T02:10:23.000540Z');
    assert.equal(ev('$t - 10s', t), '2014-08-01T02:10:13.000550Z');
    assert.equal(ev('$t - 7m', t), '2014-08-01T02:03:23.000550Z');
    assert.equal(ev('$t - 1h', t), '2014-08-01T01:10:23.000550Z');
    assert.equal(ev('$t - 2d', t), '2014-07-30T02:10:23.000550Z');
    assert.equal(ev('$t - 6mo', t), '2014-02-01T02:10:23.000550Z');
    assert.equal(ev('$t - 3y', t), '2011-08-01T02:10:23.000550Z');
  });
  test('replace', () => {
    assert.equal(ev('$t @ 2d', t), '2014-08-02T02:10:23.000550Z');
    assert.equal(ev('$t @ 6mo', t), '2014-06-01T02:10:23.000550Z');
    assert.equal(ev('$t @ 2017y', t), '2017-08-01T02:10:23.000550Z');
    assert.equal(ev('$t @ 0h 0m 0s 0us', t), '2014-08-01T00:00:00.000000Z');
  });
  test('a unitless number is rejected on a timestamp, for + - @', () => {
    for (const op of ['+', '-', '@']) {
      assert.throws(() => parseTimex(`$t ${op} 10h 2`), TimexSyntaxError);
    }
  });
});

describe('reference test_expression: TimeRange', () => {
  const r = { b: '2014-08-01T02:10:23.000550Z', e: '2014-08-02T02:10:23.000550Z' };
  const range = '($b to $e)';

  test('a range holds its begin, not its end', () => {
    const v = parseTimex('$b to $e').evaluate({ b: at(r.b), e: at(r.e) }, NOW);
    assert.equal(contains(v, at(r.b)), true);
    assert.equal(contains(v, at('2014-08-01T17:30:10.000025Z')), true);
    assert.equal(contains(v, at(r.e)), false);
    assert.equal(contains(v, at(r.e) - 1), true);
    assert.equal(contains(v, at('2014-08-07T02:00:00Z')), false);
    assert.equal(contains(v, at(r.b) - 1), false);
  });
  test('add each unit to both ends', () => {
    assert.deepEqual(ev(`${range} + 10us`, r), [
      '2014-08-01T02:10:23.000560Z',
      '2014-08-02T02:10:23.000560Z',
    ]);
    assert.deepEqual(ev(`${range} + 10s`, r), ['2014-08-01T02:10:33.000550Z', '2014-08-02T02:10:33.000550Z']);
    assert.deepEqual(ev(`${range} + 7m`, r), ['2014-08-01T02:17:23.000550Z', '2014-08-02T02:17:23.000550Z']);
    assert.deepEqual(ev(`${range} + 1h`, r), ['2014-08-01T03:10:23.000550Z', '2014-08-02T03:10:23.000550Z']);
    assert.deepEqual(ev(`${range} + 2d`, r), ['2014-08-03T02:10:23.000550Z', '2014-08-04T02:10:23.000550Z']);
    assert.deepEqual(ev(`${range} + 6mo`, r), ['2015-02-01T02:10:23.000550Z', '2015-02-02T02:10:23.000550Z']);
    assert.deepEqual(ev(`${range} + 3y`, r), ['2017-08-01T02:10:23.000550Z', '2017-08-02T02:10:23.000550Z']);
  });
  test('subtract each unit from both ends', () => {
    assert.deepEqual(ev(`${range} - 10us`, r), [
      '2014-08-01T02:10:23.000540Z',
      '2014-08-02T02:10:23.000540Z',
    ]);
    assert.deepEqual(ev(`${range} - 10s`, r), ['2014-08-01T02:10:13.000550Z', '2014-08-02T02:10:13.000550Z']);
    assert.deepEqual(ev(`${range} - 7m`, r), ['2014-08-01T02:03:23.000550Z', '2014-08-02T02:03:23.000550Z']);
    assert.deepEqual(ev(`${range} - 1h`, r), ['2014-08-01T01:10:23.000550Z', '2014-08-02T01:10:23.000550Z']);
    assert.deepEqual(ev(`${range} - 2d`, r), ['2014-07-30T02:10:23.000550Z', '2014-07-31T02:10:23.000550Z']);
    assert.deepEqual(ev(`${range} - 6mo`, r), ['2014-02-01T02:10:23.000550Z', '2014-02-02T02:10:23.000550Z']);
    assert.deepEqual(ev(`${range} - 3y`, r), ['2011-08-01T02:10:23.000550Z', '2011-08-02T02:10:23.000550Z']);
  });
  test('replace on both ends', () => {
    assert.deepEqual(ev(`${range} @ 6h`, r), ['2014-08-01T06:10:23.000550Z', '2014-08-02T06:10:23.000550Z']);
    assert.deepEqual(ev(`${range} @ 6mo`, r), ['2014-06-01T02:10:23.000550Z', '2014-06-02T02:10:23.000550Z']);
    assert.deepEqual(ev(`${range} @ 2017y`, r), [
      '2017-08-01T02:10:23.000550Z',
      '2017-08-02T02:10:23.000550Z',
    ]);
    assert.deepEqual(ev(`${range} @ 0h 0m 0s 0us`, r), [
      '2014-08-01T00:00:00.000000Z',
      '2014-08-02T00:00:00.000000Z',
    ]);
  });
  test('a unitless number on a day-long range counts hours, for + - @', () => {
    assert.deepEqual(ev(`${range} + 1`, r), ['2014-08-01T03:10:23.000550Z', '2014-08-02T03:10:23.000550Z']);
    assert.deepEqual(ev(`${range} - 1`, r), ['2014-08-01T01:10:23.000550Z', '2014-08-02T01:10:23.000550Z']);
    assert.deepEqual(ev(`${range} @ 1`, r), ['2014-08-01T01:10:23.000550Z', '2014-08-02T01:10:23.000550Z']);
  });
});

describe('reference test_expression: PinnedTimeRange', () => {
  // day($mid) + 1h is the reference's PinnedTimeRange(Aug 1 01:00, Aug 2 01:00, pinned to $mid, 'day').
  const m = { mid: '2014-08-01T17:30:10.000025Z' };
  const pinned = 'day($mid) + 1h';

  test('the fixture range', () =>
    assert.deepEqual(ev(pinned, m), ['2014-08-01T01:00:00.000000Z', '2014-08-02T01:00:00.000000Z']));
  test('add: inside stays, outside wraps back', () => {
    assert.deepEqual(ev(`${pinned} + 1h`, m), ['2014-08-01T02:00:00.000000Z', '2014-08-02T02:00:00.000000Z']);
    assert.deepEqual(ev(`${pinned} + 18h`, m), [
      '2014-07-31T19:00:00.000000Z',
      '2014-08-01T19:00:00.000000Z',
    ]);
  });
  test('subtract: inside stays, outside wraps forward', () => {
    assert.deepEqual(ev(`${pinned} - 1h`, m), ['2014-08-01T00:00:00.000000Z', '2014-08-02T00:00:00.000000Z']);
    assert.deepEqual(ev(`${pinned} - 8h`, m), ['2014-08-01T17:00:00.000000Z', '2014-08-02T17:00:00.000000Z']);
  });
  test('replace: inside stays, outside wraps back', () => {
    assert.deepEqual(ev(`${pinned} @ 2h`, m), ['2014-08-01T02:00:00.000000Z', '2014-08-02T02:00:00.000000Z']);
    assert.deepEqual(ev(`${pinned} @ 18h`, m), [
      '2014-07-31T18:00:00.000000Z',
      '2014-08-01T18:00:00.000000Z',
    ]);
  });
});

describe('reference test_expression: Duration', () => {
  test('comparison against a range unit: smaller units wrap, the unit itself does not', () => {
    assert.equal(wrapsWithin({ second: 1 }, 'hour'), true);
    assert.equal(wrapsWithin({ hour: 1 }, 'hour'), false);
    assert.equal(wrapsWithin({ day: 1 }, 'hour'), false);
    assert.equal(wrapsWithin({ hour: 0, minute: 5 }, 'hour'), true);
    assert.equal(wrapsWithin({ minute: 90 }, 'hour'), true);
    assert.equal(wrapsWithin({ month: 0, hour: 6 }, 'day'), false);
    assert.equal(wrapsWithin({ unitless: 5 }, 'year'), true);
    assert.equal(wrapsWithin({ month: 11 }, 'year'), true);
    assert.equal(wrapsWithin({ year: 1 }, 'year'), false);
  });
  test('adding durations sums per unit and keeps absent units absent', () => {
    const d = addDurations(addDurations({ second: 1 }, { hour: 1 }), { day: 1 });
    assert.deepEqual(d, { second: 1, hour: 1, day: 1 });
    assert.deepEqual(addDurations({ hour: 1, unitless: 2 }, { hour: 2, unitless: 3 }), {
      hour: 3,
      unitless: 5,
    });
  });
  test('a missing variable is an evaluation error', () => {
    assert.throws(() => ev('$nope + 1h'), TimexEvalError);
  });
});
