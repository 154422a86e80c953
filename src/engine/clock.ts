import { type Instant, nowInstant } from '../timex/instant.js';

/**
 * The engine's notion of "now". The engine never reads the system time itself: a worker passes a
 * {@link WallClock}, replay passes an {@link EventTimeClock}, and tests pass a {@link ManualClock},
 * so fire delays and expirations are tested without sleeping.
 */
export interface Clock {
  /** The current time in microseconds since the epoch (UTC). */
  now(): Instant;
  /**
   * Tells the clock that an event (or a router time tick) carrying this timestamp was seen.
   * Event-time clocks move forward with it; a wall clock ignores it.
   */
  observe(timestamp: Instant): void;
}

/** Wall-clock time, as the platform gives it (millisecond resolution). The default for workers. */
export class WallClock implements Clock {
  /** @param source the time source; defaults to `Date.now()` in microseconds. */
  constructor(private readonly source: () => Instant = nowInstant) {}

  now(): Instant {
    return this.source();
  }

  observe(_timestamp: Instant): void {
    // Wall time does not follow the data.
  }
}

/**
 * Event time: the highest timestamp observed, minus an allowed lateness. Used to replay history,
 * where "now" must follow the data rather than the machine. Before anything is observed the clock
 * reads `-Infinity`, so nothing is ever due.
 */
export class EventTimeClock implements Clock {
  private highest: Instant = Number.NEGATIVE_INFINITY;

  /**
   * @param latenessUs how far behind the highest observed timestamp "now" stays, in microseconds
   * (default 0, what replay uses). A positive value lets slightly out-of-order events still join
   * streams that would otherwise have just expired.
   */
  constructor(readonly latenessUs: number = 0) {
    if (!Number.isFinite(latenessUs) || latenessUs < 0) {
      throw new RangeError(
        `event-time lateness must be a non-negative number of microseconds, got ${latenessUs}`,
      );
    }
  }

  now(): Instant {
    return this.highest - this.latenessUs;
  }

  observe(timestamp: Instant): void {
    if (timestamp > this.highest) this.highest = timestamp;
  }
}

/** A clock a test (or a driver that owns time) sets explicitly. `observe` is ignored. */
export class ManualClock implements Clock {
  constructor(private current: Instant = 0) {}

  now(): Instant {
    return this.current;
  }

  /** Moves the clock to `t` (backwards is allowed here; the engine itself never goes back). */
  set(t: Instant): void {
    this.current = t;
  }

  /** Moves the clock forward by `us` microseconds. */
  tick(us: number): void {
    this.current += us;
  }

  observe(_timestamp: Instant): void {}
}
