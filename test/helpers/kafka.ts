/**
 * Kafka helpers for integration tests: clients configured to fail fast when the broker is absent,
 * throw-away topics that are deleted afterwards, and bounded waits for consumed messages.
 */
import { createTopics, type TopicSpec } from '../../src/kafka/admin.js';
import { createKafka, type KafkaLogLevel } from '../../src/kafka/kafka.js';
import type { Admin, Consumer, EachMessagePayload, Kafka } from '../../src/kafka/types.js';
import { kafkaBrokers, type TestScope, uniqueName } from './integration.js';

/**
 * A kafkajs client for the cluster under test. The retry budget (about 15 s) outlasts a fresh broker's
 * first-use hiccups (NOT_COORDINATOR while __consumer_offsets and __transaction_state are being created)
 * yet fails a test well within its timeout when no broker answers. Set KAFKA_TEST_LOG_LEVEL=info to see
 * kafkajs' own logs while debugging.
 */
export function testKafka(clientId: string): Kafka {
  return createKafka({
    brokers: kafkaBrokers(),
    clientId,
    logLevel: (process.env.KAFKA_TEST_LOG_LEVEL as KafkaLogLevel | undefined) ?? 'nothing',
    connectionTimeoutMs: 3000,
    requestTimeoutMs: 15000,
    retry: { retries: 8, initialRetryTime: 300, maxRetryTime: 3000 },
  });
}

// Topics to delete before an admin from testAdmin disconnects. node:test runs after-hooks in the
// order they were registered, so a separate deleteTopics hook would run after the disconnect,
// reconnect the admin and leave a socket that keeps the test process alive.
const pendingTopics = new WeakMap<Admin, string[]>();

/** Connects an admin client; when the test ends it deletes the topics made with it, then disconnects. */
export async function testAdmin(t: TestScope, kafka: Kafka): Promise<Admin> {
  const admin = kafka.admin();
  await admin.connect();
  const topics: string[] = [];
  pendingTopics.set(admin, topics);
  t.after(async () => {
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 10000 }).catch(() => undefined);
    await admin.disconnect();
  });
  return admin;
}

/**
 * Creates a topic with a unique name (`prefix-…`) and deletes it when the test ends (through the
 * admin's own clean-up when it came from {@link testAdmin}).
 * @returns the topic name.
 */
export async function testTopic(
  t: TestScope,
  admin: Admin,
  prefix: string,
  spec: Omit<TopicSpec, 'topic'> = {},
): Promise<string> {
  const topic = uniqueName(prefix);
  const created = await createTopics(admin, [{ ...spec, topic }]);
  if (!created.includes(topic)) throw new Error(`topic ${topic} already existed: names are not unique`);
  const pending = pendingTopics.get(admin);
  if (pending) pending.push(topic);
  else t.after(() => admin.deleteTopics({ topics: [topic], timeout: 10000 }).catch(() => undefined));
  return topic;
}

/** A message as the tests compare it: where it was read and its decoded key and value. */
export interface Received {
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  consumer: string;
}

/** Collects what consumers receive, and lets a test wait (with a deadline) until enough has arrived. */
export class Inbox {
  readonly messages: Received[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  /** An `eachMessage` handler recording into this inbox under the consumer's `label`. */
  handler(label: string): (payload: EachMessagePayload) => Promise<void> {
    return async ({ partition, message }) => {
      this.messages.push({
        partition,
        offset: message.offset,
        key: message.key?.toString() ?? null,
        value: message.value?.toString() ?? null,
        consumer: label,
      });
      this.waiters = this.waiters.filter((w) => {
        if (this.messages.length < w.count) return true;
        w.resolve();
        return false;
      });
    };
  }

  /** Resolves once `count` messages have arrived; rejects after `timeoutMs` saying how many did. */
  async waitFor(count: number, timeoutMs: number): Promise<Received[]> {
    if (this.messages.length < count) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.push({ count, resolve })),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(`expected ${count} messages within ${timeoutMs} ms, got ${this.messages.length}`),
              ),
            timeoutMs,
          );
        }),
      ]).finally(() => clearTimeout(timer));
    }
    return this.messages;
  }
}

/** Connects a consumer, subscribes it from the beginning, and disconnects it when the test ends. */
export async function startConsumer(
  t: TestScope,
  consumer: Consumer,
  topic: string,
  onMessage: (payload: EachMessagePayload) => Promise<void>,
): Promise<void> {
  t.after(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({ eachMessage: onMessage });
}
