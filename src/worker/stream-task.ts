/**
 * The streams stage of the trigger worker, per stream-events partition: a {@link StreamTask} claims the
 * partition in Postgres (epoch bump), restores its live streams, feeds the partition's records to a
 * {@link PartitionEngine} and checkpoints (offset + changed streams + new events + fire/expire batches in
 * the outbox) in one transaction. Batches are produced by the {@link OutboxPublisher} only after the
 * checkpoint committed, so a batch exists exactly when the state that fired it is durable.
 *
 * Not Kafka-specific: records come in as (offset, value) and batches leave through a send function, so
 * the whole stage is driven the same way by the kafkajs wiring (streams-worker.ts) and by tests.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CheckpointCollector } from '../db/checkpoint-collector.js';
import type {
  Checkpoint,
  ClaimedPartition,
  OutboxRow,
  OutboxWrite,
  StreamSink,
} from '../db/checkpoint-store.js';
import type { Clock } from '../engine/clock.js';
import type { Effect, StreamClosed, StreamId } from '../engine/effects.js';
import { PartitionEngine } from '../engine/partition-engine.js';
import type { RecentRow } from '../engine/state.js';
import { WinchesterError } from '../errors.js';
import { batchIdOf, decodeStreamRecord, encodeBatch } from '../kafka/records.js';
import type { WinchesterMetrics } from '../metrics/metrics.js';
import type { Event } from '../model/event.js';
import type { RecordCodec } from '../serde/codec.js';
import type { Instant } from '../timex/instant.js';
import { parseKey } from '../triggers/key.js';
import type { DistinguishingValue, DistinguishingValues, TriggerDefinition } from '../triggers/types.js';

/** The part of {@link CheckpointStore} a task uses (a port, so the loop is testable). */
export interface TaskStore {
  /**
   * Claims the partition. A store that can hands the live streams to `sink` a chunk at a time while it
   * reads them (and returns none in the claim); one that cannot returns them all in the claim.
   */
  claimPartition(topic: string, partition: number, sink?: StreamSink): Promise<ClaimedPartition>;
  checkpoint(cp: Checkpoint): Promise<void>;
  loadStreamEvents(streamId: StreamId): Promise<Event[]>;
  /** The stored events of several streams in one round trip (else one loadStreamEvents each). */
  loadEventsOfStreams?(streamIds: readonly StreamId[]): Promise<Map<StreamId, Event[]>>;
}

/** Options of {@link StreamTask.claim}. */
export interface StreamTaskOptions {
  readonly store: TaskStore;
  /** The stream-events topic and the partition this task owns. */
  readonly topic: string;
  readonly partition: number;
  readonly triggers: readonly TriggerDefinition[];
  /** A fresh clock for this partition (EventTimeClock(lateness) or WallClock). */
  readonly clock: Clock;
  /** Checkpoint once this many records were handled since the last one. Default 1000. */
  readonly checkpointRecords?: number;
  /** …or once this many milliseconds passed since the last one (and something changed). Default 1000. */
  readonly checkpointMs?: number;
  /** Milliseconds clock for the checkpoint interval. Default Date.now. */
  readonly nowMs?: () => number;
  /**
   * Microseconds the message ids of a closed stream are remembered to ignore late duplicates
   * (PartitionEngineOptions.duplicateWindow). Default 0.
   */
  readonly duplicateWindow?: number;
  /** Attempts of a checkpoint that fails retriably (Postgres unreachable). Default 5. */
  readonly checkpointAttempts?: number;
  /**
   * Format of the stream-events records (Avro with a schema registry); default JSON text. Outbox
   * payloads stay JSON either way: the publisher encodes them for the batches topic.
   */
  readonly codec?: RecordCodec;
}

/** Counters of one task. */
export interface StreamTaskCounts {
  records: number;
  ticks: number;
  /** Records that were not readable (our own topic: a bug or a foreign producer). */
  undecodable: number;
  /** Records of triggers not configured here (configuration differs between router and streams). */
  unknownTrigger: number;
  fired: number;
  expired: number;
  checkpoints: number;
  /** Events ignored because their message id was already in the stream. */
  duplicates: number;
  /** Checkpoint attempts that failed retriably (Postgres unreachable) and were tried again. */
  checkpointRetries: number;
  /**
   * Per trigger name: streams opened, fired, expired, errored (monotonic), and live now. Touched only
   * when a stream opens or closes, never per added event.
   */
  readonly byTrigger: Map<string, TriggerStreamCounts>;
}

/** Stream counters of one trigger in one task. */
export interface TriggerStreamCounts {
  opened: number;
  fired: number;
  expired: number;
  errored: number;
  /** Live streams in the engine now. */
  active: number;
}

/** A batch this task committed to the outbox, with the wall-clock ms its closing record was handled. */
export interface ClosedBatchStamp {
  readonly batchId: string;
  readonly closedAtMs: number;
}

/** Events sorted by timestamp; the sort is stable, so ties stay in arrival order. */
function byTimestamp(events: Event[]): Event[] {
  return events.sort((a, b) => a.timestamp - b.timestamp);
}

/** One partition's engine, collector and checkpoint loop. Create with {@link StreamTask.claim}. */
export class StreamTask {
  readonly counts: StreamTaskCounts = {
    records: 0,
    ticks: 0,
    undecodable: 0,
    unknownTrigger: 0,
    fired: 0,
    expired: 0,
    checkpoints: 0,
    duplicates: 0,
    checkpointRetries: 0,
    byTrigger: new Map(),
  };
  private readonly engine: PartitionEngine;
  private readonly collector: CheckpointCollector;
  private readonly defs: ReadonlyMap<string, TriggerDefinition>;
  /** Events added since the last checkpoint started, per stream (for batches that close meanwhile). */
  private uncommitted = new Map<StreamId, Event[]>();
  /** Streams opened since the last checkpoint started (nothing of them is stored yet). */
  private openedSince = new Set<StreamId>();
  private closed: StreamClosed[] = [];
  /** Wall-clock ms at which each entry of {@link closed} was handled (for the fire latency). */
  private closedAtMs: number[] = [];
  /** Batches of the checkpoints committed since the last {@link takeCommittedBatches}. */
  private committedBatches: ClosedBatchStamp[] = [];
  /** The checkpoint being written, if any (at most one at a time). */
  private inflight: Promise<boolean> | undefined;
  /** What the checkpoint in flight failed with. */
  private failure: unknown;
  /** The offset of the last committed checkpoint. */
  private storedOffset: number;
  /** recent_closed rows this partition has stored, by trigger and key → their `until`. */
  private readonly recentStored = new Map<string, Instant>();
  /** The earliest `until` in {@link recentStored}. */
  private recentMin = Number.POSITIVE_INFINITY;
  private nextSeq: number;
  private offset: number;
  private sinceCheckpoint = 0;
  private lastCheckpointMs: number;
  private dirty = false;

  /** What the claim said: the epoch every checkpoint names, and whether an offset was stored. */
  private readonly claimed: { readonly epoch: number; readonly offset: number | null };

  private constructor(
    private readonly options: StreamTaskOptions,
    claim: ClaimedPartition,
    engine: PartitionEngine,
  ) {
    this.defs = new Map(options.triggers.map((d) => [d.name, d]));
    this.engine = engine;
    // Nothing of the claim's rows is kept: the engine holds the live streams from here on.
    this.claimed = { epoch: claim.epoch, offset: claim.offset };
    for (const [trigger, active] of this.engine.activeStreamsByTrigger()) {
      this.counts.byTrigger.set(trigger, { opened: 0, fired: 0, expired: 0, errored: 0, active });
    }
    this.collector = new CheckpointCollector();
    this.nextSeq = claim.nextSeq;
    this.offset = claim.offset ?? 0;
    this.storedOffset = this.offset;
    this.recentExpired(claim.snapshot.recent ?? [], null);
    this.lastCheckpointMs = this.nowMs();
    // Streams of triggers no longer configured are marked `error` by the first checkpoint.
    this.collect(this.engine.takeEffects());
  }

  /**
   * Claims the partition (any older owner is fenced from now on) and restores its live streams: the
   * engine imports each chunk of rows as the store reads it, yielding to the event loop between chunks
   * (heartbeats go on), and no chunk is kept once imported.
   */
  static async claim(options: StreamTaskOptions): Promise<StreamTask> {
    const engine = new PartitionEngine({
      triggers: options.triggers,
      clock: options.clock,
      idPrefix: `p${options.partition}-`,
      duplicateWindow: options.duplicateWindow ?? 0,
    });
    const claim = await options.store.claimPartition(options.topic, options.partition, async (rows) => {
      engine.importStreams(rows);
      await new Promise<void>((resolve) => setImmediate(resolve));
    });
    // A store that returned the rows instead of streaming them.
    if (claim.snapshot.streams.length > 0) engine.importStreams(claim.snapshot.streams);
    engine.finishImport(claim.snapshot);
    return new StreamTask(options, claim, engine);
  }

  get partition(): number {
    return this.options.partition;
  }

  get epoch(): number {
    return this.claimed.epoch;
  }

  /** The next offset to handle: the stored one after the claim, then one past the last handled. */
  get nextOffset(): number {
    return this.offset;
  }

  /** Whether the claim found a stored offset (else the task takes the partition from wherever it starts). */
  get resumed(): boolean {
    return this.claimed.offset !== null;
  }

  private nowMs(): number {
    return (this.options.nowMs ?? Date.now)();
  }

  /**
   * Fetches what {@link handle} needs to decode `values` synchronously (writer schemas of Avro records
   * by id); a no-op for JSON. Rejects only when the registry cannot be reached.
   */
  prepare(values: readonly (Buffer | null)[]): Promise<void> {
    return this.options.codec === undefined ? Promise.resolve() : this.options.codec.prepare(values);
  }

  /**
   * Handles the record at `offset`. Records before {@link nextOffset} were already checkpointed and are
   * skipped (returns false). Synchronous: nothing is written until {@link checkpoint}.
   */
  handle(offset: number, value: Buffer | string | null): boolean {
    if (offset < this.offset) return false;
    this.offset = offset + 1;
    this.sinceCheckpoint++;
    this.counts.records++;
    let rec: ReturnType<typeof decodeStreamRecord> | undefined;
    try {
      const codec = this.options.codec;
      rec =
        codec !== undefined && Buffer.isBuffer(value)
          ? codec.decodeStreamRecord(value)
          : decodeStreamRecord(
              value === null ? '' : typeof value === 'string' ? value : value.toString('utf8'),
            );
    } catch (error) {
      if (!(error instanceof WinchesterError)) throw error;
      this.counts.undecodable++;
      return true;
    }
    if (rec.type === 'tick') {
      this.counts.ticks++;
      this.options.clock.observe(rec.time);
      this.engine.advance();
    } else {
      // The router's event time first (clock.mode event): the partition's clock follows everything the
      // router had seen, as replay's single clock does, not only this partition's own events.
      if (rec.watermark !== undefined) this.options.clock.observe(rec.watermark);
      if (!this.engine.addEvent(rec.trigger, rec.key, rec.distinguishing, rec.event))
        this.counts.unknownTrigger++;
    }
    this.collect(this.engine.takeEffects());
    return true;
  }

  private collect(effects: Effect[]): void {
    if (effects.length === 0) return;
    this.dirty = true;
    this.collector.add(effects);
    for (const e of effects) {
      switch (e.type) {
        case 'streamOpened': {
          this.openedSince.add(e.streamId);
          if (e.seq + 1 > this.nextSeq) this.nextSeq = e.seq + 1;
          const t = this.triggerCounts(e.trigger);
          t.opened++;
          t.active++;
          break;
        }
        case 'eventAdded': {
          const list = this.uncommitted.get(e.streamId);
          if (list === undefined) this.uncommitted.set(e.streamId, [e.event]);
          else list.push(e.event);
          break;
        }
        case 'fired':
        case 'expired': {
          const t = this.triggerCounts(e.trigger);
          if (e.type === 'fired') {
            this.counts.fired++;
            t.fired++;
          } else {
            this.counts.expired++;
            t.expired++;
          }
          t.active--;
          this.closed.push(e);
          this.closedAtMs.push(this.nowMs());
          break;
        }
        case 'duplicateIgnored':
          this.counts.duplicates++;
          break;
        case 'streamErrored':
          this.triggerCounts(e.trigger).errored++;
          break;
        default:
          break;
      }
    }
  }

  private triggerCounts(trigger: string): TriggerStreamCounts {
    let t = this.counts.byTrigger.get(trigger);
    if (t === undefined) {
      t = { opened: 0, fired: 0, expired: 0, errored: 0, active: 0 };
      this.counts.byTrigger.set(trigger, t);
    }
    return t;
  }

  /**
   * The batches (with the time their closing record was handled) written to the outbox by the
   * checkpoints committed since the last call, and forgets them.
   */
  takeCommittedBatches(): ClosedBatchStamp[] {
    const out = this.committedBatches;
    this.committedBatches = [];
    return out;
  }

  /** Whether enough records or time have gone by for a checkpoint. */
  checkpointDue(): boolean {
    if (this.sinceCheckpoint === 0 && !this.dirty) return false;
    return (
      this.sinceCheckpoint >= (this.options.checkpointRecords ?? 1000) ||
      this.nowMs() - this.lastCheckpointMs >= (this.options.checkpointMs ?? 1000)
    );
  }

  /** The distinguishing values of a closed stream, in distinguished_by order (the key sorts them). */
  private distinguishingOf(c: StreamClosed): DistinguishingValues {
    const parsed = parseKey(c.key);
    const def = this.defs.get(c.trigger);
    if (def === undefined) return parsed;
    const out: Record<string, DistinguishingValue> = {};
    // defineProperty: a trait may be called `__proto__`, which plain assignment would swallow.
    const put = (name: string) => {
      if (Object.hasOwn(out, name) || !Object.hasOwn(parsed, name)) return;
      Object.defineProperty(out, name, {
        value: parsed[name],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    };
    for (const name of def.distinguishedBy) put(name);
    for (const name of Object.keys(parsed)) put(name);
    return out;
  }

  /** The events already stored for the closed streams that have a pipeline (one query for all). */
  private async storedEventsOfClosed(part: Interval): Promise<Map<StreamId, Event[]>> {
    const ids: StreamId[] = [];
    for (const c of part.closed) {
      if (c.pipeline !== null && !part.openedSince.has(c.streamId)) ids.push(c.streamId);
    }
    const store = this.options.store;
    if (ids.length === 0) return new Map();
    if (store.loadEventsOfStreams !== undefined) return store.loadEventsOfStreams(ids);
    const out = new Map<StreamId, Event[]>();
    for (const id of ids) out.set(id, await store.loadStreamEvents(id));
    return out;
  }

  /**
   * The batches of the streams an interval closed. Their events are those stored by the checkpoints
   * before it (all committed: one checkpoint in flight at a time) plus the interval's own.
   */
  private async outbox(part: Interval): Promise<{ rows: OutboxWrite[]; stamps: ClosedBatchStamp[] }> {
    const rows: OutboxWrite[] = [];
    const stamps: ClosedBatchStamp[] = [];
    const stored = await this.storedEventsOfClosed(part);
    for (let i = 0; i < part.closed.length; i++) {
      const c = part.closed[i] as StreamClosed;
      if (c.pipeline === null) continue;
      const kind = c.type === 'fired' ? 'fire' : 'expire';
      const events = byTimestamp([
        ...(stored.get(c.streamId) ?? []),
        ...(part.uncommitted.get(c.streamId) ?? []),
      ]);
      const batchId = batchIdOf(c.streamId, kind);
      stamps.push({ batchId, closedAtMs: part.closedAtMs[i] as number });
      rows.push({
        batchId,
        streamId: c.streamId,
        kind,
        messageKey: batchId,
        payload: encodeBatch({
          batchId,
          streamId: c.streamId,
          trigger: c.trigger,
          kind,
          pipeline: c.pipeline,
          distinguishing: this.distinguishingOf(c),
          first: c.first,
          last: c.last,
          events,
        }),
      });
    }
    return { rows, stamps };
  }

  /** Whether a checkpoint was started and has not committed yet (or failed). */
  get checkpointInFlight(): boolean {
    return this.inflight !== undefined;
  }

  /**
   * Whether the checkpoint in flight failed: the task must be dropped ({@link settle} throws the error)
   * and the partition re-claimed from its last committed checkpoint.
   */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** The offset stored by the last committed checkpoint (where a new owner would resume). */
  get committedOffset(): number {
    return this.storedOffset;
  }

  /**
   * Waits for the checkpoint in flight, if any.
   * @throws what it failed with (OwnershipLostError, or Postgres down past the retries); the task is
   *   then unusable: drop it and re-claim the partition.
   */
  async settle(): Promise<void> {
    if (this.inflight !== undefined) await this.inflight;
  }

  /**
   * Starts a checkpoint of everything handled since the last one started, and returns at once: the
   * records after it may be handled while it is written. What it writes is taken now (the offset, the
   * changed streams' rows, the events, the closed streams); the outbox batches of the streams it closes
   * are encoded after their stored events are read. Resolves true once committed (false: nothing to
   * write), retrying while Postgres is unreachable. Only one may be in flight: call {@link settle} first.
   * @throws (the promise) OwnershipLostError when another worker claimed the partition: drop this task.
   */
  startCheckpoint(): Promise<boolean> {
    if (this.inflight !== undefined) {
      throw new Error(`partition ${this.options.partition}: a checkpoint is already in flight`);
    }
    if (this.sinceCheckpoint === 0 && !this.dirty) return Promise.resolve(false);
    const now = Number.isFinite(this.engine.now) ? this.engine.now : null;
    const recent = this.engine.takeRecentChanges();
    const cp = this.collector.build(
      {
        topic: this.options.topic,
        partition: this.options.partition,
        epoch: this.claimed.epoch,
        offset: this.offset,
        nextSeq: this.nextSeq,
        recent,
        now,
        pruneRecent: this.recentExpired(recent, now),
      },
      this.engine,
    );
    this.collector.seal();
    const part: Interval = {
      uncommitted: this.uncommitted,
      openedSince: this.openedSince,
      closed: this.closed,
      closedAtMs: this.closedAtMs,
    };
    this.uncommitted = new Map();
    this.openedSince = new Set();
    this.closed = [];
    this.closedAtMs = [];
    this.sinceCheckpoint = 0;
    this.dirty = false;
    this.lastCheckpointMs = this.nowMs();
    const written = this.write(cp, part);
    this.inflight = written;
    written.then(
      () => {
        if (this.inflight === written) this.inflight = undefined;
      },
      // Kept in flight: settle() rethrows it to whoever handles the partition next.
      (error: unknown) => {
        this.failure = error ?? new Error('checkpoint failed');
      },
    );
    return written;
  }

  private async write(base: Checkpoint, part: Interval): Promise<boolean> {
    const { rows, stamps } = await this.outbox(part);
    const cp: Checkpoint = { ...base, outbox: rows };
    const attempts = this.options.checkpointAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.store.checkpoint(cp);
        break;
      } catch (error) {
        if (!(error instanceof WinchesterError) || !error.retriable || attempt >= attempts) throw error;
        this.counts.checkpointRetries++;
        await sleep(Math.min(100 * 2 ** attempt, 5000));
      }
    }
    this.collector.committed();
    this.storedOffset = cp.offset;
    for (const b of stamps) this.committedBatches.push(b);
    this.counts.checkpoints++;
    return true;
  }

  /**
   * Whether a remembered row stored for this partition can have expired at `now` (its `until` before
   * it), counting the rows about to be written. Only then does the checkpoint delete from recent_closed;
   * the rows left are tracked to know the next time.
   */
  private recentExpired(recent: readonly RecentRow[], now: Instant | null): boolean {
    for (const r of recent) {
      this.recentStored.set(recentKey(r), r.until);
      if (r.until < this.recentMin) this.recentMin = r.until;
    }
    if (now === null || !(this.recentMin < now)) return false;
    let min = Number.POSITIVE_INFINITY;
    for (const [k, until] of this.recentStored) {
      if (until < now) this.recentStored.delete(k);
      else if (until < min) min = until;
    }
    this.recentMin = min;
    return true;
  }

  /**
   * Writes everything handled since the last checkpoint and waits for it to commit (after the one in
   * flight, if any). Returns false when there was nothing to write.
   * @throws OwnershipLostError when another worker claimed the partition: drop this task, never retry it.
   */
  async checkpoint(): Promise<boolean> {
    await this.settle();
    return this.startCheckpoint();
  }
}

/** What one checkpoint interval handled, kept apart from the intervals after it. */
interface Interval {
  /** Events added in the interval, per stream (for batches of the streams it closed). */
  readonly uncommitted: Map<StreamId, Event[]>;
  /** Streams opened in the interval (nothing of them is stored before it). */
  readonly openedSince: Set<StreamId>;
  readonly closed: StreamClosed[];
  readonly closedAtMs: number[];
}

const recentKey = (r: RecentRow): string => `${r.trigger}\u0000${r.key}`;

/** The part of {@link CheckpointStore} the publisher uses. */
export interface OutboxStore {
  unpublishedOutbox(limit?: number): Promise<OutboxRow[]>;
  markPublished(ids: readonly number[]): Promise<number>;
}

/** Produces outbox rows to the batches topic; resolves once the broker acknowledged them. */
export type BatchSend = (rows: readonly OutboxRow[]) => Promise<void>;

/**
 * Publishes committed batches: reads unpublished outbox rows, produces them (idempotent producer, key =
 * batch id), then marks them published. One flush runs at a time. A crash between produce and mark
 * produces the same records again on the next flush (same batch ids: consumers skip repeats). Several
 * worker processes may publish the same row concurrently for the same reason; that costs a duplicate,
 * never a loss.
 */
export class OutboxPublisher {
  private running: Promise<number> = Promise.resolve(0);
  published = 0;
  /** Batch id → wall-clock ms its closing record was handled (only while metrics are on). */
  private readonly stamps = new Map<string, number>();

  constructor(
    private readonly store: OutboxStore,
    private readonly send: BatchSend,
    private readonly pageSize = 500,
    private readonly options: OutboxPublisherOptions = {},
  ) {}

  private nowMs(): number {
    return (this.options.nowMs ?? Date.now)();
  }

  /**
   * Remembers when the records that closed these (committed, not yet published) batches were handled,
   * so their publication observes the fire latency. Batches republished after a restart have no stamp
   * and are not observed. Without metrics this does nothing.
   */
  stamp(batches: readonly ClosedBatchStamp[]): void {
    if (this.options.metrics === undefined) return;
    for (const b of batches) this.stamps.set(b.batchId, b.closedAtMs);
    // A batch another process published first is never seen by this one: forget the oldest stamps
    // rather than grow without bound.
    const excess = this.stamps.size - MAX_STAMPS;
    if (excess > 0) {
      let n = 0;
      for (const id of this.stamps.keys()) {
        if (n++ >= excess) break;
        this.stamps.delete(id);
      }
    }
  }

  /** Publishes everything unpublished now; returns how many rows this flush published. */
  flush(): Promise<number> {
    const next = this.running.catch(() => 0).then(() => this.drain());
    this.running = next;
    return next;
  }

  private async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await this.store.unpublishedOutbox(this.pageSize);
      if (rows.length === 0) return total;
      const m = this.options.metrics;
      const started = m === undefined ? 0 : this.nowMs();
      await this.send(rows);
      if (m !== undefined) this.observe(m, rows, started);
      await this.store.markPublished(rows.map((r) => r.id));
      total += rows.length;
      this.published += rows.length;
      if (rows.length < this.pageSize) return total;
    }
  }

  private observe(m: WinchesterMetrics, rows: readonly OutboxRow[], started: number): void {
    const acked = this.nowMs();
    m.batchPublishDuration.observe((acked - started) / 1000);
    let fire = 0;
    let byReference = 0;
    const inline = this.options.maxInlineBatchBytes ?? Number.POSITIVE_INFINITY;
    for (const row of rows) {
      if (row.kind === 'fire') fire++;
      // The same test as batchValueFor, which the send function applies. A UTF-8 encoding is at most 3
      // bytes per UTF-16 unit, so short payloads skip the byte count.
      if (row.payload.length > inline / 3 && Buffer.byteLength(row.payload, 'utf8') > inline) byReference++;
      const closedAt = this.stamps.get(row.batchId);
      if (closedAt === undefined) continue;
      this.stamps.delete(row.batchId);
      m.fireLatency.labels({ kind: row.kind }).observe(Math.max(0, acked - closedAt) / 1000);
    }
    if (fire > 0) m.batchesPublished.labels({ kind: 'fire' }).inc(fire);
    if (rows.length > fire) m.batchesPublished.labels({ kind: 'expire' }).inc(rows.length - fire);
    if (byReference > 0) m.batchesByReference.inc(byReference);
  }
}

/** Most fire-latency stamps kept while waiting for their publication. */
const MAX_STAMPS = 100_000;

/** Options of {@link OutboxPublisher}. */
export interface OutboxPublisherOptions {
  /** Batches published, publish duration and fire latency go here. */
  readonly metrics?: WinchesterMetrics;
  /** Wall-clock ms. Default Date.now. */
  readonly nowMs?: () => number;
  /**
   * The inline limit the send function applies (`batchValueFor`, default `MAX_INLINE_BATCH_BYTES`).
   * When given, batches over it are counted in `batches_by_reference_total` once their publication is
   * acknowledged; leave it out when the send function counts them itself.
   */
  readonly maxInlineBatchBytes?: number;
}
