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
  /**
   * Partitions handled at the same time (kafkajs partitionsConsumedConcurrently), so one partition's
   * checkpoint or claim does not hold up the others. Default 1.
   */
  readonly partitionsConcurrently?: number;
  /** Milliseconds between heartbeats while a partition is claimed and restored. Default 1000. */
  readonly claimHeartbeatMs?: number;
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

/**
 * The work that follows checkpoints but need not delay them: the informational Kafka offset commit and
 * the outbox publication, side by side (a batch waits for its checkpoint, not for a coordinator round
 * trip). One run at a time; requests made while it runs are coalesced into one more run (offsets by
 * partition, the latest wins).
 */
class AfterCheckpoint {
  private offsets = new Map<number, number>();
  private requested = false;
  private running: Promise<void> | undefined;
  /** Set once the consumer stops: offsets can no longer be committed through it (Postgres is authoritative). */
  consumerStopped = false;

  constructor(private readonly o: StreamsWorkerOptions) {}

  /** Commits `offset` for `partition` (when given) and publishes the outbox, soon. */
  request(partition?: number, offset?: number): void {
    if (partition !== undefined && offset !== undefined) this.offsets.set(partition, offset);
    this.requested = true;
    if (this.running === undefined) this.running = this.loop();
  }

  /** Resolves once nothing is running or requested. Never rejects. */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  private async loop(): Promise<void> {
    const o = this.o;
    try {
      while (this.requested) {
        this.requested = false;
        const offsets = this.offsets;
        this.offsets = new Map();
        // The informational offset commit runs alongside the publication, not before it: a batch
        // waits only for the checkpoint that wrote it, never for a Kafka round trip Postgres does not need.
        const committed =
          offsets.size > 0 && !this.consumerStopped
            ? o.consumer
                .commitOffsets(
                  [...offsets].map(([partition, offset]) => ({
                    topic: o.topic,
                    partition,
                    offset: String(offset),
                  })),
                )
                .catch((error: unknown) => {
                  o.metrics?.kafkaErrors.labels({ operation: 'commit_offsets' }).inc();
                  o.log?.('warn', 'informational offset commit failed', { error: String(error) });
                })
            : undefined;
        await o.publisher.flush().catch((error: unknown) => {
          (isDatabaseError(error) ? o.metrics?.databaseErrors : o.metrics?.kafkaErrors)
            ?.labels({ operation: 'publish_batches' })
            .inc();
          o.log?.('warn', 'publishing batches failed; retried after the next checkpoint', {
            error: String(error),
          });
        });
        await committed;
      }
    } finally {
      this.running = undefined;
    }
  }
}

/** Runs stream tasks for the partitions the group assigns to this member. */
export class StreamsWorker {
  private readonly tasks = new Map<number, StreamTask>();
  private removeJoinListener: (() => void) | undefined;
  private stopped = false;
  private readonly metricsSync: StreamsMetricsSync | undefined;
  private readonly after: AfterCheckpoint;
  /** Caught-up tasks whose last changes wait for the checkpoint in flight to commit, to be checkpointed. */
  private readonly checkpointAgain = new Set<StreamTask>();

  constructor(private readonly options: StreamsWorkerOptions) {
    this.metricsSync = options.metrics && new StreamsMetricsSync(options.metrics);
    this.after = new AfterCheckpoint(options);
  }

  /** The live tasks by partition (for metrics and tests). */
  get activeTasks(): ReadonlyMap<number, StreamTask> {
    return this.tasks;
  }

  /**
   * Drops every task without a checkpoint, exactly as when the group revokes their partitions: for a
   * consumer that crashed and is being replaced (src/kafka/consumer-restart.ts), whose partitions may have
   * moved to another member and back meanwhile. The replacement's first batch of each partition claims it
   * again from the last checkpoint.
   */
  revokeAll(): void {
    const o = this.options;
    for (const p of [...this.tasks.keys()]) {
      this.tasks.delete(p);
      o.log?.('info', 'partition revoked: state dropped', { topic: o.topic, partition: p });
    }
    o.metrics?.partitionsAssigned.labels({ stage: 'streams' }).set(0);
    this.metricsSync?.active(this.tasks.values());
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
          // A checkpoint it has in flight may still commit (then the new owner reads it) or be fenced.
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
      partitionsConsumedConcurrently: Math.max(1, o.partitionsConcurrently ?? 1),
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
        task = await this.claim(partition, payload);
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
      // A checkpoint of an earlier batch failed after that batch ended: drop the task (below) first.
      if (task.failed) await task.settle();
      await task.prepare(batch.messages.map((m) => m.value));
      for (const m of batch.messages) {
        if (!payload.isRunning() || payload.isStale()) break;
        task.handle(Number(m.offset), m.value);
        // The fetch position: without it kafkajs fetches from the batch's start again (stuck past 1 MB).
        payload.resolveOffset(m.offset);
        if (++n % every === 0) await payload.heartbeat();
        if (task.checkpointDue()) {
          // At most one in flight: the next starts once the previous committed (usually long done).
          await this.quiet(task);
          this.startCheckpoint(task);
        } else if (task.failed) {
          await task.settle();
        }
      }
      // Caught up with the partition: no further batch comes to reach the count or time threshold, so
      // what this one changed (the streams a tick closed, say) is checkpointed and published now. It is
      // left in flight: the next batch, or stop(), waits for it.
      if (payload.isRunning() && !payload.isStale() && batch.offsetLag() === '0') {
        // One already in flight: the next is started when it commits, instead of waiting for it here
        // (a caught-up partition gets a small batch every tick, and a checkpoint each would pile up).
        if (task.checkpointInFlight) this.checkpointAgain.add(task);
        else this.startCheckpoint(task);
      }
    } catch (error) {
      this.dropFailed(task, error);
    }
    this.syncMetrics(task);
    await payload.heartbeat();
  }

  /**
   * Forgets a task whose checkpoint failed, so the next batch of its partition re-claims it from the last
   * committed checkpoint (seeking back there). OwnershipLostError is handled here; anything else (Postgres
   * down past the retries) is rethrown for kafkajs to retry the batch.
   */
  private dropFailed(task: StreamTask, error: unknown): void {
    const o = this.options;
    const partition = task.partition;
    if (this.tasks.get(partition) === task) this.tasks.delete(partition);
    this.syncMetrics(task);
    if (error instanceof OwnershipLostError) {
      o.metrics?.checkpointConflicts.inc();
      o.log?.('warn', 'ownership lost: state dropped', { topic: o.topic, partition, error: error.message });
      return;
    }
    if (isDatabaseError(error)) o.metrics?.databaseErrors.labels({ operation: 'checkpoint' }).inc();
    throw error;
  }

  /**
   * Claims `partition` and restores its live streams, heartbeating meanwhile: restoring a partition of
   * a few hundred thousand streams takes longer than the session timeout, and without heartbeats the
   * coordinator would drop this member, which would rejoin and claim it again, forever.
   */
  private async claim(partition: number, payload: BatchPayload): Promise<StreamTask> {
    const timer = setInterval(() => {
      // A rebalance in progress or a broker hiccup: the batch goes on, the consumer sorts it out after.
      payload.heartbeat().catch(() => undefined);
    }, this.options.claimHeartbeatMs ?? 1000);
    try {
      return await StreamTask.claim(this.options.taskOptions(partition));
    } finally {
      clearInterval(timer);
    }
  }

  /**
   * Waits until `task` has no checkpoint in flight. A loop: the one awaited may start the next as it
   * commits ({@link checkpointAgain}). Throws what a failed one failed with.
   */
  private async quiet(task: StreamTask): Promise<void> {
    while (task.checkpointInFlight) await task.settle();
  }

  private syncMetrics(task: StreamTask): void {
    if (this.metricsSync === undefined) return;
    this.metricsSync.task(task);
    this.metricsSync.active(this.tasks.values());
  }

  /**
   * Starts a checkpoint of `task` (none may be in flight) and returns without waiting for it. Once it
   * commits, its batches are stamped and the offset commit and outbox flush are requested. A failure is
   * not handled here: the task keeps it, and the next settle() of the partition throws it.
   */
  private startCheckpoint(task: StreamTask): Promise<boolean> {
    const o = this.options;
    const started = performance.now();
    const written = task.startCheckpoint();
    written.then(
      (wrote) => {
        // Runs after the task cleared its in-flight checkpoint, before anyone awaiting settle() resumes.
        if (this.checkpointAgain.delete(task) && this.tasks.get(task.partition) === task && !this.stopped) {
          this.startCheckpoint(task);
        }
        if (!wrote) return;
        if (o.metrics !== undefined) {
          o.metrics.checkpointDuration.observe((performance.now() - started) / 1000);
          o.metrics.checkpoints.inc();
        }
        o.publisher.stamp(task.takeCommittedBatches());
        // A revoked partition's offset is not ours to commit any more; its batches are still published.
        if (this.tasks.get(task.partition) === task) this.after.request(task.partition, task.committedOffset);
        else this.after.request();
      },
      () => {
        this.checkpointAgain.delete(task);
      },
    );
    return written;
  }

  /**
   * Resolves once every checkpoint in flight has committed or failed and the offset commit and outbox
   * publication they requested are done: what an observer sees once the stage is quiet. Never rejects;
   * a failed checkpoint stays with its task, and the next batch of its partition drops it.
   */
  async settled(): Promise<void> {
    await Promise.all([...this.tasks.values()].map((task) => this.quiet(task).catch(() => undefined)));
    await this.after.idle();
  }

  /**
   * Graceful stop: lets the in-flight batches finish, waits for every task's checkpoint in flight, writes
   * a final checkpoint of each, publishes, leaves the group. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const o = this.options;
    // The final checkpoints come after the consumer stopped, so Kafka cannot take their offsets
    // (kafkajs: "consumer#run must be called first"); Postgres has them, and a partition resumes there.
    // Kafka's committed offsets may then lag, which only means skipping records Postgres already has.
    this.after.consumerStopped = true;
    await this.after.idle();
    await o.consumer.stop();
    await Promise.all(
      [...this.tasks.values()].map(async (task) => {
        try {
          await this.quiet(task);
          await this.startCheckpoint(task);
        } catch (error) {
          o.log?.('warn', 'final checkpoint failed', { partition: task.partition, error: String(error) });
        }
        this.metricsSync?.task(task);
      }),
    );
    await this.after.idle();
    this.tasks.clear();
    this.metricsSync?.active([]);
    o.metrics?.partitionsAssigned.labels({ stage: 'streams' }).set(0);
    this.removeJoinListener?.();
    await o.consumer.disconnect();
  }
}
