import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { InputError } from '../../../src/errors.js';
import { datetime, type Event, float, int, type TraitValue, text } from '../../../src/model/event.js';
import {
  eventFromJson,
  eventFromJsonObject,
  eventToJson,
  formatFloat,
  JsonNumber,
  parseJsonLossless,
} from '../../../src/model/event-json.js';
import { MAX_INSTANT, MIN_INSTANT, parseDatetime } from '../../../src/timex/instant.js';

const T = parseDatetime('2015-01-22T02:50:22.702356Z');

function ev(traits: Record<string, TraitValue>): Event {
  return { message_id: 'm-1', event_type: 'compute.instance.exists', timestamp: T, traits };
}

describe('eventToJson', () => {
  test('the flat line of SPEC §7', () => {
    const line = eventToJson(
      ev({
        host: text('h"1'),
        memory_mb: int(15360),
        ratio: float(1),
        small: float(1e-7),
        big: float(1e21),
        launched_at: datetime(parseDatetime('2015-01-20 10:00:00')),
      }),
    );
    assert.equal(
      line,
      '{"message_id":"m-1","event_type":"compute.instance.exists","timestamp":"2015-01-22T02:50:22.702356Z",' +
        '"host":"h\\"1","memory_mb":15360,"ratio":1.0,"small":1e-7,"big":1e+21,"launched_at":"2015-01-20T10:00:00.000000Z"}',
    );
    assert.deepEqual(Object.keys(JSON.parse(line)), [
      'message_id',
      'event_type',
      'timestamp',
      'host',
      'memory_mb',
      'ratio',
      'small',
      'big',
      'launched_at',
    ]);
  });
  test('floats always carry a . or an exponent; non-finite values are refused', () => {
    assert.equal(formatFloat(1), '1.0');
    assert.equal(formatFloat(-0), '0.0');
    assert.equal(formatFloat(2.5), '2.5');
    assert.equal(formatFloat(1e16), '10000000000000000.0');
    assert.throws(() => formatFloat(Number.NaN), RangeError);
    assert.throws(() => eventToJson(ev({ x: int(1.5) })), RangeError);
  });
  test('strings are escaped exactly as JSON.stringify does, lone surrogates included (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.string({ unit: 'binary', minLength: 1 }),
        (value, name) => {
          fc.pre(!['message_id', 'event_type', 'timestamp'].includes(name));
          const line = eventToJson({
            message_id: value || 'm',
            event_type: 't',
            timestamp: T,
            traits: { [name]: text(value) },
          });
          assert.ok(line.includes(`${JSON.stringify(name)}:${JSON.stringify(value)}`));
          assert.equal(JSON.parse(line)[name], value);
        },
      ),
      { numRuns: 1000 },
    );
  });
  test('envelope names are never written as traits', () => {
    assert.equal(
      JSON.parse(eventToJson(ev({ timestamp: text('x') }))).timestamp,
      '2015-01-22T02:50:22.702356Z',
    );
  });
});

describe('eventFromJson', () => {
  test('inference: our datetime format, integer literal, float literal, other strings', () => {
    const e = eventFromJson(
      '{"message_id":"m","event_type":"t","timestamp":"2015-01-22 02:50:22","a":"2015-01-20T10:00:00.000000Z","b":5,"c":5.0,"d":5e0,"e":"2015-01-20 10:00:00","f":null,"g":-0}',
    );
    assert.equal(e.timestamp, parseDatetime('2015-01-22T02:50:22Z'));
    assert.deepEqual(
      { ...e.traits },
      {
        a: { type: 'datetime', value: parseDatetime('2015-01-20T10:00:00Z') },
        b: { type: 'int', value: 5 },
        c: { type: 'float', value: 5 },
        d: { type: 'float', value: 5 },
        e: { type: 'text', value: '2015-01-20 10:00:00' },
        g: { type: 'int', value: 0 },
      },
    );
  });
  test('errors are InputErrors that say what is wrong', () => {
    const bad = (s: string, re: RegExp) =>
      assert.throws(
        () => eventFromJson(s),
        (e: unknown) => e instanceof InputError && re.test(e.message),
      );
    bad('{', /invalid JSON/);
    bad('[1]', /must be a JSON object/);
    bad('{"event_type":"t","timestamp":"2015-01-01T00:00:00Z"}', /message_id/);
    bad('{"message_id":"m","event_type":"t","timestamp":"soon"}', /timestamp/);
    bad('{"message_id":"m","event_type":"t","timestamp":"2015-01-01T00:00:00Z","x":true}', /trait 'x'/);
    bad('{"message_id":"m","event_type":"t","timestamp":"2015-01-01T00:00:00Z","x":{"a":1}}', /trait 'x'/);
    bad(
      '{"message_id":"m","event_type":"t","timestamp":"2015-01-01T00:00:00Z","x":12345678901234567890}',
      /out of range/,
    );
  });
  test('from an already-parsed object numbers are int when integral', () => {
    const e = eventFromJsonObject({
      message_id: 'm',
      event_type: 't',
      timestamp: '2015-01-01T00:00:00Z',
      a: 1,
      b: 1.5,
    });
    assert.deepEqual({ ...e.traits }, { a: { type: 'int', value: 1 }, b: { type: 'float', value: 1.5 } });
  });
  test('property: eventToJson → eventFromJson is the identity (types included)', () => {
    const instant = fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT });
    const traitValue: fc.Arbitrary<TraitValue> = fc.oneof(
      fc
        .string()
        .filter((s) => !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(s))
        .map(text),
      fc.maxSafeInteger().map((n) => int(n === 0 ? 0 : n)),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => float(x === 0 ? 0 : x)),
      instant.map(datetime),
    );
    const name = fc
      .string({ minLength: 1 })
      .filter((s) => !['message_id', 'event_type', 'timestamp', '__proto__'].includes(s));
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        instant,
        fc.dictionary(name, traitValue),
        (mid, et, ts, traits) => {
          const e: Event = { message_id: mid, event_type: et, timestamp: ts, traits };
          const back = eventFromJson(eventToJson(e));
          assert.equal(back.message_id, mid);
          assert.equal(back.event_type, et);
          assert.equal(back.timestamp, ts);
          assert.deepEqual({ ...back.traits }, { ...traits });
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('parseJsonLossless', () => {
  test('agrees with JSON.parse on structure and keeps number literals (property)', () => {
    const strip = (v: unknown): unknown =>
      v instanceof JsonNumber
        ? v.value
        : Array.isArray(v)
          ? v.map(strip)
          : typeof v === 'object' && v !== null
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, strip(x)]))
            : v;
    fc.assert(
      fc.property(fc.json(), (text) => {
        assert.deepEqual(strip(parseJsonLossless(text)), JSON.parse(text));
      }),
      { numRuns: 500 },
    );
    const v = parseJsonLossless('{"a": [1.0, 2, -3e5]}') as { a: JsonNumber[] };
    assert.deepEqual(
      v.a.map((n) => [n.text, n.isFloat]),
      [
        ['1.0', true],
        ['2', false],
        ['-3e5', true],
      ],
    );
  });
  test('rejects what JSON.parse rejects', () => {
    for (const bad of [
      '',
      '{',
      '[1,]',
      '{"a":1,}',
      '01',
      '1.',
      '.5',
      "'x'",
      '"\\x"',
      'tru',
      '{"a" 1}',
      '[1] 2',
      '"\u0001"',
      'NaN',
    ]) {
      assert.throws(() => parseJsonLossless(bad), `${JSON.stringify(bad)}`);
      assert.throws(() => JSON.parse(bad));
    }
  });
});
