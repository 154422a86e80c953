/**
 * The schema registry for tests: a real one when SCHEMA_REGISTRY_URL names it (e.g. the Apicurio
 * Registry of `scripts/registry.sh up`), else the in-test stand-in of test/unit/serde/fake-registry.ts.
 * Either way the workers talk to it with the real `@kafkajs/confluent-schema-registry` client over HTTP.
 *
 * Also: Avro notifications as a producer with a fixed schema would write them. A notification's schema
 * is derived from its own JSON (objects with plain keys → records, others → maps; numbers → double, which
 * holds every integer notigen writes exactly), registered under a subject of its own, and the value is
 * framed in the Confluent wire format.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import avro from 'avsc';
import { ConfluentSchemaSource, NotificationSchemas } from '../../src/kafka/schema-registry.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';
import { frame } from '../../src/serde/codec.js';
import { AvroNotificationDecoder } from '../../src/serde/notifications.js';
import { type FakeRegistry, startFakeRegistry } from '../unit/serde/fake-registry.js';
import type { TestScope } from './integration.js';

export interface TestRegistry {
  readonly url: string;
  /** `external` (SCHEMA_REGISTRY_URL) or `fake` (the in-test stand-in). */
  readonly kind: 'external' | 'fake';
}

/** The registry under test; a fake is stopped when the test ends. An external one must answer. */
export async function testSchemaRegistry(t: TestScope): Promise<TestRegistry> {
  const external = process.env.SCHEMA_REGISTRY_URL?.trim();
  if (external !== undefined && external !== '') {
    const url = external.replace(/\/+$/, '');
    const res = await fetch(`${url}/subjects`).catch((e: unknown) => {
      throw new Error(`SCHEMA_REGISTRY_URL=${url} does not answer: ${(e as Error).message}`);
    });
    assert.equal(res.status, 200, `GET ${url}/subjects answered ${res.status}`);
    return { url, kind: 'external' };
  }
  const fake = await startFakeRegistry();
  t.after(() => fake.close());
  return { url: fake.url, kind: 'fake' };
}

type Shape =
  | 'null'
  | 'boolean'
  | 'double'
  | 'string'
  | { readonly array: Shape }
  | { readonly record: readonly (readonly [string, Shape])[] }
  | { readonly map: Shape }
  | { readonly union: readonly Shape[] };

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** avsc's buckets for unwrapped unions: at most one branch per bucket. */
function bucket(s: Shape): string {
  if (typeof s === 'string') return s;
  if ('array' in s) return 'array';
  return 'object';
}

/** One shape for several values, or undefined when an unwrapped union cannot tell them apart. */
function merge(shapes: readonly Shape[]): Shape | undefined {
  const byBucket = new Map<string, Shape>();
  for (const s of shapes) {
    const b = bucket(s);
    const seen = byBucket.get(b);
    if (seen === undefined) byBucket.set(b, s);
    else if (JSON.stringify(seen) !== JSON.stringify(s)) return undefined;
  }
  const all = [...byBucket.values()];
  if (all.length === 0) return 'null';
  return all.length === 1 ? all[0] : { union: all };
}

function shapeOf(v: unknown): Shape | undefined {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number') return 'double';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) {
    const items = v.map(shapeOf);
    if (items.some((s) => s === undefined)) return undefined;
    const merged = merge(items as Shape[]);
    return merged === undefined ? undefined : { array: merged };
  }
  if (typeof v !== 'object') return undefined;
  const entries = Object.entries(v as Record<string, unknown>);
  const shapes = entries.map(([, x]) => shapeOf(x));
  if (shapes.some((s) => s === undefined)) return undefined;
  if (entries.every(([k]) => AVRO_NAME.test(k))) {
    return { record: entries.map(([k], i) => [k, shapes[i] as Shape] as const) };
  }
  const values = merge(shapes as Shape[]);
  return values === undefined ? undefined : { map: values };
}

function toSchema(s: Shape, names: { n: number }): unknown {
  if (typeof s === 'string') return s;
  if ('array' in s) return { type: 'array', items: toSchema(s.array, names) };
  if ('map' in s) return { type: 'map', values: toSchema(s.map, names) };
  if ('union' in s) return s.union.map((u) => toSchema(u, names));
  names.n += 1;
  return {
    type: 'record',
    name: `R${names.n}`,
    fields: s.record.map(([name, f]) => ({ name, type: toSchema(f, names) })),
  };
}

/** The Avro schema (JSON text) a producer of exactly this notification's shape would use, if any. */
export function notificationSchema(notification: unknown): string | undefined {
  const shape = shapeOf(notification);
  if (shape === undefined || typeof shape === 'string' || !('record' in shape)) return undefined;
  const schema = toSchema(shape, { n: 0 }) as { name: string };
  schema.name = 'Notification';
  return JSON.stringify(schema);
}

/**
 * An in-test registry and the Avro record codec registered on it (stream-events topic `se`, batches
 * topic `b` unless given); close the registry when done.
 */
export async function startAvroCodec(
  topics: { readonly streamEventsTopic: string; readonly batchesTopic: string } = {
    streamEventsTopic: 'se',
    batchesTopic: 'b',
  },
): Promise<{ readonly registry: FakeRegistry; readonly codec: AvroCodec }> {
  const registry = await startFakeRegistry();
  const codec = await AvroCodec.create(new ConfluentSchemaSource({ url: registry.url }), topics);
  return { registry, codec };
}

/** A field of an Avro record schema, as written in the schema's JSON. */
export interface AvroField {
  readonly name: string;
  readonly type: unknown;
  readonly default?: unknown;
}

/**
 * A producer's Avro schema (JSON text) for one notification type: the envelope's `event_type`,
 * `message_id` and `timestamp` strings and a `payload` record with the given fields, in namespace nova.
 */
export function envelopeSchema(
  name: string,
  payloadName: string,
  payloadFields: readonly AvroField[],
): string {
  return JSON.stringify({
    type: 'record',
    name,
    namespace: 'nova',
    fields: [
      { name: 'event_type', type: 'string' },
      { name: 'message_id', type: 'string' },
      { name: 'timestamp', type: 'string' },
      { name: 'payload', type: { type: 'record', name: payloadName, fields: payloadFields } },
    ],
  });
}

/**
 * The producer side of a fixed schema: registers it under the subject (with the same client the codec
 * uses), and frames values with the id it got.
 */
export async function registerNotificationSchema(
  url: string,
  subject: string,
  schema: string,
): Promise<{ readonly id: number; readonly encode: (value: unknown) => Buffer }> {
  const id = await new ConfluentSchemaSource({ url }).register(subject, schema);
  const type = await new NotificationSchemas({ url }).typeOf(id);
  return { id, encode: (value) => frame(id, type.toBuffer(value)) };
}

/**
 * Writes notifications as framed Avro, registering each distinct schema once (subject
 * `<topic>-<hash of the schema>`, since notigen's shapes differ too much for one evolving subject).
 * Every value is checked to decode — through the worker's own decoder — to the notification's JSON.
 */
export class AvroNotificationWriter {
  private readonly ids = new Map<string, { id: number; type: avro.Type }>();
  private readonly source: ConfluentSchemaSource;
  private readonly check: AvroNotificationDecoder;

  constructor(
    url: string,
    private readonly topic: string,
  ) {
    this.source = new ConfluentSchemaSource({ url });
    this.check = new AvroNotificationDecoder(new NotificationSchemas({ url }));
  }

  /** The framed value, or undefined when the notification has no Avro shape here (send it as JSON). */
  async encode(line: string): Promise<Buffer | undefined> {
    const notification = JSON.parse(line) as unknown;
    const schema = notificationSchema(notification);
    if (schema === undefined) return undefined;
    let known = this.ids.get(schema);
    if (known === undefined) {
      const subject = `${this.topic}-${createHash('sha256').update(schema).digest('hex').slice(0, 12)}`;
      known = {
        id: await this.source.register(subject, schema),
        type: avro.Type.forSchema(JSON.parse(schema)),
      };
      this.ids.set(schema, known);
    }
    const value = frame(known.id, known.type.toBuffer(notification));
    await this.check.prepare([value]);
    const back = this.check.decode(value);
    assert.ok(back.ok, `an Avro notification decodes: ${back.ok ? '' : back.detail}`);
    assert.deepEqual(back.notification, notification, 'what the route stage reads is the JSON notification');
    return value;
  }

  /** A schema id of a notification schema registered so far (for a corrupt-body message). */
  anyId(): number {
    const first = this.ids.values().next();
    assert.ok(!first.done, 'a notification schema was registered');
    return first.value.id;
  }
}
