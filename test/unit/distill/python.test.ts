import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  ConversionError,
  pyEquals,
  pyFloat,
  pyFloatRepr,
  pyInt,
  pyStr,
} from '../../../src/distill/python.js';

describe("Python conversions (the reference's str/int/float)", () => {
  test('int()', () => {
    assert.equal(pyInt('20'), 20);
    assert.equal(pyInt('  -17 '), -17);
    assert.equal(pyInt('+5'), 5);
    assert.equal(pyInt('007'), 7);
    assert.equal(pyInt('1_000'), 1000);
    assert.equal(pyInt(3.75), 3, 'floats truncate');
    assert.equal(pyInt(-3.75), -3, 'toward zero');
    assert.equal(pyInt(true), 1);
    assert.equal(pyInt(false), 0);
    assert.ok(Object.is(pyInt(-0.5), 0), 'never -0');
    for (const bad of ['3.0', 'abc', '', '1e3', '0x10', '1__0', '_1', [1], { a: 1 }, Number.NaN, 2 ** 60]) {
      assert.throws(() => pyInt(bad), ConversionError, `int(${JSON.stringify(bad)})`);
    }
  });

  test('float()', () => {
    assert.equal(pyFloat('2.5'), 2.5);
    assert.equal(pyFloat(' 1e3 '), 1000);
    assert.equal(pyFloat('.5'), 0.5);
    assert.equal(pyFloat('5.'), 5);
    assert.equal(pyFloat('-1_000.5'), -1000.5);
    assert.equal(pyFloat(512), 512);
    assert.equal(pyFloat(true), 1);
    for (const bad of ['x1', '', '.', 'e5', 'inf', '-Infinity', 'nan', '1.2.3', null, [1]]) {
      assert.throws(() => pyFloat(bad), ConversionError, `float(${JSON.stringify(bad)})`);
    }
  });

  test('str()', () => {
    assert.equal(pyStr('x'), 'x');
    assert.equal(pyStr(512), '512');
    assert.equal(pyStr(3.75), '3.75');
    assert.equal(pyStr(1e-7), '1e-07');
    assert.equal(pyStr(1.5e-5), '1.5e-05');
    assert.equal(pyStr(0.0001), '0.0001');
    assert.equal(pyStr(123456.789), '123456.789');
    assert.equal(
      pyStr(1.5e16),
      '15000000000000000',
      'integral: printed as the int it is in JSON without a fraction',
    );
    assert.equal(pyStr(1e22), '10000000000000000000000');
    assert.equal(pyStr(true), 'True');
    assert.equal(pyStr(null), 'None');
    assert.equal(pyStr(['admin', "o'neil", 1, null, true]), `['admin', "o'neil", 1, None, True]`);
    assert.equal(
      pyStr({ a: 1, b: [1.5, 'x'], 'c\n': 'it\'s "q"' }),
      `{'a': 1, 'b': [1.5, 'x'], 'c\\n': 'it\\'s "q"'}`,
    );
  });

  test('float repr agrees with Python layout for non-integral values', () => {
    assert.equal(pyFloatRepr(1.5e16), '1.5e+16');
    assert.equal(pyFloatRepr(1e16), '1e+16');
    assert.equal(pyFloatRepr(123.0), '123.0');
    assert.equal(pyFloatRepr(-0.00012), '-0.00012');
    assert.equal(pyFloatRepr(1.7976931348623157e308), '1.7976931348623157e+308');
    assert.equal(pyFloatRepr(5e-324), '5e-324');
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        // Whatever the layout, the text reads back as the same double.
        assert.equal(Number(pyFloatRepr(x)), x); // -0 prints as '-0.0' and reads back as -0
      }),
    );
  });

  test('== as Python compares YAML and JSON values', () => {
    assert.ok(pyEquals(12, 12));
    assert.ok(pyEquals(12, 12.0));
    assert.ok(pyEquals(true, 1));
    assert.ok(!pyEquals('12', 12));
    assert.ok(pyEquals([1, 'a'], [1, 'a']));
    assert.ok(pyEquals({ a: [1] }, { a: [1] }));
    assert.ok(!pyEquals({ a: 1 }, { a: 1, b: 2 }));
    assert.ok(pyEquals(null, null));
  });
});
