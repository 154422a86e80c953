import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { InputError } from '../../../src/errors.js';
import {
  batchIdOf,
  decodeBatch,
  decodeBatchMessage,
  decodeStreamRecord,
  encodeBatch,
  encodeBatchReference,
  encodeStreamEvent,
  encodeTick,
  streamRecordKey,
} from '../../../src/kafka/records.js';
import type { Event, TraitValue } from '../../../src/model/event.js';
import { eventToJson } from '../../../src/model/event-json.js';
import { formatInstant, MAX_INSTANT, MIN_INSTANT, parseDatetime } from '../../../src/timex/instant.js';
import { distinguishingKey, jsonString, keyEntry } from '../../../src/triggers/key.js';
import type { DistinguishingValues } from '../../../src/triggers/types.js';

const T = parseDatetime('2015-02-01T10:11:12.345678Z');

const event: Event = {
  message_id: 'm-1',
  event_type: 'compute.instance.exists',
  timestamp: T,
  traits: {
    memory_mb: { type: 'int', value: 2048 },
    ratio: { type: 'float', value: 1 },
    small: { type: 'float', value: 0.25 },
    launched_at: { type: 'datetime', value: T - 1 },
    host: { type: 'text', value: 'host-"1"\n' },
  },
};

const distinguishing: DistinguishingValues = {
  tenant: { type: 'text', value: 'T1' },
  timestamp: { type: 'range', begin: T - 10, end: T + 10 },
  count: { type: 'int', value: 3 },
};

describe('stream-events records', () => {
  test('an event record round-trips with every trait type and the distinguishing order', () => {
    const key = distinguishingKey(distinguishing);
    const text = encodeStreamEvent({ trigger: 'usage', key, distinguishing, event });
    const back = decodeStreamRecord(text);
    assert.equal(back.type, 'event');
    if (back.type !== 'event') return;
    assert.equal(back.trigger, 'usage');
    assert.equal(back.key, key);
    assert.deepEqual({ ...back.distinguishing }, { ...distinguishing });
    assert.deepEqual(Object.keys(back.distinguishing), ['tenant', 'timestamp', 'count']);
    assert.deepEqual({ ...back.event.traits }, { ...event.traits });
    assert.equal(back.event.timestamp, T);
    assert.equal(back.event.traits.ratio?.type, 'float');
    assert.equal(back.event.traits.launched_at?.value, T - 1, 'microseconds survive');
  });

  test('a tick round-trips to the microsecond', () => {
    assert.deepEqual(decodeStreamRecord(encodeTick(T + 1)), { type: 'tick', time: T + 1 });
  });

  test('the Kafka key separates trigger and stream key unambiguously', () => {
    const k = distinguishingKey({ a: { type: 'text', value: 'x' } });
    assert.equal(streamRecordKey('usage', k), `"usage"${k}`);
    assert.notEqual(streamRecordKey('a"', k), streamRecordKey('a', `"${k}`));
    assert.equal(
      streamRecordKey('usage', k),
      streamRecordKey('usage', distinguishingKey({ a: { type: 'text', value: 'x' } })),
    );
  });

  test('malformed records are refused with an InputError saying why', () => {
    const bad: [string, RegExp][] = [
      ['not json', /invalid JSON/],
      ['[1]', /JSON object/],
      ['{"v":3,"type":"tick","time":1}', /unsupported format version 3/],
      ['{"type":"tick","time":1}', /unsupported format version/],
      ['{"v":2,"type":"tick","time":"2015-01-01T00:00:00.000000Z"}', /'time' must be integer microseconds/],
      ['{"v":2,"type":"tick","time":1.5}', /'time'/],
      [
        '{"v":2,"type":"event","trigger":"t","key":"[]","distinguishing":[["a","x",1]],"event":{}}',
        /distinguishing value type/,
      ],
      [
        '{"v":2,"type":"event","trigger":"t","key":"[]","distinguishing":[["a","r",1]],"event":{}}',
        /range|value/,
      ],
      ['{"v":2,"type":"event","trigger":"t","key":"[]","distinguishing":[]}', /'event' is missing/],
      [
        '{"v":2,"type":"event","trigger":"t","key":"[]","distinguishing":[],"event":{"message_id":"m","event_type":"e","timestamp":0,"traits":["a","i",1.5]}}',
        /type i must be a safe integer/,
      ],
      [
        '{"v":2,"type":"event","trigger":"t","key":"[]","distinguishing":[],"event":{"message_id":"m","event_type":"e","timestamp":0,"traits":["a","f",1e400]}}',
        /finite/,
      ],
      [
        '{"v":2,"type":"event","trigger":"t","key":"[]","distinguishing":[],"event":{"message_id":"m","event_type":"e","timestamp":0,"traits":["a","t"]}}',
        /triples/,
      ],
      [
        '{"v":2,"type":"event","trigger":"t","key":"[]","distinguishing":[],"event":{"message_id":"m","event_type":"e","timestamp":0,"traits":["a","q",1]}}',
        /unknown type tag/,
      ],
      ['{"v":1,"type":"nope"}', /unknown type/],
      ['{"v":1,"type":"tick","time":"yesterday"}', /'time'/],
      ['{"v":1,"type":"event","trigger":"t","key":"[]","distinguishing":[[1]],"event":{}}', /distinguishing/],
      ['{"v":1,"type":"event","trigger":"t","key":"[]","distinguishing":[]}', /'event' is missing/],
      ['{"v":1,"type":"event","trigger":5,"key":"[]","distinguishing":[],"event":{}}', /'trigger'/],
    ];
    for (const [text, re] of bad)
      assert.throws(
        () => decodeStreamRecord(text),
        (e) => e instanceof InputError && re.test(e.message),
        text,
      );
  });
});

const traitArb: fc.Arbitrary<TraitValue> = fc.oneof(
  fc.string().map((value) => ({ type: 'text' as const, value })),
  fc.maxSafeInteger().map((value) => ({ type: 'int' as const, value: value === 0 ? 0 : value })),
  fc
    .double({ noNaN: true, noDefaultInfinity: true })
    .map((value) => ({ type: 'float' as const, value: Object.is(value, -0) ? 0 : value })),
  fc
    .integer({ min: -2_000_000_000_000_000, max: 7_000_000_000_000_000 })
    .map((value) => ({ type: 'datetime' as const, value })),
);

describe('batch records', () => {
  test('a batch round-trips', () => {
    const b = {
      batchId: batchIdOf('p3-17', 'fire'),
      streamId: 'p3-17',
      trigger: 'usage',
      kind: 'fire' as const,
      pipeline: 'usage_pipe',
      distinguishing,
      first: T,
      last: T + 5,
      events: [event, { ...event, message_id: 'm-2', timestamp: T + 5 }],
    };
    const back = decodeBatch(encodeBatch(b));
    assert.equal(back.batchId, 'p3-17:fire');
    assert.deepEqual(
      {
        ...back,
        distinguishing: { ...back.distinguishing },
        events: back.events.map((e) => ({ ...e, traits: { ...e.traits } })),
      },
      {
        ...b,
        distinguishing: { ...b.distinguishing },
        events: b.events.map((e) => ({ ...e, traits: { ...e.traits } })),
      },
    );
    const none = decodeBatch(encodeBatch({ ...b, kind: 'expire', pipeline: null, events: [] }));
    assert.equal(none.pipeline, null);
    assert.equal(none.kind, 'expire');
  });

  test('property: typed traits survive a batch (text that looks like our datetime aside)', () => {
    const looksLikeDatetime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string({ minLength: 1 }).filter((n) => !['message_id', 'event_type', 'timestamp'].includes(n)),
          traitArb,
        ),
        (traits) => {
          for (const t of Object.values(traits))
            if (t.type === 'text' && looksLikeDatetime.test(t.value)) return;
          const e: Event = { message_id: 'x', event_type: 'y', timestamp: T, traits };
          const text = encodeBatch({
            batchId: 'b',
            streamId: 's',
            trigger: 't',
            kind: 'expire',
            pipeline: null,
            distinguishing: {},
            first: T,
            last: T,
            events: [e],
          });
          const back = decodeBatch(text).events[0] as Event;
          assert.deepEqual({ ...back.traits }, { ...traits });
        },
      ),
    );
  });

  test('malformed batches are refused', () => {
    assert.throws(() => decodeBatch('{"v":2,"kind":"later"}'), /'kind'/);
    assert.throws(
      () => decodeBatch('{"v":2,"kind":"fire","pipeline":null,"events":[]}'),
      /'batch_id'|'distinguishing'/,
    );
    assert.throws(() => decodeBatch('{"v":1,"kind":"later"}'), /'kind'/);
    assert.throws(() => decodeBatch('{"v":1,"kind":"fire","pipeline":3}'), /'pipeline'/);
    assert.throws(() => decodeBatch('{"v":1,"kind":"fire","pipeline":null,"events":{}}'), /'events'/);
  });
});

// ---- format 2: exact round trips, and format 1 still read ----------------------------------------

/** Any text, lone surrogates included. */
const anyText = fc.string({ unit: 'binary' });

const exactTraitArb: fc.Arbitrary<TraitValue> = fc.oneof(
  anyText.map((value) => ({ type: 'text' as const, value })),
  fc
    .oneof(fc.maxSafeInteger(), fc.constantFrom(0, 1, -1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER))
    .map((value) => ({ type: 'int' as const, value: value === 0 ? 0 : value })),
  fc
    .oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constantFrom(1, -0, 0, 1e21, 5e-324, 2 ** 53),
    )
    .map((value) => ({ type: 'float' as const, value })),
  fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT }).map((value) => ({ type: 'datetime' as const, value })),
);

/** Trait names of every kind, including the envelope's and Object.prototype's. */
const nameArb = fc.oneof(
  anyText,
  fc.constantFrom('__proto__', 'constructor', 'toString', 'timestamp', 'message_id', 'event_type', ''),
);

const traitsArb = fc
  .uniqueArray(fc.tuple(nameArb, exactTraitArb), { selector: ([n]) => n, maxLength: 12 })
  .map((entries) => {
    const traits: Record<string, TraitValue> = Object.create(null);
    for (const [n, v] of entries) traits[n] = v;
    return traits;
  });

const eventArb: fc.Arbitrary<Event> = fc.record({
  message_id: anyText.filter((s) => s !== ''),
  event_type: anyText.filter((s) => s !== ''),
  timestamp: fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT }),
  traits: traitsArb,
});

/** Exact comparison: own keys in order, types, and -0 told from 0 (Object.is). */
function assertSameEvent(actual: Event, expected: Event): void {
  assert.equal(actual.message_id, expected.message_id);
  assert.equal(actual.event_type, expected.event_type);
  assert.ok(Object.is(actual.timestamp, expected.timestamp));
  assert.deepEqual(Object.keys(actual.traits), Object.keys(expected.traits));
  for (const name of Object.keys(expected.traits)) {
    assert.ok(Object.hasOwn(actual.traits, name), name);
    const a = actual.traits[name] as TraitValue;
    const e = expected.traits[name] as TraitValue;
    assert.equal(a.type, e.type, name);
    assert.ok(Object.is(a.value, e.value), `${name}: ${String(a.value)} vs ${String(e.value)}`);
  }
}

const distinguishingArb: fc.Arbitrary<DistinguishingValues> = fc
  .uniqueArray(
    fc.tuple(
      nameArb,
      fc.oneof(
        exactTraitArb.map((t) => t as DistinguishingValues[string]),
        fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY).map((value) => ({
          type: 'float' as const,
          value,
        })),
        fc
          .tuple(fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT }), fc.integer({ min: 0, max: 1e12 }))
          .map(([begin, d]) => ({ type: 'range' as const, begin, end: begin + d })),
      ),
    ),
    { selector: ([n]) => n, maxLength: 4 },
  )
  .map((entries) => {
    const out: Record<string, DistinguishingValues[string]> = {};
    for (const [n, v] of entries)
      Object.defineProperty(out, n, { value: v, enumerable: true, writable: true, configurable: true });
    return out;
  });

function assertSameDistinguishing(actual: DistinguishingValues, expected: DistinguishingValues): void {
  assert.deepEqual(Object.keys(actual), Object.keys(expected));
  for (const name of Object.keys(expected)) {
    assert.ok(Object.hasOwn(actual, name));
    const a = actual[name] as unknown as Record<string, unknown>;
    const e = expected[name] as unknown as Record<string, unknown>;
    assert.deepEqual(Object.keys(a), Object.keys(e));
    for (const k of Object.keys(e)) assert.ok(Object.is(a[k], e[k]), `${name}.${k}`);
  }
}

/** The format-1 writer exactly as it was (src/kafka/records.ts before format 2), to test reading it. */
function legacyStreamEvent(r: {
  trigger: string;
  key: string;
  distinguishing: DistinguishingValues;
  event: Event;
  watermark?: number;
}): string {
  const d = `[${Object.keys(r.distinguishing)
    .map((n) => keyEntry(n, r.distinguishing[n] as DistinguishingValues[string]))
    .join(',')}]`;
  return (
    `{"v":1,"type":"event","trigger":${jsonString(r.trigger)},"key":${jsonString(r.key)},` +
    `"distinguishing":${d},"event":${eventToJson(r.event)}` +
    `${r.watermark === undefined ? '' : `,"watermark":"${formatInstant(r.watermark)}"`}}`
  );
}

describe('format 2 (typed)', () => {
  test('property: a stream-events record gives back exactly what was written', () => {
    fc.assert(
      fc.property(
        eventArb,
        distinguishingArb,
        anyText,
        fc.option(fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT }), { nil: undefined }),
        (e, d, trigger, watermark) => {
          const key = distinguishingKey(d);
          const text = encodeStreamEvent({
            trigger,
            key,
            distinguishing: d,
            event: e,
            ...(watermark === undefined ? {} : { watermark }),
          });
          const back = decodeStreamRecord(text);
          assert.equal(back.type, 'event');
          if (back.type !== 'event') return;
          assert.equal(back.trigger, trigger);
          assert.equal(back.key, key);
          assert.equal(back.watermark, watermark);
          assertSameDistinguishing(back.distinguishing, d);
          assertSameEvent(back.event, e);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('property: a batch gives back exactly what was written', () => {
    fc.assert(
      fc.property(
        fc.array(eventArb, { maxLength: 4 }),
        distinguishingArb,
        fc.constantFrom('fire' as const, 'expire' as const),
        fc.option(anyText, { nil: null }),
        (events, d, kind, pipeline) => {
          const b = {
            batchId: 'b',
            streamId: 's',
            trigger: 't',
            kind,
            pipeline,
            distinguishing: d,
            first: T,
            last: T + 1,
            events,
          };
          const back = decodeBatch(encodeBatch(b));
          assert.equal(back.kind, kind);
          assert.equal(back.pipeline, pipeline);
          assert.equal(back.first, T);
          assert.equal(back.last, T + 1);
          assertSameDistinguishing(back.distinguishing, d);
          assert.equal(back.events.length, events.length);
          for (let i = 0; i < events.length; i++)
            assertSameEvent(back.events[i] as Event, events[i] as Event);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('the cases the flat format could not carry: 1.0, -0, datetime-looking text, envelope-named traits', () => {
    const e: Event = {
      message_id: 'm',
      event_type: 'e',
      timestamp: T,
      traits: Object.assign(Object.create(null), {
        one: { type: 'float', value: 1 },
        negzero: { type: 'float', value: -0 },
        looks: { type: 'text', value: '2015-02-01T10:11:12.345678Z' },
        timestamp: { type: 'int', value: 7 },
        ['__proto__']: { type: 'text', value: 'p' },
      }),
    };
    const text = encodeStreamEvent({ trigger: 't', key: '[]', distinguishing: {}, event: e });
    assert.match(text, /"negzero","f",-0/);
    const back = decodeStreamRecord(text);
    assert.ok(back.type === 'event');
    assertSameEvent(back.event, e);
  });

  test('a batch reference round-trips', () => {
    const m = decodeBatchMessage(
      encodeBatchReference({ batchId: 'p1-2:fire', streamId: 'p1-2', kind: 'fire', bytes: 12345 }),
    );
    assert.deepEqual(m, {
      type: 'reference',
      reference: { batchId: 'p1-2:fire', streamId: 'p1-2', kind: 'fire', bytes: 12345 },
    });
  });
});

describe('format 1 (records already in a topic or an outbox row at an upgrade)', () => {
  test('property: a format-1 stream-events record is still read (types as the flat form gives them)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string({ minLength: 1 }).filter((n) => !['message_id', 'event_type', 'timestamp'].includes(n)),
          traitArb,
        ),
        fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT }),
        (traits, watermark) => {
          const looksLikeDatetime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
          for (const t of Object.values(traits))
            if (t.type === 'text' && looksLikeDatetime.test(t.value)) return;
          const e: Event = { message_id: 'x', event_type: 'y', timestamp: T, traits };
          const key = distinguishingKey(distinguishing);
          const back = decodeStreamRecord(
            legacyStreamEvent({ trigger: 'usage', key, distinguishing, event: e, watermark }),
          );
          assert.ok(back.type === 'event');
          assert.equal(back.key, key);
          assert.equal(back.watermark, watermark);
          assertSameDistinguishing(back.distinguishing, distinguishing);
          assertSameEvent(back.event, e);
        },
      ),
    );
  });

  test('a format-1 tick, batch and batch reference are still read', () => {
    assert.deepEqual(decodeStreamRecord('{"v":1,"type":"tick","time":"2015-02-01T10:11:12.345678Z"}'), {
      type: 'tick',
      time: T,
    });
    const v1Batch =
      '{"v":1,"batch_id":"p3-17:fire","stream_id":"p3-17","trigger":"usage","kind":"fire","pipeline":"usage_pipe",' +
      '"distinguishing":[["instance_id","t","abc"],["timestamp","r","2015-02-01T00:00:00.000000Z","2015-02-02T00:00:00.000000Z"]],' +
      '"first_event":"2015-02-01T10:11:12.345678Z","last_event":"2015-02-01T10:11:12.345678Z",' +
      '"events":[{"message_id":"m","event_type":"e","timestamp":"2015-02-01T10:11:12.345678Z","ratio":1.0,"n":2,"at":"2015-02-01T10:11:12.345677Z"}]}';
    for (const b of [
      decodeBatch(v1Batch),
      (decodeBatchMessage(v1Batch) as { batch: ReturnType<typeof decodeBatch> }).batch,
    ]) {
      assert.equal(b.first, T);
      assert.deepEqual(b.distinguishing.timestamp, {
        type: 'range',
        begin: parseDatetime('2015-02-01T00:00:00Z'),
        end: parseDatetime('2015-02-02T00:00:00Z'),
      });
      assert.deepEqual(
        { ...(b.events[0] as Event).traits },
        {
          ratio: { type: 'float', value: 1 },
          n: { type: 'int', value: 2 },
          at: { type: 'datetime', value: T - 1 },
        },
      );
    }
    assert.deepEqual(
      decodeBatchMessage('{"v":1,"batch_id":"b","stream_id":"s","kind":"expire","ref":"outbox","bytes":9}'),
      {
        type: 'reference',
        reference: { batchId: 'b', streamId: 's', kind: 'expire', bytes: 9 },
      },
    );
  });
});
