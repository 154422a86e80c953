import type { Event } from '../model/event.js';
import type { Effect, StreamId } from './effects.js';

/**
 * Where a stream's events live while the engine keeps only its evaluation state. Workers back it
 * with Postgres (events appended in the checkpoint transaction, read back when the stream fires);
 * replay uses {@link MemoryEventStore}. Methods may be synchronous or return promises.
 */
export interface EventStore {
  /** Records that `event` joined the stream. */
  append(streamId: StreamId, event: Event): void | Promise<void>;
  /** The stream's events sorted by timestamp (ties keep arrival order). */
  read(streamId: StreamId): readonly Event[] | Promise<readonly Event[]>;
  /** Forgets the stream's events (after its batch is handed on, or when purged). */
  discard(streamId: StreamId): void | Promise<void>;
}

/** An in-process event store: arrays of events per stream. */
export class MemoryEventStore implements EventStore {
  private readonly byStream = new Map<StreamId, Event[]>();

  append(streamId: StreamId, event: Event): void {
    const list = this.byStream.get(streamId);
    if (list === undefined) this.byStream.set(streamId, [event]);
    else list.push(event);
  }

  read(streamId: StreamId): readonly Event[] {
    const list = this.byStream.get(streamId);
    if (list === undefined) return [];
    // Array.prototype.sort is stable, so events with equal timestamps stay in arrival order.
    return [...list].sort((a, b) => a.timestamp - b.timestamp);
  }

  discard(streamId: StreamId): void {
    this.byStream.delete(streamId);
  }

  /** Number of streams with stored events. */
  get size(): number {
    return this.byStream.size;
  }

  /** Stores the events that `eventAdded` effects carry; other effects need nothing here. */
  apply(effects: readonly Effect[]): void {
    for (const e of effects) if (e.type === 'eventAdded') this.append(e.streamId, e.event);
  }
}
