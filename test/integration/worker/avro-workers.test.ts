/**
 * Avro end to end with a schema registry (docs/avro.md): real `winchester trigger-worker` and
 * `pipeline-worker` processes on the real Kafka and PostgreSQL, `schema_registry.url` set. Notifications
 * go in as a mix of Confluent-framed Avro and JSON text; the batches come out framed Avro and, decoded,
 * equal `winchester replay` of the same input; the pipeline worker reads them and writes its new events
 * as Avro; malformed Avro is dead-lettered with its reason and counted in /metrics. The registry is
 * SCHEMA_REGISTRY_URL when set, else the in-test stand-in (test/helpers/avro-registry.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createProducer } from '../../../src/kafka/kafka.js';
import { notificationKey } from '../../../src/kafka/notification-key.js';
import { encodeBatch } from '../../../src/kafka/records.js';
import { connectAvro } from '../../../src/kafka/schema-registry.js';
import type { Kafka } from '../../../src/kafka/types.js';
import { generateNotifications } from '../../../src/notigen/index.js';
import { frame, framedSchemaId, isConfluentFramed } from '../../../src/serde/codec.js';
import { AvroNotificationWriter, testSchemaRegistry } from '../../helpers/avro-registry.js';
import { asReplayLine, assertSameBatches, replayBatches } from '../../helpers/batches.js';
import { runCli } from '../../helpers/cli.js';
import {
  INTEGRATION_TIMEOUT_MS,
  kafkaBrokers,
  type TestScope,
  uniqueName,
  workerEnv,
} from '../../helpers/integration.js';
import { testKafka } from '../../helpers/kafka.js';
import { startWinchester } from '../../helpers/process.js';
import { sampleSum, sampleValue, scrape } from '../../helpers/prometheus.js';
import { startFakeRegistry } from '../../unit/serde/fake-registry.js';
import { migratedDatabase } from '../db/schema.js';
import { workerTopics } from './topics.js';

const FLUSH_AT = '2030-01-01T00:00:00Z';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Every record of `topic` until `enough` says so (or the deadline): value and headers. */
async function readTopic(
  t: TestScope,
  kafka: Kafka,
  topic: string,
  enough: (records: { value: Buffer; headers: Record<string, string> }[]) => boolean,
  timeoutMs = 90_000,
): Promise<{ value: Buffer; headers: Record<string, string> }[]> {
  const records: { value: Buffer; headers: Record<string, string> }[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName('it-avro-read'), maxWaitTimeInMs: 100 });
  t.after(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
      records.push({ value: message.value ?? Buffer.alloc(0), headers });
    },
  });
  const deadline = Date.now() + timeoutMs;
  while (!enough(records) && Date.now() < deadline) await sleep(100);
  await consumer.stop();
  return records;
}

test('Avro with a schema registry: mixed Avro/JSON notifications in, Avro batches out equal replay; the pipeline worker reads them and writes Avro; bad Avro is dead-lettered and counted', {
  timeout: 4 * INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const registry = await testSchemaRegistry(t);
  t.diagnostic(`schema registry: ${registry.kind} ${registry.url}`);
  const lines = [...generateNotifications({ seed: 33, instances: 5, days: 2 })].map((n) => JSON.stringify(n));
  const expected = await replayBatches(lines, FLUSH_AT);
  assert.ok(expected.length >= 10, `the workload fires and expires enough streams (${expected.length})`);

  const db = await migratedDatabase(t, 'it_avro');
  const kafka = testKafka('it-avro');
  const { names: topics } = await workerTopics(t, kafka, {
    notifications: { prefix: 'it-avro-in', partitions: 1 },
    streamEvents: { prefix: 'it-avro-se', partitions: 3 },
    batches: { prefix: 'it-avro-b', partitions: 1 },
    deadLetter: { prefix: 'it-avro-dl', partitions: 1 },
  });
  const dir = mkdtempSync(join(tmpdir(), 'it-avro-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // The usage audit without notabene (which would publish to a shared topic): its verdicts are the
  // new events the pipeline worker writes back to stream-events.
  writeFileSync(
    join(dir, 'pipelines.yaml'),
    'test_fire_pipeline: [usage]\ntest_expire_pipeline: [usage]\n',
    'utf8',
  );
  // The pipeline worker routes the new events it writes with its triggers; the StackTach ones leave
  // verdicts out, so it gets one more trigger that takes them (the streams stage, not configured with
  // it, skips those records).
  writeFileSync(
    join(dir, 'triggers.yaml'),
    `${readFileSync('etc/triggers.yaml', 'utf8')}
- name: verdicts
  distinguished_by: [instance_id]
  expiration: "$last + 1d"
  fire_pipeline: test_fire_pipeline
  expire_pipeline: test_expire_pipeline
  match_criteria:
  - event_type: [compute.instance.exists.verified, compute.instance.exists.failed]
  fire_criteria:
  - event_type: compute.instance.exists.verified
`,
    'utf8',
  );
  const triggerPort = await freePort();
  const pipelinePort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...workerEnv({ databaseUrl: db.url, clientId: uniqueName('it-avro'), topics, partitions: 3 }),
    WINCHESTER_CLOCK_MODE: 'event',
    WINCHESTER_TRIGGER_WORKER_TICK_INTERVAL: '0.2',
    WINCHESTER_TRIGGER_WORKER_CHECKPOINT_INTERVAL: '0.2',
    WINCHESTER_SCHEMA_REGISTRY_URL: registry.url,
    WINCHESTER_METRICS_HOST: '127.0.0.1',
    WINCHESTER_PIPELINE_CONFIG: join(dir, 'pipelines.yaml'),
  };
  // What the workers register: the same schemas give the same ids.
  const { codec } = await connectAvro(
    { url: registry.url },
    { streamEventsTopic: topics.streamEvents, batchesTopic: topics.batches },
  );

  const trigger = startWinchester(t, ['trigger-worker', '-c', 'etc/winchester.yaml'], {
    ...env,
    WINCHESTER_METRICS_PORT: String(triggerPort),
  });
  const running = await trigger.waitForMsg('trigger worker running', 90_000);
  assert.ok(running !== undefined);
  const connected = trigger.lines.find((l) => l.msg === 'schema registry: internal topics carry Avro');
  assert.deepEqual(connected?.subjects, {
    [`${topics.streamEvents}-value`]: codec.schemaIds.streamRecord,
    [`${topics.batches}-value`]: codec.schemaIds.batchMessage,
  });

  // Every other notification as Avro (when its shape has one), the rest as JSON, in workload order
  // on one partition; after the tenth, one framed value with an id the registry does not have and
  // one with a known id and a body that is not Avro of it.
  const writer = new AvroNotificationWriter(registry.url, topics.notifications);
  const messages: { key: string | null; value: Buffer | string }[] = [];
  let avroCount = 0;
  for (const [i, line] of lines.entries()) {
    const value = i % 2 === 0 ? await writer.encode(line) : undefined;
    if (value !== undefined) avroCount++;
    messages.push({ key: notificationKey(JSON.parse(line)), value: value ?? line });
    if (i === 10) {
      messages.push({ key: 'bad-1', value: frame(2_000_000_000, Buffer.from([2, 0x41])) });
      messages.push({
        key: 'bad-2',
        value: frame(writer.anyId(), Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])),
      });
    }
  }
  assert.ok(avroCount > lines.length / 3, `${avroCount} of ${lines.length} notifications go as Avro`);
  const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(() => producer.disconnect());
  for (let i = 0; i < messages.length; i += 100) {
    await producer.send({ topic: topics.notifications, messages: messages.slice(i, i + 100) });
  }
  const advance = await runCli(
    ['produce', '-c', 'etc/winchester.yaml', '--advance-clock', FLUSH_AT, '--timeout', '90'],
    { env },
  );
  assert.equal(advance.code, 0, advance.stderr);

  const published = await readTopic(t, kafka, topics.batches, (r) => r.length >= expected.length);
  for (const r of published) {
    assert.ok(isConfluentFramed(r.value), 'a batch is Confluent-framed Avro');
    assert.equal(framedSchemaId(r.value), codec.schemaIds.batchMessage);
  }
  const decoded = published.map((r) => {
    const m = codec.decodeBatchMessage(r.value);
    assert.equal(m.type, 'inline');
    return m.type === 'inline' ? asReplayLine(encodeBatch(m.batch)) : '';
  });
  assertSameBatches([...new Set(decoded)], expected);

  const dead = await readTopic(t, kafka, topics.deadLetter, (r) => r.length >= 2, 30_000);
  assert.deepEqual(dead.map((r) => r.headers['winchester-reason']).sort(), [
    'invalid_avro',
    'unknown_schema',
  ]);
  const unknown = dead.find((r) => r.headers['winchester-reason'] === 'unknown_schema');
  assert.match(unknown?.headers['winchester-detail'] ?? '', /schema id 2000000000 is not in the registry/);
  const metrics = await scrape(triggerPort);
  for (const reason of ['unknown_schema', 'invalid_avro']) {
    assert.equal(sampleValue(metrics, 'winchester_notifications_dead_lettered_total', { reason }), 1, reason);
  }

  // The pipeline worker: Avro batches in, verdict events out as Avro; an unknown id and a corrupt
  // body on the batches topic are dead-lettered with their reasons.
  const pipeline = startWinchester(t, ['pipeline-worker', '-c', 'etc/winchester.yaml'], {
    ...env,
    WINCHESTER_METRICS_PORT: String(pipelinePort),
    WINCHESTER_TRIGGER_DEFINITIONS: join(dir, 'triggers.yaml'),
  });
  await pipeline.waitForMsg('pipeline worker running', 90_000);
  await producer.send({
    topic: topics.batches,
    messages: [
      { key: 'bad-batch-1', value: frame(2_000_000_001, Buffer.from([0])) },
      { key: 'bad-batch-2', value: frame(codec.schemaIds.batchMessage, Buffer.from([0x09])) },
    ],
  });
  const total = published.length + 2;
  const deadline = Date.now() + 90_000;
  let handled = 0;
  let pm = await scrape(pipelinePort);
  while (Date.now() < deadline) {
    pm = await scrape(pipelinePort);
    handled = sampleSum(pm, 'winchester_pipeline_batches_total');
    if (handled >= total) break;
    await sleep(250);
  }
  assert.equal(handled, total, 'every batch record was handled');
  assert.equal(
    sampleSum(pm, 'winchester_pipeline_batches_total', { outcome: 'completed' }),
    published.length,
  );
  assert.equal(sampleSum(pm, 'winchester_pipeline_batches_total', { outcome: 'dead_lettered' }), 2);
  const dead2 = await readTopic(t, kafka, topics.deadLetter, (r) => r.length >= 4, 30_000);
  assert.deepEqual(
    dead2
      .slice(2)
      .map((r) => r.headers['winchester-reason'])
      .sort(),
    ['invalid_batch', 'unknown_schema'],
  );

  const verdicts = await readTopic(
    t,
    kafka,
    topics.streamEvents,
    (r) =>
      r.some((x) => {
        if (!isConfluentFramed(x.value)) return false;
        const rec = codec.decodeStreamRecord(x.value);
        return rec.type === 'event' && rec.event.event_type.startsWith('compute.instance.exists.');
      }),
    30_000,
  );
  let framed = 0;
  let verdictEvents = 0;
  for (const r of verdicts) {
    // Every record is Avro, the ticks of `produce --advance-clock` included (it uses the workers' codec).
    const rec = codec.decodeStreamRecord(r.value);
    assert.ok(isConfluentFramed(r.value), `a stream-events record (${rec.type}) is Confluent-framed Avro`);
    framed++;
    if (
      rec.type === 'event' &&
      /^compute\.instance\.exists\.(verified|failed|warnings)/.test(rec.event.event_type)
    )
      verdictEvents++;
  }
  assert.ok(framed > 0 && verdictEvents > 0, `${verdictEvents} verdict events among ${framed} Avro records`);

  assert.equal(await pipeline.terminate(), 0, pipeline.stderr);
  assert.equal(await trigger.terminate(), 0, trigger.stderr);
  assert.deepEqual(
    [...trigger.lines, ...pipeline.lines].filter((l) => l.level === 'error'),
    [],
    'no error was logged',
  );
});

test('a schema registry that cannot be reached at start: both workers exit 1 saying so', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    DATABASE_URL: process.env.DATABASE_URL,
    KAFKA_BROKERS: kafkaBrokers(),
    WINCHESTER_SCHEMA_REGISTRY_URL: `http://registry-user:registry-pw@127.0.0.1:${port}`,
    WINCHESTER_SCHEMA_REGISTRY_RETRIES: '0',
    WINCHESTER_METRICS_PORT: '0',
  };
  for (const command of ['trigger-worker', 'pipeline-worker']) {
    const p = startWinchester(t, [command, '-c', 'etc/winchester.yaml'], env);
    assert.equal(await p.exit(), 1, `${command}: ${p.stderr}`);
    assert.match(
      p.stderr,
      new RegExp(`cannot use the schema registry at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`),
      command,
    );
    assert.doesNotMatch(p.stderr, /registry-pw|\n\s+at /, 'no password, no stack trace');
  }
});

test('a registry outage after start holds Avro notifications back (retried, not dead-lettered) until it is over', {
  timeout: 2 * INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  // Needs a registry that can be taken down and brought back: the in-test one, whatever SCHEMA_REGISTRY_URL says.
  const registry = await startFakeRegistry();
  t.after(() => registry.close());
  const db = await migratedDatabase(t, 'it_avro_outage');
  const kafka = testKafka('it-avro-outage');
  const { names: topics } = await workerTopics(t, kafka, {
    notifications: { prefix: 'it-avro-o-in', partitions: 1 },
    streamEvents: { prefix: 'it-avro-o-se', partitions: 1 },
    batches: { prefix: 'it-avro-o-b', partitions: 1 },
    deadLetter: { prefix: 'it-avro-o-dl', partitions: 1 },
  });
  const metricsPort = await freePort();
  const worker = startWinchester(t, ['trigger-worker', '-c', 'etc/winchester.yaml', '--stage', 'route'], {
    ...workerEnv({ databaseUrl: db.url, clientId: uniqueName('it-avro-outage'), topics, partitions: 1 }),
    WINCHESTER_SCHEMA_REGISTRY_URL: registry.url,
    WINCHESTER_SCHEMA_REGISTRY_RETRIES: '0',
    WINCHESTER_METRICS_PORT: String(metricsPort),
  });
  const registryErrors = async () =>
    sampleValue(await scrape(metricsPort), 'winchester_schema_registry_errors_total', {
      operation: 'fetch_schema',
    }) ?? 0;
  await worker.waitForMsg('trigger worker running', 90_000);

  const [line] = [...generateNotifications({ seed: 5, instances: 1, days: 1 })]
    .map((n) => JSON.stringify(n))
    .filter((l) => (JSON.parse(l) as { event_type: string }).event_type === 'compute.instance.exists');
  assert.ok(line !== undefined);
  const value = await new AvroNotificationWriter(registry.url, topics.notifications).encode(line);
  assert.ok(value !== undefined);
  assert.equal(await registryErrors(), 0, 'no registry error while it answers');
  registry.unavailable = true;
  const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(() => producer.disconnect());
  await producer.send({ topic: topics.notifications, messages: [{ key: 'k', value }] });
  await worker.waitForLine(
    (l) => typeof l.error === 'string' && /cannot use the schema registry/.test(l.error),
    60_000,
  );
  assert.equal(worker.child.exitCode, null, 'the worker stays up through the outage');
  assert.ok((await registryErrors()) >= 1, 'the failed fetches are counted in /metrics');
  const dead = await readTopic(t, kafka, topics.deadLetter, () => false, 3000);
  assert.deepEqual(dead, [], 'nothing dead-lettered while the registry is down');

  registry.unavailable = false;
  const messageId = (JSON.parse(line) as { message_id: string }).message_id;
  const { codec } = await connectAvro(
    { url: registry.url },
    { streamEventsTopic: topics.streamEvents, batchesTopic: topics.batches },
  );
  const routed = await readTopic(t, kafka, topics.streamEvents, (r) =>
    r.some((x) => {
      const rec = codec.decodeStreamRecord(x.value);
      return rec.type === 'event' && rec.event.message_id === messageId;
    }),
  );
  assert.ok(
    routed.some((x) => isConfluentFramed(x.value)),
    'routed as an Avro stream-events record once the registry is back',
  );
  assert.equal(await worker.terminate(), 0, worker.stderr);
});
