/**
 * The record formats of winchester's internal topics (docs/topics.md): what the router writes to the
 * stream-events topic (one matched event per trigger, or a time tick) and what the stream stage writes to
 * the batches topic (a fired or expired stream with its events). JSON text, typed so that an int stays an
 * int, a float a float and a datetime a datetime (microseconds) across the hop.
 *
 * Format 2 (written): every value carries its type explicitly (events in the typed form of
 * `src/model/event-json.ts`, distinguishing values as `[name, tag, value]` entries, instants as integer
 * microseconds), so the native `JSON.parse` reads a record completely and exactly. Format 1 (read only,
 * for records still in a topic or an outbox row at an upgrade): events in the flat event JSON, read with
 * the lossless parser, distinguishing values as the string entries of a stream key, instants as ISO text.
 *
 * Pure: no kafkajs here; the workers hand these strings to the producer.
 */
import { InputError } from '../errors.js';
import type { Event } from '../model/event.js';
import {
  eventFromLossless,
  eventFromTyped,
  eventToTypedJson,
  floatJson,
  instantJson,
  instantOfTyped,
  JsonNumber,
  JsonSyntaxError,
  type LosslessJson,
  parseJsonFast,
} from '../model/event-json.js';
import { type Instant, parseDatetime } from '../timex/instant.js';
import { jsonString, parseKey } from '../triggers/key.js';
import type { DistinguishingValue, DistinguishingValues } from '../triggers/types.js';

/** Format version written in every record (`"v":2`); a reader refuses versions it does not know. */
export const RECORD_VERSION = 2;
/** The previous format, still read (records written before an upgrade), never written. */
export const LEGACY_RECORD_VERSION = 1;

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

/** The JSON of one distinguishing value's `tag,value…` (floats JSON cannot carry as their key text). */
function distinguishingValueJson(v: DistinguishingValue): string {
  switch (v.type) {
    case 'text':
      return `"t",${jsonString(v.value)}`;
    case 'int':
      return `"i",${v.value === 0 ? '0' : String(v.value)}`;
    case 'float':
      return Number.isFinite(v.value) ? `"f",${floatJson(v.value)}` : `"f","${v.value}"`;
    case 'datetime':
      return `"d",${instantJson(v.value)}`;
    case 'range':
      return `"r",${instantJson(v.begin)},${instantJson(v.end)}`;
  }
}

/** The distinguishing values as a JSON list of `[name, tag, value…]` entries, in their own order. */
function distinguishingJson(values: DistinguishingValues): string {
  let out = '[';
  const names = Object.keys(values);
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (i > 0) out += ',';
    out += `[${jsonString(name)},${distinguishingValueJson(values[name] as DistinguishingValue)}]`;
  }
  return `${out}]`;
}

/**
 * The head of a stream-events record value: everything before the watermark and the event, which is
 * the same for every event of one stream of one trigger (so a caller may compute it once per stream).
 * `head + streamEventTail(…)` is exactly {@link encodeStreamEvent}'s text.
 */
export function streamEventHead(trigger: string, key: string, distinguishing: DistinguishingValues): string {
  return (
    `{"v":${RECORD_VERSION},"type":"event","trigger":${jsonString(trigger)},"key":${jsonString(key)},` +
    `"distinguishing":${distinguishingJson(distinguishing)}`
  );
}

/**
 * The rest of a stream-events record value after {@link streamEventHead}: the watermark (when there is
 * one) and the event, given as its `eventToTypedJson` text (computed once per event, whatever the number
 * of triggers it matched).
 */
export function streamEventTail(eventJson: string, watermark: Instant | undefined): string {
  return watermark === undefined
    ? `,"event":${eventJson}}`
    : `,"watermark":${instantJson(watermark)},"event":${eventJson}}`;
}

/**
 * The value of a stream-events record for one matched event. The event comes last, so the fields a
 * reader looks at first are at the head of the text.
 */
export function encodeStreamEvent(r: Omit<StreamEventRecord, 'type'>): string {
  return (
    streamEventHead(r.trigger, r.key, r.distinguishing) +
    streamEventTail(eventToTypedJson(r.event), r.watermark)
  );
}

/** The value of a tick record. */
export function encodeTick(time: Instant): string {
  return `{"v":${RECORD_VERSION},"type":"tick","time":${instantJson(time)}}`;
}

// ---- decoding -------------------------------------------------------------------------------

type JsonObject = Record<string, unknown>;

/**
 * A record value parsed by the native `JSON.parse`, with the version it says it is in (only
 * {@link RECORD_VERSION} and {@link LEGACY_RECORD_VERSION} are accepted).
 */
function parseRecord(text: string, what: string): { obj: JsonObject; version: 1 | 2 } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${what}: invalid JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InputError(`${what}: expected a JSON object`);
  }
  const obj = v as JsonObject;
  if (obj.v === RECORD_VERSION) return { obj, version: RECORD_VERSION };
  if (obj.v === LEGACY_RECORD_VERSION) return { obj, version: LEGACY_RECORD_VERSION };
  throw new InputError(`${what}: unsupported format version ${describe(obj.v)}`);
}

function describe(v: unknown): string {
  if (v === undefined) return '(none)';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

function typedStr(obj: JsonObject, field: string, what: string): string {
  const v = obj[field];
  if (typeof v !== 'string') throw new InputError(`${what}: '${field}' must be a string`);
  return v;
}

function safeInteger(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new InputError(`${what} must be an integer, got ${describe(v)}`);
  }
  return v === 0 ? 0 : v;
}

/** Non-finite floats, which JSON numbers cannot carry, are written as their key text. */
function nonFinite(v: string): number | undefined {
  if (v === 'NaN') return Number.NaN;
  if (v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
  return undefined;
}

function typedDistinguishingValue(entry: readonly unknown[], what: string): DistinguishingValue {
  const tag = entry[1];
  const expect = (n: number) => {
    if (entry.length !== n) {
      throw new InputError(`${what}: a distinguishing entry of type ${tag} has ${n - 2} value(s)`);
    }
  };
  const v = entry[2];
  switch (tag) {
    case 't':
      expect(3);
      if (typeof v !== 'string')
        throw new InputError(`${what}: a text distinguishing value must be a string`);
      return { type: 'text', value: v };
    case 'i':
      expect(3);
      return { type: 'int', value: safeInteger(v, `${what}: an int distinguishing value`) };
    case 'f': {
      expect(3);
      const n = typeof v === 'string' ? nonFinite(v) : v;
      if (typeof n !== 'number')
        throw new InputError(`${what}: a float distinguishing value must be a number`);
      return { type: 'float', value: n };
    }
    case 'd':
      expect(3);
      return { type: 'datetime', value: safeInteger(v, `${what}: a datetime distinguishing value`) };
    case 'r':
      expect(4);
      return {
        type: 'range',
        begin: safeInteger(v, `${what}: a range's begin`),
        end: safeInteger(entry[3], `${what}: a range's end`),
      };
    default:
      throw new InputError(`${what}: unknown distinguishing value type ${describe(tag)}`);
  }
}

function typedDistinguishing(v: unknown, what: string): DistinguishingValues {
  if (!Array.isArray(v)) throw new InputError(`${what}: 'distinguishing' must be a list`);
  const out: Record<string, DistinguishingValue> = {};
  for (let i = 0; i < v.length; i++) {
    const entry: unknown = v[i];
    if (!Array.isArray(entry) || typeof entry[0] !== 'string') {
      throw new InputError(`${what}: a distinguishing entry must be a list [name, type, value…]`);
    }
    const name = entry[0];
    const value = typedDistinguishingValue(entry, what);
    // Plain assignment would set the prototype of `out` for a trait called `__proto__`.
    if (name === '__proto__') {
      Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
    } else out[name] = value;
  }
  return out;
}

function streamRecordOf(obj: JsonObject, what: string): StreamTopicRecord {
  const type = obj.type;
  if (type === 'tick') return { type: 'tick', time: instantOfTyped(obj.time, `${what}: 'time'`) };
  if (type !== 'event') throw new InputError(`${what}: unknown type ${describe(type)}`);
  const e = obj.event;
  if (e === undefined) throw new InputError(`${what}: 'event' is missing`);
  const trigger = typedStr(obj, 'trigger', what);
  const key = typedStr(obj, 'key', what);
  const distinguishing = typedDistinguishing(obj.distinguishing, what);
  const event = eventFromTyped(e);
  const w = obj.watermark;
  // Two literals rather than a spread: every decoded record of a kind has one shape.
  if (w === undefined) return { type: 'event', trigger, key, distinguishing, event };
  return {
    type: 'event',
    trigger,
    key,
    distinguishing,
    event,
    watermark: instantOfTyped(w, `${what}: 'watermark'`),
  };
}

/**
 * Reads a stream-events record value, in the current format or the previous one.
 * @throws InputError saying what is wrong when it is not one.
 */
export function decodeStreamRecord(text: string): StreamTopicRecord {
  const what = 'stream-events record';
  const { obj, version } = parseRecord(text, what);
  return version === RECORD_VERSION ? streamRecordOf(obj, what) : legacyStreamRecord(text, what);
}

// ---- the previous format (read only) ----------------------------------------------------------

type LosslessObject = { [key: string]: LosslessJson };

/** Parses a format-1 record again, keeping every number's literal (`1.0` is a float there). */
function parseLegacy(text: string, what: string): LosslessObject {
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
  if (!(v.v instanceof JsonNumber) || v.v.text !== String(LEGACY_RECORD_VERSION)) {
    throw new InputError(
      `${what}: unsupported format version ${v.v instanceof JsonNumber ? v.v.text : '(none)'}`,
    );
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

function legacyStreamRecord(text: string, what: string): StreamTopicRecord {
  const obj = parseLegacy(text, what);
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

/**
 * The value of a batches record: the stream's fields, then its events in the typed form (spliced as
 * text, one `eventToTypedJson` each).
 */
export function encodeBatch(b: BatchRecord): string {
  let events = '';
  for (let i = 0; i < b.events.length; i++) {
    if (i > 0) events += ',';
    events += eventToTypedJson(b.events[i] as Event);
  }
  return (
    `{"v":${RECORD_VERSION},"batch_id":${jsonString(b.batchId)},"stream_id":${jsonString(b.streamId)},` +
    `"trigger":${jsonString(b.trigger)},"kind":"${b.kind}",` +
    `"pipeline":${b.pipeline === null ? 'null' : jsonString(b.pipeline)},` +
    `"distinguishing":${distinguishingJson(b.distinguishing)},` +
    `"first_event":${instantJson(b.first)},"last_event":${instantJson(b.last)},` +
    `"events":[${events}]}`
  );
}

/**
 * Reads a batches record value (inline form), in the current format or the previous one.
 * @throws InputError saying what is wrong when it is not one.
 */
export function decodeBatch(text: string): BatchRecord {
  const what = 'batch record';
  const { obj, version } = parseRecord(text, what);
  return version === RECORD_VERSION ? batchOf(obj, what) : batchFromObject(parseLegacy(text, what));
}

function kindOf(v: unknown, what: string): 'fire' | 'expire' {
  if (v !== 'fire' && v !== 'expire') throw new InputError(`${what}: 'kind' must be fire or expire`);
  return v;
}

function pipelineOf(v: unknown, what: string): string | null {
  if (v !== null && typeof v !== 'string')
    throw new InputError(`${what}: 'pipeline' must be a string or null`);
  return v;
}

function checkEventList(v: unknown, what: string): asserts v is unknown[] {
  if (!Array.isArray(v)) throw new InputError(`${what}: 'events' must be a list`);
}

function batchOf(obj: JsonObject, what: string): BatchRecord {
  const kind = kindOf(obj.kind, what);
  const pipeline = pipelineOf(obj.pipeline, what);
  const list = obj.events;
  checkEventList(list, what);
  const events: Event[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) events[i] = eventFromTyped(list[i]);
  return {
    batchId: typedStr(obj, 'batch_id', what),
    streamId: typedStr(obj, 'stream_id', what),
    trigger: typedStr(obj, 'trigger', what),
    kind,
    pipeline,
    distinguishing: typedDistinguishing(obj.distinguishing, what),
    first: instantOfTyped(obj.first_event, `${what}: 'first_event'`),
    last: instantOfTyped(obj.last_event, `${what}: 'last_event'`),
    events,
  };
}

function batchFromObject(obj: LosslessObject): BatchRecord {
  const what = 'batch record';
  const kind = kindOf(obj.kind, what);
  const pipeline = pipelineOf(obj.pipeline, what);
  const events = obj.events;
  checkEventList(events, what);
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
  const { obj, version } = parseRecord(text, what);
  // A reference carries no typed values: both formats read it from the native parse.
  if (obj.ref === undefined) {
    return {
      type: 'inline',
      batch: version === RECORD_VERSION ? batchOf(obj, what) : batchFromObject(parseLegacy(text, what)),
    };
  }
  if (obj.ref !== 'outbox') throw new InputError(`${what}: unknown 'ref' ${describe(obj.ref)}`);
  const kind = kindOf(obj.kind, what);
  const bytes = obj.bytes;
  return {
    type: 'reference',
    reference: {
      batchId: typedStr(obj, 'batch_id', what),
      streamId: typedStr(obj, 'stream_id', what),
      kind,
      bytes: typeof bytes === 'number' && Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : 0,
    },
  };
}
