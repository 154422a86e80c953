/**
 * Consumer lag of a group on a topic, per partition: the partition's high watermark minus the offset the
 * group committed there (what an operator reads as "messages still to process").
 */
import type { Admin } from 'kafkajs';
import { classifyKafkaError } from './errors.js';

/** The lag of one partition. */
export interface PartitionLag {
  readonly partition: number;
  /** Offset of the next record the broker will write. */
  readonly highWatermark: number;
  /** The group's committed offset, or null when the group has none for the partition. */
  readonly committed: number | null;
  /**
   * Records behind: high watermark − committed. Without a committed offset the group has consumed
   * nothing of what the partition retains, so the lag is high watermark − low watermark (never negative).
   */
  readonly lag: number;
}

/**
 * Fetches the per-partition lag of `groupId` on `topic` (two admin requests: ListOffsets and
 * OffsetFetch), by ascending partition.
 * @throws KafkaUnavailableError or KafkaRequestError (see `classifyKafkaError`).
 */
export async function fetchConsumerLag(
  admin: Pick<Admin, 'fetchTopicOffsets' | 'fetchOffsets'>,
  groupId: string,
  topic: string,
): Promise<PartitionLag[]> {
  try {
    // One after the other, not Promise.all: when the first fails (a missing topic) the second must not be
    // left running. Still retrying after this threw, it would reconnect after the caller disconnected the
    // admin and leave a broker connection open (found by the lag test of router-metrics). OffsetFetch goes
    // first: it fails at once on a missing topic, where ListOffsets retries its metadata for many seconds.
    const groupOffsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    const ends = await admin.fetchTopicOffsets(topic);
    const committed = new Map<number, number>();
    for (const t of groupOffsets) {
      if (t.topic !== topic) continue;
      for (const p of t.partitions) {
        const offset = Number(p.offset);
        // kafkajs reports "no committed offset" as -1.
        if (Number.isSafeInteger(offset) && offset >= 0) committed.set(p.partition, offset);
      }
    }
    return ends
      .map((p) => {
        const high = Number(p.high);
        const low = Number(p.low);
        const done = committed.get(p.partition);
        const lag = done === undefined ? high - low : high - done;
        return {
          partition: p.partition,
          highWatermark: high,
          committed: done ?? null,
          lag: Math.max(0, lag),
        };
      })
      .sort((a, b) => a.partition - b.partition);
  } catch (error) {
    throw classifyKafkaError(error, `fetching the lag of group ${groupId} on ${topic}`);
  }
}
