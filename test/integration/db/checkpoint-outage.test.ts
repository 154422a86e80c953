import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CheckpointStore } from '../../../src/db/checkpoint-store.js';
import { DatabaseUnavailableError } from '../../../src/db/databases.js';
import { createPool, sql } from '../../../src/db/pool.js';
import { INTEGRATION_TIMEOUT_MS } from '../../helpers/integration.js';
import { migratedDatabase } from './schema.js';

test('a connection killed mid-checkpoint is a retriable DatabaseUnavailableError; a retry succeeds', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const db = await migratedDatabase(t, 'it_ckpt_outage');
  // The store's pool runs while the blocker's transaction is open in this async context.
  const storePool = await createPool(db.url, {
    maximumPoolSize: 2,
    connectionRetryLimit: 1,
    slonik: { dangerouslyAllowForeignConnections: true },
  });
  t.after(() => storePool.end());
  const store = new CheckpointStore(storePool);
  const { epoch } = await store.claimPartition('events', 3);
  const cp = {
    topic: 'events',
    partition: 3,
    epoch,
    offset: 7,
    nextSeq: 1,
    streams: [],
    events: [],
    outbox: [{ batchId: 'b1', streamId: 'p3-1', kind: 'fire' as const, messageKey: null, payload: '{}' }],
  };

  // Another session holds the partition row, so the checkpoint's first statement waits on it; its backend is
  // then terminated, as a server restart or a network cut would end it.
  await db.pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`SELECT 1 FROM partition_checkpoints WHERE topic = 'events' FOR UPDATE`);
    const pending = store.checkpoint(cp);
    pending.catch(() => undefined); // observed below
    let pid: unknown = null;
    for (let i = 0; i < 200 && pid === null; i++) {
      // Statistics views are a snapshot per transaction unless cleared.
      await tx.query(sql.unsafe`SELECT pg_stat_clear_snapshot()`);
      pid = await tx.maybeOneFirst(sql.unsafe`
        SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%UPDATE partition_checkpoints%'`);
      if (pid === null) await sleep(25);
    }
    assert.notEqual(pid, null, 'the checkpoint is waiting for the row lock');
    assert.equal(await tx.oneFirst(sql.unsafe`SELECT pg_terminate_backend(${Number(pid)})`), true);
    await assert.rejects(pending, (error) => {
      assert.ok(error instanceof DatabaseUnavailableError, String(error));
      assert.equal(error.retriable, true);
      assert.match(error.message, /^checkpointing events\[3\]: /);
      return true;
    });
  });

  const offset = await db.pool.oneFirst(sql.unsafe`SELECT "offset" FROM partition_checkpoints`);
  assert.equal(offset, null, 'nothing of the interrupted checkpoint was written');
  assert.deepEqual(await store.unpublishedOutbox(), []);
  await store.checkpoint(cp);
  assert.equal(Number(await db.pool.oneFirst(sql.unsafe`SELECT "offset" FROM partition_checkpoints`)), 7);
  assert.deepEqual(
    (await store.unpublishedOutbox()).map((o) => o.batchId),
    ['b1'],
  );
});
