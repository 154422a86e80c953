import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatInstant, MAX_INSTANT, MIN_INSTANT } from '../../../src/timex/instant.js';
import { distinguishingKey, isoInstant, keyOf, parseKey } from '../../../src/triggers/key.js';
import type { DistinguishingValue, DistinguishingValues } from '../../../src/triggers/types.js';

const instant = fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT });
const value: fc.Arbitrary<DistinguishingValue> = fc.oneof(
  fc.string({ unit: 'binary' }).map((v) => ({ type: 'text' as const, value: v })),
  fc.oneof(fc.integer(), fc.maxSafeInteger()).map((v) => ({ type: 'int' as const, value: v })),
  fc.double().map((v) => ({ type: 'float' as const, value: v })),
  instant.map((v) => ({ type: 'datetime' as const, value: v })),
  fc
    .tuple(instant, instant)
    .map(([a, b]) => ({ type: 'range' as const, begin: Math.min(a, b), end: Math.max(a, b) })),
);
const values: fc.Arbitrary<DistinguishingValues> = fc.dictionary(fc.string({ unit: 'binary' }), value, {
  maxKeys: 5,
  noNullPrototype: true,
});

/** Python-style equality of values: -0 is 0; NaN is the same NaN for identity purposes. */
function normalise(v: DistinguishingValues): DistinguishingValues {
  const out: Record<string, DistinguishingValue> = {};
  for (const [k, x] of Object.entries(v)) {
    // defineProperty: fast-check may generate the name `__proto__`, which assignment would swallow.
    Object.defineProperty(out, k, {
      value: (x.type === 'int' || x.type === 'float') && Object.is(x.value, -0) ? { ...x, value: 0 } : x,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

describe('stream key', () => {
  test('documented examples', () => {
    assert.equal(distinguishingKey({}), '[]');
    assert.equal(
      distinguishingKey({
        timestamp: { type: 'range', begin: Date.UTC(2014, 7, 1) * 1000, end: Date.UTC(2014, 7, 2) * 1000 },
        instance_id: { type: 'text', value: 'a"b' },
      }),
      '[["instance_id","t","a\\"b"],["timestamp","r","2014-08-01T00:00:00.000000Z","2014-08-02T00:00:00.000000Z"]]',
    );
  });

  test('types never collide: int 3, float 3, text "3"', () => {
    const keys = new Set([
      distinguishingKey({ x: { type: 'int', value: 3 } }),
      distinguishingKey({ x: { type: 'float', value: 3 } }),
      distinguishingKey({ x: { type: 'text', value: '3' } }),
      distinguishingKey({ x: { type: 'datetime', value: 3 } }),
      distinguishingKey({ x: { type: 'range', begin: 3, end: 3 } }),
    ]);
    assert.equal(keys.size, 5);
  });

  test('special floats are distinct and -0 is 0', () => {
    const f = (value: number) => distinguishingKey({ x: { type: 'float', value } });
    assert.equal(
      new Set([f(Number.NaN), f(Number.POSITIVE_INFINITY), f(Number.NEGATIVE_INFINITY), f(0)]).size,
      4,
    );
    assert.equal(f(-0), f(0));
  });

  test('round trip: parseKey(key(v)) gives v back (so the key is injective)', () => {
    fc.assert(
      fc.property(values, (v) => {
        assert.deepEqual(parseKey(distinguishingKey(v)), normalise(v));
      }),
      { numRuns: 500 },
    );
  });

  test('canonical: insertion order does not matter, and keyOf agrees with distinguishingKey', () => {
    fc.assert(
      fc.property(values, (v) => {
        const reversed = Object.fromEntries(Object.entries(v).reverse());
        assert.equal(distinguishingKey(reversed), distinguishingKey(v));
        const sorted = Object.keys(v).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        assert.equal(keyOf(sorted, v), distinguishingKey(v));
      }),
    );
  });

  test('different values give different keys', () => {
    fc.assert(
      fc.property(values, values, (a, b) => {
        const same =
          JSON.stringify(Object.entries(normalise(a)).sort()) ===
          JSON.stringify(Object.entries(normalise(b)).sort());
        const nanInvolved = JSON.stringify([a, b]).includes('null');
        if (!same && !nanInvolved) assert.notEqual(distinguishingKey(a), distinguishingKey(b));
        if (same) assert.equal(distinguishingKey(a), distinguishingKey(b));
      }),
    );
  });

  test('malformed keys are input errors', () => {
    for (const bad of [
      '',
      '{}',
      '[1]',
      '[["a","t"]]',
      '[["a","q","x"]]',
      '[["a","r","2014-01-01T00:00:00Z"]]',
    ]) {
      assert.throws(() => parseKey(bad), { name: 'InputError' }, bad);
    }
  });

  test('the Date-free formatter agrees with formatInstant', () => {
    fc.assert(
      fc.property(instant, (t) => assert.equal(isoInstant(t), formatInstant(t))),
      { numRuns: 2000 },
    );
    for (const t of [MIN_INSTANT, MAX_INSTANT, 0, -1, 951_782_400_000_000 /* 2000-02-29 */]) {
      assert.equal(isoInstant(t), formatInstant(t));
    }
  });
});
