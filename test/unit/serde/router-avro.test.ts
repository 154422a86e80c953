import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig, type WinchesterConfig } from '../../../src/config/index.js';
import { ConfluentSchemaSource, NotificationSchemas } from '../../../src/kafka/schema-registry.js';
import { AvroCodec } from '../../../src/serde/avro-codec.js';
import { frame } from '../../../src/serde/codec.js';
import { AvroNotificationDecoder } from '../../../src/serde/notifications.js';
import { type InboundMessage, Router } from '../../../src/worker/router.js';
import { envelopeSchema, registerNotificationSchema } from '../../helpers/avro-registry.js';
import { type FakeRegistry, startFakeRegistry } from './fake-registry.js';

// A producer's schema for compute.instance.* notifications (the fields etc/ definitions read).
const SCHEMA = envelopeSchema('ComputeInstance', 'InstancePayload', [
  { name: 'instance_id', type: 'string' },
  { name: 'tenant_id', type: ['null', 'string'], default: null },
  { name: 'memory_mb', type: 'long' },
]);

const notification = (i: number) => ({
  event_type: 'compute.instance.create.end',
  message_id: `m-${i}`,
  timestamp: `2024-03-01 10:00:0${i}.00000${i}`,
  payload: { instance_id: `i-${i % 2}`, tenant_id: i % 2 === 0 ? null : 't-1', memory_mb: 512 * i },
});

const msg = (offset: number, value: Buffer): InboundMessage => ({ offset: String(offset), key: null, value });

describe('route stage: Confluent-framed Avro notifications beside JSON', () => {
  let config: WinchesterConfig;
  let registry: FakeRegistry;
  let encode: (v: unknown) => Buffer;

  before(async () => {
    config = await loadConfig('etc/winchester.yaml', { env: {} });
    registry = await startFakeRegistry();
    ({ encode } = await registerNotificationSchema(registry.url, 'nova-value', SCHEMA));
  });
  after(() => registry.close());

  const router = (codec?: AvroCodec) =>
    new Router({
      distiller: config.distiller!,
      triggers: config.triggers,
      streamEventsTopic: 'se',
      deadLetterTopic: 'dl',
      avroNotifications: new AvroNotificationDecoder(new NotificationSchemas({ url: registry.url })),
      ...(codec === undefined ? {} : { codec }),
    });

  test('an Avro notification routes to exactly the records its JSON twin does', async () => {
    const ns = [1, 2, 3, 4].map(notification);
    const json = ns.map((n, i) => msg(i, Buffer.from(JSON.stringify(n))));
    const avro = ns.map((n, i) => msg(i, encode(n)));
    const rj = router();
    const ra = router();
    await rj.prepare(json);
    await ra.prepare(avro);
    const outJson = rj.route('notifications', 0, json);
    const outAvro = ra.route('notifications', 0, avro);
    assert.ok(outJson.length > 0);
    assert.ok(outJson.every((m) => m.topic === 'se'));
    assert.deepStrictEqual(outAvro, outJson);
  });

  test('mixed in one batch; unknown schema id is dead-lettered as unknown_schema, the rest routed', async () => {
    const r = router();
    const input = [
      msg(0, encode(notification(1))),
      msg(1, frame(77, Buffer.from([2, 0]))),
      msg(2, Buffer.from(JSON.stringify(notification(2)))),
    ];
    await r.prepare(input);
    const out = r.route('notifications', 0, input);
    const dead = out.filter((m) => m.topic === 'dl');
    assert.equal(dead.length, 1);
    assert.equal(dead[0]?.headers?.['winchester-reason'], 'unknown_schema');
    assert.deepEqual(r.counts.deadLettered, Object.assign(Object.create(null), { unknown_schema: 1 }));
    assert.equal(r.counts.events, 2);
  });

  test('with the Avro record codec, stream-events records and ticks are framed Avro that decode back', async () => {
    const codec = await AvroCodec.create(new ConfluentSchemaSource({ url: registry.url }), {
      streamEventsTopic: 'se',
      batchesTopic: 'b',
    });
    const r = router(codec);
    const input = [msg(0, encode(notification(3)))];
    await r.prepare(input);
    const out = r.route('notifications', 0, input);
    assert.ok(out.length > 0);
    for (const m of out) {
      assert.ok(Buffer.isBuffer(m.value));
      const rec = codec.decodeStreamRecord(m.value as Buffer);
      assert.ok(rec.type === 'event' && rec.event.message_id === 'm-3');
      if (rec.type === 'event')
        assert.deepStrictEqual(rec.event.traits.memory_mb, { type: 'int', value: 1536 });
    }
    const [tick] = r.ticks(1, 42);
    assert.deepStrictEqual(codec.decodeStreamRecord(tick?.value as Buffer), { type: 'tick', time: 42 });
  });
});
