import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { createMetrics } from '../../../src/metrics/metrics.js';

/** The contract (notes: metrics-names.md): name → [type, label names]. */
const CONTRACT: Record<string, [string, string[]]> = {
  winchester_notifications_received_total: ['counter', ['topic']],
  winchester_notifications_dropped_total: ['counter', ['reason']],
  winchester_notifications_dead_lettered_total: ['counter', ['reason']],
  winchester_events_matched_total: ['counter', ['trigger']],
  winchester_stream_event_records_total: ['counter', []],
  winchester_ticks_sent_total: ['counter', []],
  winchester_streams_opened_total: ['counter', ['trigger']],
  winchester_streams_active: ['gauge', ['trigger']],
  winchester_streams_fired_total: ['counter', ['trigger']],
  winchester_streams_expired_total: ['counter', ['trigger']],
  winchester_streams_errored_total: ['counter', ['trigger']],
  winchester_stream_events_duplicate_total: ['counter', []],
  winchester_checkpoints_total: ['counter', []],
  winchester_checkpoint_duration_seconds: ['histogram', []],
  winchester_checkpoint_conflicts_total: ['counter', []],
  winchester_partitions_assigned: ['gauge', ['stage']],
  winchester_batches_published_total: ['counter', ['kind']],
  winchester_batches_by_reference_total: ['counter', []],
  winchester_batch_publish_duration_seconds: ['histogram', []],
  winchester_fire_latency_seconds: ['histogram', ['kind']],
  winchester_consumer_lag: ['gauge', ['group', 'topic', 'partition']],
  winchester_rebalances_total: ['counter', ['group']],
  winchester_database_errors_total: ['counter', ['operation']],
  winchester_kafka_errors_total: ['counter', ['operation']],
  winchester_consumer_restarts_total: ['counter', ['stage']],
  winchester_schema_registry_errors_total: ['counter', ['operation']],
  winchester_pipeline_batches_total: ['counter', ['pipeline', 'kind', 'outcome']],
  winchester_pipeline_duration_seconds: ['histogram', ['pipeline', 'outcome']],
  winchester_handler_duration_seconds: ['histogram', ['handler', 'phase']],
  winchester_handler_failures_total: ['counter', ['handler', 'phase']],
  winchester_pipeline_new_events_total: ['counter', ['pipeline']],
  winchester_pipeline_retries_total: ['counter', ['pipeline']],
  winchester_rows_pruned_total: ['counter', ['table']],
  winchester_prune_errors_total: ['counter', ['table']],
};

describe('createMetrics', () => {
  test('registers every contract metric with its type and label names', async () => {
    const metrics = createMetrics();
    const byName = new Map((await metrics.registry.getMetricsAsJSON()).map((m) => [m.name, m]));
    for (const [name, [type, labels]] of Object.entries(CONTRACT)) {
      const metric = metrics.registry.getSingleMetric(name);
      assert.ok(metric, `${name} is registered`);
      assert.equal(String(byName.get(name)?.type), type, `${name} is a ${type}`);
      assert.deepEqual(
        [...((metric as unknown as { labelNames: string[] }).labelNames ?? [])].sort(),
        [...labels].sort(),
        `${name} labels`,
      );
    }
  });

  test('every winchester_ metric registered is in the contract, and every field is one of them', () => {
    const metrics = createMetrics();
    const own = metrics.registry
      .getMetricsAsArray()
      .map((m) => (m as unknown as { name: string }).name)
      .filter((n) => n.startsWith('winchester_'));
    assert.deepEqual(own.sort(), Object.keys(CONTRACT).sort());
    const fieldMetrics = Object.entries(metrics)
      .filter(([key]) => key !== 'registry')
      .map(([, m]) => (m as { name: string }).name)
      .sort();
    assert.deepEqual(fieldMetrics, Object.keys(CONTRACT).sort());
  });

  test('adds the default process metrics without a prefix', () => {
    const metrics = createMetrics();
    assert.ok(metrics.registry.getSingleMetric('process_cpu_user_seconds_total'));
    assert.ok(metrics.registry.getSingleMetric('nodejs_heap_size_total_bytes'));
  });

  test('two calls do not clash, and their values are independent', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.eventsMatched.labels({ trigger: 't' }).inc(3);
    b.eventsMatched.labels({ trigger: 't' }).inc(1);
    const value = async (m: typeof a) =>
      (await m.eventsMatched.get()).values.find((v) => v.labels.trigger === 't')?.value;
    assert.equal(await value(a), 3);
    assert.equal(await value(b), 1);
  });

  test('uses the registry it is given', () => {
    const registry = new Registry();
    const metrics = createMetrics(registry);
    assert.equal(metrics.registry, registry);
    assert.ok(registry.getSingleMetric('winchester_checkpoints_total'));
  });
});
