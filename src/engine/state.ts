import { WinchesterError } from '../errors.js';
import type { Event } from '../model/event.js';
import type { Instant } from '../timex/instant.js';
import type { TriggerDefinition } from '../triggers/types.js';
import type { StreamId } from './effects.js';

/**
 * One live stream as persisted: exactly what the engine needs to resume evaluating it, and nothing
 * of its events but their message ids (the events themselves live in the event store).
 */
export interface StreamRow {
  readonly id: StreamId;
  /** Sequence number within the partition (the numeric part of `id`). */
  readonly seq: number;
  readonly trigger: string;
  /** Canonical distinguishing key (TriggerMatch.key). */
  readonly key: string;
  /** Earliest and latest event timestamp in the stream. */
  readonly first: Instant;
  readonly last: Instant;
  readonly expireAt: Instant;
  /** When it fires, or null while the fire criteria are unmet. */
  readonly fireAt: Instant | null;
  readonly version: number;
  /**
   * Matching events counted per fire criterion, in the trigger's order, saturated at each
   * criterion's `number` (only reaching the threshold matters).
   */
  readonly counts: readonly number[];
  /** The message ids already in the stream, in arrival order (for deduplication). */
  readonly messageIds: readonly string[];
}

/** The state of one partition: its live streams and the next stream sequence number. */
export interface PartitionSnapshot {
  /** Sequence number the next opened stream gets; persist it with the partition offset. */
  readonly nextSeq: number;
  /** The engine's clock reading when exported (null before any time passed). */
  readonly now: Instant | null;
  /** Live (active) streams, by ascending `seq`. */
  readonly streams: readonly StreamRow[];
  /** Message ids of recently closed streams, remembered to drop late duplicates (absent: none). */
  readonly recent?: readonly RecentRow[];
}

/**
 * The message ids of the closed streams of one trigger and key, remembered until `until` (engine time)
 * so that a duplicate arriving after its stream closed is ignored instead of opening a new stream.
 */
export interface RecentRow {
  readonly trigger: string;
  readonly key: string;
  /** The last stream of the key that closed (named in the duplicateIgnored effect). */
  readonly streamId: StreamId;
  readonly version: number;
  readonly until: Instant;
  readonly messageIds: readonly string[];
}

/** A snapshot or stream row that cannot be loaded (corrupt, or for a different trigger config). */
export class EngineStateError extends WinchesterError {}

/**
 * Recomputes the evaluation state of a stream from its events, for stores that persist the stream
 * row without per-criterion counts or message ids. Duplicated message ids count once, like the
 * engine. Returns null for an empty event list.
 */
export function evaluationFromEvents(
  trigger: TriggerDefinition,
  events: readonly Event[],
): { first: Instant; last: Instant; counts: number[]; messageIds: string[] } | null {
  if (events.length === 0) return null;
  const criteria = trigger.fireCriteria;
  const counts = criteria.map(() => 0);
  const seen = new Set<string>();
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const e of events) {
    if (seen.has(e.message_id)) continue;
    seen.add(e.message_id);
    if (e.timestamp < first) first = e.timestamp;
    if (e.timestamp > last) last = e.timestamp;
    for (let i = 0; i < criteria.length; i++) {
      const c = criteria[i] as (typeof criteria)[number];
      if ((counts[i] as number) < c.number && c.matches(e)) counts[i] = (counts[i] as number) + 1;
    }
  }
  return { first, last, counts, messageIds: [...seen] };
}

const isInt = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n);

/** Throws the error of a row that cannot be restored (a function apart: validateRow runs per stream). */
function badRow(row: StreamRow, what: string): never {
  const where = `stream ${JSON.stringify(row.id)} (trigger ${JSON.stringify(row.trigger)})`;
  throw new EngineStateError(`cannot restore ${where}: ${what}`);
}

/** Checks a row's shape (it may come from JSON or a database); throws {@link EngineStateError}. */
export function validateRow(row: StreamRow, trigger: TriggerDefinition): void {
  if (typeof row.id !== 'string' || row.id === '') badRow(row, 'missing id');
  if (!isInt(row.seq) || row.seq < 1) badRow(row, `bad sequence number ${row.seq}`);
  if (typeof row.key !== 'string') badRow(row, 'missing key');
  if (!isInt(row.first) || !isInt(row.last) || row.first > row.last) badRow(row, 'bad first/last timestamps');
  if (!isInt(row.expireAt)) badRow(row, 'bad expiration');
  if (row.fireAt !== null && !isInt(row.fireAt)) badRow(row, 'bad fire time');
  if (!isInt(row.version) || row.version < 1) badRow(row, `bad version ${row.version}`);
  if (!Array.isArray(row.messageIds) || row.messageIds.length === 0) badRow(row, 'no message ids');
  if (!Array.isArray(row.counts) || row.counts.length !== trigger.fireCriteria.length) {
    badRow(
      row,
      `has ${Array.isArray(row.counts) ? row.counts.length : 'no'} fire criterion counts but the trigger has ${trigger.fireCriteria.length} fire criteria (rebuild it from its events)`,
    );
  }
  for (const c of row.counts) if (!isInt(c) || c < 0) badRow(row, `bad criterion count ${c}`);
}
