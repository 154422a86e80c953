/**
 * Workers ride out a broker restart in which kafkajs gives up on their consumers (docs/chaos.md): on a
 * private broker (scripts/infra.sh, its own directory and ports; the shared one is never touched), a
 * trigger worker and a pipeline worker run; the broker is stopped and started again, and their consumers
 * are replaced in the process instead of the workers exiting 1.
 *
 * How kafkajs 2.2.4 comes to give up: a consumer that rejoins its group looks the group coordinator up by
 * asking each known broker; a broker whose connection fails during that request is skipped silently, and
 * when none answered it throws "Failed to find group coordinator", which it marks non-retriable, so its
 * CRASH event says `restart: false`. A broker restart makes that happen only in a race (a connection
 * opened while the broker is still up or already starting, then cut). To make it happen every time, the
 * workers' Kafka client opens its sockets through {@link faultySockets}, which, while the fault is on, cuts
 * the connection that carries a FindCoordinator request: the connection loss kafkajs meets in the race.
 * Everything else is real: the broker, its stop and start, kafkajs, the workers, PostgreSQL.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ISocketFactory } from 'kafkajs';
import { loadConfig, type WinchesterConfig } from '../../../src/config/index.js';
import { advanceClock } from '../../../src/kafka/advance-clock.js';
import {
  createIdempotentProducer,
  createKafka,
  createProducer,
  type KafkaLogRecord,
  kafkaClientOptions,
  WORKER_RETRY,
} from '../../../src/kafka/kafka.js';
import type { Kafka } from '../../../src/kafka/types.js';
import type { Logger } from '../../../src/log.js';
import { createMetrics, type WinchesterMetrics } from '../../../src/metrics/metrics.js';
import { generateNotifications } from '../../../src/notigen/index.js';
import { parseDatetime } from '../../../src/timex/instant.js';
import { PipelineService, pipelineGroupId } from '../../../src/worker/pipeline-service.js';
import { TriggerWorker, triggerGroupIds } from '../../../src/worker/trigger-worker.js';
import { replayBatches } from '../../helpers/batches.js';
import { databaseUrl, uniqueName } from '../../helpers/integration.js';
import { migratedDatabase } from '../db/schema.js';
import { PrivateKafka } from './private-kafka.js';

/** A private broker's cold start is ~15 s on an idle machine, several times that on a loaded one. */
const LONG = { timeout: 8 * 60_000 };
/** Kafka's request header starts with the API key; FindCoordinator is 10. */
const FIND_COORDINATOR = 10;

/**
 * Which group-coordinator lookups lose their connection: every one (`always`), or the next one of each
 * group in `once` (the group is then taken out). `cut` counts them.
 */
interface Fault {
  always: boolean;
  readonly once: Set<string>;
  cut: number;
}

/**
 * Sockets as kafkajs opens them, except that a FindCoordinator request the fault selects resets its
 * connection (ECONNRESET, as a broker process dying under it does) instead of being sent.
 */
function faultySockets(fault: Fault): ISocketFactory {
  return ({ host, port, onConnect }) => {
    const socket: Socket = connect({ host, port }, onConnect);
    socket.setKeepAlive(true, 60_000);
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    socket.write = ((...args: unknown[]) => {
      const chunk = args[0];
      if (Buffer.isBuffer(chunk) && chunk.length >= 6 && chunk.readInt16BE(4) === FIND_COORDINATOR) {
        // The request's body names the group; the client id in its header is a prefix of no group name.
        const group = [...fault.once].find((g) => chunk.includes(Buffer.from(g)));
        if (fault.always || group !== undefined) {
          if (group !== undefined) fault.once.delete(group);
          fault.cut++;
          socket.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
          return false;
        }
      }
      return write(...args);
    }) as Socket['write'];
    return socket;
  };
}

interface Line {
  level: string;
  msg: string;
  [field: string]: unknown;
}

function recorder(worker: string, lines: Line[]): Logger {
  return (level, msg, fields = {}) => {
    lines.push({ level, msg, worker, ...fields });
  };
}

/**
 * A worker's Kafka client as src/cli/worker-runtime.ts builds it (kafka.retries, unless `retries` says
 * otherwise), on `sockets`.
 */
function workerClient(
  config: WinchesterConfig,
  sockets: ISocketFactory,
  log: Logger,
  retries = config.settings.kafka.retries,
): Kafka {
  return createKafka(
    kafkaClientOptions(config.settings.kafka, {
      retry: { retries, ...WORKER_RETRY },
      socketFactory: sockets,
      // kafkajs' info lines (starting, joining, stopping) are kept for a failure's message.
      logLevel: 'info',
      logSink: (r) =>
        log(r.level === 'warn' ? 'warn' : r.level === 'error' ? 'error' : 'info', r.message, {
          component: `kafka.${r.namespace}`,
          ...(r.fields.groupId === undefined ? {} : { groupId: r.fields.groupId }),
        }),
    }),
  );
}

async function restartsOf(metrics: WinchesterMetrics, stage: string): Promise<number> {
  return (await metrics.consumerRestarts.get()).values.find((v) => v.labels.stage === stage)?.value ?? 0;
}

async function until(
  what: string,
  ms: number,
  done: () => boolean | Promise<boolean>,
  lines: readonly Line[] = [],
  state: () => unknown = () => undefined,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) {
      const recent = lines
        .filter((l) => !String(l.msg).startsWith('Response ') && l.component !== 'kafka.Connection')
        .slice(-40);
      assert.fail(
        `timed out after ${ms / 1000} s waiting until ${what} (${JSON.stringify(state())}); last lines: ${JSON.stringify(recent)}`,
      );
    }
    await sleep(250);
  }
}

let broker: PrivateKafka;
before(async () => {
  broker = await PrivateKafka.start(databaseUrl());
});
after(async () => {
  await broker?.destroy();
});

/** Names and settings of one deployment on the private broker. */
function environment(dbUrl: string, name: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    DATABASE_URL: dbUrl,
    KAFKA_BROKERS: broker.brokers,
    WINCHESTER_KAFKA_CLIENT_ID: uniqueName(name),
    WINCHESTER_KAFKA_TOPICS_NOTIFICATIONS: `${name}-in`,
    WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS: `${name}-se`,
    WINCHESTER_KAFKA_TOPICS_BATCHES: `${name}-b`,
    WINCHESTER_KAFKA_TOPICS_DEAD_LETTER: `${name}-dl`,
    WINCHESTER_KAFKA_PARTITIONS: '2',
    WINCHESTER_CLOCK_MODE: 'event',
    WINCHESTER_TRIGGER_WORKER_TICK_INTERVAL: '0.2',
    WINCHESTER_TRIGGER_WORKER_CHECKPOINT_RECORDS: '40',
    WINCHESTER_TRIGGER_WORKER_CHECKPOINT_INTERVAL: '0.2',
    // Members of the crashed consumers are left behind in the groups: short sessions let them go soon.
    WINCHESTER_TRIGGER_WORKER_SESSION_TIMEOUT: '6',
    WINCHESTER_PIPELINE_WORKER_SESSION_TIMEOUT: '6',
    WINCHESTER_METRICS_PORT: '0',
    ...extra,
  };
}

test(
  'a trigger worker and a pipeline worker ride out a broker restart in which kafkajs gives up on their consumers',
  LONG,
  async (t) => {
    const db = await migratedDatabase(t, 'it_crestart');
    // The clients get a short retry budget (3 retries, 2 s) so that kafkajs gives up on the running
    // consumers' requests within seconds of the broker going away and rejoins their groups once it is back
    // (with the default minute of retries, a short outage passes without a rejoin). kafka.retries, the
    // bound of the in-process restarts, keeps its default (10): with 3, a replacement that finds the broker
    // still starting fails in about 2 s, and on a loaded machine the broker took longer to come back than
    // three of those (the route stage then gave up, as designed, and this test failed).
    const CLIENT_RETRIES = 3;
    const config = await loadConfig('etc/winchester.yaml', {
      env: environment(db.url, 'crestart'),
    });
    assert.equal(config.settings.kafka.retries, 10, 'the default bound of the in-process restarts');
    const topics = config.settings.kafka.topics;
    const lines: Line[] = [];
    const fatal: unknown[] = [];
    const fault: Fault = { always: false, once: new Set(), cut: 0 };
    const sockets = faultySockets(fault);
    const triggerMetrics = createMetrics();
    const pipelineMetrics = createMetrics();
    const logT = recorder('trigger', lines);
    const logP = recorder('pipeline', lines);

    const trigger = await TriggerWorker.start({
      config,
      kafka: workerClient(config, sockets, logT, CLIENT_RETRIES),
      pool: db.pool,
      log: logT,
      metrics: triggerMetrics,
      maxWaitTimeInMs: 100,
      onFatal: (error) => fatal.push(error),
    });
    t.after(() => trigger.stop().catch(() => undefined));
    const pipeline = await PipelineService.start({
      config,
      kafka: workerClient(config, sockets, logP, CLIENT_RETRIES),
      pool: db.pool,
      log: logP,
      metrics: pipelineMetrics,
      maxWaitTimeInMs: 100,
      heartbeatIntervalMs: 200,
      onFatal: (error) => fatal.push(error),
    });
    t.after(() => pipeline.stop().catch(() => undefined));

    // Input goes in through a client of its own (no fault), as `winchester produce` would.
    const input = createKafka({ brokers: broker.brokers, clientId: 'it-crestart-input' });
    const producer = createProducer(input);
    await producer.connect();
    t.after(() => producer.disconnect());
    const feed = async (start: string, flushAt: string): Promise<number> => {
      const notifications = [...generateNotifications({ seed: 11, instances: 3, days: 2, start })].map((n) =>
        JSON.stringify(n),
      );
      await producer.send({
        topic: topics.notifications,
        acks: -1,
        messages: notifications.map((value) => ({ value })),
      });
      await advanceClock({
        client: { brokers: broker.brokers, clientId: 'it-crestart-clock' },
        notificationsTopic: topics.notifications,
        streamEventsTopic: topics.stream_events,
        routeGroup: triggerGroupIds(config.settings.kafka.client_id).route,
        time: parseDatetime(flushAt),
        timeoutMs: 120_000,
      });
      return (await replayBatches(notifications, flushAt)).length;
    };

    // Before: both workers process input.
    const before = await feed('2015-02-01', '2015-02-10T00:00:00Z');
    assert.ok(before > 0, 'the workload makes batches');
    await until(`the pipeline completed the first ${before} batches`, 120_000, () => {
      return pipeline.worker.counts.completed >= before;
    });

    // The outage: the broker goes away and comes back. Rejoining after it, each consumer's first
    // group-coordinator lookup loses its connection, and kafkajs gives up on the consumer.
    const groups = triggerGroupIds(config.settings.kafka.client_id);
    for (const g of [groups.route, groups.streams, pipelineGroupId(config.settings.kafka.client_id)])
      fault.once.add(g);
    await broker.stop();
    await sleep(3000);
    await broker.up();
    await until(
      'each of the three consumers was given up by kafkajs and replaced',
      180_000,
      async () => {
        return (
          (await restartsOf(triggerMetrics, 'route')) >= 1 &&
          (await restartsOf(triggerMetrics, 'streams')) >= 1 &&
          (await restartsOf(pipelineMetrics, 'pipeline')) >= 1
        );
      },
      lines,
    );
    assert.equal(fault.cut, 3, 'one lookup of each group was cut');

    // After: the replacements joined, and new input goes all the way through.
    let ready: Record<string, boolean> = {};
    await until(
      'every consumer joined again',
      180_000,
      () => {
        ready = { ...trigger.readiness(), ...pipeline.readiness() };
        return Object.values(ready).every((joined) => joined);
      },
      lines,
      () => ready,
    );
    const afterRestart = await feed('2015-03-01', '2015-03-10T00:00:00Z');
    await until(
      `the pipeline completed the ${afterRestart} new batches`,
      180_000,
      () => {
        return pipeline.worker.counts.completed >= before + afterRestart;
      },
      lines,
    );
    assert.deepEqual(fatal, [], 'no worker gave up');

    // Each replacement is one warn line naming the cause, and counted.
    const restarts = lines.filter((l) =>
      / consumer given up by kafkajs in a Kafka outage: restarting it in-process$/.test(l.msg),
    );
    for (const stage of ['route', 'streams', 'pipeline']) {
      const mine = restarts.filter((l) => l.msg.startsWith(`${stage} `));
      assert.ok(
        mine.length >= 1,
        `${stage}: ${JSON.stringify(lines.filter((l) => l.level !== 'info').slice(-20))}`,
      );
      assert.ok(
        mine.every((l) => l.level === 'warn' && l.error === 'Failed to find group coordinator'),
        JSON.stringify(mine),
      );
    }
    const metrics = [
      await restartsOf(triggerMetrics, 'route'),
      await restartsOf(triggerMetrics, 'streams'),
      await restartsOf(pipelineMetrics, 'pipeline'),
    ];
    assert.equal(
      metrics.reduce((a, b) => a + b, 0),
      restarts.length,
      'one count per warn line',
    );
    assert.equal(trigger.consumerRestarts + pipeline.consumerRestarts, restarts.length);
    // The streams stage dropped its partitions' tasks before its replacement claimed them again.
    assert.ok(
      lines.some((l) => l.msg === 'partition revoked: state dropped'),
      'streams tasks dropped as on a revocation',
    );
    assert.ok(
      !lines.some((l) => l.msg.endsWith(' consumer crashed') && l.restart === false),
      'no consumer given up for good',
    );
  },
);

test(
  'replacements that cannot join use up kafka.retries in a row: then the worker stops for good (exit 1 in the CLI)',
  LONG,
  async (t) => {
    const db = await migratedDatabase(t, 'it_crestart_bound');
    const config = await loadConfig('etc/winchester.yaml', {
      env: environment(db.url, 'crestart-bound', { WINCHESTER_KAFKA_RETRIES: '2' }),
    });
    const lines: Line[] = [];
    const fault: Fault = { always: true, once: new Set(), cut: 0 };
    const metrics = createMetrics();
    const log = recorder('pipeline', lines);
    let gaveUp: (error: unknown) => void = () => undefined;
    const fatal = new Promise<unknown>((resolve) => {
      gaveUp = resolve;
    });
    const pipeline = await PipelineService.start({
      config,
      kafka: workerClient(config, faultySockets(fault), log),
      pool: db.pool,
      log,
      metrics,
      maxWaitTimeInMs: 100,
      onFatal: (error) => gaveUp(error),
    });
    t.after(() => pipeline.stop().catch(() => undefined));
    const error = await Promise.race([
      fatal,
      sleep(120_000).then(() => assert.fail(`no onFatal: ${JSON.stringify(lines.slice(-10))}`)),
    ]);
    assert.match(
      String((error as Error).message),
      /^Failed to find group coordinator \(after 2 in-process restarts in a row, kafka\.retries\)$/,
    );
    assert.equal(await restartsOf(metrics, 'pipeline'), 2, 'kafka.retries replacements, then no more');
    const warn = lines.filter((l) => l.level === 'warn' && l.msg.startsWith('pipeline consumer given up'));
    assert.deepEqual(
      warn.map((l) => [l.attempt, l.attempts]),
      [
        [1, 2],
        [2, 2],
      ],
    );
    const last = lines.filter((l) => l.msg === 'pipeline consumer crashed').at(-1);
    assert.deepEqual([last?.level, last?.restart, last?.in_process_restarts], ['error', false, 2]);
  },
);

test(
  "a worker's idempotent producer in a broker outage: the caller gets an outage error in bounded time, no hang; sends work again once the broker is back",
  LONG,
  async (t) => {
    const topic = uniqueName('it-crestart-idem');
    const records: KafkaLogRecord[] = [];
    const kafka = createKafka({
      brokers: broker.brokers,
      clientId: 'it-crestart-idem',
      retry: { retries: 3, ...WORKER_RETRY },
      logLevel: 'warn',
      logSink: (r) => records.push(r),
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = createIdempotentProducer(kafka, { retries: 3, sendTimeoutMs: 5000 });
    await producer.connect();
    t.after(() => producer.disconnect().catch(() => undefined));
    const send = (value: string) => producer.send({ topic, acks: -1, messages: [{ key: 'k', value }] });
    await send('a');

    await broker.stop();
    const started = Date.now();
    const during = await send('b').then(
      () => undefined,
      (error: unknown) => error,
    );
    const waited = Date.now() - started;
    assert.ok(during instanceof Error, 'the send during the outage failed');
    assert.ok(waited < 5000 + 3000, `within the bound (${waited} ms): ${String(during)}`);
    await broker.up();
    await send('c');

    const consumer = kafka.consumer({ groupId: uniqueName('it-crestart-idem'), maxWaitTimeInMs: 100 });
    const seen: string[] = [];
    await consumer.connect();
    t.after(() => consumer.disconnect());
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(String(message.value));
      },
    });
    await until('a and c are read back', 60_000, () => seen.includes('a') && seen.includes('c'));
    await sleep(1000);
    t.diagnostic(`the send in the outage failed after ${waited} ms: ${String(during)}; read back: ${seen}`);
    assert.deepEqual(
      seen.filter((v) => v !== 'b'),
      ['a', 'c'],
      'each acknowledged record once, in order',
    );
    assert.ok(seen.filter((v) => v === 'b').length <= 1, `the failed one at most once: ${seen.join(',')}`);
    assert.deepEqual(
      records.filter((r) => /Limiting retries for the idempotent producer/.test(r.message)),
      [],
      'no EoS warning',
    );
  },
);
