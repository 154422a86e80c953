import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotabeneHandler } from '../../../src/handlers/notabene.js';
import { createProducer } from '../../../src/kafka/kafka.js';
import { type Event, int, text } from '../../../src/model/event.js';
import { eventFromJson, eventToJson } from '../../../src/model/event-json.js';
import type { HandlerEnv, PublishPort } from '../../../src/pipeline/handler.js';
import { parseDatetime } from '../../../src/timex/instant.js';
import { producerSendPort } from '../../../src/worker/router.js';
import { INTEGRATION_TIMEOUT_MS, uniqueName } from '../../helpers/integration.js';
import { Inbox, startConsumer, testAdmin, testKafka, testTopic } from '../../helpers/kafka.js';

const T = parseDatetime('2026-03-04T05:06:07.000008Z');

function env(batchId: string, extra: Record<string, unknown>): HandlerEnv {
  return {
    batch_id: batchId,
    stream_id: '17',
    stream_name: 'usage',
    trigger: 'usage',
    kind: 'fire',
    pipeline: 'usage_pipeline',
    distinguishing: {},
    ...extra,
  };
}

test('notabene on a real broker: selected events and env notifications arrive keyed by message id; a redelivered batch repeats the same keys and values', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const kafka = testKafka('it-notabene');
  const admin = await testAdmin(t, kafka);
  const topic = await testTopic(t, admin, 'it-notabene', { numPartitions: 3 });

  // The same kind of port the pipeline worker gives handlers: an idempotent producer, acks from all replicas.
  const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(() => producer.disconnect());
  const send = producerSendPort(producer);
  const publish: PublishPort = (to, messages) =>
    send(messages.map((m) => ({ topic: to, key: m.key, value: m.value })));

  const events: Event[] = [];
  for (let i = 0; i < 200; i++) {
    events.push({
      message_id: `exists-${i}`,
      event_type: 'compute.instance.exists',
      timestamp: T,
      traits: { instance_id: text(`i-${i % 7}`) },
    });
    events.push({
      message_id: `verdict-${i}`,
      event_type: i % 5 === 0 ? 'compute.instance.exists.failed' : 'compute.instance.exists.verified',
      timestamp: T,
      traits: { instance_id: text(`i-${i % 7}`), memory_mb: int(512 * (i + 1)) },
    });
  }
  const notifications = [
    {
      message_id: 'legacy-1',
      event_type: 'compute.instance.exists.verified.old',
      payload: { instance_id: 'i-1' },
    },
    { event_type: 'compute.instance.exists.warnings', warnings: 'Non-EOD .exists' },
  ];
  const params = Object.freeze({
    topic,
    event_types: ['compute.instance.exists.*'],
    env_keys: ['usage_notifications'],
    // The reference's RabbitMQ settings, still accepted.
    host: 'localhost',
    exchange: 'nova',
    queue_name: 'monitor.info',
  });
  const logs: string[] = [];
  const context = { log: (_level: string, msg: string) => logs.push(msg), publish };

  const deliver = async () => {
    const h = new NotabeneHandler(params, context);
    await h.handleEvents(events.slice(), env('batch-it-1', { usage_notifications: notifications }));
    await h.commit();
  };
  await deliver();
  await deliver(); // the batch redelivered after a crash between commit and completion

  const expected = [
    ...events
      .filter((e) => e.event_type.startsWith('compute.instance.exists.'))
      .map((e) => ({ key: e.message_id, value: eventToJson(e) })),
    { key: 'legacy-1', value: JSON.stringify(notifications[0]) },
    { key: 'batch-it-1:usage_notifications:1', value: JSON.stringify(notifications[1]) },
  ];
  assert.equal(expected.length, 202);

  const inbox = new Inbox();
  const consumer = kafka.consumer({ groupId: uniqueName('it-notabene-group'), maxWaitTimeInMs: 200 });
  await startConsumer(t, consumer, topic, inbox.handler('reader'));
  const received = await inbox.waitFor(expected.length * 2, 30_000);
  assert.equal(received.length, expected.length * 2, 'each delivery published every message once');

  // What a deduplicating consumer sees: one value per key, equal to what was selected.
  const byKey = new Map<string, Set<string>>();
  for (const m of received) {
    assert.ok(m.key !== null);
    const values = byKey.get(m.key) ?? new Set<string>();
    values.add(m.value ?? '');
    byKey.set(m.key, values);
  }
  assert.deepEqual(
    [...byKey]
      .map(([key, values]) => ({ key, value: [...values].join(' | ') }))
      .sort((a, b) => a.key.localeCompare(b.key)),
    expected.slice().sort((a, b) => a.key.localeCompare(b.key)),
  );
  // Events come back as the same typed events.
  const verdict = received.find((m) => m.key === 'verdict-3');
  assert.deepEqual(
    JSON.parse(JSON.stringify(eventFromJson(verdict?.value ?? ''))),
    JSON.parse(JSON.stringify(events[7])),
  );
  // A key's copies share a partition, so a consumer deduping per partition sees both.
  for (const [key] of byKey) {
    assert.equal(new Set(received.filter((m) => m.key === key).map((m) => m.partition)).size, 1, key);
  }
  assert.equal(logs.filter((m) => m.startsWith('notabene: RabbitMQ')).length, 1, 'one warning for the step');
});
