import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { loadConfig, type WinchesterConfig } from '../../../src/config/index.js';
import type { Consumer } from '../../../src/kafka/types.js';
import { createMetrics, type WinchesterMetrics } from '../../../src/metrics/metrics.js';
import { generateNotifications } from '../../../src/notigen/index.js';
import {
  type InboundMessage,
  type OutboundMessage,
  Router,
  RouterWorker,
} from '../../../src/worker/router.js';

let config: WinchesterConfig;
before(async () => {
  config = await loadConfig('etc/winchester.yaml', { env: {} });
});

/** A consumer that records its GROUP_JOIN listener, so a test can play rebalances. */
function fakeConsumer(): Consumer & { join(groupId: string, partitions: number[]): void } {
  const listeners: ((e: unknown) => void)[] = [];
  const consumer = {
    events: { GROUP_JOIN: 'consumer.group_join' },
    on: (_event: string, fn: (e: unknown) => void) => {
      listeners.push(fn);
      return () => listeners.splice(listeners.indexOf(fn), 1);
    },
    connect: async () => undefined,
    subscribe: async () => undefined,
    run: async () => undefined,
    disconnect: async () => undefined,
    join(groupId: string, partitions: number[]) {
      for (const fn of listeners)
        fn({ payload: { groupId, memberAssignment: { notifications: partitions } } });
    },
  };
  return consumer as unknown as Consumer & { join(groupId: string, partitions: number[]): void };
}

function payload(messages: InboundMessage[]) {
  return {
    batch: { topic: 'notifications', partition: 0, messages },
    resolveOffset: () => undefined,
    heartbeat: async () => undefined,
    isRunning: () => true,
    isStale: () => false,
    commitOffsetsIfNecessary: async () => undefined,
  } as unknown as Parameters<RouterWorker['handleBatch']>[0];
}

const msg = (offset: number, value: string | null): InboundMessage => ({
  offset: String(offset),
  key: null,
  value: value === null ? null : Buffer.from(value),
});

async function value(
  m: WinchesterMetrics,
  metric: keyof WinchesterMetrics,
  labels: Record<string, string> = {},
) {
  const got = await (
    m[metric] as { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> }
  ).get();
  return got.values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((n, v) => n + v.value, 0);
}

function setup(send: (out: readonly OutboundMessage[]) => Promise<void> = async () => undefined) {
  const metrics = createMetrics();
  const router = new Router({
    distiller: config.distiller!,
    triggers: config.triggers,
    streamEventsTopic: 'se',
    deadLetterTopic: 'dl',
  });
  const consumer = fakeConsumer();
  const worker = new RouterWorker({
    router,
    consumer,
    send,
    notificationsTopic: 'notifications',
    streamEventsPartitions: 3,
    tickIntervalMs: 0,
    clockMode: 'wall',
    now: () => 1_000_000,
    chunkSize: 7,
    metrics,
  });
  return { metrics, router, consumer, worker };
}

describe('route stage metrics', () => {
  test('received, dropped, dead-lettered, matched per trigger and records equal what the router did', async () => {
    const { metrics, router, worker } = setup();
    const notifications = [...generateNotifications({ seed: 11, instances: 4, days: 1, count: 60 })];
    const input = [
      ...notifications.map((n, i) => msg(i, JSON.stringify(n))),
      msg(100, '{bad'),
      msg(101, null),
      msg(
        102,
        JSON.stringify({ event_type: 'nobody.cares', message_id: 'x', timestamp: '2015-02-01 00:00:00' }),
      ),
    ];
    // Every trigger and drop reason has a series before anything was routed.
    for (const def of config.triggers)
      assert.equal(await value(metrics, 'eventsMatched', { trigger: def.name }), 0);
    await worker.handleBatch(payload(input.slice(0, 30)));
    await worker.handleBatch(payload(input.slice(30)));
    const c = router.counts;
    assert.equal(await value(metrics, 'notificationsReceived', { topic: 'notifications' }), input.length);
    assert.equal(await value(metrics, 'notificationsDropped', { reason: 'unmatched' }), 1);
    assert.equal(await value(metrics, 'notificationsDropped', { reason: 'no_trigger' }), c.joinedNone);
    assert.equal(await value(metrics, 'notificationsDeadLettered', { reason: 'invalid_json' }), 1);
    assert.equal(await value(metrics, 'notificationsDeadLettered', { reason: 'empty_value' }), 1);
    assert.equal(await value(metrics, 'streamEventRecords'), c.records);
    assert.ok(c.records > 0);
    for (const [i, def] of config.triggers.entries()) {
      assert.equal(await value(metrics, 'eventsMatched', { trigger: def.name }), c.matched[i], def.name);
    }
    assert.equal(await value(metrics, 'eventsMatched'), c.records, 'one record per matched trigger');
  });

  test('a failed send counts a Kafka error, and the chunk is counted when routed again', async () => {
    let fail = true;
    const { metrics, router, worker } = setup(async () => {
      if (fail) throw new Error('broker down');
    });
    const input = [...generateNotifications({ seed: 2, instances: 2, days: 1, count: 5 })].map((n, i) =>
      msg(i, JSON.stringify(n)),
    );
    await assert.rejects(worker.handleBatch(payload(input)), /broker down/);
    assert.equal(await value(metrics, 'kafkaErrors', { operation: 'produce_stream_events' }), 1);
    fail = false;
    await worker.handleBatch(payload(input));
    // At-least-once: the metrics say what the router did, repeats included.
    assert.equal(await value(metrics, 'notificationsReceived'), 10);
    assert.equal(router.counts.notifications, 10);
  });

  test('ticks sent, rebalances and assigned partitions', async () => {
    const { metrics, consumer, worker } = setup();
    await worker.start();
    await worker.tick();
    await worker.tick();
    assert.equal(await value(metrics, 'ticksSent'), 6, 'one per stream-events partition per tick');
    consumer.join('g1', [0, 2]);
    assert.equal(await value(metrics, 'partitionsAssigned', { stage: 'route' }), 2);
    consumer.join('g1', [1]);
    assert.equal(await value(metrics, 'rebalances', { group: 'g1' }), 2);
    assert.equal(await value(metrics, 'partitionsAssigned', { stage: 'route' }), 1);
    await worker.stop();
    assert.equal(await value(metrics, 'partitionsAssigned', { stage: 'route' }), 0);
  });

  test('a failed tick counts a Kafka error', async () => {
    const { metrics, worker } = setup(async () => {
      throw new Error('nope');
    });
    await worker.tick();
    assert.equal(await value(metrics, 'kafkaErrors', { operation: 'send_ticks' }), 1);
    assert.equal(await value(metrics, 'ticksSent'), 0);
  });
});
