/**
 * `winchester produce --advance-clock`: moves the event-time clock of every stream-events partition to a
 * given time, so streams of a replayed history whose last events are behind us fire their delayed
 * triggers and expire (DESIGN.md §Time).
 *
 * A tick only helps once the events it should follow are on the stream-events topic: a stream-events
 * partition's clock must not pass events still waiting to be routed. So by default this first waits
 * until the route stage's consumer group has committed the end of every notifications partition (the
 * router commits a notification only after what it produced for it was acknowledged), then appends one
 * tick to every stream-events partition, behind everything routed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { jsonCodec, type RecordCodec } from '../serde/codec.js';
import type { Instant } from '../timex/instant.js';
import { classifyKafkaError, KafkaRequestError } from './errors.js';
import { createKafka, createProducer, type KafkaClientOptions } from './kafka.js';
import type { Admin } from './types.js';

/** Options of {@link advanceClock}. */
export interface AdvanceClockOptions {
  readonly client: KafkaClientOptions;
  readonly notificationsTopic: string;
  readonly streamEventsTopic: string;
  /** The route stage's consumer group (`<client_id>.route`). */
  readonly routeGroup: string;
  readonly time: Instant;
  /**
   * Writes the tick: the codec the trigger workers use (Avro with `schema_registry.url` configured,
   * src/cli/worker-runtime.ts workerAvro), so every record of the topic is in one format. Default JSON.
   */
  readonly codec?: Pick<RecordCodec, 'encodeTick'>;
  /** Wait for the route stage to catch up first (default true). */
  readonly wait?: boolean;
  /** Give up waiting (or on Kafka) after this many milliseconds. */
  readonly timeoutMs: number;
  /** Called while waiting with how many notifications are still to be routed. */
  readonly onWaiting?: (remaining: number) => void;
}

/** What {@link advanceClock} did. */
export interface AdvanceClockResult {
  /** Partitions of the stream-events topic that received a tick. */
  readonly partitions: number;
  /** Milliseconds spent waiting for the route stage. */
  readonly waitedMs: number;
}

/**
 * Waits for the route stage (unless `wait` is false), then sends a tick carrying `time` to every
 * partition of the stream-events topic.
 * @throws KafkaRequestError when the stream-events topic does not exist or the route stage does not
 * catch up in time; KafkaUnavailableError when Kafka cannot be reached.
 */
export async function advanceClock(options: AdvanceClockOptions): Promise<AdvanceClockResult> {
  const kafka = createKafka(options.client);
  const admin = kafka.admin();
  const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    if (!existing.has(options.streamEventsTopic)) {
      throw new KafkaRequestError(
        `topic ${options.streamEventsTopic} does not exist: start a trigger worker first (it creates it)`,
      );
    }
    if (options.wait !== false && existing.has(options.notificationsTopic)) {
      await waitForRouteStage(admin, options, deadline);
    }
    const waitedMs = Date.now() - started;
    const metadata = await admin.fetchTopicMetadata({ topics: [options.streamEventsTopic] });
    const partitions = metadata.topics[0]?.partitions.map((p) => p.partitionId) ?? [];
    const value = (options.codec ?? jsonCodec).encodeTick(options.time);
    await producer.connect();
    await producer.send({
      topic: options.streamEventsTopic,
      acks: -1,
      messages: partitions.map((partition) => ({ partition, key: null, value })),
    });
    return { partitions: partitions.length, waitedMs };
  } catch (error) {
    throw classifyKafkaError(error, 'advancing the clock');
  } finally {
    await Promise.all([admin.disconnect(), producer.disconnect()].map((p) => p.catch(() => undefined)));
  }
}

/** Notifications on `topic` past the group's committed offsets (all of a partition it never committed). */
async function remaining(admin: Admin, topic: string, groupId: string): Promise<number> {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ]);
  const done = new Map<number, number>();
  for (const p of committed[0]?.partitions ?? []) done.set(p.partition, Number(p.offset));
  let left = 0;
  for (const p of ends) {
    const end = Number(p.high);
    const low = Number(p.low);
    const at = done.get(p.partition) ?? -1;
    left += Math.max(0, end - (at < 0 ? low : at));
  }
  return left;
}

async function waitForRouteStage(
  admin: Admin,
  options: AdvanceClockOptions,
  deadline: number,
): Promise<void> {
  for (;;) {
    const left = await remaining(admin, options.notificationsTopic, options.routeGroup);
    if (left === 0) return;
    options.onWaiting?.(left);
    if (Date.now() + 250 > deadline) {
      throw new KafkaRequestError(
        `the route stage (group ${options.routeGroup}) still has ${left} notification${left === 1 ? '' : 's'} ` +
          `of ${options.notificationsTopic} to route: is a trigger worker running? (--no-wait sends the tick anyway)`,
      );
    }
    await sleep(250);
  }
}
