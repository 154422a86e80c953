import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PartitionLag } from '../../../src/kafka/lag.js';
import type { Logger } from '../../../src/log.js';
import { ConsumerLagMonitor } from '../../../src/metrics/lag-monitor.js';
import { createMetrics, type WinchesterMetrics } from '../../../src/metrics/metrics.js';

const lag = (partition: number, n: number): PartitionLag => ({
  partition,
  highWatermark: 100,
  committed: 100 - n,
  lag: n,
});

async function gauge(m: WinchesterMetrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await m.consumerLag.get()).values) {
    out[`${v.labels.group}/${v.labels.topic}/${v.labels.partition}`] = v.value;
  }
  return out;
}

describe('ConsumerLagMonitor', () => {
  test('sets the gauge per group, topic and partition, and removes partitions no longer reported', async () => {
    const metrics = createMetrics();
    let answer: Record<string, PartitionLag[]> = {
      'g1/t1': [lag(0, 5), lag(1, 0)],
      'g2/t2': [lag(0, 7)],
    };
    const monitor = new ConsumerLagMonitor({
      metrics,
      targets: [
        { group: 'g1', topic: 't1' },
        { group: 'g2', topic: 't2' },
      ],
      fetchLag: async (group, topic) => answer[`${group}/${topic}`] ?? [],
    });
    await monitor.refresh();
    assert.deepEqual(await gauge(metrics), { 'g1/t1/0': 5, 'g1/t1/1': 0, 'g2/t2/0': 7 });
    answer = { 'g1/t1': [lag(0, 2)], 'g2/t2': [lag(0, 9)] };
    await monitor.refresh();
    assert.deepEqual(await gauge(metrics), { 'g1/t1/0': 2, 'g2/t2/0': 9 });
  });

  test('a failed fetch keeps the last values, counts a Kafka error, logs, and does not stop other targets', async () => {
    const metrics = createMetrics();
    const lines: string[] = [];
    const log: Logger = (level, msg, fields) => lines.push(`${level} ${msg} ${JSON.stringify(fields)}`);
    let fail = false;
    const monitor = new ConsumerLagMonitor({
      metrics,
      targets: [
        { group: 'g1', topic: 't1' },
        { group: 'g2', topic: 't2' },
      ],
      fetchLag: async (group) => {
        if (fail && group === 'g1') throw new Error('broker away');
        return [lag(0, fail ? 3 : 1)];
      },
      log,
    });
    await monitor.refresh();
    fail = true;
    await monitor.refresh();
    assert.deepEqual(await gauge(metrics), { 'g1/t1/0': 1, 'g2/t2/0': 3 });
    const errors = (await metrics.kafkaErrors.get()).values.find(
      (v) => v.labels.operation === 'fetch_consumer_lag',
    );
    assert.equal(errors?.value, 1);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^warn .*broker away/);
  });

  test('a scrape refreshes only when the last refresh is older than minRefreshMs; refreshes never overlap', async () => {
    const metrics = createMetrics();
    let now = 0;
    let calls = 0;
    let release: (() => void) | undefined;
    const monitor = new ConsumerLagMonitor({
      metrics,
      targets: [{ group: 'g', topic: 't' }],
      fetchLag: async () => {
        calls++;
        await new Promise<void>((r) => {
          release = r;
        });
        return [lag(0, calls)];
      },
      minRefreshMs: 5000,
      nowMs: () => now,
    });
    const first = monitor.refreshIfStale();
    const second = monitor.refresh(); // joins the one in flight
    assert.equal(calls, 1);
    release!();
    await Promise.all([first, second]);
    now = 4999;
    await monitor.refreshIfStale();
    assert.equal(calls, 1, 'fresh enough');
    now = 5000;
    const third = monitor.refreshIfStale();
    assert.equal(calls, 2);
    release!();
    await third;
    assert.deepEqual(await gauge(metrics), { 'g/t/0': 2 });
  });

  test('start() refreshes at once and then on its timer; stop() ends it', async () => {
    const metrics = createMetrics();
    let calls = 0;
    const monitor = new ConsumerLagMonitor({
      metrics,
      targets: [{ group: 'g', topic: 't' }],
      fetchLag: async () => {
        calls++;
        return [lag(0, calls)];
      },
      intervalMs: 20,
    });
    monitor.start();
    await new Promise((r) => setTimeout(r, 150));
    await monitor.stop();
    const seen = calls;
    assert.ok(seen >= 3, `refreshed ${seen} times`);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(calls, seen, 'no refresh after stop');
  });
});
