/**
 * The batches-topic value of an outbox row in the configured record format. Outbox payloads are
 * always JSON text in Postgres (written by the stream task in its checkpoint transaction); with the
 * Avro codec the publisher re-encodes at send time, so the database format never depends on the
 * registry being reachable when a stream closes.
 */
import { batchValueFor, decodeBatch, MAX_INLINE_BATCH_BYTES } from '../kafka/records.js';
import type { RecordCodec, RecordValue } from './codec.js';

/** An outbox row as the publisher has it. */
export interface OutboxPayloadRow {
  readonly batchId: string;
  readonly streamId: string;
  readonly kind: 'fire' | 'expire';
  /** The JSON batch record (src/kafka/records.ts encodeBatch). */
  readonly payload: string;
}

/**
 * The value to publish for `row`: the batch in the codec's format, or a reference (claim check) when
 * the JSON payload is larger than `maxInlineBytes` (Avro is smaller than JSON, so what fits as JSON
 * fits as Avro). The JSON codec publishes the payload text itself, unchanged.
 * @throws InputError when the payload is not a batch record (a corrupted row).
 */
export function publishValue(
  codec: RecordCodec,
  row: OutboxPayloadRow,
  maxInlineBytes = MAX_INLINE_BATCH_BYTES,
): RecordValue {
  if (codec.format === 'json') return batchValueFor(row, maxInlineBytes);
  const bytes = Buffer.byteLength(row.payload, 'utf8');
  if (bytes > maxInlineBytes) {
    return codec.encodeBatchReference({
      batchId: row.batchId,
      streamId: row.streamId,
      kind: row.kind,
      bytes,
    });
  }
  return codec.encodeBatch(decodeBatch(row.payload));
}
