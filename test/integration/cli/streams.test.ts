/**
 * `winchester streams list | show | retry` against a migrated PostgreSQL database holding rows inserted
 * here, and (retry) a real Kafka topic the re-produced batches are consumed back from.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type DatabasePool, sql } from '../../../src/db/pool.js';
import { moveToRetry, retryCandidates } from '../../../src/db/streams-query.js';
import type { StreamState } from '../../../src/engine/effects.js';
import {
  batchIdOf,
  decodeBatch,
  decodeBatchMessage,
  encodeBatch,
  MAX_INLINE_BATCH_BYTES,
} from '../../../src/kafka/records.js';
import type { Event } from '../../../src/model/event.js';
import { formatInstant, type Instant, nowInstant, parseDatetime } from '../../../src/timex/instant.js';
import { distinguishingKey } from '../../../src/triggers/key.js';
import type { DistinguishingValues } from '../../../src/triggers/types.js';
import { PipelineService } from '../../../src/worker/pipeline-service.js';
import { runCli } from '../../helpers/cli.js';
import { INTEGRATION_TIMEOUT_MS, kafkaBrokers, uniqueName } from '../../helpers/integration.js';
import { Inbox, startConsumer, testAdmin, testKafka, testTopic } from '../../helpers/kafka.js';
import { migratedDatabase } from '../db/schema.js';
import {
  eventually,
  isCompleted,
  pipelineRig,
  publishBatch,
  recorded,
  storeStream,
  streamRow,
} from '../pipeline/rig.js';

const opts = { timeout: INTEGRATION_TIMEOUT_MS };
const CONFIG = fileURLToPath(new URL('../../../etc/winchester.yaml', import.meta.url));
const H = 3_600_000_000;
const t = (s: string) => parseDatetime(s);

interface StreamRow {
  id: string;
  trigger?: string;
  state?: StreamState;
  distinguishing?: DistinguishingValues;
  first: Instant;
  last?: Instant;
  version?: number;
  fireAt?: Instant | null;
  closedAt?: Instant | null;
}

let seq = 0;

async function insertStream(pool: DatabasePool, s: StreamRow): Promise<void> {
  const distinguishing = s.distinguishing ?? {};
  seq += 1;
  await pool.query(sql.unsafe`
    INSERT INTO streams (id, topic, partition, seq, trigger, key, distinguishing, state, first_event, last_event,
      expire_at, fire_at, closed_at, version, criterion_counts)
    VALUES (${s.id}, 'winchester.stream-events', 0, ${seq}, ${s.trigger ?? 'usage'}, ${distinguishingKey(distinguishing)},
      ${JSON.stringify(distinguishing)}::jsonb, ${s.state ?? 'active'}::stream_state, ${s.first}, ${s.last ?? s.first},
      ${(s.last ?? s.first) + 24 * H}, ${s.fireAt ?? null}, ${s.closedAt ?? null}, ${s.version ?? 1}, '{1,0}')`);
}

async function insertEvents(pool: DatabasePool, streamId: string, events: readonly Event[]): Promise<void> {
  for (const e of events) {
    await pool.query(sql.unsafe`
      INSERT INTO stream_events (stream_id, message_id, event_type, "timestamp", traits)
      VALUES (${streamId}, ${e.message_id}, ${e.event_type}, ${e.timestamp}, ${JSON.stringify(e.traits)}::jsonb)`);
  }
}

/** The stream's batch as the trigger worker writes it to the outbox; returns the payload. */
async function insertOutbox(
  pool: DatabasePool,
  streamId: string,
  kind: 'fire' | 'expire',
  events: readonly Event[],
  options: { published?: boolean; padding?: number } = {},
): Promise<string> {
  const first = events[0]?.timestamp ?? t('2014-08-01');
  const payload = encodeBatch({
    batchId: batchIdOf(streamId, kind),
    streamId,
    trigger: 'usage',
    kind,
    pipeline: kind === 'fire' ? 'usage_pipeline' : 'expire_pipeline',
    distinguishing: {
      instance_id: { type: 'text', value: `${streamId}${'x'.repeat(options.padding ?? 0)}` },
    },
    first,
    last: events.at(-1)?.timestamp ?? first,
    events,
  });
  await pool.query(sql.unsafe`
    INSERT INTO outbox (batch_id, stream_id, kind, message_key, payload, published_at)
    VALUES (${batchIdOf(streamId, kind)}, ${streamId}, ${kind}, ${streamId}, ${payload},
      ${options.published === false ? null : sql.fragment`now()`})`);
  return payload;
}

const ev = (id: string, at: string, extra: Event['traits'] = {}): Event => ({
  message_id: id,
  event_type: 'compute.instance.exists',
  timestamp: t(at),
  traits: { ratio: { type: 'float', value: 1 }, memory_mb: { type: 'int', value: 512 }, ...extra },
});

async function stateOf(pool: DatabasePool, id: string): Promise<{ state: string; version: number }> {
  const r = await pool.one(sql.unsafe`SELECT state, version FROM streams WHERE id = ${id}`);
  return { state: String(r.state), version: Number(r.version) };
}

test(
  'streams list: filters combine, sorted by first event then id, table and typed JSON',
  opts,
  async (t0) => {
    const db = await migratedDatabase(t0, 'it_streams_list');
    const env = { DATABASE_URL: db.url };
    const now = nowInstant();
    const day = { type: 'range' as const, begin: t('2014-08-01'), end: t('2014-08-02') };
    await insertStream(db.pool, {
      id: 'p0-1',
      state: 'active',
      first: now - 5 * H,
      distinguishing: { instance_id: { type: 'text', value: 'i-1' }, timestamp: day },
    });
    await insertStream(db.pool, {
      id: 'p0-2',
      state: 'error',
      first: now - 72 * H,
      distinguishing: { instance_id: { type: 'text', value: 'i-2' }, timestamp: day },
    });
    await insertStream(db.pool, {
      id: 'p0-3',
      trigger: 'other',
      state: 'error',
      first: now - 5 * H,
      distinguishing: { n: { type: 'int', value: 3 } },
    });
    await insertStream(db.pool, {
      id: 'p1-1',
      state: 'completed',
      first: now - H / 2,
      distinguishing: { n: { type: 'float', value: 3 }, s: { type: 'text', value: '3' } },
    });
    await insertEvents(db.pool, 'p0-1', [ev('m1', '2014-08-01T01:00:00Z'), ev('m2', '2014-08-01T02:00:00Z')]);

    const list = async (...args: string[]) => {
      const r = await runCli(['streams', 'list', '-c', CONFIG, '--format', 'json', ...args], { env });
      assert.equal(r.code, 0, r.stderr);
      return r.stdoutLines().map((l) => JSON.parse(l).id as string);
    };
    // Oldest first event first; p0-1 and p0-3 tie on it and go by id.
    assert.deepEqual(await list(), ['p0-2', 'p0-1', 'p0-3', 'p1-1']);
    assert.deepEqual(await list('--state', 'error'), ['p0-2', 'p0-3']);
    assert.deepEqual(await list('--state', 'error', '--trigger', 'usage'), ['p0-2']);
    assert.deepEqual(await list('--trigger', 'nope'), []);
    assert.deepEqual(await list('--older-than', '2h'), ['p0-2', 'p0-1', 'p0-3']);
    assert.deepEqual(await list('--older-than', '1d'), ['p0-2']);
    assert.deepEqual(await list('--newer-than', '1d'), ['p0-1', 'p0-3', 'p1-1']);
    assert.deepEqual(await list('--newer-than', '1d', '--older-than', '1h'), ['p0-1', 'p0-3']);
    // Typed distinguishing values: text, a number (int 3 and float 3.0, not the text "3"), quoted text.
    assert.deepEqual(await list('--distinguishing', 'instance_id=i-2'), ['p0-2']);
    assert.deepEqual(await list('--distinguishing', 'n=3'), ['p0-3', 'p1-1']);
    assert.deepEqual(await list('--distinguishing', 'n=3.0'), ['p1-1']);
    assert.deepEqual(await list('--distinguishing', 's=3'), ['p1-1']);
    assert.deepEqual(await list('--distinguishing', 'n="3"'), []);
    // A datetime finds the ranges containing it (begin ≤ t < end); BEGIN/END the exact range.
    assert.deepEqual(await list('--distinguishing', 'timestamp=2014-08-01T23:59:59.999999Z'), [
      'p0-2',
      'p0-1',
    ]);
    assert.deepEqual(await list('--distinguishing', 'timestamp=2014-08-02T00:00:00Z'), []);
    assert.deepEqual(
      await list('--distinguishing', 'timestamp=2014-08-01T00:00:00.000000Z/2014-08-02T00:00:00.000000Z'),
      ['p0-2', 'p0-1'],
    );
    assert.deepEqual(
      await list('--distinguishing', 'timestamp=2014-08-01', '--distinguishing', 'instance_id=i-1'),
      ['p0-1'],
    );

    // JSON: typed fields, counts, microsecond times.
    const json = await runCli(
      ['streams', 'list', '-c', CONFIG, '--format', 'json', '--distinguishing', 's=3'],
      { env },
    );
    assert.equal(json.code, 0, json.stderr);
    assert.equal(json.stdoutLines().length, 1);
    assert.match(json.stdout, /"n":\{"type":"float","value":3\.0\}/);
    const row = JSON.parse(json.stdout);
    assert.equal(row.first_event, formatInstant(now - H / 2));
    assert.deepEqual(row.distinguishing.s, { type: 'text', value: '3' });
    assert.equal(row.events, 0);

    // Table, with the limit noted on stderr when it cut the list.
    const table = await runCli(['streams', 'list', '-c', CONFIG, '--limit', '2'], { env });
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdoutLines();
    assert.equal(lines.length, 3);
    assert.match(
      lines[0]!,
      /^ID {4}TRIGGER {2}STATE {3}EVENTS {2}FIRST_EVENT {18}LAST_EVENT {19}DISTINGUISHING$/,
    );
    assert.match(
      lines[2]!,
      /^p0-1 {2}usage {4}active {7}2 {2}\S+ {2}\S+ {2}instance_id=i-1 timestamp=2014-08-01T00:00:00\.000000Z\/2014-08-02T00:00:00\.000000Z$/,
    );
    assert.equal(table.stderr, 'winchester: showing the first 2 streams; more match (raise --limit)\n');
    const exact = await runCli(['streams', 'list', '-c', CONFIG, '--limit', '4'], { env });
    assert.equal(exact.stderr, '');
    const empty = await runCli(['streams', 'list', '-c', CONFIG, '--trigger', 'nope'], { env });
    assert.equal(empty.code, 0);
    assert.equal(empty.stdoutLines().length, 1, 'the header');
    assert.equal(empty.stderr, 'winchester: no streams match\n');
  },
);

test('streams show: every field, typed events, the outbox batch and its completion', opts, async (t0) => {
  const db = await migratedDatabase(t0, 'it_streams_show');
  const env = { DATABASE_URL: db.url };
  const events = [
    ev('m2', '2014-08-01T02:00:00.000002Z', {
      launched_at: { type: 'datetime', value: t('2014-07-01T00:00:00.5Z') },
    }),
    ev('m1', '2014-08-01T01:00:00.000001Z', { host: { type: 'text', value: 'compute 1' } }),
  ];
  await insertStream(db.pool, {
    id: 'p3-9',
    state: 'firing',
    version: 5,
    first: events[1]!.timestamp,
    last: events[0]!.timestamp,
    fireAt: t('2014-08-01T03:00:00Z'),
    closedAt: t('2014-08-01T03:00:01Z'),
    distinguishing: { instance_id: { type: 'text', value: 'i-9' } },
  });
  await insertEvents(db.pool, 'p3-9', events);
  const payload = await insertOutbox(db.pool, 'p3-9', 'fire', [events[1]!, events[0]!], { published: false });

  const json = await runCli(['streams', 'show', 'p3-9', '-c', CONFIG, '--format', 'json'], { env });
  assert.equal(json.code, 0, json.stderr);
  assert.equal(json.stdoutLines().length, 1);
  assert.match(json.stdout, /"ratio":\{"type":"float","value":1\.0\}/);
  const o = JSON.parse(json.stdout);
  assert.equal(o.stream.id, 'p3-9');
  assert.equal(o.stream.state, 'firing');
  assert.equal(o.stream.version, 5);
  assert.equal(o.stream.events, 2);
  assert.equal(o.stream.first_event, '2014-08-01T01:00:00.000001Z');
  assert.equal(o.stream.last_event, '2014-08-01T02:00:00.000002Z');
  assert.equal(o.stream.expire_at, '2014-08-02T02:00:00.000002Z');
  assert.equal(o.stream.fire_at, '2014-08-01T03:00:00.000000Z');
  assert.equal(o.stream.closed_at, '2014-08-01T03:00:01.000000Z');
  assert.deepEqual(o.stream.criterion_counts, [1, 0]);
  assert.deepEqual(o.stream.distinguishing, { instance_id: { type: 'text', value: 'i-9' } });
  assert.match(o.stream.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  // Events oldest first, traits typed.
  assert.deepEqual(
    o.events.map((e: { message_id: string }) => e.message_id),
    ['m1', 'm2'],
  );
  assert.deepEqual(o.events[1].traits.launched_at, {
    type: 'datetime',
    value: '2014-07-01T00:00:00.500000Z',
  });
  assert.deepEqual(o.events[0].traits.host, { type: 'text', value: 'compute 1' });
  assert.deepEqual(o.events[0].traits.memory_mb, { type: 'int', value: 512 });
  assert.equal(o.batches.length, 1);
  assert.equal(o.batches[0].batch_id, 'p3-9:fire');
  assert.equal(o.batches[0].published, false);
  assert.equal(o.batches[0].completed, false);
  assert.equal(o.batches[0].bytes, Buffer.byteLength(payload));

  await db.pool.query(sql.unsafe`UPDATE outbox SET published_at = now()`);
  await db.pool.query(
    sql.unsafe`INSERT INTO completed_batches (batch_id, stream_id) VALUES ('p3-9:fire', 'p3-9')`,
  );
  const table = await runCli(['streams', 'show', 'p3-9', '-c', CONFIG], { env });
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^stream {12}p3-9\n/);
  assert.match(table.stdout, /\nversion {11}5\n/);
  assert.match(
    table.stdout,
    /\nbatch {13}p3-9:fire \(fire, \d+ bytes\), published \S+Z, completed \d{4}-\d\d-\d\dT\S+Z\n/,
  );
  assert.match(table.stdout, /\nevents \(2\)\nMESSAGE_ID {2}EVENT_TYPE {15}TIMESTAMP {20}TRAITS\n/);
  assert.match(
    table.stdout,
    /\nm1 {10}compute\.instance\.exists {2}2014-08-01T01:00:00\.000001Z {2}host="compute 1" memory_mb=512 ratio=1\.0\n/,
  );

  const missing = await runCli(['streams', 'show', 'nope', '-c', CONFIG], { env });
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, '');
  assert.equal(missing.stderr, "winchester: no stream 'nope'\n");
});

test(
  'streams retry: moves failed streams with a version check and re-produces their batches',
  opts,
  async (t0) => {
    const db = await migratedDatabase(t0, 'it_streams_retry');
    const kafka = testKafka(uniqueName('streams-retry'));
    const admin = await testAdmin(t0, kafka);
    const topic = await testTopic(t0, admin, 'it-streams-batches', { numPartitions: 2 });
    const env = {
      DATABASE_URL: db.url,
      KAFKA_BROKERS: kafkaBrokers(),
      WINCHESTER_KAFKA_TOPICS_BATCHES: topic,
    };
    const events = [ev('m1', '2014-08-01T01:00:00Z'), ev('m2', '2014-08-01T02:00:00Z')];
    const first = t('2014-08-01T01:00:00Z');
    await insertStream(db.pool, { id: 'e1', state: 'error', version: 3, first });
    await insertStream(db.pool, { id: 'e2', state: 'expire_error', version: 7, first });
    await insertStream(db.pool, { id: 'e3', state: 'error', first }); // no outbox row
    await insertStream(db.pool, { id: 'r1', state: 'retry_fire', version: 4, first });
    await insertStream(db.pool, { id: 'c1', state: 'completed', first });
    await insertStream(db.pool, { id: 'big', trigger: 'large', state: 'error', version: 2, first });
    const payloads = new Map<string, string>([
      ['e1', await insertOutbox(db.pool, 'e1', 'fire', events)],
      ['e2', await insertOutbox(db.pool, 'e2', 'expire', events)],
      ['r1', await insertOutbox(db.pool, 'r1', 'fire', events)],
      ['c1', await insertOutbox(db.pool, 'c1', 'fire', events)],
      ['big', await insertOutbox(db.pool, 'big', 'fire', events, { padding: MAX_INLINE_BATCH_BYTES })],
    ]);
    // A completion record under a failed stream's batch would make the pipeline worker skip the retry.
    await db.pool.query(
      sql.unsafe`INSERT INTO completed_batches (batch_id, stream_id) VALUES ('e2:expire', 'e2')`,
    );

    // A dry run changes and produces nothing (and needs no Kafka).
    const dry = await runCli(['streams', 'retry', 'e1', 'e2', 'e3', '--dry-run', '-c', CONFIG], {
      env: { ...env, KAFKA_BROKERS: '127.0.0.1:1' },
    });
    assert.equal(dry.code, 1, dry.stderr);
    assert.deepEqual(dry.stdoutLines(), [
      `would retry  e1  error → retry_fire; batch e1:fire would be produced to ${topic}`,
      `would retry  e2  expire_error → retry_expire; batch e2:expire would be produced to ${topic} (its completion record cleared)`,
      'skipped      e3  no fire batch in the outbox to run again; left in error',
      'dry run: 2 would be retried, 0 would be republished, 1 skipped (nothing changed)',
    ]);
    assert.deepEqual(await stateOf(db.pool, 'e1'), { state: 'error', version: 3 });

    // Kafka unreachable: nothing moves, exit 1 with one clear line.
    const down = await runCli(['streams', 'retry', 'e1', '--timeout', '2', '-c', CONFIG], {
      env: { ...env, KAFKA_BROKERS: '127.0.0.1:1' },
    });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^winchester: connecting to Kafka at 127\.0\.0\.1:1: /);
    assert.equal(down.stderrLines().length, 1, down.stderr);
    assert.deepEqual(await stateOf(db.pool, 'e1'), { state: 'error', version: 3 });

    const inbox = new Inbox();
    await startConsumer(
      t0,
      kafka.consumer({ groupId: uniqueName('streams-retry-group') }),
      topic,
      inbox.handler('c'),
    );

    const r = await runCli(['streams', 'retry', 'e1', 'e2', 'e3', 'r1', 'c1', 'nope', '-c', CONFIG], { env });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(r.stdoutLines(), [
      `retried      e1    error → retry_fire (version 4); batch e1:fire produced to ${topic}`,
      `retried      e2    expire_error → retry_expire (version 8); batch e2:expire produced to ${topic} (its completion record cleared)`,
      'skipped      e3    no fire batch in the outbox to run again; left in error',
      `republished  r1    already retry_fire; batch r1:fire produced again to ${topic}`,
      'skipped      c1    state completed cannot be retried (only error and expire_error)',
      'skipped      nope  no such stream',
      '2 retried, 1 republished, 3 skipped',
    ]);
    assert.deepEqual(await stateOf(db.pool, 'e1'), { state: 'retry_fire', version: 4 });
    assert.deepEqual(await stateOf(db.pool, 'e2'), { state: 'retry_expire', version: 8 });
    assert.deepEqual(await stateOf(db.pool, 'e3'), { state: 'error', version: 1 });
    assert.deepEqual(await stateOf(db.pool, 'r1'), { state: 'retry_fire', version: 4 });
    const completed = await db.pool.anyFirst(sql.unsafe`SELECT batch_id FROM completed_batches`);
    assert.deepEqual(completed, []);

    // Every re-produced record is the outbox payload byte for byte, keyed as before.
    const got = await inbox.waitFor(3, 30_000);
    assert.deepEqual(got.map((m) => m.key).sort(), ['e1', 'e2', 'r1']);
    for (const m of got) {
      assert.equal(m.value, payloads.get(m.key!), `payload of ${m.key}`);
      assert.equal(decodeBatch(m.value!).batchId, batchIdOf(m.key!, m.key === 'e2' ? 'expire' : 'fire'));
    }
    // A float stays a float through the outbox (format 2 tags each trait's type).
    const e1 = decodeBatch(got.find((m) => m.key === 'e1')!.value!);
    assert.deepEqual(e1.events[0]?.traits.ratio, { type: 'float', value: 1 });

    // --state error --trigger: only that trigger's streams; a batch over the inline limit goes by reference.
    const byTrigger = await runCli(
      ['streams', 'retry', '--state', 'error', '--trigger', 'large', '-c', CONFIG],
      {
        env,
      },
    );
    assert.equal(byTrigger.code, 0, byTrigger.stderr);
    assert.deepEqual(byTrigger.stdoutLines(), [
      `retried  big  error → retry_fire (version 3); batch big:fire produced to ${topic}`,
      '1 retried, 0 republished, 0 skipped',
    ]);
    const ref = (await inbox.waitFor(4, 30_000)).find((m) => m.key === 'big')!;
    const decoded = decodeBatchMessage(ref.value!);
    assert.equal(decoded.type, 'reference');
    assert.deepEqual(decoded.type === 'reference' ? decoded.reference : null, {
      batchId: 'big:fire',
      streamId: 'big',
      kind: 'fire',
      bytes: Buffer.byteLength(payloads.get('big')!),
    });

    // --state error: e3 (no outbox) is what is left, and is reported.
    const rest = await runCli(['streams', 'retry', '--state', 'error', '-c', CONFIG], { env });
    assert.equal(rest.code, 1);
    assert.deepEqual(rest.stdoutLines(), [
      'skipped  e3  no fire batch in the outbox to run again; left in error',
      '0 retried, 0 republished, 1 skipped',
    ]);
    const none = await runCli(['streams', 'retry', '--state', 'expire_error', '-c', CONFIG], { env });
    assert.equal(none.code, 0);
    assert.deepEqual(none.stdoutLines(), ['no stream in expire_error']);
    assert.equal(inbox.messages.length, 4);
  },
);

test('retry moves only streams still at the version and state read', opts, async (t0) => {
  const db = await migratedDatabase(t0, 'it_streams_race');
  const first = t('2014-08-01');
  await insertStream(db.pool, { id: 'a', state: 'error', version: 2, first });
  await insertStream(db.pool, { id: 'b', state: 'error', version: 2, first });
  await insertOutbox(db.pool, 'a', 'fire', [ev('m1', '2014-08-01T01:00:00Z')]);
  await insertOutbox(db.pool, 'b', 'fire', [ev('m1', '2014-08-01T01:00:00Z')]);
  const read = await retryCandidates(db.pool, { ids: ['a', 'b'] }, MAX_INLINE_BATCH_BYTES);
  assert.deepEqual(
    read.map((c) => [c.id, c.state, c.version, c.batch?.batchId]),
    [
      ['a', 'error', 2, 'a:fire'],
      ['b', 'error', 2, 'b:fire'],
    ],
  );
  // Someone else retries b in between (and a worker picks it up: retry_fire → firing).
  await db.pool.query(sql.unsafe`UPDATE streams SET state = 'retry_fire', version = 3 WHERE id = 'b'`);
  await db.pool.query(sql.unsafe`UPDATE streams SET state = 'firing', version = 4 WHERE id = 'b'`);
  const result = await moveToRetry(db.pool, [
    { id: 'a', version: 2, from: 'error', batchId: 'a:fire' },
    { id: 'b', version: 2, from: 'error', batchId: 'b:fire' },
  ]);
  assert.deepEqual([...result.moved], ['a']);
  assert.deepEqual(await stateOf(db.pool, 'a'), { state: 'retry_fire', version: 3 });
  assert.deepEqual(await stateOf(db.pool, 'b'), { state: 'firing', version: 4 });
  // Same version but another state (a stale read): not moved either.
  await insertStream(db.pool, { id: 'c', state: 'expire_error', version: 5, first });
  const stale = await moveToRetry(db.pool, [{ id: 'c', version: 5, from: 'error', batchId: 'c:fire' }]);
  assert.equal(stale.moved.size, 0);
  assert.deepEqual(await stateOf(db.pool, 'c'), { state: 'expire_error', version: 5 });
});

test('database problems: one line, exit 1 (unreachable) or 2 (no database.url), no stack', opts, async () => {
  const down = await runCli(['streams', 'list', '-c', CONFIG], {
    env: { DATABASE_URL: 'postgres://winchester:s3cret@127.0.0.1:1/nowhere' },
  });
  assert.equal(down.code, 1);
  assert.equal(down.stdout, '');
  assert.equal(down.stderrLines().length, 1, down.stderr);
  assert.match(
    down.stderr,
    /^winchester: cannot use PostgreSQL at postgres:\/\/winchester:\*\*\*@127\.0\.0\.1:1\/nowhere: /,
  );
  assert.doesNotMatch(down.stderr, /s3cret/);

  const dir = await mkdtemp(join(tmpdir(), 'streams-cli-'));
  await writeFile(join(dir, 'winchester.yaml'), 'kafka:\n  brokers: [127.0.0.1:19092]\n');
  for (const args of [['list'], ['show', 'x'], ['retry', 'x']]) {
    const r = await runCli(['streams', ...args], { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr,
      'winchester: invalid configuration:\nwinchester.yaml: database.url is not set: set it there, or set DATABASE_URL\n',
    );
  }
});

test('an unmigrated database says to run winchester db upgrade', opts, async (t0) => {
  const { testDatabase } = await import('../../helpers/db.js');
  const db = await testDatabase(t0, 'it_streams_empty');
  const r = await runCli(['streams', 'list', '-c', CONFIG], { env: { DATABASE_URL: db.url } });
  assert.equal(r.code, 1);
  assert.equal(r.stderrLines().length, 1, r.stderr);
  assert.match(r.stderr, /no winchester schema.*winchester db upgrade/);
});

test('end to end: a pipeline that failed for good runs again after streams retry, once', opts, async (t0) => {
  const rig = await pipelineRig(t0, 'streams-cli');
  const fire = await storeStream(rig, { pipeline: 'listed_pipe' });
  const expire = await storeStream(rig, { kind: 'expire', pipeline: 'listed_pipe' });
  await rig.db.pool.query(
    sql.unsafe`INSERT INTO failing VALUES (${fire.batch.batchId}), (${expire.batch.batchId})`,
  );
  const service = await PipelineService.start({
    config: await rig.loadConfig(),
    kafka: rig.kafka,
    pool: rig.db.pool,
    log: rig.log,
    maxWaitTimeInMs: 100,
    heartbeatIntervalMs: 200,
  });
  rig.onStop(() => service.stop());
  await publishBatch(rig, fire.batch.batchId, fire.value);
  await publishBatch(rig, expire.batch.batchId, expire.value);
  await eventually('both failed for good', () => service.worker.counts.failed === 2);
  assert.equal((await streamRow(rig, fire.batch.streamId))?.state, 'error');
  assert.equal((await streamRow(rig, expire.batch.streamId))?.state, 'expire_error');

  // The cause is fixed; the operator retries every failed stream of the trigger, then the expired one by id.
  await rig.db.pool.query(sql.unsafe`DELETE FROM failing`);
  const byState = await runCli(
    ['streams', 'retry', '--state', 'error', '--trigger', 'widgets', '-c', rig.configFile],
    {
      env: rig.env,
    },
  );
  assert.equal(byState.code, 0, byState.stdout + byState.stderr);
  assert.match(byState.stdoutLines()[0]!, new RegExp(`^retried  ${fire.batch.streamId}  error → retry_fire`));
  const byId = await runCli(['streams', 'retry', expire.batch.streamId, '-c', rig.configFile], {
    env: rig.env,
  });
  assert.equal(byId.code, 0, byId.stdout + byId.stderr);

  await eventually('both completed after the retry', async () => (await recorded(rig)).size === 2);
  await eventually('completions recorded', async () => isCompleted(rig, expire.batch.batchId));
  assert.ok(await isCompleted(rig, fire.batch.batchId));
  assert.deepEqual((await recorded(rig)).get(fire.batch.batchId), { commits: 1, events: 3 });
  assert.deepEqual((await recorded(rig)).get(expire.batch.batchId), { commits: 1, events: 3 });
  assert.equal(await streamRow(rig, fire.batch.streamId), null, 'completed and purged');
  assert.equal(await streamRow(rig, expire.batch.streamId), null, 'completed and purged');
});

test(
  'retry: a batch that cannot be produced after the move is reported; a second retry produces it',
  opts,
  async (t0) => {
    const db = await migratedDatabase(t0, 'it_streams_unpub');
    const kafka = testKafka(uniqueName('streams-unpub'));
    const admin = await testAdmin(t0, kafka);
    const topic = await testTopic(t0, admin, 'it-streams-unpub');
    await insertStream(db.pool, { id: 'e1', state: 'error', version: 2, first: t('2014-08-01') });
    const payload = await insertOutbox(db.pool, 'e1', 'fire', [ev('m1', '2014-08-01T01:00:00Z')]);
    const base = { DATABASE_URL: db.url, KAFKA_BROKERS: kafkaBrokers() };

    // Kafka answers, but the topic does not exist (the broker does not create topics on produce).
    const missing = `${topic}-missing`;
    const r = await runCli(['streams', 'retry', 'e1', '--timeout', '3', '-c', CONFIG], {
      env: { ...base, WINCHESTER_KAFKA_TOPICS_BATCHES: missing },
    });
    assert.equal(r.code, 1);
    assert.match(
      r.stdoutLines()[0]!,
      /^failed {2}e1 {2}moved to retry_fire, but batch e1:fire could not be produced \(producing to \S+: .+\); run 'winchester streams retry e1' again$/,
    );
    assert.equal(r.stdoutLines()[1], '0 retried, 0 republished, 0 skipped, 1 not produced');
    assert.match(r.stderr, /^winchester: producing to \S+-missing: /);
    assert.equal(r.stderrLines().length, 1);
    assert.deepEqual(await stateOf(db.pool, 'e1'), { state: 'retry_fire', version: 3 });

    const inbox = new Inbox();
    await startConsumer(
      t0,
      kafka.consumer({ groupId: uniqueName('streams-unpub-group') }),
      topic,
      inbox.handler('c'),
    );
    const again = await runCli(['streams', 'retry', 'e1', '-c', CONFIG], {
      env: { ...base, WINCHESTER_KAFKA_TOPICS_BATCHES: topic },
    });
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.deepEqual(again.stdoutLines(), [
      `republished  e1  already retry_fire; batch e1:fire produced again to ${topic}`,
      '0 retried, 1 republished, 0 skipped',
    ]);
    const [got] = await inbox.waitFor(1, 30_000);
    assert.equal(got?.key, 'e1');
    assert.equal(got?.value, payload);
    assert.deepEqual(await stateOf(db.pool, 'e1'), { state: 'retry_fire', version: 3 });
  },
);
