import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../../src/errors.js';
import { classifyKafkaError, KafkaRequestError, KafkaUnavailableError } from '../../../src/kafka/errors.js';
import {
  createKafka,
  createLogCreator,
  type KafkaLogRecord,
  kafkaClientOptions,
  parseBrokers,
} from '../../../src/kafka/kafka.js';
import { sendOffsets } from '../../../src/kafka/transactions.js';

describe('parseBrokers', () => {
  test('splits and trims a KAFKA_BROKERS string', () => {
    assert.deepEqual(parseBrokers(' 127.0.0.1:19092, kafka-1.internal:9092 ,'), [
      '127.0.0.1:19092',
      'kafka-1.internal:9092',
    ]);
  });

  test('accepts an array', () => {
    assert.deepEqual(parseBrokers(['a:1', 'b:2']), ['a:1', 'b:2']);
  });

  test('rejects an empty list and entries without a valid port, naming each', () => {
    assert.throws(() => parseBrokers(' , '), ConfigError);
    assert.throws(
      () => parseBrokers('good:9092,nohost,bad:99999', 'KAFKA_BROKERS'),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.length === 2 &&
        /'nohost'/.test(error.message) &&
        /'bad:99999'/.test(error.message),
    );
  });
});

describe('createLogCreator', () => {
  const entry = (level: number) => ({
    namespace: 'Consumer',
    level,
    label: 'x',
    log: { timestamp: '2024-01-01T00:00:00.000Z', message: 'hello', groupId: 'g' },
  });

  test('passes entries at or above the threshold, reshaped', () => {
    const records: KafkaLogRecord[] = [];
    const log = createLogCreator('warn', (r) => records.push(r))!(2);
    log(entry(1)); // ERROR
    log(entry(2)); // WARN
    log(entry(4)); // INFO: filtered
    log(entry(5)); // DEBUG: filtered
    assert.deepEqual(
      records.map((r) => r.level),
      ['error', 'warn'],
    );
    assert.deepEqual(records[0], {
      time: '2024-01-01T00:00:00.000Z',
      level: 'error',
      namespace: 'Consumer',
      message: 'hello',
      fields: { groupId: 'g' },
    });
  });

  test("'nothing' drops everything", () => {
    const records: KafkaLogRecord[] = [];
    const log = createLogCreator('nothing', (r) => records.push(r))!(0);
    for (const level of [1, 2, 4, 5]) log(entry(level));
    assert.equal(records.length, 0);
  });
});

/** Builds an error shaped like kafkajs': a name, a retriable flag, an optional protocol type and cause. */
function kafkajsError(
  name: string,
  props: { retriable?: boolean; type?: string; cause?: unknown } = {},
): Error {
  const error = new Error(`${name} happened`, props.cause === undefined ? undefined : { cause: props.cause });
  error.name = name;
  Object.assign(error, { retriable: props.retriable ?? true, type: props.type });
  return error;
}

describe('classifyKafkaError', () => {
  test('a connection failure wrapped in NumberOfRetriesExceeded is "unavailable" and retriable', () => {
    const root = kafkajsError('KafkaJSConnectionError');
    const wrapped = kafkajsError('KafkaJSNumberOfRetriesExceeded', { retriable: false, cause: root });
    const classified = classifyKafkaError(wrapped, 'creating topics t');
    assert.ok(classified instanceof KafkaUnavailableError);
    assert.equal(classified.retriable, true);
    assert.equal(classified.cause, wrapped);
    assert.match(classified.message, /^creating topics t: /);
  });

  test('a broker refusal keeps kafkajs’ retriable judgement of the root cause', () => {
    const refused = classifyKafkaError(
      kafkajsError('KafkaJSProtocolError', { retriable: false, type: 'TOPIC_AUTHORIZATION_FAILED' }),
      'x',
    );
    assert.ok(refused instanceof KafkaRequestError);
    assert.equal(refused.retriable, false);
    const transient = classifyKafkaError(
      kafkajsError('KafkaJSProtocolError', { retriable: true, type: 'LEADER_NOT_AVAILABLE' }),
      'x',
    );
    assert.equal(transient.retriable, true);
  });
});

describe('sendOffsets', () => {
  const offsets = {
    consumerGroupId: 'g',
    topics: [{ topic: 't', partitions: [{ partition: 0, offset: '1' }] }],
  };

  test('retries while the group coordinator has moved or is loading, then succeeds', async () => {
    const failures = ['NOT_COORDINATOR_FOR_GROUP', 'COORDINATOR_LOAD_IN_PROGRESS'];
    let calls = 0;
    await sendOffsets(
      {
        sendOffsets: async () => {
          calls++;
          const type = failures.shift();
          if (type !== undefined) throw kafkajsError('KafkaJSProtocolError', { type });
        },
      },
      offsets,
      { initialBackoffMs: 1 },
    );
    assert.equal(calls, 3);
  });

  test('does not retry other errors', async () => {
    let calls = 0;
    await assert.rejects(
      sendOffsets(
        {
          sendOffsets: async () => {
            calls++;
            throw kafkajsError('KafkaJSProtocolError', { type: 'INVALID_PRODUCER_EPOCH', retriable: false });
          },
        },
        offsets,
        { initialBackoffMs: 1 },
      ),
      (error: unknown) => error instanceof KafkaRequestError && /group g/.test(error.message),
    );
    assert.equal(calls, 1);
  });

  test('gives up after the configured retries', async () => {
    let calls = 0;
    await assert.rejects(
      sendOffsets(
        {
          sendOffsets: async () => {
            calls++;
            throw kafkajsError('KafkaJSProtocolError', { type: 'NOT_COORDINATOR_FOR_GROUP' });
          },
        },
        offsets,
        { retries: 2, initialBackoffMs: 1 },
      ),
      KafkaRequestError,
    );
    assert.equal(calls, 3);
  });
});

describe('kafkaClientOptions', () => {
  const base = {
    brokers: ['k1:9092'],
    client_id: 'w',
    sasl: { mechanism: 'none', username: null, password: null },
    ssl: { enabled: false, ca_file: null, cert_file: null, key_file: null, reject_unauthorized: true },
  };

  test('plaintext without authentication by default', () => {
    assert.deepEqual(kafkaClientOptions(base), { brokers: ['k1:9092'], clientId: 'w' });
  });

  test('SASL and TLS settings reach the client options; a client is created with them', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'tls-'));
    await writeFile(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
    const options = kafkaClientOptions({
      ...base,
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
      ssl: { ...base.ssl, enabled: true, ca_file: join(dir, 'ca.pem'), reject_unauthorized: false },
    });
    assert.deepEqual(options.sasl, { mechanism: 'scram-sha-512', username: 'u', password: 'p' });
    assert.deepEqual(options.ssl, { rejectUnauthorized: false, caFile: join(dir, 'ca.pem') });
    assert.ok(createKafka(options), 'kafkajs accepts the SASL and TLS configuration');
  });

  test('an unreadable TLS file is a configuration error naming the setting', () => {
    const options = kafkaClientOptions({
      ...base,
      ssl: { ...base.ssl, enabled: true, ca_file: '/nonexistent/ca.pem' },
    });
    assert.throws(
      () => createKafka(options),
      (error) => error instanceof ConfigError && /kafka\.ssl\.ca_file: cannot read/.test(error.message),
    );
  });
});
