import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type BatchRecord, batchValueFor, encodeBatch } from '../../../src/kafka/records.js';
import type { AvroCodec } from '../../../src/serde/avro-codec.js';
import { jsonCodec } from '../../../src/serde/codec.js';
import { publishValue } from '../../../src/serde/publish.js';
import { startAvroCodec } from '../../helpers/avro-registry.js';
import type { FakeRegistry } from './fake-registry.js';

const batch: BatchRecord = {
  batchId: 'p0-1:fire',
  streamId: 'p0-1',
  trigger: 'usage',
  kind: 'fire',
  pipeline: 'usage_pipe',
  distinguishing: { instance_id: { type: 'text', value: 'i-1' } },
  first: 1_700_000_000_000_001,
  last: 1_700_000_000_000_002,
  events: [
    {
      message_id: 'm',
      event_type: 'compute.instance.exists',
      timestamp: 1_700_000_000_000_001,
      traits: { f: { type: 'float', value: 1 }, i: { type: 'int', value: 1 } },
    },
  ],
};
const row = {
  batchId: batch.batchId,
  streamId: batch.streamId,
  kind: batch.kind,
  payload: encodeBatch(batch),
};

describe('publishValue: outbox JSON to the batches topic format', () => {
  let registry: FakeRegistry;
  let codec: AvroCodec;
  before(async () => {
    ({ registry, codec } = await startAvroCodec());
  });
  after(() => registry.close());

  test('the JSON codec publishes exactly what it did before (payload or reference)', () => {
    assert.equal(publishValue(jsonCodec, row), row.payload);
    assert.equal(publishValue(jsonCodec, row, 10), batchValueFor(row, 10));
  });

  test('the Avro codec re-encodes the JSON payload losslessly, or publishes a reference past the limit', () => {
    const inline = codec.decodeBatchMessage(publishValue(codec, row) as Buffer);
    assert.ok(inline.type === 'inline');
    if (inline.type === 'inline') {
      assert.deepStrictEqual(
        inline.batch.events.map((e) => ({ ...e, traits: { ...e.traits } })),
        batch.events,
      );
      assert.deepStrictEqual({ ...inline.batch.distinguishing }, batch.distinguishing);
      assert.equal(inline.batch.first, batch.first);
    }
    const ref = codec.decodeBatchMessage(publishValue(codec, row, 10) as Buffer);
    assert.deepStrictEqual(ref, {
      type: 'reference',
      reference: {
        batchId: row.batchId,
        streamId: row.streamId,
        kind: 'fire',
        bytes: Buffer.byteLength(row.payload),
      },
    });
  });
});
