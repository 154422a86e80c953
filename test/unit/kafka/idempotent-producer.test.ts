/**
 * The workers' idempotent producer: kafkajs' unlimited retries (no "Limiting retries for the idempotent
 * producer may invalidate EoS guarantees" warning, checked on real kafkajs producers, which warn at
 * construction), sends one at a time, and a bounded wait for each caller.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KafkaUnavailableError } from '../../../src/kafka/errors.js';
import {
  createIdempotentProducer,
  createKafka,
  createProducer,
  type KafkaLogRecord,
  retryBudgetMs,
} from '../../../src/kafka/kafka.js';
import type { Kafka, Producer } from '../../../src/kafka/types.js';

const EOS_WARNING = /Limiting retries for the idempotent producer/;

/** A client with a worker's retry setting whose log lines are kept (no broker is contacted). */
function client(retries: number): { kafka: Kafka; records: KafkaLogRecord[] } {
  const records: KafkaLogRecord[] = [];
  const kafka = createKafka({
    brokers: '127.0.0.1:1',
    clientId: 'unit',
    retry: { retries, initialRetryTime: 300, maxRetryTime: 10_000 },
    logLevel: 'warn',
    logSink: (r) => records.push(r),
  });
  return { kafka, records };
}

describe('createIdempotentProducer', () => {
  test('kafkajs warns when a client retry limit reaches an idempotent producer (the old wiring)', () => {
    const { kafka, records } = client(10);
    createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
    assert.ok(
      records.some((r) => EOS_WARNING.test(r.message)),
      `the warning: ${JSON.stringify(records)}`,
    );
  });

  test('with kafka.retries on the client, no EoS warning: the producer retries without limit', () => {
    const { kafka, records } = client(10);
    createIdempotentProducer(kafka, { retries: 10 });
    assert.deepEqual(
      records.filter((r) => EOS_WARNING.test(r.message)),
      [],
    );
    assert.ok(
      records.every((r) => r.level !== 'warn'),
      `no other warning either: ${JSON.stringify(records)}`,
    );
  });
});

describe('retryBudgetMs', () => {
  test('adds up the backoff, doubling from 0.3 s up to 10 s', () => {
    assert.equal(retryBudgetMs(0), 0);
    assert.equal(retryBudgetMs(3), 300 + 600 + 1200);
    assert.equal(retryBudgetMs(10), 300 + 600 + 1200 + 2400 + 4800 + 9600 + 4 * 10_000);
  });
});

interface Pending {
  readonly label: string;
  resolve(): void;
  reject(error: Error): void;
}

/** A producer whose sends the test settles by hand; the client hands it out once. */
function scripted(): { kafka: Kafka; started: Pending[]; config: unknown[] } {
  const started: Pending[] = [];
  const config: unknown[] = [];
  const send = (label: string) =>
    new Promise<never[]>((resolve, reject) => {
      started.push({ label, resolve: () => resolve([]), reject });
    });
  const producer = {
    connect: async () => undefined,
    disconnect: async () => undefined,
    send: (record: { topic: string }) => send(record.topic),
    sendBatch: (batch: { topicMessages: { topic: string }[] }) => send(batch.topicMessages[0]?.topic ?? ''),
  } as unknown as Producer;
  const kafka = {
    producer: (c: unknown) => {
      config.push(c);
      return producer;
    },
  } as unknown as Kafka;
  return { kafka, started, config };
}

const batch = (topic: string) => ({ topicMessages: [{ topic, messages: [{ value: 'v' }] }] });
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('idempotent sends', () => {
  test('asks kafkajs for an idempotent producer, one request in flight, unlimited retries', () => {
    const s = scripted();
    createIdempotentProducer(s.kafka, { retries: 10 });
    const c = s.config[0] as { idempotent: boolean; maxInFlightRequests: number; retry: { retries: number } };
    assert.equal(c.idempotent, true);
    assert.equal(c.maxInFlightRequests, 1);
    assert.equal(c.retry.retries, Number.MAX_SAFE_INTEGER);
  });

  test('run one at a time, in order, each answered with its own outcome', async () => {
    const s = scripted();
    const producer = createIdempotentProducer(s.kafka, { retries: 1, sendTimeoutMs: 10_000 });
    const a = producer.sendBatch(batch('a'));
    const b = producer.send({ topic: 'b', messages: [] });
    const c = producer.sendBatch(batch('c'));
    await tick();
    assert.deepEqual(
      s.started.map((p) => p.label),
      ['a'],
      'b waits for a',
    );
    s.started[0]?.reject(new Error('refused'));
    await assert.rejects(a, /refused/);
    await tick();
    assert.deepEqual(
      s.started.map((p) => p.label),
      ['a', 'b'],
    );
    s.started[1]?.resolve();
    assert.deepEqual(await b, []);
    await tick();
    s.started[2]?.resolve();
    assert.deepEqual(await c, []);
  });

  test('a caller waits at most sendTimeoutMs: a retriable outage error, the send retrying on; the next waits for it', async () => {
    const s = scripted();
    const producer = createIdempotentProducer(s.kafka, { retries: 1, sendTimeoutMs: 30 });
    const a = producer.sendBatch(batch('a'));
    const b = producer.sendBatch(batch('b'));
    // b was never started (a still holds the producer): dropped when its caller stops waiting.
    const bRejected = assert.rejects(
      b,
      /could not be sent within 0\.03 s: an earlier send is still retrying/,
    );
    await assert.rejects(a, (error: unknown) => {
      assert.ok(error instanceof KafkaUnavailableError, String(error));
      assert.equal(error.retriable, true);
      assert.match(
        error.message,
        /did not acknowledge the records within 0\.03 s \(the producer keeps retrying/,
      );
      return true;
    });
    await bRejected;
    const c = producer.sendBatch(batch('c'));
    await tick();
    assert.deepEqual(
      s.started.map((p) => p.label),
      ['a'],
      'c waits for the abandoned a',
    );
    s.started[0]?.resolve(); // the broker is back: a lands
    await tick();
    await tick();
    assert.deepEqual(
      s.started.map((p) => p.label),
      ['a', 'c'],
      'b was dropped, c runs',
    );
    s.started[1]?.resolve();
    assert.deepEqual(await c, []);
  });
});
