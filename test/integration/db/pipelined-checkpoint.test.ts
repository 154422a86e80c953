/**
 * Pipelined checkpoints on the real CheckpointStore: a StreamTask that keeps handling records while its
 * checkpoint is written must leave PostgreSQL exactly as one that waits for each checkpoint, and an
 * in-flight checkpoint that fails (fenced by a second claim, or Postgres down past the retries) must
 * leave the partition resumable from its last committed checkpoint, with nothing lost or doubled.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Checkpoint, CheckpointStore, OwnershipLostError } from '../../../src/db/checkpoint-store.js';
import { type DatabasePool, sql } from '../../../src/db/pool.js';
import { EventTimeClock } from '../../../src/engine/clock.js';
import { WinchesterError } from '../../../src/errors.js';
import { encodeTick } from '../../../src/kafka/records.js';
import type { Event } from '../../../src/model/event.js';
import type { TriggerDefinition } from '../../../src/triggers/types.js';
import { StreamTask, type TaskStore } from '../../../src/worker/stream-task.js';
import { INTEGRATION_TIMEOUT_MS, type TestScope } from '../../helpers/integration.js';
import { streamEventRecord, withCanonicalKeys } from '../../helpers/stream-task.js';
import { ev, HOUR, MINUTE, T0, trigger } from '../../unit/engine/builder.js';
import { migratedDatabase } from './schema.js';

const TOPIC = 'se';
const PARTITION = 2;
const opts = { timeout: INTEGRATION_TIMEOUT_MS };

/** The builder's trigger with the real stream keys (the batches' distinguishing values are parsed back). */
const def: TriggerDefinition = withCanonicalKeys(
  trigger({
    name: 'usage',
    distinguishedBy: ['instance_id'],
    fire: [{ eventType: 'fire.me' }],
    firePipeline: 'fire_pipe',
    expirePipeline: 'expire_pipe',
  }),
);

const record = (e: Event): string => streamEventRecord(def, e);

/**
 * ~600 records over ~10 hours of event time: 9 instances whose streams fire (fire.me), expire (an hour of
 * silence) and reopen; resent message ids (some after their stream closed, caught by the duplicate
 * window); a tick every 20 records. Deterministic.
 */
function workload(): string[] {
  const out: string[] = [];
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const sent: Event[] = [];
  for (let i = 0; i < 600; i++) {
    const t = T0 + i * MINUTE;
    if (i % 20 === 19) {
      out.push(encodeTick(t));
      continue;
    }
    // Instance k is silent for an hour and a half in every ~4 hours, so its open stream expires.
    const k = Math.floor(rand() * 9);
    if ((i + k * 27) % 240 < 90) continue;
    if (sent.length > 10 && rand() < 0.05) {
      out.push(record(sent[Math.floor(rand() * sent.length)] as Event));
      continue;
    }
    const e = ev(rand() < 0.08 ? 'fire.me' : 'compute.exists', t, { instance_id: `i-${k}`, n: i }, `m-${i}`);
    sent.push(e);
    out.push(record(e));
  }
  return out;
}

function taskOf(store: TaskStore, checkpointAttempts = 5) {
  return StreamTask.claim({
    store,
    topic: TOPIC,
    partition: PARTITION,
    triggers: [def],
    clock: new EventTimeClock(0),
    checkpointRecords: 25,
    checkpointMs: 1e12,
    nowMs: () => 0,
    duplicateWindow: 2 * HOUR,
    checkpointAttempts,
  });
}

/** Handles every record from the task's next offset, waiting for each checkpoint (today's behaviour). */
async function runSequential(store: TaskStore, records: readonly string[]): Promise<void> {
  const task = await taskOf(store);
  for (let i = task.nextOffset; i < records.length; i++) {
    task.handle(i, records[i] as string);
    if (task.checkpointDue()) await task.checkpoint();
  }
  await task.checkpoint();
}

/**
 * A store whose checkpoint writes are held until `lag` more records were handled, so records are
 * handled while a checkpoint is in flight; `hook` may interfere with the n-th write (1-based).
 */
function gated(
  inner: CheckpointStore,
  lag: number,
  hook?: (n: number, cp: Checkpoint) => Promise<void>,
): TaskStore & { handled(): void; wait<T>(p: Promise<T>): Promise<T>; written: number } {
  let held: { release: () => void; after: number } | undefined;
  let count = 0;
  let n = 0;
  let open = false;
  const s = {
    written: 0,
    claimPartition: (topic: string, p: number) => inner.claimPartition(topic, p),
    loadStreamEvents: (id: string) => inner.loadStreamEvents(id),
    loadEventsOfStreams: (ids: readonly string[]) => inner.loadEventsOfStreams(ids),
    checkpoint: async (cp: Checkpoint) => {
      const mine = ++n;
      if (!open) {
        await new Promise<void>((release) => {
          held = { release, after: count + lag };
        });
      }
      await hook?.(mine, cp);
      await inner.checkpoint(cp);
      s.written++;
    },
    handled: () => {
      count++;
      if (held !== undefined && count >= held.after) {
        held.release();
        held = undefined;
      }
    },
    /** Waits for `p` with the writes no longer held (the driver waits for the checkpoint in flight). */
    wait: async <T>(p: Promise<T>): Promise<T> => {
      open = true;
      held?.release();
      held = undefined;
      try {
        return await p;
      } finally {
        open = false;
      }
    },
  };
  return s;
}

/**
 * Handles every record from a fresh claim's next offset with pipelined checkpoints, yielding to the
 * event loop after each record so the in-flight write proceeds meanwhile. A failed checkpoint drops the
 * task and re-claims, as the streams worker does. Returns how many re-claims there were.
 */
async function runPipelined(
  store: ReturnType<typeof gated>,
  records: readonly string[],
  checkpointAttempts = 5,
): Promise<{ reclaims: number; errors: unknown[]; overlapped: number }> {
  const errors: unknown[] = [];
  let overlapped = 0;
  for (let reclaims = 0; ; reclaims++) {
    const task = await taskOf(store, checkpointAttempts);
    try {
      for (let i = task.nextOffset; i < records.length; i++) {
        if (task.failed) await store.wait(task.settle());
        task.handle(i, records[i] as string);
        if (task.checkpointInFlight) overlapped++;
        store.handled();
        if (task.checkpointDue()) {
          if (task.checkpointInFlight) await store.wait(task.settle());
          task.startCheckpoint().catch(() => undefined);
        }
        await new Promise((r) => setImmediate(r));
      }
      await store.wait(task.settle().then(() => task.startCheckpoint()));
      return { reclaims, errors, overlapped };
    } catch (error) {
      errors.push(error);
      if (reclaims > 3) throw error;
    }
  }
}

/** Everything the checkpoints wrote, minus the claim epoch and wall-clock columns. */
async function dump(pool: DatabasePool) {
  const [cp, streams, events, outbox, recent] = await Promise.all([
    pool.any(sql.unsafe`SELECT topic, partition, "offset", next_seq, clock FROM partition_checkpoints`),
    pool.any(sql.unsafe`SELECT id, seq, trigger, key, distinguishing, state, first_event, last_event,
      expire_at, fire_at, closed_at, version, criterion_counts FROM streams ORDER BY id`),
    pool.any(sql.unsafe`SELECT stream_id, message_id, event_type, "timestamp", traits FROM stream_events
      ORDER BY stream_id, ord`),
    pool.any(
      sql.unsafe`SELECT batch_id, stream_id, kind, message_key, payload FROM outbox ORDER BY batch_id`,
    ),
    pool.any(sql.unsafe`SELECT trigger, key, stream_id, version, until, message_ids FROM recent_closed
      ORDER BY trigger, key`),
  ]);
  return { cp, streams, events, outbox, recent };
}

async function sequentialDump(t: TestScope, records: readonly string[]) {
  const db = await migratedDatabase(t, 'it_pipe_seq');
  await runSequential(new CheckpointStore(db.pool), records);
  return dump(db.pool);
}

describe('pipelined checkpoints', () => {
  const records = workload();

  test(
    'records handled while a checkpoint is in flight: Postgres ends as with waiting checkpoints',
    opts,
    async (t) => {
      const expected = await sequentialDump(t, records);
      assert.ok(expected.outbox.length >= 10, `the workload closes streams (${expected.outbox.length})`);
      assert.ok(
        expected.outbox.some((o) => o.kind === 'expire') && expected.outbox.some((o) => o.kind === 'fire'),
        'some fire, some expire',
      );
      assert.ok(expected.recent.length > 0, 'message ids of closed streams are remembered');
      const db = await migratedDatabase(t, 'it_pipe');
      const store = gated(new CheckpointStore(db.pool), 10);
      const { reclaims, overlapped } = await runPipelined(store, records);
      assert.equal(reclaims, 0);
      assert.ok(overlapped >= 200, `records were handled while a checkpoint was in flight (${overlapped})`);
      assert.ok(store.written >= 10, `checkpoints written (${store.written})`);
      assert.deepEqual(await dump(db.pool), expected);
    },
  );

  test(
    'an in-flight checkpoint fenced by a second claim: re-claimed from the last commit, nothing lost or doubled',
    opts,
    async (t) => {
      const expected = await sequentialDump(t, records);
      const db = await migratedDatabase(t, 'it_pipe_fence');
      const inner = new CheckpointStore(db.pool);
      const fenced: number[] = [];
      const store = gated(inner, 10, async (n) => {
        // Another worker claims the partition while checkpoints 5 and 13 are in flight.
        if (n === 5 || n === 13) {
          fenced.push(n);
          await inner.claimPartition(TOPIC, PARTITION);
        }
      });
      const { reclaims, errors } = await runPipelined(store, records);
      assert.deepEqual(fenced, [5, 13]);
      assert.equal(reclaims, 2);
      assert.ok(
        errors.every((e) => e instanceof OwnershipLostError),
        String(errors),
      );
      assert.deepEqual(await dump(db.pool), expected);
    },
  );

  test(
    'an in-flight checkpoint failing past its retries (Postgres down): resumable, nothing lost or doubled',
    opts,
    async (t) => {
      const expected = await sequentialDump(t, records);
      const db = await migratedDatabase(t, 'it_pipe_down');
      let failures = 0;
      const store = gated(new CheckpointStore(db.pool), 10, async (n) => {
        if (n === 7 || n === 8) {
          failures++;
          throw new WinchesterError('connection refused (test)', { retriable: true });
        }
      });
      const { reclaims, errors } = await runPipelined(store, records, 2);
      assert.equal(failures, 2, 'both attempts of the 7th checkpoint failed');
      assert.equal(reclaims, 1);
      assert.match(String(errors[0]), /connection refused/);
      assert.deepEqual(await dump(db.pool), expected);
    },
  );
});
