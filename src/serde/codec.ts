/**
 * The codec layer of the internal topics (DESIGN.md §Serialization): one interface that both record
 * formats implement, so that the workers encode and decode stream-events and batches records without
 * knowing whether they are JSON text (the default, docs/topics.md) or Avro in the Confluent wire
 * format (with `schema_registry.url` configured, docs/avro.md).
 *
 * Decoding is synchronous on the hot path: a codec that needs something fetched first (the Avro
 * codec's writer schemas, by the id in each message) does it in {@link RecordCodec.prepare}, once
 * per consumed batch, and then decodes every message of the batch without awaiting.
 */
import { WinchesterError } from '../errors.js';
import {
  type BatchMessage,
  type BatchRecord,
  type BatchReference,
  decodeBatchMessage,
  decodeStreamRecord,
  encodeBatch,
  encodeBatchReference,
  encodeStreamEvent,
  encodeTick,
  type StreamEventRecord,
  type StreamTopicRecord,
} from '../kafka/records.js';
import type { Instant } from '../timex/instant.js';

/** A Kafka message value as produced (kafkajs takes either). */
export type RecordValue = string | Buffer;

/** Encodes and decodes the records of the stream-events and batches topics. */
export interface RecordCodec {
  /** `json` or `avro`: for logs and metrics. */
  readonly format: 'json' | 'avro';
  encodeStreamEvent(r: Omit<StreamEventRecord, 'type'>): RecordValue;
  encodeTick(time: Instant): RecordValue;
  /** @throws InputError when the value is not a stream-events record; UnknownSchemaError (Avro). */
  decodeStreamRecord(value: Buffer): StreamTopicRecord;
  encodeBatch(b: BatchRecord): RecordValue;
  encodeBatchReference(r: BatchReference): RecordValue;
  /** @throws InputError when the value is not a batches record; UnknownSchemaError (Avro). */
  decodeBatchMessage(value: Buffer): BatchMessage;
  /**
   * Makes every value of `values` decodable synchronously (fetches what it must first). Values it
   * cannot make decodable are left as they are: decoding them then throws, and the caller
   * dead-letters them. Never rejects for a bad value.
   */
  prepare(values: readonly (Buffer | null)[]): Promise<void>;
}

/** A Confluent-framed value names a schema id the registry does not know. */
export class UnknownSchemaError extends WinchesterError {
  constructor(readonly schemaId: number) {
    super(`unknown schema id ${schemaId}`);
  }
}

/** Magic byte of the Confluent wire format. */
export const CONFLUENT_MAGIC = 0;
/** Magic byte + 4-byte big-endian schema id. */
export const CONFLUENT_HEADER_BYTES = 5;

/**
 * Whether a value is in the Confluent wire format. JSON text never starts with a NUL byte, so this
 * tells the two apart per message.
 */
export function isConfluentFramed(value: Buffer): boolean {
  return value.length > CONFLUENT_HEADER_BYTES && value[0] === CONFLUENT_MAGIC;
}

/** The schema id of a framed value (check {@link isConfluentFramed} first). */
export function framedSchemaId(value: Buffer): number {
  return value.readUInt32BE(1);
}

/** Prefixes an Avro body with the Confluent header of `schemaId`. */
export function frame(schemaId: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(CONFLUENT_HEADER_BYTES + body.length);
  out[0] = CONFLUENT_MAGIC;
  out.writeUInt32BE(schemaId, 1);
  out.set(body, CONFLUENT_HEADER_BYTES);
  return out;
}

/** Today's JSON text records (src/kafka/records.ts), behind the codec interface. */
export const jsonCodec: RecordCodec = {
  format: 'json',
  encodeStreamEvent,
  encodeTick,
  decodeStreamRecord: (value) => decodeStreamRecord(value.toString('utf8')),
  encodeBatch,
  encodeBatchReference,
  decodeBatchMessage: (value) => decodeBatchMessage(value.toString('utf8')),
  prepare: () => Promise.resolve(),
};
