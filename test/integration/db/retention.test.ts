import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type DatabasePool, sql } from '../../../src/db/pool.js';
import {
  countPrunable,
  Pruner,
  pruneAll,
  pruneBatch,
  type RetentionPolicy,
  type RetentionTable,
} from '../../../src/db/retention.js';
import type { StreamState } from '../../../src/engine/effects.js';
import type { Logger } from '../../../src/log.js';
import { runCli } from '../../helpers/cli.js';
import { testDatabase } from '../../helpers/db.js';
import { INTEGRATION_TIMEOUT_MS } from '../../helpers/integration.js';
import { migratedDatabase } from './schema.js';

const opts = { timeout: INTEGRATION_TIMEOUT_MS };
const DAY = 86400;
const policy: RetentionPolicy = { completedBatches: 7 * DAY, publishedOutbox: DAY, batchSize: 1000 };

let seq = 0;
async function stream(pool: DatabasePool, id: string, state: StreamState): Promise<void> {
  seq += 1;
  await pool.query(sql.unsafe`
    INSERT INTO streams (id, topic, partition, seq, trigger, key, distinguishing, state, first_event,
      last_event, expire_at, version)
    VALUES (${id}, 'se', 0, ${seq}, 't', ${id}, '{}'::jsonb, ${state}::stream_state, 1, 1, 1, 1)`);
}

/** An outbox row of `streamId`'s fire batch, published `publishedAgo` seconds ago (null: not published). */
async function outboxRow(pool: DatabasePool, streamId: string, publishedAgo: number | null): Promise<void> {
  const published =
    publishedAgo === null ? sql.fragment`NULL` : sql.fragment`now() - make_interval(secs => ${publishedAgo})`;
  await pool.query(sql.unsafe`
    INSERT INTO outbox (batch_id, stream_id, kind, message_key, payload, created_at, published_at)
    VALUES (${`${streamId}:fire`}, ${streamId}, 'fire', ${streamId}, '{}', now() - interval '30 days', ${published})`);
}

async function completed(pool: DatabasePool, batchId: string, ago: number): Promise<void> {
  await pool.query(sql.unsafe`
    INSERT INTO completed_batches (batch_id, stream_id, completed_at)
    VALUES (${batchId}, ${batchId.split(':')[0] ?? batchId}, now() - make_interval(secs => ${ago}))`);
}

async function left(pool: DatabasePool): Promise<{ outbox: string[]; completed: string[] }> {
  const outbox = await pool.anyFirst(sql.unsafe`SELECT stream_id FROM outbox ORDER BY stream_id`);
  const done = await pool.anyFirst(sql.unsafe`SELECT batch_id FROM completed_batches ORDER BY batch_id`);
  return { outbox: outbox.map(String), completed: done.map(String) };
}

/**
 * One row of every kind retention must tell apart. Prunable: completion marks older than 7 days
 * (old-1, old-2), published outbox rows older than a day of a completed stream (done-old) or a purged one
 * (gone-old, gone-old-2).
 */
async function fixture(pool: DatabasePool): Promise<void> {
  await completed(pool, 'old-1:fire', 8 * DAY);
  await completed(pool, 'old-2:fire', 30 * DAY);
  await completed(pool, 'recent:fire', 6 * DAY);
  await stream(pool, 'done-old', 'completed');
  await outboxRow(pool, 'done-old', 2 * DAY);
  await outboxRow(pool, 'gone-old', 2 * DAY);
  await outboxRow(pool, 'gone-old-2', 3 * DAY);
  // Kept: published too recently, never published, or the stream still needs its batch.
  await outboxRow(pool, 'gone-recent', 3600);
  await outboxRow(pool, 'gone-unpublished', null);
  for (const state of ['firing', 'expiring', 'error', 'expire_error', 'retry_fire'] as const) {
    await stream(pool, `${state}-old`, state);
    await outboxRow(pool, `${state}-old`, 5 * DAY);
  }
}

const KEPT_OUTBOX = [
  'error-old',
  'expire_error-old',
  'expiring-old',
  'firing-old',
  'gone-recent',
  'gone-unpublished',
  'retry_fire-old',
];

test(
  'retention deletes old completion marks and the published outbox rows no stream needs, nothing else',
  opts,
  async (t) => {
    const { pool } = await migratedDatabase(t, 'it_retention');
    await fixture(pool);
    assert.deepEqual(await countPrunable(pool, policy), { completed_batches: 2, outbox: 3 });
    // A dry run deletes nothing.
    assert.equal((await left(pool)).outbox.length, 10);

    const deleted: [RetentionTable, number][] = [];
    const counts = await pruneAll(
      pool,
      { ...policy, batchSize: 2 },
      { onDeleted: (t, n) => deleted.push([t, n]) },
    );
    assert.deepEqual(counts, { completed_batches: 2, outbox: 3 });
    // Batches of two: a full batch is followed by another, a short one ends the table.
    assert.deepEqual(deleted, [
      ['completed_batches', 2],
      ['outbox', 2],
      ['outbox', 1],
    ]);
    assert.deepEqual(await left(pool), { outbox: KEPT_OUTBOX, completed: ['recent:fire'] });
    assert.deepEqual(await countPrunable(pool, policy), { completed_batches: 0, outbox: 0 });
    assert.deepEqual(await pruneAll(pool, policy), { completed_batches: 0, outbox: 0 });
  },
);

test(
  'pruning takes the oldest first, stops at maxBatches and at an abort, and checks its policy',
  opts,
  async (t) => {
    const { pool } = await migratedDatabase(t, 'it_retention_b');
    for (let i = 0; i < 5; i++) await completed(pool, `c${i}:fire`, (10 + i) * DAY);
    const one = { ...policy, batchSize: 1 };
    assert.equal(await pruneBatch(pool, 'completed_batches', one), 1);
    assert.ok(!(await left(pool)).completed.includes('c4:fire'), 'the oldest went first');
    assert.deepEqual(await pruneAll(pool, one, { maxBatches: 2 }), { completed_batches: 2, outbox: 0 });
    const abort = new AbortController();
    abort.abort();
    assert.deepEqual(await pruneAll(pool, one, { signal: abort.signal }), {
      completed_batches: 0,
      outbox: 0,
    });
    assert.equal((await left(pool)).completed.length, 2);
    await assert.rejects(pruneAll(pool, { ...policy, batchSize: 0 }), RangeError);
    await assert.rejects(pruneAll(pool, { ...policy, completedBatches: -1 }), RangeError);
  },
);

test('a row locked by another transaction is skipped, not waited for', opts, async (t) => {
  const { pool } = await migratedDatabase(t, 'it_retention_lock');
  await completed(pool, 'locked:fire', 10 * DAY);
  await completed(pool, 'free:fire', 9 * DAY);
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const holder = pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`SELECT 1 FROM completed_batches WHERE batch_id = 'locked:fire' FOR UPDATE`);
    locked();
    await held;
  });
  await isLocked;
  try {
    const started = Date.now();
    assert.equal(await pruneBatch(pool, 'completed_batches', policy), 1);
    assert.ok(Date.now() - started < 5000);
    assert.deepEqual((await left(pool)).completed, ['locked:fire']);
  } finally {
    release();
    await holder;
  }
});

test('the deletes find their rows through an index (no full scan of a large table)', opts, async (t) => {
  const { pool } = await migratedDatabase(t, 'it_retention_idx');
  const plan = async (query: ReturnType<typeof sql.unsafe>) =>
    pool.transaction(async (tx) => {
      // A fresh table is tiny, so the planner would scan it whatever the indexes: ask it what it can do
      // without a sequential scan.
      await tx.query(sql.unsafe`SET LOCAL enable_seqscan = off`);
      const rows = await tx.anyFirst(query);
      return rows.map(String).join('\n');
    });
  const completedPlan = await plan(sql.unsafe`EXPLAIN SELECT c.batch_id FROM completed_batches c
    WHERE c.completed_at < now() - interval '7 days' ORDER BY c.completed_at LIMIT 1000`);
  assert.match(completedPlan, /completed_batches_by_time/);
  const outboxPlan = await plan(sql.unsafe`EXPLAIN SELECT o.id FROM outbox o
    WHERE o.published_at IS NOT NULL AND o.published_at < now() - interval '1 day'
    ORDER BY o.published_at LIMIT 1000`);
  assert.match(outboxPlan, /outbox_published_by_time/);
});

function recordingLog(): { log: Logger; lines: { level: string; msg: string; fields: unknown }[] } {
  const lines: { level: string; msg: string; fields: unknown }[] = [];
  return { log: (level, msg, fields) => void lines.push({ level, msg, fields }), lines };
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test(
  'Pruner: prunes its tables on a timer, counts rows; a failing run is logged, counted and retried',
  opts,
  async (t) => {
    const { pool } = await migratedDatabase(t, 'it_pruner');
    await fixture(pool);
    const pruned: string[] = [];
    const failed: string[] = [];
    const metrics = {
      pruned: (table: RetentionTable, rows: number) => void pruned.push(`${table} ${rows}`),
      failed: (table: RetentionTable) => void failed.push(table),
    };
    const { log, lines } = recordingLog();
    const pruner = new Pruner({
      pool,
      policy,
      tables: ['outbox'],
      intervalMs: 30,
      firstDelayMs: 0,
      log,
      metrics,
    });
    pruner.start();
    await until('two runs', () => pruner.runs >= 2);
    await pruner.stop();
    // Only its own table: the completion marks are the pipeline workers'.
    assert.deepEqual(pruned, ['outbox 3']);
    assert.deepEqual((await left(pool)).completed.length, 3);
    assert.deepEqual(failed, []);
    assert.ok(lines.some((l) => l.msg === 'pruned old rows'));
    const runs = pruner.runs;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(pruner.runs, runs, 'no run after stop');

    // A database without the tables: every run fails, is counted and logged, and the next one still comes.
    const bare = await testDatabase(t, 'it_pruner_bare');
    const bad = recordingLog();
    const badFailed: string[] = [];
    const broken = new Pruner({
      pool: bare.pool,
      policy,
      tables: ['completed_batches', 'outbox'],
      intervalMs: 30,
      firstDelayMs: 0,
      log: bad.log,
      metrics: { pruned: () => {}, failed: (table) => void badFailed.push(table) },
    });
    broken.start();
    await until('two failed runs', () => broken.runs >= 2);
    await broken.stop();
    assert.deepEqual(badFailed.slice(0, 4), ['completed_batches', 'outbox', 'completed_batches', 'outbox']);
    const warn = bad.lines.find((l) => l.msg.startsWith('pruning failed'));
    assert.equal(warn?.level, 'warn');
    assert.match(JSON.stringify(warn?.fields), /completed_batches/);
    assert.throws(
      () => new Pruner({ pool, policy, tables: ['outbox'], intervalMs: 0, log }),
      /intervalMs must be > 0/,
    );
  },
);

test('winchester db prune [--dry-run] against a real database', opts, async (t) => {
  const db = await migratedDatabase(t, 'it_cli_prune');
  await fixture(db.pool);
  const dir = await mkdtemp(join(tmpdir(), 'winchester-prune-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'winchester.yaml');
  await writeFile(config, 'retention:\n  completed_batches: 777600  # 9 days\n  published_outbox: 86400\n');
  const env = { DATABASE_URL: db.url };

  const dry = await runCli(['db', 'prune', '--dry-run', '-c', config], { env });
  assert.equal(dry.code, 0, dry.stderr);
  assert.deepEqual(dry.stdoutLines(), [
    'completed_batches  would delete 1  (completion marks older than 9 days)',
    'outbox             would delete 3  (published rows of completed or purged streams older than 1 day)',
  ]);
  assert.equal((await left(db.pool)).outbox.length, 10, 'a dry run deletes nothing');

  const run = await runCli(['db', 'prune', '-c', config], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.stdoutLines(), [
    'completed_batches  deleted 1  (completion marks older than 9 days)',
    'outbox             deleted 3  (published rows of completed or purged streams older than 1 day)',
  ]);
  assert.deepEqual(await left(db.pool), { outbox: KEPT_OUTBOX, completed: ['old-1:fire', 'recent:fire'] });

  // The environment overrides the file, like every setting.
  const envRun = await runCli(['db', 'prune', '-c', config], {
    env: { ...env, WINCHESTER_RETENTION_COMPLETED_BATCHES: String(7 * DAY) },
  });
  assert.equal(envRun.code, 0, envRun.stderr);
  assert.match(
    envRun.stdoutLines()[0] ?? '',
    /^completed_batches {2}deleted 1 {2}\(completion marks older than 7 days\)$/,
  );

  const misuse = await runCli(['db', 'status', '--dry-run', '-c', config], { env });
  assert.equal(misuse.code, 2);
  assert.match(misuse.stderr, /--dry-run only goes with prune/);

  const tooShort = join(dir, 'short.yaml');
  await writeFile(tooShort, 'retention:\n  completed_batches: 3600\n');
  const refused = await runCli(['db', 'prune', '-c', tooShort], { env });
  assert.equal(refused.code, 2);
  assert.match(
    refused.stderr,
    /short\.yaml:2:\d+: .*completed_batches.*must be at least 86400 seconds, got 3600/,
  );
});
