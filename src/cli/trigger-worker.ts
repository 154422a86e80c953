import { setTimeout as sleep } from 'node:timers/promises';
import type { WinchesterConfig } from '../config/index.js';
import { type DatabasePool, sql } from '../db/pool.js';
import { startPruner } from '../db/retention.js';
import { UsageError } from '../errors.js';
import type { AvroWiring } from '../kafka/schema-registry.js';
import type { Kafka } from '../kafka/types.js';
import type { Logger } from '../log.js';
import { createMetrics, type WinchesterMetrics } from '../metrics/metrics.js';
import { startWorkerOps, type WorkerOps } from '../metrics/ops.js';
import {
  type TriggerStages,
  TriggerWorker,
  type TriggerWorkerOptions,
  triggerGroupIds,
} from '../worker/trigger-worker.js';
import { type CliIo, type Command, parseCommandArgs } from './io.js';
import {
  closeWorkerPool,
  fatalStop,
  loadWorkerConfig,
  logConfigWarnings,
  openWorkerPool,
  untilSignalled,
  workerAvro,
  workerKafka,
  workerLogger,
  workerStartError,
} from './worker-runtime.js';

const usage = `Usage: winchester trigger-worker [-c FILE] [--stage all|route|streams] [--migrate]

Runs a trigger worker until SIGTERM or SIGINT: it distills the notifications of kafka.topics.notifications,
matches them against the triggers, collects the matching events into streams kept in PostgreSQL, and
publishes every fired or expired stream to kafka.topics.batches for the pipeline workers.

Two stages, each a Kafka consumer group of its own (see docs/trigger-worker.md):
  route    notifications → distill → match → one record per (trigger, distinguishing values) on
           kafka.topics.stream_events (group <kafka.client_id>.route); malformed notifications go to
           kafka.topics.dead_letter with the reason in the headers; time ticks go to every partition.
  streams  per stream-events partition: the streams, their fire criteria and expirations, checkpointed to
           PostgreSQL with optimistic versions and an owner epoch (group <kafka.client_id>.streams).
Start as many workers as you like (up to kafka.partitions per stage): partitions and their streams move
between them as workers come and go.

At start, missing topics are created with kafka.partitions partitions and kafka.replication_factor, and
batches an earlier run left unpublished are published. On SIGTERM or SIGINT the worker finishes the batch
in hand, checkpoints every partition, publishes, and leaves its groups; a second signal exits at once.
Logs are JSON lines on stdout. Prometheus metrics, /healthz and /readyz (ready once each stage has joined
its group and PostgreSQL answers) listen on metrics.host:metrics.port (default 0.0.0.0:9464; 0 disables);
see docs/metrics.md.

Options:
  -c, --config FILE   the configuration file (default: $WINCHESTER_CONFIG, else ./winchester.yaml);
                      DATABASE_URL and KAFKA_BROKERS override database.url and kafka.brokers
      --stage STAGE   run only the route or only the streams stage (default: all)
      --migrate       apply pending database migrations at start (default: refuse to start until
                      'winchester db upgrade' has run)
  -h, --help          show this help

With schema_registry.url set, the stream-events and batches records are Avro in the Confluent wire
format and Avro notifications are read beside JSON (docs/avro.md); the schemas are registered at start.

Exit status: 0 after a graceful stop, 1 when Kafka, PostgreSQL or the schema registry cannot be used, 2 for
bad usage or configuration.
`;

interface Options {
  config: string | undefined;
  stage: TriggerStages;
  migrate: boolean;
}

function parse(args: string[]): Options {
  const { values, positionals } = parseCommandArgs('trigger-worker', args, {
    config: { type: 'string', short: 'c' },
    stage: { type: 'string' },
    migrate: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`trigger-worker: unexpected argument '${positionals[0]}'`);
  const stage = values.stage ?? 'all';
  if (stage !== 'all' && stage !== 'route' && stage !== 'streams') {
    throw new UsageError(`trigger-worker: --stage must be all, route or streams, got '${stage}'`);
  }
  return { config: values.config, stage, migrate: values.migrate ?? false };
}

/** What the caller of {@link triggerWorkerOptions} has opened itself. */
export interface TriggerWorkerParts {
  readonly pool: DatabasePool;
  readonly log: Logger;
  readonly metrics: WinchesterMetrics;
  readonly stages: TriggerStages;
  readonly onFatal: (error: unknown) => void;
  /** The Avro wiring of `workerAvro` (undefined: JSON records, no schema registry). */
  readonly avro: AvroWiring | undefined;
  /** Wraps the Kafka client the worker is given (the benchmarks watch its consumers' group events). */
  readonly wrapKafka?: (kafka: Kafka) => Kafka;
}

/**
 * The options this command starts its TriggerWorker with: the configuration's Kafka client (kafka.*
 * settings, kafka.retries, kafkajs logs through `log`) and, with a schema registry, the Avro codecs.
 * bench/worker-child.ts starts its workers with these too, so the benchmarks measure the worker as run.
 */
export function triggerWorkerOptions(
  config: WinchesterConfig,
  parts: TriggerWorkerParts,
): TriggerWorkerOptions & { readonly kafka: Kafka } {
  const kafka = workerKafka(config, parts.log);
  return {
    config,
    kafka: parts.wrapKafka === undefined ? kafka : parts.wrapKafka(kafka),
    pool: parts.pool,
    log: parts.log,
    metrics: parts.metrics,
    stages: parts.stages,
    onFatal: parts.onFatal,
    ...parts.avro,
  };
}

async function run(args: string[], io: CliIo): Promise<number> {
  const opts = parse(args);
  const path = opts.config ?? io.env.WINCHESTER_CONFIG ?? 'winchester.yaml';
  const { config, databaseUrl } = await loadWorkerConfig(path, io, 'trigger-worker');
  const log = workerLogger(config, io, 'trigger');
  logConfigWarnings(config, log);
  const metrics = createMetrics();
  const avro = await workerAvro(config, log, metrics);
  const pool = await openWorkerPool(databaseUrl, { migrate: opts.migrate, log });
  try {
    const settings = config.settings;
    const fatal = fatalStop('a trigger-worker consumer');
    const options = triggerWorkerOptions(config, {
      pool,
      log,
      metrics,
      stages: opts.stage,
      onFatal: fatal.onFatal,
      avro,
    });
    const kafka = options.kafka;
    const worker = await TriggerWorker.start(options).catch((error: unknown) => {
      throw workerStartError(error, 'trigger-worker');
    });
    const groups = triggerGroupIds(settings.kafka.client_id);
    const lagTargets = [];
    if (opts.stage !== 'streams')
      lagTargets.push({ group: groups.route, topic: settings.kafka.topics.notifications });
    if (opts.stage !== 'route')
      lagTargets.push({ group: groups.streams, topic: settings.kafka.topics.stream_events });
    let ops: WorkerOps;
    try {
      ops = await startWorkerOps({
        host: settings.metrics.host,
        port: settings.metrics.port,
        metrics,
        kafka,
        lagTargets,
        log,
        ready: async () => {
          const checks: Record<string, boolean | string> = { ...worker.readiness() };
          checks.database = await databaseReachable(pool);
          return { ready: Object.values(checks).every((c) => c === true), checks };
        },
      });
    } catch (error) {
      await worker.stop().catch(() => undefined);
      throw error;
    }
    log('info', 'trigger worker running', {
      stages: opts.stage,
      groups,
      clock: settings.clock.mode,
      triggers: config.triggers.length,
      stream_events_partitions: worker.streamEventsPartitions,
      metrics_port: ops.port,
    });
    // Published outbox rows are the trigger side's to prune (route-only workers own no outbox work).
    const pruner = startPruner({
      retention: settings.retention,
      pool,
      log,
      metrics,
      tables: opts.stage === 'route' ? [] : ['outbox'],
    });
    await untilSignalled(
      {
        stop: async () => {
          await pruner?.stop();
          await worker.stop();
          await ops.stop();
        },
      },
      log,
      fatal.signal,
    );
    fatal.throwIfFatal();
    log('info', 'trigger worker stopped');
    return 0;
  } finally {
    await closeWorkerPool(pool, log);
  }
}

/** True when a trivial query answers within 2 s; else what went wrong (for /readyz). */
async function databaseReachable(pool: DatabasePool): Promise<true | string> {
  try {
    await Promise.race([
      pool.oneFirst(sql.unsafe`SELECT 1`),
      sleep(2000, undefined, { ref: false }).then(() => {
        throw new Error('no answer within 2 s');
      }),
    ]);
    return true;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export const triggerWorkerCommand: Command = {
  name: 'trigger-worker',
  summary:
    'run a trigger worker: route notifications into streams, fire and expire them (Kafka + PostgreSQL)',
  usage,
  run,
};
