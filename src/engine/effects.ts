import type { Event } from '../model/event.js';
import type { Instant } from '../timex/instant.js';
import type { DistinguishingValues } from '../triggers/types.js';

/**
 * Stream states, those of the reference (`winchester/models.py` StreamState). The engine itself
 * only ever holds `active` streams; it moves them to `firing`/`expiring` (handed to a pipeline) or
 * straight to `completed` (no pipeline to run). The pipeline side moves them on from there.
 */
export type StreamState =
  | 'active'
  | 'firing'
  | 'expiring'
  | 'error'
  | 'expire_error'
  | 'completed'
  | 'retry_fire'
  | 'retry_expire';

/** Every stream state, in the order of the `stream_state` enum (migrations/0001_streams.sql). */
export const STREAM_STATES: readonly StreamState[] = [
  'active',
  'firing',
  'expiring',
  'error',
  'expire_error',
  'completed',
  'retry_fire',
  'retry_expire',
];

/** Whether `s` names a stream state. */
export function isStreamState(s: string): s is StreamState {
  return (STREAM_STATES as readonly string[]).includes(s);
}

/** The allowed moves between states (enforced by whoever persists them, with the version check). */
export const STREAM_TRANSITIONS: Readonly<Record<StreamState, readonly StreamState[]>> = {
  active: ['firing', 'expiring', 'completed', 'error'],
  firing: ['completed', 'error'],
  expiring: ['completed', 'expire_error'],
  error: ['retry_fire'],
  expire_error: ['retry_expire'],
  retry_fire: ['firing'],
  retry_expire: ['expiring'],
  completed: [],
};

/**
 * Stream ids are strings, unique within the whole deployment when each partition's engine has its
 * own prefix: `${prefix}${sequence}`. They are derived from the input sequence only, so replaying the
 * same input (or resuming from a checkpoint) produces the same ids, and batch ids derived from them
 * are stable.
 */
export type StreamId = string;

/** Fields every effect carries. `version` is the stream's version after this effect. */
interface EffectBase {
  readonly streamId: StreamId;
  readonly trigger: string;
  /**
   * The stream's version after the effect: 1 when opened, +1 for every change. A checkpoint
   * upserts a changed stream `WHERE version = <version at the previous checkpoint>`.
   */
  readonly version: number;
}

/** A new stream was opened (its first event follows as an `eventAdded`). */
export interface StreamOpened extends EffectBase {
  readonly type: 'streamOpened';
  readonly key: string;
  readonly distinguishing: DistinguishingValues;
  /** Timestamp of the event that opened it. */
  readonly first: Instant;
  /** Sequence number inside the partition (the numeric part of the id). */
  readonly seq: number;
}

/** An event joined a stream; the stream's first/last/expiration after it. */
export interface EventAdded extends EffectBase {
  readonly type: 'eventAdded';
  readonly event: Event;
  readonly first: Instant;
  readonly last: Instant;
  readonly expireAt: Instant;
}

/** An event whose message_id the stream already holds was ignored (the stream did not change). */
export interface DuplicateIgnored extends EffectBase {
  readonly type: 'duplicateIgnored';
  readonly messageId: string;
}

/** The fire criteria were met: the stream fires once the clock passes `fireAt`. */
export interface FireScheduled extends EffectBase {
  readonly type: 'fireScheduled';
  readonly fireAt: Instant;
}

/**
 * The stream fired or expired and left the engine. `state` is `firing`/`expiring` when a pipeline
 * must run, `completed` when the trigger has no pipeline for this outcome. The stream's events are
 * fetched from the event store by `streamId`.
 */
export interface StreamClosed extends EffectBase {
  readonly type: 'fired' | 'expired';
  readonly key: string;
  readonly pipeline: string | null;
  readonly state: 'firing' | 'expiring' | 'completed';
  readonly first: Instant;
  readonly last: Instant;
  /** The clock reading at which the engine fired/expired it. */
  readonly at: Instant;
  /** The fire time (fire) or the expiration (expire) that had passed. */
  readonly due: Instant;
}

/** A restored stream could not be loaded (its trigger is no longer configured): mark it `error`. */
export interface StreamErrored extends EffectBase {
  readonly type: 'streamErrored';
  readonly state: 'error';
  readonly reason: 'unknown_trigger';
}

/** Everything the engine reports; an adapter persists these (Postgres checkpoint, batch outbox). */
export type Effect =
  | StreamOpened
  | EventAdded
  | DuplicateIgnored
  | FireScheduled
  | StreamClosed
  | StreamErrored;
