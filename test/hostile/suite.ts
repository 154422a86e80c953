/**
 * The hostile-input suite: generated hostile notifications through a LIVE `winchester trigger-worker`
 * process on the real Kafka and PostgreSQL. Every input must be accounted for — distilled into an event,
 * dropped as unmatched, or dead-lettered with a reason — the worker must not crash, and its `/metrics` must
 * agree with the counts computed here:
 *
 * - from the generator: each input's acceptable outcomes;
 * - from an in-process oracle: the same pure `Router` over the same bytes gives each input's exact outcome
 *   (and the per-trigger match counts), so the live counts can be compared number for number;
 * - from the dead-letter topic, consumed here: which inputs (by record key) were dead-lettered, and why.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/index.js';
import { createProducer } from '../../src/kafka/kafka.js';
import type { Kafka } from '../../src/kafka/types.js';
import { Router } from '../../src/worker/router.js';
import { triggerGroupIds } from '../../src/worker/trigger-worker.js';
import { type TestScope, uniqueName, workerEnv } from '../helpers/integration.js';
import { testKafka } from '../helpers/kafka.js';
import { freePort, startWinchester } from '../helpers/process.js';
import { type Exposition, sampleSum, sampleValue, scrape } from '../helpers/prometheus.js';
import { migratedDatabase } from '../integration/db/schema.js';
import { workerTopics } from '../integration/worker/topics.js';
import { generateHostile, isAllowed, KNOWN_OPEN_BUGS, ONE_MIB, type Outcome } from './generator.js';

const CONFIG = 'etc/winchester.yaml';
/** One produce request stays well under the broker's request limits. */
const CHUNK_BYTES = 512 * 1024;
const CHUNK_MESSAGES = 500;

/** Options of {@link runHostile}. */
export interface HostileOptions {
  readonly size: number;
  readonly seed: number;
  /** Generate the kinds of {@link KNOWN_OPEN_BUGS} too (default: leave them out). */
  readonly includeKnownBugs?: boolean;
  /** Progress lines (default: none). */
  readonly progress?: (line: string) => void;
}

/** What a run found. `problems` is empty when the worker passed. */
export interface HostileReport {
  readonly size: number;
  readonly seed: number;
  readonly seconds: { readonly produce: number; readonly drain: number; readonly total: number };
  readonly bytes: number;
  /** Kinds left out because they expose a known open bug (kind → the bug). */
  readonly excluded: Record<string, string>;
  /** Inputs per kind. */
  readonly kinds: Record<string, number>;
  /** Outcomes (oracle = live) per kind: kind → outcome → count. */
  readonly outcomes: Record<string, Record<string, number>>;
  readonly totals: {
    readonly events: number;
    readonly unmatched: number;
    readonly noTrigger: number;
    readonly deadLettered: Record<string, number>;
    readonly matched: Record<string, number>;
    readonly records: number;
  };
  readonly problems: string[];
}

const hist = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1;
};

async function raiseMessageLimit(kafka: Kafka, topic: string, bytes: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: 2 /* TOPIC */,
          name: topic,
          configEntries: [{ name: 'max.message.bytes', value: String(bytes) }],
        },
      ],
    });
  } finally {
    await admin.disconnect();
  }
}

/** Waits until `groupId` has committed, on every partition of `topic`, the end offset it has now. */
async function drainStreams(
  kafka: Kafka,
  groupId: string,
  topic: string,
  problems: string[],
  failed: () => boolean,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
    let behind: string[] = [];
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      behind = [];
      for (const p of committed?.partitions ?? []) {
        const end = ends.get(p.partition) ?? 0;
        if (Number(p.offset) < end) behind.push(`partition ${p.partition} at ${p.offset} of ${end}`);
      }
      if (behind.length === 0) return;
      if (failed()) break; // the worker logs errors: report them rather than wait out the deadline
      await sleep(500);
    }
    problems.push(`the streams stage did not get through stream-events: ${behind.join(', ')}`);
  } finally {
    await admin.disconnect();
  }
}

/** Runs the suite; clean-up (worker, consumer, topics, database) is registered on `t`. */
export async function runHostile(t: TestScope, options: HostileOptions): Promise<HostileReport> {
  const progress = options.progress ?? (() => undefined);
  const started = Date.now();
  const problems: string[] = [];
  const name = `hostile${Date.now().toString(36)}`;
  const db = await migratedDatabase(t, `it_${name}`);
  const kafka = testKafka(`it-${name}`);
  const { names: topics } = await workerTopics(t, kafka, {
    notifications: { prefix: `it-${name}-in`, partitions: 1 },
    streamEvents: { prefix: `it-${name}-se`, partitions: 4 },
    batches: { prefix: `it-${name}-b`, partitions: 1 },
    deadLetter: { prefix: `it-${name}-dl`, partitions: 1 },
  });
  // The oversize inputs must reach the worker: the broker's default 1 MiB would refuse them at produce time.
  await raiseMessageLimit(kafka, topics.notifications, 4 * ONE_MIB);
  const env: NodeJS.ProcessEnv = {
    ...workerEnv({ databaseUrl: db.url, clientId: uniqueName(`it-${name}`), topics, partitions: 4 }),
    WINCHESTER_CLOCK_MODE: 'event',
    WINCHESTER_METRICS_PORT: String(await freePort()),
    WINCHESTER_TRIGGER_WORKER_CHECKPOINT_INTERVAL: '0.5',
  };
  const groups = triggerGroupIds(env.WINCHESTER_KAFKA_CLIENT_ID as string);

  // The oracle: the worker's own configuration and the pure router, in this process.
  const config = await loadConfig(CONFIG, { env });
  if (config.distiller === null) throw new Error(`${CONFIG} has no distiller_config`);
  const oracle = new Router({
    distiller: config.distiller,
    triggers: config.triggers,
    streamEventsTopic: topics.streamEvents,
    deadLetterTopic: topics.deadLetter,
    maxNotificationBytes: config.settings.trigger_worker.max_notification_bytes,
  });

  const worker = startWinchester(t, ['trigger-worker', '-c', CONFIG], env);
  const running = await worker.waitForMsg('trigger worker running', 120_000);
  const port = Number(running.metrics_port);

  // The dead-letter topic, by record key (h<index>) → reason.
  const dead = new Map<number, string>();
  const deadTwice: number[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName(`it-${name}-dl`), maxWaitTimeInMs: 200 });
  t.after(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics: [topics.deadLetter], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const index = Number(message.key?.toString().slice(1));
      const reason = message.headers?.['winchester-reason']?.toString() ?? '(no reason header)';
      // At-least-once: a re-routed chunk may dead-letter an input again, with the same reason.
      if (dead.has(index) && dead.get(index) !== reason) deadTwice.push(index);
      dead.set(index, reason);
    },
  });

  const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(() => producer.disconnect());

  const expected = new Map<number, string>(); // index → oracle's dead-letter reason
  const kinds: Record<string, number> = {};
  const outcomeOf: Outcome[] = [];
  const kindOf: string[] = [];
  let bytes = 0;
  let chunk: { key: string; value: Buffer | null }[] = [];
  let chunkBytes = 0;
  const flush = async () => {
    if (chunk.length === 0) return;
    await producer.send({ topic: topics.notifications, acks: -1, messages: chunk });
    chunk = [];
    chunkBytes = 0;
  };
  const excluded = options.includeKnownBugs === true ? {} : { ...KNOWN_OPEN_BUGS };
  for (const input of generateHostile({
    seed: options.seed,
    size: options.size,
    exclude: Object.keys(excluded),
  })) {
    hist(kinds, input.kind);
    const size = input.value?.length ?? 0;
    bytes += size;
    const before = { events: oracle.counts.events, unmatched: oracle.counts.unmatched };
    let out: ReturnType<Router['route']> | Error;
    try {
      out = oracle.route(topics.notifications, 0, [
        { offset: String(input.index), key: null, value: input.value },
      ]);
    } catch (err) {
      // The worker runs the same code: it will meet the same exception.
      out = err instanceof Error ? err : new Error(String(err));
    }
    const dl = out instanceof Error ? undefined : out.find((m) => m.topic === topics.deadLetter);
    let outcome: Outcome;
    if (out instanceof Error) {
      outcome = 'dead:(router threw)';
      oracle.counts.notifications--;
      problems.push(
        `input ${input.index} (${input.kind}): the router threw ${out.name}: ${out.message}; ` +
          `value starts ${JSON.stringify(input.value?.subarray(0, 80).toString('latin1') ?? null)}`,
      );
    } else if (dl !== undefined) {
      const reason = dl.headers?.['winchester-reason'] ?? '?';
      outcome = `dead:${reason}`;
      expected.set(input.index, reason);
    } else if (oracle.counts.events > before.events) outcome = 'event';
    else if (oracle.counts.unmatched > before.unmatched) outcome = 'unmatched';
    else {
      outcome = 'dead:(unaccounted)';
      problems.push(
        `input ${input.index} (${input.kind}): the router neither distilled, dropped nor dead-lettered it`,
      );
    }
    outcomeOf.push(outcome);
    kindOf.push(input.kind);
    if (!isAllowed(outcome, input.allowed)) {
      problems.push(
        `input ${input.index} (${input.kind}): outcome ${outcome}, expected one of ${input.allowed.join(', ')}; ` +
          `value starts ${JSON.stringify(input.value?.subarray(0, 120).toString('latin1') ?? null)}`,
      );
    }
    if (chunk.length > 0 && (chunk.length >= CHUNK_MESSAGES || chunkBytes + size > CHUNK_BYTES))
      await flush();
    chunk.push({ key: `h${input.index}`, value: input.value });
    chunkBytes += size;
    if ((input.index + 1) % 10_000 === 0) progress(`produced ${input.index + 1} of ${options.size}`);
  }
  await flush();
  const produced = Date.now();
  progress(`produced ${options.size} inputs (${(bytes / ONE_MIB).toFixed(1)} MiB); waiting for the worker`);

  // Drain: until the worker counted every input and the dead letters arrived (or it died, or stalled).
  const c = oracle.counts;
  let metrics: Exposition | undefined;
  let lastReceived = -1;
  let stalledSince = Date.now();
  for (;;) {
    if (worker.child.exitCode !== null || worker.child.signalCode !== null) {
      problems.push(
        `the worker exited (${worker.child.exitCode ?? worker.child.signalCode}); stderr: ${worker.stderr.slice(-2000)}; ` +
          `last log lines: ${JSON.stringify(worker.lines.slice(-5))}`,
      );
      break;
    }
    metrics = await scrape(port).catch(() => undefined);
    const received =
      metrics === undefined ? 0 : sampleSum(metrics, 'winchester_notifications_received_total');
    const records =
      metrics === undefined ? 0 : (sampleValue(metrics, 'winchester_stream_event_records_total') ?? 0);
    if (received >= options.size && dead.size >= expected.size && records >= c.records) break;
    if (received !== lastReceived) {
      lastReceived = received;
      stalledSince = Date.now();
    } else if (Date.now() - stalledSince > 120_000) {
      problems.push(
        `the worker stalled: ${received} of ${options.size} received, ${dead.size} of ${expected.size} dead letters, ` +
          `${records} of ${c.records} stream-events records for two minutes`,
      );
      break;
    }
    await sleep(250);
  }
  // The streams stage must get through every stream-events record too: its committed offsets (they follow
  // the checkpoints) reach the end each partition had once routing was done. A record it cannot checkpoint
  // stops its partition here.
  if (problems.length === 0)
    await drainStreams(kafka, groups.streams, topics.streamEvents, problems, () =>
      worker.lines.some((l) => l.level === 'error'),
    );
  await sleep(1000); // anything extra (a record counted twice) would show up now
  metrics = await scrape(port).catch(() => metrics);
  const drained = Date.now();

  // Every input accounted for, per input: dead letters exactly where the oracle put them, with its reason.
  for (const [index, reason] of expected) {
    const got = dead.get(index);
    if (got !== reason)
      problems.push(
        `input ${index} (${kindOf[index]}): expected dead letter ${reason}, got ${got ?? 'none'}`,
      );
  }
  for (const [index, reason] of dead) {
    if (!expected.has(index))
      problems.push(
        `input ${index} (${kindOf[index]}): dead-lettered (${reason}) but the oracle ${outcomeOf[index]}`,
      );
  }
  for (const index of deadTwice) problems.push(`input ${index}: dead-lettered twice with different reasons`);

  // The metrics agree with the generator's count, the oracle and the dead-letter topic.
  const deadByReason: Record<string, number> = {};
  for (const reason of expected.values()) hist(deadByReason, reason);
  const consumedByReason: Record<string, number> = {};
  for (const reason of dead.values()) hist(consumedByReason, reason);
  const matched: Record<string, number> = {};
  oracle.triggers.forEach((def, i) => {
    matched[def.name] = c.matched[i] ?? 0;
  });
  const agree = (what: string, live: number | undefined, want: number, source = '/metrics') => {
    if (live !== want) problems.push(`${what}: ${source} says ${live ?? 'nothing'}, expected ${want}`);
  };
  if (metrics === undefined) problems.push('/metrics could not be scraped');
  else {
    agree(
      'winchester_notifications_received_total',
      sampleSum(metrics, 'winchester_notifications_received_total'),
      options.size,
    );
    agree(
      'dropped{reason="unmatched"}',
      sampleSum(metrics, 'winchester_notifications_dropped_total', { reason: 'unmatched' }),
      c.unmatched,
    );
    agree(
      'dropped{reason="no_trigger"}',
      sampleSum(metrics, 'winchester_notifications_dropped_total', { reason: 'no_trigger' }),
      c.joinedNone,
    );
    agree(
      'dead_lettered (all reasons)',
      sampleSum(metrics, 'winchester_notifications_dead_lettered_total'),
      expected.size,
    );
    for (const reason of new Set([...Object.keys(deadByReason), ...Object.keys(consumedByReason)])) {
      const want = deadByReason[reason] ?? 0;
      agree(
        `dead_lettered{reason="${reason}"}`,
        sampleSum(metrics, 'winchester_notifications_dead_lettered_total', { reason }),
        want,
      );
      agree(`records with reason ${reason}`, consumedByReason[reason] ?? 0, want, 'the dead-letter topic');
    }
    for (const [trigger, n] of Object.entries(matched))
      agree(
        `events_matched{trigger="${trigger}"}`,
        sampleSum(metrics, 'winchester_events_matched_total', { trigger }),
        n,
      );
    agree(
      'winchester_stream_event_records_total',
      sampleValue(metrics, 'winchester_stream_event_records_total'),
      c.records,
    );
  }
  const accounted = c.events + c.unmatched + expected.size;
  if (accounted !== options.size) problems.push(`accounted for ${accounted} of ${options.size} inputs`);
  const errors = worker.lines.filter((l) => l.level === 'error');
  if (errors.length > 0)
    problems.push(`the worker logged ${errors.length} errors, the first: ${JSON.stringify(errors[0])}`);

  if (worker.child.exitCode === null && worker.child.signalCode === null) {
    const code = await worker.terminate();
    if (code !== 0)
      problems.push(`the worker exited ${code} on SIGTERM; stderr: ${worker.stderr.slice(-2000)}`);
  }

  const outcomes: Record<string, Record<string, number>> = {};
  outcomeOf.forEach((o, i) => {
    const k = kindOf[i] as string;
    outcomes[k] ??= {};
    hist(outcomes[k], o);
  });
  return {
    size: options.size,
    seed: options.seed,
    seconds: {
      produce: (produced - started) / 1000,
      drain: (drained - produced) / 1000,
      total: (Date.now() - started) / 1000,
    },
    bytes,
    excluded,
    kinds,
    outcomes,
    totals: {
      events: c.events,
      unmatched: c.unmatched,
      noTrigger: c.joinedNone,
      deadLettered: deadByReason,
      matched,
      records: c.records,
    },
    problems,
  };
}

/** The report as a human-readable table. */
export function formatReport(r: HostileReport): string {
  const lines = [
    `hostile inputs: ${r.size} (seed ${r.seed}, ${(r.bytes / ONE_MIB).toFixed(1)} MiB) through a live trigger worker`,
    `time: ${r.seconds.total.toFixed(1)} s (setup + produce ${r.seconds.produce.toFixed(1)} s, drain ${r.seconds.drain.toFixed(1)} s)`,
    `events ${r.totals.events} (no trigger ${r.totals.noTrigger}), unmatched ${r.totals.unmatched}, dead-lettered ${Object.values(r.totals.deadLettered).reduce((a, b) => a + b, 0)}, stream-events records ${r.totals.records}`,
    `dead-lettered by reason: ${Object.entries(r.totals.deadLettered)
      .sort()
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `matched by trigger: ${Object.entries(r.totals.matched)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    '',
    'kind                         inputs  outcomes',
  ];
  for (const [kind, n] of Object.entries(r.kinds).sort()) {
    const o = Object.entries(r.outcomes[kind] ?? {})
      .sort()
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(`${kind.padEnd(28)} ${String(n).padStart(6)}  ${o}`);
  }
  for (const [kind, bug] of Object.entries(r.excluded)) {
    lines.push(`left out (--include-known-bugs to run): ${kind}: ${bug}`);
  }
  lines.push(
    '',
    r.problems.length === 0
      ? 'PASS: zero crashes, every input accounted for, /metrics agree'
      : `FAIL: ${r.problems.length} problems`,
  );
  for (const p of r.problems.slice(0, 50)) lines.push(`  ${p}`);
  if (r.problems.length > 50) lines.push(`  … and ${r.problems.length - 50} more`);
  return lines.join('\n');
}
