/**
 * Avro input notifications beside JSON ones (DESIGN.md §Serialization): a value that starts with the
 * Confluent magic byte 0x00 and is longer than the 5-byte header is Avro written with the schema its
 * id names; anything else is JSON text for the distiller as before. A decoded Avro notification is a
 * plain JS object that goes down the same distiller path as parsed JSON (`Distiller.distill`).
 */
import type { AvroType } from './avro-codec.js';
import { CONFLUENT_HEADER_BYTES, framedSchemaId, isConfluentFramed, UnknownSchemaError } from './codec.js';

/** Where the writer schema of an id comes from (src/kafka/schema-registry.ts NotificationSchemas). */
export interface NotificationSchemaSource {
  /** @throws UnknownSchemaError when the registry has no schema `id`. */
  typeOf(id: number): Promise<AvroType>;
}

/** Why an Avro notification could not be decoded: a dead-letter reason. */
export type AvroNotificationFailure = 'unknown_schema' | 'invalid_avro';

export type AvroNotificationResult =
  | { readonly ok: true; readonly notification: unknown }
  | { readonly ok: false; readonly reason: AvroNotificationFailure; readonly detail: string };

/** Whether a notification value is Confluent-framed Avro rather than JSON text. */
export const isAvroNotification = isConfluentFramed;

/**
 * Avro data as the distiller reads JSON: `bytes`/`fixed` become text (UTF-8) since JSON has no bytes,
 * and wrapped or plain values are otherwise left as avsc gives them (records are plain objects).
 */
function jsonLike(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (Array.isArray(v)) return v.map(jsonLike);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) out[k] = jsonLike((v as Record<string, unknown>)[k]);
  return out;
}

/**
 * Decodes framed Avro notifications. Schemas are fetched once per id in {@link prepare} (per consumed
 * batch); {@link decode} is synchronous and never throws.
 */
export class AvroNotificationDecoder {
  private readonly types = new Map<number, AvroType>();
  private readonly unknown = new Set<number>();

  constructor(private readonly source: NotificationSchemaSource) {}

  /**
   * Fetches the writer schemas of the framed values among `values`. An id the registry does not know
   * is remembered as unknown (its messages are dead-lettered); other registry failures reject, so the
   * caller retries the batch rather than dead-letters good notifications.
   */
  async prepare(values: readonly (Buffer | null)[]): Promise<void> {
    for (const v of values) {
      if (v === null || !isConfluentFramed(v)) continue;
      const id = framedSchemaId(v);
      if (this.types.has(id) || this.unknown.has(id)) continue;
      try {
        this.types.set(id, await this.source.typeOf(id));
      } catch (err) {
        if (!(err instanceof UnknownSchemaError)) throw err;
        this.unknown.add(id);
      }
    }
  }

  /** Decodes one framed value (prepared); the failure is a dead-letter reason. */
  decode(value: Buffer): AvroNotificationResult {
    const id = framedSchemaId(value);
    const type = this.types.get(id);
    if (type === undefined) {
      return { ok: false, reason: 'unknown_schema', detail: `schema id ${id} is not in the registry` };
    }
    try {
      return { ok: true, notification: jsonLike(type.fromBuffer(value.subarray(CONFLUENT_HEADER_BYTES))) };
    } catch (err) {
      return { ok: false, reason: 'invalid_avro', detail: `schema id ${id}: ${(err as Error).message}` };
    }
  }
}
