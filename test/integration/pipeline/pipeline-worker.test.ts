import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from '../../../src/db/pool.js';
import { decodeStreamRecord, encodeBatchReference } from '../../../src/kafka/records.js';
import { PipelineService } from '../../../src/worker/pipeline-service.js';
import { runCli } from '../../helpers/cli.js';
import { INTEGRATION_TIMEOUT_MS } from '../../helpers/integration.js';
import {
  collect,
  eventually,
  isCompleted,
  type PipelineRig,
  pipelineRig,
  publishBatch,
  recorded,
  storeStream,
  streamRow,
  widgetEvents,
} from './rig.js';

/** Starts an in-process pipeline worker on the rig's configuration (with `env` overrides). */
async function startWorker(rig: PipelineRig, env: Record<string, string> = {}): Promise<PipelineService> {
  const service = await PipelineService.start({
    config: await rig.loadConfig(env),
    kafka: rig.kafka,
    pool: rig.db.pool,
    log: rig.log,
    maxWaitTimeInMs: 100,
    heartbeatIntervalMs: 200,
  });
  rig.onStop(() => service.stop());
  return service;
}

test('fire and expire batches run once; completion recorded, streams purged with their events', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const rig = await pipelineRig(t, 'happy');
  const fire = await storeStream(rig, { kind: 'fire' });
  const expire = await storeStream(rig, { kind: 'expire' });
  const service = await startWorker(rig);
  await publishBatch(rig, fire.batch.batchId, fire.value);
  await publishBatch(rig, expire.batch.batchId, expire.value);

  await eventually('both batches completed', async () => (await recorded(rig)).size === 2);
  await eventually(
    'completions recorded',
    async () =>
      (await isCompleted(rig, expire.batch.batchId)) && (await isCompleted(rig, fire.batch.batchId)),
  );
  const rows = await recorded(rig);
  assert.deepEqual(rows.get(fire.batch.batchId), { commits: 1, events: 3 });
  assert.deepEqual(rows.get(expire.batch.batchId), { commits: 1, events: 3 });
  assert.equal(await streamRow(rig, fire.batch.streamId), null, 'purged');
  assert.equal(await streamRow(rig, expire.batch.streamId), null, 'purged');
  const events = await rig.db.pool.oneFirst(sql.unsafe`SELECT count(*) FROM stream_events`);
  assert.equal(Number(events), 0, 'events cascade with their stream');
  await eventually('both counted', () => service.worker.counts.completed === 2);
});

test('purge_completed_streams: false keeps the stream, completed with its version bumped', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const rig = await pipelineRig(t, 'keep');
  const fire = await storeStream(rig);
  await startWorker(rig, { WINCHESTER_PURGE_COMPLETED_STREAMS: 'false' });
  await publishBatch(rig, fire.batch.batchId, fire.value);
  await eventually('completion recorded', async () => isCompleted(rig, fire.batch.batchId));
  assert.deepEqual(await streamRow(rig, fire.batch.streamId), { state: 'completed', version: 4 });
  const events = await rig.db.pool.oneFirst(
    sql.unsafe`SELECT count(*) FROM stream_events WHERE stream_id = ${fire.batch.streamId}`,
  );
  assert.equal(Number(events), 3);
});

test('the same batch delivered three times (before and after completion) commits once', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const rig = await pipelineRig(t, 'dup');
  const fire = await storeStream(rig);
  const service = await startWorker(rig);
  await publishBatch(rig, fire.batch.batchId, fire.value);
  await publishBatch(rig, fire.batch.batchId, fire.value);
  await eventually('completed', async () => isCompleted(rig, fire.batch.batchId));
  await publishBatch(rig, fire.batch.batchId, fire.value);
  await eventually('all three handled', () => service.worker.counts.skippedDuplicate === 2);
  assert.deepEqual((await recorded(rig)).get(fire.batch.batchId), { commits: 1, events: 3 });
  assert.equal(service.worker.counts.completed, 1);
});

test('a handler that throws once is retried with backoff and then succeeds', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const rig = await pipelineRig(t, 'flaky');
  const fire = await storeStream(rig, { pipeline: 'flaky_pipe' });
  const dead = await collect(rig, rig.topics.deadLetter);
  const service = await startWorker(rig);
  await publishBatch(rig, fire.batch.batchId, fire.value);
  await eventually('completed', async () => isCompleted(rig, fire.batch.batchId));
  assert.deepEqual((await recorded(rig)).get(fire.batch.batchId), { commits: 1, events: 3 });
  assert.equal(service.worker.counts.retries, 1);
  const retry = rig.logs.find((l) => l.msg === 'pipeline failed: retrying');
  assert.equal(retry?.fields.attempt, 1);
  assert.match(String(retry?.fields.error), /handler 'recorder': failing on purpose, attempt 1/);
  await sleep(300);
  assert.deepEqual(dead, [], 'nothing dead-lettered');
});

test('an always-failing pipeline: error state, dead letter with the reason, no completion; `winchester streams retry` re-runs it', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const rig = await pipelineRig(t, 'fail');
  const fire = await storeStream(rig, { pipeline: 'listed_pipe' });
  const expire = await storeStream(rig, { kind: 'expire', pipeline: 'listed_pipe' });
  await rig.db.pool.query(
    sql.unsafe`INSERT INTO failing VALUES (${fire.batch.batchId}), (${expire.batch.batchId})`,
  );
  const dead = await collect(rig, rig.topics.deadLetter);
  const service = await startWorker(rig);
  await publishBatch(rig, fire.batch.batchId, fire.value);
  await publishBatch(rig, expire.batch.batchId, expire.value);

  await eventually('both dead-lettered', () => dead.length === 2);
  await eventually('both failed', () => service.worker.counts.failed === 2);
  assert.equal(service.worker.counts.retries, 4, 'max_retries 2, per batch');
  assert.equal((await streamRow(rig, fire.batch.streamId))?.state, 'error');
  assert.equal((await streamRow(rig, expire.batch.streamId))?.state, 'expire_error');
  assert.equal(await isCompleted(rig, fire.batch.batchId), false);
  assert.equal((await recorded(rig)).size, 0);
  const letter = dead.find((d) => d.key === fire.batch.batchId);
  assert.equal(letter?.value, fire.value, 'the record as it was read');
  assert.equal(letter?.headers['winchester-reason'], 'pipeline_failed');
  assert.match(
    letter?.headers['winchester-detail'] ?? '',
    /handler 'recorder': batch is listed as failing \(after 3 attempts\)/,
  );
  assert.equal(letter?.headers['winchester-topic'], rig.topics.batches);
  assert.equal(letter?.headers['winchester-batch-id'], fire.batch.batchId);
  assert.equal(letter?.headers['winchester-pipeline'], 'listed_pipe');
  assert.ok(
    letter?.headers['winchester-offset'] !== undefined &&
      letter.headers['winchester-partition'] !== undefined,
  );

  // A redelivery of a failed batch does not run it again…
  await publishBatch(rig, fire.batch.batchId, fire.value);
  await eventually('redelivery skipped', () => service.worker.counts.skippedState === 1);
  // …until an operator asks for a retry: error → retry_fire (expire_error → retry_expire), batch republished.
  await rig.db.pool.query(sql.unsafe`DELETE FROM failing`);
  const retried = await runCli(
    ['streams', 'retry', fire.batch.streamId, expire.batch.streamId, '-c', rig.configFile],
    { env: rig.env },
  );
  assert.equal(retried.code, 0, retried.stderr);
  await eventually('both completed after the retry', async () => (await recorded(rig)).size === 2);
  // The two batches may be on different partitions: each completes on its own.
  await eventually(
    'completions recorded',
    async () =>
      (await isCompleted(rig, expire.batch.batchId)) && (await isCompleted(rig, fire.batch.batchId)),
  );
  assert.equal(await streamRow(rig, fire.batch.streamId), null, 'completed and purged');
  assert.ok(rig.logs.some((l) => l.msg === 'retried stream resumed' && l.fields.from === 'retry_expire'));
});

test('a stream in retry_fire runs; one in error, completed or missing is skipped', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const rig = await pipelineRig(t, 'states');
  const retry = await storeStream(rig, { state: 'retry_fire' });
  const error = await storeStream(rig, { state: 'error' });
  const done = await storeStream(rig, { state: 'completed' });
  const gone = await storeStream(rig);
  await rig.db.pool.query(sql.unsafe`DELETE FROM streams WHERE id = ${gone.batch.streamId}`);
  const service = await startWorker(rig, { WINCHESTER_PURGE_COMPLETED_STREAMS: 'false' });
  for (const s of [retry, error, done, gone]) await publishBatch(rig, s.batch.batchId, s.value);
  await eventually(
    'all handled',
    () => service.worker.counts.completed + service.worker.counts.skippedState === 4,
  );
  assert.equal(service.worker.counts.completed, 1);
  assert.deepEqual([...(await recorded(rig)).keys()], [retry.batch.batchId]);
  // retry_fire (3) → firing (4) → completed (5)
  assert.deepEqual(await streamRow(rig, retry.batch.streamId), { state: 'completed', version: 5 });
  assert.equal((await streamRow(rig, error.batch.streamId))?.state, 'error');
});

test('a batch published by reference is read from the outbox', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const rig = await pipelineRig(t, 'ref');
  // ~1.2 MB: more than the broker takes in one message, so only the reference travels.
  const events = widgetEvents('big', 300, 4000);
  const big = await storeStream(rig, { events });
  assert.ok(Buffer.byteLength(big.value) > 1_100_000);
  const service = await startWorker(rig);
  await publishBatch(
    rig,
    big.batch.batchId,
    encodeBatchReference({
      batchId: big.batch.batchId,
      streamId: big.batch.streamId,
      kind: 'fire',
      bytes: Buffer.byteLength(big.value),
    }),
  );
  await eventually('completed', async () => isCompleted(rig, big.batch.batchId));
  assert.deepEqual((await recorded(rig)).get(big.batch.batchId), { commits: 1, events: 300 });
  await eventually('counted', () => service.worker.counts.completed === 1);
});

test('unreadable records and unknown references or pipelines are dead-lettered and never block the partition', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const rig = await pipelineRig(t, 'bad');
  const unknown = await storeStream(rig, { pipeline: 'no_such_pipeline' });
  const good = await storeStream(rig);
  const dead = await collect(rig, rig.topics.deadLetter);
  const service = await startWorker(rig);
  // All on one partition (same key), ahead of a good batch.
  const key = good.batch.batchId;
  await publishBatch(rig, key, '{"v":1,"batch_id":');
  await publishBatch(rig, key, null);
  await publishBatch(
    rig,
    key,
    encodeBatchReference({ batchId: 'p9-9:fire', streamId: 'p9-9', kind: 'fire', bytes: 10 }),
  );
  await publishBatch(rig, key, unknown.value);
  await publishBatch(rig, key, good.value);
  await eventually('good batch completed', async () => isCompleted(rig, good.batch.batchId));
  await eventually('four dead letters', () => dead.length === 4);
  assert.deepEqual(
    dead.map((d) => d.headers['winchester-reason']),
    ['invalid_batch', 'empty_value', 'missing_reference', 'unknown_pipeline'],
  );
  assert.match(dead[0]?.headers['winchester-detail'] ?? '', /invalid JSON/);
  assert.equal(dead[1]?.value, null);
  assert.equal((await streamRow(rig, unknown.batch.streamId))?.state, 'error');
  assert.equal(service.worker.counts.deadLettered, 3);
  assert.equal(service.worker.counts.failed, 1);
});

test('new events a pipeline emits reach the stream-events topic as records the streams stage accepts', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const rig = await pipelineRig(t, 'emit');
  const fire = await storeStream(rig, { pipeline: 'emit_pipe' });
  const streamEvents = await collect(rig, rig.topics.streamEvents);
  const service = await startWorker(rig);
  await publishBatch(rig, fire.batch.batchId, fire.value);
  await eventually('completed', async () => isCompleted(rig, fire.batch.batchId));
  await eventually('record arrived', () => streamEvents.length === 1);
  const r = streamEvents[0];
  const decoded = decodeStreamRecord(r?.value ?? '');
  assert.equal(decoded.type, 'event');
  if (decoded.type !== 'event') return;
  assert.equal(decoded.trigger, 'verdicts');
  assert.equal(decoded.event.message_id, `emitted-${fire.batch.batchId}`);
  assert.equal(decoded.event.event_type, 'widget.verdict');
  assert.deepEqual(decoded.distinguishing, {
    instance_id: { type: 'text', value: `verdict-${fire.batch.streamId}` },
  });
  assert.equal(r?.key, `"verdicts"${decoded.key}`);
  await eventually('counted', () => service.worker.counts.newEvents === 1);
  const done = rig.logs.find((l) => l.msg === 'batch completed');
  assert.equal(done?.fields.new_events, 1);
});

test('stop while a batch runs: it finishes, completes, and its offset is committed, so a new worker does not run it again', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const rig = await pipelineRig(t, 'stop');
  const slow = await storeStream(rig, { pipeline: 'slow_pipe' });
  const first = await startWorker(rig);
  await publishBatch(rig, slow.batch.batchId, slow.value);
  await eventually('the batch is running', () =>
    rig.logs.some((l) => l.msg === 'batch running' && l.fields.batch_id === slow.batch.batchId),
  );
  await first.stop();
  assert.ok(
    await isCompleted(rig, slow.batch.batchId),
    'the in-flight batch finished before the stop returned',
  );
  assert.deepEqual((await recorded(rig)).get(slow.batch.batchId), { commits: 1, events: 3 });

  const admin = rig.kafka.admin();
  await admin.connect();
  rig.onStop(() => admin.disconnect());
  const [offsets] = await admin.fetchOffsets({
    groupId: `${rig.env.WINCHESTER_KAFKA_CLIENT_ID}.pipeline`,
    topics: [rig.topics.batches],
  });
  const committed = (offsets?.partitions ?? []).map((p) => Number(p.offset)).filter((o) => o >= 0);
  assert.deepEqual(committed, [1], 'the one record is committed');

  const second = await startWorker(rig);
  const other = await storeStream(rig);
  await publishBatch(rig, other.batch.batchId, other.value);
  await eventually('the next batch completes', async () => isCompleted(rig, other.batch.batchId));
  assert.equal(second.worker.counts.skippedDuplicate, 0, 'the stopped batch was not delivered again');
  assert.deepEqual((await recorded(rig)).get(slow.batch.batchId), { commits: 1, events: 3 });
});
