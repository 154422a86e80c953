/**
 * Keeps `winchester_consumer_lag{group,topic,partition}` current: fetched on a timer and, at most every
 * few seconds, on demand right before a scrape, so a dashboard never shows a lag older than the
 * refresh interval while the broker is not asked once per scrape of every replica.
 */
import type { PartitionLag } from '../kafka/lag.js';
import type { Logger } from '../log.js';
import type { WinchesterMetrics } from './metrics.js';

/** A consumer group and the topic whose lag it reports. */
export interface LagTarget {
  readonly group: string;
  readonly topic: string;
}

/** Options of {@link ConsumerLagMonitor}. */
export interface ConsumerLagMonitorOptions {
  readonly metrics: WinchesterMetrics;
  readonly targets: readonly LagTarget[];
  /** Fetches one target's lag (e.g. `fetchConsumerLag` bound to a connected admin). */
  readonly fetchLag: (group: string, topic: string) => Promise<readonly PartitionLag[]>;
  /** Milliseconds between timed refreshes. Default 15000. */
  readonly intervalMs?: number;
  /** A scrape triggers a refresh only when the last one is older than this. Default 5000. */
  readonly minRefreshMs?: number;
  readonly log?: Logger;
  /** Milliseconds clock. Default Date.now. */
  readonly nowMs?: () => number;
}

/** Refreshes the consumer lag gauge. Create, {@link start}, and {@link stop} on shutdown. */
export class ConsumerLagMonitor {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private lastStarted = Number.NEGATIVE_INFINITY;
  /** Partitions set per target last time, so a partition no longer reported is removed, not frozen. */
  private readonly seen = new Map<string, Set<number>>();

  constructor(private readonly options: ConsumerLagMonitorOptions) {}

  private nowMs(): number {
    return (this.options.nowMs ?? Date.now)();
  }

  /** Refreshes now, then every `intervalMs` (the timer does not keep the process alive). */
  start(): void {
    if (this.timer !== undefined) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.intervalMs ?? 15000);
    this.timer.unref();
  }

  /** For a scrape: refreshes unless the last refresh started less than `minRefreshMs` ago. */
  refreshIfStale(): Promise<void> {
    if (this.nowMs() - this.lastStarted < (this.options.minRefreshMs ?? 5000)) {
      return this.inFlight ?? Promise.resolve();
    }
    return this.refresh();
  }

  /** Fetches every target's lag into the gauge; one refresh at a time. Never rejects (failures are logged). */
  refresh(): Promise<void> {
    if (this.inFlight !== undefined) return this.inFlight;
    this.lastStarted = this.nowMs();
    this.inFlight = this.fetchAll().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async fetchAll(): Promise<void> {
    const { metrics, targets, fetchLag, log } = this.options;
    for (const { group, topic } of targets) {
      try {
        const lags = await fetchLag(group, topic);
        const id = `${group}\u0000${topic}`;
        const before = this.seen.get(id) ?? new Set<number>();
        const now = new Set<number>();
        for (const p of lags) {
          const partition = String(p.partition);
          metrics.consumerLag.labels({ group, topic, partition }).set(p.lag);
          now.add(p.partition);
        }
        for (const p of before) {
          if (!now.has(p)) metrics.consumerLag.remove({ group, topic, partition: String(p) });
        }
        this.seen.set(id, now);
      } catch (error) {
        metrics.kafkaErrors.labels({ operation: 'fetch_consumer_lag' }).inc();
        log?.('warn', 'fetching the consumer lag failed; kept the last values', {
          group,
          topic,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }

  /** Stops the timer and waits for a refresh in flight. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }
}
