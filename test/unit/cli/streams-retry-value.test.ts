/**
 * `winchester streams retry` produces a stream's batch again as the outbox publisher did, in the
 * workers' record format (retryValue): JSON text unchanged without a registry; with one, the batch
 * re-encoded as Avro, or an Avro reference when the payload was too big to read.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { retryValue } from '../../../src/cli/streams.js';
import type { RetryCandidate } from '../../../src/db/streams-query.js';
import { InputError } from '../../../src/errors.js';
import { type BatchRecord, encodeBatch, encodeBatchReference } from '../../../src/kafka/records.js';
import { ConfluentSchemaSource } from '../../../src/kafka/schema-registry.js';
import { AvroCodec } from '../../../src/serde/avro-codec.js';
import { framedSchemaId, isConfluentFramed } from '../../../src/serde/codec.js';
import { type FakeRegistry, startFakeRegistry } from '../serde/fake-registry.js';

const batch: BatchRecord = {
  batchId: 's1:expire',
  streamId: 's1',
  trigger: 'usage',
  kind: 'expire',
  pipeline: 'expire_pipe',
  distinguishing: { instance_id: { type: 'text', value: 'i-1' } },
  first: 1_700_000_000_000_001,
  last: 1_700_000_000_000_002,
  events: [
    {
      message_id: 'm',
      event_type: 'compute.instance.update',
      timestamp: 1_700_000_000_000_001,
      traits: { f: { type: 'float', value: 2 }, i: { type: 'int', value: 2 } },
    },
  ],
};
const payload = encodeBatch(batch);

function candidate(p: string | null): RetryCandidate {
  return {
    id: 's1',
    trigger: 'usage',
    state: 'expire_error',
    version: 3,
    batch: {
      batchId: 's1:expire',
      kind: 'expire',
      messageKey: 's1',
      bytes: Buffer.byteLength(payload),
      payload: p,
      completed: false,
    },
  };
}

describe('streams retry: the value produced again', () => {
  let registry: FakeRegistry;
  let codec: AvroCodec;
  before(async () => {
    registry = await startFakeRegistry();
    codec = await AvroCodec.create(new ConfluentSchemaSource({ url: registry.url }), {
      streamEventsTopic: 'se',
      batchesTopic: 'b',
    });
  });
  after(() => registry.close());

  test('without a registry: the outbox payload byte for byte, or the JSON reference', () => {
    assert.equal(retryValue(candidate(payload)), payload);
    assert.equal(
      retryValue(candidate(null)),
      encodeBatchReference({
        batchId: 's1:expire',
        streamId: 's1',
        kind: 'expire',
        bytes: Buffer.byteLength(payload),
      }),
    );
  });

  test('with a registry: framed Avro of the batches schema, decoding to the same batch / reference', () => {
    const inline = retryValue(candidate(payload), codec) as Buffer;
    assert.ok(isConfluentFramed(inline), 'framed');
    assert.equal(framedSchemaId(inline), codec.schemaIds.batchMessage);
    const back = codec.decodeBatchMessage(inline);
    assert.equal(back.type === 'inline' ? encodeBatch(back.batch) : back.type, payload);

    const ref = retryValue(candidate(null), codec) as Buffer;
    assert.equal(framedSchemaId(ref), codec.schemaIds.batchMessage);
    assert.deepEqual(codec.decodeBatchMessage(ref), {
      type: 'reference',
      reference: { batchId: 's1:expire', streamId: 's1', kind: 'expire', bytes: Buffer.byteLength(payload) },
    });
  });

  test('a stored payload that is not a batch: an input error when it must be re-encoded', () => {
    assert.throws(() => retryValue(candidate('{"nope":1}'), codec), InputError);
    // JSON passes the stored text on as it is, as the outbox publisher does.
    assert.equal(retryValue(candidate('{"nope":1}')), '{"nope":1}');
  });

  test('a candidate without a batch is a programming error, not produced', () => {
    assert.throws(() => retryValue({ ...candidate(payload), batch: null }), TypeError);
  });
});
