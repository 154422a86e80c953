import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseNotificationDatetime } from '../../../src/distill/datetime.js';
import { formatInstant, MAX_INSTANT, MIN_INSTANT, parseDatetime } from '../../../src/timex/instant.js';

/** The same outcome as parseDatetime: the same instant, or an error with the same message. */
function same(s: string): void {
  let want: number | string;
  try {
    want = parseDatetime(s);
  } catch (e) {
    want = (e as Error).message;
  }
  let got: number | string;
  try {
    got = parseNotificationDatetime(s);
  } catch (e) {
    got = (e as Error).message;
  }
  assert.equal(got, want, JSON.stringify(s));
}

describe('notification datetimes (fast path)', () => {
  test("Nova's layouts", () => {
    assert.equal(
      parseNotificationDatetime('2015-01-22 02:50:22.702356'),
      parseDatetime('2015-01-22T02:50:22.702356Z'),
    );
    assert.equal(parseNotificationDatetime('2015-01-22T02:50:22Z'), parseDatetime('2015-01-22T02:50:22Z'));
    assert.equal(parseNotificationDatetime('2016-02-29 00:00:00'), parseDatetime('2016-02-29T00:00:00Z'));
    for (const s of [
      '2015-02-29 00:00:00',
      '1900-02-29 00:00:00',
      '2000-02-29 23:59:59.999999',
      '2015-13-01 00:00:00',
      '2015-01-32 00:00:00',
    ])
      same(s);
    for (const s of [
      '2015-01-22 24:00:00',
      '2015-01-22 02:60:00',
      '2015-01-22 02:50:60',
      '2015-01-22 02:50:22.70235x',
      '1699-12-31 23:59:59',
    ])
      same(s);
    for (const s of [
      '2015-01-22T02:50:22+01:00',
      '2015-01-22',
      ' 2015-01-22 02:50:22',
      '2015-01-22 02:50',
      '',
      'Z',
      'garbage-of-length-19',
    ])
      same(s);
  });
  test('agrees with parseDatetime on every instant, in every layout (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT }), (t) => {
        const iso = formatInstant(t);
        const space = `${iso.slice(0, 10)} ${iso.slice(11, 26)}`;
        for (const s of [
          iso,
          space,
          iso.slice(0, 26),
          iso.slice(0, 19),
          `${iso.slice(0, 19)}Z`,
          space.slice(0, 19),
        ]) {
          assert.equal(parseNotificationDatetime(s), parseDatetime(s));
        }
      }),
      { numRuns: 3000 },
    );
  });
  test('agrees with parseDatetime on near-miss strings (property)', () => {
    const chars = fc.constantFrom(...'0123456789-: T.Z+x');
    fc.assert(fc.property(fc.string({ unit: chars, minLength: 17, maxLength: 28 }), same), { numRuns: 3000 });
  });
});
