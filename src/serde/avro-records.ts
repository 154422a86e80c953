/**
 * The mapping between winchester's records and the Avro data of `schemas/*.avsc`, in the shape avsc
 * reads and writes with wrapped unions (`{ 'winchester.v1.IntValue': { value: 3 } }`): every typed
 * value is a union of one-field records, so that an int stays an int, a float stays a float (1.0
 * included) and a datetime stays a microsecond long, which a union of bare primitives cannot do (an
 * int and a timestamp-micros are both Avro longs). Pure: no registry and no I/O here.
 */
import { InputError } from '../errors.js';
import type {
  BatchMessage,
  BatchRecord,
  BatchReference,
  StreamEventRecord,
  StreamTopicRecord,
} from '../kafka/records.js';
import type { Event, TraitValue } from '../model/event.js';
import type { Instant } from '../timex/instant.js';
import type { DistinguishingValue, DistinguishingValues } from '../triggers/types.js';

const NS = 'winchester.v1.';
const TEXT = `${NS}TextValue`;
const INT = `${NS}IntValue`;
const FLOAT = `${NS}FloatValue`;
const DATETIME = `${NS}DatetimeValue`;
const RANGE = `${NS}RangeValue`;
const STREAM_EVENT = `${NS}StreamEvent`;
const TICK = `${NS}Tick`;
const BATCH = `${NS}Batch`;
const BATCH_REFERENCE = `${NS}BatchReference`;

type Wrapped = { readonly [branch: string]: unknown };
type AvroObject = { readonly [field: string]: unknown };

function wrapValue(v: DistinguishingValue): Wrapped {
  switch (v.type) {
    case 'text':
      return { [TEXT]: { value: v.value } };
    case 'int':
      return { [INT]: { value: v.value } };
    case 'float':
      return { [FLOAT]: { value: v.value } };
    case 'datetime':
      return { [DATETIME]: { value: v.value } };
    case 'range':
      return { [RANGE]: { begin: v.begin, end: v.end } };
  }
}

function unwrapValue(w: unknown, what: string): DistinguishingValue {
  const o = w as Wrapped;
  let b = o[TEXT] as AvroObject | undefined;
  if (b !== undefined) return { type: 'text', value: b.value as string };
  b = o[INT] as AvroObject | undefined;
  if (b !== undefined) return { type: 'int', value: b.value as number };
  b = o[FLOAT] as AvroObject | undefined;
  if (b !== undefined) return { type: 'float', value: b.value as number };
  b = o[DATETIME] as AvroObject | undefined;
  if (b !== undefined) return { type: 'datetime', value: b.value as Instant };
  b = o[RANGE] as AvroObject | undefined;
  if (b !== undefined) return { type: 'range', begin: b.begin as Instant, end: b.end as Instant };
  throw new InputError(`${what}: unknown value branch ${JSON.stringify(Object.keys(o)[0])}`);
}

function distinguishingToAvro(values: DistinguishingValues): AvroObject[] {
  const out: AvroObject[] = [];
  for (const name of Object.keys(values))
    out.push({ name, value: wrapValue(values[name] as DistinguishingValue) });
  return out;
}

function distinguishingFromAvro(entries: unknown, what: string): DistinguishingValues {
  // Prototype-less, like the JSON reader's: a distinguishing trait may be called `__proto__`.
  const out: Record<string, DistinguishingValue> = Object.create(null);
  for (const e of entries as AvroObject[]) out[e.name as string] = unwrapValue(e.value, what);
  return out;
}

/** An event as Avro data (`winchester.v1.Event`). */
export function eventToAvro(e: Event): AvroObject {
  const traits: AvroObject[] = [];
  for (const name of Object.keys(e.traits))
    traits.push({ name, value: wrapValue(e.traits[name] as TraitValue) });
  return { message_id: e.message_id, event_type: e.event_type, timestamp: e.timestamp, traits };
}

/** An event from Avro data. */
export function eventFromAvro(o: unknown, what: string): Event {
  const a = o as AvroObject;
  const traits: Record<string, TraitValue> = Object.create(null);
  for (const t of a.traits as AvroObject[]) {
    const v = unwrapValue(t.value, what);
    if (v.type === 'range') throw new InputError(`${what}: a trait cannot be a range`);
    traits[t.name as string] = v;
  }
  return {
    message_id: a.message_id as string,
    event_type: a.event_type as string,
    timestamp: a.timestamp as Instant,
    traits,
  };
}

/** A stream-events record as Avro data (`winchester.v1.StreamRecord`). */
export function streamEventToAvro(r: Omit<StreamEventRecord, 'type'>): AvroObject {
  return {
    body: {
      [STREAM_EVENT]: {
        trigger: r.trigger,
        key: r.key,
        distinguishing: distinguishingToAvro(r.distinguishing),
        event: eventToAvro(r.event),
        watermark: r.watermark === undefined ? null : { long: r.watermark },
      },
    },
  };
}

/** A tick record as Avro data. */
export function tickToAvro(time: Instant): AvroObject {
  return { body: { [TICK]: { time } } };
}

/** A stream-events record from Avro data. */
export function streamRecordFromAvro(o: unknown): StreamTopicRecord {
  const what = 'stream-events record';
  const body = (o as AvroObject).body as Wrapped;
  const tick = body[TICK] as AvroObject | undefined;
  if (tick !== undefined) return { type: 'tick', time: tick.time as Instant };
  const ev = body[STREAM_EVENT] as AvroObject | undefined;
  if (ev === undefined) throw new InputError(`${what}: unknown body ${JSON.stringify(Object.keys(body)[0])}`);
  const record = {
    type: 'event' as const,
    trigger: ev.trigger as string,
    key: ev.key as string,
    distinguishing: distinguishingFromAvro(ev.distinguishing, what),
    event: eventFromAvro(ev.event, what),
  };
  const watermark = ev.watermark as { long: Instant } | null;
  return watermark === null ? record : { ...record, watermark: watermark.long };
}

/** A batch as Avro data (`winchester.v1.BatchMessage`). */
export function batchToAvro(b: BatchRecord): AvroObject {
  return {
    body: {
      [BATCH]: {
        batch_id: b.batchId,
        stream_id: b.streamId,
        trigger: b.trigger,
        kind: b.kind,
        pipeline: b.pipeline === null ? null : { string: b.pipeline },
        distinguishing: distinguishingToAvro(b.distinguishing),
        first_event: b.first,
        last_event: b.last,
        events: b.events.map(eventToAvro),
      },
    },
  };
}

/** A batch reference (claim check) as Avro data. */
export function batchReferenceToAvro(r: BatchReference): AvroObject {
  return {
    body: { [BATCH_REFERENCE]: { batch_id: r.batchId, stream_id: r.streamId, kind: r.kind, bytes: r.bytes } },
  };
}

/** A batches record, either form, from Avro data. */
export function batchMessageFromAvro(o: unknown): BatchMessage {
  const what = 'batch record';
  const body = (o as AvroObject).body as Wrapped;
  const ref = body[BATCH_REFERENCE] as AvroObject | undefined;
  if (ref !== undefined) {
    return {
      type: 'reference',
      reference: {
        batchId: ref.batch_id as string,
        streamId: ref.stream_id as string,
        kind: ref.kind as 'fire' | 'expire',
        bytes: ref.bytes as number,
      },
    };
  }
  const b = body[BATCH] as AvroObject | undefined;
  if (b === undefined) throw new InputError(`${what}: unknown body ${JSON.stringify(Object.keys(body)[0])}`);
  const pipeline = b.pipeline as { string: string } | null;
  return {
    type: 'inline',
    batch: {
      batchId: b.batch_id as string,
      streamId: b.stream_id as string,
      trigger: b.trigger as string,
      kind: b.kind as 'fire' | 'expire',
      pipeline: pipeline === null ? null : pipeline.string,
      distinguishing: distinguishingFromAvro(b.distinguishing, what),
      first: b.first_event as Instant,
      last: b.last_event as Instant,
      events: (b.events as unknown[]).map((e) => eventFromAvro(e, what)),
    },
  };
}
