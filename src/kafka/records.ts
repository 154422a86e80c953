/**
 * The record formats of winchester's internal topics (docs/topics.md): what the router writes to the
 * stream-events topic (one matched event per trigger, or a time tick) and what the stream stage writes to
 * the batches topic (a fired or expired stream with its events). JSON text, typed so that an int stays an
 * int, a float a float and a datetime a datetime (microseconds) across the hop: events are carried in the
 * flat event JSON of `src/model/event-json.ts` (read back with the lossless parser), distinguishing values
 * as the typed entries of a stream key (`src/triggers/key.ts`).
 *
 * Pure: no kafkajs here; the workers hand these strings to the producer.
 */
import { InputError } from '../errors.js';
import type { Event } from '../model/event.js';
import {
  eventFromLossless,
  eventToJson,
  JsonNumber,
  JsonSyntaxError,
  type LosslessJson,
  parseJsonFast,
} from '../model/event-json.js';
import { formatInstant, type Instant, parseDatetime } from '../timex/instant.js';
import { jsonString, keyEntry, parseKey } from '../triggers/key.js';
import type { DistinguishingValue, DistinguishingValues } from '../triggers/types.js';

/** Format version written in every record (`"v":1`); a reader refuses versions it does not know. */
export const RECORD_VERSION = 1;

/** One event matched by one trigger: a stream-events record. */
export interface StreamEventRecord {
  readonly type: 'event';
  readonly trigger: string;
  /** The canonical stream key within the trigger (TriggerMatch.key). */
  readonly key: string;
  /** The distinguishing values, in distinguished_by order. */
  readonly distinguishing: DistinguishingValues;
  readonly event: Event;
  /**
   * The router's event time when it routed this event (the highest event timestamp it had routed,
   * this one included), so that with `clock.mode: event` every partition's clock advances with the
   * router's view, exactly as replay's single clock does. Absent in records of pipelines' new events.
   */
  readonly watermark?: Instant;
}

/** "Time has reached `time`": lets a partition without events still fire and expire streams. */
export interface TickRecord {
  readonly type: 'tick';
  readonly time: Instant;
}

/** Anything on the stream-events topic. */
export type StreamTopicRecord = StreamEventRecord | TickRecord;

/**
 * The Kafka key of a stream-events record: the trigger name (as a JSON string, so no trigger name can
 * run into the key) followed by the canonical stream key. Every event of a stream has the same key, so
 * Kafka's partitioner puts the whole stream on one partition for its life.
 */
export function streamRecordKey(trigger: string, key: string): string {
  return `${jsonString(trigger)}${key}`;
}

/** The distinguishing values as a JSON array of typed key entries, in their own order. */
function distinguishingJson(values: DistinguishingValues): string {
  let out = '[';
  const names = Object.keys(values);
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (i > 0) out += ',';
    out += keyEntry(name, values[name] as DistinguishingValue);
  }
  return `${out}]`;
}

/** The value of a stream-events record for one matched event. */
export function encodeStreamEvent(r: Omit<StreamEventRecord, 'type'>): string {
  return (
    `{"v":${RECORD_VERSION},"type":"event","trigger":${jsonString(r.trigger)},"key":${jsonString(r.key)},` +
    `"distinguishing":${distinguishingJson(r.distinguishing)},"event":${eventToJson(r.event)}` +
    `${r.watermark === undefined ? '' : `,"watermark":"${formatInstant(r.watermark)}"`}}`
  );
}

/** The value of a tick record. */
export function encodeTick(time: Instant): string {
  return `{"v":${RECORD_VERSION},"type":"tick","time":"${formatInstant(time)}"}`;
}

// ---- decoding -------------------------------------------------------------------------------

type LosslessObject = { [key: string]: LosslessJson };

function parseObject(text: string, what: string): LosslessObject {
  let v: LosslessJson;
  try {
    v = parseJsonFast(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new InputError(`${what}: invalid JSON: ${err.message}`);
    throw err;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof JsonNumber) {
    throw new InputError(`${what}: expected a JSON object`);
  }
  if (!(v.v instanceof JsonNumber) || v.v.text !== String(RECORD_VERSION)) {
    throw new InputError(`${what}: unsupported format version ${JSON.stringify(String(v.v))}`);
  }
  return v;
}

function str(obj: LosslessObject, field: string, what: string): string {
  const v = obj[field];
  if (typeof v !== 'string') throw new InputError(`${what}: '${field}' must be a string`);
  return v;
}

function instant(obj: LosslessObject, field: string, what: string): Instant {
  const v = str(obj, field, what);
  try {
    return parseDatetime(v);
  } catch (err) {
    throw new InputError(`${what}: '${field}': ${(err as Error).message}`);
  }
}

function distinguishingOf(obj: LosslessObject, what: string): DistinguishingValues {
  const v = obj.distinguishing;
  if (!Array.isArray(v)) throw new InputError(`${what}: 'distinguishing' must be a list`);
  for (const entry of v) {
    if (!Array.isArray(entry) || !entry.every((x) => typeof x === 'string')) {
      throw new InputError(`${what}: a distinguishing entry must be a list of strings`);
    }
  }
  // Entries of strings only: JSON.stringify gives back the key-entry text parseKey reads (in order).
  return parseKey(JSON.stringify(v));
}

/**
 * Reads a stream-events record value.
 * @throws InputError saying what is wrong when it is not one.
 */
export function decodeStreamRecord(text: string): StreamTopicRecord {
  const what = 'stream-events record';
  const obj = parseObject(text, what);
  const type = obj.type;
  if (type === 'tick') return { type: 'tick', time: instant(obj, 'time', what) };
  if (type !== 'event') throw new InputError(`${what}: unknown type ${JSON.stringify(String(type))}`);
  const event = obj.event;
  if (event === undefined) throw new InputError(`${what}: 'event' is missing`);
  const record = {
    type: 'event' as const,
    trigger: str(obj, 'trigger', what),
    key: str(obj, 'key', what),
    distinguishing: distinguishingOf(obj, what),
    event: eventFromLossless(event),
  };
  return obj.watermark === undefined ? record : { ...record, watermark: instant(obj, 'watermark', what) };
}

// ---- batches --------------------------------------------------------------------------------

/** A fired or expired stream, as published to the batches topic for the pipeline workers. */
export interface BatchRecord {
  /** Deterministic ({@link batchIdOf}): the same stream closing gives the same id on every republish. */
  readonly batchId: string;
  readonly streamId: string;
  readonly trigger: string;
  readonly kind: 'fire' | 'expire';
  /** The pipeline to run; null when the trigger has none for this kind (nothing is published then). */
  readonly pipeline: string | null;
  /** In distinguished_by order. */
  readonly distinguishing: DistinguishingValues;
  readonly first: Instant;
  readonly last: Instant;
  /** Sorted by timestamp (ties in arrival order). */
  readonly events: readonly Event[];
}

/** The batch id of a stream's close: stream ids are unique per deployment and a stream closes once. */
export function batchIdOf(streamId: string, kind: 'fire' | 'expire'): string {
  return `${streamId}:${kind}`;
}

/** The value of a batches record. Events are spliced as flat JSON text so floats keep their `.0`. */
export function encodeBatch(b: BatchRecord): string {
  let events = '';
  for (let i = 0; i < b.events.length; i++) {
    if (i > 0) events += ',';
    events += eventToJson(b.events[i] as Event);
  }
  return (
    `{"v":${RECORD_VERSION},"batch_id":${jsonString(b.batchId)},"stream_id":${jsonString(b.streamId)},` +
    `"trigger":${jsonString(b.trigger)},"kind":"${b.kind}",` +
    `"pipeline":${b.pipeline === null ? 'null' : jsonString(b.pipeline)},` +
    `"distinguishing":${distinguishingJson(b.distinguishing)},` +
    `"first_event":"${formatInstant(b.first)}","last_event":"${formatInstant(b.last)}",` +
    `"events":[${events}]}`
  );
}

/**
 * Reads a batches record value.
 * @throws InputError saying what is wrong when it is not one.
 */
export function decodeBatch(text: string): BatchRecord {
  return batchFromObject(parseObject(text, 'batch record'));
}

function batchFromObject(obj: LosslessObject): BatchRecord {
  const what = 'batch record';
  const kind = obj.kind;
  if (kind !== 'fire' && kind !== 'expire') throw new InputError(`${what}: 'kind' must be fire or expire`);
  const pipeline = obj.pipeline;
  if (pipeline !== null && typeof pipeline !== 'string') {
    throw new InputError(`${what}: 'pipeline' must be a string or null`);
  }
  const events = obj.events;
  if (!Array.isArray(events)) throw new InputError(`${what}: 'events' must be a list`);
  return {
    batchId: str(obj, 'batch_id', what),
    streamId: str(obj, 'stream_id', what),
    trigger: str(obj, 'trigger', what),
    kind,
    pipeline,
    distinguishing: distinguishingOf(obj, what),
    first: instant(obj, 'first_event', what),
    last: instant(obj, 'last_event', what),
    events: events.map((e) => eventFromLossless(e)),
  };
}

// ---- batches carried by reference (claim check) ------------------------------------------------

/**
 * Largest batch value published inline. A bigger one is published as a {@link BatchReference} and the
 * pipeline worker reads the full value from the outbox row in Postgres (the claim check), so a stream
 * with many events is never dropped for exceeding the broker's 1 MiB message limit. Kept well below the
 * limit so the record's key, headers and framing still fit.
 */
export const MAX_INLINE_BATCH_BYTES = 900 * 1024;

/** A batches record that names an outbox row instead of carrying the batch. */
export interface BatchReference {
  readonly batchId: string;
  readonly streamId: string;
  readonly kind: 'fire' | 'expire';
  /** Size in bytes of the batch value kept in the outbox (for logs and metrics). */
  readonly bytes: number;
}

/** A batches record, either form. */
export type BatchMessage =
  | { readonly type: 'inline'; readonly batch: BatchRecord }
  | { readonly type: 'reference'; readonly reference: BatchReference };

/** The value of a batches record that refers to the outbox row of `batch_id` (`"ref":"outbox"`). */
export function encodeBatchReference(r: BatchReference): string {
  return (
    `{"v":${RECORD_VERSION},"batch_id":${jsonString(r.batchId)},"stream_id":${jsonString(r.streamId)},` +
    `"kind":"${r.kind}","ref":"outbox","bytes":${r.bytes}}`
  );
}

/**
 * The value to publish for an outbox payload: the payload itself, or a reference to it when it is larger
 * than `maxInlineBytes`.
 */
export function batchValueFor(
  row: {
    readonly batchId: string;
    readonly streamId: string;
    readonly kind: 'fire' | 'expire';
    readonly payload: string;
  },
  maxInlineBytes = MAX_INLINE_BATCH_BYTES,
): string {
  const bytes = Buffer.byteLength(row.payload, 'utf8');
  if (bytes <= maxInlineBytes) return row.payload;
  return encodeBatchReference({ batchId: row.batchId, streamId: row.streamId, kind: row.kind, bytes });
}

/**
 * Reads a batches record value of either form; a reference is resolved by the caller (the outbox row
 * of its batch id holds the inline value).
 * @throws InputError saying what is wrong when it is neither.
 */
export function decodeBatchMessage(text: string): BatchMessage {
  const what = 'batch record';
  const obj = parseObject(text, what);
  if (obj.ref === undefined) return { type: 'inline', batch: batchFromObject(obj) };
  if (obj.ref !== 'outbox') throw new InputError(`${what}: unknown 'ref' ${JSON.stringify(String(obj.ref))}`);
  const kind = obj.kind;
  if (kind !== 'fire' && kind !== 'expire') throw new InputError(`${what}: 'kind' must be fire or expire`);
  const bytes = obj.bytes;
  return {
    type: 'reference',
    reference: {
      batchId: str(obj, 'batch_id', what),
      streamId: str(obj, 'stream_id', what),
      kind,
      bytes: bytes instanceof JsonNumber ? bytes.value : 0,
    },
  };
}
