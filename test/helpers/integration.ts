/**
 * What every integration test needs first: the addresses of the real services, and names no other test
 * (or earlier run) uses. A missing address fails the test with instructions instead of silently skipping,
 * so CI cannot pass without having exercised Kafka and PostgreSQL.
 */
import { randomBytes } from 'node:crypto';

/**
 * The part of node:test's per-test context the helpers use to register clean-up (@types/node 20.9 does not
 * export the `TestContext` class itself; every test's `t` satisfies this).
 */
export interface TestScope {
  after(fn: () => unknown): void;
}

/** Per-test ceiling for integration tests: generous for a busy 2-core machine, short enough never to hang CI. */
export const INTEGRATION_TIMEOUT_MS = 60_000;

function requireEnv(name: 'KAFKA_BROKERS' | 'DATABASE_URL'): string {
  const value = process.env[name];
  if (value === undefined || value.trim() === '') {
    throw new Error(
      `${name} is not set: integration tests need the real services. Start them with \`npm run infra:up\` ` +
        '(it writes .infra/env, which `npm test` and `npm run test:integration` read), or set ' +
        `${name} to a service you run yourself.`,
    );
  }
  return value.trim();
}

/** The bootstrap brokers of the Kafka cluster under test (`KAFKA_BROKERS`). */
export function kafkaBrokers(): string {
  return requireEnv('KAFKA_BROKERS');
}

/** A connection URL whose role may CREATE DATABASE (`DATABASE_URL`). */
export function databaseUrl(): string {
  return requireEnv('DATABASE_URL');
}

/**
 * A name unique across tests, processes and runs: `prefix-<time>-<random>`. With `separator: '_'` the
 * result is a valid unquoted SQL identifier (lower case, at most 63 characters for short prefixes).
 */
export function uniqueName(prefix: string, separator: '-' | '_' = '-'): string {
  return [prefix, Date.now().toString(36), randomBytes(5).toString('hex')].join(separator);
}

/** The four topics a worker reads and writes (kafka.topics.*). */
export interface WorkerTopicNames {
  readonly notifications: string;
  readonly streamEvents: string;
  readonly batches: string;
  readonly deadLetter: string;
}

/**
 * The environment of a `winchester` worker process under test: the test's database, the cluster under
 * test, a Kafka client id of its own (its consumer groups), the test's topics and their partition count.
 * Add the settings the test needs on top.
 */
export function workerEnv(o: {
  readonly databaseUrl: string;
  readonly clientId: string;
  readonly topics: WorkerTopicNames;
  readonly partitions: number;
}): NodeJS.ProcessEnv {
  return {
    DATABASE_URL: o.databaseUrl,
    KAFKA_BROKERS: kafkaBrokers(),
    WINCHESTER_KAFKA_CLIENT_ID: o.clientId,
    WINCHESTER_KAFKA_TOPICS_NOTIFICATIONS: o.topics.notifications,
    WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS: o.topics.streamEvents,
    WINCHESTER_KAFKA_TOPICS_BATCHES: o.topics.batches,
    WINCHESTER_KAFKA_TOPICS_DEAD_LETTER: o.topics.deadLetter,
    WINCHESTER_KAFKA_PARTITIONS: String(o.partitions),
  };
}
