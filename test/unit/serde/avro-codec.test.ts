import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { InputError } from '../../../src/errors.js';
import type { BatchRecord, StreamEventRecord } from '../../../src/kafka/records.js';
import { ConfluentSchemaSource } from '../../../src/kafka/schema-registry.js';
import type { Event, TraitValue } from '../../../src/model/event.js';
import { AvroCodec } from '../../../src/serde/avro-codec.js';
import {
  frame,
  framedSchemaId,
  isConfluentFramed,
  jsonCodec,
  UnknownSchemaError,
} from '../../../src/serde/codec.js';
import type { DistinguishingValue } from '../../../src/triggers/types.js';
import { startAvroCodec } from '../../helpers/avro-registry.js';
import type { FakeRegistry } from './fake-registry.js';

// Avro carries every double (NaN, ±Infinity, -0) and every string, so the property is stricter than
// the JSON codec's: nothing is excluded.
const instantArb = fc.integer({ min: -2_000_000_000_000_000, max: 7_000_000_000_000_000 });
const traitArb: fc.Arbitrary<TraitValue> = fc.oneof(
  fc.string().map((value) => ({ type: 'text' as const, value })),
  fc.maxSafeInteger().map((value) => ({ type: 'int' as const, value })),
  fc.double().map((value) => ({ type: 'float' as const, value })),
  instantArb.map((value) => ({ type: 'datetime' as const, value })),
);
const distinguishingArb: fc.Arbitrary<DistinguishingValue> = fc.oneof(
  traitArb,
  fc.tuple(instantArb, instantArb).map(([begin, end]) => ({ type: 'range' as const, begin, end })),
);
// Any name, `__proto__` and `constructor` included: traits are carried as a list of pairs.
const nameArb = fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'toString'));
const eventArb: fc.Arbitrary<Event> = fc.record({
  message_id: fc.string(),
  event_type: fc.string(),
  timestamp: instantArb,
  traits: fc.dictionary(nameArb, traitArb, { noNullPrototype: false }),
});

/** Plain copies (records read back have prototype-less dictionaries) keeping key order. */
function plainEvent(e: Event): unknown {
  return { ...e, traits: Object.fromEntries(Object.entries(e.traits)) };
}

describe('Avro record codec (Confluent wire format, registry over HTTP)', () => {
  let registry: FakeRegistry;
  let codec: AvroCodec;

  before(async () => {
    ({ registry, codec } = await startAvroCodec({
      streamEventsTopic: 'w.stream-events',
      batchesTopic: 'w.batches',
    }));
  });
  after(() => registry.close());

  test('registers one schema per topic under <topic>-value and frames values with its id', () => {
    assert.ok(registry.requests.includes('POST /subjects/w.stream-events-value/versions'));
    assert.ok(registry.requests.includes('POST /subjects/w.batches-value/versions'));
    const { streamRecord, batchMessage } = codec.schemaIds;
    assert.notEqual(streamRecord, batchMessage);
    const tick = codec.encodeTick(1_700_000_000_000_001);
    assert.equal(tick[0], 0);
    assert.equal(tick.readUInt32BE(1), streamRecord);
    assert.ok(isConfluentFramed(tick));
    assert.deepEqual(codec.decodeStreamRecord(tick), { type: 'tick', time: 1_700_000_000_000_001 });
  });

  test('registering again (a restart) gets the same ids', async () => {
    const again = await AvroCodec.create(new ConfluentSchemaSource({ url: registry.url }), {
      streamEventsTopic: 'w.stream-events',
      batchesTopic: 'w.batches',
    });
    assert.deepEqual(again.schemaIds, codec.schemaIds);
  });

  test('property: stream-event records round-trip losslessly (int stays int, 1.0 float, µs exact)', () => {
    fc.assert(
      fc.property(
        eventArb,
        fc.string(),
        fc.string(),
        fc.dictionary(nameArb, distinguishingArb, { noNullPrototype: false }),
        fc.option(instantArb, { nil: undefined }),
        (event, trigger, key, distinguishing, watermark) => {
          const r: Omit<StreamEventRecord, 'type'> =
            watermark === undefined
              ? { trigger, key, distinguishing, event }
              : { trigger, key, distinguishing, event, watermark };
          const back = codec.decodeStreamRecord(codec.encodeStreamEvent(r));
          assert.equal(back.type, 'event');
          if (back.type !== 'event') return;
          assert.deepStrictEqual(plainEvent(back.event), plainEvent(event));
          assert.deepStrictEqual(Object.entries(back.distinguishing), Object.entries(distinguishing));
          assert.equal(back.trigger, trigger);
          assert.equal(back.key, key);
          assert.equal(back.watermark, watermark);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('1.0 stays a float and 1 an int; a datetime keeps its microseconds', () => {
    const event: Event = {
      message_id: 'm',
      event_type: 'compute.instance.exists',
      timestamp: 1_700_000_000_123_457,
      traits: {
        f: { type: 'float', value: 1 },
        i: { type: 'int', value: 1 },
        d: { type: 'datetime', value: -1 },
        t: { type: 'text', value: '2024-01-01T00:00:00.000001Z' },
      },
    };
    const back = codec.decodeStreamRecord(
      codec.encodeStreamEvent({ trigger: 't', key: 'k', distinguishing: {}, event }),
    );
    assert.ok(back.type === 'event');
    assert.deepStrictEqual(plainEvent(back.event), event);
  });

  test('property: batches and batch references round-trip losslessly', () => {
    fc.assert(
      fc.property(
        fc.record({
          batchId: fc.string(),
          streamId: fc.string(),
          trigger: fc.string(),
          kind: fc.constantFrom('fire' as const, 'expire' as const),
          pipeline: fc.option(fc.string(), { nil: null }),
          distinguishing: fc.dictionary(nameArb, distinguishingArb, { noNullPrototype: false }),
          first: instantArb,
          last: instantArb,
          events: fc.array(eventArb, { maxLength: 5 }),
        }),
        fc.nat(),
        (b: BatchRecord, bytes) => {
          const back = codec.decodeBatchMessage(codec.encodeBatch(b));
          assert.equal(back.type, 'inline');
          if (back.type !== 'inline') return;
          const { distinguishing, events, ...rest } = back.batch;
          const { distinguishing: d0, events: e0, ...rest0 } = b;
          assert.deepStrictEqual(rest, rest0);
          assert.deepStrictEqual(Object.entries(distinguishing), Object.entries(d0));
          assert.deepStrictEqual(events.map(plainEvent), e0.map(plainEvent));
          const ref = { batchId: b.batchId, streamId: b.streamId, kind: b.kind, bytes };
          assert.deepStrictEqual(codec.decodeBatchMessage(codec.encodeBatchReference(ref)), {
            type: 'reference',
            reference: ref,
          });
        },
      ),
      { numRuns: 150 },
    );
  });

  test('a value framed with an id the registry does not know is UnknownSchemaError, after prepare too', async () => {
    const value = frame(4242, Buffer.from([0]));
    await codec.prepare([value, null]);
    assert.ok(registry.requests.includes('GET /schemas/ids/4242'));
    assert.throws(
      () => codec.decodeStreamRecord(value),
      (e) => e instanceof UnknownSchemaError && e.schemaId === 4242,
    );
  });

  test('a schema id seen first in a message is fetched once by prepare, then decodes', async () => {
    const fresh = await AvroCodec.create(new ConfluentSchemaSource({ url: registry.url }), {
      streamEventsTopic: 'w.stream-events',
      batchesTopic: 'w.batches',
    });
    // A batch value on the stream-events topic: decodable by id (prepare fetched nothing new), but not
    // a stream record, so it is an InputError rather than a crash.
    const batchValue = codec.encodeBatchReference({ batchId: 'b', streamId: 's', kind: 'fire', bytes: 1 });
    await fresh.prepare([batchValue]);
    assert.throws(() => fresh.decodeStreamRecord(batchValue), InputError);
  });

  test('unframed values are read as JSON records (written before the registry was configured)', () => {
    const tick = Buffer.from(jsonCodec.encodeTick(7) as string);
    assert.deepEqual(codec.decodeStreamRecord(tick), { type: 'tick', time: 7 });
    const ref = { batchId: 'b', streamId: 's', kind: 'expire' as const, bytes: 9 };
    assert.deepEqual(codec.decodeBatchMessage(Buffer.from(jsonCodec.encodeBatchReference(ref) as string)), {
      type: 'reference',
      reference: ref,
    });
  });

  test('text that is no JSON record, a bare header and truncated Avro are InputErrors, not crashes', () => {
    assert.throws(() => codec.decodeStreamRecord(Buffer.from('{"v":1,"type":"tick"}')), InputError);
    assert.throws(() => codec.decodeStreamRecord(Buffer.from([0, 0, 0, 0, 1])), InputError);
    assert.throws(() => codec.decodeBatchMessage(Buffer.from('not json')), InputError);
    const tick = codec.encodeTick(5);
    const id = framedSchemaId(tick);
    assert.throws(() => codec.decodeStreamRecord(frame(id, Buffer.from([2]))), InputError);
  });

  test('the JSON codec is the records module behind the same interface', () => {
    const event: Event = {
      message_id: 'm',
      event_type: 'e',
      timestamp: 1,
      traits: { f: { type: 'float', value: 1 } },
    };
    const v = jsonCodec.encodeStreamEvent({ trigger: 't', key: 'k', distinguishing: {}, event });
    assert.equal(typeof v, 'string');
    const back = jsonCodec.decodeStreamRecord(Buffer.from(v as string));
    assert.ok(back.type === 'event');
    assert.deepStrictEqual(plainEvent(back.event), event);
    assert.equal(isConfluentFramed(Buffer.from(v as string)), false);
  });
});
