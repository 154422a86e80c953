/**
 * A batching, idempotent producer for raw notifications (`winchester produce`): the caller adds
 * (key, JSON text) pairs one at a time; they leave in batches, with at most one batch on the wire and
 * one being filled, so memory stays bounded however long the input is and the reader is slowed down
 * (backpressure) when the broker is the bottleneck.
 *
 * Why one batch in flight: kafkajs' idempotent producer serializes produce requests per broker anyway,
 * and when a request fails it gives its sequence numbers back, so a second concurrent batch could be
 * written before the first one's retry, reordering a key's notifications. One batch in flight keeps
 * per-key order strict across retries; parsing the next batch still overlaps the network round trip.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createTopics } from './admin.js';
import { classifyKafkaError, KafkaRequestError, KafkaUnavailableError } from './errors.js';
import { createKafka, createProducer, type KafkaClientOptions } from './kafka.js';
import type { Admin, Message, Producer } from './types.js';

/** Options for {@link openNotificationProducer}. */
export interface NotificationProducerOptions {
  /** Bootstrap brokers (`host:port` list or the comma-separated KAFKA_BROKERS form). */
  brokers: readonly string[] | string;
  clientId: string;
  /** SASL and TLS (see {@link kafkaClientOptions}); absent: plaintext without authentication. */
  sasl?: KafkaClientOptions['sasl'];
  ssl?: KafkaClientOptions['ssl'];
  topic: string;
  /** Create the topic when it does not exist (with `partitions` / `replicationFactor`); else fail. */
  createTopic: boolean;
  partitions: number;
  replicationFactor: number;
  /** Most messages per produce request (a request is also cut at {@link MAX_BATCH_BYTES}). */
  batchSize: number;
  /** Bound on connecting, creating the topic, and each batch's acknowledgement, in milliseconds. */
  timeoutMs: number;
}

/** An open producer; see the module header. Not safe for concurrent `add` calls (await what it returns). */
export interface NotificationProducer {
  /** Whether opening it created the topic. */
  readonly createdTopic: boolean;
  /** Partition count of the topic. */
  readonly partitions: number;
  /** Notifications the broker has acknowledged so far. */
  readonly acknowledged: number;
  /**
   * Queues one notification. Returns a promise only when the caller must wait (a batch was handed over
   * and the previous one is still in flight); returns undefined otherwise, so the hot path allocates
   * no promise per message.
   * @throws KafkaUnavailableError / KafkaRequestError (through the promise) when an earlier batch failed.
   */
  add(key: string | null, value: string): Promise<void> | undefined;
  /** Sends what is queued and waits for every acknowledgement. */
  flush(): Promise<void>;
  /** Disconnects (after `flush`, or to abandon what is queued). Never throws. */
  close(): Promise<void>;
}

/** Rejects with `onTimeout()` when `promise` has not settled within `ms`. */
async function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  const controller = new AbortController();
  const timer = sleep(ms, undefined, { signal: controller.signal }).then(
    () => Promise.reject(onTimeout()),
    () => new Promise<never>(() => undefined),
  );
  try {
    return await Promise.race([promise, timer]);
  } finally {
    controller.abort();
  }
}

const INITIAL_RETRY_MS = 300;
const MAX_RETRY_MS = 3000;

/**
 * How many kafkajs retries (backoff doubling from {@link INITIAL_RETRY_MS} up to {@link MAX_RETRY_MS})
 * fit in `budgetMs`; at least 1, which kafkajs requires of an idempotent producer.
 */
export function retriesWithin(budgetMs: number): number {
  let retries = 0;
  let spent = 0;
  let next = INITIAL_RETRY_MS;
  while (spent + next <= budgetMs) {
    spent += next;
    retries++;
    next = Math.min(next * 2, MAX_RETRY_MS);
  }
  return Math.max(1, retries);
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10}s`;
}

/**
 * Connects, makes sure the topic exists (creating it when allowed), and returns a producer.
 * @throws KafkaUnavailableError when the cluster does not answer within `timeoutMs`; KafkaRequestError
 *   when it refuses (e.g. the topic is missing and `createTopic` is false).
 */
export async function openNotificationProducer(
  options: NotificationProducerOptions,
): Promise<NotificationProducer> {
  const brokersText = typeof options.brokers === 'string' ? options.brokers : options.brokers.join(',');
  const timeoutMs = options.timeoutMs;
  const kafka = createKafka({
    brokers: options.brokers,
    clientId: options.clientId,
    ...(options.sasl === undefined ? {} : { sasl: options.sasl }),
    ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
    connectionTimeoutMs: Math.min(3000, timeoutMs),
    requestTimeoutMs: Math.min(30000, timeoutMs),
    // kafkajs keeps retrying after a disconnect; a retry budget that fits in the timeout means an outage
    // ends the process soon after the deadline below has reported it, rather than seconds or never later.
    retry: {
      retries: retriesWithin(timeoutMs),
      initialRetryTime: INITIAL_RETRY_MS,
      maxRetryTime: MAX_RETRY_MS,
    },
  });
  const admin = kafka.admin();
  const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  const unreachable = () =>
    new KafkaUnavailableError(`Kafka at ${brokersText} did not answer within ${seconds(timeoutMs)}`);
  try {
    const { created, partitions } = await withDeadline(
      (async () => {
        await admin.connect();
        const created = await ensureTopic(admin, options);
        const metadata = await admin.fetchTopicMetadata({ topics: [options.topic] });
        await producer.connect();
        return { created, partitions: metadata.topics[0]?.partitions.length ?? 0 };
      })(),
      timeoutMs,
      unreachable,
    );
    await admin.disconnect().catch(() => undefined);
    return new BatchingProducer(producer, options, created, partitions);
  } catch (error) {
    await Promise.all([admin.disconnect(), producer.disconnect()].map((p) => p.catch(() => undefined)));
    const classified = classifyKafkaError(error, `connecting to Kafka at ${brokersText}`);
    throw classified;
  }
}

async function ensureTopic(admin: Admin, options: NotificationProducerOptions): Promise<boolean> {
  if (!options.createTopic) {
    const existing = await admin.listTopics();
    if (!existing.includes(options.topic)) {
      throw new KafkaRequestError(
        `topic ${options.topic} does not exist (create it, or leave out --no-create-topic)`,
      );
    }
    return false;
  }
  const created = await createTopics(
    admin,
    [
      {
        topic: options.topic,
        numPartitions: options.partitions,
        replicationFactor: options.replicationFactor,
      },
    ],
    { timeoutMs: options.timeoutMs },
  );
  return created.includes(options.topic);
}

/**
 * A batch is handed over at this many bytes of keys and values even when it has fewer messages than
 * `batchSize`: a broker refuses a partition's record batch above message.max.bytes (1 MiB by default),
 * and with one partition a whole request is one record batch (500 notifications of 2.6 KB would be 1.3 MB).
 */
export const MAX_BATCH_BYTES = 768 * 1024;

class BatchingProducer implements NotificationProducer {
  private buffer: Message[] = [];
  private bufferBytes = 0;
  private inFlight: Promise<void> | null = null;
  private failure: unknown = null;
  private ackedCount = 0;

  constructor(
    private readonly producer: Producer,
    private readonly options: NotificationProducerOptions,
    readonly createdTopic: boolean,
    readonly partitions: number,
  ) {}

  get acknowledged(): number {
    return this.ackedCount;
  }

  add(key: string | null, value: string): Promise<void> | undefined {
    // Encoded here rather than by kafkajs (which would do the same) so the batch's size is known exactly.
    const bytes = Buffer.from(value, 'utf8');
    this.buffer.push({ key, value: bytes });
    this.bufferBytes += bytes.length + (key === null ? 0 : key.length);
    if (this.buffer.length < this.options.batchSize && this.bufferBytes < MAX_BATCH_BYTES) return undefined;
    return this.handOver();
  }

  // Waits for the batch in flight (backpressure), then puts the full buffer on the wire.
  private async handOver(): Promise<void> {
    if (this.inFlight !== null) await this.inFlight;
    this.throwIfFailed();
    const batch = this.buffer;
    this.buffer = [];
    this.bufferBytes = 0;
    this.inFlight = this.send(batch);
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }

  // Never rejects: a failure is kept and thrown by the next add/flush, so no rejection goes unhandled.
  private async send(messages: Message[]): Promise<void> {
    const { topic, timeoutMs } = this.options;
    try {
      await withDeadline(
        this.producer.send({ topic, messages, acks: -1 }),
        timeoutMs,
        () =>
          new KafkaUnavailableError(
            `Kafka did not acknowledge a batch of ${messages.length} notifications within ${seconds(timeoutMs)}`,
          ),
      );
      this.ackedCount += messages.length;
    } catch (error) {
      this.failure = classifyKafkaError(error, `producing to topic ${topic}`);
    }
  }

  async flush(): Promise<void> {
    if (this.inFlight !== null) await this.inFlight;
    this.throwIfFailed();
    if (this.buffer.length > 0) {
      const batch = this.buffer;
      this.buffer = [];
      this.bufferBytes = 0;
      this.inFlight = this.send(batch);
      await this.inFlight;
      this.throwIfFailed();
    }
  }

  async close(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
  }
}
