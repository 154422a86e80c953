import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPool, type DatabasePool, sql } from '../../../src/db/pool.js';
import { testDatabase } from '../../helpers/db.js';
import { INTEGRATION_TIMEOUT_MS } from '../../helpers/integration.js';

async function labels(pool: DatabasePool): Promise<string[]> {
  const rows = await pool.anyFirst(sql.unsafe`SELECT label FROM item ORDER BY id`);
  return rows.map(String);
}

test('slonik transactions: committed rows become visible, rolled-back rows never do', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const db = await testDatabase(t, 'it_txn');
  await db.pool.query(sql.unsafe`CREATE TABLE item (id integer PRIMARY KEY, label text NOT NULL)`);
  // A second pool stands for another process. slonik tracks the current transaction per async context and
  // refuses any other connection inside it unless told that this is deliberate.
  const observer = await createPool(db.url, {
    maximumPoolSize: 1,
    connectionTimeoutMs: 3000,
    slonik: { dangerouslyAllowForeignConnections: true },
  });
  t.after(() => observer.end());

  await db.pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`INSERT INTO item (id, label) VALUES (1, 'one')`);
    await tx.query(sql.unsafe`INSERT INTO item (id, label) VALUES (2, 'two')`);
    assert.deepEqual(await labels(observer), [], 'uncommitted rows are invisible to other sessions');
  });
  assert.deepEqual(await labels(observer), ['one', 'two'], 'committed rows are visible');

  const failure = new Error('handler failed after writing');
  await assert.rejects(
    db.pool.transaction(async (tx) => {
      await tx.query(sql.unsafe`INSERT INTO item (id, label) VALUES (3, 'three')`);
      throw failure;
    }),
    (error) => error === failure,
  );
  assert.deepEqual(await labels(observer), ['one', 'two'], 'a failed transaction leaves nothing behind');

  await assert.rejects(
    db.pool.transaction(async (tx) => {
      await tx.query(sql.unsafe`INSERT INTO item (id, label) VALUES (4, 'four')`);
      await tx.query(sql.unsafe`INSERT INTO item (id, label) VALUES (1, 'duplicate')`);
    }),
    /unique/i,
  );
  assert.deepEqual(
    await labels(observer),
    ['one', 'two'],
    'a constraint violation rolls back earlier writes',
  );

  await db.pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`INSERT INTO item (id, label) VALUES (5, 'outer')`);
    await assert.rejects(
      tx.transaction(async (nested) => {
        await nested.query(sql.unsafe`INSERT INTO item (id, label) VALUES (6, 'inner')`);
        throw new Error('inner step failed');
      }),
      /inner step failed/,
    );
  });
  assert.deepEqual(
    await labels(observer),
    ['one', 'two', 'outer'],
    'a nested transaction rolls back to its savepoint only',
  );
});

test('each test gets its own database, gone after the test', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  let name = '';
  await t.test('inner test creates a database', async (inner) => {
    const db = await testDatabase(inner, 'it_isolation');
    name = db.name;
    assert.equal(await db.pool.oneFirst(sql.unsafe`SELECT current_database()`), name);
  });
  const { pool } = await testDatabase(t, 'it_isolation_check');
  const exists = await pool.exists(sql.unsafe`SELECT 1 FROM pg_database WHERE datname = ${name}`);
  assert.equal(exists, false, `database ${name} was dropped when its test ended`);
});
