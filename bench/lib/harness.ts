/**
 * What the Kafka/PostgreSQL benchmarks share: the services, a run's own database and topics, trigger
 * workers in child processes (bench/worker-child.ts) with their IPC, producing notifications, and
 * waiting for the streams stage's checkpoints (partition_checkpoints) to reach a target.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/index.js';
import { createDatabase, dropDatabase, withDatabaseName } from '../../src/db/databases.js';
import { defaultMigrationsDir, readMigrations, upgrade } from '../../src/db/migrate.js';
import { createPool, type DatabasePool, sql } from '../../src/db/pool.js';
import { createKafka } from '../../src/kafka/kafka.js';
import { judgeLine } from '../../src/kafka/notification-key.js';
import {
  type NotificationProducer,
  openNotificationProducer,
} from '../../src/kafka/notification-producer.js';
import type { Admin, Kafka } from '../../src/kafka/types.js';
import { createJsonLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import type { ChildMessage, ParentMessage } from '../worker-child.js';
import { resultsFileName, resultsJson } from './output.js';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const RESULTS_DIR = `${ROOT}bench/results`;

/** A failure with a message for the operator, printed without a stack. */
export class BenchError extends Error {}

export const say = (line: string) => process.stdout.write(`${line}\n`);

/** `--name` present. */
export function flag(argv: readonly string[], name: string): boolean {
  return argv.includes(`--${name}`);
}

/** `--name <positive number>`, or the fallback. */
export function numberArg(argv: readonly string[], name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(argv[i + 1]);
  if (!Number.isFinite(n) || n <= 0) throw new BenchError(`--${name} needs a positive number`);
  return n;
}

/** `--name <positive integer>`, or the fallback. */
export function integerArg(argv: readonly string[], name: string, fallback: number): number {
  const n = numberArg(argv, name, fallback);
  if (!Number.isInteger(n)) throw new BenchError(`--${name} needs a positive integer`);
  return n;
}

/** KAFKA_BROKERS and DATABASE_URL from the environment, else from .infra/env. */
export function services(): { brokers: string; databaseUrl: string } {
  const env: Record<string, string | undefined> = { ...process.env };
  const file = `${ROOT}.infra/env`;
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
      if (m?.[1] !== undefined && env[m[1]] === undefined) env[m[1]] = m[2];
    }
  }
  if (env.KAFKA_BROKERS === undefined || env.DATABASE_URL === undefined) {
    throw new BenchError(
      'KAFKA_BROKERS and DATABASE_URL are not set and .infra/env does not exist: run npm run infra:up',
    );
  }
  return { brokers: env.KAFKA_BROKERS, databaseUrl: env.DATABASE_URL };
}

export function kafkaClient(brokers: string, clientId: string): Kafka {
  return createKafka({
    brokers,
    clientId,
    logLevel: 'nothing',
    connectionTimeoutMs: 3000,
    requestTimeoutMs: 30000,
    retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 3000 },
  });
}

/**
 * Connects the admin and opens a one-connection pool on `databaseUrl` (for creating and dropping
 * databases), checking both services answer, with the fix in the message when one does not.
 */
export async function checkServices(admin: Admin, databaseUrl: string): Promise<DatabasePool> {
  try {
    await Promise.race([
      admin.connect(),
      sleep(8000).then(() => Promise.reject(new Error('no answer within 8 s'))),
    ]);
  } catch (error) {
    throw new BenchError(
      `Kafka is not reachable (${(error as Error).message}): run npm run infra:up (or set KAFKA_BROKERS)`,
    );
  }
  let pool: DatabasePool | undefined;
  try {
    pool = await createPool(databaseUrl, {
      maximumPoolSize: 1,
      connectionTimeoutMs: 3000,
      connectionRetryLimit: 1,
    });
    await pool.query(sql.unsafe`SELECT 1`);
  } catch (error) {
    await pool?.end().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    throw new BenchError(
      `PostgreSQL is not reachable (${(error as Error).message}): run npm run infra:up (or set DATABASE_URL)`,
    );
  }
  return pool;
}

/** The machine, as the results record it. */
export function machine() {
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadavg: loadavg(),
  };
}

export function machineLine(): string {
  const m = machine();
  return `machine: ${m.cpus} × ${m.model}, ${m.memoryGb} GB, node ${m.node}, load average ${m.loadavg.map((l) => l.toFixed(2)).join(' ')} (the broker and PostgreSQL run on the same machine)`;
}

/** Writes a results object to bench/results/<kind>-<time>.json; returns the path relative to the repo. */
export function writeResults(kind: string, value: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}/${resultsFileName(kind, new Date())}`;
  writeFileSync(file, resultsJson(value));
  return file.replace(ROOT, '');
}

/** One benchmark run's own database, topics and worker environment; `close()` removes them. */
export interface BenchRun {
  readonly id: string;
  readonly brokers: string;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly pool: DatabasePool;
  readonly topics: { notifications: string; streamEvents: string; batches: string; deadLetter: string };
  readonly clientId: string;
  /** The environment of this run's worker processes (WINCHESTER_* settings, services). */
  readonly env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/**
 * Creates a database (migrated) and topic names for one run; `settings` are WINCHESTER_* overrides of
 * the worker's configuration (e.g. the clock mode), on top of any WINCHESTER_* in this environment.
 */
export async function openRun(
  label: string,
  partitions: number,
  settings: Record<string, string>,
): Promise<BenchRun> {
  const s = services();
  const id = `${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const kafka = kafkaClient(s.brokers, `bench-${id}`);
  const admin = kafka.admin();
  const adminPool = await checkServices(admin, s.databaseUrl);
  const dbName = `bench_${id.replaceAll('-', '_')}`;
  await createDatabase(adminPool, dbName);
  const url = withDatabaseName(s.databaseUrl, dbName);
  const pool = await createPool(url, { maximumPoolSize: 4, connectionTimeoutMs: 5000 });
  await upgrade(pool, await readMigrations(defaultMigrationsDir()));
  const topics = {
    notifications: `bench-${id}-n`,
    streamEvents: `bench-${id}-se`,
    batches: `bench-${id}-b`,
    deadLetter: `bench-${id}-dl`,
  };
  const clientId = `bench-${id}`;
  const tuned: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (k.startsWith('WINCHESTER_') && v !== undefined) tuned[k] = v;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...tuned,
    ...settings,
    KAFKA_BROKERS: s.brokers,
    DATABASE_URL: url,
    WINCHESTER_KAFKA_CLIENT_ID: clientId,
    WINCHESTER_KAFKA_TOPICS_NOTIFICATIONS: topics.notifications,
    WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS: topics.streamEvents,
    WINCHESTER_KAFKA_TOPICS_BATCHES: topics.batches,
    WINCHESTER_KAFKA_TOPICS_DEAD_LETTER: topics.deadLetter,
    WINCHESTER_KAFKA_PARTITIONS: String(partitions),
    WINCHESTER_KAFKA_REPLICATION_FACTOR: '1',
    WINCHESTER_METRICS_PORT: '0',
  };
  await admin.createTopics({
    topics: Object.values(topics).map((topic) => ({
      topic,
      numPartitions: partitions,
      replicationFactor: 1,
    })),
    waitForLeaders: true,
  });
  return {
    id,
    brokers: s.brokers,
    kafka,
    admin,
    pool,
    topics,
    clientId,
    env,
    async close() {
      await pool.end().catch(() => undefined);
      await dropDatabase(adminPool, dbName).catch(() => undefined);
      await adminPool.end().catch(() => undefined);
      await admin.deleteTopics({ topics: Object.values(topics), timeout: 10000 }).catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    },
  };
}

/**
 * What a bench worker process opens from the environment its parent passed: the configuration
 * (etc/winchester.yaml with WINCHESTER_* variables), a pool on DATABASE_URL, its own metrics, and a JSON
 * logger on stderr (warn and above; info with BENCH_LOG=info) with `base` on every line.
 */
export async function workerProcessParts(base: Record<string, unknown>) {
  const env = process.env;
  const config = await loadConfig(`${ROOT}etc/winchester.yaml`, { env });
  const pool = await createPool(env.DATABASE_URL ?? '', { maximumPoolSize: 10, connectionTimeoutMs: 5000 });
  const metrics = createMetrics();
  const log = createJsonLogger({
    level: env.BENCH_LOG === 'info' ? 'info' : 'warn',
    write: (line) => process.stderr.write(line),
    base,
  });
  return { config, pool, metrics, log };
}

/** A trigger worker process (bench/worker-child.ts) and what it has reported. */
export class WorkerProcess {
  readonly events: ChildMessage[] = [];
  private waiters: { match: (m: ChildMessage) => boolean; resolve: (m: ChildMessage) => void }[] = [];
  readonly exited: Promise<number | null>;
  exitedAt: number | undefined;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.on('message', (m: ChildMessage) => {
      this.events.push(m);
      const w = this.waiters.find((x) => x.match(m));
      if (w !== undefined) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(m);
      }
    });
    this.exited = new Promise((resolve) =>
      child.on('exit', (code) => {
        this.exitedAt = Date.now();
        resolve(code);
      }),
    );
  }

  /** Starts a worker running `stages` with `env`; resolves once it has started (`ready`). */
  static async start(
    name: string,
    stages: 'all' | 'route' | 'streams',
    env: NodeJS.ProcessEnv,
    heapMb = 8192,
  ): Promise<WorkerProcess> {
    const child = fork(new URL('../worker-child.ts', import.meta.url).pathname, [stages], {
      execArgv: ['--import', 'tsx', '--expose-gc', `--max-old-space-size=${heapMb}`],
      env: { ...env, BENCH_LABEL: name },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const w = new WorkerProcess(name, child);
    const first = await Promise.race([
      w.next((m) => m.type === 'ready' || m.type === 'error', 120_000),
      w.exited.then(
        (code) => ({ type: 'error', at: Date.now(), message: `exited with ${code}` }) as ChildMessage,
      ),
    ]);
    if (first.type === 'error') throw new BenchError(`worker ${name} did not start: ${first.message}`);
    return w;
  }

  /** The next message matching `match` (from now on), or a BenchError after `timeoutMs`. */
  next(match: (m: ChildMessage) => boolean, timeoutMs = 60_000): Promise<ChildMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new BenchError(`worker ${this.name}: no answer within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      this.waiters.push({
        match,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  private ask<T extends ChildMessage['type']>(
    m: ParentMessage,
    type: T,
    timeoutMs: number,
  ): Promise<Extract<ChildMessage, { type: T }>> {
    const answer = this.next((x) => x.type === type || x.type === 'error', timeoutMs);
    this.child.send(m);
    return answer.then((x) => {
      if (x.type === 'error') throw new BenchError(`worker ${this.name}: ${x.message}`);
      return x as Extract<ChildMessage, { type: T }>;
    });
  }

  /** Its Prometheus text exposition. */
  async metrics(): Promise<string> {
    return (await this.ask({ cmd: 'metrics' }, 'metrics', 30_000)).text;
  }

  /** Its heap after a full GC (and a heap snapshot summary with `snapshot`). */
  heap(snapshot = false): Promise<Extract<ChildMessage, { type: 'heap' }>> {
    return this.ask({ cmd: 'heap', snapshot }, 'heap', snapshot ? 900_000 : 120_000);
  }

  /** The partitions it was last assigned in `group`. */
  partitions(group: string): number[] {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i] as ChildMessage;
      if (e.type === 'join' && e.group === group) return e.partitions;
    }
    return [];
  }

  /** SIGTERM (graceful) and wait for the exit. */
  async terminate(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}

/** A notification of a compute instance's update: small, one stream per instance (StackTach trigger). */
export function instanceUpdate(instanceId: string, tenant: string, at: Date): string {
  const ts = at.toISOString().replace('T', ' ').replace('Z', '000');
  return JSON.stringify({
    event_type: 'compute.instance.update',
    message_id: randomUUID(),
    timestamp: ts,
    publisher_id: 'compute.bench-host',
    priority: 'INFO',
    payload: {
      instance_id: instanceId,
      tenant_id: tenant,
      state: 'active',
      old_state: 'building',
      instance_type: 'm1.small',
    },
  });
}

/** The run's idempotent notification producer (as `winchester produce` opens it) for its notifications topic. */
export function openBenchProducer(run: BenchRun, partitions: number): Promise<NotificationProducer> {
  return openNotificationProducer({
    brokers: run.brokers,
    clientId: `${run.clientId}-produce`,
    topic: run.topics.notifications,
    createTopic: false,
    partitions,
    replicationFactor: 1,
    batchSize: 500,
    timeoutMs: 60_000,
  });
}

/**
 * Produces `count` notifications made by `make(i)` (keyed as `winchester produce` keys them) with the
 * idempotent notification producer; `onProgress` sees the count produced so far. Returns seconds taken.
 */
export async function produceNotifications(
  run: BenchRun,
  count: number,
  make: (i: number) => string,
  partitions: number,
  onProgress?: (n: number) => void,
): Promise<number> {
  const producer = await openBenchProducer(run, partitions);
  const t0 = Date.now();
  try {
    for (let i = 0; i < count; i++) {
      const text = make(i);
      const verdict = judgeLine(text);
      if (!verdict.ok) throw new Error(`unkeyable bench notification: ${verdict.detail}`);
      const wait = producer.add(verdict.key, text);
      if (wait !== undefined) await wait;
      if (onProgress !== undefined && (i & 4095) === 0) onProgress(i);
    }
    await producer.flush();
  } finally {
    await producer.close();
  }
  return (Date.now() - t0) / 1000;
}

/** High watermark of every partition of `topic`. */
export async function highWatermarks(admin: Admin, topic: string): Promise<Map<number, bigint>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
}

/** The checkpointed offset of every stream-events partition (absent: never checkpointed). */
export async function checkpointOffsets(pool: DatabasePool, topic: string): Promise<Map<number, bigint>> {
  const rows = await pool.any(
    sql.unsafe`SELECT partition, "offset" FROM partition_checkpoints WHERE topic = ${topic}`,
  );
  const at = new Map<number, bigint>();
  for (const r of rows as readonly { partition: number; offset: string | number | null }[]) {
    at.set(r.partition, r.offset === null ? 0n : BigInt(r.offset));
  }
  return at;
}

/**
 * Waits until the route group has committed the end of the notifications topic and every
 * stream-events partition is checkpointed up to its high watermark as it stood then. Fails when
 * nothing moved for `stallMs`. `onPoll` sees the records still behind, each poll.
 */
export async function waitAllCheckpointed(
  run: BenchRun,
  stallMs: number,
  onPoll?: (behind: bigint) => void,
): Promise<void> {
  const groupRoute = `${run.clientId}.route`;
  const inputEnd = await highWatermarks(run.admin, run.topics.notifications);
  let last = -1n;
  let lastChange = Date.now();
  const stalled = (v: bigint, what: string) => {
    if (v !== last) {
      last = v;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > stallMs) {
      throw new BenchError(`${what} made no progress for ${stallMs / 1000} s (${v} behind)`);
    }
  };
  for (;;) {
    const committed = await run.admin.fetchOffsets({
      groupId: groupRoute,
      topics: [run.topics.notifications],
    });
    let behind = 0n;
    for (const [p, end] of inputEnd) {
      const c = committed[0]?.partitions.find((x) => x.partition === p);
      const o = c === undefined || Number(c.offset) < 0 ? 0n : BigInt(c.offset);
      if (o < end) behind += end - o;
    }
    onPoll?.(behind);
    if (behind === 0n) break;
    stalled(behind, 'the route stage');
    await sleep(250);
  }
  const target = await highWatermarks(run.admin, run.topics.streamEvents);
  last = -1n;
  lastChange = Date.now();
  for (;;) {
    const at = await checkpointOffsets(run.pool, run.topics.streamEvents);
    let behind = 0n;
    for (const [p, end] of target) {
      const o = at.get(p) ?? 0n;
      if (o < end) behind += end - o;
    }
    onPoll?.(behind);
    if (behind === 0n) return;
    stalled(behind, 'the streams stage checkpoints');
    await sleep(250);
  }
}

/**
 * Opens `count` streams of the StackTach trigger that stay open (one compute.instance.update per new
 * instance, stamped now, over 997 tenants: the streams expire in 2 days) and waits until everything is
 * checkpointed (see {@link waitAllCheckpointed}). Returns the seconds the produce took and the seconds
 * until all was checkpointed, both from the first produce.
 */
export async function openStreams(
  run: BenchRun,
  count: number,
  partitions: number,
  stallMs: number,
  onPoll?: (behind: bigint) => void,
): Promise<{ produceSeconds: number; loadSeconds: number }> {
  const t0 = Date.now();
  const produceSeconds = await produceNotifications(
    run,
    count,
    (i) => instanceUpdate(randomUUID(), `tenant-${i % 997}`, new Date()),
    partitions,
  );
  await waitAllCheckpointed(run, stallMs, onPoll);
  return { produceSeconds, loadSeconds: (Date.now() - t0) / 1000 };
}

/**
 * Runs a benchmark when its module is the process's entry (`node --import tsx bench/<kind>.ts …`): its
 * result is written to bench/results/<kind>-<time>.json under `kind`, beside the date and the machine;
 * exit 0, or exit 1 with the error (a BenchError's message without a stack).
 */
export function runAsMain<T>(
  moduleUrl: string,
  kind: string,
  bench: (argv: readonly string[]) => Promise<T>,
): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  bench(process.argv.slice(2)).then(
    (result) => {
      say(
        `\nresults: ${writeResults(kind, { date: new Date().toISOString(), machine: machine(), [kind]: result })}`,
      );
      process.exit(0);
    },
    (err) => {
      process.stderr.write(
        `bench: ${err instanceof BenchError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(1);
    },
  );
}
