/**
 * UUIDv5 and UUID parsing against values computed with CPython 3.11's uuid module, and the Python
 * value semantics the usage audit relies on (str(), ordering, truthiness).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  IncomparableError,
  pyCompare,
  pyEquals,
  pyFloatStr,
  pyStr,
  truthy,
} from '../../../src/handlers/usage/python-values.js';
import { formatUuid, NIL_UUID, parseUuid, uuidV5 } from '../../../src/handlers/uuid.js';
import { datetime, float, int, text } from '../../../src/model/event.js';
import { parseDatetime } from '../../../src/timex/instant.js';

const DNS = parseUuid('6ba7b810-9dad-11d1-80b4-00c04fd430c8')!;
const URL_NS = parseUuid('6ba7b811-9dad-11d1-80b4-00c04fd430c8')!;
const EXISTS_ID = 'c94c9cf1-6146-4ccb-a867-f97a305b53e7';

describe('uuidV5', () => {
  test('equals Python uuid.uuid5', () => {
    assert.equal(uuidV5(DNS, 'python.org'), '886313e1-3b8a-5372-9b90-0c9aee199e5d');
    assert.equal(uuidV5(URL_NS, 'héllo ☃'), 'd63ded56-1dd6-5f09-ade1-3290d2cc1f0d');
    const ns = parseUuid(EXISTS_ID)!;
    assert.equal(uuidV5(ns, 'compute.instance.exists.verified'), 'c1a4c9a6-607d-527d-8d70-5eef2e924604');
    assert.equal(uuidV5(ns, 'compute.instance.exists.failed'), 'd4dacc75-e698-58b3-987c-4e54be3581b1');
  });

  test('is a version 5, RFC 4122 variant UUID that parses back to itself', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.string(), (ns, name) => {
        const id = uuidV5(parseUuid(ns)!, name);
        assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.equal(formatUuid(parseUuid(id)!), id);
      }),
    );
  });
});

describe('parseUuid reads what Python uuid.UUID(str) reads', () => {
  const accepted: [string, string][] = [
    ['{C94C9CF1-6146-4CCB-A867-F97A305B53E7}', EXISTS_ID],
    ['urn:uuid:c94c9cf1-6146-4ccb-a867-f97a305b53e7', EXISTS_ID],
    ['c94c9cf161464ccba867f97a305b53e7', EXISTS_ID],
    ['{{c94c9cf161464ccba867f97a305b53e7}', EXISTS_ID],
    ['+c94c9cf161464ccba867f97a305b53e', '0c94c9cf-1614-64cc-ba86-7f97a305b53e'],
    [' c94c9cf161464ccba867f97a305b53 ', '00c94c9c-f161-464c-cba8-67f97a305b53'],
    ['c94c_cf161464ccba867f97a305b53e7', '0c94ccf1-6146-4ccb-a867-f97a305b53e7'],
    ['0x_c94c9cf161464ccba867f97a305b5', '000c94c9-cf16-1464-ccba-867f97a305b5'],
    ['+0000000000000000000000000000000', '00000000-0000-0000-0000-000000000000'],
  ];
  for (const [input, want] of accepted) {
    test(`accepts ${JSON.stringify(input)}`, () => assert.equal(formatUuid(parseUuid(input)!), want));
  }
  for (const input of [
    'not-a-uuid',
    'c94c9cf1-6146-4ccb-a867-f97a305b53e',
    '-0000000000000000000000000000000',
    'c94c__f161464ccba867f97a305b53e7',
    'g94c9cf161464ccba867f97a305b53e7',
    '',
  ]) {
    test(`rejects ${JSON.stringify(input)}`, () => assert.equal(parseUuid(input), undefined));
  }
  test('the nil UUID', () => assert.equal(formatUuid(NIL_UUID), '00000000-0000-0000-0000-000000000000'));
});

describe('Python value semantics', () => {
  test('float str() as Python prints it', () => {
    const cases: [number, string][] = [
      [1, '1.0'],
      [0.1, '0.1'],
      [1e16, '1e+16'],
      [1e15, '1000000000000000.0'],
      [123456789012345.6, '123456789012345.6'],
      [1e-4, '0.0001'],
      [1e-5, '1e-05'],
      [-2.5, '-2.5'],
      [1.5e300, '1.5e+300'],
      [3e-310, '3e-310'],
      [100, '100.0'],
      [12345678901234568, '1.2345678901234568e+16'],
      [-0, '-0.0'],
    ];
    for (const [x, want] of cases) assert.equal(pyFloatStr(x), want, String(x));
  });

  test('str() of each trait type', () => {
    assert.equal(pyStr(datetime(parseDatetime('2015-01-02T03:04:05Z'))), '2015-01-02 03:04:05');
    assert.equal(pyStr(datetime(parseDatetime('2015-01-02T03:04:05.000006Z'))), '2015-01-02 03:04:05.000006');
    assert.equal(pyStr(int(11)), '11');
    assert.equal(pyStr(text('12.04')), '12.04');
    assert.equal(pyStr(undefined), 'None');
  });

  test('truthiness: empty text and zero are false, any datetime is true', () => {
    assert.equal(truthy(undefined), false);
    assert.equal(truthy(text('')), false);
    assert.equal(truthy(int(0)), false);
    assert.equal(truthy(float(0)), false);
    assert.equal(truthy(text('0')), true);
    assert.equal(truthy(datetime(0)), true);
  });

  test('equality: numbers across int/float, no other mixing', () => {
    assert.equal(pyEquals(int(2), float(2)), true);
    assert.equal(pyEquals(int(2), text('2')), false);
    assert.equal(pyEquals(datetime(5), datetime(5)), true);
    assert.equal(pyEquals(datetime(5), int(5)), false);
  });

  test('ordering raises where Python raises TypeError', () => {
    assert.ok(pyCompare(datetime(1), datetime(2)) < 0);
    assert.ok(pyCompare(int(3), float(2.5)) > 0);
    assert.ok(pyCompare(text('b'), text('a')) > 0);
    // Code point order, not UTF-16 unit order: U+1F600 sorts after U+FFFD.
    assert.ok(pyCompare(text('\u{1F600}'), text('\uFFFD')) > 0);
    assert.throws(() => pyCompare(datetime(1), undefined), IncomparableError);
    assert.throws(() => pyCompare(datetime(1), text('x')), IncomparableError);
  });
});
