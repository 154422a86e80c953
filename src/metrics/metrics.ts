/**
 * The Prometheus metrics of both worker kinds (DESIGN.md §Observability). The names, types and label
 * names are a contract shared with the Helm chart's Grafana dashboard and the pipeline worker
 * (notes: metrics-names.md; docs/metrics.md documents them for operators).
 *
 * Every call of {@link createMetrics} defines the metrics on its own {@link Registry}, never on
 * prom-client's global one: a test (or a process running several workers) can make as many as it
 * likes without "metric already registered" clashes.
 */

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Why a notification was dropped by the router without producing a stream event record. */
export type DropReason = 'unmatched' | 'no_trigger';

/** The outcome of one pipeline batch (pipeline worker). */
export type PipelineOutcome =
  | 'completed'
  | 'failed'
  | 'retried'
  | 'dead_lettered'
  | 'skipped_duplicate'
  | 'skipped_state';

/** The phase of a handler call timed or counted by the pipeline worker. */
export type HandlerPhase = 'handle' | 'commit' | 'rollback';

/**
 * Every metric of the contract, one field per metric, named in camelCase after the metric (without
 * the `winchester_` prefix and the `_total` / `_seconds` suffixes). Label names are typed, so
 * `metrics.eventsMatched.labels({ trigger })` checks the label at compile time.
 */
export interface WinchesterMetrics {
  /** The registry every metric below (and the default process metrics) is registered on. */
  readonly registry: Registry;

  // Trigger worker, route stage.
  /** `winchester_notifications_received_total{topic}`: notifications read from the input topic. */
  readonly notificationsReceived: Counter<'topic'>;
  /** `winchester_notifications_dropped_total{reason}`: reason `unmatched` | `no_trigger`. */
  readonly notificationsDropped: Counter<'reason'>;
  /** `winchester_notifications_dead_lettered_total{reason}`: the distiller's bounded reasons. */
  readonly notificationsDeadLettered: Counter<'reason'>;
  /** `winchester_events_matched_total{trigger}`: distilled events matched by a trigger's criteria. */
  readonly eventsMatched: Counter<'trigger'>;
  /** `winchester_stream_event_records_total`: records produced to the stream-events topic. */
  readonly streamEventRecords: Counter;
  /** `winchester_ticks_sent_total`: tick records produced to the stream-events partitions. */
  readonly ticksSent: Counter;

  // Trigger worker, streams stage.
  /** `winchester_streams_opened_total{trigger}`. */
  readonly streamsOpened: Counter<'trigger'>;
  /** `winchester_streams_active{trigger}`: live streams in this worker's memory. */
  readonly streamsActive: Gauge<'trigger'>;
  /** `winchester_streams_fired_total{trigger}`. */
  readonly streamsFired: Counter<'trigger'>;
  /** `winchester_streams_expired_total{trigger}`. */
  readonly streamsExpired: Counter<'trigger'>;
  /** `winchester_streams_errored_total{trigger}`. */
  readonly streamsErrored: Counter<'trigger'>;
  /** `winchester_stream_events_duplicate_total`: repeated message id within a stream, ignored. */
  readonly streamEventsDuplicate: Counter;
  /** `winchester_checkpoints_total`: checkpoint transactions committed. */
  readonly checkpoints: Counter;
  /** `winchester_checkpoint_duration_seconds`: one checkpoint transaction, start to commit. */
  readonly checkpointDuration: Histogram;
  /** `winchester_checkpoint_conflicts_total`: version/epoch check failed, ownership lost. */
  readonly checkpointConflicts: Counter;
  /** `winchester_partitions_assigned{stage}`: partitions this worker owns, per stage. */
  readonly partitionsAssigned: Gauge<'stage'>;
  /** `winchester_batches_published_total{kind}`: fire/expire batches published (acknowledged). */
  readonly batchesPublished: Counter<'kind'>;
  /** `winchester_batches_by_reference_total`: batches over the inline limit, sent as claim checks. */
  readonly batchesByReference: Counter;
  /** `winchester_batch_publish_duration_seconds`: one outbox publication, send to acknowledgement. */
  readonly batchPublishDuration: Histogram;
  /** `winchester_fire_latency_seconds{kind}`: closing record handled → batch publication acknowledged. */
  readonly fireLatency: Histogram<'kind'>;

  // Both worker kinds.
  /** `winchester_consumer_lag{group,topic,partition}`: high watermark − committed offset. */
  readonly consumerLag: Gauge<'group' | 'topic' | 'partition'>;
  /** `winchester_rebalances_total{group}`: consumer group joins (kafkajs GROUP_JOIN). */
  readonly rebalances: Counter<'group'>;
  /** `winchester_database_errors_total{operation}`: database outages met (and retried). */
  readonly databaseErrors: Counter<'operation'>;
  /** `winchester_kafka_errors_total{operation}`: Kafka errors met (and retried). */
  readonly kafkaErrors: Counter<'operation'>;
  /**
   * `winchester_consumer_restarts_total{stage}`: consumers replaced in the process after kafkajs gave up on
   * them in a Kafka outage (src/kafka/consumer-restart.ts); stage `route`, `streams` or `pipeline`.
   */
  readonly consumerRestarts: Counter<'stage'>;
  /**
   * `winchester_schema_registry_errors_total{operation}`: registry calls that failed (`register`,
   * `fetch_schema`): unreachable, timed out, 5xx after retries, or refused. An unknown id (404) is not one.
   */
  readonly schemaRegistryErrors: Counter<'operation'>;
  /** `winchester_rows_pruned_total{table}`: rows deleted by retention (`completed_batches`, `outbox`). */
  readonly rowsPruned: Counter<'table'>;
  /** `winchester_prune_errors_total{table}`: retention runs that failed (tried again next interval). */
  readonly pruneErrors: Counter<'table'>;

  // Pipeline worker.
  /** `winchester_pipeline_batches_total{pipeline,kind,outcome}`. */
  readonly pipelineBatches: Counter<'pipeline' | 'kind' | 'outcome'>;
  /** `winchester_pipeline_duration_seconds{pipeline,outcome}`: one batch through its pipeline. */
  readonly pipelineDuration: Histogram<'pipeline' | 'outcome'>;
  /** `winchester_handler_duration_seconds{handler,phase}`: phase `handle` | `commit` | `rollback`. */
  readonly handlerDuration: Histogram<'handler' | 'phase'>;
  /** `winchester_handler_failures_total{handler,phase}`. */
  readonly handlerFailures: Counter<'handler' | 'phase'>;
  /** `winchester_pipeline_new_events_total{pipeline}`: events emitted by handlers. */
  readonly pipelineNewEvents: Counter<'pipeline'>;
  /** `winchester_pipeline_retries_total{pipeline}`. */
  readonly pipelineRetries: Counter<'pipeline'>;
}

/** Buckets of quick database/Kafka round trips: 1 ms to 10 s. */
const ROUND_TRIP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/**
 * Buckets of the fire latency: the checkpoint interval (seconds by default) sits between the
 * closing record and the publication, so the range reaches a few minutes.
 */
const LATENCY_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Buckets of pipeline and handler work, which may call out to other services: 1 ms to 5 min. */
const WORK_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * Defines every metric of the contract, plus prom-client's default process metrics (no prefix), on
 * `registry` (a fresh one by default).
 */
export function createMetrics(registry: Registry = new Registry()): WinchesterMetrics {
  const registers = [registry];
  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Gauge<L>({ name, help, labelNames, registers });
  const histogram = <L extends string = never>(
    name: string,
    help: string,
    buckets: number[],
    labelNames: readonly L[] = [],
  ) => new Histogram<L>({ name, help, buckets, labelNames, registers });

  const metrics: WinchesterMetrics = {
    registry,
    notificationsReceived: counter(
      'winchester_notifications_received_total',
      'Notifications read from the input topic.',
      ['topic'],
    ),
    notificationsDropped: counter(
      'winchester_notifications_dropped_total',
      'Notifications dropped by the router: no distiller definition matched (unmatched) or no trigger matched the event (no_trigger).',
      ['reason'],
    ),
    notificationsDeadLettered: counter(
      'winchester_notifications_dead_lettered_total',
      'Notifications sent to the dead-letter topic, by the reason the distiller rejected them.',
      ['reason'],
    ),
    eventsMatched: counter(
      'winchester_events_matched_total',
      "Distilled events matched by a trigger's match criteria.",
      ['trigger'],
    ),
    streamEventRecords: counter(
      'winchester_stream_event_records_total',
      'Records produced to the stream-events topic.',
    ),
    ticksSent: counter('winchester_ticks_sent_total', 'Tick records produced to the stream-events topic.'),
    streamsOpened: counter('winchester_streams_opened_total', 'Streams opened.', ['trigger']),
    streamsActive: gauge('winchester_streams_active', "Live streams in this worker's memory.", ['trigger']),
    streamsFired: counter('winchester_streams_fired_total', 'Streams fired.', ['trigger']),
    streamsExpired: counter('winchester_streams_expired_total', 'Streams expired.', ['trigger']),
    streamsErrored: counter('winchester_streams_errored_total', 'Streams put in error.', ['trigger']),
    streamEventsDuplicate: counter(
      'winchester_stream_events_duplicate_total',
      'Stream events ignored because their message id was already in the stream.',
    ),
    checkpoints: counter('winchester_checkpoints_total', 'Checkpoint transactions committed.'),
    checkpointDuration: histogram(
      'winchester_checkpoint_duration_seconds',
      'Duration of one checkpoint transaction.',
      ROUND_TRIP_BUCKETS,
    ),
    checkpointConflicts: counter(
      'winchester_checkpoint_conflicts_total',
      'Checkpoints refused because the partition version or epoch changed: ownership lost.',
    ),
    partitionsAssigned: gauge('winchester_partitions_assigned', 'Partitions assigned to this worker.', [
      'stage',
    ]),
    batchesPublished: counter(
      'winchester_batches_published_total',
      'Fire and expire batches published to the pipeline topic.',
      ['kind'],
    ),
    batchesByReference: counter(
      'winchester_batches_by_reference_total',
      'Batches over the inline size limit, published as a reference to the database copy.',
    ),
    batchPublishDuration: histogram(
      'winchester_batch_publish_duration_seconds',
      'Duration of one outbox publication, send to acknowledgement.',
      ROUND_TRIP_BUCKETS,
    ),
    fireLatency: histogram(
      'winchester_fire_latency_seconds',
      "Wall time from handling the record that closed a stream to the acknowledgement of its batch's publication.",
      LATENCY_BUCKETS,
      ['kind'],
    ),
    consumerLag: gauge(
      'winchester_consumer_lag',
      "Messages behind: the partition's high watermark minus the group's committed offset.",
      ['group', 'topic', 'partition'],
    ),
    rebalances: counter('winchester_rebalances_total', 'Consumer group joins (rebalances).', ['group']),
    databaseErrors: counter(
      'winchester_database_errors_total',
      'Database errors met (outages are retried).',
      ['operation'],
    ),
    kafkaErrors: counter('winchester_kafka_errors_total', 'Kafka errors met (retried).', ['operation']),
    consumerRestarts: counter(
      'winchester_consumer_restarts_total',
      'Consumers restarted in the process after kafkajs gave up on them in a Kafka outage, by stage.',
      ['stage'],
    ),
    schemaRegistryErrors: counter(
      'winchester_schema_registry_errors_total',
      'Schema registry calls that failed (unreachable, timed out, 5xx after retries, or refused), by operation (register, fetch_schema).',
      ['operation'],
    ),
    rowsPruned: counter(
      'winchester_rows_pruned_total',
      'Rows deleted by retention, by table (completed_batches, outbox).',
      ['table'],
    ),
    pruneErrors: counter(
      'winchester_prune_errors_total',
      'Retention runs that failed, by table (tried again at the next interval).',
      ['table'],
    ),
    pipelineBatches: counter('winchester_pipeline_batches_total', 'Pipeline batches handled, by outcome.', [
      'pipeline',
      'kind',
      'outcome',
    ]),
    pipelineDuration: histogram(
      'winchester_pipeline_duration_seconds',
      'Duration of one batch through its pipeline.',
      WORK_BUCKETS,
      ['pipeline', 'outcome'],
    ),
    handlerDuration: histogram(
      'winchester_handler_duration_seconds',
      'Duration of one handler call, by phase (handle, commit, rollback).',
      WORK_BUCKETS,
      ['handler', 'phase'],
    ),
    handlerFailures: counter(
      'winchester_handler_failures_total',
      'Handler calls that threw or returned an invalid result, by phase.',
      ['handler', 'phase'],
    ),
    pipelineNewEvents: counter(
      'winchester_pipeline_new_events_total',
      'New events emitted by pipeline handlers.',
      ['pipeline'],
    ),
    pipelineRetries: counter('winchester_pipeline_retries_total', 'Pipeline batch retries.', ['pipeline']),
  };
  collectDefaultMetrics({ register: registry });
  return metrics;
}
