import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Pacer } from '../../../bench/lib/pacer.js';

describe('Pacer', () => {
  test('releases what is due: the first item at the start, then one per 1/rate', () => {
    const p = new Pacer(100, 1000);
    assert.equal(p.take(999), 0);
    assert.equal(p.take(1000), 1);
    assert.equal(p.take(1009), 0);
    assert.equal(p.take(1010), 1);
    assert.equal(p.take(1100), 9);
    assert.equal(p.released, 11);
  });
  test('a late wake-up catches up (bounded by burst per call)', () => {
    const p = new Pacer(1000, 0, 50);
    assert.equal(p.take(199), 50);
    assert.equal(p.take(199), 50);
    assert.equal(p.take(199), 50);
    assert.equal(p.take(199), 50);
    assert.equal(p.take(199), 0);
  });
  test('msUntilNext says when the next item is due', () => {
    const p = new Pacer(10, 0);
    assert.equal(p.msUntilNext(0), 0);
    p.take(0);
    assert.equal(p.msUntilNext(0), 100);
    assert.equal(p.msUntilNext(150), 0);
  });
  test('rejects a rate that is not positive and finite, and a burst below 1', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      assert.throws(() => new Pacer(bad, 0), RangeError);
    assert.throws(() => new Pacer(10, 0, 0), RangeError);
  });
  test('property: however the wake-ups fall, the count released by t is the count due by t (unbounded burst)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: 50_000, noNaN: true }),
        fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 100 }),
        (rate, gaps) => {
          const p = new Pacer(rate, 0);
          let t = 0;
          for (const g of gaps) {
            t += g;
            p.take(t);
            assert.equal(p.released, Math.floor((t * rate) / 1000) + 1);
          }
        },
      ),
    );
  });
});
