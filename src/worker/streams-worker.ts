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
import type { Consumer, EachBatchPayload } from '../kafka/types.js';
import { type OutboxPublisher, StreamTask, type StreamTaskOptions } from './stream-task.js';

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
}

type BatchPayload = Pick<EachBatchPayload, 'batch' | 'heartbeat' | 'isRunning' | 'isStale'>;

/** Runs stream tasks for the partitions the group assigns to this member. */
export class StreamsWorker {
  private readonly tasks = new Map<number, StreamTask>();
  private removeJoinListener: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly options: StreamsWorkerOptions) {}

  /** The live tasks by partition (for metrics and tests). */
  get activeTasks(): ReadonlyMap<number, StreamTask> {
    return this.tasks;
  }

  /** Publishes batches left unpublished by an earlier run, then joins the group and starts consuming. */
  async start(): Promise<void> {
    const o = this.options;
    await o.publisher.flush();
    this.removeJoinListener = o.consumer.on(o.consumer.events.GROUP_JOIN, (e) => {
      const assigned = new Set(e.payload.memberAssignment[o.topic] ?? []);
      for (const p of [...this.tasks.keys()]) {
        if (!assigned.has(p)) {
          this.tasks.delete(p);
          o.log?.('info', 'partition revoked: state dropped', { topic: o.topic, partition: p });
        }
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
      task = await StreamTask.claim(o.taskOptions(partition));
      this.tasks.set(partition, task);
      o.log?.('info', 'partition claimed', {
        topic: o.topic,
        partition,
        epoch: task.epoch,
        offset: task.resumed ? task.nextOffset : null,
      });
      const first = Number(batch.firstOffset() ?? batch.messages[0]?.offset);
      if (task.resumed && first > task.nextOffset) {
        // Kafka starts after what Postgres has: go back to the stored offset.
        o.consumer.seek({ topic: o.topic, partition, offset: String(task.nextOffset) });
        return;
      }
    }
    const every = o.heartbeatEvery ?? 1000;
    let n = 0;
    try {
      for (const m of batch.messages) {
        if (!payload.isRunning() || payload.isStale()) break;
        task.handle(Number(m.offset), m.value);
        if (++n % every === 0) await payload.heartbeat();
        if (task.checkpointDue()) await this.checkpoint(task);
      }
    } catch (error) {
      if (error instanceof OwnershipLostError) {
        this.tasks.delete(partition);
        o.log?.('warn', 'ownership lost: state dropped', { topic: o.topic, partition, error: error.message });
        return;
      }
      // Anything else (Postgres down past the retries): forget the partition's state so the next batch
      // re-claims from the last checkpoint, and let kafkajs retry the batch.
      this.tasks.delete(partition);
      throw error;
    }
    await payload.heartbeat();
  }

  private async checkpoint(task: StreamTask): Promise<void> {
    if (!(await task.checkpoint())) return;
    const o = this.options;
    await o.consumer
      .commitOffsets([{ topic: o.topic, partition: task.partition, offset: String(task.nextOffset) }])
      .catch((error: unknown) =>
        o.log?.('warn', 'informational offset commit failed', { error: String(error) }),
      );
    await o.publisher.flush().catch((error: unknown) =>
      o.log?.('warn', 'publishing batches failed; retried after the next checkpoint', {
        error: String(error),
      }),
    );
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
    }
    this.tasks.clear();
    this.removeJoinListener?.();
    await o.consumer.disconnect();
  }
}
