/**
 * The trigger worker process: the route stage ({@link RouterWorker}) and the streams stage
 * ({@link StreamsWorker}) composed from winchester.yaml, sharing one producer. Used by
 * `winchester trigger-worker`, the end-to-end tests and the benchmark.
 *
 * Each stage is a consumer group of its own (`<client_id>.route`, `<client_id>.streams`), so the two scale
 * independently even when they run in the same process; `stages` runs only one of them.
 */
import type { WinchesterConfig } from '../config/load.js';
import { CheckpointStore } from '../db/checkpoint-store.js';
import type { DatabasePool } from '../db/pool.js';
import { type Clock, EventTimeClock, WallClock } from '../engine/clock.js';
import { ConfigError } from '../errors.js';
import { ensureTopics } from '../kafka/admin.js';
import { consumerRestartPolicy, RestartingConsumer } from '../kafka/consumer-restart.js';
import { createIdempotentProducer } from '../kafka/kafka.js';
import { MAX_INLINE_BATCH_BYTES } from '../kafka/records.js';
import type { Consumer, Kafka, Producer } from '../kafka/types.js';
import type { Logger } from '../log.js';
import type { WinchesterMetrics } from '../metrics/metrics.js';
import { jsonCodec, type RecordCodec } from '../serde/codec.js';
import type { AvroNotificationDecoder } from '../serde/notifications.js';
import { publishValue } from '../serde/publish.js';
import { type Instant, nowInstant } from '../timex/instant.js';
import { type OutboundMessage, producerSendPort, Router, RouterWorker, type SendPort } from './router.js';
import { OutboxPublisher } from './stream-task.js';
import { StreamsWorker } from './streams-worker.js';

/** Which stages a process runs. */
export type TriggerStages = 'all' | 'route' | 'streams';

/** The consumer group ids of the stages, derived from kafka.client_id. */
export function triggerGroupIds(clientId: string): { route: string; streams: string } {
  return { route: `${clientId}.route`, streams: `${clientId}.streams` };
}

/** Options of {@link TriggerWorker}. */
export interface TriggerWorkerOptions {
  readonly config: WinchesterConfig;
  readonly kafka: Kafka;
  readonly pool: DatabasePool;
  readonly log: Logger;
  /** Where both stages' metrics go (none when absent). */
  readonly metrics?: WinchesterMetrics;
  /** Default `all`. */
  readonly stages?: TriggerStages;
  /** Wall-clock time (ticks in wall mode, engine clocks). Default: the machine clock. */
  readonly now?: () => Instant;
  /** Largest batch value published inline; bigger ones go by reference. Default {@link MAX_INLINE_BATCH_BYTES}. */
  readonly maxInlineBatchBytes?: number;
  /**
   * Where batch records are produced. Default: this worker's idempotent producer (acks from all in-sync
   * replicas). Failure drills pass one that fails, to leave committed batches unpublished.
   */
  readonly batchSend?: SendPort;
  /**
   * Called when a stage's consumer stopped for good (the process would stay up, consuming nothing): kafkajs
   * gave up on it on an error no restart cures (authentication, authorization, invalid configuration), or
   * the in-process restarts after an outage ran out (`kafka.retries` in a row without joining the group;
   * src/kafka/consumer-restart.ts). The CLI stops and exits 1 so the orchestrator restarts it.
   */
  readonly onFatal?: (error: unknown) => void;
  /** Consumer fetch wait (ms); tests lower it. Default 500. */
  readonly maxWaitTimeInMs?: number;
  /**
   * Format of the stream-events and batches records (the Avro codec with a schema registry); default
   * JSON text. Outbox payloads stay JSON and are encoded at publish time.
   */
  readonly codec?: RecordCodec;
  /** Reads Confluent-framed Avro notifications beside JSON (with a schema registry). */
  readonly avroNotifications?: AvroNotificationDecoder;
}

/** A running trigger worker. Create with {@link TriggerWorker.start}. */
export class TriggerWorker {
  private routerWorker: RouterWorker | undefined;
  private streamsWorker: StreamsWorker | undefined;
  private readonly consumers: RestartingConsumer[] = [];
  private stopping: Promise<void> | undefined;
  private joined = { route: false, streams: false };

  private constructor(
    private readonly options: TriggerWorkerOptions,
    private readonly producer: Producer,
    readonly router: Router | undefined,
    readonly publisher: OutboxPublisher,
    readonly streamEventsPartitions: number,
  ) {}

  /**
   * Creates the topics that are missing (with kafka.partitions and kafka.replication_factor), connects,
   * publishes batches an earlier run left in the outbox, and starts the stages.
   * @throws ConfigError when the configuration has no event definitions (nothing could be routed);
   * KafkaUnavailableError / DatabaseUnavailableError when a service cannot be reached.
   */
  static async start(options: TriggerWorkerOptions): Promise<TriggerWorker> {
    const { config, kafka, log } = options;
    const settings = config.settings;
    const topics = settings.kafka.topics;
    const stages = options.stages ?? 'all';
    const store = new CheckpointStore(options.pool);
    if (stages !== 'route') {
      const others = await store.otherStreamTopics(topics.stream_events);
      if (others.length > 0) {
        throw new ConfigError([
          {
            file: config.files.config,
            message:
              `the database already holds the streams of stream-events topic ${others.join(', ')}; one ` +
              `database serves one kafka.topics.stream_events (${topics.stream_events} here): use another ` +
              'database, or the same topic',
          },
        ]);
      }
    }
    const partitionCounts = await ensureTopics(
      kafka,
      [topics.notifications, topics.stream_events, topics.batches, topics.dead_letter],
      {
        partitions: settings.kafka.partitions,
        replicationFactor: settings.kafka.replication_factor,
        onCreated: (created) => log('info', 'topics created', { topics: created }),
      },
    );
    const partitions = partitionCounts.get(topics.stream_events) ?? 0;
    const producer = createIdempotentProducer(kafka, { retries: settings.kafka.retries });
    await producer.connect();
    const send = producerSendPort(producer);
    const maxInline = options.maxInlineBatchBytes ?? MAX_INLINE_BATCH_BYTES;
    const codec = options.codec ?? jsonCodec;
    const publisher = new OutboxPublisher(
      store,
      async (rows) => {
        const messages: OutboundMessage[] = rows.map((row) => {
          const value = publishValue(codec, row, maxInline);
          // Measured only when it could be over the limit: UTF-8 takes at most 3 bytes per UTF-16 unit.
          const bytes = row.payload.length * 3 > maxInline ? Buffer.byteLength(row.payload) : 0;
          if (bytes > maxInline) {
            log('info', 'batch published by reference (larger than the inline limit)', {
              batch_id: row.batchId,
              bytes,
            });
          }
          return { topic: topics.batches, key: row.messageKey, value };
        });
        await (options.batchSend ?? send)(messages);
      },
      500,
      options.metrics === undefined ? {} : { metrics: options.metrics, maxInlineBatchBytes: maxInline },
    );
    const distiller = config.distiller;
    const router =
      stages === 'streams' || distiller === null
        ? undefined
        : new Router({
            distiller,
            triggers: config.triggers,
            streamEventsTopic: topics.stream_events,
            deadLetterTopic: topics.dead_letter,
            maxNotificationBytes: settings.trigger_worker.max_notification_bytes,
            codec,
            // Unknown (0) only if the topic vanished meanwhile: then the producer's partitioner decides.
            ...(partitions > 0 ? { streamEventsPartitions: partitions } : {}),
            ...(options.avroNotifications === undefined
              ? {}
              : { avroNotifications: options.avroNotifications }),
          });
    if (stages !== 'streams' && distiller === null) {
      log(
        'warn',
        'no distiller_config: the route stage is not started (no notification can become an event)',
      );
    }
    const worker = new TriggerWorker(options, producer, router, publisher, partitions);
    try {
      await worker.startStages(send);
    } catch (error) {
      await worker.stop().catch(() => undefined);
      throw error;
    }
    return worker;
  }

  private async startStages(send: ReturnType<typeof producerSendPort>): Promise<void> {
    const { config, kafka, log } = this.options;
    const settings = config.settings;
    const topics = settings.kafka.topics;
    const stages = this.options.stages ?? 'all';
    const groups = triggerGroupIds(settings.kafka.client_id);
    const now = this.options.now ?? nowInstant;
    const maxWaitTimeInMs = this.options.maxWaitTimeInMs ?? 500;
    const sessionTimeout = Math.round(settings.trigger_worker.session_timeout * 1000);
    // Kafka's rule of thumb: a third of the session timeout, so two heartbeats may be lost.
    const heartbeatInterval = Math.max(100, Math.floor(sessionTimeout / 3));
    const consumerTimings = { maxWaitTimeInMs, sessionTimeout, heartbeatInterval };
    if (stages !== 'route') {
      const consumer = this.restarting('streams', () =>
        kafka.consumer({ groupId: groups.streams, ...consumerTimings }),
      );
      const lateness = Math.round(settings.clock.lateness * 1e6);
      this.streamsWorker = new StreamsWorker({
        consumer,
        topic: topics.stream_events,
        publisher: this.publisher,
        log,
        partitionsConcurrently: settings.trigger_worker.partitions_concurrently,
        taskOptions: (partition) => ({
          store: new CheckpointStore(this.options.pool),
          topic: topics.stream_events,
          partition,
          triggers: config.triggers,
          clock: clockFor(settings.clock.mode, lateness, now),
          duplicateWindow: Math.round(settings.duplicate_window * 1e6),
          checkpointRecords: settings.trigger_worker.checkpoint_records,
          checkpointMs: Math.round(settings.trigger_worker.checkpoint_interval * 1000),
          ...(this.options.codec === undefined ? {} : { codec: this.options.codec }),
        }),
        ...(this.options.metrics === undefined ? {} : { metrics: this.options.metrics }),
      });
      await this.streamsWorker.start();
      log('info', 'streams stage started', { group: groups.streams, topic: topics.stream_events });
    }
    if (stages !== 'streams' && this.router !== undefined) {
      const consumer = this.restarting('route', () =>
        kafka.consumer({ groupId: groups.route, ...consumerTimings }),
      );
      this.routerWorker = new RouterWorker({
        router: this.router,
        consumer,
        send,
        notificationsTopic: topics.notifications,
        streamEventsPartitions: this.streamEventsPartitions,
        tickIntervalMs: Math.round(settings.trigger_worker.tick_interval * 1000),
        clockMode: settings.clock.mode,
        now,
        fromBeginning: settings.trigger_worker.start_from === 'earliest',
        onError: (message) => log('warn', message),
        ...(this.options.metrics === undefined ? {} : { metrics: this.options.metrics }),
      });
      await this.routerWorker.start();
      log('info', 'route stage started', { group: groups.route, topic: topics.notifications });
    }
  }

  /**
   * The stage's consumer, replaced in the process when kafkajs gives up on it in an outage. A replaced
   * streams consumer first drops the stage's tasks, as a revocation does.
   */
  private restarting(stage: 'route' | 'streams', create: () => Consumer): Consumer {
    const restarting = new RestartingConsumer({
      create,
      stage,
      log: this.options.log,
      policy: consumerRestartPolicy(this.options.config.settings.kafka.retries),
      ...(this.options.metrics === undefined ? {} : { metrics: this.options.metrics }),
      onCrash: () => {
        this.joined[stage] = false;
        this.options.metrics?.kafkaErrors.labels({ operation: `${stage}_consumer` }).inc();
      },
      ...(stage === 'streams' ? { beforeRestart: () => this.streamsWorker?.revokeAll() } : {}),
      ...(this.options.onFatal === undefined ? {} : { onFatal: this.options.onFatal }),
    });
    this.consumers.push(restarting);
    const consumer = restarting.consumer;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      this.joined[stage] = true;
    });
    return consumer;
  }

  /** In-process consumer restarts so far, both stages (the metric counts them by stage). */
  get consumerRestarts(): number {
    return this.consumers.reduce((n, c) => n + c.restarts, 0);
  }

  /** The running streams stage (for metrics and tests). */
  get streams(): StreamsWorker | undefined {
    return this.streamsWorker;
  }

  /** Readiness: each started stage has joined its group. */
  readiness(): Record<string, boolean> {
    const checks: Record<string, boolean> = {};
    if (this.routerWorker !== undefined) checks.route_group_joined = this.joined.route;
    if (this.streamsWorker !== undefined) checks.streams_group_joined = this.joined.streams;
    return checks;
  }

  /**
   * Graceful stop: the route stage stops first (its in-flight chunk is produced and committed), then the
   * streams stage finishes its batch, checkpoints every partition, publishes and leaves its group.
   * Idempotent; concurrent calls share one stop.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (what: () => Promise<void> | undefined) => {
      try {
        await what();
      } catch (error) {
        errors.push(error);
      }
    };
    await attempt(() => this.routerWorker?.stop());
    await attempt(() => this.streamsWorker?.stop());
    await attempt(() => this.producer.disconnect());
    if (errors.length > 0) throw errors[0];
  }
}

function clockFor(mode: 'wall' | 'event', latenessUs: number, now: () => Instant): Clock {
  return mode === 'event' ? new EventTimeClock(latenessUs) : new WallClock(now);
}
