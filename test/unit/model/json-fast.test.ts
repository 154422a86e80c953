import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  JsonNumber,
  type LosslessJson,
  parseJsonFast,
  parseJsonLossless,
} from '../../../src/model/event-json.js';

/** What a LosslessJson value means: numbers as (is a float literal, value); the literal's spelling aside. */
function meaning(v: LosslessJson): unknown {
  if (v instanceof JsonNumber) return { float: v.isFloat, value: v.value };
  if (Array.isArray(v)) return v.map(meaning);
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, meaning(x)]));
  }
  return v;
}

/** Number literals of every kind: ints (also beyond 2^53), floats with and without zero fractions, exponents. */
const numberLiteral = fc.oneof(
  fc.integer().map(String),
  fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }).map(String),
  fc.tuple(fc.integer(), fc.nat(999)).map(([i, f]) => `${i}.${f}`),
  fc.tuple(fc.integer({ min: -99, max: 99 }), fc.constantFrom('.0', '.50', '.000')).map((p) => p.join('')),
  fc
    .tuple(fc.integer({ min: -9, max: 9 }), fc.constantFrom('e3', 'E-2', 'e+0', '.5e1'))
    .map((p) => p.join('')),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
);

const text = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    numberLiteral,
    fc.string().map((s) => JSON.stringify(s)),
    fc.constantFrom('true', 'false', 'null', '"2015-02-01T00:00:00.000000Z"', '"v1.0,"'),
    fc.array(tie('value'), { maxLength: 4 }).map((xs) => `[${xs.join(',')}]`),
    fc
      .array(fc.tuple(fc.string(), tie('value')), { maxLength: 4 })
      .map((kv) => `{${kv.map(([k, x]) => `${JSON.stringify(k)}: ${x}`).join(', ')}}`),
  ),
})).value;

test('parseJsonFast means exactly what parseJsonLossless means, for any JSON text', () => {
  fc.assert(
    fc.property(text, (t) => {
      assert.deepEqual(meaning(parseJsonFast(t)), meaning(parseJsonLossless(t)));
    }),
    { numRuns: 2000 },
  );
});

test('parseJsonFast keeps 1.0 a float and 2^53+1 exact; invalid JSON fails as the exact parser does', () => {
  const v = parseJsonFast('{"a":1.0,"b":9007199254740993,"c":1,"d":2.5}') as Record<string, JsonNumber>;
  assert.equal(v.a?.isFloat, true);
  assert.equal(v.b?.text, '9007199254740993');
  assert.equal(v.c?.isFloat, false);
  assert.equal(v.d?.isFloat, true);
  let exact = '';
  try {
    parseJsonLossless('{"a":');
  } catch (error) {
    exact = (error as Error).message;
  }
  assert.ok(exact !== '');
  assert.throws(() => parseJsonFast('{"a":'), { message: exact });
  // A "__proto__" key is an own property, as JSON.parse and the exact parser make it.
  const proto = parseJsonFast('{"__proto__": 0.1}') as Record<string, unknown>;
  assert.deepEqual(Object.keys(proto), ['__proto__']);
  assert.ok(Object.getOwnPropertyDescriptor(proto, '__proto__')?.value instanceof JsonNumber);
});
