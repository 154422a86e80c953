/**
 * The pipeline worker process composed from winchester.yaml: handler classes loaded and every pipeline
 * step constructed once (a bad module, export or params stops the start with a ConfigError), topics
 * created when missing, one idempotent producer (new events, dead letters, and the handlers' publish),
 * and the {@link PipelineWorker} on the group `<kafka.client_id>.pipeline`. Used by
 * `winchester pipeline-worker` and the integration tests.
 */
import type { WinchesterConfig } from '../config/load.js';
import { PipelineStore } from '../db/pipeline-store.js';
import type { DatabasePool } from '../db/pool.js';
import { ensureTopics } from '../kafka/admin.js';
import { consumerRestartPolicy, RestartingConsumer } from '../kafka/consumer-restart.js';
import { createIdempotentProducer } from '../kafka/kafka.js';
import type { Kafka, Producer } from '../kafka/types.js';
import type { Logger } from '../log.js';
import type { WinchesterMetrics } from '../metrics/metrics.js';
import type { HandlerClass, HandlerContext, PublishPort } from '../pipeline/handler.js';
import { checkPipelineHandlers, handlerFactory, loadHandlerClasses } from '../pipeline/registry.js';
import type { RecordCodec } from '../serde/codec.js';
import { PipelineWorker, pipelineMetricsOf } from './pipeline-worker.js';
import { producerSendPort } from './router.js';

/** The consumer group of the pipeline workers, derived from kafka.client_id. */
export function pipelineGroupId(clientId: string): string {
  return `${clientId}.pipeline`;
}

/** Options of {@link PipelineService.start}. */
export interface PipelineServiceOptions {
  readonly config: WinchesterConfig;
  readonly kafka: Kafka;
  readonly pool: DatabasePool;
  readonly log: Logger;
  /** The process's metrics: the pipeline ones, plus rebalances, assigned partitions and database errors. */
  readonly metrics?: WinchesterMetrics;
  /**
   * Handler name → class. Default: loaded from the configuration (built-ins and pipeline_handlers
   * modules). Tests pass their own.
   */
  readonly handlerClasses?: ReadonlyMap<string, HandlerClass>;
  /** The HTTP client handlers get. Default: the global fetch. */
  readonly fetch?: typeof fetch;
  /** Consumer fetch wait (ms); tests lower it. Default 500. */
  readonly maxWaitTimeInMs?: number;
  /** Milliseconds between heartbeats while a pipeline runs. Default 1000. */
  readonly heartbeatIntervalMs?: number;
  /** Backoff jitter source (tests). Default Math.random. */
  readonly random?: () => number;
  /**
   * Called when the consumer stopped for good: kafkajs gave up on it on an error no restart cures
   * (authentication, authorization, invalid configuration), or the in-process restarts after an outage ran
   * out (src/kafka/consumer-restart.ts). The process should stop and exit non-zero so that it is
   * restarted, rather than live on consuming nothing.
   */
  readonly onFatal?: (error: unknown) => void;
  /**
   * Format of the batches read and the new events written: the Avro codec when a schema registry is
   * configured (src/cli/worker-runtime.ts workerAvro); default JSON text.
   */
  readonly codec?: RecordCodec;
}

/** A running pipeline worker process. Create with {@link PipelineService.start}. */
export class PipelineService {
  private joined = false;
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly worker: PipelineWorker,
    private readonly producer: Producer,
    private readonly restarting: RestartingConsumer,
    private readonly log: Logger,
    metrics: WinchesterMetrics | undefined,
  ) {
    const consumer = restarting.consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      this.joined = true;
      const partitions = Object.values(e.payload.memberAssignment).flat().length;
      metrics?.rebalances.labels({ group: e.payload.groupId }).inc();
      metrics?.partitionsAssigned.labels({ stage: 'pipeline' }).set(partitions);
      log('info', 'pipeline group joined', { group: e.payload.groupId, partitions });
    });
  }

  /**
   * Loads and checks the handlers (before touching Kafka, so a configuration mistake exits at once),
   * creates the missing topics, connects and starts consuming.
   * @throws ConfigError for a handler module, export or params that cannot be used;
   *   KafkaUnavailableError when Kafka cannot be reached.
   */
  static async start(options: PipelineServiceOptions): Promise<PipelineService> {
    const { config, kafka, log } = options;
    const settings = config.settings;
    const topics = settings.kafka.topics;
    const classes =
      options.handlerClasses ??
      (await loadHandlerClasses(config.handlers, {
        pipelines: config.pipelines,
        configFile: config.files.config,
      }));
    const producer = createIdempotentProducer(kafka, { retries: settings.kafka.retries });
    const send = producerSendPort(producer);
    const publish: PublishPort = (topic, messages) =>
      send(messages.map((m) => ({ topic, key: m.key, value: m.value })));
    const context: HandlerContext = { log, publish, fetch: options.fetch ?? globalThis.fetch };
    const createHandler = handlerFactory(classes, context);
    checkPipelineHandlers(config.pipelines, createHandler, {
      pipelineFile: config.files.pipelineConfig ?? 'pipelines.yaml',
    });

    await ensureTopics(
      kafka,
      [
        topics.batches,
        topics.stream_events,
        topics.dead_letter,
        // What notabene steps publish to: a broker without topic auto-creation would refuse every commit.
        ...publishedTopics(config),
      ],
      {
        partitions: settings.kafka.partitions,
        replicationFactor: settings.kafka.replication_factor,
        onCreated: (created) => log('info', 'topics created', { topics: created }),
      },
    );
    await producer.connect();
    const p = settings.pipeline_worker;
    let service: PipelineService | undefined;
    const restarting = new RestartingConsumer({
      create: () =>
        kafka.consumer({
          groupId: pipelineGroupId(settings.kafka.client_id),
          maxWaitTimeInMs: options.maxWaitTimeInMs ?? 500,
          sessionTimeout: Math.round(p.session_timeout * 1000),
          // kafkajs' default (3 s) must stay well below the session timeout, or members time out between beats.
          heartbeatInterval: Math.max(100, Math.min(3000, Math.round((p.session_timeout * 1000) / 5))),
        }),
      stage: 'pipeline',
      log,
      policy: consumerRestartPolicy(settings.kafka.retries),
      ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
      onCrash: () => service?.crashed(),
      ...(options.onFatal === undefined ? {} : { onFatal: options.onFatal }),
    });
    const consumer = restarting.consumer;
    const worker = new PipelineWorker({
      consumer,
      send,
      store: new PipelineStore(options.pool),
      batchesTopic: topics.batches,
      streamEventsTopic: topics.stream_events,
      deadLetterTopic: topics.dead_letter,
      pipelines: config.pipelines,
      triggers: config.triggers,
      createHandler,
      purgeCompletedStreams: settings.purge_completed_streams,
      maxRetries: p.max_retries,
      backoff: { baseMs: Math.round(p.retry_backoff * 1000), maxMs: Math.round(p.retry_backoff_max * 1000) },
      concurrency: p.concurrency,
      log,
      ...(options.metrics === undefined ? {} : { metrics: pipelineMetricsOf(options.metrics) }),
      ...(options.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      ...(options.random === undefined ? {} : { random: options.random }),
      ...(options.codec === undefined ? {} : { codec: options.codec }),
    });
    service = new PipelineService(worker, producer, restarting, log, options.metrics);
    try {
      await worker.start();
    } catch (error) {
      await service.stop().catch(() => undefined);
      throw error;
    }
    return service;
  }

  /** The consumer crashed: not ready until it (or its replacement) joins again. */
  private crashed(): void {
    this.joined = false;
  }

  /** In-process consumer restarts so far (the metric counts them too). */
  get consumerRestarts(): number {
    return this.restarting.restarts;
  }

  /** Readiness: the consumer has joined its group. */
  readiness(): Record<string, boolean> {
    return { pipeline_group_joined: this.joined };
  }

  /**
   * Graceful stop: the in-flight batch finishes, resolved offsets are committed, the group is left, and
   * the producer disconnects. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      let first: unknown;
      await this.worker.stop().catch((error: unknown) => {
        first = error;
      });
      await this.producer.disconnect().catch((error: unknown) => {
        first ??= error;
      });
      this.log('info', 'pipeline worker counts', { ...this.worker.counts });
      if (first !== undefined) throw first;
    })();
    return this.stopping;
  }
}

/** The topics the configured notabene steps publish to (`topic`, else the reference\'s `queue_name`). */
export function publishedTopics(config: WinchesterConfig): string[] {
  const out = new Set<string>();
  for (const pipeline of config.pipelines.values()) {
    for (const step of pipeline.handlers) {
      if (step.handler.kind !== 'builtin' || step.handler.name !== 'notabene') continue;
      const topic = step.params.topic ?? step.params.queue_name;
      if (typeof topic === 'string' && topic !== '') out.add(topic);
    }
  }
  return [...out];
}
