/**
 * The operator's queries on streams (`winchester streams list | show | retry`): find streams by trigger,
 * state, distinguishing value and age, read one stream with its events and its outbox batch, and move
 * failed streams to their retry state under the optimistic version check.
 *
 * Reads never lock anything a worker needs; the retry move is one statement per page of streams,
 * `WHERE id = … AND version = <read> AND state = <read>`, so a stream a worker changed in between is
 * left alone and reported rather than overwritten (docs/schema.md, stream state machine).
 */

import type { FragmentSqlToken } from 'slonik';
import { isStreamState, type StreamState } from '../engine/effects.js';
import { WinchesterError } from '../errors.js';
import type { Event } from '../model/event.js';
import { DatetimeError, type Instant, parseDatetime } from '../timex/instant.js';
import type { DistinguishingValue, DistinguishingValues } from '../triggers/types.js';
import { traitsFromDb } from './checkpoint-store.js';
import { toDatabaseError } from './errors.js';
import { type DatabasePool, sql } from './pool.js';

// The states and their check live with the state type (src/engine/effects.ts); re-exported for the CLI.
export { isStreamState, STREAM_STATES } from '../engine/effects.js';

// ---- distinguishing filters ---------------------------------------------------------------------

/**
 * One `--distinguishing NAME=VALUE` filter, compiled: the stored typed values the text may stand for,
 * and (when it reads as a datetime) the instant a time-range value must contain.
 */
export interface DistinguishingFilter {
  readonly name: string;
  /** Stored values (`{"type":…,"value":…}` or a range) any one of which matches, compared as jsonb. */
  readonly equals: readonly StoredValue[];
  /** A `range` value matches when begin ≤ within < end (the half-open range of timex). */
  readonly within: Instant | null;
}

/** A distinguishing value as `streams.distinguishing` stores it (JSON of {@link DistinguishingValue}). */
export type StoredValue = DistinguishingValue;

const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function tryDatetime(s: string): Instant | null {
  try {
    return parseDatetime(s);
  } catch (error) {
    if (error instanceof DatetimeError) return null;
    throw error;
  }
}

/**
 * Compiles `VALUE` of a distinguishing filter. The command line has no types, so the text stands for
 * every typed value it can spell: always the text itself; an integer also as an int and as the equal
 * float; a decimal as a float; a datetime (any form `parseDatetime` reads) as a datetime and as an
 * instant inside a time range; `BEGIN/END` (two datetimes) as exactly that range. `3` thus finds an
 * int 3, a float 3.0 and a text "3"; types never mix further than that (no text "3.0" for `3`).
 * A VALUE in JSON quotes (`"3"`) is only that text.
 */
export function compileDistinguishingFilter(name: string, value: string): DistinguishingFilter {
  // A JSON-quoted VALUE is that text and nothing else (how list prints a text that looks like a number).
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    try {
      const text: unknown = JSON.parse(value);
      if (typeof text === 'string') return { name, equals: [{ type: 'text', value: text }], within: null };
    } catch {
      // Not valid JSON: taken literally below.
    }
  }
  const equals: StoredValue[] = [{ type: 'text', value }];
  if (INT.test(value)) {
    const n = Number(value);
    if (Number.isSafeInteger(n)) equals.push({ type: 'int', value: n });
    if (Number.isFinite(n)) equals.push({ type: 'float', value: n });
  } else if (FLOAT.test(value)) {
    const n = Number(value);
    if (Number.isFinite(n)) equals.push({ type: 'float', value: n });
  }
  const at = tryDatetime(value);
  if (at !== null) equals.push({ type: 'datetime', value: at });
  const slash = value.indexOf('/');
  if (slash > 0) {
    const begin = tryDatetime(value.slice(0, slash));
    const end = tryDatetime(value.slice(slash + 1));
    if (begin !== null && end !== null) equals.push({ type: 'range', begin, end });
  }
  return { name, equals, within: at };
}

// ---- rows ----------------------------------------------------------------------------------------

/** A stream as `streams list` shows it. Times are µs Instants. */
export interface StreamSummary {
  readonly id: string;
  readonly trigger: string;
  readonly state: StreamState;
  /** How many events the stream holds. */
  readonly events: number;
  readonly first: Instant;
  readonly last: Instant;
  /** By trait name (jsonb keeps no order; callers sort for display). */
  readonly distinguishing: DistinguishingValues;
}

/** Every column of a stream row. Wall-clock bookkeeping times are ISO-8601 UTC strings with µs. */
export interface StreamDetail extends StreamSummary {
  readonly topic: string;
  readonly partition: number;
  readonly seq: number;
  readonly key: string;
  readonly version: number;
  readonly expireAt: Instant;
  readonly fireAt: Instant | null;
  readonly closedAt: Instant | null;
  readonly criterionCounts: readonly number[];
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** The outbox row of a stream's fire or expire batch. */
export interface StreamBatch {
  readonly batchId: string;
  readonly kind: 'fire' | 'expire';
  readonly messageKey: string | null;
  /** Size of the payload in bytes (UTF-8). */
  readonly bytes: number;
  readonly createdAt: string;
  /** When the outbox publisher produced it; null while it waits. */
  readonly publishedAt: string | null;
  /** When a pipeline worker recorded it complete (completed_batches); null if it never was. */
  readonly completedAt: string | null;
}

/** One stream with everything stored about it. */
export interface StreamView {
  readonly stream: StreamDetail;
  /** Oldest first, ties in arrival order. */
  readonly events: readonly Event[];
  /** Normally at most one (a stream closes once), oldest first. */
  readonly batches: readonly StreamBatch[];
}

/** What `streams list` asks for; every field narrows (AND). */
export interface StreamQuery {
  readonly trigger?: string;
  readonly state?: StreamState;
  readonly distinguishing?: readonly DistinguishingFilter[];
  /** Only streams whose first event is strictly before this instant (`--older-than`). */
  readonly firstBefore?: Instant;
  /** Only streams whose first event is strictly after this instant (`--newer-than`). */
  readonly firstAfter?: Instant;
  /** Most rows returned (≥ 1). */
  readonly limit: number;
}

// ---- value conversion ----------------------------------------------------------------------------

const isSafe = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n);

/** int8 columns come back as BigInt (slonik's parser); every value we store is a safe integer. */
function toInt(value: unknown, what: string): number {
  const n = typeof value === 'bigint' ? Number(value) : typeof value === 'string' ? Number(value) : value;
  if (!isSafe(n)) throw new WinchesterError(`database returned a bad ${what}: ${String(value)}`);
  return n;
}

const toIntOrNull = (value: unknown, what: string): number | null =>
  value === null || value === undefined ? null : toInt(value, what);

const textOrNull = (value: unknown): string | null =>
  value === null || value === undefined ? null : String(value);

function stateOf(value: unknown, id: string): StreamState {
  const s = String(value);
  if (!isStreamState(s)) throw new WinchesterError(`stream ${id}: unknown state '${s}'`);
  return s;
}

/** Reads `streams.distinguishing` back into typed values, refusing anything not written by us. */
export function distinguishingFromDb(raw: unknown, where: string): DistinguishingValues {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new WinchesterError(`${where}: distinguishing values are not an object`);
  }
  const out: Record<string, DistinguishingValue> = {};
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    const t = (v ?? {}) as { type?: unknown; value?: unknown; begin?: unknown; end?: unknown };
    switch (t.type) {
      case 'text':
        if (typeof t.value === 'string') {
          out[name] = { type: 'text', value: t.value };
          continue;
        }
        break;
      case 'float':
        // JSON has no NaN or infinities: JSON.stringify wrote a non-finite float as null.
        if (typeof t.value === 'number' || t.value === null) {
          out[name] = { type: 'float', value: t.value ?? Number.NaN };
          continue;
        }
        break;
      case 'int':
      case 'datetime':
        if (isSafe(t.value)) {
          out[name] = { type: t.type, value: t.value };
          continue;
        }
        break;
      case 'range':
        if (isSafe(t.begin) && isSafe(t.end)) {
          out[name] = { type: 'range', begin: t.begin, end: t.end };
          continue;
        }
        break;
    }
    throw new WinchesterError(`${where}: distinguishing value '${name}' is not a typed value`);
  }
  return out;
}

// Wall-clock columns as text in UTC with microseconds: slonik would turn timestamptz into milliseconds.
const isoUtc = (table: string, column: string) =>
  sql.fragment`to_char(${sql.identifier([table, column])} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

function summaryOf(r: Record<string, unknown>): StreamSummary {
  const id = String(r.id);
  return {
    id,
    trigger: String(r.trigger),
    state: stateOf(r.state, id),
    events: toInt(r.events, 'event count'),
    first: toInt(r.first_event, 'first_event'),
    last: toInt(r.last_event, 'last_event'),
    distinguishing: distinguishingFromDb(r.distinguishing, `stream ${id}`),
  };
}

// ---- queries -------------------------------------------------------------------------------------

/**
 * The streams matching every condition of `q`, by first event then id, at most `q.limit`.
 * @throws DatabaseUnavailableError (retriable) when PostgreSQL cannot be reached; DatabaseError otherwise.
 */
export async function listStreams(pool: DatabasePool, q: StreamQuery): Promise<StreamSummary[]> {
  if (!isSafe(q.limit) || q.limit < 1)
    throw new TypeError(`limit must be a positive integer, got ${q.limit}`);
  const conditions = [sql.fragment`TRUE`];
  if (q.trigger !== undefined) conditions.push(sql.fragment`s.trigger = ${q.trigger}`);
  if (q.state !== undefined) conditions.push(sql.fragment`s.state = ${q.state}::stream_state`);
  if (q.firstBefore !== undefined) conditions.push(sql.fragment`s.first_event < ${q.firstBefore}`);
  if (q.firstAfter !== undefined) conditions.push(sql.fragment`s.first_event > ${q.firstAfter}`);
  for (const f of q.distinguishing ?? []) {
    const value = sql.fragment`(s.distinguishing -> ${f.name})`;
    const equal = sql.fragment`${value} IN (SELECT jsonb_array_elements(${JSON.stringify(f.equals)}::jsonb))`;
    conditions.push(
      f.within === null
        ? equal
        : sql.fragment`(${equal} OR (${value} ->> 'type' = 'range'
            AND (${value} ->> 'begin')::bigint <= ${f.within} AND ${f.within} < (${value} ->> 'end')::bigint))`,
    );
  }
  try {
    const rows = await pool.any(sql.unsafe`
      SELECT s.id, s.trigger, s.state, s.first_event, s.last_event, s.distinguishing,
        (SELECT count(*) FROM stream_events e WHERE e.stream_id = s.id) AS events
      FROM streams s
      WHERE ${sql.join(conditions, sql.fragment` AND `)}
      ORDER BY s.first_event, s.id
      LIMIT ${q.limit}`);
    return rows.map(summaryOf);
  } catch (error) {
    throw toDatabaseError(error, 'listing streams');
  }
}

/**
 * One stream with its events and outbox batch, or null when there is no stream `id`.
 * @throws DatabaseUnavailableError (retriable) when PostgreSQL cannot be reached; DatabaseError otherwise.
 */
export async function getStream(pool: DatabasePool, id: string): Promise<StreamView | null> {
  try {
    // One snapshot: the stream, its events and its batch as of the same moment.
    return await pool.transaction(async (tx) => {
      await tx.query(sql.unsafe`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`);
      const r = await tx.maybeOne(sql.unsafe`
        SELECT s.id, s.topic, s.partition, s.seq, s.trigger, s.key, s.distinguishing, s.state,
          s.first_event, s.last_event, s.expire_at, s.fire_at, s.closed_at, s.version, s.criterion_counts,
          ${isoUtc('s', 'created_at')} AS created_at, ${isoUtc('s', 'updated_at')} AS updated_at,
          (SELECT count(*) FROM stream_events e WHERE e.stream_id = s.id) AS events
        FROM streams s WHERE s.id = ${id}`);
      if (r === null) return null;
      const counts = r.criterion_counts;
      if (!Array.isArray(counts)) throw new WinchesterError(`stream ${id}: bad criterion counts`);
      const stream: StreamDetail = {
        ...summaryOf(r),
        topic: String(r.topic),
        partition: toInt(r.partition, 'partition'),
        seq: toInt(r.seq, 'seq'),
        key: String(r.key),
        version: toInt(r.version, 'version'),
        expireAt: toInt(r.expire_at, 'expire_at'),
        fireAt: toIntOrNull(r.fire_at, 'fire_at'),
        closedAt: toIntOrNull(r.closed_at, 'closed_at'),
        criterionCounts: counts.map((c) => toInt(c, 'criterion count')),
        createdAt: String(r.created_at),
        updatedAt: String(r.updated_at),
      };
      const eventRows = await tx.any(sql.unsafe`
        SELECT message_id, event_type, "timestamp", traits FROM stream_events
        WHERE stream_id = ${id} ORDER BY "timestamp", ord`);
      const events = eventRows.map((e) => ({
        message_id: String(e.message_id),
        event_type: String(e.event_type),
        timestamp: toInt(e.timestamp, 'event timestamp'),
        traits: traitsFromDb(e.traits, `stream ${id} event ${String(e.message_id)}`),
      }));
      const batchRows = await tx.any(sql.unsafe`
        SELECT o.batch_id, o.kind, o.message_key, octet_length(o.payload) AS bytes,
          ${isoUtc('o', 'created_at')} AS created_at, ${isoUtc('o', 'published_at')} AS published_at,
          ${isoUtc('c', 'completed_at')} AS completed_at
        FROM outbox o LEFT JOIN completed_batches c ON c.batch_id = o.batch_id
        WHERE o.stream_id = ${id} ORDER BY o.id`);
      const batches = batchRows.map(
        (b): StreamBatch => ({
          batchId: String(b.batch_id),
          kind: b.kind === 'expire' ? 'expire' : 'fire',
          messageKey: textOrNull(b.message_key),
          bytes: toInt(b.bytes, 'payload size'),
          createdAt: String(b.created_at),
          publishedAt: textOrNull(b.published_at),
          completedAt: textOrNull(b.completed_at),
        }),
      );
      return { stream, events, batches };
    });
  } catch (error) {
    throw toDatabaseError(error, `reading stream ${id}`);
  }
}

// ---- retry ---------------------------------------------------------------------------------------

/** The failed states and the retry state each one moves to. */
export const RETRY_OF: Readonly<Partial<Record<StreamState, StreamState>>> = {
  error: 'retry_fire',
  expire_error: 'retry_expire',
};

/** The batch kind a failed or retrying state re-runs. */
export function batchKindOf(state: StreamState): 'fire' | 'expire' | null {
  if (state === 'error' || state === 'retry_fire') return 'fire';
  if (state === 'expire_error' || state === 'retry_expire') return 'expire';
  return null;
}

/** A stream `streams retry` was asked about, with the outbox batch it would re-publish. */
export interface RetryCandidate {
  readonly id: string;
  readonly trigger: string;
  readonly state: StreamState;
  readonly version: number;
  /** The outbox row of the batch the state re-runs (fire for error, expire for expire_error), if any. */
  readonly batch: RetryBatch | null;
}

/** What is needed to produce a batch again. */
export interface RetryBatch {
  readonly batchId: string;
  readonly kind: 'fire' | 'expire';
  readonly messageKey: string | null;
  /** Payload size in bytes. */
  readonly bytes: number;
  /**
   * The payload, or null when it is larger than the inline limit the caller gave (it then goes by
   * reference, so it is not read at all).
   */
  readonly payload: string | null;
  /** Whether completed_batches holds it (a pipeline worker would skip it). */
  readonly completed: boolean;
}

/** Which streams to consider: named ones, or a page of one failed state. */
export type RetrySelection =
  | { readonly ids: readonly string[] }
  | {
      readonly state: 'error' | 'expire_error';
      readonly trigger?: string;
      /** Only ids after this one (keyset paging); null for the first page. */
      readonly afterId: string | null;
      readonly limit: number;
    };

/**
 * The streams of `selection` with their state, version and outbox batch. Named ids that do not exist
 * are simply absent. Payloads larger than `maxInlineBytes` are not read.
 */
export async function retryCandidates(
  pool: DatabasePool,
  selection: RetrySelection,
  maxInlineBytes: number,
): Promise<RetryCandidate[]> {
  const parts: FragmentSqlToken[] = [];
  let limit = sql.fragment``;
  if ('ids' in selection) {
    if (selection.ids.length === 0) return [];
    parts.push(sql.fragment`s.id = ANY(${sql.array([...selection.ids], 'text')})`);
  } else {
    parts.push(sql.fragment`s.state = ${selection.state}::stream_state`);
    if (selection.trigger !== undefined) parts.push(sql.fragment`s.trigger = ${selection.trigger}`);
    if (selection.afterId !== null) parts.push(sql.fragment`s.id > ${selection.afterId}`);
    limit = sql.fragment`LIMIT ${selection.limit}`;
  }
  const where = sql.join(parts, sql.fragment` AND `);
  try {
    const rows = await pool.any(sql.unsafe`
      SELECT s.id, s.trigger, s.state, s.version, o.batch_id, o.kind, o.message_key,
        octet_length(o.payload) AS bytes,
        CASE WHEN octet_length(o.payload) <= ${maxInlineBytes} THEN o.payload END AS payload,
        EXISTS (SELECT 1 FROM completed_batches c WHERE c.batch_id = o.batch_id) AS completed
      FROM streams s
      LEFT JOIN LATERAL (
        SELECT * FROM outbox o
        WHERE o.stream_id = s.id
          AND o.kind = CASE WHEN s.state IN ('expire_error', 'retry_expire') THEN 'expire' ELSE 'fire' END
        ORDER BY o.id DESC LIMIT 1
      ) o ON TRUE
      WHERE ${where}
      ORDER BY s.id
      ${limit}`);
    return rows.map((r) => {
      const id = String(r.id);
      return {
        id,
        trigger: String(r.trigger),
        state: stateOf(r.state, id),
        version: toInt(r.version, 'version'),
        batch:
          r.batch_id === null
            ? null
            : {
                batchId: String(r.batch_id),
                kind: r.kind === 'expire' ? 'expire' : 'fire',
                messageKey: textOrNull(r.message_key),
                bytes: toInt(r.bytes, 'payload size'),
                payload: textOrNull(r.payload),
                completed: r.completed === true,
              },
      };
    });
  } catch (error) {
    throw toDatabaseError(error, 'reading the streams to retry');
  }
}

/** One move `error → retry_fire` or `expire_error → retry_expire`, as read. */
export interface RetryMove {
  readonly id: string;
  /** The version and state the stream had when read; the move happens only if both still hold. */
  readonly version: number;
  readonly from: 'error' | 'expire_error';
  /** Its batch, whose completion record (if any) is cleared so the pipeline worker runs it again. */
  readonly batchId: string;
}

/** What {@link moveToRetry} did. */
export interface RetryMoveResult {
  /** Ids moved (version + 1, retry state). */
  readonly moved: ReadonlySet<string>;
  /** Batch ids whose completion record was removed. */
  readonly uncompleted: ReadonlySet<string>;
}

/**
 * Moves each stream to its retry state with `version = version + 1`, only where id, version and state
 * still are as read; clears the completion records of the moved streams' batches (a pipeline worker
 * skips a batch recorded complete, which would leave the stream waiting in its retry state forever).
 * One transaction: either every move that still applies happens with its clearance, or none does.
 */
export async function moveToRetry(pool: DatabasePool, moves: readonly RetryMove[]): Promise<RetryMoveResult> {
  if (moves.length === 0) return { moved: new Set(), uncompleted: new Set() };
  const rows = moves.map((m) => ({ id: m.id, version: m.version, from: m.from, batch_id: m.batchId }));
  try {
    return await pool.transaction(async (tx) => {
      const moved = await tx.anyFirst(sql.unsafe`
        UPDATE streams s SET
          state = CASE x."from" WHEN 'error' THEN 'retry_fire'::stream_state ELSE 'retry_expire'::stream_state END,
          version = s.version + 1
        FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(id text, version integer, "from" stream_state, batch_id text)
        WHERE s.id = x.id AND s.version = x.version AND s.state = x."from"
        RETURNING s.id`);
      const movedIds = new Set(moved.map(String));
      const batches = moves.filter((m) => movedIds.has(m.id)).map((m) => m.batchId);
      const cleared =
        batches.length === 0
          ? []
          : await tx.anyFirst(sql.unsafe`
              DELETE FROM completed_batches WHERE batch_id = ANY(${sql.array(batches, 'text')})
              RETURNING batch_id`);
      return { moved: movedIds, uncompleted: new Set(cleared.map(String)) };
    });
  } catch (error) {
    throw toDatabaseError(error, 'moving streams to their retry state');
  }
}

/** The current state and version of each existing id (to say why a move did not happen). */
export async function streamStates(
  pool: DatabasePool,
  ids: readonly string[],
): Promise<Map<string, { state: StreamState; version: number }>> {
  const out = new Map<string, { state: StreamState; version: number }>();
  if (ids.length === 0) return out;
  try {
    const rows = await pool.any(sql.unsafe`
      SELECT id, state, version FROM streams WHERE id = ANY(${sql.array([...ids], 'text')})`);
    for (const r of rows) {
      const id = String(r.id);
      out.set(id, { state: stateOf(r.state, id), version: toInt(r.version, 'version') });
    }
    return out;
  } catch (error) {
    throw toDatabaseError(error, 'reading stream states');
  }
}
