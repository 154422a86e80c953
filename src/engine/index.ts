/**
 * The stream engine: per-partition, pure and deterministic. See partition-engine.ts for the
 * semantics, effects.ts for what it reports, state.ts for checkpoints.
 */
export { type Clock, EventTimeClock, ManualClock, WallClock } from './clock.js';
export {
  type DuplicateIgnored,
  type Effect,
  type EventAdded,
  type FireScheduled,
  STREAM_TRANSITIONS,
  type StreamClosed,
  type StreamErrored,
  type StreamId,
  type StreamOpened,
  type StreamState,
} from './effects.js';
export { type EventStore, MemoryEventStore } from './event-store.js';
export { PartitionEngine, type PartitionEngineOptions } from './partition-engine.js';
export {
  EngineStateError,
  evaluationFromEvents,
  type PartitionSnapshot,
  type RecentRow,
  type StreamRow,
  validateRow,
} from './state.js';
export { type TimerEntry, TimerQueue } from './timer-queue.js';
