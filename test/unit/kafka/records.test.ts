import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { InputError } from '../../../src/errors.js';
import {
  batchIdOf,
  decodeBatch,
  decodeStreamRecord,
  encodeBatch,
  encodeStreamEvent,
  encodeTick,
  streamRecordKey,
} from '../../../src/kafka/records.js';
import type { Event, TraitValue } from '../../../src/model/event.js';
import { parseDatetime } from '../../../src/timex/instant.js';
import { distinguishingKey } from '../../../src/triggers/key.js';
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
      ['{"v":2,"type":"tick","time":"2015-01-01T00:00:00.000000Z"}', /version/],
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
    assert.throws(() => decodeBatch('{"v":1,"kind":"later"}'), /'kind'/);
    assert.throws(() => decodeBatch('{"v":1,"kind":"fire","pipeline":3}'), /'pipeline'/);
    assert.throws(() => decodeBatch('{"v":1,"kind":"fire","pipeline":null,"events":{}}'), /'events'/);
  });
});
