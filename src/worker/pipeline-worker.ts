/**
 * The pipeline worker: a consumer group of the batches topic that runs each fired or expired stream
 * through its pipeline, so that handler `commit()` side effects happen once per batch in effect
 * (docs/pipeline-worker.md has the whole protocol and its rationale).
 *
 * Per batches record, in partition order (partitions may run concurrently, up to a limit):
 *
 * 1. decode it (a reference `{"ref":"outbox"}` is resolved through the outbox in Postgres); what cannot
 *    be read goes to the dead-letter topic with its reason and never blocks the partition;
 * 2. skip it when its batch id is in `completed_batches` (a redelivery);
 * 3. decide from the stream's state ({@link decideForState}): run, resume a retry (retry_fire → firing,
 *    version checked), or skip;
 * 4. run the pipeline ({@link runPipeline}); a failure is retried with jittered exponential backoff while
 *    heartbeating; after the last attempt the batch is dead-lettered and the stream moves to error /
 *    expire_error, with completion NOT recorded (so `winchester streams retry` can run it again);
 * 5. on success, produce the new events to the stream-events topic (acknowledged) BEFORE recording
 *    completion, then one transaction: completed_batches + stream → completed (+ purge);
 * 6. only then resolve and commit the record's offset.
 *
 * A crash after commit() and before step 5's transaction runs commit() again on redelivery: handlers
 * make their side effects idempotent by `env.batch_id`.
 */

import type { CompletionResult, StoredStreamState } from '../db/pipeline-store.js';
import type { StreamState } from '../engine/effects.js';
import { InputError, WinchesterError } from '../errors.js';
import { describeKafkaError } from '../kafka/errors.js';
import { type BatchRecord, decodeBatch, decodeBatchMessage } from '../kafka/records.js';
import type { Consumer, EachBatchPayload } from '../kafka/types.js';
import type { Logger } from '../log.js';
import type { Event } from '../model/event.js';
import type { PipelineDefinitions } from '../pipeline/definitions.js';
import type { Handler, HandlerEnv, HandlerFactory } from '../pipeline/handler.js';
import { runPipeline } from '../pipeline/runner.js';
import { type RecordCodec, UnknownSchemaError } from '../serde/codec.js';
import type { TriggerDefinition } from '../triggers/types.js';
import {
  type BackoffPolicy,
  backoffDelay,
  decideForState,
  failedState,
  runningState,
} from './pipeline-policy.js';
import { appendEventRecords, type InboundMessage, type OutboundMessage, type SendPort } from './router.js';

/** The Postgres operations the worker needs ({@link PipelineStore} implements them). */
export interface PipelineStorePort {
  isCompleted(batchId: string): Promise<boolean>;
  streamState(streamId: string): Promise<StoredStreamState | null>;
  moveStream(
    streamId: string,
    from: StreamState,
    to: StreamState,
    expectedVersion: number,
  ): Promise<number | null>;
  completeBatch(c: {
    readonly batchId: string;
    readonly streamId: string;
    readonly running: 'firing' | 'expiring';
    readonly purge: boolean;
  }): Promise<CompletionResult>;
  outboxPayload(batchId: string): Promise<string | null>;
}

/** How one batches record ended (the `outcome` label of `winchester_pipeline_batches_total`). */
export type BatchOutcome =
  /** The pipeline ran and its completion is recorded. */
  | 'completed'
  /** The pipeline failed for good (or is unknown): stream → error / expire_error, record dead-lettered. */
  | 'failed'
  /** The record could not be read (or named no batch to run): dead-lettered without running anything. */
  | 'dead_lettered'
  /** The batch id is already recorded complete. */
  | 'skipped_duplicate'
  /** The stream is not waiting for this batch (error, completed, gone, …). */
  | 'skipped_state';

/** Where the worker reports what it does; {@link pipelineMetricsOf} adapts the Prometheus metrics. */
export interface PipelineMetricsPort {
  /** One batches record finished with `outcome` (`pipeline`/`kind` empty when the record was unreadable). */
  batch(pipeline: string, kind: string, outcome: BatchOutcome): void;
  /** One failed attempt that will be retried. */
  retried(pipeline: string, kind: string): void;
  /** Seconds from a batch's first attempt to its final outcome. */
  duration(pipeline: string, outcome: 'completed' | 'failed', seconds: number): void;
  /** One handler call; `failed` when it threw. */
  handler(handler: string, phase: 'handle' | 'commit' | 'rollback', seconds: number, failed: boolean): void;
  /** New events a pipeline emitted (fed back to the stream-events topic). */
  newEvents(pipeline: string, count: number): void;
  /** Postgres was unreachable during `operation` (retried). */
  databaseError(operation: string): void;
}

type LabelledCounter<L extends string> = { inc(labels: Partial<Record<L, string>>, value?: number): void };
type LabelledHistogram<L extends string> = {
  observe(labels: Partial<Record<L, string>>, value: number): void;
};

/**
 * Adapts the pipeline metrics of `src/metrics/metrics.ts` (prom-client counters and histograms, typed
 * structurally here so the worker does not depend on prom-client).
 */
export function pipelineMetricsOf(m: {
  readonly pipelineBatches: LabelledCounter<'pipeline' | 'kind' | 'outcome'>;
  readonly pipelineDuration: LabelledHistogram<'pipeline' | 'outcome'>;
  readonly handlerDuration: LabelledHistogram<'handler' | 'phase'>;
  readonly handlerFailures: LabelledCounter<'handler' | 'phase'>;
  readonly pipelineNewEvents: LabelledCounter<'pipeline'>;
  readonly pipelineRetries: LabelledCounter<'pipeline'>;
  readonly databaseErrors: LabelledCounter<'operation'>;
}): PipelineMetricsPort {
  return {
    batch: (pipeline, kind, outcome) => m.pipelineBatches.inc({ pipeline, kind, outcome }),
    retried: (pipeline, kind) => {
      m.pipelineBatches.inc({ pipeline, kind, outcome: 'retried' });
      m.pipelineRetries.inc({ pipeline });
    },
    duration: (pipeline, outcome, seconds) => m.pipelineDuration.observe({ pipeline, outcome }, seconds),
    handler: (handler, phase, seconds, failed) => {
      m.handlerDuration.observe({ handler, phase }, seconds);
      if (failed) m.handlerFailures.inc({ handler, phase });
    },
    newEvents: (pipeline, count) => {
      if (count > 0) m.pipelineNewEvents.inc({ pipeline }, count);
    },
    databaseError: (operation) => m.databaseErrors.inc({ operation }),
  };
}

/** Counters of what the worker did (all monotonic; also logged). */
export interface PipelineWorkerCounts {
  completed: number;
  failed: number;
  deadLettered: number;
  skippedDuplicate: number;
  skippedState: number;
  retries: number;
  newEvents: number;
}

/** Options of {@link PipelineWorker}. */
export interface PipelineWorkerOptions {
  /** A consumer of the pipeline group (not yet connected). */
  readonly consumer: Consumer;
  /** Produces and resolves once every message is acknowledged by all in-sync replicas. */
  readonly send: SendPort;
  readonly store: PipelineStorePort;
  readonly batchesTopic: string;
  /** Where new events go back into trigger processing. */
  readonly streamEventsTopic: string;
  readonly deadLetterTopic: string;
  readonly pipelines: PipelineDefinitions;
  /** Triggers the new events are matched against (as the router does for distilled events). */
  readonly triggers: readonly TriggerDefinition[];
  /** Makes each step's handler (a fresh one per batch attempt). */
  readonly createHandler: HandlerFactory;
  /** Delete a stream (and its events) once its pipeline succeeded (`purge_completed_streams`). */
  readonly purgeCompletedStreams: boolean;
  /** Retries of a failed pipeline before it is failed for good (0: none). */
  readonly maxRetries: number;
  readonly backoff: BackoffPolicy;
  /** Batches partitions processed at the same time (records of one partition always in order). Default 1. */
  readonly concurrency?: number;
  readonly log: Logger;
  readonly metrics?: PipelineMetricsPort;
  /** Milliseconds between heartbeats while a batch runs. Default 1000. */
  readonly heartbeatIntervalMs?: number;
  /** Read the topic from the beginning when the group has no committed offset. Default true. */
  readonly fromBeginning?: boolean;
  /** Uniform in [0, 1): the backoff jitter (injected for tests). */
  readonly random?: () => number;
  /** Waits `ms` (injected for tests). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Attempts of a Postgres operation that fails retriably (the database unreachable). Default 8. */
  readonly databaseAttempts?: number;
  /**
   * Format of the batches records read and of the stream-events records written for new events (the
   * Avro codec with a schema registry); default JSON text. Outbox payloads (references) are JSON.
   */
  readonly codec?: RecordCodec;
}

/** The part of kafkajs' eachBatch payload the worker uses. */
export type PipelineBatchPayload = Pick<
  EachBatchPayload,
  'batch' | 'resolveOffset' | 'heartbeat' | 'isRunning' | 'isStale' | 'commitOffsetsIfNecessary'
>;

/** Whether to keep going: false once the consumer stops or the batch went stale in a rebalance. */
type Alive = () => boolean;

/** A record left unresolved: the next owner of the partition gets it again. */
const ABANDONED = Symbol('abandoned');

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs fired and expired streams through their pipelines, from the batches topic. */
export class PipelineWorker {
  readonly counts: PipelineWorkerCounts = {
    completed: 0,
    failed: 0,
    deadLettered: 0,
    skippedDuplicate: 0,
    skippedState: 0,
    retries: 0,
    newEvents: 0,
  };
  private stopping: Promise<void> | undefined;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly options: PipelineWorkerOptions) {
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
  }

  /** Connects, subscribes and starts consuming. */
  async start(): Promise<void> {
    const o = this.options;
    await o.consumer.connect();
    await o.consumer.subscribe({ topics: [o.batchesTopic], fromBeginning: o.fromBeginning ?? true });
    await o.consumer.run({
      autoCommit: true,
      // Every resolved record is committed at once: batches are few and slow, and a committed offset
      // spares the next owner a completed_batches look-up per record after a restart.
      autoCommitThreshold: 1,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(1, o.concurrency ?? 1),
      eachBatch: (payload) => this.handleBatch(payload),
    });
  }

  /**
   * Handles one fetched batch of one partition, record by record: each offset is resolved and committed
   * only once its record is finished (completed, failed for good, skipped or dead-lettered). After a
   * rebalance (kafkajs #1527: stale batches) or on stop, the rest of the batch is left to the next owner.
   */
  async handleBatch(payload: PipelineBatchPayload): Promise<void> {
    const { batch } = payload;
    const alive: Alive = () => payload.isRunning() && !payload.isStale();
    for (const m of batch.messages) {
      if (!alive()) return;
      const outcome = await this.withHeartbeats(payload, () =>
        this.processRecord(batch.topic, batch.partition, m, alive),
      );
      if (outcome === ABANDONED) return;
      payload.resolveOffset(m.offset);
      await payload.commitOffsetsIfNecessary();
    }
    await payload.heartbeat();
  }

  /**
   * Stops consuming — the in-flight record finishes (a pipeline waiting to retry gives the record back
   * instead: it is not resolved, and the next owner runs it) — commits the resolved offsets and leaves
   * the group. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.options.consumer.stop();
      await this.options.consumer.disconnect();
    })();
    return this.stopping;
  }

  /** Runs `work` while heartbeating every heartbeatIntervalMs, so a long pipeline keeps the membership. */
  private async withHeartbeats<T>(payload: PipelineBatchPayload, work: () => Promise<T>): Promise<T> {
    const every = this.options.heartbeatIntervalMs ?? 1000;
    const timer = setInterval(() => {
      payload.heartbeat().catch((error: unknown) => {
        // A rebalance in progress: the batch may be stale now; handleBatch checks before the next record.
        this.options.log('debug', 'heartbeat failed while a pipeline runs', {
          error: describeKafkaError(error),
        });
      });
    }, every);
    try {
      return await work();
    } finally {
      clearInterval(timer);
    }
  }

  /**
   * Everything one batches record leads to. Returns its outcome, or {@link ABANDONED} when it was given
   * up unresolved (stop or rebalance while waiting to retry). Throws only when Postgres or Kafka stays
   * unreachable; kafkajs then restarts the consumer from the last committed offset.
   */
  private async processRecord(
    topic: string,
    partition: number,
    m: InboundMessage,
    alive: Alive,
  ): Promise<BatchOutcome | typeof ABANDONED> {
    const o = this.options;
    const dead = (reason: string, detail: string, extra: Record<string, string> = {}) =>
      this.deadLetter(topic, partition, m, reason, detail, extra);

    if (m.value === null || m.value.length === 0) {
      await dead('empty_value', 'the record has no value');
      return this.finish('', '', 'dead_lettered');
    }
    const read = await this.readBatch(m.value);
    if (!read.ok && read.reason === 'missing_reference' && read.batchId !== undefined) {
      // Retention deletes a completed batch's outbox row before its completion mark
      // (retention.published_outbox ≤ completed_batches): a redelivery of it is a duplicate, not an error.
      const batchId = read.batchId;
      if (await this.db(() => o.store.isCompleted(batchId), 'is_completed')) {
        o.log('info', 'batch already completed (its outbox row was pruned): skipped', {
          batch_id: batchId,
          topic,
          partition,
          offset: m.offset,
        });
        return this.finish('', '', 'skipped_duplicate');
      }
    }
    if (!read.ok) {
      await dead(
        read.reason,
        read.detail,
        read.batchId === undefined ? {} : { 'winchester-batch-id': read.batchId },
      );
      o.log('warn', 'batch record dead-lettered', {
        topic,
        partition,
        offset: m.offset,
        reason: read.reason,
        detail: read.detail,
      });
      return this.finish('', '', 'dead_lettered');
    }
    const b = read.batch;
    const where = {
      batch_id: b.batchId,
      stream_id: b.streamId,
      trigger: b.trigger,
      kind: b.kind,
      pipeline: b.pipeline,
    };
    const label = b.pipeline !== null && o.pipelines.has(b.pipeline) ? b.pipeline : '(unknown)';

    if (b.pipeline === null) {
      // The streams stage never publishes these; a hand-made record has nothing to run.
      await dead('no_pipeline', `batch ${b.batchId} names no pipeline`, { 'winchester-batch-id': b.batchId });
      o.log('warn', 'batch names no pipeline: dead-lettered', where);
      return this.finish(label, b.kind, 'dead_lettered');
    }
    if (await this.db(() => o.store.isCompleted(b.batchId), 'is_completed')) {
      o.log('info', 'batch already completed: skipped', where);
      return this.finish(label, b.kind, 'skipped_duplicate');
    }
    const stored = await this.db(() => o.store.streamState(b.streamId), 'stream_state');
    const decision = decideForState(stored?.state ?? null, b.kind);
    if (decision.action === 'skip') {
      o.log('info', 'batch skipped', { ...where, state: stored?.state ?? null, why: decision.why });
      return this.finish(label, b.kind, 'skipped_state');
    }
    let version = (stored as StoredStreamState).version;
    if (decision.action === 'resume') {
      const moved = await this.db(
        () => o.store.moveStream(b.streamId, decision.from, decision.to, version),
        'resume_stream',
      );
      if (moved === null) {
        o.log('warn', 'batch skipped: the stream changed while being resumed', {
          ...where,
          from: decision.from,
        });
        return this.finish(label, b.kind, 'skipped_state');
      }
      version = moved;
      o.log('info', 'retried stream resumed', { ...where, from: decision.from, to: decision.to });
    }

    const pipeline = o.pipelines.get(b.pipeline);
    if (pipeline === undefined) {
      const detail = `pipeline '${b.pipeline}' is not configured`;
      await dead('unknown_pipeline', detail, {
        'winchester-batch-id': b.batchId,
        'winchester-pipeline': b.pipeline,
      });
      await this.fail(b, version, detail, where);
      return this.finish(label, b.kind, 'failed');
    }

    o.log('debug', 'batch running', { ...where, events: b.events.length });
    const started = performance.now();
    let attempt = 0;
    for (;;) {
      attempt++;
      const outcome = await runPipeline(
        pipeline,
        { events: b.events, env: envOf(b, pipeline.name) },
        this.factory,
        o.log,
      );
      if (outcome.ok) {
        const routed = await this.feedBack(outcome.newEvents);
        const result = await this.db(
          () =>
            o.store.completeBatch({
              batchId: b.batchId,
              streamId: b.streamId,
              running: runningState(b.kind),
              purge: o.purgeCompletedStreams,
            }),
          'complete_batch',
        );
        this.counts.newEvents += outcome.newEvents.length;
        o.metrics?.newEvents(pipeline.name, outcome.newEvents.length);
        o.metrics?.duration(pipeline.name, 'completed', (performance.now() - started) / 1000);
        const fields = {
          ...where,
          events: b.events.length,
          new_events: outcome.newEvents.length,
          new_event_records: routed,
          attempts: attempt,
          stream: result.stream,
          commit_errors: outcome.commitErrors.length,
        };
        if (!result.recorded)
          o.log('warn', 'batch completed, but another delivery recorded it first', fields);
        else o.log('info', 'batch completed', fields);
        return this.finish(pipeline.name, b.kind, 'completed');
      }
      const reason = `handler '${outcome.handler}': ${outcome.error}`;
      if (attempt > o.maxRetries) {
        const detail = `${reason} (after ${attempt} attempt${attempt === 1 ? '' : 's'})`;
        await dead('pipeline_failed', detail, {
          'winchester-batch-id': b.batchId,
          'winchester-pipeline': pipeline.name,
          'winchester-handler': outcome.handler,
        });
        await this.fail(b, version, detail, where);
        o.metrics?.duration(pipeline.name, 'failed', (performance.now() - started) / 1000);
        return this.finish(pipeline.name, b.kind, 'failed');
      }
      const delay = backoffDelay(attempt, o.backoff, this.random);
      this.counts.retries++;
      o.metrics?.retried(pipeline.name, b.kind);
      o.log('warn', 'pipeline failed: retrying', { ...where, attempt, retry_in_ms: delay, error: reason });
      if (!(await this.wait(delay, alive))) {
        o.log('info', 'stopping: the batch is left for the next owner of the partition', {
          ...where,
          attempt,
        });
        return ABANDONED;
      }
    }
  }

  /** Counts a finished record. */
  private finish(pipeline: string, kind: string, outcome: BatchOutcome): BatchOutcome {
    const c = this.counts;
    if (outcome === 'completed') c.completed++;
    else if (outcome === 'failed') c.failed++;
    else if (outcome === 'dead_lettered') c.deadLettered++;
    else if (outcome === 'skipped_duplicate') c.skippedDuplicate++;
    else c.skippedState++;
    this.options.metrics?.batch(pipeline, kind, outcome);
    return outcome;
  }

  /** Moves the stream from its running state to error / expire_error (version checked). */
  private async fail(
    b: BatchRecord,
    version: number,
    detail: string,
    where: Record<string, unknown>,
  ): Promise<void> {
    const o = this.options;
    const to = failedState(b.kind);
    const moved = await this.db(
      () => o.store.moveStream(b.streamId, runningState(b.kind), to, version),
      'fail_stream',
    );
    if (moved === null)
      o.log('warn', 'pipeline failed, but the stream changed meanwhile: state left as is', {
        ...where,
        error: detail,
      });
    else
      o.log('error', 'pipeline failed: stream marked failed and batch dead-lettered', {
        ...where,
        state: to,
        error: detail,
      });
  }

  /** The record's batch, resolving a reference through the outbox; or why it cannot be had. */
  private async readBatch(
    value: Buffer,
  ): Promise<
    { ok: true; batch: BatchRecord } | { ok: false; reason: string; detail: string; batchId?: string }
  > {
    let message: ReturnType<typeof decodeBatchMessage>;
    const codec = this.options.codec;
    try {
      if (codec === undefined) message = decodeBatchMessage(value.toString('utf8'));
      else {
        // Fetches the writer schema of an id not seen yet (once per id); rejects only on registry failures.
        await codec.prepare([value]);
        message = codec.decodeBatchMessage(value);
      }
    } catch (error) {
      if (error instanceof UnknownSchemaError)
        return { ok: false, reason: 'unknown_schema', detail: error.message };
      if (error instanceof InputError) return { ok: false, reason: 'invalid_batch', detail: error.message };
      throw error;
    }
    if (message.type === 'inline') return { ok: true, batch: message.batch };
    const ref = message.reference;
    const payload = await this.db(() => this.options.store.outboxPayload(ref.batchId), 'outbox_payload');
    if (payload === null) {
      return {
        ok: false,
        reason: 'missing_reference',
        detail: `batch ${ref.batchId} is published by reference, but the outbox has no row for it`,
        batchId: ref.batchId,
      };
    }
    try {
      const batch = decodeBatch(payload);
      if (batch.batchId !== ref.batchId) {
        return {
          ok: false,
          reason: 'invalid_batch',
          detail: `the outbox row of ${ref.batchId} holds batch ${batch.batchId}`,
          batchId: ref.batchId,
        };
      }
      return { ok: true, batch };
    } catch (error) {
      if (error instanceof InputError) {
        return {
          ok: false,
          reason: 'invalid_batch',
          detail: `outbox row: ${error.message}`,
          batchId: ref.batchId,
        };
      }
      throw error;
    }
  }

  /** Produces the new events as stream-events records (acknowledged); returns how many records. */
  private async feedBack(events: readonly Event[]): Promise<number> {
    if (events.length === 0) return 0;
    const o = this.options;
    const out: OutboundMessage[] = [];
    for (const e of events) appendEventRecords(out, e, o);
    if (out.length > 0) await o.send(out);
    return out.length;
  }

  private async deadLetter(
    topic: string,
    partition: number,
    m: InboundMessage,
    reason: string,
    detail: string,
    extra: Record<string, string>,
  ): Promise<void> {
    await this.options.send([
      {
        topic: this.options.deadLetterTopic,
        key: m.key,
        value: m.value,
        headers: {
          'winchester-reason': reason,
          'winchester-detail': detail.length > 1000 ? `${detail.slice(0, 1000)}…` : detail,
          'winchester-topic': topic,
          'winchester-partition': String(partition),
          'winchester-offset': m.offset,
          ...extra,
        },
      },
    ]);
  }

  /**
   * Waits `ms` in slices of at most 200 ms (through the injected sleep, so tests need no clock); false as
   * soon as the consumer stops or the batch goes stale.
   */
  private async wait(ms: number, alive: Alive): Promise<boolean> {
    let left = ms;
    while (left > 0) {
      if (!alive()) return false;
      const slice = Math.min(left, 200);
      await this.sleep(slice);
      left -= slice;
    }
    return alive();
  }

  /**
   * Runs a Postgres operation, retrying (with backoff) while the database is unreachable. `operation` is
   * the bounded label of `winchester_database_errors_total`.
   */
  private async db<T>(op: () => Promise<T>, operation: string): Promise<T> {
    const attempts = this.options.databaseAttempts ?? 8;
    for (let attempt = 1; ; attempt++) {
      try {
        return await op();
      } catch (error) {
        if (!(error instanceof WinchesterError) || !error.retriable) throw error;
        this.options.metrics?.databaseError(operation);
        if (attempt >= attempts) throw error;
        const delay = backoffDelay(attempt, { baseMs: 200, maxMs: 5000 }, this.random);
        this.options.log('warn', 'database unavailable: retrying', {
          operation,
          attempt,
          retry_in_ms: delay,
          error: error.message,
        });
        await this.sleep(delay);
      }
    }
  }

  /** The handler factory, each instance timed per phase for the metrics. */
  private readonly factory: HandlerFactory = (step) => {
    const handler = this.options.createHandler(step);
    const metrics = this.options.metrics;
    if (metrics === undefined) return handler;
    return timedHandler(step.name, handler, metrics);
  };
}

/** The env of one attempt: fresh each time, since handlers may write to it. */
function envOf(b: BatchRecord, pipeline: string): HandlerEnv {
  return {
    batch_id: b.batchId,
    stream_id: b.streamId,
    stream_name: b.trigger,
    trigger: b.trigger,
    kind: b.kind,
    pipeline,
    distinguishing: b.distinguishing,
  };
}

/** Wraps a handler so that each call is timed and its failures counted; results pass through unchanged. */
function timedHandler(name: string, handler: Handler, metrics: PipelineMetricsPort): Handler {
  const timed = async <T>(
    phase: 'handle' | 'commit' | 'rollback',
    call: () => T | Promise<T>,
  ): Promise<T> => {
    const start = performance.now();
    let failed = true;
    try {
      const result = await call();
      failed = false;
      return result;
    } finally {
      metrics.handler(name, phase, (performance.now() - start) / 1000, failed);
    }
  };
  return {
    handleEvents: (events, env) => timed('handle', () => handler.handleEvents(events, env)),
    commit: () => timed('commit', () => handler.commit()),
    rollback: () => timed('rollback', () => handler.rollback()),
  };
}
