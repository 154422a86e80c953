/**
 * The trigger worker's durable state in PostgreSQL (schema: migrations/, docs/schema.md):
 * partition claims fenced by an owner epoch, atomic checkpoints (offset + engine sequence +
 * changed streams + their new events + fire/expire batches for the outbox), and the reads a worker
 * and the outbox publisher need.
 *
 * Fencing. `claimPartition` bumps the partition's epoch; every checkpoint updates the partition row
 * `WHERE epoch = <the epoch it claimed>` as its first statement (which also locks that row, so a
 * claim and a checkpoint of the same partition never interleave) and every changed stream
 * `WHERE version = <version at the previous checkpoint>`. Zero rows on any of these means another
 * worker owns the partition now: the whole transaction rolls back and {@link OwnershipLostError} is
 * thrown. A worker that gets it must stop processing the partition and drop its in-memory state.
 */

import type { StreamId, StreamState } from '../engine/effects.js';
import type { PartitionSnapshot, RecentRow, StreamRow } from '../engine/state.js';
import { WinchesterError } from '../errors.js';
import type { Event, TraitValue } from '../model/event.js';
import type { Instant } from '../timex/instant.js';
import type { DistinguishingValues } from '../triggers/types.js';
import { toDatabaseError } from './errors.js';
import { type DatabasePool, type DatabaseTransactionConnection, sql } from './pool.js';

/**
 * Another worker claimed the partition (epoch changed) or already wrote a stream this checkpoint
 * expected to own (version changed, or a "new" stream exists). Nothing of the checkpoint was written.
 * Not retriable: the caller must give the partition up and re-claim it to continue.
 */
export class OwnershipLostError extends WinchesterError {
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly reason: 'epoch' | 'version' | 'exists',
    detail: string,
  ) {
    super(`lost ownership of ${topic}[${partition}]: ${detail}`, { retriable: false });
  }
}

/** What a worker starts a partition from. */
export interface ClaimedPartition {
  readonly topic: string;
  readonly partition: number;
  /** This worker's epoch; every checkpoint must name it. */
  readonly epoch: number;
  /** The next offset to consume, or null when the partition was never checkpointed. */
  readonly offset: number | null;
  /** The engine's next stream sequence number. */
  readonly nextSeq: number;
  /**
   * The partition's active streams by ascending seq, as the engine imports them; empty when they were
   * handed to a {@link StreamSink} instead.
   */
  readonly liveStreams: readonly StreamRow[];
  /** `{nextSeq, now, streams: liveStreams, recent}`, ready for `PartitionEngine.importState`. */
  readonly snapshot: PartitionSnapshot;
}

/**
 * Receives a claimed partition's live streams a chunk at a time, by ascending seq, while the claim's
 * transaction is open (the claim commits after the last chunk). The rows are not kept by the store: a
 * sink that imports them into an engine lets them be collected chunk by chunk. Awaited before the next
 * chunk is read, so the event loop turns between chunks (consumer heartbeats keep going). An error it
 * throws rolls the claim back and is thrown by the claim unchanged.
 */
export type StreamSink = (rows: StreamRow[]) => void | Promise<void>;

/** Live streams a claim reads per statement (keyset pages by seq). */
export const CLAIM_CHUNK = 5000;

/**
 * At most this many message ids are kept on a stream's row (migration 0006); a longer stream's list is
 * dropped from the row and read from stream_events when claimed. Appending to the row's list rewrites it
 * on every checkpoint that touches the stream, so the cap bounds that rewrite for long streams, while the
 * streams of a typical partition (a few events each) restore with one index range scan.
 */
export const ROW_MESSAGE_IDS_MAX = 64;

/**
 * One stream changed since the previous checkpoint. New streams (`expectedVersion: null`) need
 * every field; for an existing stream an omitted field (undefined, or null for `fireAt`/`closedAt`)
 * keeps its stored value, so a close effect (which carries no counts) can be written as it is.
 */
export interface StreamWrite {
  readonly id: StreamId;
  /** The version stored by the previous checkpoint, or null for a stream opened since. */
  readonly expectedVersion: number | null;
  /** The version after this checkpoint (greater than `expectedVersion`). */
  readonly version: number;
  readonly state: StreamState;
  readonly seq?: number;
  readonly trigger?: string;
  readonly key?: string;
  readonly distinguishing?: DistinguishingValues;
  readonly first?: Instant;
  readonly last?: Instant;
  readonly expireAt?: Instant;
  readonly fireAt?: Instant | null;
  /** When the engine fired or expired it. */
  readonly closedAt?: Instant | null;
  readonly counts?: readonly number[];
}

/** An event appended to a stream. Appending one the stream already holds is a no-op. */
export interface StreamEventWrite {
  readonly streamId: StreamId;
  readonly event: Event;
}

/** A fire/expire batch to publish; `batchId` is unique (derived from the stream id). */
export interface OutboxWrite {
  readonly batchId: string;
  readonly streamId: StreamId;
  readonly kind: 'fire' | 'expire';
  /** The Kafka record key, or null. */
  readonly messageKey: string | null;
  /** The Kafka record value, exactly as it will be produced. */
  readonly payload: string;
}

/** Everything one checkpoint writes, atomically. */
export interface Checkpoint {
  readonly topic: string;
  readonly partition: number;
  readonly epoch: number;
  /** The next offset to consume after this checkpoint. */
  readonly offset: number;
  readonly nextSeq: number;
  readonly streams: readonly StreamWrite[];
  /** In arrival order (ties on timestamp read back in this order). */
  readonly events: readonly StreamEventWrite[];
  readonly outbox: readonly OutboxWrite[];
  /** Remembered message ids of closed streams created or extended since the last checkpoint. */
  readonly recent?: readonly RecentRow[];
  /** The engine's time: remembered rows whose `until` is before it are deleted. */
  readonly now?: Instant | null;
  /**
   * False when the writer knows no remembered row of the partition can have expired at `now` (it tracks
   * the earliest `until` it stored): the DELETE of recent_closed is skipped. Default true.
   */
  readonly pruneRecent?: boolean;
}

/** An outbox row waiting to be produced. */
export interface OutboxRow extends OutboxWrite {
  /** Database id, increasing in insertion order; pass to {@link CheckpointStore.markPublished}. */
  readonly id: number;
}

// ---- value conversion ---------------------------------------------------------------------

/** int8 columns come back as BigInt (slonik's parser); every value we store is a safe integer. */
function toInt(value: unknown, what: string): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw new WinchesterError(`database returned a bad ${what}: ${String(value)}`);
  }
  return n;
}

const isSafe = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n);

function checkInt(n: unknown, what: string, min = Number.MIN_SAFE_INTEGER): void {
  if (!isSafe(n) || n < min) throw new TypeError(`${what} must be an integer ≥ ${min}, got ${String(n)}`);
}

/** Traits are stored as `{"name": {"type": …, "value": …}}`; floats must be finite to survive JSON. */
function checkTraits(event: Event): void {
  for (const name of Object.keys(event.traits)) {
    const t = event.traits[name] as TraitValue;
    const ok =
      t.type === 'text'
        ? typeof t.value === 'string'
        : t.type === 'float'
          ? Number.isFinite(t.value)
          : (t.type === 'int' || t.type === 'datetime') && isSafe(t.value);
    if (!ok) {
      throw new TypeError(
        `event ${event.message_id}: trait '${name}' (${t.type}) cannot be stored: ${t.value}`,
      );
    }
  }
}

const TRAIT_TYPES = new Set(['text', 'int', 'float', 'datetime']);

/** Reads `stream_events.traits` back into typed trait values; `where` names the row in errors. */
export function traitsFromDb(raw: unknown, where: string): Record<string, TraitValue> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new WinchesterError(`${where}: traits are not an object`);
  }
  const out: Record<string, TraitValue> = Object.create(null);
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    const t = v as { type?: unknown; value?: unknown } | null;
    const type = t?.type;
    const value = t?.value;
    const valid =
      typeof type === 'string' &&
      TRAIT_TYPES.has(type) &&
      (type === 'text'
        ? typeof value === 'string'
        : type === 'float'
          ? typeof value === 'number'
          : isSafe(value));
    if (!valid) throw new WinchesterError(`${where}: trait '${name}' is not a typed value`);
    out[name] = { type, value } as TraitValue;
  }
  return out;
}

// ---- the store ----------------------------------------------------------------------------

/** Options of {@link CheckpointStore}. */
export interface CheckpointStoreOptions {
  /** Live streams a claim reads per statement. Default {@link CLAIM_CHUNK}. */
  readonly claimChunk?: number;
}

/** PostgreSQL-backed partition state for trigger workers. Holds no state of its own besides the pool. */
export class CheckpointStore {
  private readonly claimChunk: number;

  constructor(
    private readonly pool: DatabasePool,
    options: CheckpointStoreOptions = {},
  ) {
    const chunk = options.claimChunk ?? CLAIM_CHUNK;
    checkInt(chunk, 'claimChunk', 1);
    this.claimChunk = chunk;
  }

  /**
   * Takes ownership of a partition: bumps its epoch (creating its row on first use) and reads what
   * the engine resumes from. Any checkpoint still carrying an older epoch fails from now on.
   *
   * The live streams are read in pages of {@link CLAIM_CHUNK} by ascending seq. With `sink`, each page
   * is handed to it as it is read (and `liveStreams`/`snapshot.streams` come back empty), so a caller
   * can build its engine while reading and never hold every row at once; without, they are returned.
   * A page is one index range scan of `streams`: a row's message ids come from its own `message_ids`
   * column while that is current (migration 0006), else from stream_events.
   */
  async claimPartition(topic: string, partition: number, sink?: StreamSink): Promise<ClaimedPartition> {
    checkInt(partition, 'partition', 0);
    let sinkError: { error: unknown } | undefined;
    try {
      return await this.pool.transaction(async (tx) => {
        const claim = await tx.one(sql.unsafe`
          INSERT INTO partition_checkpoints (topic, partition, epoch) VALUES (${topic}, ${partition}, 1)
          ON CONFLICT (topic, partition) DO UPDATE
            SET epoch = partition_checkpoints.epoch + 1, claimed_at = now()
          RETURNING epoch, "offset", next_seq, clock`);
        // Plans of these statements are simple index scans: JIT compilation would cost more than it saves.
        await tx.query(sql.unsafe`SET LOCAL jit = off`);
        const liveStreams: StreamRow[] = [];
        for (let after = 0; ; ) {
          const page = await readLivePage(tx, topic, partition, after, this.claimChunk);
          if (page.length === 0) break;
          after = (page[page.length - 1] as StreamRow).seq;
          if (sink === undefined) {
            for (const row of page) liveStreams.push(row);
          } else {
            try {
              await sink(page);
            } catch (error) {
              sinkError = { error };
              throw error;
            }
          }
          if (page.length < this.claimChunk) break;
        }
        const recentRows = await tx.any(sql.unsafe`
          SELECT trigger, key, stream_id, version, until, message_ids FROM recent_closed
          WHERE topic = ${topic} AND partition = ${partition}`);
        const recent: RecentRow[] = recentRows.map((r) => ({
          trigger: String(r.trigger),
          key: String(r.key),
          streamId: String(r.stream_id),
          version: toInt(r.version, 'recent version'),
          until: toInt(r.until, 'recent until'),
          messageIds: (r.message_ids as unknown[]).map(String),
        }));
        const nextSeq = toInt(claim.next_seq, 'next_seq');
        return {
          topic,
          partition,
          epoch: toInt(claim.epoch, 'epoch'),
          offset: claim.offset === null ? null : toInt(claim.offset, 'offset'),
          nextSeq,
          liveStreams,
          snapshot: {
            nextSeq,
            now: claim.clock === null ? null : toInt(claim.clock, 'clock'),
            streams: liveStreams,
            recent,
          },
        };
      });
    } catch (error) {
      // The sink's own failure (a corrupt row for the engine) is the caller's error, not the database's.
      if (sinkError !== undefined) throw sinkError.error;
      throw toDatabaseError(error, `claiming ${topic}[${partition}]`);
    }
  }

  /**
   * Writes one checkpoint in a single transaction: the partition's offset and next sequence (epoch
   * checked), new streams (inserted) and changed ones (version checked), the new events (duplicates
   * ignored) and the outbox batches.
   * @throws OwnershipLostError when the epoch or a version does not match; nothing is written.
   * @throws DatabaseUnavailableError (retriable) when PostgreSQL cannot be reached; nothing is written,
   *   unless the connection broke after the commit was sent, in which case a retry of the same
   *   checkpoint fails with OwnershipLostError and the worker re-claims (reading what was committed).
   * @throws TypeError for a malformed checkpoint (a bug in the caller).
   */
  async checkpoint(cp: Checkpoint): Promise<void> {
    validateCheckpoint(cp);
    const { topic, partition } = cp;
    try {
      await this.pool.transaction(async (tx) => {
        const owned = await tx.maybeOne(sql.unsafe`
          UPDATE partition_checkpoints
          SET "offset" = ${cp.offset}, next_seq = ${cp.nextSeq}, updated_at = now(),
            clock = COALESCE(${Number.isSafeInteger(cp.now) ? (cp.now as number) : null}::bigint, clock)
          WHERE topic = ${topic} AND partition = ${partition} AND epoch = ${cp.epoch}
          RETURNING epoch`);
        if (owned === null) {
          throw new OwnershipLostError(topic, partition, 'epoch', `epoch ${cp.epoch} is no longer current`);
        }
        const newIds = messageIdsByStream(cp.events);
        await insertStreams(tx, cp, newIds);
        await updateStreams(tx, cp, newIds);
        await insertEvents(tx, cp.events);
        await insertOutbox(tx, cp.outbox);
        await writeRecent(tx, cp);
      });
    } catch (error) {
      throw toDatabaseError(error, `checkpointing ${topic}[${partition}]`);
    }
  }

  /** A stream's stored events, oldest first (ties in arrival order). Empty for an unknown stream. */
  /**
   * The stored events of several streams in one query (what a checkpoint closing many streams needs for
   * their batches), each list oldest first (ties in arrival order). Streams without events map to [].
   */
  async loadEventsOfStreams(streamIds: readonly StreamId[]): Promise<Map<StreamId, Event[]>> {
    const out = new Map<StreamId, Event[]>(streamIds.map((id) => [id, []]));
    if (streamIds.length === 0) return out;
    try {
      const rows = await this.pool.any(sql.unsafe`
        SELECT stream_id, message_id, event_type, "timestamp", traits FROM stream_events
        WHERE stream_id = ANY(${sql.array(streamIds as string[], 'text')})
        ORDER BY stream_id, "timestamp", ord`);
      for (const r of rows) {
        const id = String(r.stream_id);
        out.get(id)?.push({
          message_id: String(r.message_id),
          event_type: String(r.event_type),
          timestamp: toInt(r.timestamp, 'event timestamp'),
          traits: traitsFromDb(r.traits, `stream ${id} event ${String(r.message_id)}`),
        });
      }
      return out;
    } catch (error) {
      throw toDatabaseError(error, `reading the events of ${streamIds.length} streams`);
    }
  }

  async loadStreamEvents(streamId: StreamId): Promise<Event[]> {
    try {
      const rows = await this.pool.any(sql.unsafe`
        SELECT message_id, event_type, "timestamp", traits FROM stream_events
        WHERE stream_id = ${streamId} ORDER BY "timestamp", ord`);
      return rows.map((r) => ({
        message_id: String(r.message_id),
        event_type: String(r.event_type),
        timestamp: toInt(r.timestamp, 'event timestamp'),
        traits: traitsFromDb(r.traits, `stream ${streamId} event ${String(r.message_id)}`),
      }));
    } catch (error) {
      throw toDatabaseError(error, `reading the events of stream ${streamId}`);
    }
  }

  /** Outbox rows not yet published, oldest first, at most `limit`. */
  async unpublishedOutbox(limit = 1000): Promise<OutboxRow[]> {
    checkInt(limit, 'limit', 1);
    try {
      const rows = await this.pool.any(sql.unsafe`
        SELECT id, batch_id, stream_id, kind, message_key, payload FROM outbox
        WHERE published_at IS NULL ORDER BY id LIMIT ${limit}`);
      return rows.map((r) => ({
        id: toInt(r.id, 'outbox id'),
        batchId: String(r.batch_id),
        streamId: String(r.stream_id),
        kind: r.kind === 'expire' ? 'expire' : 'fire',
        messageKey: r.message_key === null ? null : String(r.message_key),
        payload: String(r.payload),
      }));
    } catch (error) {
      throw toDatabaseError(error, 'reading the outbox');
    }
  }

  /**
   * The stream-events topics other than `topic` whose partitions this database holds. Stream ids are
   * unique per partition number, not per topic, so one database serves one stream-events topic.
   */
  async otherStreamTopics(topic: string): Promise<string[]> {
    try {
      const rows = await this.pool.anyFirst(sql.unsafe`
        SELECT DISTINCT topic FROM partition_checkpoints WHERE topic <> ${topic} ORDER BY topic LIMIT 5`);
      return rows.map(String);
    } catch (error) {
      throw toDatabaseError(error, 'reading the partition checkpoints');
    }
  }

  /**
   * The batch value kept in the outbox for `batchId` (what a batch reference on the batches topic points
   * to), or null when there is no such row.
   */
  async outboxPayload(batchId: string): Promise<string | null> {
    try {
      const row = await this.pool.maybeOne(
        sql.unsafe`SELECT payload FROM outbox WHERE batch_id = ${batchId}`,
      );
      return row === null ? null : String(row.payload);
    } catch (error) {
      throw toDatabaseError(error, `reading the outbox row of batch ${batchId}`);
    }
  }

  /** Marks outbox rows published; returns how many were not already. */
  async markPublished(ids: readonly number[]): Promise<number> {
    for (const id of ids) checkInt(id, 'outbox id', 1);
    if (ids.length === 0) return 0;
    try {
      const result = await this.pool.query(sql.unsafe`
        UPDATE outbox SET published_at = now()
        WHERE id = ANY(${sql.array(ids as number[], 'int8')}) AND published_at IS NULL`);
      return result.rowCount;
    } catch (error) {
      throw toDatabaseError(error, 'marking outbox rows published');
    }
  }
}

/**
 * One page of a partition's live streams, seq after `after`. Shaped for the cheapest read at both ends
 * (measured with bench/restore.ts): the driver's cost grows with the columns, so the six numbers travel
 * as one comma-joined text and the counts as another (which also skips its BigInt and character-at-a-time
 * array parsers), while anything heavier built per row in PostgreSQL (a JSON document per stream) costs
 * the server more than it saves here. A single message id (most live streams) comes as a column of its
 * own; a list as JSON, which `JSON.parse` cuts into strings of their own (a substring would keep the whole
 * text it was cut from alive for as long as the engine keeps the id).
 */
async function readLivePage(
  tx: DatabaseTransactionConnection,
  topic: string,
  partition: number,
  after: number,
  limit: number,
): Promise<StreamRow[]> {
  const rows = await tx.any(sql.unsafe`
    SELECT s.id, s.trigger, s.key,
      concat_ws(',', s.seq, s.first_event, s.last_event, s.expire_at, s.version, s.fire_at) AS n,
      array_to_string(s.criterion_counts, ',') AS counts,
      CASE WHEN s.message_ids_version = s.version AND cardinality(s.message_ids) = 1
        THEN s.message_ids[1] END AS id1,
      CASE WHEN s.message_ids_version IS DISTINCT FROM s.version
        THEN to_json(ARRAY(SELECT e.message_id FROM stream_events e WHERE e.stream_id = s.id ORDER BY e.ord))::text
        WHEN cardinality(s.message_ids) <> 1 THEN to_json(s.message_ids)::text END AS ids
    FROM streams s
    WHERE s.topic = ${topic} AND s.partition = ${partition} AND s.state = 'active' AND s.seq > ${after}
    ORDER BY s.seq
    LIMIT ${limit}`);
  const out = new Array<StreamRow>(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = rowToStream(rows[i] as Record<string, unknown>);
  return out;
}

/** A safe integer from its decimal text (as PostgreSQL writes a bigint or integer). */
function intOf(text: unknown, what: string, id: string): number {
  const n = typeof text === 'string' && text !== '' ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw new WinchesterError(`stream ${id}: database returned a bad ${what}: ${String(text)}`);
  }
  return n;
}

function messageIdsOf(r: Record<string, unknown>, id: string): string[] {
  if (typeof r.id1 === 'string') return [r.id1];
  let ids: unknown;
  try {
    ids = JSON.parse(String(r.ids));
  } catch {
    ids = null;
  }
  if (!Array.isArray(ids) || ids.some((m) => typeof m !== 'string')) {
    throw new WinchesterError(`stream ${id}: database returned bad message ids`);
  }
  return ids as string[];
}

function rowToStream(r: Record<string, unknown>): StreamRow {
  const id = String(r.id);
  // seq, first_event, last_event, expire_at, version, then fire_at unless NULL (concat_ws skips NULLs).
  const n = String(r.n).split(',');
  if (n.length !== 5 && n.length !== 6)
    throw new WinchesterError(`stream ${id}: database returned bad times`);
  const counts = r.counts === '' ? [] : String(r.counts).split(',');
  const numbers = new Array<number>(counts.length);
  for (let i = 0; i < counts.length; i++) numbers[i] = intOf(counts[i], 'criterion count', id);
  return {
    id,
    seq: intOf(n[0], 'seq', id),
    trigger: String(r.trigger),
    key: String(r.key),
    first: intOf(n[1], 'first_event', id),
    last: intOf(n[2], 'last_event', id),
    expireAt: intOf(n[3], 'expire_at', id),
    fireAt: n.length === 6 ? intOf(n[5], 'fire_at', id) : null,
    version: intOf(n[4], 'version', id),
    counts: numbers,
    messageIds: messageIdsOf(r, id),
  };
}

function validateCheckpoint(cp: Checkpoint): void {
  checkInt(cp.partition, 'partition', 0);
  checkInt(cp.epoch, 'epoch', 1);
  checkInt(cp.offset, 'offset', 0);
  checkInt(cp.nextSeq, 'nextSeq', 1);
  const seen = new Set<string>();
  for (const s of cp.streams) {
    if (seen.has(s.id)) throw new TypeError(`stream ${s.id} appears twice in one checkpoint`);
    seen.add(s.id);
    checkInt(s.version, `stream ${s.id} version`, 1);
    if (s.expectedVersion === null) {
      const missing = (
        ['seq', 'trigger', 'key', 'distinguishing', 'first', 'last', 'expireAt', 'counts'] as const
      ).filter((f) => s[f] === undefined);
      if (missing.length > 0) throw new TypeError(`new stream ${s.id} lacks ${missing.join(', ')}`);
      checkInt(s.seq, `stream ${s.id} seq`, 1);
    } else {
      checkInt(s.expectedVersion, `stream ${s.id} expected version`, 1);
      if (s.version <= s.expectedVersion) {
        throw new TypeError(`stream ${s.id}: version ${s.version} is not after ${s.expectedVersion}`);
      }
    }
    for (const [f, v] of [
      ['first', s.first],
      ['last', s.last],
      ['expireAt', s.expireAt],
      ['fireAt', s.fireAt],
      ['closedAt', s.closedAt],
    ] as const) {
      if (v !== undefined && v !== null) checkInt(v, `stream ${s.id} ${f}`);
    }
    for (const c of s.counts ?? []) checkInt(c, `stream ${s.id} criterion count`, 0);
  }
  for (const e of cp.events) checkTraits(e.event);
}

// Each group of rows travels as ONE json parameter expanded by jsonb_to_recordset: a checkpoint is a
// handful of statements whatever its size, and arrays/jsonb need no per-row parameter juggling.

/**
 * The message ids each stream receives in this checkpoint, in arrival order, each once (like
 * stream_events, where appending an event the stream already holds is a no-op). A list stops one past
 * {@link ROW_MESSAGE_IDS_MAX}: that is enough to drop it from the row, and keeps the scan bounded.
 */
function messageIdsByStream(events: readonly StreamEventWrite[]): Map<StreamId, string[]> {
  const out = new Map<StreamId, string[]>();
  for (const { streamId, event } of events) {
    const list = out.get(streamId);
    if (list === undefined) out.set(streamId, [event.message_id]);
    else if (list.length <= ROW_MESSAGE_IDS_MAX && !list.includes(event.message_id))
      list.push(event.message_id);
  }
  return out;
}

async function insertStreams(
  tx: DatabaseTransactionConnection,
  cp: Checkpoint,
  newIds: ReadonlyMap<StreamId, string[]>,
): Promise<void> {
  const rows = cp.streams
    .filter((s) => s.expectedVersion === null)
    .map((s) => {
      // A new stream's events are all in this checkpoint. Only live streams keep their list on the row.
      const ids = s.state === 'active' ? (newIds.get(s.id) ?? []) : [];
      const keep = s.state === 'active' && ids.length <= ROW_MESSAGE_IDS_MAX;
      return {
        id: s.id,
        seq: s.seq,
        trigger: s.trigger,
        key: s.key,
        distinguishing: s.distinguishing,
        state: s.state,
        first_event: s.first,
        last_event: s.last,
        expire_at: s.expireAt,
        fire_at: s.fireAt ?? null,
        closed_at: s.closedAt ?? null,
        version: s.version,
        criterion_counts: s.counts,
        message_ids: keep ? ids : null,
        message_ids_version: keep ? s.version : null,
      };
    });
  if (rows.length === 0) return;
  const inserted = await tx.anyFirst(sql.unsafe`
    INSERT INTO streams (id, topic, partition, seq, trigger, key, distinguishing, state, first_event,
      last_event, expire_at, fire_at, closed_at, version, criterion_counts, message_ids, message_ids_version)
    SELECT x.id, ${cp.topic}, ${cp.partition}, x.seq, x.trigger, x.key, x.distinguishing, x.state,
      x.first_event, x.last_event, x.expire_at, x.fire_at, x.closed_at, x.version, x.criterion_counts,
      x.message_ids, x.message_ids_version
    FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(id text, seq bigint, trigger text, key text,
      distinguishing jsonb, state stream_state, first_event bigint, last_event bigint, expire_at bigint,
      fire_at bigint, closed_at bigint, version integer, criterion_counts integer[], message_ids text[],
      message_ids_version integer)
    ON CONFLICT DO NOTHING
    RETURNING id`);
  if (inserted.length !== rows.length) {
    const got = new Set(inserted.map(String));
    const clash = rows.find((r) => !got.has(r.id))?.id;
    throw new OwnershipLostError(
      cp.topic,
      cp.partition,
      'exists',
      `new stream ${clash} (or its sequence number) already exists`,
    );
  }
}

async function updateStreams(
  tx: DatabaseTransactionConnection,
  cp: Checkpoint,
  newIds: ReadonlyMap<StreamId, string[]>,
): Promise<void> {
  const rows = cp.streams
    .filter((s) => s.expectedVersion !== null)
    .map((s) => ({
      id: s.id,
      expected: s.expectedVersion,
      version: s.version,
      state: s.state,
      first_event: s.first ?? null,
      last_event: s.last ?? null,
      expire_at: s.expireAt ?? null,
      fire_at: s.fireAt ?? null,
      closed_at: s.closedAt ?? null,
      criterion_counts: s.counts ?? null,
      message_ids: newIds.get(s.id) ?? [],
    }));
  if (rows.length === 0) return;
  // The row's id list grows by this checkpoint's ids while it is current (its version is the row's) and
  // short enough; otherwise (closed, too long, or written by something that does not keep it) it is
  // dropped and the claim reads the ids from stream_events. The right-hand side sees the old row.
  const updated = await tx.anyFirst(sql.unsafe`
    UPDATE streams s SET
      message_ids = CASE WHEN x.state = 'active' AND s.message_ids_version = s.version
        AND cardinality(s.message_ids) + cardinality(x.message_ids) <= ${ROW_MESSAGE_IDS_MAX}
        THEN s.message_ids || ARRAY(SELECT m FROM unnest(x.message_ids) WITH ORDINALITY AS u(m, n)
          WHERE m <> ALL (s.message_ids) ORDER BY n) END,
      message_ids_version = CASE WHEN x.state = 'active' AND s.message_ids_version = s.version
        AND cardinality(s.message_ids) + cardinality(x.message_ids) <= ${ROW_MESSAGE_IDS_MAX}
        THEN x.version END,
      version = x.version,
      state = x.state,
      first_event = COALESCE(x.first_event, s.first_event),
      last_event = COALESCE(x.last_event, s.last_event),
      expire_at = COALESCE(x.expire_at, s.expire_at),
      fire_at = COALESCE(x.fire_at, s.fire_at),
      closed_at = COALESCE(x.closed_at, s.closed_at),
      criterion_counts = COALESCE(x.criterion_counts, s.criterion_counts)
    FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(id text, expected integer, version integer,
      state stream_state, first_event bigint, last_event bigint, expire_at bigint, fire_at bigint,
      closed_at bigint, criterion_counts integer[], message_ids text[])
    WHERE s.id = x.id AND s.version = x.expected AND s.topic = ${cp.topic} AND s.partition = ${cp.partition}
    RETURNING s.id`);
  if (updated.length !== rows.length) {
    const got = new Set(updated.map(String));
    const stale = rows.find((r) => !got.has(r.id));
    throw new OwnershipLostError(
      cp.topic,
      cp.partition,
      'version',
      `stream ${stale?.id} is no longer at version ${stale?.expected} (or is gone)`,
    );
  }
}

async function insertEvents(
  tx: DatabaseTransactionConnection,
  events: readonly StreamEventWrite[],
): Promise<void> {
  if (events.length === 0) return;
  // Built by hand: the traits object already has the stored shape, and one string is cheaper than
  // an intermediate array of objects.
  let json = '[';
  for (let i = 0; i < events.length; i++) {
    const { streamId, event } = events[i] as StreamEventWrite;
    if (i > 0) json += ',';
    json += `{"stream_id":${JSON.stringify(streamId)},"message_id":${JSON.stringify(event.message_id)},"event_type":${JSON.stringify(event.event_type)},"timestamp":${event.timestamp},"traits":${JSON.stringify(event.traits)}}`;
  }
  json += ']';
  await tx.query(sql.unsafe`
    INSERT INTO stream_events (stream_id, message_id, event_type, "timestamp", traits)
    SELECT x.stream_id, x.message_id, x.event_type, x."timestamp", x.traits
    FROM ROWS FROM (jsonb_to_recordset(${json}::jsonb) AS (stream_id text, message_id text,
      event_type text, "timestamp" bigint, traits jsonb)) WITH ORDINALITY
      AS x(stream_id, message_id, event_type, "timestamp", traits, n)
    ORDER BY x.n
    ON CONFLICT DO NOTHING`);
}

async function insertOutbox(
  tx: DatabaseTransactionConnection,
  outbox: readonly OutboxWrite[],
): Promise<void> {
  if (outbox.length === 0) return;
  const rows = outbox.map((o) => ({
    batch_id: o.batchId,
    stream_id: o.streamId,
    kind: o.kind,
    message_key: o.messageKey,
    payload: o.payload,
  }));
  await tx.query(sql.unsafe`
    INSERT INTO outbox (batch_id, stream_id, kind, message_key, payload)
    SELECT x.batch_id, x.stream_id, x.kind, x.message_key, x.payload
    FROM ROWS FROM (jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS (batch_id text, stream_id text,
      kind text, message_key text, payload text)) WITH ORDINALITY
      AS x(batch_id, stream_id, kind, message_key, payload, n)
    ORDER BY x.n`);
}

async function writeRecent(tx: DatabaseTransactionConnection, cp: Checkpoint): Promise<void> {
  const recent = cp.recent ?? [];
  if (recent.length > 0) {
    // One statement for all rows: the id lists travel as JSON (a text[][] cannot be ragged).
    const rows = JSON.stringify(
      recent.map((r) => ({
        trigger: r.trigger,
        key: r.key,
        stream_id: r.streamId,
        version: r.version,
        until: r.until,
        message_ids: r.messageIds,
      })),
    );
    await tx.query(sql.unsafe`
      INSERT INTO recent_closed (topic, partition, trigger, key, stream_id, version, until, message_ids)
      SELECT ${cp.topic}, ${cp.partition}, r.trigger, r.key, r.stream_id, r.version, r.until,
        ARRAY(SELECT jsonb_array_elements_text(r.message_ids))
      FROM jsonb_to_recordset(${rows}::jsonb)
        AS r(trigger text, key text, stream_id text, version integer, until bigint, message_ids jsonb)
      ON CONFLICT (topic, partition, trigger, key) DO UPDATE SET
        stream_id = excluded.stream_id, version = excluded.version, until = excluded.until,
        message_ids = excluded.message_ids`);
  }
  const now = cp.now;
  if (cp.pruneRecent !== false && now !== undefined && now !== null && Number.isSafeInteger(now)) {
    await tx.query(sql.unsafe`
      DELETE FROM recent_closed WHERE topic = ${cp.topic} AND partition = ${cp.partition} AND until < ${now}`);
  }
}
