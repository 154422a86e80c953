import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createProducer } from '../../../src/kafka/kafka.js';
import { INTEGRATION_TIMEOUT_MS, uniqueName } from '../../helpers/integration.js';
import { Inbox, startConsumer, testAdmin, testKafka, testTopic } from '../../helpers/kafka.js';

test('an idempotent producer writes every message once, at contiguous offsets', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const kafka = testKafka('it-idempotent');
  const admin = await testAdmin(t, kafka);
  const topic = await testTopic(t, admin, 'it-idempotent');

  // acks=-1 is implied by idempotence; one request in flight keeps ordering strict across retries.
  const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(() => producer.disconnect());

  const batches = 5;
  const perBatch = 20;
  const metadata = [];
  for (let b = 0; b < batches; b++) {
    const messages = Array.from({ length: perBatch }, (_, i) => ({ value: `b${b}-m${i}` }));
    metadata.push(...(await producer.send({ topic, messages })));
  }
  for (const record of metadata) assert.equal(record.errorCode, 0);
  // Each send is one batch appended right after the previous one: base offsets 0, 20, 40, …
  assert.deepEqual(
    metadata.map((m) => Number(m.baseOffset)),
    Array.from({ length: batches }, (_, b) => b * perBatch),
  );

  const inbox = new Inbox();
  const consumer = kafka.consumer({ groupId: uniqueName('it-idempotent-group'), maxWaitTimeInMs: 200 });
  await startConsumer(t, consumer, topic, inbox.handler('only'));
  const received = await inbox.waitFor(batches * perBatch, 30_000);
  assert.equal(received.length, batches * perBatch);
  assert.deepEqual(
    received.map((m) => Number(m.offset)),
    Array.from({ length: batches * perBatch }, (_, i) => i),
    'offsets are contiguous: nothing duplicated, nothing lost',
  );
  assert.deepEqual(
    received.map((m) => m.value),
    Array.from({ length: batches }, (_, b) =>
      Array.from({ length: perBatch }, (_, i) => `b${b}-m${i}`),
    ).flat(),
  );
});
