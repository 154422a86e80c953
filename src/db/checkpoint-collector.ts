/**
 * Turns a partition engine's effects into the {@link Checkpoint} the {@link CheckpointStore} writes:
 * which streams are new (insert) and which changed (update from the version of the previous
 * checkpoint), their rows, and the events they received. Pure: no I/O, no clock.
 *
 * Use, per checkpoint interval:
 * ```ts
 * const collector = new CheckpointCollector();                      // once, after claimPartition
 * collector.add(engine.takeEffects());                              // as often as you like
 * const cp = collector.build({ topic, partition, epoch, offset, nextSeq: engine.exportState().nextSeq }, engine, outbox);
 * await store.checkpoint(cp);                                       // retry the same cp if retriable
 * collector.committed();                                            // only after it succeeded
 * ```
 * Do not `add` between `build` and `committed`, unless the built checkpoint is {@link CheckpointCollector.seal}ed:
 * a sealed checkpoint is in flight (being written) while later effects are collected apart from it, for
 * the next checkpoint, which may only be built once the sealed one is `committed`. After an
 * {@link OwnershipLostError} (or any failure of the sealed checkpoint) drop the engine and the collector
 * and start again from a new claim.
 */
import type { Effect, StreamId, StreamState } from '../engine/effects.js';
import type { StreamRow } from '../engine/state.js';
import type { Instant } from '../timex/instant.js';
import type { DistinguishingValues } from '../triggers/types.js';
import type { Checkpoint, OutboxWrite, StreamEventWrite, StreamWrite } from './checkpoint-store.js';

/** What the collector needs of the engine: the rows of the given live streams. */
export interface LiveStreamSource {
  exportStreams(ids: ReadonlySet<StreamId>): StreamRow[];
}

/** What the effects of one interval said about one stream. */
interface Pending {
  /**
   * The version before the interval's first effect on the stream: what the previous checkpoint stored
   * (every effect raises a stream's version by exactly one), unless the stream opened in the interval.
   */
  readonly before: number;
  version: number;
  trigger: string;
  opened?: { seq: number; key: string; distinguishing: DistinguishingValues };
  first?: Instant;
  last?: Instant;
  expireAt?: Instant;
  fireAt?: Instant;
  key?: string;
  /** Set when the stream left the engine (fired, expired, or errored on restore). */
  closed?: { state: StreamState; at: Instant | null };
}

/**
 * Keeps nothing per live stream between checkpoints (a worker holds hundreds of thousands): a changed
 * stream's stored version is the one before its first effect since the last checkpoint, and a stream is
 * new exactly when that interval opened it. The checkpoint's version checks catch any disagreement.
 */
export class CheckpointCollector {
  private pending = new Map<StreamId, Pending>();
  private events: StreamEventWrite[] = [];
  /** What the sealed (in-flight) checkpoint writes, until it is committed. */
  private sealed: Map<StreamId, Pending> | undefined;

  /** Number of streams changed since the last committed checkpoint. */
  get changedStreams(): number {
    return this.pending.size;
  }

  /** Records the effects of the engine (in the order it produced them). */
  add(effects: readonly Effect[]): void {
    for (const e of effects) {
      if (e.type === 'duplicateIgnored') continue;
      let p = this.pending.get(e.streamId);
      if (p === undefined) {
        p = { before: e.version - 1, version: e.version, trigger: e.trigger };
        this.pending.set(e.streamId, p);
      }
      p.version = e.version;
      switch (e.type) {
        case 'streamOpened':
          p.opened = { seq: e.seq, key: e.key, distinguishing: e.distinguishing };
          p.first = e.first;
          p.last = e.first;
          break;
        case 'eventAdded':
          this.events.push({ streamId: e.streamId, event: e.event });
          p.first = e.first;
          p.last = e.last;
          p.expireAt = e.expireAt;
          break;
        case 'fireScheduled':
          p.fireAt = e.fireAt;
          break;
        case 'fired':
        case 'expired':
          p.first = e.first;
          p.last = e.last;
          p.key = e.key;
          p.closed = { state: e.state, at: e.at };
          break;
        case 'streamErrored':
          p.closed = { state: e.state, at: null };
          break;
      }
    }
  }

  /**
   * The checkpoint of everything added since the last {@link committed}. Live streams' rows come from
   * `engine` (authoritative counts and times); closed streams are written from their close effect.
   * A stream opened and closed within the interval is inserted with empty criterion counts (they only
   * matter while a stream is live).
   */
  build(
    at: Pick<
      Checkpoint,
      'topic' | 'partition' | 'epoch' | 'offset' | 'nextSeq' | 'recent' | 'now' | 'pruneRecent'
    >,
    engine: LiveStreamSource,
    outbox: readonly OutboxWrite[] = [],
  ): Checkpoint {
    if (this.sealed !== undefined) {
      // Its expected versions would be those before the in-flight checkpoint: fenced as a conflict.
      throw new Error('a checkpoint is in flight: build the next one only after it is committed');
    }
    const liveIds = new Set<StreamId>();
    for (const [id, p] of this.pending) if (p.closed === undefined) liveIds.add(id);
    const streams: StreamWrite[] = [];
    for (const row of engine.exportStreams(liveIds)) {
      const p = this.pending.get(row.id) as Pending;
      liveIds.delete(row.id);
      streams.push({
        id: row.id,
        expectedVersion: p.opened === undefined ? p.before : null,
        version: row.version,
        state: 'active',
        seq: row.seq,
        trigger: row.trigger,
        key: row.key,
        distinguishing: p.opened?.distinguishing,
        first: row.first,
        last: row.last,
        expireAt: row.expireAt,
        fireAt: row.fireAt,
        counts: row.counts,
      });
    }
    if (liveIds.size > 0) {
      throw new Error(`streams ${[...liveIds].join(', ')} changed but the engine no longer has them live`);
    }
    for (const [id, p] of this.pending) {
      if (p.closed === undefined) continue;
      const opened = p.opened;
      const expectedVersion = opened === undefined ? p.before : null;
      const write: StreamWrite = {
        id,
        expectedVersion,
        version: p.version,
        state: p.closed.state,
        first: p.first,
        last: p.last,
        expireAt: p.expireAt,
        fireAt: p.fireAt,
        closedAt: p.closed.at,
      };
      if (opened !== undefined) {
        if (p.expireAt === undefined) {
          throw new Error(
            `stream ${id} opened and closed in one interval, but its first event was not collected`,
          );
        }
        streams.push({
          ...write,
          seq: opened.seq,
          trigger: p.trigger,
          key: opened.key,
          distinguishing: opened.distinguishing,
          counts: [],
        });
      } else {
        streams.push(write);
      }
    }
    return { ...at, streams, events: this.events, outbox };
  }

  /**
   * The checkpoint built last is being written: effects added from now on belong to the next checkpoint
   * (events of streams that close later, streams opened since, further versions of the same streams).
   * Call {@link committed} once it is written.
   */
  seal(): void {
    if (this.sealed !== undefined) throw new Error('a checkpoint is already in flight');
    this.sealed = this.pending;
    this.pending = new Map();
    this.events = [];
  }

  /** Whether a sealed checkpoint waits for {@link committed}. */
  get inFlight(): boolean {
    return this.sealed !== undefined;
  }

  /**
   * The checkpoint built last (the sealed one, if any) was written: its versions are now the stored ones.
   */
  committed(): void {
    if (this.sealed !== undefined) {
      this.sealed = undefined;
    } else {
      this.pending = new Map();
      this.events = [];
    }
  }
}
