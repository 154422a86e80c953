/**
 * A rate limiter for producing a workload at a fixed rate: it says how many items may have gone out by a
 * given time, so a loop that wakes every few milliseconds sends exactly what is due, and a late wake-up
 * catches up instead of losing the items (the rate holds over the run, not only per tick).
 */
export class Pacer {
  private sent = 0;

  /**
   * @param perSecond the target rate (items per second, > 0)
   * @param startMs when the first item is due (same clock as the `nowMs` passed later)
   * @param burst at most this many items are released by one call, so a long stall is caught up in
   *   bounded steps (default: no bound)
   */
  constructor(
    readonly perSecond: number,
    readonly startMs: number,
    readonly burst: number = Number.POSITIVE_INFINITY,
  ) {
    if (!(perSecond > 0) || !Number.isFinite(perSecond)) {
      throw new RangeError(`rate must be a positive number of items per second, got ${perSecond}`);
    }
    if (!(burst >= 1)) throw new RangeError(`burst must be at least 1, got ${burst}`);
  }

  /** Items due by `nowMs` in total (the first is due at the start). */
  dueBy(nowMs: number): number {
    if (nowMs < this.startMs) return 0;
    return Math.floor(((nowMs - this.startMs) * this.perSecond) / 1000) + 1;
  }

  /** How many items to send now (and counts them as sent), at most `burst`. */
  take(nowMs: number): number {
    const n = Math.min(this.burst, Math.max(0, this.dueBy(nowMs) - this.sent));
    this.sent += n;
    return n;
  }

  /** Items released so far. */
  get released(): number {
    return this.sent;
  }

  /** Milliseconds from `nowMs` until the next item is due (0 if one is due already). */
  msUntilNext(nowMs: number): number {
    const nextDueMs = this.startMs + (this.sent * 1000) / this.perSecond;
    return Math.max(0, nextDueMs - nowMs);
  }
}
