/**
 * The schema registry, through `@kafkajs/confluent-schema-registry` (the only module that imports it):
 * registration of the internal topics' schemas, and the writer schema of an id read from a message.
 * Works with any registry speaking the Confluent REST API (Confluent's, or Apicurio's
 * `/apis/ccompat/v7`).
 *
 * Two clients share nothing but the URL: the internal records are read and written with wrapped unions
 * (unambiguous typed values, src/serde/avro-records.ts), while input notifications are decoded with
 * avsc's default unwrapping so that `["null","string"]` fields read as plain values, as the JSON a
 * distiller definition's paths were written for.
 */
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
// avsc is the registry client's own Avro implementation (its dependency); only its long type is replaced.
import avro from 'avsc';
import type { AvroSchemaSource, AvroType } from '../serde/avro-codec.js';
import { UnknownSchemaError } from '../serde/codec.js';

/** How to reach the registry (`schema_registry` in the configuration). */
export interface SchemaRegistryOptions {
  /** Base URL of the Confluent-compatible API, e.g. `http://registry:8081` or `…/apis/ccompat/v7`. */
  readonly url: string;
  /** Retries of a failed request before giving up (default 3). */
  readonly retries?: number;
}

function isNotFound(err: unknown): boolean {
  return (
    typeof err === 'object' && err !== null && 'status' in err && (err as { status: unknown }).status === 404
  );
}

/**
 * Avro `long` for every safe integer. avsc's own long refuses integers beyond ±2^52 (its varint fast
 * path), and an int trait may be any safe integer (±(2^53 − 1)), so it would not round-trip. This one
 * goes through a 64-bit two's complement buffer: exact for every safe integer; a longer long written by
 * another producer reads as the nearest double, as the same number in JSON would.
 */
const exactLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer): number => Number(buf.readBigInt64LE(0)),
  toBuffer: (n: number): Buffer => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (v: unknown): number => Number(v),
  toJSON: (n: number): number => n,
  isValid: (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n),
  compare: (a: number, b: number): number => (a === b ? 0 : a < b ? -1 : 1),
});

/** Puts {@link exactLong} wherever a schema says `long` (a shared `registry` option would be mutated). */
function longHook(schema: unknown): avro.Type | undefined {
  if (schema === 'long') return exactLong;
  if (typeof schema === 'object' && schema !== null && (schema as { type?: unknown }).type === 'long')
    return exactLong;
  return undefined;
}

function client(options: SchemaRegistryOptions, wrapUnions: boolean): SchemaRegistry {
  return new SchemaRegistry(
    { host: options.url.replace(/\/+$/, ''), retry: { retries: options.retries ?? 3 } },
    { [SchemaType.AVRO]: wrapUnions ? { wrapUnions: true, typeHook: longHook } : { typeHook: longHook } },
  );
}

async function typeOf(registry: SchemaRegistry, id: number): Promise<AvroType> {
  try {
    return (await registry.getSchema(id)) as unknown as AvroType;
  } catch (err) {
    if (isNotFound(err)) throw new UnknownSchemaError(id);
    throw err;
  }
}

/** The registry as the Avro record codec's schema source (wrapped unions). */
export class ConfluentSchemaSource implements AvroSchemaSource {
  private readonly registry: SchemaRegistry;

  constructor(options: SchemaRegistryOptions) {
    this.registry = client(options, true);
  }

  async register(subject: string, schema: string): Promise<number> {
    const { id } = await this.registry.register({ type: SchemaType.AVRO, schema }, { subject });
    return id;
  }

  typeOf(id: number): Promise<AvroType> {
    return typeOf(this.registry, id);
  }
}

/** Writer schemas of Avro input notifications, by id (plain, unwrapped unions). */
export class NotificationSchemas {
  private readonly registry: SchemaRegistry;

  constructor(options: SchemaRegistryOptions) {
    this.registry = client(options, false);
  }

  /** @throws UnknownSchemaError when the registry has no schema `id`. */
  typeOf(id: number): Promise<AvroType> {
    return typeOf(this.registry, id);
  }
}
