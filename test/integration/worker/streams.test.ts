import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, type WinchesterConfig } from '../../../src/config/index.js';
import { CheckpointStore } from '../../../src/db/checkpoint-store.js';
import { EventTimeClock } from '../../../src/engine/clock.js';
import { createProducer } from '../../../src/kafka/kafka.js';
import { decodeBatch } from '../../../src/kafka/records.js';
import type { Kafka, Producer } from '../../../src/kafka/types.js';
import { generateNotifications } from '../../../src/notigen/index.js';
import { nowInstant } from '../../../src/timex/instant.js';
import { producerSendPort, Router, RouterWorker } from '../../../src/worker/router.js';
import { OutboxPublisher, type TaskStore } from '../../../src/worker/stream-task.js';
import { StreamsWorker, type StreamsWorkerOptions } from '../../../src/worker/streams-worker.js';
import { asReplayLine, replayBatches } from '../../helpers/batches.js';
import { INTEGRATION_TIMEOUT_MS, type TestScope, uniqueName } from '../../helpers/integration.js';
import { Inbox, startConsumer, testKafka } from '../../helpers/kafka.js';
import { migratedDatabase } from '../db/schema.js';
import { workerTopics } from './topics.js';

const WORKLOAD = { seed: 7, instances: 6, days: 4 };
const lines = () => [...generateNotifications(WORKLOAD)].map((n) => JSON.stringify(n));

/** What `winchester replay` prints for the workload: the expected batches, canonical. */
const replayLines = () => replayBatches(lines());

interface Rig {
  kafka: Kafka;
  config: WinchesterConfig;
  store: CheckpointStore;
  producer: Producer;
  topics: { notifications: string; streamEvents: string; batches: string; deadLetter: string };
  /** Stops workers first, while the producer, topics and database they use still exist. */
  onStop(stop: () => Promise<void>): void;
}

async function rig(t: TestScope, name: string): Promise<Rig> {
  // Registered before anything else: node:test runs after-hooks in registration order.
  const stops: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  });
  const config = await loadConfig('etc/winchester.yaml', { env: { WINCHESTER_CLOCK_MODE: 'event' } });
  assert.equal(config.settings.clock.mode, 'event');
  const db = await migratedDatabase(t, `it_${name.replaceAll('-', '_')}`);
  const kafka = testKafka(`it-${name}`);
  const { names: topics } = await workerTopics(t, kafka, {
    notifications: { prefix: `it-${name}-in`, partitions: 1 },
    streamEvents: { prefix: `it-${name}-se`, partitions: 3 },
    batches: { prefix: `it-${name}-b`, partitions: 1 },
    deadLetter: { prefix: `it-${name}-dl`, partitions: 1 },
  });
  const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(() => producer.disconnect());
  return {
    kafka,
    config,
    store: new CheckpointStore(db.pool),
    producer,
    topics,
    onStop: (stop) => void stops.push(stop),
  };
}

/** Produces the workload and routes it with event-time ticks every 100 ms. */
async function route(r: Rig): Promise<RouterWorker> {
  const all = lines();
  for (let i = 0; i < all.length; i += 100) {
    await r.producer.send({
      topic: r.topics.notifications,
      messages: all.slice(i, i + 100).map((value) => ({ value })),
    });
  }
  const router = new RouterWorker({
    router: new Router({
      distiller: r.config.distiller!,
      triggers: r.config.triggers,
      streamEventsTopic: r.topics.streamEvents,
      deadLetterTopic: r.topics.deadLetter,
    }),
    consumer: r.kafka.consumer({ groupId: uniqueName('it-route'), maxWaitTimeInMs: 100 }),
    send: producerSendPort(r.producer),
    notificationsTopic: r.topics.notifications,
    streamEventsPartitions: 3,
    tickIntervalMs: 100,
    clockMode: 'event',
    now: nowInstant,
    fromBeginning: true,
  });
  await router.start();
  r.onStop(() => router.stop());
  return router;
}

function streams(
  r: Rig,
  groupId: string,
  store: TaskStore = r.store,
  checkpointRecords = 25,
  more: Pick<StreamsWorkerOptions, 'partitionsConcurrently' | 'log'> = {},
) {
  const publisher = new OutboxPublisher(r.store, async (rows) => {
    await r.producer.send({
      topic: r.topics.batches,
      acks: -1,
      messages: rows.map((row) => ({ key: row.messageKey, value: row.payload })),
    });
  });
  const consumer = r.kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const worker = new StreamsWorker({
    consumer,
    topic: r.topics.streamEvents,
    publisher,
    taskOptions: (partition) => ({
      store,
      topic: r.topics.streamEvents,
      partition,
      triggers: r.config.triggers,
      clock: new EventTimeClock(0),
      checkpointRecords,
      checkpointMs: 200,
    }),
    ...more,
  });
  return { worker, consumer, publisher };
}

async function batchesInbox(t: TestScope, r: Rig): Promise<Inbox> {
  const inbox = new Inbox();
  await startConsumer(
    t,
    r.kafka.consumer({ groupId: uniqueName('it-batches'), maxWaitTimeInMs: 100 }),
    r.topics.batches,
    inbox.handler('b'),
  );
  return inbox;
}

/**
 * Waits for as many batches as replay prints, and a second more (anything extra would show up then), and
 * checks they are replay's batches with none published twice. Returns them and their batch ids.
 */
async function expectReplayBatches(inbox: Inbox, expected: readonly string[]) {
  const received = await inbox.waitFor(expected.length, 40_000);
  await sleep(1000);
  assert.deepEqual(received.map((m) => asReplayLine(m.value as string)).sort(), [...expected].sort());
  const ids = received.map((m) => decodeBatch(m.value as string).batchId);
  assert.equal(new Set(ids).size, ids.length, 'no batch published twice');
  return { received, ids };
}

/** The rig's store with some methods replaced (undefined removes an optional one), the others passed through. */
function wrapStore(r: Rig, replace: Partial<TaskStore>): TaskStore {
  return {
    claimPartition: (...args) => r.store.claimPartition(...args),
    loadStreamEvents: (...args) => r.store.loadStreamEvents(...args),
    loadEventsOfStreams: (...args) => r.store.loadEventsOfStreams(...args),
    checkpoint: (...args) => r.store.checkpoint(...args),
    ...replace,
  };
}

test('route → streams → batches: the published batches are those winchester replay prints', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const expected = await replayLines();
  assert.ok(expected.length >= 10, `workload fires and expires enough streams (${expected.length})`);
  const r = await rig(t, 'streams');
  const inbox = await batchesInbox(t, r);
  const router = await route(r);
  const { worker } = streams(r, uniqueName('it-streams'));
  await worker.start();
  r.onStop(() => worker.stop());

  const { received, ids } = await expectReplayBatches(inbox, expected);
  assert.deepEqual(
    received.map((m) => m.key),
    ids,
    'keyed by batch id',
  );
  assert.deepEqual(await r.store.unpublishedOutbox(), [], 'every outbox row marked published');
  // Stop in dependency order while the producer and the database are still there.
  await worker.stop();
  await router.stop();
});

test('a streams worker that crashes mid-way is taken over from its checkpoints: same batches, none doubled', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const expected = await replayLines();
  const r = await rig(t, 'takeover');
  const inbox = await batchesInbox(t, r);
  const router = await route(r);
  const groupId = uniqueName('it-takeover');

  // The first worker checkpoints slowly, so it is stopped with part of the input handled.
  const slowStore = wrapStore(r, {
    // Without the batched load, so the per-stream fallback (one loadStreamEvents each) is covered too.
    loadEventsOfStreams: undefined,
    checkpoint: async (cp) => {
      await sleep(40);
      await r.store.checkpoint(cp);
    },
  });
  const first = streams(r, groupId, slowStore, 10);
  r.onStop(() => first.consumer.disconnect());
  await first.worker.start();
  const deadline = Date.now() + 30_000;
  while (inbox.messages.length < 3 && Date.now() < deadline) await sleep(20);
  // Crash: stop fetching and drop everything since the last checkpoint (no final checkpoint).
  await first.consumer.stop();
  await first.publisher.flush();
  await first.consumer.disconnect();
  const seenBeforeCrash = inbox.messages.length;
  assert.ok(
    seenBeforeCrash >= 3 && seenBeforeCrash < expected.length,
    `stopped mid-way (${seenBeforeCrash}/${expected.length})`,
  );

  const second = streams(r, groupId);
  await second.worker.start();
  r.onStop(() => second.worker.stop());
  await expectReplayBatches(inbox, expected);
  const epochs = [...second.worker.activeTasks.values()].map((task) => task.epoch);
  assert.ok(
    epochs.some((e) => e >= 2),
    'the new owner re-claimed (epoch bumped)',
  );
  await second.worker.stop();
  await router.stop();
});

test('stop with checkpoints in flight waits for them and checkpoints once more, with no offset-commit warning; a restart loses and doubles nothing', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const expected = await replayLines();
  const r = await rig(t, 'stop-inflight');
  const inbox = await batchesInbox(t, r);
  const router = await route(r);
  const groupId = uniqueName('it-stop-inflight');
  let inFlight = 0;
  let inFlightAtStop = -1;
  const slowStore = wrapStore(r, {
    checkpoint: async (cp) => {
      inFlight++;
      try {
        await sleep(150);
        await r.store.checkpoint(cp);
      } finally {
        inFlight--;
      }
    },
  });
  const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const first = streams(r, groupId, slowStore, 10, {
    log: (level, msg, fields) => void logs.push({ level, msg, ...(fields === undefined ? {} : { fields }) }),
  });
  r.onStop(() => first.worker.stop());
  await first.worker.start();
  const deadline = Date.now() + 30_000;
  while ((inbox.messages.length < 3 || inFlight === 0) && Date.now() < deadline) await sleep(5);
  inFlightAtStop = inFlight;
  await first.worker.stop();
  assert.ok(inFlightAtStop > 0, 'a checkpoint was in flight when stop() was called');
  assert.equal(inFlight, 0, 'stop() returned only once every checkpoint had finished');
  assert.deepEqual(
    logs.filter((l) => l.level !== 'info'),
    [],
    'no warning: neither "consumer#run must be called first" nor a failed final checkpoint',
  );
  assert.deepEqual(await r.store.unpublishedOutbox(), [], 'stop() published what its checkpoints wrote');

  const second = streams(r, groupId);
  await second.worker.start();
  r.onStop(() => second.worker.stop());
  await expectReplayBatches(inbox, expected);
  await second.worker.stop();
  await router.stop();
});

test('partitions are handled concurrently (partitionsConcurrently): claims overlap, same batches as replay', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const expected = await replayLines();
  const r = await rig(t, 'concurrent');
  const inbox = await batchesInbox(t, r);
  // Routed before the streams stage starts, so the first fetch brings records of every partition.
  const router = await route(r);
  const admin = r.kafka.admin();
  await admin.connect();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const offsets = await admin.fetchTopicOffsets(r.topics.streamEvents);
    if (offsets.every((o) => Number(o.high) > 0) || Date.now() > deadline) break;
    await sleep(100);
  }
  await admin.disconnect();
  let claiming = 0;
  let most = 0;
  const slowClaims = wrapStore(r, {
    claimPartition: async (...args) => {
      claiming++;
      most = Math.max(most, claiming);
      try {
        await sleep(1000);
        return await r.store.claimPartition(...args);
      } finally {
        claiming--;
      }
    },
  });
  const { worker } = streams(r, uniqueName('it-concurrent'), slowClaims, 25, { partitionsConcurrently: 3 });
  await worker.start();
  r.onStop(() => worker.stop());
  await expectReplayBatches(inbox, expected);
  assert.ok(most >= 2, `two or more partitions were claimed at the same time (at most ${most})`);
  await worker.stop();
  await router.stop();
});
