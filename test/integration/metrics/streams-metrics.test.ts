import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { CheckpointStore } from '../../../src/db/checkpoint-store.js';
import { EventTimeClock } from '../../../src/engine/clock.js';
import { startOpsServer } from '../../../src/http/ops-server.js';
import { createProducer } from '../../../src/kafka/kafka.js';
import { batchValueFor, decodeBatchMessage } from '../../../src/kafka/records.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { generateNotifications } from '../../../src/notigen/index.js';
import { nowInstant } from '../../../src/timex/instant.js';
import { producerSendPort, Router, RouterWorker } from '../../../src/worker/router.js';
import { OutboxPublisher } from '../../../src/worker/stream-task.js';
import { StreamsWorker } from '../../../src/worker/streams-worker.js';
import { INTEGRATION_TIMEOUT_MS, uniqueName } from '../../helpers/integration.js';
import { Inbox, startConsumer, testKafka } from '../../helpers/kafka.js';
import { type Exposition, sampleSum, sampleValue, scrape } from '../../helpers/prometheus.js';
import { migratedDatabase } from '../db/schema.js';
import { workerTopics } from '../worker/topics.js';

test('route and streams stages on Kafka and PostgreSQL: streams, checkpoints, batches and fire latency add up in a scrape', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const stops: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  });
  const config = await loadConfig('etc/winchester.yaml', { env: { WINCHESTER_CLOCK_MODE: 'event' } });
  const db = await migratedDatabase(t, 'it_metrics_streams');
  const kafka = testKafka('it-metrics-streams');
  const { names: topics } = await workerTopics(t, kafka, {
    notifications: { prefix: 'it-ms-in', partitions: 1 },
    streamEvents: { prefix: 'it-ms-se', partitions: 3 },
    batches: { prefix: 'it-ms-b', partitions: 1 },
    deadLetter: { prefix: 'it-ms-dl', partitions: 1 },
  });
  const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(() => producer.disconnect());

  const metrics = createMetrics();
  const server = await startOpsServer({
    host: '127.0.0.1',
    port: 0,
    registry: metrics.registry,
    ready: async () => ({ ready: true, checks: {} }),
    log: () => undefined,
  });
  stops.push(() => server.close());

  const store = new CheckpointStore(db.pool);
  const maxInline = 2000; // small, so some batches go by reference
  const publisher = new OutboxPublisher(
    store,
    async (rows) => {
      await producer.send({
        topic: topics.batches,
        acks: -1,
        messages: rows.map((row) => ({ key: row.messageKey, value: batchValueFor(row, maxInline) })),
      });
    },
    500,
    { metrics, maxInlineBatchBytes: maxInline },
  );
  const streamsGroup = uniqueName('it-ms-streams');
  const streams = new StreamsWorker({
    consumer: kafka.consumer({ groupId: streamsGroup, maxWaitTimeInMs: 100 }),
    topic: topics.streamEvents,
    publisher,
    metrics,
    taskOptions: (partition) => ({
      store,
      topic: topics.streamEvents,
      partition,
      triggers: config.triggers,
      clock: new EventTimeClock(0),
      checkpointRecords: 25,
      checkpointMs: 200,
    }),
  });
  await streams.start();
  stops.push(() => streams.stop());

  const batches = new Inbox();
  await startConsumer(
    t,
    kafka.consumer({ groupId: uniqueName('it-ms-batches'), maxWaitTimeInMs: 100 }),
    topics.batches,
    batches.handler('b'),
  );

  const input = [...generateNotifications({ seed: 7, instances: 4, days: 3 })].map((n) => ({
    value: JSON.stringify(n),
  }));
  for (let i = 0; i < input.length; i += 200) {
    await producer.send({ topic: topics.notifications, messages: input.slice(i, i + 200) });
  }
  const router = new RouterWorker({
    router: new Router({
      distiller: config.distiller!,
      triggers: config.triggers,
      streamEventsTopic: topics.streamEvents,
      deadLetterTopic: topics.deadLetter,
    }),
    consumer: kafka.consumer({ groupId: uniqueName('it-ms-route'), maxWaitTimeInMs: 100 }),
    send: producerSendPort(producer),
    notificationsTopic: topics.notifications,
    streamEventsPartitions: 3,
    tickIntervalMs: 100,
    clockMode: 'event',
    now: nowInstant,
    fromBeginning: true,
    metrics,
  });
  await router.start();
  stops.push(() => router.stop());

  // Quiet: every notification routed, and the batch count has not moved for a while.
  let scraped: Exposition = await scrape(server.port);
  let last = -1;
  let stableSince = Date.now();
  const deadline = Date.now() + 45_000;
  for (;;) {
    scraped = await scrape(server.port);
    const routed = sampleValue(scraped, 'winchester_notifications_received_total') ?? 0;
    const published = sampleSum(scraped, 'winchester_batches_published_total');
    if (published !== last) {
      last = published;
      stableSince = Date.now();
    }
    if (routed === input.length && published > 0 && Date.now() - stableSince > 2000) break;
    assert.ok(Date.now() < deadline, `still routing: ${routed}/${input.length}, ${published} batches`);
    await new Promise((r) => setTimeout(r, 250));
  }

  const published = sampleSum(scraped, 'winchester_batches_published_total');
  assert.equal(published, batches.messages.length, 'one published batch per record on the batches topic');
  const byReference = batches.messages.filter((m) => decodeBatchMessage(m.value ?? '').type === 'reference');
  assert.equal(sampleValue(scraped, 'winchester_batches_by_reference_total'), byReference.length);
  assert.ok(byReference.length > 0, 'some batches were over the small inline limit');
  // Every batch was closed by this process, so each has its fire latency.
  assert.equal(sampleSum(scraped, 'winchester_fire_latency_seconds_count'), published);
  assert.equal(
    sampleValue(scraped, 'winchester_fire_latency_seconds_bucket', { kind: 'fire', le: '+Inf' }) ?? 0,
    sampleValue(scraped, 'winchester_batches_published_total', { kind: 'fire' }) ?? 0,
  );
  const opened = sampleSum(scraped, 'winchester_streams_opened_total');
  const fired = sampleSum(scraped, 'winchester_streams_fired_total');
  const expired = sampleSum(scraped, 'winchester_streams_expired_total');
  const active = sampleSum(scraped, 'winchester_streams_active');
  assert.ok(opened > 0 && fired > 0);
  assert.equal(opened - fired - expired, active, 'every opened stream is live or closed');
  assert.ok((sampleValue(scraped, 'winchester_batches_published_total', { kind: 'fire' }) ?? 0) <= fired);
  const checkpoints = sampleValue(scraped, 'winchester_checkpoints_total') ?? 0;
  assert.ok(checkpoints > 0);
  assert.equal(sampleValue(scraped, 'winchester_checkpoint_duration_seconds_count'), checkpoints);
  assert.equal(sampleValue(scraped, 'winchester_checkpoint_conflicts_total'), 0);
  assert.equal(sampleValue(scraped, 'winchester_partitions_assigned', { stage: 'streams' }), 3);
  assert.equal(sampleValue(scraped, 'winchester_partitions_assigned', { stage: 'route' }), 1);
  assert.ok((sampleValue(scraped, 'winchester_rebalances_total', { group: streamsGroup }) ?? 0) >= 1);
  assert.ok((sampleValue(scraped, 'winchester_ticks_sent_total') ?? 0) >= 3);
});
