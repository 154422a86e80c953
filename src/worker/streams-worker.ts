/**
 * The streams stage on kafkajs: a consumer group of the stream-events topic whose members run one
 * {@link StreamTask} per assigned partition.
 *
 * Postgres, not Kafka, says where a partition resumes: the first batch of a partition claims it (epoch
 * bump) and, when the stored offset differs from where Kafka started, seeks there (kafkajs #375: a seek
 * is only honoured once the consumer runs, so it is done from inside eachBatch) and drops the batch.
 * Kafka's committed offsets follow the checkpoints and are informational. On every group join, tasks of
 * partitions no longer assigned are dropped without a checkpoint: the new owner resumes from the last
 * checkpoint and fences this member, so nothing is written twice. A task that gets OwnershipLostError is
 * dropped the same way and re-claimed by the next batch of its partition, if it is still ours.
 */
import { OwnershipLostError } from '../db/checkpoint-store.js';
import { DatabaseUnavailableError } from '../db/databases.js';
import { DatabaseError } from '../db/errors.js';
import type { Consumer, EachBatchPayload } from '../kafka/types.js';
import type { WinchesterMetrics } from '../metrics/metrics.js';
import {
  type OutboxPublisher,
  StreamTask,
  type StreamTaskCounts,
  type StreamTaskOptions,
} from './stream-task.js';

/** Options of {@link StreamsWorker}. */
export interface StreamsWorkerOptions {
  /** A consumer of the streams group (not yet connected). */
  readonly consumer: Consumer;
  readonly topic: string;
  /** Task options for a partition (a fresh clock each time). */
  readonly taskOptions: (partition: number) => StreamTaskOptions;
  readonly publisher: OutboxPublisher;
  /** Records handled between heartbeats inside a long batch. Default 1000. */
  readonly heartbeatEvery?: number;
  /** Structured log lines (one JSON object each). */
  readonly log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /**
   * Where the stage's metrics go (streams of the contract, checkpoints, rebalances, partitions, errors).
   * The publisher takes the same object separately (batches and fire latency).
   */
  readonly metrics?: WinchesterMetrics;
}

/** What {@link StreamsMetricsSync} last moved into the metrics from one task's counters. */
interface Flushed {
  duplicates: number;
  checkpointRetries: number;
  byTrigger: Map<string, { opened: number; fired: number; expired: number; errored: number }>;
}

/**
 * Moves the tasks' plain-number counters into the Prometheus metrics by their increase since the last
 * call (once per fetched batch and checkpoint, never per record), and sets streams_active to the sum of
 * the live tasks' live streams per trigger.
 */
class StreamsMetricsSync {
  private readonly flushed = new WeakMap<StreamTask, Flushed>();
  /** Triggers seen so far: their gauge goes to 0 when no task holds one of their streams any more. */
  private readonly triggers = new Set<string>();

  constructor(private readonly m: WinchesterMetrics) {}

  /** Counter increases of `task` since its last sync. */
  task(task: StreamTask): void {
    const c: StreamTaskCounts = task.counts;
    let f = this.flushed.get(task);
    if (f === undefined) {
      f = { duplicates: 0, checkpointRetries: 0, byTrigger: new Map() };
      this.flushed.set(task, f);
    }
    const m = this.m;
    if (c.duplicates !== f.duplicates) m.streamEventsDuplicate.inc(c.duplicates - f.duplicates);
    if (c.checkpointRetries !== f.checkpointRetries) {
      m.databaseErrors.labels({ operation: 'checkpoint' }).inc(c.checkpointRetries - f.checkpointRetries);
    }
    f.duplicates = c.duplicates;
    f.checkpointRetries = c.checkpointRetries;
    for (const [trigger, t] of c.byTrigger) {
      this.triggers.add(trigger);
      let ft = f.byTrigger.get(trigger);
      if (ft === undefined) {
        ft = { opened: 0, fired: 0, expired: 0, errored: 0 };
        f.byTrigger.set(trigger, ft);
      }
      const labels = { trigger };
      m.streamsOpened.labels(labels).inc(t.opened - ft.opened);
      m.streamsFired.labels(labels).inc(t.fired - ft.fired);
      m.streamsExpired.labels(labels).inc(t.expired - ft.expired);
      m.streamsErrored.labels(labels).inc(t.errored - ft.errored);
      ft.opened = t.opened;
      ft.fired = t.fired;
      ft.expired = t.expired;
      ft.errored = t.errored;
    }
  }

  /** streams_active per trigger: the live streams of the tasks this worker holds now. */
  active(tasks: Iterable<StreamTask>): void {
    const sums = new Map<string, number>();
    for (const name of this.triggers) sums.set(name, 0);
    for (const task of tasks) {
      for (const [trigger, t] of task.counts.byTrigger)
        sums.set(trigger, (sums.get(trigger) ?? 0) + t.active);
    }
    for (const [trigger, n] of sums) this.m.streamsActive.labels({ trigger }).set(n);
  }
}

/** PostgreSQL refused or could not be reached (as opposed to Kafka, or a bug). */
function isDatabaseError(error: unknown): boolean {
  return error instanceof DatabaseError || error instanceof DatabaseUnavailableError;
}

type BatchPayload = Pick<EachBatchPayload, 'batch' | 'heartbeat' | 'isRunning' | 'isStale' | 'resolveOffset'>;

/** Runs stream tasks for the partitions the group assigns to this member. */
export class StreamsWorker {
  private readonly tasks = new Map<number, StreamTask>();
  private removeJoinListener: (() => void) | undefined;
  private stopped = false;
  private readonly metricsSync: StreamsMetricsSync | undefined;

  constructor(private readonly options: StreamsWorkerOptions) {
    this.metricsSync = options.metrics && new StreamsMetricsSync(options.metrics);
  }

  /** The live tasks by partition (for metrics and tests). */
  get activeTasks(): ReadonlyMap<number, StreamTask> {
    return this.tasks;
  }

  /** Publishes batches left unpublished by an earlier run, then joins the group and starts consuming. */
  async start(): Promise<void> {
    const o = this.options;
    await o.publisher.flush();
    o.metrics?.partitionsAssigned.labels({ stage: 'streams' }).set(0);
    this.removeJoinListener = o.consumer.on(o.consumer.events.GROUP_JOIN, (e) => {
      const assigned = new Set(e.payload.memberAssignment[o.topic] ?? []);
      for (const p of [...this.tasks.keys()]) {
        if (!assigned.has(p)) {
          this.tasks.delete(p);
          o.log?.('info', 'partition revoked: state dropped', { topic: o.topic, partition: p });
        }
      }
      if (o.metrics !== undefined) {
        o.metrics.rebalances.labels({ group: e.payload.groupId }).inc();
        o.metrics.partitionsAssigned.labels({ stage: 'streams' }).set(assigned.size);
        this.metricsSync?.active(this.tasks.values());
      }
    });
    await o.consumer.connect();
    await o.consumer.subscribe({ topics: [o.topic], fromBeginning: true });
    await o.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.handleBatch(payload),
    });
  }

  /** Handles one fetched batch of one partition. */
  async handleBatch(payload: BatchPayload): Promise<void> {
    const o = this.options;
    const { batch } = payload;
    const partition = batch.partition;
    let task = this.tasks.get(partition);
    if (task === undefined) {
      try {
        task = await StreamTask.claim(o.taskOptions(partition));
      } catch (error) {
        if (isDatabaseError(error)) o.metrics?.databaseErrors.labels({ operation: 'claim_partition' }).inc();
        throw error;
      }
      this.tasks.set(partition, task);
      o.log?.('info', 'partition claimed', {
        topic: o.topic,
        partition,
        epoch: task.epoch,
        offset: task.resumed ? task.nextOffset : null,
      });
      const first = Number(batch.firstOffset() ?? batch.messages[0]?.offset);
      if (first > task.nextOffset) {
        // Kafka starts after what Postgres has (or, never checkpointed, after offset 0): go back there.
        o.consumer.seek({ topic: o.topic, partition, offset: String(task.nextOffset) });
        return;
      }
    }
    const every = o.heartbeatEvery ?? 1000;
    let n = 0;
    try {
      await task.prepare(batch.messages.map((m) => m.value));
      for (const m of batch.messages) {
        if (!payload.isRunning() || payload.isStale()) break;
        task.handle(Number(m.offset), m.value);
        // The fetch position: without it kafkajs fetches from the batch's start again (stuck past 1 MB).
        payload.resolveOffset(m.offset);
        if (++n % every === 0) await payload.heartbeat();
        if (task.checkpointDue()) await this.checkpoint(task);
      }
      // Caught up with the partition: no further batch comes to reach the count or time threshold, so
      // what this one changed (the streams a tick closed, say) is checkpointed and published now.
      if (payload.isRunning() && !payload.isStale() && batch.offsetLag() === '0') await this.checkpoint(task);
    } catch (error) {
      this.tasks.delete(partition);
      this.syncMetrics(task);
      if (error instanceof OwnershipLostError) {
        o.metrics?.checkpointConflicts.inc();
        o.log?.('warn', 'ownership lost: state dropped', { topic: o.topic, partition, error: error.message });
        return;
      }
      // Anything else (Postgres down past the retries): forget the partition's state so the next batch
      // re-claims from the last checkpoint, and let kafkajs retry the batch.
      if (isDatabaseError(error)) o.metrics?.databaseErrors.labels({ operation: 'checkpoint' }).inc();
      throw error;
    }
    this.syncMetrics(task);
    await payload.heartbeat();
  }

  private syncMetrics(task: StreamTask): void {
    if (this.metricsSync === undefined) return;
    this.metricsSync.task(task);
    this.metricsSync.active(this.tasks.values());
  }

  private async checkpoint(task: StreamTask): Promise<void> {
    const o = this.options;
    const started = performance.now();
    if (!(await task.checkpoint())) return;
    if (o.metrics !== undefined) {
      o.metrics.checkpointDuration.observe((performance.now() - started) / 1000);
      o.metrics.checkpoints.inc();
    }
    o.publisher.stamp(task.takeCommittedBatches());
    await o.consumer
      .commitOffsets([{ topic: o.topic, partition: task.partition, offset: String(task.nextOffset) }])
      .catch((error: unknown) => {
        o.metrics?.kafkaErrors.labels({ operation: 'commit_offsets' }).inc();
        o.log?.('warn', 'informational offset commit failed', { error: String(error) });
      });
    await o.publisher.flush().catch((error: unknown) => {
      (isDatabaseError(error) ? o.metrics?.databaseErrors : o.metrics?.kafkaErrors)
        ?.labels({ operation: 'publish_batches' })
        .inc();
      o.log?.('warn', 'publishing batches failed; retried after the next checkpoint', {
        error: String(error),
      });
    });
  }

  /**
   * Graceful stop: lets the in-flight batch finish, checkpoints every task, publishes, leaves the group.
   * Idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const o = this.options;
    await o.consumer.stop();
    for (const task of this.tasks.values()) {
      try {
        await this.checkpoint(task);
      } catch (error) {
        o.log?.('warn', 'final checkpoint failed', { partition: task.partition, error: String(error) });
      }
      this.metricsSync?.task(task);
    }
    this.tasks.clear();
    this.metricsSync?.active([]);
    o.metrics?.partitionsAssigned.labels({ stage: 'streams' }).set(0);
    this.removeJoinListener?.();
    await o.consumer.disconnect();
  }
}
