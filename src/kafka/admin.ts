/**
 * Cluster administration the project needs: creating topics (idempotently) and waiting until a cluster
 * answers real requests. Used by the workers at start-up, by `scripts/infra.sh` and by the tests.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, ITopicConfig, Kafka } from 'kafkajs';
import {
  classifyKafkaError,
  describeKafkaError,
  isRetriableKafkaError,
  KafkaUnavailableError,
} from './errors.js';
import { createKafka, type KafkaClientOptions } from './kafka.js';

/** A topic to create. */
export interface TopicSpec {
  topic: string;
  /** Default 1. */
  numPartitions?: number;
  /** Default 1 (a single-broker development cluster); production passes the cluster's factor. */
  replicationFactor?: number;
  /** Topic-level configs, e.g. `{ 'cleanup.policy': 'compact' }`. */
  configs?: Readonly<Record<string, string>>;
}

/**
 * Creates the topics that do not exist yet and waits until every partition has a leader, so the caller
 * can produce to them immediately. Topics that already exist are left as they are.
 * @returns the names of the topics this call created.
 * @throws KafkaUnavailableError or KafkaRequestError (see `classifyKafkaError`).
 */
export async function createTopics(
  admin: Admin,
  topics: readonly TopicSpec[],
  options: { timeoutMs?: number } = {},
): Promise<string[]> {
  const timeoutMs = options.timeoutMs ?? 30000;
  const deadline = Date.now() + timeoutMs;
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.topic));
    if (missing.length > 0) {
      const specs: ITopicConfig[] = missing.map((t) => ({
        topic: t.topic,
        numPartitions: t.numPartitions ?? 1,
        replicationFactor: t.replicationFactor ?? 1,
        configEntries: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
      }));
      // Another process may create the same topic between listTopics and here; kafkajs then resolves false
      // rather than throwing, which is the outcome we want. kafkajs' own waitForLeaders gives up on
      // UNKNOWN_TOPIC_OR_PARTITION, which a KRaft broker answers until the new topic reaches its metadata
      // cache, so we wait ourselves.
      await admin.createTopics({ topics: specs, waitForLeaders: false, timeout: timeoutMs });
    }
    await waitForLeaders(
      admin,
      topics.map((t) => t.topic),
      deadline,
    );
    return missing.map((t) => t.topic);
  } catch (error) {
    throw classifyKafkaError(error, `creating topics ${topics.map((t) => t.topic).join(', ')}`);
  }
}

// Polls until every partition of every topic has a leader that serves requests (so produce and
// offset look-ups succeed at once). Metadata can name a leader a moment before that broker has taken
// the partition over (a ListOffsets then answers NOT_LEADER_FOR_PARTITION), so offsets are asked too.
async function waitForLeaders(admin: Admin, topics: readonly string[], deadline: number): Promise<void> {
  let lastProblem: unknown;
  for (;;) {
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [...topics] });
      const leaderless = metadata.topics.filter(
        (t) => t.partitions.length === 0 || t.partitions.some((p) => p.leader < 0),
      );
      if (leaderless.length === 0) {
        for (const topic of topics) await admin.fetchTopicOffsets(topic);
        return;
      }
      lastProblem = new Error(`no leader yet for ${leaderless.map((t) => t.name).join(', ')}`);
    } catch (error) {
      // Anything kafkajs deems permanent (authorization, invalid name…) will not get better by waiting.
      if (!isRetriableKafkaError(error)) throw error;
      lastProblem = error;
    }
    if (Date.now() + 100 > deadline) throw lastProblem;
    await sleep(100);
  }
}

/** What a reachable cluster reported about itself. */
export interface ClusterInfo {
  clusterId: string;
  controller: number | null;
  brokers: { nodeId: number; host: string; port: number }[];
}

/** Options for {@link waitForKafka}. */
export interface WaitForKafkaOptions {
  brokers: KafkaClientOptions['brokers'];
  /** Default `winchester-probe`. */
  clientId?: string;
  /** Give up after this many milliseconds. Default 60000. */
  timeoutMs?: number;
  /** Pause between attempts in milliseconds. Default 250. */
  intervalMs?: number;
  /**
   * Checked before every attempt; returning a reason stops the wait at once with that reason
   * (e.g. "the broker process exited"), so a crashed broker does not cost the whole timeout.
   */
  abortReason?: () => string | undefined;
}

/**
 * Waits until the cluster answers a real DescribeCluster request (not merely accepts TCP connections),
 * which for a KRaft broker means it has joined the quorum and serves metadata.
 * @throws KafkaUnavailableError carrying the last error when the time runs out or `abortReason` fires.
 */
export async function waitForKafka(options: WaitForKafkaOptions): Promise<ClusterInfo> {
  const timeoutMs = options.timeoutMs ?? 60000;
  const intervalMs = options.intervalMs ?? 250;
  const deadline = Date.now() + timeoutMs;
  const kafka = createKafka({
    brokers: options.brokers,
    clientId: options.clientId ?? 'winchester-probe',
    connectionTimeoutMs: Math.min(3000, timeoutMs),
    requestTimeoutMs: Math.min(10000, Math.max(1000, timeoutMs)),
    // One attempt per loop iteration: the loop owns the schedule and the deadline.
    retry: { retries: 0 },
  });
  let lastError: unknown;
  for (;;) {
    const reason = options.abortReason?.();
    if (reason !== undefined) {
      throw new KafkaUnavailableError(
        `Kafka at ${String(options.brokers)} will not become ready: ${reason}`,
        {
          cause: lastError,
        },
      );
    }
    const admin = kafka.admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      if (cluster.brokers.length > 0) {
        return {
          clusterId: cluster.clusterId,
          controller: cluster.controller,
          brokers: cluster.brokers.map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port })),
        };
      }
      lastError = new Error('the cluster reported no brokers');
    } catch (error) {
      lastError = error;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    if (Date.now() + intervalMs > deadline) {
      const why = lastError === undefined ? 'no answer' : describeKafkaError(lastError);
      throw new KafkaUnavailableError(
        `Kafka at ${String(options.brokers)} not ready after ${Math.round(timeoutMs / 1000)}s: ${why}`,
        { cause: lastError },
      );
    }
    await sleep(intervalMs);
  }
}

/**
 * What a worker does at start: creates whichever of `topics` are missing, each with the same partition
 * count and replication factor (kafka.partitions, kafka.replication_factor), and returns the partition
 * count of every topic (existing topics keep theirs).
 */
export async function ensureTopics(
  kafka: Pick<Kafka, 'admin'>,
  topics: readonly string[],
  options: { partitions: number; replicationFactor: number; onCreated?: (created: string[]) => void },
): Promise<Map<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const unique = [...new Set(topics)];
    const created = await createTopics(
      admin,
      unique.map((topic) => ({
        topic,
        numPartitions: options.partitions,
        replicationFactor: options.replicationFactor,
      })),
    );
    if (created.length > 0) options.onCreated?.(created);
    const metadata = await admin.fetchTopicMetadata({ topics: unique });
    return new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
