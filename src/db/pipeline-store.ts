/**
 * The pipeline worker's side of PostgreSQL (schema: migrations/, docs/schema.md): which batches are
 * complete, the state of a batch's stream, the state moves a pipeline makes (checked by version and by
 * the database's transition trigger), and the one transaction that records a batch complete.
 *
 * Exactly-once effect rests on `completed_batches`: a batch id is inserted there only after the
 * pipeline's commit() ran, in the same transaction as the stream's move to `completed` (and its purge),
 * and a batch whose id is there is never run again. See docs/pipeline-worker.md for the order and the
 * one window it leaves (a crash after commit() and before this transaction).
 */
import { isStreamState, type StreamState } from '../engine/effects.js';
import { WinchesterError } from '../errors.js';
import { CheckpointStore } from './checkpoint-store.js';
import { toDatabaseError } from './errors.js';
import { type DatabasePool, sql } from './pool.js';

/** A stream's state and version as stored. */
export interface StoredStreamState {
  readonly state: StreamState;
  readonly version: number;
}

/** What {@link PipelineStore.completeBatch} did. */
export interface CompletionResult {
  /** False when the batch id was already recorded (another delivery completed it first): nothing changed. */
  readonly recorded: boolean;
  /**
   * What happened to the stream: `completed` (kept, purge off), `purged` (deleted with its events), or
   * `unchanged` (it was not in the running state any more, or is gone; the completion is recorded anyway,
   * since commit() has run).
   */
  readonly stream: 'completed' | 'purged' | 'unchanged';
}

function toState(value: unknown, streamId: string): StreamState {
  const s = String(value);
  if (!isStreamState(s))
    throw new WinchesterError(`stream ${streamId}: unknown state '${s}' in the database`);
  return s;
}

function toVersion(value: unknown, streamId: string): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw new WinchesterError(`stream ${streamId}: bad version ${String(value)} in the database`);
  }
  return n;
}

/** PostgreSQL access of the pipeline worker. Holds no state besides the pool. */
export class PipelineStore {
  private readonly outbox: CheckpointStore;

  constructor(private readonly pool: DatabasePool) {
    this.outbox = new CheckpointStore(pool);
  }

  /** Whether `batchId` is recorded complete. */
  async isCompleted(batchId: string): Promise<boolean> {
    try {
      const row = await this.pool.maybeOne(
        sql.unsafe`SELECT 1 AS done FROM completed_batches WHERE batch_id = ${batchId}`,
      );
      return row !== null;
    } catch (error) {
      throw toDatabaseError(error, `looking up batch ${batchId}`);
    }
  }

  /** The stream's state and version, or null when there is no such stream (purged, or never stored). */
  async streamState(streamId: string): Promise<StoredStreamState | null> {
    try {
      const row = await this.pool.maybeOne(
        sql.unsafe`SELECT state, version FROM streams WHERE id = ${streamId}`,
      );
      if (row === null) return null;
      return { state: toState(row.state, streamId), version: toVersion(row.version, streamId) };
    } catch (error) {
      throw toDatabaseError(error, `reading the state of stream ${streamId}`);
    }
  }

  /**
   * Moves a stream from `from` to `to` and bumps its version, only if it is still at `from` and
   * `expectedVersion` (optimistic lock, as the reference's `set_stream_state`). The database's transition
   * trigger refuses moves the state machine does not allow (a {@link DatabaseError}).
   * @returns the new version, or null when the stream is gone or was changed by someone else.
   */
  async moveStream(
    streamId: string,
    from: StreamState,
    to: StreamState,
    expectedVersion: number,
  ): Promise<number | null> {
    try {
      const row = await this.pool.maybeOne(sql.unsafe`
        UPDATE streams SET state = ${to}::stream_state, version = version + 1
        WHERE id = ${streamId} AND state = ${from}::stream_state AND version = ${expectedVersion}
        RETURNING version`);
      return row === null ? null : toVersion(row.version, streamId);
    } catch (error) {
      throw toDatabaseError(error, `moving stream ${streamId} from ${from} to ${to}`);
    }
  }

  /**
   * Records `batchId` complete and finishes its stream, in one transaction: insert into
   * completed_batches (a repeat is a no-op and changes nothing else), move the stream from `running`
   * to `completed` (version bumped), and delete it — its events cascade — when `purge` is set.
   */
  async completeBatch(c: {
    readonly batchId: string;
    readonly streamId: string;
    readonly running: 'firing' | 'expiring';
    readonly purge: boolean;
  }): Promise<CompletionResult> {
    try {
      return await this.pool.transaction(async (tx) => {
        const inserted = await tx.maybeOne(sql.unsafe`
          INSERT INTO completed_batches (batch_id, stream_id) VALUES (${c.batchId}, ${c.streamId})
          ON CONFLICT (batch_id) DO NOTHING
          RETURNING batch_id`);
        if (inserted === null) return { recorded: false, stream: 'unchanged' } as const;
        // The move goes through the transition trigger, so the state machine is honoured even when the
        // row is deleted right after.
        const moved = await tx.maybeOne(sql.unsafe`
          UPDATE streams SET state = 'completed', version = version + 1
          WHERE id = ${c.streamId} AND state = ${c.running}::stream_state
          RETURNING id`);
        if (moved === null) return { recorded: true, stream: 'unchanged' } as const;
        if (!c.purge) return { recorded: true, stream: 'completed' } as const;
        await tx.query(sql.unsafe`DELETE FROM streams WHERE id = ${c.streamId}`);
        return { recorded: true, stream: 'purged' } as const;
      });
    } catch (error) {
      throw toDatabaseError(error, `recording batch ${c.batchId} complete`);
    }
  }

  /**
   * The batch value kept in the outbox for `batchId` (what a batch reference on the batches topic points
   * to), or null when there is no such row. The checkpoint store owns the outbox; this reads through it.
   */
  outboxPayload(batchId: string): Promise<string | null> {
    return this.outbox.outboxPayload(batchId);
  }
}
