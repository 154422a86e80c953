/**
 * The Avro record codec: the records of `schemas/*.avsc` in the Confluent wire format (magic byte 0,
 * 4-byte big-endian schema id, Avro binary). The writer schemas are registered once at start (subject
 * `<topic>-value`, Confluent's TopicNameStrategy) and their ids cached; a consumed value is decoded
 * with the schema its own id names, fetched from the registry once per id in {@link AvroCodec.prepare}.
 */
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import type {
  BatchMessage,
  BatchRecord,
  BatchReference,
  StreamEventRecord,
  StreamTopicRecord,
} from '../kafka/records.js';
import type { Instant } from '../timex/instant.js';
import {
  batchMessageFromAvro,
  batchReferenceToAvro,
  batchToAvro,
  streamEventToAvro,
  streamRecordFromAvro,
  tickToAvro,
} from './avro-records.js';
import {
  frame,
  framedSchemaId,
  isConfluentFramed,
  jsonCodec,
  type RecordCodec,
  UnknownSchemaError,
} from './codec.js';

/** An Avro type as the registry client builds it (avsc's Type, with wrapped unions). */
export interface AvroType {
  toBuffer(value: unknown): Buffer;
  fromBuffer(buffer: Buffer): unknown;
}

/** What the Avro codec needs of a schema registry (src/kafka/schema-registry.ts implements it). */
export interface AvroSchemaSource {
  /** Registers `schema` (Avro JSON text) under `subject`; resolves to its id (the existing one if known). */
  register(subject: string, schema: string): Promise<number>;
  /** The type of schema `id`; rejects with {@link UnknownSchemaError} when the registry has no such id. */
  typeOf(id: number): Promise<AvroType>;
}

/** The schema files, relative to the repository root. */
export const STREAM_RECORD_SCHEMA = new URL('../../schemas/stream-record.avsc', import.meta.url);
export const BATCH_MESSAGE_SCHEMA = new URL('../../schemas/batch-message.avsc', import.meta.url);

/** Confluent's TopicNameStrategy subject of a topic's values. */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}

export interface AvroCodecOptions {
  readonly streamEventsTopic: string;
  readonly batchesTopic: string;
}

export class AvroCodec implements RecordCodec {
  readonly format = 'avro' as const;
  /** Writer types by schema id: ours, and any other seen on the topics (older versions of ours). */
  private readonly types = new Map<number, AvroType>();

  private constructor(
    private readonly source: AvroSchemaSource,
    private readonly streamId: number,
    private readonly batchId: number,
  ) {}

  /** Registers both schemas and resolves their types; rejects when the registry refuses them. */
  static async create(source: AvroSchemaSource, options: AvroCodecOptions): Promise<AvroCodec> {
    const [streamText, batchText] = await Promise.all([
      readFile(STREAM_RECORD_SCHEMA, 'utf8'),
      readFile(BATCH_MESSAGE_SCHEMA, 'utf8'),
    ]);
    const streamId = await source.register(valueSubject(options.streamEventsTopic), streamText);
    const batchId = await source.register(valueSubject(options.batchesTopic), batchText);
    const codec = new AvroCodec(source, streamId, batchId);
    codec.types.set(streamId, await source.typeOf(streamId));
    codec.types.set(batchId, await source.typeOf(batchId));
    return codec;
  }

  /** The ids the schemas were registered under (stream-events, batches). */
  get schemaIds(): { readonly streamRecord: number; readonly batchMessage: number } {
    return { streamRecord: this.streamId, batchMessage: this.batchId };
  }

  private encode(id: number, data: unknown): Buffer {
    return frame(id, (this.types.get(id) as AvroType).toBuffer(data));
  }

  /** Avro data of a framed value (check {@link isConfluentFramed} first). */
  private decode(value: Buffer, what: string): unknown {
    const id = framedSchemaId(value);
    const type = this.types.get(id);
    if (type === undefined) throw new UnknownSchemaError(id);
    try {
      return type.fromBuffer(value.subarray(5));
    } catch (err) {
      throw new InputError(`${what}: invalid Avro for schema ${id}: ${(err as Error).message}`);
    }
  }

  /**
   * Decodes and maps a framed value. A record of some other schema (another producer's, on our topic)
   * decodes as Avro but does not have our fields: that is bad input (dead-lettered), not a crash.
   */
  private mapped<T>(value: Buffer, what: string, map: (data: unknown) => T): T {
    const data = this.decode(value, what);
    try {
      return map(data);
    } catch (err) {
      if (err instanceof InputError) throw err;
      throw new InputError(
        `${what}: schema id ${framedSchemaId(value)} does not describe a ${what}: ${(err as Error).message}`,
      );
    }
  }

  encodeStreamEvent(r: Omit<StreamEventRecord, 'type'>): Buffer {
    return this.encode(this.streamId, streamEventToAvro(r));
  }

  encodeTick(time: Instant): Buffer {
    return this.encode(this.streamId, tickToAvro(time));
  }

  /**
   * A framed value is Avro; any other is read as JSON text (JSON never starts with the 0x00 magic byte),
   * so records written before the registry was configured (and ticks of a `winchester produce
   * --advance-clock` run without it) still read.
   */
  decodeStreamRecord(value: Buffer): StreamTopicRecord {
    if (!isConfluentFramed(value)) return jsonCodec.decodeStreamRecord(value);
    return this.mapped(value, 'stream-events record', streamRecordFromAvro);
  }

  encodeBatch(b: BatchRecord): Buffer {
    return this.encode(this.batchId, batchToAvro(b));
  }

  encodeBatchReference(r: BatchReference): Buffer {
    return this.encode(this.batchId, batchReferenceToAvro(r));
  }

  /** Framed: Avro; otherwise JSON text (batches published before the registry was configured). */
  decodeBatchMessage(value: Buffer): BatchMessage {
    if (!isConfluentFramed(value)) return jsonCodec.decodeBatchMessage(value);
    return this.mapped(value, 'batch record', batchMessageFromAvro);
  }

  async prepare(values: readonly (Buffer | null)[]): Promise<void> {
    for (const v of values) {
      if (v === null || !isConfluentFramed(v)) continue;
      const id = framedSchemaId(v);
      if (this.types.has(id)) continue;
      try {
        this.types.set(id, await this.source.typeOf(id));
      } catch (err) {
        // Unknown id: decoding that value throws UnknownSchemaError and the caller dead-letters it.
        if (!(err instanceof UnknownSchemaError)) throw err;
      }
    }
  }
}
