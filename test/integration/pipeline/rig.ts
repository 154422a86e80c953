/**
 * What the pipeline worker tests share: a temp configuration directory (winchester.yaml, triggers.yaml,
 * pipelines.yaml and a recording handler module), a migrated database with a `recorded` table the handler
 * writes to in commit() (keyed by batch_id, counting commits), throw-away topics, streams stored as the
 * streams stage would store them (state + events + outbox row), and collectors of the output topics.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig, type WinchesterConfig } from '../../../src/config/index.js';
import { sql } from '../../../src/db/pool.js';
import type { StreamState } from '../../../src/engine/effects.js';
import { createProducer } from '../../../src/kafka/kafka.js';
import { type BatchRecord, encodeBatch } from '../../../src/kafka/records.js';
import type { Kafka, Producer } from '../../../src/kafka/types.js';
import type { Logger } from '../../../src/log.js';
import type { Event } from '../../../src/model/event.js';
import { parseDatetime } from '../../../src/timex/instant.js';
import type { TestDatabase } from '../../helpers/db.js';
import { kafkaBrokers, type TestScope, uniqueName } from '../../helpers/integration.js';
import { testKafka } from '../../helpers/kafka.js';
import { migratedDatabase } from '../db/schema.js';
import { workerTopics } from '../worker/topics.js';

const PG = pathToFileURL(createRequire(import.meta.url).resolve('pg')).href;

/**
 * The user handler under test. `handleEvents` may fail on purpose (the first `fail_first` attempts of a
 * batch in this process, or while the batch id is listed in the `failing` table) and may emit one new
 * event; `commit()` records the batch idempotently by batch_id and counts its calls, and with
 * `die_after_first_commit` kills its own process right after the first commit of a batch (before the
 * worker can record completion).
 */
const RECORDER = `
import pg from ${JSON.stringify(PG)};
const attempts = new Map();
async function query(database, text, values) {
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  try { return await client.query(text, values); } finally { await client.end(); }
}
export class Recorder {
  constructor(params) { this.p = params; }
  async handleEvents(events, env) {
    this.env = env;
    this.events = events;
    const n = (attempts.get(env.batch_id) ?? 0) + 1;
    attempts.set(env.batch_id, n);
    if (this.p.sleep_ms !== undefined) await new Promise((resolve) => setTimeout(resolve, this.p.sleep_ms));
    if (this.p.fail_first !== undefined && n <= this.p.fail_first) throw new Error('failing on purpose, attempt ' + n);
    if (this.p.fail_when_listed) {
      const r = await query(this.p.database, 'SELECT 1 FROM failing WHERE batch_id = $1', [env.batch_id]);
      if (r.rowCount > 0) throw new Error('batch is listed as failing');
    }
    if (this.p.emit === undefined) return events;
    const last = events[events.length - 1];
    return [...events, {
      message_id: 'emitted-' + env.batch_id,
      event_type: this.p.emit,
      timestamp: last.timestamp,
      traits: { instance_id: { type: 'text', value: 'verdict-' + env.stream_id } },
    }];
  }
  async commit() {
    const r = await query(this.p.database,
      'INSERT INTO recorded (batch_id, stream_id, kind, events, commits) VALUES ($1, $2, $3, $4, 1) ' +
      'ON CONFLICT (batch_id) DO UPDATE SET commits = recorded.commits + 1 RETURNING commits',
      [this.env.batch_id, this.env.stream_id, this.env.kind, this.events.length]);
    if (this.p.die_after_first_commit && r.rows[0].commits === 1) process.kill(process.pid, 'SIGKILL');
  }
  rollback() {}
}
`;

const TRIGGERS = `
- name: widgets
  distinguished_by: [instance_id]
  expiration: "$last + 1h"
  fire_pipeline: record_pipe
  expire_pipeline: record_pipe
  match_criteria:
  - event_type: [widget.start, widget.end]
  fire_criteria:
  - event_type: widget.end
- name: verdicts
  distinguished_by: [instance_id]
  expiration: "$last + 1h"
  fire_pipeline: record_pipe
  match_criteria:
  - event_type: widget.verdict
  fire_criteria:
  - event_type: widget.verdict
`;

function pipelinesYaml(database: string): string {
  const db = JSON.stringify(database);
  return `
record_pipe:
  - name: recorder
    params: {database: ${db}}
flaky_pipe:
  - name: recorder
    params: {database: ${db}, fail_first: 1}
listed_pipe:
  - name: recorder
    params: {database: ${db}, fail_when_listed: true}
emit_pipe:
  - name: recorder
    params: {database: ${db}, emit: widget.verdict}
slow_pipe:
  - name: recorder
    params: {database: ${db}, sleep_ms: 1500}
die_pipe:
  - name: recorder
    params: {database: ${db}, die_after_first_commit: true}
`;
}

/** A collected record of an output topic. */
export interface Collected {
  readonly key: string | null;
  readonly value: string | null;
  readonly headers: Record<string, string>;
}

/** Everything a test needs. */
export interface PipelineRig {
  readonly db: TestDatabase;
  readonly kafka: Kafka;
  readonly producer: Producer;
  readonly dir: string;
  readonly configFile: string;
  /** The environment that points winchester at this rig (topics, database, group, fast retries). */
  readonly env: Record<string, string>;
  readonly topics: { batches: string; streamEvents: string; deadLetter: string };
  loadConfig(extraEnv?: Record<string, string>): Promise<WinchesterConfig>;
  /** Registers a stop to run before the topics, producer and database go away. */
  onStop(stop: () => Promise<void>): void;
  /** Log lines of in-process workers. */
  readonly logs: { level: string; msg: string; fields: Record<string, unknown> }[];
  readonly log: Logger;
}

export async function pipelineRig(t: TestScope, name: string): Promise<PipelineRig> {
  const stops: (() => Promise<void>)[] = [];
  // Registered first: node:test runs after-hooks in registration order.
  t.after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  });
  const db = await migratedDatabase(t, `it_pw_${name.replaceAll('-', '_')}`);
  await db.pool.query(sql.unsafe`
    CREATE TABLE recorded (batch_id text PRIMARY KEY, stream_id text NOT NULL, kind text NOT NULL,
      events integer NOT NULL, commits integer NOT NULL)`);
  await db.pool.query(sql.unsafe`CREATE TABLE failing (batch_id text PRIMARY KEY)`);
  const kafka = testKafka(`it-pw-${name}`);
  const { names } = await workerTopics(t, kafka, {
    batches: { prefix: `it-pw-${name}-b`, partitions: 2 },
    streamEvents: { prefix: `it-pw-${name}-se`, partitions: 2 },
    deadLetter: { prefix: `it-pw-${name}-dl`, partitions: 1 },
  });
  const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(() => producer.disconnect());

  const dir = mkdtempSync(join(tmpdir(), 'winchester-pw-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'recorder.js'), RECORDER);
  writeFileSync(join(dir, 'triggers.yaml'), TRIGGERS);
  writeFileSync(join(dir, 'pipelines.yaml'), pipelinesYaml(db.url));
  const configFile = join(dir, 'winchester.yaml');
  writeFileSync(
    configFile,
    [
      'trigger_definitions: triggers.yaml',
      'pipeline_config: pipelines.yaml',
      'pipeline_handlers:',
      '  recorder: ./recorder.js#Recorder',
      '',
    ].join('\n'),
  );
  const env: Record<string, string> = {
    WINCHESTER_KAFKA_BROKERS: kafkaBrokers(),
    WINCHESTER_DATABASE_URL: db.url,
    WINCHESTER_KAFKA_CLIENT_ID: uniqueName(`it-pw-${name}`),
    WINCHESTER_KAFKA_TOPICS_BATCHES: names.batches,
    WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS: names.streamEvents,
    WINCHESTER_KAFKA_TOPICS_DEAD_LETTER: names.deadLetter,
    WINCHESTER_KAFKA_PARTITIONS: '2',
    WINCHESTER_PIPELINE_WORKER_MAX_RETRIES: '2',
    WINCHESTER_PIPELINE_WORKER_RETRY_BACKOFF: '0.05',
    WINCHESTER_PIPELINE_WORKER_RETRY_BACKOFF_MAX: '0.2',
    WINCHESTER_PIPELINE_WORKER_SESSION_TIMEOUT: '6',
    WINCHESTER_METRICS_PORT: '0',
  };
  const logs: PipelineRig['logs'] = [];
  return {
    db,
    kafka,
    producer,
    dir,
    configFile,
    env,
    topics: names,
    loadConfig: (extraEnv = {}) => loadConfig(configFile, { env: { ...env, ...extraEnv } }),
    onStop: (stop) => void stops.push(stop),
    logs,
    log: (level, msg, fields = {}) => void logs.push({ level, msg, fields }),
  };
}

const T0 = parseDatetime('2026-01-01T00:00:00.000000Z');

/** `count` widget events of one instance, a second apart; the last is widget.end. */
export function widgetEvents(instance: string, count: number, pad = 0): Event[] {
  return Array.from({ length: count }, (_, i) => ({
    message_id: `${instance}-m${i}`,
    event_type: i === count - 1 ? 'widget.end' : 'widget.start',
    timestamp: T0 + i * 1_000_000,
    traits: {
      instance_id: { type: 'text', value: instance },
      ...(pad > 0 ? { blob: { type: 'text', value: 'x'.repeat(pad) } } : {}),
    },
  }));
}

let seq = 0;

/**
 * Stores a stream as the streams stage leaves a fired/expired one — its row in `state`, its events, and
 * its batch in the outbox — and returns the batch and its value.
 */
export async function storeStream(
  rig: PipelineRig,
  o: {
    readonly kind?: 'fire' | 'expire';
    readonly state?: StreamState;
    readonly pipeline?: string;
    readonly events?: readonly Event[];
  } = {},
): Promise<{ batch: BatchRecord; value: string }> {
  const kind = o.kind ?? 'fire';
  const n = ++seq;
  const streamId = `p0-${n}-${Date.now().toString(36)}`;
  const instance = `inst-${streamId}`;
  const events = o.events ?? widgetEvents(instance, 3);
  const first = events[0]?.timestamp ?? T0;
  const last = events[events.length - 1]?.timestamp ?? T0;
  const batch: BatchRecord = {
    batchId: `${streamId}:${kind}`,
    streamId,
    trigger: 'widgets',
    kind,
    pipeline: o.pipeline ?? 'record_pipe',
    distinguishing: { instance_id: { type: 'text', value: instance } },
    first,
    last,
    events,
  };
  const value = encodeBatch(batch);
  const state = o.state ?? (kind === 'fire' ? 'firing' : 'expiring');
  const pool = rig.db.pool;
  await pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`
      INSERT INTO streams (id, topic, partition, seq, trigger, key, distinguishing, state, first_event,
        last_event, expire_at, version)
      VALUES (${streamId}, 'it-stream-events', 0, ${n}, 'widgets',
        ${`[["instance_id","t",${JSON.stringify(instance)}]]`},
        ${JSON.stringify({ instance_id: { type: 'text', value: instance } })}::jsonb,
        ${state}::stream_state, ${first}, ${last}, ${last + 3_600_000_000}, 3)`);
    for (const e of events) {
      await tx.query(sql.unsafe`
        INSERT INTO stream_events (stream_id, message_id, event_type, "timestamp", traits)
        VALUES (${streamId}, ${e.message_id}, ${e.event_type}, ${e.timestamp}, ${JSON.stringify(e.traits)}::jsonb)`);
    }
    await tx.query(sql.unsafe`
      INSERT INTO outbox (batch_id, stream_id, kind, message_key, payload, published_at)
      VALUES (${batch.batchId}, ${streamId}, ${kind}, ${batch.batchId}, ${value}, now())`);
  });
  return { batch, value };
}

/** Produces `value` to the batches topic keyed by `key` (the batch id), acknowledged by all replicas. */
export async function publishBatch(
  rig: PipelineRig,
  key: string | null,
  value: string | null,
): Promise<void> {
  await rig.producer.send({ topic: rig.topics.batches, acks: -1, messages: [{ key, value }] });
}

/** Starts a consumer of `topic` from the beginning that collects records with their headers. */
export async function collect(rig: PipelineRig, topic: string): Promise<Collected[]> {
  const out: Collected[] = [];
  const consumer = rig.kafka.consumer({ groupId: uniqueName('it-pw-collect'), maxWaitTimeInMs: 100 });
  rig.onStop(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
      out.push({ key: message.key?.toString() ?? null, value: message.value?.toString() ?? null, headers });
    },
  });
  return out;
}

/** Polls `check` every 100 ms until it returns true; fails after `timeoutMs` with `what`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The `recorded` rows by batch id: how many commits each batch got. */
export async function recorded(rig: PipelineRig): Promise<Map<string, { commits: number; events: number }>> {
  const rows = await rig.db.pool.any(sql.unsafe`SELECT batch_id, commits, events FROM recorded`);
  return new Map(
    rows.map((r) => [String(r.batch_id), { commits: Number(r.commits), events: Number(r.events) }]),
  );
}

/** The stream's state and version, or null when it is gone. */
export async function streamRow(
  rig: PipelineRig,
  streamId: string,
): Promise<{ state: string; version: number } | null> {
  const row = await rig.db.pool.maybeOne(
    sql.unsafe`SELECT state, version FROM streams WHERE id = ${streamId}`,
  );
  return row === null ? null : { state: String(row.state), version: Number(row.version) };
}

/** Whether the batch id is recorded in completed_batches. */
export async function isCompleted(rig: PipelineRig, batchId: string): Promise<boolean> {
  const row = await rig.db.pool.maybeOne(
    sql.unsafe`SELECT 1 AS x FROM completed_batches WHERE batch_id = ${batchId}`,
  );
  return row !== null;
}
