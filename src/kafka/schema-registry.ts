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
import { WinchesterError } from '../errors.js';
import { AvroCodec, type AvroSchemaSource, type AvroType } from '../serde/avro-codec.js';
import { UnknownSchemaError } from '../serde/codec.js';
import { AvroNotificationDecoder } from '../serde/notifications.js';

/** How to reach the registry (`schema_registry` in the configuration). */
export interface SchemaRegistryOptions {
  /** Base URL of the Confluent-compatible API, e.g. `http://registry:8081` or `…/apis/ccompat/v7`. */
  readonly url: string;
  /** Basic-auth credentials, when the registry asks for them. */
  readonly auth?: { readonly username: string; readonly password: string };
  /** Retries of a request answered with a 5xx status before giving up (default 3). */
  readonly retries?: number;
  /** Milliseconds one request may take (default 10 000). */
  readonly timeoutMs?: number;
  /**
   * Told of every registry call that failed (after the client's retries): unreachable, timed out, 5xx,
   * or refused. Not told of an id the registry does not have (404): that is the message's fault, and
   * decoding it dead-letters it as `unknown_schema`. The workers count these in
   * `winchester_schema_registry_errors_total{operation}`.
   */
  readonly onError?: (operation: RegistryOperation) => void;
}

/** What a worker asks of the registry: register a writer schema, or fetch the schema of an id. */
export type RegistryOperation = 'register' | 'fetch_schema';

/**
 * The registry could not be reached, did not answer in time, or answered 5xx: retrying later may help.
 * At worker start it exits 1; later, the batch in hand is retried as in a Kafka or Postgres outage.
 */
export class SchemaRegistryUnavailableError extends WinchesterError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, retriable: true });
  }
}

/** The registry answered and refused (bad credentials, an incompatible or invalid schema…). */
export class SchemaRegistryRequestError extends WinchesterError {}

/** The URL without credentials (`http://user:pw@host` → `http://host`), for messages. */
export function redactRegistryUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparsable URL)';
  }
}

// What the client's failures carry: mappersmith reports a failed connection or a timeout as a
// response of status 400 whose body is the socket error's message (no registry error_code).
interface ClientFailure {
  readonly status?: unknown;
  readonly message?: unknown;
  readonly name?: unknown;
}

const NETWORK_FAILURE =
  /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EPIPE|socket hang up|Timeout \(\d+ms\)/;

/**
 * The client's error as one of ours (never UnknownSchemaError: the caller decides what a 404 means).
 * `what` says what was being done ("registering subject x-value").
 */
export function classifyRegistryError(error: unknown, url: string, what: string): WinchesterError {
  if (error instanceof WinchesterError) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as ClientFailure;
  const status = typeof e.status === 'number' ? e.status : undefined;
  // The client prefixes its messages with its client id ("Confluent_Schema_Registry - …").
  const detail = String(e.message ?? error).replace(/^Confluent_Schema_Registry - /, '');
  const where = `schema registry at ${redactRegistryUrl(url)}`;
  if (status === undefined && e.name === 'ConfluentSchemaRegistryCompatibilityError') {
    return new SchemaRegistryRequestError(
      `${what}: the ${where} has a compatibility level other than BACKWARD for this subject (${detail}); ` +
        'set it to BACKWARD or delete the subject-level setting',
      { cause: error },
    );
  }
  if (status === undefined || status >= 500 || (status === 400 && NETWORK_FAILURE.test(detail))) {
    return new SchemaRegistryUnavailableError(`${what}: cannot use the ${where}: ${detail}`, {
      cause: error,
    });
  }
  if (status === 401 || status === 403) {
    return new SchemaRegistryRequestError(
      `${what}: the ${where} refused the credentials (HTTP ${status}): set schema_registry.username and ` +
        'schema_registry.password (or WINCHESTER_SCHEMA_REGISTRY_USERNAME / _PASSWORD)',
      { cause: error },
    );
  }
  return new SchemaRegistryRequestError(`${what}: the ${where} answered HTTP ${status}: ${detail}`, {
    cause: error,
  });
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
  const timeoutMs = options.timeoutMs ?? 10_000;
  // mappersmith's timeout middleware, restated here so that mappersmith (a dependency of the client,
  // not ours) is not imported: it sets the request timeout the HTTP gateway enforces.
  const timeout = () => ({
    async prepareRequest(
      next: () => Promise<{ timeout(): number | undefined; enhance(o: object): unknown }>,
    ) {
      const request = await next();
      return request.timeout() ? request : request.enhance({ timeout: timeoutMs });
    },
  });
  return new SchemaRegistry(
    {
      host: options.url.replace(/\/+$/, ''),
      retry: { retries: options.retries ?? 3 },
      ...(options.auth === undefined ? {} : { auth: { ...options.auth } }),
      // biome-ignore lint/suspicious/noExplicitAny: mappersmith's Middleware type is not ours to import.
      middlewares: [timeout as any],
    },
    { [SchemaType.AVRO]: wrapUnions ? { wrapUnions: true, typeHook: longHook } : { typeHook: longHook } },
  );
}

async function typeOf(
  registry: SchemaRegistry,
  options: SchemaRegistryOptions,
  id: number,
): Promise<AvroType> {
  try {
    return (await registry.getSchema(id)) as unknown as AvroType;
  } catch (err) {
    if (isNotFound(err)) throw new UnknownSchemaError(id);
    options.onError?.('fetch_schema');
    throw classifyRegistryError(err, options.url, `fetching schema id ${id}`);
  }
}

/** The registry as the Avro record codec's schema source (wrapped unions). */
export class ConfluentSchemaSource implements AvroSchemaSource {
  private readonly registry: SchemaRegistry;

  constructor(private readonly options: SchemaRegistryOptions) {
    this.registry = client(options, true);
  }

  async register(subject: string, schema: string): Promise<number> {
    try {
      const { id } = await this.registry.register({ type: SchemaType.AVRO, schema }, { subject });
      return id;
    } catch (err) {
      this.options.onError?.('register');
      throw classifyRegistryError(err, this.options.url, `registering subject ${subject}`);
    }
  }

  typeOf(id: number): Promise<AvroType> {
    return typeOf(this.registry, this.options, id);
  }
}

/** Writer schemas of Avro input notifications, by id (plain, unwrapped unions). */
export class NotificationSchemas {
  private readonly registry: SchemaRegistry;

  constructor(private readonly options: SchemaRegistryOptions) {
    this.registry = client(options, false);
  }

  /** @throws UnknownSchemaError when the registry has no schema `id`; SchemaRegistryUnavailableError. */
  typeOf(id: number): Promise<AvroType> {
    return typeOf(this.registry, this.options, id);
  }
}

/** What a worker takes to speak Avro: the record codec and the notification decoder. */
export interface AvroWiring {
  readonly codec: AvroCodec;
  readonly avroNotifications: AvroNotificationDecoder;
}

/**
 * Connects a worker to the registry: registers both record schemas under their TopicNameStrategy
 * subjects (`<stream_events>-value`, `<batches>-value`) and resolves their types, so a worker that
 * starts can encode and decode. Rejects with {@link SchemaRegistryUnavailableError} when the registry
 * cannot be reached, {@link SchemaRegistryRequestError} when it refuses.
 */
export async function connectAvro(
  options: SchemaRegistryOptions,
  topics: { readonly streamEventsTopic: string; readonly batchesTopic: string },
): Promise<AvroWiring> {
  const codec = await AvroCodec.create(new ConfluentSchemaSource(options), topics);
  return { codec, avroNotifications: new AvroNotificationDecoder(new NotificationSchemas(options)) };
}
