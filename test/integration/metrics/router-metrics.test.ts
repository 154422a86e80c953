import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { startOpsServer } from '../../../src/http/ops-server.js';
import { createProducer } from '../../../src/kafka/kafka.js';
import { fetchConsumerLag } from '../../../src/kafka/lag.js';
import { ConsumerLagMonitor } from '../../../src/metrics/lag-monitor.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { generateNotifications } from '../../../src/notigen/index.js';
import { nowInstant } from '../../../src/timex/instant.js';
import { producerSendPort, Router, RouterWorker } from '../../../src/worker/router.js';
import { INTEGRATION_TIMEOUT_MS, uniqueName } from '../../helpers/integration.js';
import { testAdmin, testKafka, testTopic } from '../../helpers/kafka.js';
import { type Exposition, sampleSum, sampleValue, scrape } from '../../helpers/prometheus.js';

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('a scrape of a router worker on real Kafka counts what was sent: received, matched, dropped, dead-lettered, lag', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  let worker: RouterWorker | undefined;
  t.after(() => worker?.stop());
  const config = await loadConfig('etc/winchester.yaml', { env: {} });
  const kafka = testKafka('it-metrics');
  const admin = await testAdmin(t, kafka);
  const notifications = await testTopic(t, admin, 'it-metrics-in', { numPartitions: 2 });
  const streamEvents = await testTopic(t, admin, 'it-metrics-se', { numPartitions: 3 });
  const deadLetter = await testTopic(t, admin, 'it-metrics-dl', { numPartitions: 1 });

  const generated = [...generateNotifications({ seed: 21, instances: 5, days: 1, osloEnvelope: 0.2 })];
  const input: { key: string; value: string | null }[] = generated.map((n, i) => ({
    key: `n${i}`,
    value: JSON.stringify(n),
  }));
  input.splice(2, 0, { key: 'bad-json', value: '{"event_type": ' });
  input.splice(5, 0, { key: 'empty', value: null });
  input.splice(9, 0, { key: 'no-type', value: '{"message_id": "m"}' });
  input.push({
    key: 'unmatched',
    value: JSON.stringify({ event_type: 'nobody.cares', message_id: 'u1', timestamp: '2015-02-01 00:00:00' }),
  });

  // What the pure core says about this input: the expected counts, independent of the worker.
  const expected = new Router({
    distiller: config.distiller!,
    triggers: config.triggers,
    streamEventsTopic: streamEvents,
    deadLetterTopic: deadLetter,
  });
  expected.route(
    notifications,
    0,
    input.map((m, i) => ({
      offset: String(i),
      key: Buffer.from(m.key),
      value: m.value === null ? null : Buffer.from(m.value),
    })),
  );
  assert.ok(expected.counts.records > 20);

  const producer = createProducer(kafka);
  await producer.connect();
  t.after(() => producer.disconnect());
  await producer.send({ topic: notifications, messages: input });

  const metrics = createMetrics();
  const groupId = uniqueName('it-metrics-group');
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = true;
  });
  const lag = new ConsumerLagMonitor({
    metrics,
    targets: [{ group: groupId, topic: notifications }],
    fetchLag: (group, topic) => fetchConsumerLag(admin, group, topic),
    minRefreshMs: 0,
  });
  const server = await startOpsServer({
    host: '127.0.0.1',
    port: 0,
    registry: metrics.registry,
    ready: async () => ({ ready: joined, checks: { route_group_joined: joined } }),
    beforeMetrics: () => lag.refreshIfStale(),
    log: () => undefined,
    timeoutMs: 10_000,
  });
  t.after(() => server.close());

  // Before the worker runs: not ready, and the whole input is lag (the group has committed nothing).
  const notReady = await fetch(`http://127.0.0.1:${server.port}/readyz`);
  assert.equal(notReady.status, 503);
  assert.deepEqual(await notReady.json(), {
    ready: false,
    failing: { route_group_joined: false },
    checks: { route_group_joined: false },
  });
  let scraped = await scrape(server.port);
  assert.equal(
    sampleSum(scraped, 'winchester_consumer_lag', { group: groupId, topic: notifications }),
    input.length,
  );

  worker = new RouterWorker({
    router: new Router({
      distiller: config.distiller!,
      triggers: config.triggers,
      streamEventsTopic: streamEvents,
      deadLetterTopic: deadLetter,
    }),
    consumer,
    send: producerSendPort(producer),
    notificationsTopic: notifications,
    streamEventsPartitions: 3,
    tickIntervalMs: 0,
    clockMode: 'wall',
    now: nowInstant,
    fromBeginning: true,
    metrics,
  });
  await worker.start();

  const received = (e: Exposition) =>
    sampleValue(e, 'winchester_notifications_received_total', { topic: notifications }) ?? 0;
  await until('every notification routed and committed', async () => {
    scraped = await scrape(server.port);
    return (
      received(scraped) >= input.length &&
      sampleSum(scraped, 'winchester_consumer_lag', { group: groupId }) === 0
    );
  });
  assert.equal(received(scraped), input.length);
  assert.equal(sampleValue(scraped, 'winchester_notifications_dropped_total', { reason: 'unmatched' }), 1);
  assert.equal(
    sampleValue(scraped, 'winchester_notifications_dropped_total', { reason: 'no_trigger' }),
    expected.counts.joinedNone,
  );
  const deadLettered = scraped.get('winchester_notifications_dead_lettered_total');
  assert.equal(deadLettered?.type, 'counter');
  assert.deepEqual(Object.fromEntries(deadLettered!.samples.map((s) => [s.labels.reason, s.value])), {
    invalid_json: 1,
    empty_value: 1,
    missing_event_type: 1,
  });
  for (const [i, def] of config.triggers.entries()) {
    assert.equal(
      sampleValue(scraped, 'winchester_events_matched_total', { trigger: def.name }),
      expected.counts.matched[i],
      def.name,
    );
  }
  assert.equal(sampleValue(scraped, 'winchester_stream_event_records_total'), expected.counts.records);
  assert.equal(sampleSum(scraped, 'winchester_events_matched_total'), expected.counts.records);
  assert.equal(sampleValue(scraped, 'winchester_partitions_assigned', { stage: 'route' }), 2);
  assert.ok((sampleValue(scraped, 'winchester_rebalances_total', { group: groupId }) ?? 0) >= 1);
  for (const p of ['0', '1']) {
    assert.equal(
      sampleValue(scraped, 'winchester_consumer_lag', { group: groupId, topic: notifications, partition: p }),
      0,
    );
  }

  const ready = await fetch(`http://127.0.0.1:${server.port}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { ready: true, checks: { route_group_joined: true } });

  await worker.stop();
  await lag.stop();
  assert.equal(
    sampleValue(await scrape(server.port), 'winchester_partitions_assigned', { stage: 'route' }),
    0,
  );
});

test('fetchConsumerLag: high watermark minus the committed offset; everything retained when nothing is committed', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const kafka = testKafka('it-lag');
  const admin = await testAdmin(t, kafka);
  const topic = await testTopic(t, admin, 'it-lag', { numPartitions: 2 });
  const producer = createProducer(kafka);
  await producer.connect();
  t.after(() => producer.disconnect());
  await producer.send({
    topic,
    messages: [
      ...Array.from({ length: 7 }, (_, i) => ({ partition: 0, value: `a${i}` })),
      ...Array.from({ length: 4 }, (_, i) => ({ partition: 1, value: `b${i}` })),
    ],
  });
  const groupId = uniqueName('it-lag-group');
  assert.deepEqual(await fetchConsumerLag(admin, groupId, topic), [
    { partition: 0, highWatermark: 7, committed: null, lag: 7 },
    { partition: 1, highWatermark: 4, committed: null, lag: 4 },
  ]);
  await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '5' }] });
  assert.deepEqual(await fetchConsumerLag(admin, groupId, topic), [
    { partition: 0, highWatermark: 7, committed: 5, lag: 2 },
    { partition: 1, highWatermark: 4, committed: null, lag: 4 },
  ]);
  await assert.rejects(fetchConsumerLag(admin, groupId, uniqueName('it-lag-missing')), (error: Error) => {
    assert.match(error.message, /fetching the lag of group/);
    return true;
  });
  await admin.deleteGroups([groupId]).catch(() => undefined);
});
