/**
 * End-to-end benchmark on real Kafka and PostgreSQL: notifications/s through the trigger worker
 * (route → stream-events → streams → checkpoint → batches published) beside the raw kafkajs consume
 * rate of the same topic, measured in the same run, and a CPU profile of where the worker's time goes.
 *
 *   npm run bench:e2e                                   # 200k notifications, 4 partitions, profiled rerun
 *   npm run bench:e2e -- --notifications 500000 --partitions 8 --no-profile
 *   npm run bench:e2e -- --split          # also with the two stages in two processes (uses two cores)
 *   npm run bench:e2e -- --summarise bench/results/e2e-….cpuprofile   # a saved profile's summary
 *
 * WINCHESTER_* variables in the environment reach the worker's configuration (to try settings such as
 * WINCHESTER_TRIGGER_WORKER_CHECKPOINT_RECORDS); the topic, client id, partition and clock settings are the
 * bench's own.
 *
 * Steps (each a row of the printed table and a field of bench/results/e2e-<time>.json):
 *  1. produce N notigen notifications (generated and encoded beforehand, so only the producing is
 *     timed) with the idempotent notification producer `winchester produce` uses;
 *  2. baseline: a fresh consumer group reads the topic from the beginning with eachBatch and
 *     JSON.parse of every value, nothing else, until all N are read;
 *  3. end to end: a TriggerWorker (both stages, event-time clock) over the same topic from the
 *     beginning. Done when the route group's committed offsets reach the end of the notifications
 *     topic AND every stream-events partition's checkpoint (partition_checkpoints.offset) has reached
 *     that partition's high watermark as it stood when routing finished;
 *  4. the end-to-end part again under the V8 sampling profiler (node:inspector), summarised as self
 *     time per function and per area (distill, trigger match, engine, JSON, kafkajs, pg/slonik, …).
 *
 * Rates are wall-clock ("steady": from the first record read to done, so the few seconds kafkajs
 * spends joining a group are left out of both sides; the rate including start-up is printed too).
 * Everything — this process, the broker and PostgreSQL — shares the machine's cores.
 *
 * Needs Kafka and PostgreSQL: KAFKA_BROKERS and DATABASE_URL, or .infra/env as `npm run infra:up`
 * writes it. Every run uses its own topics and databases and removes them at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config/index.js';
import { createDatabase, dropDatabase, withDatabaseName } from '../src/db/databases.js';
import { defaultMigrationsDir, readMigrations, upgrade } from '../src/db/migrate.js';
import { createPool, type DatabasePool, sql } from '../src/db/pool.js';
import { createTopics } from '../src/kafka/admin.js';
import { judgeLine } from '../src/kafka/notification-key.js';
import { openNotificationProducer } from '../src/kafka/notification-producer.js';
import type { Admin, Kafka } from '../src/kafka/types.js';
import { createJsonLogger } from '../src/log.js';
import { createMetrics, type WinchesterMetrics } from '../src/metrics/metrics.js';
import { generateNotifications } from '../src/notigen/index.js';
import { type TriggerStages, TriggerWorker, triggerGroupIds } from '../src/worker/trigger-worker.js';
import {
  BenchError,
  checkServices,
  flag as hasFlag,
  highWatermarks,
  integerArg,
  kafkaClient,
  say,
  services,
  workerProcessParts,
} from './lib/harness.js';
import { table, throughputSvg } from './lib/output.js';
import { type ProgressSample, throughputSeries } from './lib/stats.js';
import { runSuite } from './suite.js';

const ROOT = new URL('..', import.meta.url).pathname;
const CONFIG_FILE = `${ROOT}etc/winchester.yaml`;
const RESULTS_DIR = `${ROOT}bench/results`;

const flag = (name: string) => hasFlag(process.argv, name);
const arg = (name: string, fallback: number) => integerArg(process.argv, name, fallback);

const N = arg('notifications', 200_000);
const PARTITIONS = arg('partitions', 4);
const SEED = arg('seed', 1);
const PROFILE = !flag('no-profile');
/** Also run the two stages as two processes (`--stage route` / `--stage streams`). */
const SPLIT = flag('split');
/** Give up when nothing has progressed for this long. */
const STALL_MS = arg('stall-seconds', 120) * 1000;
/** The consumers' fetch wait, as the worker's default. */
const MAX_WAIT_MS = 500;

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const seconds = (ns: bigint) => Number(ns) / 1e9;
const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

interface Workload {
  keys: (string | null)[];
  values: Buffer[];
  bytes: number;
  instances: number;
  days: number;
}

/** N notigen notifications (JSON, encoded), keyed as `winchester produce` keys them. */
function buildWorkload(): Workload {
  const days = 3;
  // notigen emits about 24 notifications per instance-day with its defaults; ask for a little more.
  let instances = Math.max(10, Math.ceil(N / (20 * days)));
  for (;;) {
    const keys: (string | null)[] = [];
    const values: Buffer[] = [];
    let bytes = 0;
    for (const n of generateNotifications({ seed: SEED, instances, days, count: N })) {
      const text = JSON.stringify(n);
      const verdict = judgeLine(text);
      if (!verdict.ok) throw new Error(`notigen produced an unkeyable notification: ${verdict.detail}`);
      const value = Buffer.from(text, 'utf8');
      keys.push(verdict.key);
      values.push(value);
      bytes += value.length;
    }
    if (values.length >= N) return { keys, values, bytes, instances, days };
    instances *= 2;
  }
}

interface ProduceResult {
  seconds: number;
  perSecond: number;
  megabytesPerSecond: number;
}

async function produce(brokers: string, topic: string, w: Workload): Promise<ProduceResult> {
  const producer = await openNotificationProducer({
    brokers,
    clientId: `bench-produce-${runId}`,
    topic,
    createTopic: true,
    partitions: PARTITIONS,
    replicationFactor: 1,
    batchSize: 500,
    timeoutMs: 60_000,
  });
  try {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < w.values.length; i++) {
      // add() takes text; decoding the prepared bytes is the producer's own encode in reverse.
      const wait = producer.add(w.keys[i] ?? null, (w.values[i] as Buffer).toString('utf8'));
      if (wait !== undefined) await wait;
    }
    await producer.flush();
    const s = seconds(process.hrtime.bigint() - t0);
    return { seconds: s, perSecond: w.values.length / s, megabytesPerSecond: w.bytes / 1e6 / s };
  } finally {
    await producer.close();
  }
}

interface ConsumeResult {
  /** From run() to the last record. */
  totalSeconds: number;
  /** From the first record read to the last. */
  steadySeconds: number;
  perSecond: number;
  perSecondWithStartup: number;
  cpuSeconds: number;
  /** Records read over time (every 200 ms), for the plot. */
  progress: ProgressSample[];
}

/** The baseline: eachBatch, JSON.parse of every value, nothing else. */
async function rawConsume(kafka: Kafka, topic: string): Promise<ConsumeResult> {
  const consumer = kafka.consumer({ groupId: `bench-raw-${runId}`, maxWaitTimeInMs: MAX_WAIT_MS });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let count = 0;
    let keysSeen = 0;
    let first: bigint | undefined;
    let last = 0n;
    let resolveDone: () => void = () => undefined;
    const done = new Promise<void>((r) => {
      resolveDone = r;
    });
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await consumer.run({
      eachBatch: async ({ batch }) => {
        first ??= process.hrtime.bigint();
        for (const m of batch.messages) {
          if (m.value !== null) {
            const parsed = JSON.parse(m.value.toString('utf8')) as Record<string, unknown>;
            if (parsed.event_type !== undefined) keysSeen++;
          }
          count++;
        }
        if (count >= N) {
          last = process.hrtime.bigint();
          resolveDone();
        }
      },
    });
    const progress: ProgressSample[] = [];
    await waitWithStall(
      done,
      () => {
        progress.push({ atMs: Date.now(), done: count });
        return count;
      },
      'raw consume',
    );
    const cpu = process.cpuUsage(cpu0);
    if (keysSeen === 0) throw new Error('unreachable: no notification had an event_type');
    const total = seconds(last - t0);
    const steady = seconds(last - (first ?? t0));
    return {
      totalSeconds: total,
      steadySeconds: steady,
      perSecond: N / steady,
      perSecondWithStartup: N / total,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      progress,
    };
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

/** Waits for `done`, failing when `progress()` has not moved for {@link STALL_MS}. */
async function waitWithStall(done: Promise<void>, progress: () => number, what: string): Promise<void> {
  let finished = false;
  void done.then(() => {
    finished = true;
  });
  let lastValue = -1;
  let lastChange = Date.now();
  while (!finished) {
    await Promise.race([done, sleep(200)]);
    const v = progress();
    if (v !== lastValue) {
      lastValue = v;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > STALL_MS) {
      throw new BenchError(`${what} made no progress for ${STALL_MS / 1000} s (at ${v})`);
    }
  }
}

/** WINCHESTER_* settings from the environment, passed to the worker's configuration. */
function tuning(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('WINCHESTER_') && value !== undefined) out[name] = value;
  }
  return out;
}

interface EndToEndResult {
  totalSeconds: number;
  steadySeconds: number;
  /** First record read → route group committed the end of the notifications topic. */
  routeSeconds: number;
  perSecond: number;
  perSecondWithStartup: number;
  routePerSecond: number;
  cpuSeconds: number;
  streamEventRecords: number;
  streamEventRecordsPerSecond: number;
  ticksSent: number;
  deadLettered: number;
  dropped: number;
  streamsOpened: number;
  streamsFired: number;
  streamsExpired: number;
  batchesPublished: number;
  checkpoints: number;
  checkpointMeanMs: number;
  checkpointsPerSecond: number;
  batchPublishMeanMs: number;
  profile?: ProfileSummary;
  /** Notifications routed and stream-event records checkpointed over time, for the plot. */
  progress: { routed: ProgressSample[]; checkpointed: ProgressSample[] };
}

async function metricSum(metric: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  const { values } = await metric.get();
  return values.reduce((s, v) => s + v.value, 0);
}

/** Sum and count of a histogram (all label sets). */
async function histogram(metric: {
  get(): Promise<{ values: { value: number; metricName?: string }[] }>;
}): Promise<{ sum: number; count: number }> {
  const { values } = await metric.get();
  let sum = 0;
  let count = 0;
  for (const v of values) {
    if (v.metricName?.endsWith('_sum')) sum += v.value;
    else if (v.metricName?.endsWith('_count')) count += v.value;
  }
  return { sum, count };
}

/** The worker metrics the report uses, summed over label sets. */
interface Counts {
  received: number;
  streamEventRecords: number;
  ticksSent: number;
  deadLettered: number;
  dropped: number;
  streamsOpened: number;
  streamsFired: number;
  streamsExpired: number;
  batchesPublished: number;
  checkpoints: number;
  checkpointSeconds: number;
  publishes: number;
  publishSeconds: number;
}

async function counts(m: WinchesterMetrics): Promise<Counts> {
  const checkpoint = await histogram(m.checkpointDuration);
  const publish = await histogram(m.batchPublishDuration);
  return {
    received: await metricSum(m.notificationsReceived),
    streamEventRecords: await metricSum(m.streamEventRecords),
    ticksSent: await metricSum(m.ticksSent),
    deadLettered: await metricSum(m.notificationsDeadLettered),
    dropped: await metricSum(m.notificationsDropped),
    streamsOpened: await metricSum(m.streamsOpened),
    streamsFired: await metricSum(m.streamsFired),
    streamsExpired: await metricSum(m.streamsExpired),
    batchesPublished: await metricSum(m.batchesPublished),
    checkpoints: await metricSum(m.checkpoints),
    checkpointSeconds: checkpoint.sum,
    publishes: publish.count,
    publishSeconds: publish.sum,
  };
}

function addCounts(a: Counts, b: Counts): Counts {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof Counts)[]) out[k] += b[k];
  return out;
}

/**
 * A child process running one stage (`--stage-process route|streams`), configured through the
 * environment the parent passes. On SIGTERM it stops the worker gracefully and prints its CPU time and
 * metrics as one JSON line on stdout.
 */
async function stageProcess(stage: TriggerStages): Promise<void> {
  const brokers = process.env.KAFKA_BROKERS ?? '';
  const { config, pool, metrics, log } = await workerProcessParts({ bench: `split-${stage}` });
  const cpu0 = process.cpuUsage();
  const worker = await TriggerWorker.start({
    config,
    kafka: kafkaClient(brokers, config.settings.kafka.client_id),
    pool,
    log,
    metrics,
    stages: stage,
    maxWaitTimeInMs: MAX_WAIT_MS,
  });
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  const cpu = process.cpuUsage(cpu0);
  await worker.stop().catch((error: unknown) => log('warn', 'stop failed', { error: String(error) }));
  await pool.end().catch(() => undefined);
  process.stdout.write(
    `${JSON.stringify({ cpuSeconds: (cpu.user + cpu.system) / 1e6, counts: await counts(metrics) })}\n`,
  );
}

/** Starts a stage process; resolves to its final report once it has exited after SIGTERM. */
function startStage(
  stage: 'route' | 'streams',
  env: NodeJS.ProcessEnv,
): {
  child: ChildProcess;
  report: Promise<{ cpuSeconds: number; counts: Counts }>;
} {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL(import.meta.url).pathname, '--stage-process', stage],
    { env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  const report = new Promise<{ cpuSeconds: number; counts: Counts }>((resolve, reject) => {
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as { cpuSeconds: number; counts: Counts });
      } catch {
        reject(new BenchError(`the ${stage} stage process exited (${code}) without a report`));
      }
    });
  });
  return { child, report };
}

/**
 * One end-to-end run over `notifications` with its own database, internal topics and consumer groups.
 * With `profile`, the V8 sampling profiler records this process from the worker's start to done.
 */
async function endToEnd(
  s: { brokers: string; databaseUrl: string },
  adminPool: DatabasePool,
  admin: Admin,
  notifications: string,
  label: string,
  mode: 'in-process' | 'profiled' | 'split',
): Promise<EndToEndResult> {
  const profile = mode === 'profiled';
  const dbName = `bench_${label}_${runId.replaceAll('-', '_')}`;
  const clientId = `bench-${label}-${runId}`;
  const topics = {
    streamEvents: `bench-${label}-se-${runId}`,
    batches: `bench-${label}-b-${runId}`,
    deadLetter: `bench-${label}-dl-${runId}`,
  };
  await createDatabase(adminPool, dbName);
  let pool: DatabasePool | undefined;
  let worker: TriggerWorker | undefined;
  const children: ChildProcess[] = [];
  let session: Session | undefined;
  try {
    pool = await createPool(withDatabaseName(s.databaseUrl, dbName), {
      maximumPoolSize: 10,
      connectionTimeoutMs: 5000,
    });
    await upgrade(pool, await readMigrations(defaultMigrationsDir()));
    const configEnv: Record<string, string> = {
      // Settings to experiment with (e.g. WINCHESTER_TRIGGER_WORKER_CHECKPOINT_RECORDS); the names
      // below are the bench's own and win.
      ...tuning(),
      KAFKA_BROKERS: s.brokers,
      WINCHESTER_KAFKA_CLIENT_ID: clientId,
      WINCHESTER_KAFKA_TOPICS_NOTIFICATIONS: notifications,
      WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS: topics.streamEvents,
      WINCHESTER_KAFKA_TOPICS_BATCHES: topics.batches,
      WINCHESTER_KAFKA_TOPICS_DEAD_LETTER: topics.deadLetter,
      WINCHESTER_KAFKA_PARTITIONS: String(PARTITIONS),
      WINCHESTER_KAFKA_REPLICATION_FACTOR: '1',
      WINCHESTER_CLOCK_MODE: 'event',
    };
    const config = await loadConfig(CONFIG_FILE, { env: configEnv });
    const kafka = kafkaClient(s.brokers, clientId);
    const metrics: WinchesterMetrics = createMetrics();
    const log = createJsonLogger({
      level: process.env.BENCH_LOG === 'info' ? 'info' : 'warn',
      write: (line) => process.stderr.write(line),
      base: { bench: label },
    });
    const groups = triggerGroupIds(config.settings.kafka.client_id);
    const inputEnd = await highWatermarks(admin, notifications);

    if (profile) {
      session = new Session();
      session.connect();
      await post(session, 'Profiler.enable');
      await post(session, 'Profiler.setSamplingInterval', { interval: 500 });
      await post(session, 'Profiler.start');
    }
    let reports: Promise<{ cpuSeconds: number; counts: Counts }>[] = [];
    if (mode === 'split') {
      // Created here so the two processes do not race to create them.
      await createTopics(
        admin,
        [topics.streamEvents, topics.batches, topics.deadLetter].map((topic) => ({
          topic,
          numPartitions: PARTITIONS,
          replicationFactor: 1,
        })),
      );
    }
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    if (mode === 'split') {
      const env = { ...process.env, ...configEnv, DATABASE_URL: withDatabaseName(s.databaseUrl, dbName) };
      const stages = [startStage('streams', env), startStage('route', env)];
      for (const st of stages) children.push(st.child);
      reports = stages.map((st) => st.report);
    } else {
      worker = await TriggerWorker.start({ config, kafka, pool, log, metrics, maxWaitTimeInMs: MAX_WAIT_MS });
    }
    // Route progress: notifications received (in process), or offsets committed (stage processes).
    const routeProgress = async (): Promise<number> => {
      if (mode !== 'split') return metricSum(metrics.notificationsReceived);
      const committed = await admin.fetchOffsets({ groupId: groups.route, topics: [notifications] });
      return (committed[0]?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    };

    // Phase 1: until the route group has committed the end of every notifications partition.
    let first: bigint | undefined;
    let routed: bigint | undefined;
    const routedProgress: ProgressSample[] = [];
    const checkpointedProgress: ProgressSample[] = [];
    let lastCheckpointPoll = 0;
    /** Stream-event records checkpointed, all partitions. */
    const checkpointedRecords = async (): Promise<number> => {
      const rows = await pool?.any(
        sql.unsafe`SELECT partition, "offset" FROM partition_checkpoints WHERE topic = ${topics.streamEvents}`,
      );
      let sum = 0;
      for (const r of (rows ?? []) as readonly { offset: string | number | null }[])
        sum += Number(r.offset ?? 0);
      return sum;
    };
    let received = 0;
    let lastChange = Date.now();
    let lastReceived = -1;
    while (routed === undefined) {
      await sleep(first === undefined ? 20 : 100);
      received = await routeProgress();
      routedProgress.push({ atMs: Date.now(), done: received });
      if (Date.now() - lastCheckpointPoll >= 500) {
        lastCheckpointPoll = Date.now();
        checkpointedProgress.push({ atMs: lastCheckpointPoll, done: await checkpointedRecords() });
      }
      if (first === undefined && received > 0) first = process.hrtime.bigint();
      if (received !== lastReceived) {
        lastReceived = received;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > STALL_MS) {
        throw new BenchError(`${label}: the route stage made no progress for ${STALL_MS / 1000} s`);
      }
      if (received < N) continue;
      const committed = await admin.fetchOffsets({ groupId: groups.route, topics: [notifications] });
      const caughtUp = (committed[0]?.partitions ?? []).every(
        (p) => BigInt(p.offset) >= (inputEnd.get(p.partition) ?? 0n),
      );
      if (caughtUp && committed[0]?.partitions.length === inputEnd.size) routed = process.hrtime.bigint();
    }

    // Phase 2: until every stream-events partition is checkpointed up to where routing left it.
    // Ticks keep arriving after that; the target is the watermark at the end of routing.
    const target = await highWatermarks(admin, topics.streamEvents);
    let done: bigint | undefined;
    let lastBehind = -1n;
    lastChange = Date.now();
    while (done === undefined) {
      const rows = await pool.any(
        sql.unsafe`SELECT partition, "offset" FROM partition_checkpoints WHERE topic = ${topics.streamEvents}`,
      );
      const at = new Map<number, bigint>();
      for (const r of rows as readonly { partition: number; offset: string | number | null }[]) {
        at.set(r.partition, r.offset === null ? 0n : BigInt(r.offset));
      }
      let checkpointedSum = 0n;
      for (const o of at.values()) checkpointedSum += o;
      checkpointedProgress.push({ atMs: Date.now(), done: Number(checkpointedSum) });
      let behind = 0n;
      for (const [p, end] of target) {
        const o = at.get(p) ?? 0n;
        if (o < end) behind += end - o;
      }
      if (behind === 0n) {
        done = process.hrtime.bigint();
        break;
      }
      if (behind !== lastBehind) {
        lastBehind = behind;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > STALL_MS) {
        const where = [...target].map(([p, end]) => `${p}: ${at.get(p) ?? 'none'}/${end}`).join(', ');
        throw new BenchError(
          `${label}: checkpoints made no progress for ${STALL_MS / 1000} s (checkpointed/target per partition: ${where})`,
        );
      }
      await sleep(50);
    }
    const cpu = process.cpuUsage(cpu0);
    let cpuSeconds = (cpu.user + cpu.system) / 1e6;
    let c: Counts;
    if (mode === 'split') {
      for (const child of children) child.kill('SIGTERM');
      const done = await Promise.all(reports);
      c = addCounts(done[0]?.counts as Counts, done[1]?.counts as Counts);
      cpuSeconds = done.reduce((sum, r) => sum + r.cpuSeconds, 0);
    } else {
      c = await counts(metrics);
    }
    let summary: ProfileSummary | undefined;
    if (session !== undefined) {
      const { profile: p } = (await post(session, 'Profiler.stop')) as { profile: CpuProfile };
      mkdirSync(RESULTS_DIR, { recursive: true });
      const file = `${RESULTS_DIR}/e2e-${runId}.cpuprofile`;
      writeFileSync(file, JSON.stringify(p));
      summary = summarise(p, file);
      session.disconnect();
      session = undefined;
    }

    const start = first ?? t0;
    const steady = seconds(done - start);
    const total = seconds(done - t0);
    const result: EndToEndResult = {
      totalSeconds: total,
      steadySeconds: steady,
      routeSeconds: seconds(routed - start),
      perSecond: N / steady,
      perSecondWithStartup: N / total,
      routePerSecond: N / seconds(routed - start),
      cpuSeconds,
      streamEventRecords: c.streamEventRecords,
      streamEventRecordsPerSecond: c.streamEventRecords / steady,
      ticksSent: c.ticksSent,
      deadLettered: c.deadLettered,
      dropped: c.dropped,
      streamsOpened: c.streamsOpened,
      streamsFired: c.streamsFired,
      streamsExpired: c.streamsExpired,
      batchesPublished: c.batchesPublished,
      checkpoints: c.checkpoints,
      checkpointMeanMs: c.checkpoints === 0 ? 0 : (c.checkpointSeconds / c.checkpoints) * 1000,
      checkpointsPerSecond: c.checkpoints / steady,
      batchPublishMeanMs: c.publishes === 0 ? 0 : (c.publishSeconds / c.publishes) * 1000,
      progress: { routed: routedProgress, checkpointed: checkpointedProgress },
    };
    if (summary !== undefined) result.profile = summary;
    return result;
  } finally {
    if (session !== undefined) {
      await post(session, 'Profiler.stop').catch(() => undefined);
      session.disconnect();
    }
    await worker?.stop().catch(() => undefined);
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await pool?.end().catch(() => undefined);
    await dropDatabase(adminPool, dbName).catch(() => undefined);
    await admin.deleteTopics({ topics: Object.values(topics), timeout: 10000 }).catch(() => undefined);
  }
}

/** One inspector protocol call as a promise (node 20's typings lack node:inspector/promises). */
function post(session: Session, method: string, params?: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    session.post(method, params ?? {}, (error: Error | null, result?: unknown) =>
      error ? reject(error) : resolve(result),
    );
  });
}

// --- CPU profile summary -------------------------------------------------------------------------

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

interface ProfileSummary {
  file: string;
  sampledMs: number;
  /** Share of the profiled time this process was busy (not idle). */
  busyShare: number;
  areas: { area: string; ms: number; share: number }[];
  functions: { name: string; where: string; area: string; ms: number; share: number }[];
}

/** Which part of the system a profiled function belongs to. */
function areaOf(fn: string, url: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)') return 'V8/native (program)';
  if (url === '' && /^(parse|stringify)$/.test(fn)) return 'JSON encode/decode';
  if (url.includes('/node_modules/kafkajs/')) return 'kafkajs';
  if (/\/node_modules\/(pg|pg-[a-z-]+|slonik|@slonik\/[a-z-]+|postgres-[a-z-]+)\//.test(url))
    return 'pg/slonik';
  if (url.includes('/node_modules/prom-client/')) return 'prom-client';
  if (url.includes('/node_modules/')) return 'other dependencies';
  if (url.includes('/src/distill/')) return 'distill';
  if (url.includes('/src/triggers/')) return 'trigger match';
  if (url.includes('/src/engine/')) return 'engine';
  if (url.includes('/src/timex/')) return 'timex';
  if (url.includes('/src/model/')) return 'event model (JSON of events)';
  if (url.includes('/src/kafka/')) return 'src/kafka (records)';
  if (url.includes('/src/db/')) return 'src/db (checkpoint SQL)';
  if (url.includes('/src/worker/')) return 'worker glue';
  if (url.includes('/src/')) return 'other src';
  if (url.startsWith('node:') || url === '') return 'node internals';
  return 'other';
}

function summarise(p: CpuProfile, file: string): ProfileSummary {
  // Self time per node from the sample timeline (timeDeltas[i] is the time before sample i).
  const selfUs = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const next = deltas[i + 1] ?? 0;
    const id = samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, next));
  }
  // tsx compiles each TypeScript module onto one line, so positions there say little and closures
  // (parseJsonLossless' inner parsers, say) are anonymous: name them after their enclosing function.
  const parent = new Map<number, CpuProfileNode>();
  for (const node of p.nodes) for (const c of node.children ?? []) parent.set(c, node);
  const nameOf = (node: CpuProfileNode): string => {
    if (node.callFrame.functionName !== '') return node.callFrame.functionName;
    for (let up = parent.get(node.id); up !== undefined; up = parent.get(up.id)) {
      if (up.callFrame.url !== node.callFrame.url) break;
      if (up.callFrame.functionName !== '') return `(closure in ${up.callFrame.functionName})`;
    }
    return '(anonymous)';
  };
  const byFunction = new Map<string, { name: string; where: string; area: string; us: number }>();
  const byArea = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const node of p.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const { url, lineNumber, columnNumber } = node.callFrame;
    const name = nameOf(node);
    const area = areaOf(name, url);
    totalUs += us;
    if (area === 'idle') {
      idleUs += us;
      continue;
    }
    const file = url.replace(/^file:\/\//, '').replace(ROOT, '');
    const where =
      url === ''
        ? '(native)'
        : lineNumber === 0 && file.endsWith('.ts')
          ? `${file} (col ${columnNumber + 1})`
          : `${file}:${lineNumber + 1}`;
    const key = `${name}@${where}`;
    const f = byFunction.get(key) ?? { name, where, area, us: 0 };
    f.us += us;
    byFunction.set(key, f);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const share = (us: number) => (busyUs === 0 ? 0 : us / busyUs);
  return {
    file: file.replace(ROOT, ''),
    sampledMs: totalUs / 1000,
    busyShare: totalUs === 0 ? 0 : busyUs / totalUs,
    areas: [...byArea]
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, ms: us / 1000, share: share(us) })),
    functions: [...byFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, 15)
      .map((f) => ({ name: f.name, where: f.where, area: f.area, ms: f.us / 1000, share: share(f.us) })),
  };
}

// --- output --------------------------------------------------------------------------------------

function printProfile(p: ProfileSummary): void {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  say(
    `\nwhere the time goes (this process, profiled run: ${fmtInt(p.sampledMs)} ms sampled, busy ${pct(p.busyShare)}; shares of busy time)`,
  );
  say(
    table(
      ['area', 'self ms', 'share'],
      p.areas.map((a) => [a.area, fmtInt(a.ms), pct(a.share)]),
      new Set([1, 2]),
    ),
  );
  say('\ntop 10 functions by self time');
  say(
    table(
      ['function', 'where', 'area', 'self ms', 'share'],
      p.functions.slice(0, 10).map((f) => [f.name, f.where, f.area, fmtInt(f.ms), pct(f.share)]),
      new Set([3, 4]),
    ),
  );
  say(`(full profile: ${p.file}; open it in Chrome DevTools → Performance)`);
}

async function main(): Promise<void> {
  if (flag('all') || process.argv.includes('--only')) {
    // The suite: every benchmark (or the ones named), each in its own process; see bench/suite.ts.
    await runSuite(process.argv.slice(2));
    return;
  }
  const stageAt = process.argv.indexOf('--stage-process');
  if (stageAt >= 0) {
    const stage = process.argv[stageAt + 1];
    if (stage !== 'route' && stage !== 'streams')
      throw new BenchError('--stage-process needs route or streams');
    await stageProcess(stage);
    return;
  }
  const saved = process.argv.indexOf('--summarise');
  if (saved >= 0) {
    // Re-reads a profile an earlier run saved (the summary rules may have changed since).
    const file = process.argv[saved + 1];
    if (file === undefined) throw new BenchError('--summarise needs a .cpuprofile file');
    printProfile(summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, file));
    return;
  }
  const s = services();
  const kafka = kafkaClient(s.brokers, `bench-admin-${runId}`);
  const admin = kafka.admin();
  const adminPool = await checkServices(admin, s.databaseUrl);
  const notifications = `bench-notifications-${runId}`;
  try {
    say(
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} (the broker and PostgreSQL run on the same machine)`,
    );
    const tg = process.hrtime.bigint();
    const w = buildWorkload();
    say(
      `workload: ${fmtInt(N)} notigen notifications (seed ${SEED}, ${fmtInt(w.instances)} instances × ${w.days} days, ${fmtInt(w.bytes / N)} B mean, ${fmtInt(w.bytes / 1e6)} MB), ${PARTITIONS} partitions; generated in ${seconds(process.hrtime.bigint() - tg).toFixed(1)} s`,
    );

    const tuned = Object.entries(tuning());
    if (tuned.length > 0)
      say(`settings from the environment: ${tuned.map(([k, v]) => `${k}=${v}`).join(' ')}`);
    const produced = await produce(s.brokers, notifications, w);
    say(
      `produced: ${fmtInt(produced.perSecond)} notifications/s (${produced.megabytesPerSecond.toFixed(1)} MB/s)`,
    );
    // The workload's buffers are no longer needed; let the consumers have the memory.
    w.values.length = 0;

    const raw = await rawConsume(kafka, notifications);
    say(`raw consume: ${fmtInt(raw.perSecond)} notifications/s`);
    const e2e = await endToEnd(s, adminPool, admin, notifications, 'e2e', 'in-process');
    say(`end to end: ${fmtInt(e2e.perSecond)} notifications/s`);
    const profiled = PROFILE
      ? await endToEnd(s, adminPool, admin, notifications, 'prof', 'profiled')
      : undefined;
    const split = SPLIT ? await endToEnd(s, adminPool, admin, notifications, 'split', 'split') : undefined;
    if (split !== undefined) say(`end to end, two processes: ${fmtInt(split.perSecond)} notifications/s`);

    const ratio = e2e.perSecond / raw.perSecond;
    const rows: string[][] = [
      [
        'produce (idempotent, acks all)',
        fmtInt(produced.perSecond),
        '',
        `${produced.seconds.toFixed(2)} s`,
        `${produced.megabytesPerSecond.toFixed(1)} MB/s`,
      ],
      [
        'raw kafkajs consume + JSON.parse',
        fmtInt(raw.perSecond),
        fmtInt(raw.perSecondWithStartup),
        `${raw.steadySeconds.toFixed(2)} s`,
        `CPU ${raw.cpuSeconds.toFixed(1)} s`,
      ],
      [
        'route stage (to committed end of input)',
        fmtInt(e2e.routePerSecond),
        '',
        `${e2e.routeSeconds.toFixed(2)} s`,
        `${fmtInt(e2e.streamEventRecords)} stream-event records`,
      ],
      [
        'end to end (route → streams → checkpoint)',
        fmtInt(e2e.perSecond),
        fmtInt(e2e.perSecondWithStartup),
        `${e2e.steadySeconds.toFixed(2)} s`,
        `CPU ${e2e.cpuSeconds.toFixed(1)} s`,
      ],
    ];
    if (profiled !== undefined) {
      rows.push([
        'end to end, under the profiler',
        fmtInt(profiled.perSecond),
        fmtInt(profiled.perSecondWithStartup),
        `${profiled.steadySeconds.toFixed(2)} s`,
        'sampling every 0.5 ms',
      ]);
    }
    if (split !== undefined) {
      rows.push([
        'end to end, route and streams in two processes',
        fmtInt(split.perSecond),
        fmtInt(split.perSecondWithStartup),
        `${split.steadySeconds.toFixed(2)} s`,
        `CPU ${split.cpuSeconds.toFixed(1)} s; route done at ${split.routeSeconds.toFixed(1)} s; ${fmtInt(split.checkpoints)} checkpoints, mean ${split.checkpointMeanMs.toFixed(0)} ms`,
      ]);
    }
    say('');
    say(table(['measure', 'notifications/s', 'incl. start-up', 'time', 'note'], rows, new Set([1, 2, 3])));
    say('');
    say(
      `end to end / raw: ${(ratio * 100).toFixed(0)}% (target ≥ 50%); ${fmtInt(e2e.perSecond)} notifications/s (target ≥ 20,000)`,
    );
    say(
      `stream-events: ${fmtInt(e2e.streamEventRecordsPerSecond)} records/s; ticks ${fmtInt(e2e.ticksSent)}; dropped (no trigger) ${fmtInt(e2e.dropped)}; dead-lettered ${fmtInt(e2e.deadLettered)}`,
    );
    say(
      `streams: ${fmtInt(e2e.streamsOpened)} opened, ${fmtInt(e2e.streamsFired)} fired, ${fmtInt(e2e.streamsExpired)} expired; batches published ${fmtInt(e2e.batchesPublished)} (mean publish ${e2e.batchPublishMeanMs.toFixed(1)} ms)`,
    );
    say(
      `checkpoints: ${fmtInt(e2e.checkpoints)} (${e2e.checkpointsPerSecond.toFixed(1)}/s), mean ${e2e.checkpointMeanMs.toFixed(1)} ms each`,
    );
    if (profiled?.profile !== undefined) printProfile(profiled.profile);

    mkdirSync(RESULTS_DIR, { recursive: true });
    const out = `${RESULTS_DIR}/e2e-${new Date()
      .toISOString()
      .replaceAll(':', '-')
      .replace(/\.\d+Z$/, 'Z')}.json`;
    writeFileSync(
      out,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          machine: {
            cpus: cpus().length,
            model: cpus()[0]?.model,
            node: process.version,
            loadavg: loadavg(),
          },
          workload: {
            notifications: N,
            partitions: PARTITIONS,
            seed: SEED,
            instances: w.instances,
            days: w.days,
            bytes: w.bytes,
          },
          settings: tuning(),
          produce: produced,
          raw,
          endToEnd: e2e,
          ratio,
          ...(profiled === undefined ? {} : { profiled }),
          ...(split === undefined ? {} : { split }),
        },
        null,
        2,
      )}\n`,
    );
    // Throughput over time, 2 s windows, beside the JSON (a self-contained SVG; open it in a browser).
    const series = (samples: ProgressSample[]) =>
      throughputSeries(samples, 2000).map((p) => ({ t: p.startMs / 1000, v: p.perSecond }));
    const svg = out.replace(/\.json$/, '.svg');
    writeFileSync(
      svg,
      throughputSvg(
        `${fmtInt(N)} notifications, ${PARTITIONS} partitions (${new Date().toISOString().slice(0, 16)}Z)`,
        [
          { label: 'raw consume + JSON.parse', color: '#999999', points: series(raw.progress) },
          { label: 'route: notifications received', color: '#1f77b4', points: series(e2e.progress.routed) },
          {
            label: 'streams: records checkpointed',
            color: '#d62728',
            points: series(e2e.progress.checkpointed),
          },
        ],
      ),
    );
    say(`plot: ${svg.replace(ROOT, '')}`);
    say(`\nresults: ${out.replace(ROOT, '')}`);
  } finally {
    await admin.deleteTopics({ topics: [notifications], timeout: 10000 }).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await adminPool.end().catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(
      `bench: ${err instanceof BenchError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
