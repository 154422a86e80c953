/**
 * `winchester trigger-worker` as operators run it: real worker processes (started, rebalanced, SIGKILLed,
 * SIGTERMed) on the real Kafka and PostgreSQL, fed with `winchester produce` and flushed with
 * `winchester produce --advance-clock`; what they publish must equal `winchester replay` of the input.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../../src/config/index.js';
import { CheckpointStore } from '../../../src/db/checkpoint-store.js';
import { ConfigError } from '../../../src/errors.js';
import { createProducer } from '../../../src/kafka/kafka.js';
import { decodeBatch } from '../../../src/kafka/records.js';
import type { Kafka } from '../../../src/kafka/types.js';
import { silentLogger } from '../../../src/log.js';
import { generateNotifications } from '../../../src/notigen/index.js';
import { TriggerWorker } from '../../../src/worker/trigger-worker.js';
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
import { freePort, startWinchester, type WinchesterProcess } from '../../helpers/process.js';
import { migratedDatabase } from '../db/schema.js';
import { workerTopics } from './topics.js';

const LONG = { timeout: 3 * INTEGRATION_TIMEOUT_MS };
/** Far beyond the workloads' last events: every stream has fired or expired by then. */
const FLUSH_AT = '2030-01-01T00:00:00Z';

interface Deployment {
  kafka: Kafka;
  env: NodeJS.ProcessEnv;
  topics: { notifications: string; streamEvents: string; batches: string; deadLetter: string };
}

/**
 * A database, topics (notifications with one partition, so input order is one order; four stream-events
 * partitions) and the environment that points `winchester` at them.
 */
async function deployment(
  t: TestScope,
  name: string,
  notificationsConfigs?: Record<string, string>,
): Promise<Deployment> {
  const db = await migratedDatabase(t, `it_tw_${name}`);
  const kafka = testKafka(`it-tw-${name}`);
  const { names: topics } = await workerTopics(t, kafka, {
    notifications: { prefix: `it-tw-${name}-in`, partitions: 1 },
    streamEvents: { prefix: `it-tw-${name}-se`, partitions: 4 },
    batches: { prefix: `it-tw-${name}-b`, partitions: 1 },
    deadLetter: { prefix: `it-tw-${name}-dl`, partitions: 1 },
  });
  if (notificationsConfigs !== undefined) {
    const admin = kafka.admin();
    await admin.connect();
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: 2, // TOPIC
          name: topics.notifications,
          configEntries: Object.entries(notificationsConfigs).map(([n, value]) => ({ name: n, value })),
        },
      ],
    });
    await admin.disconnect();
  }
  const env: NodeJS.ProcessEnv = {
    ...workerEnv({ databaseUrl: db.url, clientId: uniqueName(`it-tw-${name}`), topics, partitions: 4 }),
    WINCHESTER_CLOCK_MODE: 'event',
    WINCHESTER_DUPLICATE_WINDOW: '86400',
    WINCHESTER_TRIGGER_WORKER_TICK_INTERVAL: '0.2',
    WINCHESTER_TRIGGER_WORKER_CHECKPOINT_RECORDS: '40',
    WINCHESTER_TRIGGER_WORKER_CHECKPOINT_INTERVAL: '0.2',
    WINCHESTER_METRICS_PORT: '0',
  };
  return { kafka, env, topics };
}

/** A notigen workload as JSON lines, with every tenth notification sent again a few notifications later. */
function workload(
  seed: number,
  instances: number,
  days: number,
): { unique: string[]; withResends: string[] } {
  const unique = [...generateNotifications({ seed, instances, days })].map((n) => JSON.stringify(n));
  const withResends: string[] = [];
  const resends = new Map<number, string[]>();
  unique.forEach((line, i) => {
    withResends.push(line, ...(resends.get(i) ?? []));
    if (i % 10 === 3) resends.set(i + 1 + (i % 4), [...(resends.get(i + 1 + (i % 4)) ?? []), line]);
  });
  for (const [i, lines] of resends) if (i >= unique.length) withResends.push(...lines);
  return { unique, withResends };
}

async function produce(d: Deployment, lines: readonly string[]): Promise<void> {
  const r = await runCli(['produce', '-q', '-c', 'etc/winchester.yaml'], {
    stdin: lines.join('\n'),
    env: d.env,
  });
  assert.equal(r.code, 0, r.stderr);
}

async function advanceClock(d: Deployment): Promise<void> {
  const r = await runCli(
    ['produce', '-c', 'etc/winchester.yaml', '--advance-clock', FLUSH_AT, '--timeout', '90'],
    {
      env: d.env,
    },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /advanced the event-time clock of 4 partitions/);
}

/** Collects every batches record (value by batch id, and how often each id was published). */
async function batches(t: TestScope, d: Deployment) {
  const byId = new Map<string, string>();
  const published = new Map<string, number>();
  const consumer = d.kafka.consumer({ groupId: uniqueName('it-tw-batches'), maxWaitTimeInMs: 100 });
  t.after(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics: [d.topics.batches], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const value = message.value?.toString() ?? '';
      const id = decodeBatch(value).batchId;
      const earlier = byId.get(id);
      assert.ok(earlier === undefined || earlier === value, `batch ${id} republished with the same content`);
      byId.set(id, value);
      published.set(id, (published.get(id) ?? 0) + 1);
    },
  });
  return {
    byId,
    published,
    async waitFor(count: number, timeoutMs = 90_000): Promise<string[]> {
      const deadline = Date.now() + timeoutMs;
      while (byId.size < count && Date.now() < deadline) await sleep(100);
      await sleep(1500); // anything extra (a stream fired twice) would show up now
      return [...byId.values()].map(asReplayLine).sort();
    },
  };
}

function startWorker(t: TestScope, d: Deployment): WinchesterProcess {
  return startWinchester(t, ['trigger-worker', '-c', 'etc/winchester.yaml'], d.env);
}

test(
  'two trigger workers, 10% resends, event time, --advance-clock: the batches are what replay prints',
  LONG,
  async (t) => {
    const { unique, withResends } = workload(21, 8, 3);
    const env = { WINCHESTER_DUPLICATE_WINDOW: '86400' };
    const expected = await replayBatches(withResends, FLUSH_AT, env);
    assert.deepEqual(
      expected,
      await replayBatches(unique, FLUSH_AT, env),
      'resends change nothing in replay either',
    );
    assert.ok(expected.length >= 20, `the workload fires and expires enough streams (${expected.length})`);

    const d = await deployment(t, 'e2e');
    const out = await batches(t, d);
    const a = startWorker(t, d);
    const b = startWorker(t, d);
    await a.waitForMsg('trigger worker running');
    await b.waitForMsg('trigger worker running', 90_000);
    await produce(d, withResends);
    await advanceClock(d);
    assertSameBatches(await out.waitFor(expected.length), expected);

    const claimedBy = (p: WinchesterProcess) => p.lines.filter((l) => l.msg === 'partition claimed').length;
    assert.ok(claimedBy(a) > 0 && claimedBy(b) > 0, 'both workers own stream-events partitions');
    assert.equal(await a.terminate(), 0, a.stderr);
    assert.equal(await b.terminate(), 0, b.stderr);
    assert.ok(
      a.lines.some((l) => l.msg === 'trigger worker stopped'),
      'graceful stop logged',
    );
    assert.deepEqual(
      [...a.lines, ...b.lines].filter((l) => l.level === 'error'),
      [],
      'no error was logged',
    );
  },
);

test(
  'workers join, leave and are SIGKILLed mid-stream: no stream lost, none fired twice, no event counted twice',
  LONG,
  async (t) => {
    const { withResends } = workload(33, 10, 3);
    const expected = await replayBatches(withResends, FLUSH_AT, { WINCHESTER_DUPLICATE_WINDOW: '86400' });
    const d = await deployment(t, 'chaos');
    const out = await batches(t, d);
    const third = Math.floor(withResends.length / 3);

    const a = startWorker(t, d);
    await a.waitForMsg('trigger worker running');
    await produce(d, withResends.slice(0, third));
    await a.waitForMsg('partition claimed');
    const b = startWorker(t, d); // rebalance: b joins both groups
    await b.waitForMsg('trigger worker running', 90_000);
    await produce(d, withResends.slice(third, 2 * third));
    await sleep(500);
    await a.kill(); // SIGKILL: no final checkpoint, no offset commit, maybe mid-checkpoint
    const c = startWorker(t, d);
    await c.waitForMsg('trigger worker running', 90_000);
    await produce(d, withResends.slice(2 * third));
    await sleep(1000);
    assert.equal(await b.terminate(), 0, b.stderr); // leaves gracefully: c takes everything
    await advanceClock(d);
    assertSameBatches(await out.waitFor(expected.length), expected);
    assert.equal(await c.terminate(), 0, c.stderr);
  },
);

test(
  'a batch committed to the outbox but never published (the worker died first) is published once by the next worker',
  LONG,
  async (t) => {
    const { unique } = workload(5, 4, 2);
    const expected = await replayBatches(unique, FLUSH_AT);
    const d = await deployment(t, 'outbox');
    const out = await batches(t, d);
    const config = await loadConfig('etc/winchester.yaml', { env: d.env });
    const db = await import('../../../src/db/pool.js');
    const pool = await db.createPool(d.env.DATABASE_URL as string, { maximumPoolSize: 4 });
    t.after(() => pool.end());

    // The first worker commits its checkpoints (and their outbox rows) but every publication fails, as if
    // the process died right after each commit: nothing reaches the batches topic.
    const first = await TriggerWorker.start({
      config,
      kafka: d.kafka,
      pool,
      log: silentLogger,
      maxWaitTimeInMs: 100,
      batchSend: async () => {
        throw new Error('the process died before publishing');
      },
    });
    await produce(d, unique);
    await advanceClock(d);
    const deadline = Date.now() + 60_000;
    let unpublished = 0;
    while (Date.now() < deadline) {
      unpublished = Number(
        await pool.oneFirst(db.sql.unsafe`SELECT count(*) FROM outbox WHERE published_at IS NULL`),
      );
      if (unpublished >= expected.length) break;
      await sleep(200);
    }
    assert.equal(unpublished, expected.length, 'every batch is committed to the outbox, none published');
    assert.equal(out.byId.size, 0);
    await first.stop().catch(() => undefined); // leaves its groups; its last publication fails too

    const second = await TriggerWorker.start({
      config,
      kafka: d.kafka,
      pool,
      log: silentLogger,
      maxWaitTimeInMs: 100,
    });
    t.after(() => second.stop());
    assertSameBatches(await out.waitFor(expected.length), expected);
    assert.deepEqual(
      [...out.published.values()].filter((n) => n !== 1),
      [],
      'each batch published exactly once',
    );
  },
);

test('bad input is dead-lettered with its reason and counted; the worker keeps routing', LONG, async (t) => {
  const d = await deployment(t, 'bad', { 'max.message.bytes': String(8 * 1024 * 1024) });
  const worker = startWinchester(t, ['trigger-worker', '-c', 'etc/winchester.yaml'], {
    ...d.env,
    WINCHESTER_METRICS_PORT: String(await freePort()),
  });
  const running = await worker.waitForMsg('trigger worker running');
  const dead: { reason: string; bytes: number; truncatedFrom: string | null }[] = [];
  const consumer = d.kafka.consumer({ groupId: uniqueName('it-tw-dl'), maxWaitTimeInMs: 100 });
  t.after(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics: [d.topics.deadLetter], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      dead.push({
        reason: message.headers?.['winchester-reason']?.toString() ?? '',
        bytes: message.value?.length ?? 0,
        truncatedFrom: message.headers?.['winchester-truncated-from']?.toString() ?? null,
      });
    },
  });

  const [good] = [...generateNotifications({ seed: 9, instances: 1, days: 1, count: 1 })];
  const base = good as Record<string, unknown>;
  const producer = createProducer(d.kafka, { idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(() => producer.disconnect());
  const bad: Buffer[] = [
    Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x9c]), // garbage bytes
    Buffer.from(JSON.stringify({ ...base, message_id: undefined })), // no message_id
    Buffer.from(JSON.stringify({ ...base, timestamp: '2015-13-45 99:00:00' })), // invalid date
    Buffer.from(JSON.stringify({ ...base, message_id: 'big', padding: 'z'.repeat(5 * 1024 * 1024) })), // 5 MB
  ];
  for (const value of bad)
    await producer.send({ topic: d.topics.notifications, acks: -1, messages: [{ value }] });
  await produce(d, [JSON.stringify(good)]);

  const deadline = Date.now() + 60_000;
  while (dead.length < bad.length && Date.now() < deadline) await sleep(100);
  assert.deepEqual(dead.map((x) => x.reason).sort(), [
    'bad_timestamp',
    'invalid_json',
    'missing_message_id',
    'too_large',
  ]);
  assert.equal(dead.length, 4);
  const big = dead.find((x) => x.reason === 'too_large');
  assert.equal(big?.truncatedFrom, String(bad[3]?.length));
  assert.equal(big?.bytes, 512 * 1024);

  // The good notification after the bad ones was routed: the worker kept going, and the metrics agree.
  const port = Number(running.metrics_port);
  let text = '';
  while (Date.now() < deadline) {
    text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    if (/winchester_stream_event_records_total \d*[1-9]/.test(text)) break;
    await sleep(200);
  }
  assert.match(text, /winchester_notifications_received_total\{topic="[^"]+"\} 5\b/);
  for (const reason of ['invalid_json', 'missing_message_id', 'bad_timestamp', 'too_large']) {
    assert.match(
      text,
      new RegExp(`winchester_notifications_dead_lettered_total\\{reason="${reason}"\\} 1\\b`),
    );
  }
  assert.equal(await worker.terminate(), 0, worker.stderr);
});

test('a database already holding the streams of another stream-events topic is refused at start', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const db = await migratedDatabase(t, 'it_tw_other_topic');
  await new CheckpointStore(db.pool).claimPartition('someone-elses-stream-events', 0);
  const config = await loadConfig('etc/winchester.yaml', {
    env: { WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS: 'mine', KAFKA_BROKERS: kafkaBrokers() },
  });
  await assert.rejects(
    TriggerWorker.start({ config, kafka: testKafka('it-tw-other'), pool: db.pool, log: silentLogger }),
    (error) =>
      error instanceof ConfigError &&
      /already holds the streams of stream-events topic someone-elses-stream-events; one database serves one/.test(
        error.message,
      ),
  );
});
