import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createProducer } from '../../../src/kafka/kafka.js';
import { INTEGRATION_TIMEOUT_MS, uniqueName } from '../../helpers/integration.js';
import { Inbox, startConsumer, testAdmin, testKafka, testTopic } from '../../helpers/kafka.js';

test('a plain producer’s keyed messages reach a consumer group once each, in order per key', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const kafka = testKafka('it-produce-consume');
  const admin = await testAdmin(t, kafka);
  const topic = await testTopic(t, admin, 'it-plain', { numPartitions: 3 });

  const producer = createProducer(kafka);
  await producer.connect();
  t.after(() => producer.disconnect());
  const keys = ['instance-a', 'instance-b', 'instance-c', 'instance-d'];
  const sent = Array.from({ length: 40 }, (_, i) => ({ key: keys[i % keys.length]!, value: `event-${i}` }));
  // One request per message, so per-key order comes from the partitioner, not from a single batch.
  for (const message of sent) {
    await producer.send({ topic, messages: [{ ...message, headers: { source: 'integration' } }] });
  }

  const inbox = new Inbox();
  const consumer = kafka.consumer({ groupId: uniqueName('it-plain-group'), maxWaitTimeInMs: 200 });
  await startConsumer(t, consumer, topic, inbox.handler('only'));
  const received = await inbox.waitFor(sent.length, 30_000);

  assert.deepEqual(
    received.map((m) => m.value).sort(),
    sent.map((m) => m.value).sort(),
    'every message arrives exactly once',
  );
  for (const key of keys) {
    const forKey = received.filter((m) => m.key === key);
    assert.equal(new Set(forKey.map((m) => m.partition)).size, 1, `all of ${key} on one partition`);
    assert.deepEqual(
      forKey.map((m) => m.value),
      sent.filter((m) => m.key === key).map((m) => m.value),
      `${key} consumed in send order`,
    );
  }
});
