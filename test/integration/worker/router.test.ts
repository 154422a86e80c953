import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { createProducer } from '../../../src/kafka/kafka.js';
import { kafkajsKeyPartition } from '../../../src/kafka/partitioner.js';
import { decodeStreamRecord } from '../../../src/kafka/records.js';
import { generateNotifications } from '../../../src/notigen/index.js';
import { nowInstant } from '../../../src/timex/instant.js';
import { producerSendPort, Router, RouterWorker } from '../../../src/worker/router.js';
import { INTEGRATION_TIMEOUT_MS, uniqueName } from '../../helpers/integration.js';
import { Inbox, startConsumer, testKafka } from '../../helpers/kafka.js';
import { workerTopics } from './topics.js';

test('the router turns notifications into keyed stream-events records and dead-letters the malformed', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  // Registered first (after-hooks run in registration order): the worker stops while the producer and
  // topics it uses still exist.
  let worker: RouterWorker | undefined;
  t.after(() => worker?.stop());
  const config = await loadConfig('etc/winchester.yaml', { env: {} });
  const kafka = testKafka('it-router');
  const {
    admin,
    names: { notifications, streamEvents, deadLetter },
  } = await workerTopics(t, kafka, {
    notifications: { prefix: 'it-router-in', partitions: 2 },
    streamEvents: { prefix: 'it-router-se', partitions: 4 },
    deadLetter: { prefix: 'it-router-dl', partitions: 1 },
  });

  const generated = [...generateNotifications({ seed: 5, instances: 6, days: 2, osloEnvelope: 0.25 })];
  const input: { key: string | null; value: string | null }[] = generated.map((n, i) => ({
    key: `n${i}`,
    value: JSON.stringify(n),
  }));
  input.splice(3, 0, { key: 'bad-json', value: '{"event_type": ' });
  input.splice(7, 0, { key: 'no-type', value: '{"message_id": "m"}' });
  input.push({
    key: 'unmatched',
    value: JSON.stringify({ event_type: 'nobody.cares', message_id: 'u1', timestamp: '2015-02-01 00:00:00' }),
  });

  const producer = createProducer(kafka);
  await producer.connect();
  t.after(() => producer.disconnect());
  await producer.send({ topic: notifications, messages: input });

  // What the pure core says must come out (order across partitions aside).
  const expectRouter = new Router({
    distiller: config.distiller!,
    triggers: config.triggers,
    streamEventsTopic: streamEvents,
    deadLetterTopic: deadLetter,
  });
  const expected = expectRouter.route(
    notifications,
    0,
    input.map((m, i) => ({
      offset: String(i),
      key: m.key === null ? null : Buffer.from(m.key),
      value: m.value === null ? null : Buffer.from(m.value),
    })),
  );
  const expectedRecords = expected.filter((m) => m.topic === streamEvents);
  assert.ok(expectedRecords.length > 20);

  // The worker's router gives each record its partition itself (the core above leaves it to kafkajs).
  const router = new Router({
    distiller: config.distiller!,
    triggers: config.triggers,
    streamEventsTopic: streamEvents,
    deadLetterTopic: deadLetter,
    streamEventsPartitions: 4,
  });
  const groupId = uniqueName('it-router-group');
  worker = new RouterWorker({
    router,
    consumer: kafka.consumer({ groupId, maxWaitTimeInMs: 200 }),
    send: producerSendPort(producer),
    notificationsTopic: notifications,
    streamEventsPartitions: 4,
    tickIntervalMs: 0,
    clockMode: 'wall',
    now: nowInstant,
    fromBeginning: true,
  });
  await worker.start();

  const seConsumer = kafka.consumer({ groupId: uniqueName('it-router-se'), maxWaitTimeInMs: 200 });
  const dlConsumer = kafka.consumer({ groupId: uniqueName('it-router-dl'), maxWaitTimeInMs: 200 });
  const records = new Inbox();
  await startConsumer(t, seConsumer, streamEvents, records.handler('se'));
  const dead: { key: string | null; value: string | null; headers: Record<string, string> }[] = [];
  await startConsumer(t, dlConsumer, deadLetter, async ({ message }) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
    dead.push({ key: message.key?.toString() ?? null, value: message.value?.toString() ?? null, headers });
  });

  const received = await records.waitFor(expectedRecords.length, 30_000);
  for (const m of received) {
    const v = JSON.parse(m.value as string);
    assert.ok(
      v.watermark >= v.event.timestamp,
      `watermark ${v.watermark} is behind its event ${v.event.timestamp}`,
    );
  }
  assert.deepEqual(
    // The watermark depends on the order the partitions were consumed in; everything else must match.
    received.map((m) => `${m.key} ${withoutWatermark(m.value)}`).sort(),
    expectedRecords.map((m) => `${m.key} ${withoutWatermark(m.value)}`).sort(),
    'exactly the records the core computes, each once',
  );
  const partitionOf = new Map<string, number>();
  for (const m of received) {
    const seen = partitionOf.get(m.key as string);
    if (seen !== undefined) assert.equal(m.partition, seen, `one partition for stream ${m.key}`);
    partitionOf.set(m.key as string, m.partition);
    assert.equal(m.partition, kafkajsKeyPartition(m.key as string, 4), 'where kafkajs would put its key');
    assert.equal(decodeStreamRecord(m.value as string).type, 'event');
  }
  assert.ok(new Set(partitionOf.values()).size > 1, 'streams spread over the partitions');

  const deadline = Date.now() + 20_000;
  while (dead.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(
    dead.map((d) => [d.key, d.value, d.headers['winchester-reason'], d.headers['winchester-topic']]).sort(),
    [
      ['bad-json', '{"event_type": ', 'invalid_json', notifications],
      ['no-type', '{"message_id": "m"}', 'missing_event_type', notifications],
    ],
  );
  for (const d of dead) {
    assert.match(d.headers['winchester-detail'] ?? '', /./);
    assert.match(d.headers['winchester-partition'] ?? '', /^[01]$/);
    assert.match(d.headers['winchester-offset'] ?? '', /^\d+$/);
  }

  // At-least-once: the committed offsets cover all input once everything was produced.
  const committed = async () =>
    (await admin.fetchOffsets({ groupId, topics: [notifications] }))[0]!.partitions.reduce(
      (n, p) => n + Math.max(0, Number(p.offset)),
      0,
    );
  const until = Date.now() + 20_000;
  while ((await committed()) < input.length && Date.now() < until)
    await new Promise((r) => setTimeout(r, 200));
  assert.equal(await committed(), input.length);
  assert.equal(router.counts.notifications, input.length);
  assert.equal(router.counts.unmatched, 1);
  assert.deepEqual({ ...router.counts.deadLettered }, { invalid_json: 1, missing_event_type: 1 });
  // Everything stops here, in dependency order, before the helpers delete the topics.
  await worker.stop();
  await seConsumer.disconnect();
  await dlConsumer.disconnect();
  await producer.disconnect();
});

/** A stream-events record value without its `watermark` field (the router's time when it routed it). */
function withoutWatermark(value: string | Buffer | null): string | null {
  // Format 2 writes it as integer microseconds, format 1 as a string. The router's values are UTF-8 bytes.
  return value === null ? null : String(value).replace(/,"watermark":(?:"[^"]*"|-?\d+)/, '');
}
