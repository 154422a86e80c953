import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { OutboxRow } from '../../../src/db/checkpoint-store.js';
import { OwnershipLostError } from '../../../src/db/checkpoint-store.js';
import { EventTimeClock } from '../../../src/engine/clock.js';
import type { StreamRow } from '../../../src/engine/state.js';
import { encodeTick } from '../../../src/kafka/records.js';
import type { Consumer } from '../../../src/kafka/types.js';
import { createMetrics, type WinchesterMetrics } from '../../../src/metrics/metrics.js';
import type { Event } from '../../../src/model/event.js';
import { distinguishingKey } from '../../../src/triggers/key.js';
import { OutboxPublisher, type TaskStore } from '../../../src/worker/stream-task.js';
import { StreamsWorker } from '../../../src/worker/streams-worker.js';
import { memoryTaskStore, streamEventRecord, usageTrigger } from '../../helpers/stream-task.js';
import { ev, HOUR, MINUTE, T0 } from '../engine/builder.js';

const def = usageTrigger('fire_pipe');

const record = (e: Event): string => streamEventRecord(def, e);

const row = (seq: number, triggerName: string, instance: string): StreamRow => ({
  id: `p0-${seq}`,
  seq,
  trigger: triggerName,
  key: distinguishingKey({ instance_id: { type: 'text', value: instance } }),
  first: T0 - MINUTE,
  last: T0 - MINUTE,
  expireAt: T0 + 10 * HOUR,
  fireAt: null,
  version: 1,
  counts: [0],
  messageIds: [`old-${seq}`],
});

/** A task store and outbox in memory: checkpoints append their outbox rows, the publisher reads them. */
function memoryStore(restored: StreamRow[], failures: unknown[] = []) {
  const outbox: (OutboxRow & { published: boolean })[] = [];
  const store = memoryTaskStore({
    claim: { offset: null, nextSeq: restored.length + 1, liveStreams: restored },
    failures,
    onCheckpoint: (cp) => {
      for (const w of cp.outbox) outbox.push({ ...w, id: outbox.length + 1, published: false });
    },
  });
  const outboxStore = {
    unpublishedOutbox: async () => outbox.filter((r) => !r.published),
    markPublished: async (ids: readonly number[]) => {
      for (const r of outbox) if (ids.includes(r.id)) r.published = true;
      return ids.length;
    },
  };
  return { store, outboxStore, outbox, cps: store.cps };
}

function fakeConsumer() {
  const listeners: ((e: unknown) => void)[] = [];
  const consumer = {
    events: { GROUP_JOIN: 'consumer.group_join' },
    on: (_e: string, fn: (e: unknown) => void) => {
      listeners.push(fn);
      return () => undefined;
    },
    connect: async () => undefined,
    subscribe: async () => undefined,
    run: async () => undefined,
    stop: async () => undefined,
    disconnect: async () => undefined,
    commitOffsets: async () => undefined,
    seek: () => undefined,
    join(groupId: string, partitions: number[]) {
      for (const fn of listeners) fn({ payload: { groupId, memberAssignment: { se: partitions } } });
    },
  };
  return consumer as unknown as Consumer & { join(groupId: string, partitions: number[]): void };
}

/** A fetched batch; `lag` is what kafkajs reports behind its last record ('0': caught up). */
function batch(values: (string | null)[], firstOffset = 0, lag = '1') {
  const messages = values.map((v, i) => ({
    offset: String(firstOffset + i),
    key: null,
    value: v === null ? null : Buffer.from(v),
  }));
  return {
    batch: {
      topic: 'se',
      partition: 0,
      messages,
      firstOffset: () => String(firstOffset),
      offsetLag: () => lag,
    },
    heartbeat: async () => undefined,
    resolveOffset: () => undefined,
    isRunning: () => true,
    isStale: () => false,
  } as unknown as Parameters<StreamsWorker['handleBatch']>[0];
}

async function value(
  m: WinchesterMetrics,
  metric: keyof WinchesterMetrics,
  labels: Record<string, string> = {},
) {
  const got = await (
    m[metric] as {
      get(): Promise<{ values: { labels: Record<string, unknown>; value: number; metricName?: string }[] }>;
    }
  ).get();
  return got.values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((n, v) => n + v.value, 0);
}

async function histogramCount(
  h: WinchesterMetrics['fireLatency'] | WinchesterMetrics['checkpointDuration'],
  labels: Record<string, string> = {},
) {
  const got = (await h.get()) as {
    values: { metricName?: string; labels: Record<string, unknown>; value: number }[];
  };
  const find = (suffix: string) =>
    got.values.find(
      (v) => v.metricName?.endsWith(suffix) && Object.entries(labels).every(([k, x]) => v.labels[k] === x),
    );
  const count = find('_count');
  const sum = find('_sum');
  return { count: count?.value ?? 0, sum: sum?.value ?? 0 };
}

function setup(restored: StreamRow[], failures: unknown[] = [], checkpointRecords = 1000) {
  const metrics = createMetrics();
  const clock = { ms: 0 };
  const mem = memoryStore(restored, failures);
  const publisher = new OutboxPublisher(
    mem.outboxStore,
    async () => {
      clock.ms += 250; // the broker takes 250 ms to acknowledge
    },
    500,
    { metrics, nowMs: () => clock.ms },
  );
  const consumer = fakeConsumer();
  const worker = new StreamsWorker({
    consumer,
    topic: 'se',
    publisher,
    metrics,
    taskOptions: (partition) => ({
      store: mem.store,
      topic: 'se',
      partition,
      triggers: [def],
      clock: new EventTimeClock(0),
      checkpointRecords,
      checkpointMs: 1e9,
      nowMs: () => clock.ms,
    }),
  });
  return { metrics, clock, mem, worker, consumer };
}

describe('streams stage metrics', () => {
  test('opened, active, fired, duplicates, errored, checkpoints, batches and fire latency', async () => {
    // One restored stream of `usage` (live) and one of a trigger no longer configured (errored).
    const { metrics, clock, mem, worker } = setup([row(1, 'usage', 'old'), row(2, 'gone', 'x')], [], 6);
    await worker.start();
    const a1 = ev('compute.exists', T0, { instance_id: 'a' }, 'a1');
    clock.ms = 1000;
    await worker.handleBatch(
      batch([
        record(a1),
        record(a1), // the same message id again: ignored
        record(ev('compute.exists', T0, { instance_id: 'b' }, 'b1')),
        record(ev('fire.me', T0 + MINUTE, { instance_id: 'a' }, 'a2')),
        encodeTick(T0 + 2 * MINUTE), // `a` fires
        'not a record',
      ]),
    );
    // The checkpoint commits, and its batch is published, after the batch is handled.
    await worker.settled();
    assert.equal(mem.cps.length, 1, 'one checkpoint after six records');
    assert.equal(mem.outbox.length, 1);
    assert.ok(mem.outbox[0]!.published);
    assert.equal(await value(metrics, 'streamsOpened', { trigger: 'usage' }), 2);
    assert.equal(await value(metrics, 'streamsFired', { trigger: 'usage' }), 1);
    assert.equal(await value(metrics, 'streamsExpired', { trigger: 'usage' }), 0);
    assert.equal(await value(metrics, 'streamsErrored', { trigger: 'gone' }), 1);
    assert.equal(
      await value(metrics, 'streamsActive', { trigger: 'usage' }),
      2,
      'restored `old` and new `b`',
    );
    assert.equal(await value(metrics, 'streamEventsDuplicate'), 1);
    assert.equal(await value(metrics, 'checkpoints'), 1);
    assert.equal((await histogramCount(metrics.checkpointDuration)).count, 1);
    assert.equal(await value(metrics, 'batchesPublished', { kind: 'fire' }), 1);
    assert.equal(await value(metrics, 'batchesPublished', { kind: 'expire' }), 0);
    const latency = await histogramCount(metrics.fireLatency, { kind: 'fire' });
    assert.deepEqual(
      latency,
      { count: 1, sum: 0.25 },
      'closing record handled at 1000 ms, acknowledged at 1250 ms',
    );
    assert.equal((await histogramCount(metrics.batchPublishDuration)).sum, 0.25);

    // More records: counters move by the increase only.
    await worker.handleBatch(
      batch(
        [
          record(ev('compute.exists', T0 + 3 * MINUTE, { instance_id: 'c' }, 'c1')),
          encodeTick(T0 + 12 * HOUR), // everything left expires (no expire pipeline: no batch)
        ],
        6,
      ),
    );
    await worker.stop();
    assert.equal(await value(metrics, 'streamsOpened', { trigger: 'usage' }), 3);
    assert.equal(await value(metrics, 'streamsExpired', { trigger: 'usage' }), 3);
    assert.equal(await value(metrics, 'streamsActive', { trigger: 'usage' }), 0);
    assert.equal(await value(metrics, 'checkpoints'), 2, 'the final checkpoint of stop()');
    assert.equal(await value(metrics, 'batchesPublished'), 1);
    assert.equal(await value(metrics, 'partitionsAssigned', { stage: 'streams' }), 0);
  });

  test('a batch republished after a restart is counted but has no fire latency', async () => {
    const metrics = createMetrics();
    const rows: OutboxRow[] = [
      { id: 1, batchId: 'b1', streamId: 's1', kind: 'expire', messageKey: 'b1', payload: '{}' },
    ];
    const publisher = new OutboxPublisher(
      { unpublishedOutbox: async () => rows.splice(0), markPublished: async (ids) => ids.length },
      async () => undefined,
      500,
      { metrics },
    );
    await publisher.flush();
    assert.equal(await value(metrics, 'batchesPublished', { kind: 'expire' }), 1);
    assert.equal((await histogramCount(metrics.fireLatency)).count, 0);
  });

  test('batches over the inline limit are counted as published by reference', async () => {
    const metrics = createMetrics();
    const rows: OutboxRow[] = [
      { id: 1, batchId: 'b1', streamId: 's1', kind: 'fire', messageKey: 'b1', payload: 'x'.repeat(10) },
      { id: 2, batchId: 'b2', streamId: 's2', kind: 'fire', messageKey: 'b2', payload: 'é'.repeat(6) },
      { id: 3, batchId: 'b3', streamId: 's3', kind: 'fire', messageKey: 'b3', payload: 'x'.repeat(11) },
    ];
    const publisher = new OutboxPublisher(
      { unpublishedOutbox: async () => rows.splice(0), markPublished: async (ids) => ids.length },
      async () => undefined,
      500,
      { metrics, maxInlineBatchBytes: 10 },
    );
    await publisher.flush();
    assert.equal(await value(metrics, 'batchesPublished', { kind: 'fire' }), 3);
    assert.equal(await value(metrics, 'batchesByReference'), 2, '12 UTF-8 bytes and 11 bytes are over 10');
  });

  test('lost ownership counts a checkpoint conflict and takes the partition out of streams_active', async () => {
    const lost = new OwnershipLostError('se', 0, 'epoch', 'epoch 1 is no longer current');
    const { metrics, worker, consumer } = setup([], [lost], 2);
    await worker.start();
    consumer.join('streams-group', [0, 1]);
    assert.equal(await value(metrics, 'partitionsAssigned', { stage: 'streams' }), 2);
    assert.equal(await value(metrics, 'rebalances', { group: 'streams-group' }), 1);
    await worker.handleBatch(
      batch([
        record(ev('compute.exists', T0, { instance_id: 'a' }, 'a1')),
        record(ev('compute.exists', T0, { instance_id: 'b' }, 'b1')),
      ]),
    );
    // The checkpoint fails in flight; the partition's next batch finds it failed and drops the task.
    await worker.settled();
    assert.equal(worker.activeTasks.size, 1, 'not dropped before its partition is handled again');
    await worker.handleBatch(batch([record(ev('compute.exists', T0, { instance_id: 'c' }, 'c1'))], 2));
    assert.equal(await value(metrics, 'checkpointConflicts'), 1);
    assert.equal(await value(metrics, 'checkpoints'), 0);
    assert.equal(await value(metrics, 'streamsOpened', { trigger: 'usage' }), 2);
    assert.equal(await value(metrics, 'streamsActive', { trigger: 'usage' }), 0, 'the task is gone');
    assert.equal(worker.activeTasks.size, 0);
  });

  test('a batch that catches up with its partition is checkpointed at once, below the thresholds', async () => {
    const { metrics, worker } = setup([], []);
    await worker.start();
    await worker.handleBatch(batch([record(ev('compute.exists', T0, { instance_id: 'a' }, 'a1'))], 0, '1'));
    await worker.settled();
    assert.equal(await value(metrics, 'checkpoints'), 0, 'more records are behind: the thresholds decide');
    await worker.handleBatch(batch([record(ev('compute.exists', T0, { instance_id: 'b' }, 'b1'))], 1, '0'));
    await worker.settled();
    assert.equal(await value(metrics, 'checkpoints'), 1, 'caught up: no later batch would come to save it');
  });

  test('a partition that takes long to restore is claimed with heartbeats going on', async () => {
    const metrics = createMetrics();
    const mem = memoryStore([]);
    const claimPartition = mem.store.claimPartition;
    const slow: TaskStore = {
      ...mem.store,
      claimPartition: async (topic, partition) => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return claimPartition(topic, partition);
      },
    };
    const worker = new StreamsWorker({
      consumer: fakeConsumer(),
      topic: 'se',
      publisher: new OutboxPublisher(mem.outboxStore, async () => undefined),
      metrics,
      claimHeartbeatMs: 50,
      taskOptions: (partition) => ({
        store: slow,
        topic: 'se',
        partition,
        triggers: [def],
        clock: new EventTimeClock(0),
      }),
    });
    await worker.start();
    let beats = 0;
    const payload = batch([record(ev('compute.exists', T0, { instance_id: 'a' }, 'a1'))]);
    payload.heartbeat = async () => {
      beats++;
      if (beats === 2) throw new Error('The group is rebalancing'); // ignored: the claim goes on
    };
    await worker.handleBatch(payload);
    // 300 ms at one per 50 ms: about 6, and one more at the end of the batch; at least 3 on a slow machine.
    assert.ok(beats >= 3, `heartbeats while restoring: ${beats}`);
    assert.equal(worker.activeTasks.size, 1);
    const after = beats;
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(beats, after, 'no heartbeat once the claim is done');
    await worker.stop();
  });

  test('retried checkpoint failures count database errors', async () => {
    const { WinchesterError } = await import('../../../src/errors.js');
    const { metrics, worker } = setup([], [new WinchesterError('db down', { retriable: true })], 1);
    await worker.start();
    await worker.handleBatch(batch([record(ev('compute.exists', T0, { instance_id: 'a' }, 'a1'))]));
    await worker.settled();
    // Counters move when the partition is handled next (or at stop).
    await worker.stop();
    assert.equal(await value(metrics, 'databaseErrors', { operation: 'checkpoint' }), 1);
    assert.equal(await value(metrics, 'checkpoints'), 1);
  });
});
