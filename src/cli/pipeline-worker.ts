import { startPruner } from '../db/retention.js';
import { UsageError } from '../errors.js';
import { createMetrics } from '../metrics/metrics.js';
import { startWorkerOps, type WorkerOps } from '../metrics/ops.js';
import { loadHandlerClasses } from '../pipeline/registry.js';
import { PipelineService, pipelineGroupId } from '../worker/pipeline-service.js';
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

const usage = `Usage: winchester pipeline-worker [-c FILE] [--migrate]

Runs a pipeline worker until SIGTERM or SIGINT: it consumes the fired and expired streams the trigger
workers publish to kafka.topics.batches (group <kafka.client_id>.pipeline) and runs each through its
pipeline of handlers (pipelines.yaml), so that every batch's commit() side effects happen once in effect:

  - a batch whose id is recorded complete in PostgreSQL is skipped (redelivery after a crash or rebalance);
  - a failed pipeline is retried pipeline_worker.max_retries times with jittered exponential backoff, then
    its stream moves to error (fire) or expire_error (expire) and the batch goes to kafka.topics.dead_letter
    with the reason; 'winchester streams retry' runs it again;
  - on success the new events handlers emitted go back to kafka.topics.stream_events, then completion is
    recorded and the stream completed (deleted unless purge_completed_streams is false).
A record that cannot be read goes to the dead-letter topic with the reason and never blocks its partition.
See docs/pipeline-worker.md.

At start the handler modules are imported and every pipeline step is constructed once: a missing module
or export, or params a handler refuses, exit 2 naming the file. Missing topics are created with
kafka.partitions partitions. On SIGTERM or SIGINT the worker finishes the batch in hand, commits its
offsets and leaves the group; a second signal exits at once. Logs are JSON lines on stdout. Prometheus
metrics, /healthz and /readyz (ready once the group is joined) listen on metrics.host:metrics.port
(0 disables them).

Options:
  -c, --config FILE   the configuration file (default: $WINCHESTER_CONFIG, else ./winchester.yaml);
                      DATABASE_URL and KAFKA_BROKERS override database.url and kafka.brokers
      --migrate       apply pending database migrations at start (default: refuse to start until
                      'winchester db upgrade' has run)
  -h, --help          show this help

With schema_registry.url set, batches are read and new events written as Avro (docs/avro.md).

Exit status: 0 after a graceful stop, 1 when Kafka, PostgreSQL or the schema registry cannot be used, 2 for
bad usage or configuration.
`;

function parse(args: string[]): { config: string | undefined; migrate: boolean } {
  const { values, positionals } = parseCommandArgs('pipeline-worker', args, {
    config: { type: 'string', short: 'c' },
    migrate: { type: 'boolean' },
  });
  if (positionals.length > 0)
    throw new UsageError(`pipeline-worker: unexpected argument '${positionals[0]}'`);
  return { config: values.config, migrate: values.migrate ?? false };
}

async function run(args: string[], io: CliIo): Promise<number> {
  const opts = parse(args);
  const path = opts.config ?? io.env.WINCHESTER_CONFIG ?? 'winchester.yaml';
  const { config, databaseUrl } = await loadWorkerConfig(path, io, 'pipeline-worker');
  const log = workerLogger(config, io, 'pipeline');
  logConfigWarnings(config, log);
  // Handler modules first: a missing module or export exits 2 before any service is contacted.
  const handlerClasses = await loadHandlerClasses(config.handlers, {
    pipelines: config.pipelines,
    configFile: path,
  });
  const metrics = createMetrics();
  const avro = await workerAvro(config, log, metrics);
  const pool = await openWorkerPool(databaseUrl, { migrate: opts.migrate, log });
  try {
    const kafka = workerKafka(config, log);
    const fatal = fatalStop('the pipeline consumer');
    const service = await PipelineService.start({
      config,
      kafka,
      pool,
      log,
      metrics,
      handlerClasses,
      onFatal: fatal.onFatal,
      ...(avro === undefined ? {} : { codec: avro.codec }),
    }).catch((error: unknown) => {
      throw workerStartError(error, 'pipeline-worker');
    });
    const settings = config.settings;
    const group = pipelineGroupId(settings.kafka.client_id);
    let ops: WorkerOps;
    try {
      ops = await startWorkerOps({
        host: settings.metrics.host,
        port: settings.metrics.port,
        metrics,
        kafka,
        lagTargets: [{ group, topic: settings.kafka.topics.batches }],
        log,
        ready: async () => {
          const checks = service.readiness();
          return { ready: Object.values(checks).every((c) => c === true), checks };
        },
      });
    } catch (error) {
      await service.stop().catch(() => undefined);
      throw error;
    }
    const pruner = startPruner({
      retention: settings.retention,
      pool,
      log,
      metrics,
      tables: ['completed_batches'],
    });
    const stopAll = async () => {
      await pruner?.stop();
      await service.stop();
      await ops.stop();
    };
    const p = settings.pipeline_worker;
    log('info', 'pipeline worker running', {
      group,
      topic: settings.kafka.topics.batches,
      pipelines: [...config.pipelines.keys()],
      max_retries: p.max_retries,
      concurrency: p.concurrency,
      purge_completed_streams: settings.purge_completed_streams,
      metrics_port: ops.port,
    });
    await untilSignalled({ stop: stopAll }, log, fatal.signal);
    fatal.throwIfFatal();
    log('info', 'pipeline worker stopped');
    return 0;
  } finally {
    await closeWorkerPool(pool, log);
  }
}

export const pipelineWorkerCommand: Command = {
  name: 'pipeline-worker',
  summary: 'run a pipeline worker: fired and expired streams through their handlers (Kafka + PostgreSQL)',
  usage,
  run,
};
