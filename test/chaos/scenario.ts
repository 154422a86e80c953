/**
 * The chaos scenario (issue #7, item 2), on a private Kafka broker and PostgreSQL server:
 *
 *   over a large notigen workload with duplicates, run 3 trigger workers and 3 pipeline workers; while
 *   the input flows, repeatedly SIGKILL trigger workers and pipeline workers (some pipeline workers right
 *   after a handler's commit(), before the batch is recorded complete), restart the Kafka broker once and
 *   PostgreSQL once; then drain (`winchester produce --advance-clock`) and check that the batches equal
 *   `winchester replay` of the same input, that every batch's effect happened exactly once (and every
 *   repeated commit() is the documented crash window), and that no event was lost or counted twice.
 *
 * {@link runChaos} returns the figures and the problems found; it never leaves a service or a worker
 * running, whatever happens.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createPool, sql } from '../../src/db/pool.js';
import { createTopics } from '../../src/kafka/admin.js';
import { CONSUMER_RESTARTING } from '../../src/kafka/consumer-restart.js';
import { createKafka } from '../../src/kafka/kafka.js';
import { Prng } from '../../src/notigen/index.js';
import { runCli } from '../helpers/cli.js';
import { type PostgresStop, PrivateInfra } from './infra.js';
import {
  differences,
  readDatabase,
  readLogs,
  readPublished,
  readRecorded,
  repeatedCommits,
  replayExpectations,
  topicRecords,
} from './verify.js';
import { WorkerFleet } from './workers.js';
import { makeWorkload, slicesOf, writeLines } from './workload.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Far beyond any workload's last event: every stream has fired or expired by then. */
const FLUSH_AT = '2030-01-01T00:00:00Z';
const TOPICS = {
  notifications: 'chaos.notifications',
  streamEvents: 'chaos.stream-events',
  batches: 'chaos.batches',
  deadLetter: 'chaos.dead-letter',
};

/** Everything a run can be told; {@link FULL} and {@link SHORT} are the two presets. */
export interface ChaosOptions {
  readonly instances: number;
  readonly days: number;
  readonly seed: number;
  /** Chance a notification is redelivered right behind itself / sent again a few notifications later. */
  readonly redeliveries: number;
  readonly resends: number;
  readonly triggerWorkers: number;
  readonly pipelineWorkers: number;
  /** Partitions of the stream-events and batches topics (the notifications topic has one: one order). */
  readonly partitions: number;
  /** The input is produced in this many slices, `paceMs` apart; the chaos happens between slices. */
  readonly slices: number;
  readonly paceMs: number;
  readonly triggerKills: number;
  readonly pipelineKills: number;
  /** Pipeline workers made to die right after a commit(), before the completion record. */
  readonly commitWindowKills: number;
  readonly kafkaRestarts: number;
  readonly postgresRestarts: number;
  /** How long a restarted service stays down. */
  readonly downMs: number;
  readonly postgresStop: PostgresStop;
  /** Consumer session timeout of both kinds of worker (how soon a killed worker's partitions move). */
  readonly sessionTimeoutS: number;
  /** The drain fails when no batch completes for this long. */
  readonly stallMs: number;
  /** Keep the work directory (logs, input, effects) instead of deleting it. */
  readonly keep: boolean;
  readonly log: (line: string) => void;
}

/** `npm run test:chaos`: ~60k notifications (~2,000 batches), many kills. */
export const FULL: Omit<ChaosOptions, 'log'> = {
  instances: 330,
  days: 7,
  seed: 7,
  redeliveries: 0.02,
  resends: 0.03,
  triggerWorkers: 3,
  pipelineWorkers: 3,
  partitions: 6,
  slices: 30,
  paceMs: 1000,
  triggerKills: 8,
  pipelineKills: 8,
  commitWindowKills: 4,
  kafkaRestarts: 1,
  postgresRestarts: 1,
  downMs: 3000,
  postgresStop: 'immediate',
  sessionTimeoutS: 6,
  stallMs: 120_000,
  keep: false,
};

/** The CI version (test/integration/chaos.test.ts): small, but every kind of fault once. */
export const SHORT: Omit<ChaosOptions, 'log'> = {
  ...FULL,
  instances: 40,
  days: 3,
  slices: 6,
  paceMs: 500,
  triggerKills: 1,
  pipelineKills: 1,
  commitWindowKills: 1,
  downMs: 1000,
  stallMs: 60_000,
};

/** The figures of a run and the problems found (none: the run passed). */
export interface ChaosReport {
  readonly problems: string[];
  readonly figures: Record<string, number | string>;
  readonly workDir: string;
}

type Action =
  | 'kill trigger worker'
  | 'kill pipeline worker'
  | 'kill pipeline worker in commit window'
  | 'restart Kafka'
  | 'restart PostgreSQL';

/**
 * Spreads `count` of each action evenly over the slices (the k-th after slice ⌊(k + phase)·slices/count⌋);
 * each action has its own phase so that different faults land after different slices.
 */
function schedule(slices: number, plan: [Action, number, number][]): Action[][] {
  const at: Action[][] = Array.from({ length: slices }, () => []);
  for (const [action, count, phase] of plan) {
    for (let k = 0; k < count; k++)
      at[Math.min(slices - 1, Math.floor(((k + phase) * slices) / count))]?.push(action);
  }
  return at;
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const phase = new Map<string, number>();
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await work();
    } finally {
      phase.set(name, (phase.get(name) ?? 0) + Date.now() - t0);
    }
  };
  const problems: string[] = [];
  const workDir = mkdtempSync(join(tmpdir(), 'winchester-chaos-'));
  const configDir = join(workDir, 'config');
  const recorderDir = join(workDir, 'recorder');
  mkdirSync(configDir);
  mkdirSync(recorderDir);
  writeConfig(configDir, recorderDir);

  // The workload; what replay says must come of it is worked out first (a bad workload fails fast).
  const workload = makeWorkload(o);
  const inputFile = join(workDir, 'input.jsonl');
  writeLines(inputFile, workload.lines);
  const settings = {
    WINCHESTER_KAFKA_CLIENT_ID: 'chaos',
    WINCHESTER_KAFKA_TOPICS_NOTIFICATIONS: TOPICS.notifications,
    WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS: TOPICS.streamEvents,
    WINCHESTER_KAFKA_TOPICS_BATCHES: TOPICS.batches,
    WINCHESTER_KAFKA_TOPICS_DEAD_LETTER: TOPICS.deadLetter,
    WINCHESTER_KAFKA_PARTITIONS: String(o.partitions),
    WINCHESTER_CLOCK_MODE: 'event',
    WINCHESTER_DUPLICATE_WINDOW: '86400',
    WINCHESTER_TRIGGER_WORKER_SESSION_TIMEOUT: String(o.sessionTimeoutS),
    WINCHESTER_PIPELINE_WORKER_SESSION_TIMEOUT: String(o.sessionTimeoutS),
    WINCHESTER_PIPELINE_WORKER_RETRY_BACKOFF: '0.2',
    WINCHESTER_PIPELINE_WORKER_RETRY_BACKOFF_MAX: '2',
    WINCHESTER_METRICS_PORT: '0',
    WINCHESTER_METRICS_HOST: '127.0.0.1',
  };
  o.log(
    `workload: ${workload.lines.length} notifications (${workload.redelivered} redelivered, ${workload.resent} resent) in ${workDir}`,
  );

  let infra: PrivateInfra | undefined;
  let fleet: WorkerFleet | undefined;
  // If the process ends before the `finally` below (a test timeout, Ctrl-C), no worker may outlive it.
  const killWorkers = () => fleet?.killAll();
  const random = new Prng(o.seed, 11);
  const figures: Record<string, number | string> = {};
  try {
    const expected = await timed('replay', () =>
      replayExpectations(join(configDir, 'replay.yaml'), inputFile, FLUSH_AT, settings),
    );
    o.log(`replay: ${expected.length} batches expected`);
    infra = await timed('infra start', () => PrivateInfra.start(o.log));
    const services = infra;
    o.log(
      `private Kafka ${services.kafkaBrokers}, PostgreSQL 127.0.0.1:${services.pgPort} (${services.dir})`,
    );
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...settings,
      KAFKA_BROKERS: services.kafkaBrokers,
      DATABASE_URL: services.databaseUrl,
    };
    const kafka = createKafka({ brokers: services.kafkaBrokers, clientId: 'chaos-suite' });
    await timed('setup', async () => {
      const migrated = await runCli(['db', 'upgrade', '-c', join(configDir, 'workers.yaml')], { env });
      if (migrated.code !== 0) throw new Error(`winchester db upgrade: ${migrated.stderr}`);
      const admin = kafka.admin();
      await admin.connect();
      await createTopics(admin, [
        { topic: TOPICS.notifications, numPartitions: 1 },
        { topic: TOPICS.streamEvents, numPartitions: o.partitions },
        { topic: TOPICS.batches, numPartitions: o.partitions },
        { topic: TOPICS.deadLetter, numPartitions: 1 },
      ]);
      await admin.disconnect();
    });

    const workers = new WorkerFleet(
      join(configDir, 'workers.yaml'),
      env,
      join(workDir, 'logs'),
      recorderDir,
      () => random.float(),
    );
    fleet = workers;
    process.on('exit', killWorkers);
    await timed('workers start', async () => {
      await workers.start('trigger', o.triggerWorkers);
      await workers.start('pipeline', o.pipelineWorkers);
    });
    o.log(`${o.triggerWorkers} trigger workers and ${o.pipelineWorkers} pipeline workers running`);

    // Input flows in slices; between slices, the chaos.
    const slices = slicesOf(workload.lines, o.slices);
    const plan = schedule(slices.length, [
      ['kill trigger worker', o.triggerKills, 0.25],
      ['restart Kafka', o.kafkaRestarts, 0.34],
      ['kill pipeline worker', o.pipelineKills, 0.5],
      ['restart PostgreSQL', o.postgresRestarts, 0.67],
      ['kill pipeline worker in commit window', o.commitWindowKills, 0.75],
    ]);
    let resentSlices = 0;
    await timed('input and chaos', async () => {
      for (const [i, slice] of slices.entries()) {
        resentSlices += await produceSlice(
          slice,
          join(workDir, 'slice.jsonl'),
          join(configDir, 'workers.yaml'),
          env,
        );
        for (const action of plan[i] ?? []) {
          o.log(`slice ${i + 1}/${slices.length}: ${action}`);
          if (action === 'restart Kafka' || action === 'restart PostgreSQL') {
            workers.outageBegins();
            if (action === 'restart Kafka') await services.restartKafka(o.downMs);
            else await services.restartPostgres(o.downMs, o.postgresStop);
            workers.outageEnds();
          } else if (action === 'kill trigger worker') await workers.killOne('trigger');
          else if (action === 'kill pipeline worker') await workers.killOne('pipeline');
          else workers.armCommitWindowKill();
        }
        await sleep(o.paceMs);
      }
    });

    // Drain: no more faults; every stream closes at the flush time; wait for every batch to complete.
    const pool = await createPool(services.databaseUrl, { maximumPoolSize: 2 });
    try {
      await timed('drain', async () => {
        await workers.settle();
        const advanced = await runCli(
          ['produce', '-c', join(configDir, 'workers.yaml'), '--advance-clock', FLUSH_AT, '--timeout', '300'],
          { env },
        );
        if (advanced.code !== 0) throw new Error(`produce --advance-clock: ${advanced.stderr}`);
        await waitForDrain(pool, expected.length, o.stallMs, o.log, () =>
          topicRecords(kafka, TOPICS.deadLetter),
        );
        await sleep(2000); // a late duplicate would show up now
      });
      await timed('stop', () => workers.stopAll());

      // Judge.
      const published = await timed('verify', () => readPublished(kafka, TOPICS.batches, pool));
      const recorded = readRecorded(recorderDir);
      const logs = readLogs(workers.logFiles());
      const db = await readDatabase(pool);
      const deadLetters = await topicRecords(kafka, TOPICS.deadLetter);
      const f = workers.figures;

      const batchDiff = differences(
        [...published.byId.values()],
        expected.map((e) => e.line),
      );
      if (batchDiff.missingCount + batchDiff.extraCount > 0)
        problems.push(
          `published batches differ from replay: ${batchDiff.missingCount} missing ${JSON.stringify(batchDiff.missing)}, ` +
            `${batchDiff.extraCount} extra ${JSON.stringify(batchDiff.extra)}`,
        );
      if (published.differing.length > 0)
        problems.push(
          `batch ids published with different contents: ${published.differing.slice(0, 10).join(', ')}`,
        );
      const effectDiff = differences(
        [...recorded.effects.values()].map((e) => e.fingerprint),
        expected.map((e) => e.fingerprint),
        (l) => l.slice(0, 160),
      );
      if (effectDiff.missingCount + effectDiff.extraCount > 0)
        problems.push(
          `handler effects differ from replay --run-pipelines: ${effectDiff.missingCount} missing ${JSON.stringify(effectDiff.missing)}, ` +
            `${effectDiff.extraCount} extra ${JSON.stringify(effectDiff.extra)}`,
        );
      for (const id of published.byId.keys())
        if (!recorded.effects.has(id))
          problems.push(`batch ${id} was published but its commit() never took effect`);

      // Each repeated commit() must be the window: its earlier caller was SIGKILLed by the suite and had
      // not recorded the batch complete.
      const { repeated, unexplained } = repeatedCommits(recorded, f.killedPids, logs.completedBy);
      if (unexplained.length > 0)
        problems.push(`commit() ran again outside the crash window: ${unexplained.slice(0, 10).join('; ')}`);
      if (f.kills.pipelineInCommitWindow > 0 && repeated === 0)
        problems.push(
          'pipeline workers were killed in the commit window, yet no commit() was repeated: the kill did not land',
        );

      for (const x of f.unexpectedExits)
        problems.push(
          `${x.kind} worker ${x.pid} exited on its own (code ${x.code}, signal ${x.signal}); ${x.log}:\n${x.tail}`,
        );
      for (const s of f.stopStatuses)
        if (s.code !== 0)
          problems.push(
            `${s.kind} worker ${s.pid} did not stop cleanly on SIGTERM (code ${s.code}, signal ${s.signal})`,
          );
      if (Object.keys(db.streamsByState).length > 0)
        problems.push(`streams left in the database: ${JSON.stringify(db.streamsByState)}`);
      if (db.completionMarks !== expected.length)
        problems.push(`${db.completionMarks} completion marks for ${expected.length} batches`);
      if (deadLetters > 0) problems.push(`${deadLetters} records on the dead-letter topic`);

      Object.assign(figures, {
        notifications: workload.lines.length,
        'unique notifications': workload.unique,
        'duplicates sent (redelivered + resent)': `${workload.redelivered + workload.resent} (${workload.redelivered} + ${workload.resent})`,
        'slices sent again after a produce error': resentSlices,
        'batches expected (replay)': expected.length,
        'events in batches: published / replay': `${eventsIn([...published.byId.values()])} / ${eventsIn(expected.map((e) => e.line))}`,
        'batch records published': published.records,
        'distinct batches published': published.byId.size,
        'batch republishes suppressed (pipeline: already completed)':
          (logs.byMsg.get('batch already completed: skipped') ?? 0) +
          (logs.byMsg.get('batch already completed (its outbox row was pruned): skipped') ?? 0),
        'batches skipped by stream state': logs.byMsg.get('batch skipped') ?? 0,
        'commit() calls': recorded.callCount,
        'commit() repeated (crash window)': repeated,
        'effects (exactly once per batch)': recorded.effects.size,
        'completion marks': db.completionMarks,
        'dead letters': deadLetters,
        'trigger workers SIGKILLed': f.kills.trigger,
        'pipeline workers SIGKILLed': f.kills.pipeline,
        'pipeline workers SIGKILLed in the commit window': f.kills.pipelineInCommitWindow,
        'worker processes started': f.started,
        'unexpected worker exits': f.unexpectedExits.length,
        'workers that failed to start in an outage (exit 1, restarted)': f.startFailuresInOutage,
        'consumers restarted in-process after kafkajs gave up on them (route / streams / pipeline)': [
          'route',
          'streams',
          'pipeline',
        ]
          .map((stage) => logs.byMsg.get(`${stage} ${CONSUMER_RESTARTING}`) ?? 0)
          .join(' / '),
        'Kafka restarts': services.restarts.filter((r) => r.service === 'kafka').length,
        'PostgreSQL restarts': `${services.restarts.filter((r) => r.service === 'postgres').length} (${o.postgresStop})`,
        'database retries logged': logs.byMsg.get('database unavailable: retrying') ?? 0,
        'error lines logged': logs.errors.length,
      });
      for (const r of services.restarts)
        figures[`${r.service} restart: down / back up (s)`] =
          `${(r.downMs / 1000).toFixed(1)} / ${(r.upMs / 1000).toFixed(1)}`;
    } finally {
      await pool.end();
    }
  } catch (error) {
    problems.push(`the run stopped: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    fleet?.killAll();
    process.off('exit', killWorkers);
    await infra?.destroy();
    if (!o.keep && problems.length === 0) rmSync(workDir, { recursive: true, force: true });
  }
  for (const [name, ms] of phase) figures[`time: ${name} (s)`] = (ms / 1000).toFixed(1);
  figures['time: total (s)'] = ((Date.now() - started) / 1000).toFixed(1);
  return { problems, figures, workDir };
}

/** How many events the batch lines hold in all (each event once per batch it belongs to). */
function eventsIn(lines: readonly string[]): number {
  return lines.reduce((n, line) => n + (JSON.parse(line) as { events: unknown[] }).events.length, 0);
}

/** winchester.yaml for the workers (usage + the recording handler) and for replay (usage only). */
function writeConfig(dir: string, recorderDir: string): void {
  copyFileSync(join(ROOT, 'etc', 'event_definitions.yaml'), join(dir, 'event_definitions.yaml'));
  copyFileSync(join(ROOT, 'etc', 'triggers.yaml'), join(dir, 'triggers.yaml'));
  copyFileSync(new URL('./recording-handler.js', import.meta.url), join(dir, 'recording-handler.js'));
  const pipelines = (steps: string) =>
    ['test_fire_pipeline', 'test_expire_pipeline'].map((name) => `${name}:\n${steps}`).join('\n');
  writeFileSync(
    join(dir, 'pipelines.yaml'),
    pipelines(`  - usage\n  - name: recorder\n    params: {dir: ${JSON.stringify(recorderDir)}}\n`),
  );
  writeFileSync(join(dir, 'replay-pipelines.yaml'), pipelines('  - usage\n'));
  const config = (pipelineFile: string) =>
    [
      'distiller_config: event_definitions.yaml',
      'trigger_definitions: triggers.yaml',
      `pipeline_config: ${pipelineFile}`,
      'pipeline_handlers:',
      '  recorder: ./recording-handler.js#RecordingHandler',
      'purge_completed_streams: true',
      '',
    ].join('\n');
  writeFileSync(join(dir, 'workers.yaml'), config('pipelines.yaml'));
  writeFileSync(join(dir, 'replay.yaml'), config('replay-pipelines.yaml'));
}

/**
 * `winchester produce` of one slice. A failure (the broker just came back) sends the slice again: copies
 * of notifications already sent are more duplicates, which the workers must drop like the others.
 * @returns 1 when the slice had to be sent again, else 0.
 */
async function produceSlice(
  slice: readonly string[],
  file: string,
  config: string,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  writeLines(file, slice);
  for (let attempt = 1; ; attempt++) {
    const r = await runCli(['produce', '-q', '-c', config, '--timeout', '60', file], { env });
    if (r.code === 0) return attempt > 1 ? 1 : 0;
    if (attempt === 3) throw new Error(`winchester produce failed 3 times: ${r.stderr}`);
    await sleep(2000);
  }
}

/**
 * Waits until every batch is recorded complete and no stream is left; fails after `stallMs` without
 * progress (15 s once something was dead-lettered).
 */
async function waitForDrain(
  pool: Awaited<ReturnType<typeof createPool>>,
  batches: number,
  stallMs: number,
  log: (line: string) => void,
  deadLetters: () => Promise<number>,
): Promise<void> {
  let last = -1;
  let progressAt = Date.now();
  let reportedAt = 0;
  for (;;) {
    const done = Number(await pool.oneFirst(sql.unsafe`SELECT count(*)::int FROM completed_batches`));
    const open = Number(await pool.oneFirst(sql.unsafe`SELECT count(*)::int FROM streams`));
    if (done >= batches && open === 0) return;
    if (done !== last) {
      last = done;
      progressAt = Date.now();
    }
    if (Date.now() - reportedAt > 10_000) {
      log(`drain: ${done}/${batches} batches complete, ${open} streams in the database`);
      reportedAt = Date.now();
    }
    // A dead-lettered batch never completes: once progress stops, there is no point waiting out stallMs.
    const stalled = Date.now() - progressAt;
    if (stalled > stallMs || (stalled > 15_000 && (await deadLetters()) > 0))
      throw new Error(
        `the drain stalled: ${done}/${batches} batches complete, ${open} streams left, ${await deadLetters()} dead letters, no progress for ${Math.round(stalled / 1000)} s`,
      );
    await sleep(500);
  }
}
