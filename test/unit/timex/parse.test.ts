/** What the parser accepts, what it rejects, and where it says the problem is. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InputError } from '../../../src/errors.js';
import { parseTimex, TimexSyntaxError } from '../../../src/timex/index.js';
import { ev } from './helpers.js';

const t = { t: '2014-08-01T02:10:23.000550Z', a: '2014-08-01T00:00:00Z', b: '2014-08-03T00:00:00Z' };

describe('accepted syntax', () => {
  test('whitespace is free: none, spaces, tabs, newlines', () => {
    const expected = ev('$t + 1d 2h', t);
    for (const s of ['$t+1d 2h', '$t  +\t1d\n2h', ' \n$t + 1 d 2 h\t', '$ t + 1d2h', '($t)+1d 2h']) {
      assert.equal(ev(s, t), expected, JSON.stringify(s));
    }
    assert.deepEqual(ev('day($t)+6h', t), ev('day ( $t ) + 6h', t));
  });
  test('units written right after a number may be juxtaposed without spaces (6h30m)', () => {
    assert.equal(ev('$t + 6h30m', t), ev('$t + 6h 30m', t));
    assert.equal(ev('$t + 1y2mo3d4h5m6s7us', t), ev('$t + 1y 2mo 3d 4h 5m 6s 7us', t));
  });
  test('unit aliases: sec, min, hr, yr', () => {
    assert.equal(ev('$t + 5sec 3min 2hr 1yr', t), ev('$t + 5s 3m 2h 1y', t));
  });
  test('repeated units add up', () => {
    assert.equal(ev('$t + 1h 1h 30m 30m', t), ev('$t + 3h', t));
    assert.equal(ev('$t @ 3h 3h', t), ev('$t @ 6h', t));
  });
  test('nested parentheses around timestamps, ranges and function arguments', () => {
    assert.equal(ev('((($t)))', t), ev('$t', t));
    assert.deepEqual(ev('((day($t))) + 6h', t), ev('day($t) + 6h', t));
    assert.deepEqual(ev('(($a to $b)) @ 6h', t), ev('($a to $b) @ 6h', t));
    assert.deepEqual(ev('day((($t + 1d)))', t), ev('day($t + 1d)', t));
    assert.deepEqual(ev('(($a) to ($b + 1h))', t), ev('$a to $b + 1h', t));
    assert.deepEqual(ev('(day) @ 2', { timestamp: t.t }), ev('day @ 2', { timestamp: t.t }));
  });
  test('leading zeros and zero durations', () => {
    assert.equal(ev('$t + 007m', t), ev('$t + 7m', t));
    assert.equal(ev('$t + 0d', t), ev('$t', t));
  });
});

/** [source, position, message fragment] for every kind of syntax error. */
const errors: Array<[string, number, RegExp]> = [
  ['', 0, /expected|unexpected end/],
  ['   ', 3, /unexpected end of expression/],
  ['$a + 1h x', 8, /unexpected token 'x'/],
  ['$a +', 4, /expected a duration .* found end of expression/],
  ['$a + h', 5, /expected a duration/],
  ['$a 1h', 3, /unexpected token '1'/],
  ['$a # 1h', 3, /unexpected character '#'/],
  ['$a + 1h€', 7, /unexpected character '€'/],
  ['$', 1, /variable name after '\$'/],
  ['$1', 1, /variable name after '\$'/],
  ['$d + 1h', 1, /'d' is a reserved word/],
  ['$to', 1, /'to' is a reserved word/],
  ['$a + 1day', 6, /unknown duration unit 'day'/],
  ['$a + 1H', 6, /unknown duration unit 'H'/],
  ['$a + 5', 5, /needs a unit .* on a timestamp/],
  ['$a - 1h 5', 5, /needs a unit/],
  ['$a @ 5', 5, /needs a unit/],
  ['(day + 1) + 2', 12, /needs a unit .* range that has already been shifted/],
  ['($a to $b) + 1h + 2', 18, /needs a unit/],
  ['week', 0, /unknown range function 'week'/],
  ['Day($a)', 0, /unknown range function 'Day'/],
  ['day(day)', 4, /a timestamp is expected here, but 'day' is a range/],
  ['$a to day', 6, /a timestamp is expected here/],
  ['day($a to $b)', 7, /argument of 'day' must be a timestamp/],
  ['day to $a', 4, /'to' needs a timestamp on its left/],
  ['($a to $b) to $a', 11, /'to' needs a timestamp on its left/],
  ['$a to $b to $c', 9, /'to' cannot follow a range/],
  ['day($a', 6, /expected '\)' to close 'day\('/],
  ['($a + 1h', 8, /expected '\)' to close '\(' at position 0/],
  ['$a)', 2, /unexpected token '\)'/],
  ['()', 1, /unexpected token '\)'/],
  ['day $a', 4, /unexpected token '\$'/],
  ['to', 0, /unexpected token 'to'/],
  ['$a @ 24h', 5, /cannot replace hour with 24 \(allowed 0–23\)/],
  ['$a @ 60m', 5, /cannot replace minute/],
  ['$a @ 60s', 5, /cannot replace second/],
  ['$a @ 1000000us', 5, /cannot replace microsecond/],
  ['$a @ 0d', 5, /cannot replace day with 0/],
  ['$a @ 32d', 5, /cannot replace day with 32/],
  ['$a @ 13mo', 5, /cannot replace month with 13/],
  ['$a @ 0mo', 5, /cannot replace month/],
  ['$a @ 0y', 5, /cannot replace year with 0/],
  ['day @ 6h 6h 6h 6h 6h', 6, /cannot replace hour with 30/],
  ['$a + 99999999999999999999d', 5, /number '99999999999999999999' is too large/],
];

describe('syntax errors name the position', () => {
  for (const [source, position, message] of errors) {
    test(JSON.stringify(source), () => {
      let caught: unknown;
      try {
        parseTimex(source);
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof TimexSyntaxError, `expected a TimexSyntaxError, got ${String(caught)}`);
      assert.equal(caught.position, position, caught.message);
      assert.match(caught.message, message);
      assert.match(caught.message, new RegExp(`at position ${position}$`));
      assert.equal(caught.source, source);
    });
  }

  test('is an InputError (the CLI exits 1) with a caret pointer', () => {
    try {
      parseTimex('$a + 1h x');
      assert.fail('should not parse');
    } catch (err) {
      assert.ok(err instanceof InputError);
      assert.ok(err instanceof TimexSyntaxError);
      assert.equal(err.pointer(), '$a + 1h x\n        ^');
      assert.equal(err.message, "unexpected token 'x' at position 8");
    }
  });
});
