/**
 * The CLI commands that write to the internal topics use the trigger workers' record format
 * (docs/avro.md): with `schema_registry.url` set, `winchester produce --advance-clock` writes its ticks
 * and `winchester streams retry` its batches as Confluent-framed Avro under the same subjects and ids
 * as the workers; a registry that cannot be reached ends either command with one line and exit 1 before
 * anything is sent or changed. Real Kafka and PostgreSQL; the registry is SCHEMA_REGISTRY_URL when set,
 * else the in-test stand-in (test/helpers/avro-registry.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type DatabasePool, sql } from '../../../src/db/pool.js';
import { batchIdOf, encodeBatch, MAX_INLINE_BATCH_BYTES } from '../../../src/kafka/records.js';
import { connectAvro } from '../../../src/kafka/schema-registry.js';
import type { Kafka } from '../../../src/kafka/types.js';
import type { Event } from '../../../src/model/event.js';
import { framedSchemaId, isConfluentFramed } from '../../../src/serde/codec.js';
import { parseDatetime } from '../../../src/timex/instant.js';
import { distinguishingKey } from '../../../src/triggers/key.js';
import { testSchemaRegistry } from '../../helpers/avro-registry.js';
import { runCli } from '../../helpers/cli.js';
import {
  INTEGRATION_TIMEOUT_MS,
  kafkaBrokers,
  type TestScope,
  uniqueName,
} from '../../helpers/integration.js';
import { testAdmin, testKafka, testTopic } from '../../helpers/kafka.js';
import { freePort } from '../../helpers/process.js';
import { migratedDatabase } from '../db/schema.js';

const opts = { timeout: 2 * INTEGRATION_TIMEOUT_MS };
const CONFIG = fileURLToPath(new URL('../../../etc/winchester.yaml', import.meta.url));
const H = 3_600_000_000;

/** The first `count` records of `topic` (key and raw value), from the beginning. */
async function readRaw(
  t: TestScope,
  kafka: Kafka,
  topic: string,
  count: number,
): Promise<{ key: string | null; value: Buffer; partition: number }[]> {
  const out: { key: string | null; value: Buffer; partition: number }[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName('it-avro-cli-read'), maxWaitTimeInMs: 100 });
  t.after(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      out.push({ key: message.key?.toString() ?? null, value: message.value ?? Buffer.alloc(0), partition });
    },
  });
  const deadline = Date.now() + 30_000;
  while (out.length < count && Date.now() < deadline) await sleep(100);
  await consumer.stop();
  assert.equal(out.length, count, `${count} records on ${topic}`);
  return out;
}

test(
  "produce --advance-clock with a schema registry: Avro ticks under the workers' subject; registry away: exit 1, nothing sent",
  opts,
  async (t) => {
    const registry = await testSchemaRegistry(t);
    t.diagnostic(`schema registry: ${registry.kind} ${registry.url}`);
    const kafka = testKafka(uniqueName('it-avro-cli'));
    const admin = await testAdmin(t, kafka);
    const streamEvents = await testTopic(t, admin, 'it-avro-cli-se', { numPartitions: 3 });
    const batches = uniqueName('it-avro-cli-b');
    const notifications = uniqueName('it-avro-cli-n');
    const env = {
      KAFKA_BROKERS: kafkaBrokers(),
      WINCHESTER_KAFKA_CLIENT_ID: uniqueName('it-avro-cli'),
      WINCHESTER_KAFKA_TOPICS_NOTIFICATIONS: notifications,
      WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS: streamEvents,
      WINCHESTER_KAFKA_TOPICS_BATCHES: batches,
      WINCHESTER_SCHEMA_REGISTRY_URL: registry.url,
    };
    // What a trigger worker with this configuration registers (the registry answers with the same ids).
    const { codec } = await connectAvro(
      { url: registry.url },
      { streamEventsTopic: streamEvents, batchesTopic: batches },
    );

    const r = await runCli(
      ['produce', '-c', CONFIG, '--advance-clock', '2015-02-02T00:00:00Z', '--no-wait'],
      {
        env,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `advanced the event-time clock of 3 partitions of ${streamEvents} to 2015-02-02T00:00:00\\.000000Z ` +
          `\\(Avro, schema id ${codec.schemaIds.streamRecord}\\)`,
      ),
    );
    const ticks = await readRaw(t, kafka, streamEvents, 3);
    assert.deepEqual(ticks.map((m) => m.partition).sort(), [0, 1, 2]);
    for (const m of ticks) {
      assert.ok(isConfluentFramed(m.value), 'a tick is Confluent-framed Avro');
      assert.equal(framedSchemaId(m.value), codec.schemaIds.streamRecord);
      assert.deepEqual(codec.decodeStreamRecord(m.value), {
        type: 'tick',
        time: parseDatetime('2015-02-02T00:00:00Z'),
      });
    }

    // Registry away: one line naming it (no credentials), exit 1, and INPUT was not sent (the topic the
    // command would have created does not exist).
    const port = await freePort();
    const down = await runCli(['produce', '-c', CONFIG, '--advance-clock', '2015-02-03T00:00:00Z', '-'], {
      env: { ...env, WINCHESTER_SCHEMA_REGISTRY_URL: `http://u:secret@127.0.0.1:${port}` },
      stdin: '{"event_type":"compute.instance.exists","message_id":"m1","timestamp":"2015-02-01 00:00:00"}\n',
    });
    assert.equal(down.code, 1, down.stderr);
    assert.equal(down.stderrLines().length, 1, down.stderr);
    assert.match(
      down.stderr,
      new RegExp(
        `^winchester: registering subject ${streamEvents}-value: cannot use the schema registry at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`,
      ),
    );
    assert.doesNotMatch(down.stderr, /secret/);
    assert.ok(!(await admin.listTopics()).includes(notifications), 'nothing was sent');
  },
);

const ev = (id: string, at: string): Event => ({
  message_id: id,
  event_type: 'compute.instance.exists',
  timestamp: parseDatetime(at),
  traits: { ratio: { type: 'float', value: 1 }, memory_mb: { type: 'int', value: 512 } },
});

let seq = 0;

/** A stream in error with its fire batch in the outbox (published), as a trigger worker leaves it. */
async function failedStream(pool: DatabasePool, id: string, padding = 0, corrupt = false): Promise<string> {
  const first = parseDatetime('2014-08-01T01:00:00Z');
  const events = [ev(`${id}-m1`, '2014-08-01T01:00:00Z'), ev(`${id}-m2`, '2014-08-01T02:00:00Z')];
  const distinguishing = { instance_id: { type: 'text' as const, value: `${id}${'x'.repeat(padding)}` } };
  seq += 1;
  await pool.query(sql.unsafe`
    INSERT INTO streams (id, topic, partition, seq, trigger, key, distinguishing, state, first_event, last_event,
      expire_at, fire_at, closed_at, version, criterion_counts)
    VALUES (${id}, 'winchester.stream-events', 0, ${seq}, 'usage', ${distinguishingKey(distinguishing)},
      ${JSON.stringify(distinguishing)}::jsonb, 'error'::stream_state, ${first}, ${first + H},
      ${first + 25 * H}, ${null}, ${null}, 2, '{1,0}')`);
  const payload = corrupt
    ? '{"not":"a batch record"}'
    : encodeBatch({
        batchId: batchIdOf(id, 'fire'),
        streamId: id,
        trigger: 'usage',
        kind: 'fire',
        pipeline: 'usage_pipeline',
        distinguishing,
        first,
        last: first + H,
        events,
      });
  await pool.query(sql.unsafe`
    INSERT INTO outbox (batch_id, stream_id, kind, message_key, payload, published_at)
    VALUES (${batchIdOf(id, 'fire')}, ${id}, 'fire', ${id}, ${payload}, now())`);
  return payload;
}

async function stateOf(pool: DatabasePool, id: string): Promise<string> {
  return String(await pool.oneFirst(sql.unsafe`SELECT state::text FROM streams WHERE id = ${id}`));
}

test(
  "streams retry with a schema registry: Avro batches (inline and by reference) under the workers' subject; registry away: exit 1, nothing changed",
  opts,
  async (t) => {
    const registry = await testSchemaRegistry(t);
    t.diagnostic(`schema registry: ${registry.kind} ${registry.url}`);
    const db = await migratedDatabase(t, 'it_avro_retry');
    const kafka = testKafka(uniqueName('it-avro-retry'));
    const admin = await testAdmin(t, kafka);
    const topic = await testTopic(t, admin, 'it-avro-retry-b', { numPartitions: 2 });
    const streamEvents = uniqueName('it-avro-retry-se');
    const env = {
      DATABASE_URL: db.url,
      KAFKA_BROKERS: kafkaBrokers(),
      WINCHESTER_KAFKA_TOPICS_BATCHES: topic,
      WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS: streamEvents,
      WINCHESTER_SCHEMA_REGISTRY_URL: registry.url,
    };
    const small = await failedStream(db.pool, 'e1');
    const big = await failedStream(db.pool, 'big', MAX_INLINE_BATCH_BYTES);
    await failedStream(db.pool, 'bad', 0, true);

    // Registry away: nothing moves, one line, exit 1.
    const port = await freePort();
    const down = await runCli(['streams', 'retry', 'e1', 'big', '--timeout', '5', '-c', CONFIG], {
      env: { ...env, WINCHESTER_SCHEMA_REGISTRY_URL: `http://127.0.0.1:${port}` },
    });
    assert.equal(down.code, 1, down.stderr);
    assert.equal(down.stderrLines().length, 1, down.stderr);
    assert.match(down.stderr, /^winchester: registering subject .*: cannot use the schema registry at /);
    assert.equal(down.stdout, '');
    assert.equal(await stateOf(db.pool, 'e1'), 'error');
    assert.equal(await stateOf(db.pool, 'big'), 'error');

    // An outbox payload that is not a batch cannot be re-encoded as Avro: that stream stays in error,
    // reported (exit 1); the others go on.
    const r = await runCli(['streams', 'retry', 'e1', 'bad', 'big', '-c', CONFIG], { env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(r.stderr, '');
    const out = r.stdoutLines();
    assert.deepEqual(out.length, 4, r.stdout);
    assert.match(
      out[0] as string,
      new RegExp(`^retried +e1 +error → retry_fire \\(version 3\\); batch e1:fire produced to ${topic}$`),
    );
    assert.match(out[1] as string, /^skipped +bad +its outbox batch bad:fire cannot be produced: .+/);
    assert.match(
      out[2] as string,
      new RegExp(`^retried +big +error → retry_fire \\(version 3\\); batch big:fire produced to ${topic}$`),
    );
    assert.equal(out[3], '2 retried, 0 republished, 1 skipped');
    assert.equal(await stateOf(db.pool, 'bad'), 'error');

    const { codec } = await connectAvro(
      { url: registry.url },
      { streamEventsTopic: streamEvents, batchesTopic: topic },
    );
    const got = new Map((await readRaw(t, kafka, topic, 2)).map((m) => [m.key, m.value]));
    for (const value of got.values()) {
      assert.ok(isConfluentFramed(value), 'a batch is Confluent-framed Avro');
      assert.equal(framedSchemaId(value), codec.schemaIds.batchMessage);
    }
    // Decoded, the inline batch re-encodes to the outbox payload byte for byte; the big one is a reference.
    const inline = codec.decodeBatchMessage(got.get('e1') as Buffer);
    assert.equal(inline.type, 'inline');
    assert.equal(inline.type === 'inline' ? encodeBatch(inline.batch) : '', small);
    assert.deepEqual(codec.decodeBatchMessage(got.get('big') as Buffer), {
      type: 'reference',
      reference: { batchId: 'big:fire', streamId: 'big', kind: 'fire', bytes: Buffer.byteLength(big) },
    });
  },
);
