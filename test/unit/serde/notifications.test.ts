import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { distillerFromYaml } from '../../../src/distill/distiller.js';
import { NotificationSchemas } from '../../../src/kafka/schema-registry.js';
import { frame, isConfluentFramed } from '../../../src/serde/codec.js';
import { AvroNotificationDecoder, isAvroNotification } from '../../../src/serde/notifications.js';
import { envelopeSchema, registerNotificationSchema } from '../../helpers/avro-registry.js';
import { type FakeRegistry, startFakeRegistry } from './fake-registry.js';

// A producer's schema for one notification type: nested payload, a nullable field, a long, bytes.
const SCHEMA = envelopeSchema('InstanceExists', 'Payload', [
  { name: 'instance_id', type: 'string' },
  { name: 'memory_mb', type: 'long' },
  { name: 'host', type: ['null', 'string'], default: null },
  { name: 'blob', type: 'bytes' },
]);

const DEFINITIONS = `- event_type: compute.instance.*
  traits:
    instance_id:
      fields: payload.instance_id
    memory_mb:
      type: int
      fields: payload.memory_mb
    host:
      fields: payload.host
    blob:
      fields: payload.blob
`;

describe('Avro notifications beside JSON (route stage detection)', () => {
  let registry: FakeRegistry;
  let encode: (v: unknown) => Buffer;

  before(async () => {
    registry = await startFakeRegistry();
    ({ encode } = await registerNotificationSchema(registry.url, 'nova-notifications-value', SCHEMA));
  });
  after(() => registry.close());

  test('a framed Avro notification decodes to a plain object and distils like its JSON twin', async () => {
    const notification = {
      event_type: 'compute.instance.exists',
      message_id: 'm-1',
      timestamp: '2024-03-01 10:00:00.123456',
      payload: { instance_id: 'i-1', memory_mb: 2 ** 53 - 1, host: 'h1', blob: Buffer.from('abc') },
    };
    const value = encode(notification);
    assert.ok(isAvroNotification(value));
    const decoder = new AvroNotificationDecoder(new NotificationSchemas({ url: registry.url }));
    await decoder.prepare([value]);
    const r = decoder.decode(value);
    assert.ok(r.ok);
    if (!r.ok) return;
    const asJson = { ...notification, payload: { ...notification.payload, blob: 'abc' } };
    assert.deepStrictEqual(r.notification, asJson);
    const distiller = distillerFromYaml(DEFINITIONS, 'defs.yaml');
    const fromAvro = distiller.distill(r.notification);
    const fromJson = distiller.distillJson(JSON.stringify(asJson));
    assert.ok(fromAvro.ok);
    assert.deepStrictEqual(fromAvro, fromJson);
    if (fromAvro.ok)
      assert.deepStrictEqual(fromAvro.event.traits.memory_mb, { type: 'int', value: 2 ** 53 - 1 });
  });

  test('a null union reads as null (unwrapped), as in JSON', async () => {
    const value = encode({
      event_type: 'compute.instance.exists',
      message_id: 'm-2',
      timestamp: '2024-03-01 10:00:00',
      payload: { instance_id: 'i-2', memory_mb: 1, host: null, blob: Buffer.alloc(0) },
    });
    const decoder = new AvroNotificationDecoder(new NotificationSchemas({ url: registry.url }));
    await decoder.prepare([value]);
    const r = decoder.decode(value);
    assert.ok(r.ok && (r.notification as { payload: { host: unknown } }).payload.host === null);
  });

  test('an unknown schema id is dead-lettered as unknown_schema, fetched once, never thrown', async () => {
    const value = frame(999, Buffer.from([2, 0x61]));
    const decoder = new AvroNotificationDecoder(new NotificationSchemas({ url: registry.url }));
    const before = registry.requests.filter((r) => r === 'GET /schemas/ids/999').length;
    await decoder.prepare([value, value, null]);
    await decoder.prepare([value]);
    assert.equal(registry.requests.filter((r) => r === 'GET /schemas/ids/999').length - before, 1);
    const r = decoder.decode(value);
    assert.deepEqual(r.ok ? null : r.reason, 'unknown_schema');
  });

  test('truncated Avro is invalid_avro, not a crash', async () => {
    const good = encode({
      event_type: 'e',
      message_id: 'm',
      timestamp: 't',
      payload: { instance_id: 'i', memory_mb: 1, host: null, blob: Buffer.alloc(0) },
    });
    const value = good.subarray(0, 9);
    const decoder = new AvroNotificationDecoder(new NotificationSchemas({ url: registry.url }));
    await decoder.prepare([value]);
    const r = decoder.decode(value);
    assert.equal(r.ok ? null : r.reason, 'invalid_avro');
  });

  test('JSON text (any first byte but NUL) and a bare header are not taken for Avro', () => {
    assert.equal(isConfluentFramed(Buffer.from('{"event_type":"x"}')), false);
    assert.equal(isConfluentFramed(Buffer.from(' [1]')), false);
    assert.equal(isConfluentFramed(Buffer.from([0, 0, 0, 0, 1])), false);
    assert.equal(isConfluentFramed(Buffer.from([0, 0, 0, 0, 1, 0])), true);
  });
});
