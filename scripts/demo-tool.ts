/**
 * The parts of scripts/demo.sh that need a Kafka or PostgreSQL client or some arithmetic. The workers,
 * the migration, the workload and its production all run through the built CLI (`node bin/winchester.js`);
 * this helper only creates and drops the run's database, reads topic offsets, watches the workers'
 * /metrics until the run is done, and counts the verdicts the notabene step published.
 *
 *   demo-tool.ts db-create   <admin-url> <name>          prints the URL of the new database
 *   demo-tool.ts db-drop     <admin-url> <name>
 *   demo-tool.ts end-offsets <brokers> <topic>           prints {"partition": offset} ({} when no topic)
 *   demo-tool.ts clock-after <workload.jsonl>            prints a clock past every stream's expiration
 *   demo-tool.ts watch       <trigger-port> <pipeline-port> <expected-notifications> <timeout-s>
 *   demo-tool.ts summary     <state-dir>                 reads <state-dir>/run.env and prints the summary
 *   demo-tool.ts delete-topics <brokers> <topic>…
 *
 * Failures print one line on stderr and exit 1 (2 for bad usage).
 */
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDatabase, dropDatabase, withDatabaseName } from '../src/db/databases.js';
import { createPool } from '../src/db/pool.js';
import { createKafka } from '../src/kafka/kafka.js';
import type { Kafka } from '../src/kafka/types.js';

class DemoError extends Error {}

function usage(): never {
  process.stderr.write(
    'usage: demo-tool.ts db-create|db-drop|end-offsets|clock-after|watch|summary|delete-topics …\n',
  );
  process.exit(2);
}

function kafkaClient(brokers: string): Kafka {
  return createKafka({
    brokers,
    clientId: 'winchester-demo',
    connectionTimeoutMs: 5000,
    retry: { retries: 3 },
  });
}

async function adminPool(url: string) {
  return createPool(url, { maximumPoolSize: 1, connectionTimeoutMs: 5000, connectionRetryLimit: 1 });
}

async function dbCreate(url: string, name: string): Promise<void> {
  const pool = await adminPool(url);
  try {
    await createDatabase(pool, name);
  } catch (error) {
    throw new DemoError(
      `cannot create database ${name}: ${(error as Error).message} (the demo gives each run a database of its own; the role of DATABASE_URL needs CREATEDB, as the one of npm run infra:up has)`,
    );
  } finally {
    await pool.end();
  }
  process.stdout.write(`${withDatabaseName(url, name)}\n`);
}

async function dbDrop(url: string, name: string): Promise<void> {
  const pool = await adminPool(url);
  try {
    await dropDatabase(pool, name);
  } finally {
    await pool.end();
  }
}

/** The next offset of every partition of `topic`, or an empty object when the topic does not exist yet. */
async function endOffsets(brokers: string, topic: string): Promise<Record<string, string>> {
  const admin = kafkaClient(brokers).admin();
  await admin.connect();
  try {
    const topics = await admin.listTopics();
    if (!topics.includes(topic)) return {};
    const offsets = await admin.fetchTopicOffsets(topic);
    return Object.fromEntries(offsets.map((o) => [String(o.partition), o.high]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * The workload's streams expire at `$last + 2d` (etc/triggers.yaml); a clock an hour past the latest
 * timestamp plus two days closes every one of them. Timestamps are the notifications' own (naive UTC).
 */
async function clockAfter(file: string): Promise<void> {
  let max = Number.NEGATIVE_INFINITY;
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const n = JSON.parse(line) as { timestamp?: unknown };
    if (typeof n.timestamp !== 'string') continue;
    const ms = Date.parse(`${n.timestamp.replace(' ', 'T').replace(/Z?$/, '')}Z`);
    if (Number.isFinite(ms) && ms > max) max = ms;
  }
  if (!Number.isFinite(max)) throw new DemoError(`${file}: no notification with a timestamp`);
  const clock = new Date(max + 2 * 86_400_000 + 3_600_000);
  process.stdout.write(`${clock.toISOString()}\n`);
}

// ---------------------------------------------------------------------------------------------------
// /metrics

/** Sums of the samples of each metric name (labels summed over), from the Prometheus text format. */
type Totals = Map<string, number>;

function parseExposition(text: string): { totals: Totals; labelled: Array<[string, string, number]> } {
  const totals: Totals = new Map();
  const labelled: Array<[string, string, number]> = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    const name = m[1] as string;
    totals.set(name, (totals.get(name) ?? 0) + value);
    labelled.push([name, m[2] ?? '', value]);
  }
  return { totals, labelled };
}

async function scrape(port: string): Promise<ReturnType<typeof parseExposition>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) });
  if (!response.ok) throw new DemoError(`http://127.0.0.1:${port}/metrics answered ${response.status}`);
  return parseExposition(await response.text());
}

function labelledSum(labelled: Array<[string, string, number]>, name: string, label: string): number {
  let sum = 0;
  for (const [n, labels, value] of labelled) if (n === name && labels.includes(label)) sum += value;
  return sum;
}

/** The figures the progress line and the summary show, from both workers' /metrics. */
interface Progress {
  received: number;
  matched: number;
  opened: number;
  active: number;
  fired: number;
  expired: number;
  published: number;
  completed: number;
  failed: number;
  deadLettered: number;
}

async function progress(triggerPort: string, pipelinePort: string): Promise<Progress> {
  const [t, p] = await Promise.all([scrape(triggerPort), scrape(pipelinePort)]);
  const tv = (name: string) => t.totals.get(name) ?? 0;
  const outcome = (o: string) =>
    labelledSum(p.labelled, 'winchester_pipeline_batches_total', `outcome="${o}"`);
  return {
    received: tv('winchester_notifications_received_total'),
    matched: tv('winchester_events_matched_total'),
    opened: tv('winchester_streams_opened_total'),
    active: tv('winchester_streams_active'),
    fired: tv('winchester_streams_fired_total'),
    expired: tv('winchester_streams_expired_total'),
    published: tv('winchester_batches_published_total'),
    completed: outcome('completed'),
    failed: outcome('failed'),
    deadLettered: outcome('dead_lettered'),
  };
}

function progressLine(p: Progress, seconds: number): string {
  return (
    `[${String(seconds).padStart(3)}s] notifications routed ${p.received}, events matched ${p.matched}, ` +
    `streams open ${p.active} / fired ${p.fired} / expired ${p.expired}, ` +
    `batches published ${p.published}, through the pipeline ${p.completed}` +
    (p.deadLettered > 0 ? `, dead-lettered ${p.deadLettered}` : '')
  );
}

/**
 * Polls both workers once a second until every notification is routed, every opened stream has closed,
 * every closed stream's batch is published and every batch went through its pipeline (or to the dead
 * letter topic), with the figures unchanged over three polls. Progress goes to stderr: one rewritten line
 * on a terminal, a line every five seconds otherwise.
 */
async function watch(
  triggerPort: string,
  pipelinePort: string,
  expected: number,
  timeoutS: number,
): Promise<void> {
  const tty = process.stderr.isTTY === true;
  const started = Date.now();
  let last = '';
  let stableFor = 0;
  let lastPrinted = -1;
  for (;;) {
    const seconds = Math.round((Date.now() - started) / 1000);
    let p: Progress;
    try {
      p = await progress(triggerPort, pipelinePort);
    } catch (error) {
      throw new DemoError(`a worker stopped answering on /metrics: ${(error as Error).message}`);
    }
    const line = progressLine(p, seconds);
    if (tty) process.stderr.write(`\r\x1b[K${line}`);
    else if (seconds - lastPrinted >= 5) {
      process.stderr.write(`${line}\n`);
      lastPrinted = seconds;
    }
    const closed = p.fired + p.expired;
    const done =
      p.received >= expected &&
      p.active === 0 &&
      p.opened > 0 &&
      closed === p.opened &&
      p.published >= closed &&
      p.completed + p.deadLettered >= p.published;
    const key = JSON.stringify(p);
    stableFor = done && key === last ? stableFor + 1 : 0;
    last = key;
    if (stableFor >= 2) {
      if (tty) process.stderr.write('\n');
      else process.stderr.write(`${line}\n`);
      return;
    }
    if (seconds > timeoutS) {
      if (tty) process.stderr.write('\n');
      throw new DemoError(
        `not finished after ${timeoutS}s (${line}); the workers' logs may say why (WINCHESTER_DEMO_TIMEOUT raises the limit)`,
      );
    }
    await sleep(1000);
  }
}

// ---------------------------------------------------------------------------------------------------
// summary

function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m !== null) env[m[1] as string] = (m[2] as string).replace(/^'(.*)'$/, '$1');
  }
  return env;
}

function need(env: Record<string, string>, key: string): string {
  const v = env[key];
  if (v === undefined || v === '') throw new DemoError(`run.env lacks ${key}`);
  return v;
}

/** The instance ids of the run's workload: the verdicts of this run are those about these instances. */
async function workloadInstances(file: string): Promise<{ instances: Set<string>; count: number }> {
  const instances = new Set<string>();
  let count = 0;
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    count += 1;
    const n = JSON.parse(line) as { payload?: { instance_id?: unknown } };
    const id = n.payload?.instance_id;
    if (typeof id === 'string') instances.add(id);
  }
  return { instances, count };
}

interface VerdictCounts {
  verified: number;
  failed: Map<string, number>;
  warnings: number;
  other: number;
  ofOtherRuns: number;
  /** Verdicts whose message id was already counted: published more than once (each should be once). */
  repeated: number;
}

/**
 * Reads the verdict topic from the offsets recorded before the workers started up to its end now, and
 * counts the verdicts about this run's instances by event type and error code. Verdicts published there
 * by anything else in the meantime (another run of the job against the same broker) are skipped by
 * instance id and reported as such.
 */
async function countVerdicts(
  brokers: string,
  topic: string,
  from: Record<string, string>,
  instances: Set<string>,
): Promise<VerdictCounts> {
  const counts: VerdictCounts = {
    verified: 0,
    failed: new Map(),
    warnings: 0,
    other: 0,
    ofOtherRuns: 0,
    repeated: 0,
  };
  const seen = new Set<string>();
  const end = await endOffsets(brokers, topic);
  const pending = new Map<number, bigint>();
  for (const [partition, high] of Object.entries(end)) {
    const start = BigInt(from[partition] ?? '0');
    if (BigInt(high) > start) pending.set(Number(partition), BigInt(high));
  }
  if (pending.size === 0) return counts;
  const kafka = kafkaClient(brokers);
  const consumer = kafka.consumer({ groupId: `winchester-demo-summary-${process.pid}-${Date.now()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let resolveDone: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      resolveDone = resolve;
    });
    // No offsets committed: the throw-away group leaves nothing behind on the broker.
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const high = pending.get(partition);
        if (high === undefined) return;
        const offset = BigInt(message.offset);
        if (offset < BigInt(from[String(partition)] ?? '0')) return;
        if (offset < high) {
          const v = JSON.parse(message.value?.toString('utf8') ?? 'null') as {
            event_type?: unknown;
            error_code?: unknown;
            instance_id?: unknown;
            message_id?: unknown;
          } | null;
          if (v === null || typeof v.instance_id !== 'string' || !instances.has(v.instance_id)) {
            counts.ofOtherRuns += 1;
          } else if (typeof v.message_id === 'string' && seen.has(v.message_id)) {
            counts.repeated += 1;
          } else if (v.event_type === 'compute.instance.exists.verified') counts.verified += 1;
          else if (v.event_type === 'compute.instance.exists.failed') {
            const code = typeof v.error_code === 'string' ? v.error_code : '?';
            counts.failed.set(code, (counts.failed.get(code) ?? 0) + 1);
          } else if (v.event_type === 'compute.instance.exists.warnings') counts.warnings += 1;
          else counts.other += 1;
          if (typeof v?.message_id === 'string') seen.add(v.message_id);
        }
        if (offset + 1n >= high) {
          pending.delete(partition);
          if (pending.size === 0) resolveDone();
        }
      },
    });
    // Start each partition at its recorded offset rather than reading the topic's whole history.
    for (const [partition, high] of Object.entries(end)) {
      const offset = pending.has(Number(partition)) ? (from[partition] ?? '0') : high;
      consumer.seek({ topic, partition: Number(partition), offset });
    }
    const timeout = sleep(30_000).then(() => {
      throw new DemoError(`reading ${topic} did not reach its end within 30 s`);
    });
    await Promise.race([done, timeout]);
  } finally {
    await consumer.disconnect();
  }
  return counts;
}

async function summary(stateDir: string): Promise<void> {
  const env = readEnvFile(`${stateDir}/run.env`);
  const brokers = need(env, 'DEMO_KAFKA_BROKERS');
  const verdictTopic = need(env, 'DEMO_VERDICT_TOPIC');
  const from = JSON.parse(readFileSync(`${stateDir}/verdict-offsets.json`, 'utf8')) as Record<string, string>;
  const tPort = need(env, 'DEMO_TRIGGER_PORT');
  const pPort = need(env, 'DEMO_PIPELINE_PORT');
  const { instances, count } = await workloadInstances(`${stateDir}/notifications.jsonl`);
  const [p, verdicts] = await Promise.all([
    progress(tPort, pPort),
    countVerdicts(brokers, verdictTopic, from, instances),
  ]);
  const failedTotal = [...verdicts.failed.values()].reduce((a, b) => a + b, 0);
  const row = (label: string, value: number | string, note = '') =>
    `  ${label.padEnd(24)}${String(value).padStart(8)}${note === '' ? '' : `  ${note}`}`;
  const codes = ['U0', 'U1', 'U2', 'U3', 'U4', 'U5', 'U6', 'U7', 'U8'];
  const extra = [...verdicts.failed.keys()].filter((c) => !codes.includes(c));
  const byCode = [...codes, ...extra].map((c) => `${c} ${verdicts.failed.get(c) ?? 0}`).join(' · ');
  const out = [
    '',
    `== summary of run ${need(env, 'DEMO_RUN_ID')}`,
    row('notifications in', count, `produced to ${need(env, 'DEMO_NOTIFICATIONS_TOPIC')}`),
    row('notifications routed', p.received, 'read by the trigger worker'),
    row('events matched', p.matched, 'by test_trigger'),
    row('streams opened', p.opened),
    row('streams fired', p.fired, 'end-of-day compute.instance.exists arrived'),
    row('streams expired', p.expired, 'no full-day .exists before $last + 2d'),
    row('streams still open', p.active),
    row('batches published', p.published, 'to the pipeline worker'),
    row('batches completed', p.completed, 'logger → usage → notabene'),
    row(
      'batches failed',
      p.failed + p.deadLettered,
      p.deadLettered > 0 ? 'see winchester streams list --state error' : '',
    ),
    row(
      'verdicts',
      verdicts.verified + failedTotal + verdicts.warnings + verdicts.other,
      `published to Kafka topic ${verdictTopic}`,
    ),
    row('  verified', verdicts.verified, 'compute.instance.exists.verified'),
    row('  failed', failedTotal, `compute.instance.exists.failed: ${byCode}`),
    row('  warnings', verdicts.warnings, 'compute.instance.exists.warnings'),
    row(
      '  published twice',
      verdicts.repeated,
      'verdicts seen again under the same message id (should be 0)',
    ),
  ];
  if (verdicts.other > 0) out.push(row('  other events', verdicts.other));
  if (verdicts.ofOtherRuns > 0) {
    out.push(
      row(
        '  not this run',
        verdicts.ofOtherRuns,
        `other messages on ${verdictTopic} meanwhile (not counted)`,
      ),
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

async function deleteTopics(brokers: string, topics: string[]): Promise<void> {
  const admin = kafkaClient(brokers).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const doomed = topics.filter((t) => existing.has(t));
    if (doomed.length > 0) await admin.deleteTopics({ topics: doomed, timeout: 10_000 });
  } finally {
    await admin.disconnect();
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  const arg = (i: number): string => args[i] ?? usage();
  switch (command) {
    case 'db-create':
      return dbCreate(arg(0), arg(1));
    case 'db-drop':
      return dbDrop(arg(0), arg(1));
    case 'end-offsets':
      process.stdout.write(`${JSON.stringify(await endOffsets(arg(0), arg(1)))}\n`);
      return;
    case 'clock-after':
      return clockAfter(arg(0));
    case 'watch': {
      const expected = Number(arg(2));
      const timeout = Number(arg(3));
      if (!Number.isInteger(expected) || !Number.isFinite(timeout)) usage();
      return watch(arg(0), arg(1), expected, timeout);
    }
    case 'summary':
      return summary(arg(0));
    case 'delete-topics':
      return deleteTopics(arg(0), args.slice(1));
    default:
      usage();
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`demo: ${error instanceof DemoError ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
