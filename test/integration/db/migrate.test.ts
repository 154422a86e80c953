import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  defaultMigrationsDir,
  MigrationError,
  migrationStatus,
  readMigrations,
  upgrade,
  upgradeSql,
} from '../../../src/db/migrate.js';
import { createPool, type DatabasePool, sql } from '../../../src/db/pool.js';
import { splitSqlStatements } from '../../../src/db/sql-split.js';
import { STREAM_TRANSITIONS, type StreamState } from '../../../src/engine/effects.js';
import { testDatabase } from '../../helpers/db.js';
import { INTEGRATION_TIMEOUT_MS, type TestScope } from '../../helpers/integration.js';

const opts = { timeout: INTEGRATION_TIMEOUT_MS };

const TABLES = [
  'completed_batches',
  'outbox',
  'partition_checkpoints',
  'recent_closed',
  'schema_migrations',
  'stream_events',
  'streams',
];

async function tables(pool: DatabasePool): Promise<string[]> {
  const rows = await pool.anyFirst(
    sql.unsafe`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
  );
  return rows.map(String);
}

/** A copy of the shipped migrations in a temporary directory the test may edit. */
async function migrationsCopy(t: TestScope): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'winchester-migrations-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await cp(defaultMigrationsDir(), dir, { recursive: true });
  return dir;
}

test('upgrade applies every migration once; a second run applies nothing', opts, async (t) => {
  const db = await testDatabase(t, 'it_migrate');
  const migrations = await readMigrations();
  assert.ok(migrations.length >= 2);
  assert.deepEqual(
    (await migrationStatus(db.pool, migrations)).map((s) => s.state),
    migrations.map(() => 'pending'),
  );
  assert.deepEqual(await tables(db.pool), [], 'status creates nothing');

  const seen: string[] = [];
  const applied = await upgrade(db.pool, migrations, { onApply: (m) => void seen.push(m.file) });
  assert.deepEqual(
    applied.map((m) => m.file),
    migrations.map((m) => m.file),
  );
  assert.deepEqual(
    seen,
    migrations.map((m) => m.file),
  );
  assert.deepEqual(await tables(db.pool), TABLES);
  assert.deepEqual(await upgrade(db.pool, migrations), [], 'idempotent');
  const status = await migrationStatus(db.pool, migrations);
  assert.deepEqual(
    status.map((s) => s.state),
    migrations.map(() => 'applied'),
  );
  const recorded = await db.pool.any(
    sql.unsafe`SELECT version, checksum FROM schema_migrations ORDER BY version`,
  );
  assert.deepEqual(
    recorded.map((r) => [r.version, r.checksum]),
    migrations.map((m) => [m.version, m.checksum]),
  );
});

test('two upgrades at once both succeed and exactly one applies the migrations', opts, async (t) => {
  const db = await testDatabase(t, 'it_migrate_race');
  const migrations = await readMigrations();
  // Separate pools stand for separate processes (workers starting together).
  const pools = await Promise.all([1, 2, 3].map(() => createPool(db.url, { maximumPoolSize: 1 })));
  t.after(() => Promise.all(pools.map((p) => p.end())));
  const results = await Promise.all(pools.map((p) => upgrade(p, migrations)));
  const counts = results.map((r) => r.length).sort();
  assert.deepEqual(counts, [0, 0, migrations.length]);
  assert.deepEqual(await tables(db.pool), TABLES);
  assert.equal(
    Number(await db.pool.oneFirst(sql.unsafe`SELECT count(*) FROM schema_migrations`)),
    migrations.length,
  );
});

test(
  'an applied migration that was edited, or one this code does not know, stops the upgrade',
  opts,
  async (t) => {
    const db = await testDatabase(t, 'it_migrate_drift');
    const shipped = await readMigrations();
    const dir = await migrationsCopy(t);
    await writeFile(join(dir, '0900_extra.sql'), 'CREATE TABLE extra (id integer PRIMARY KEY);\n');
    await upgrade(db.pool, await readMigrations(dir));

    await writeFile(join(dir, '0001_streams.sql'), '-- edited\nSELECT 1;\n');
    await writeFile(join(dir, '0901_next.sql'), 'CREATE TABLE next_one (id integer);\n');
    const edited = await readMigrations(dir);
    await assert.rejects(upgrade(db.pool, edited), (error) => {
      assert.ok(error instanceof MigrationError);
      assert.equal(error.retriable, false);
      assert.match(
        error.message,
        /0001_streams\.sql was applied on .* but the file now has .*never be edited/,
      );
      return true;
    });
    assert.ok(!(await tables(db.pool)).includes('next_one'), 'nothing applied after a refusal');
    assert.deepEqual(
      (await migrationStatus(db.pool, edited)).map((s) => s.state),
      // 0001 edited, the rest of the shipped ones and 0900 applied, 0901 pending.
      ['changed', ...shipped.slice(1).map(() => 'applied'), 'applied', 'pending'],
    );

    // Back to the original file, minus 0900: the database is newer than this code.
    await cp(join(defaultMigrationsDir(), '0001_streams.sql'), join(dir, '0001_streams.sql'));
    await unlink(join(dir, '0900_extra.sql'));
    const older = await readMigrations(dir);
    await assert.rejects(
      upgrade(db.pool, older),
      /migration 900 \(extra\) that this version of winchester does not know/,
    );
    assert.deepEqual(
      (await migrationStatus(db.pool, older)).map((s) => s.state),
      [...shipped.map(() => 'applied'), 'unknown', 'pending'],
    );
  },
);

test('a failing migration rolls back alone; the ones before it stay applied', opts, async (t) => {
  const db = await testDatabase(t, 'it_migrate_fail');
  const dir = await migrationsCopy(t);
  await writeFile(
    join(dir, '0900_broken.sql'),
    'CREATE TABLE half_done (id integer);\nINSERT INTO no_such_table VALUES (1);\n',
  );
  await assert.rejects(upgrade(db.pool, await readMigrations(dir)), (error) => {
    assert.ok(error instanceof MigrationError);
    assert.match(error.message, /0900_broken\.sql failed: .*no_such_table/);
    return true;
  });
  const names = await tables(db.pool);
  assert.ok(names.includes('streams') && names.includes('outbox'));
  assert.ok(!names.includes('half_done'), 'the failed migration left nothing behind');
  assert.deepEqual(
    (await migrationStatus(db.pool, await readMigrations(dir))).map((s) => s.state),
    [...(await readMigrations()).map(() => 'applied'), 'pending'],
  );
  // The lock was released: a fixed migration applies.
  await writeFile(join(dir, '0900_broken.sql'), 'CREATE TABLE half_done (id integer);\n');
  assert.deepEqual(
    (await upgrade(db.pool, await readMigrations(dir))).map((m) => m.file),
    ['0900_broken.sql'],
  );
});

test('the --sql script builds the same schema as upgrade', opts, async (t) => {
  const db = await testDatabase(t, 'it_migrate_sql');
  const migrations = await readMigrations();
  const statements = splitSqlStatements(upgradeSql(migrations));
  assert.match(statements[0]!, /^(--.*\n)*BEGIN$/);
  assert.equal(statements[statements.length - 1], 'COMMIT');
  await db.pool.transaction(async (tx) => {
    for (const s of statements.slice(1, -1)) {
      const text = Object.freeze(
        Object.assign([s], { raw: Object.freeze([s]) }),
      ) as unknown as TemplateStringsArray;
      await tx.query(sql.unsafe(text));
    }
  });
  assert.deepEqual(await tables(db.pool), TABLES);
  assert.deepEqual(
    (await migrationStatus(db.pool, migrations)).map((s) => s.state),
    migrations.map(() => 'applied'),
  );
  assert.deepEqual(await upgrade(db.pool, migrations), []);
});

test('the database enforces the stream state machine of src/engine/effects.ts', opts, async (t) => {
  const db = await testDatabase(t, 'it_migrate_states');
  await upgrade(db.pool, await readMigrations());
  const states = Object.keys(STREAM_TRANSITIONS) as StreamState[];
  let n = 0;
  for (const from of states) {
    for (const to of states) {
      const id = `s${++n}`;
      // Inserting is not a transition: a stream may be written first in any state.
      await db.pool.query(sql.unsafe`
        INSERT INTO streams (id, topic, partition, seq, trigger, key, distinguishing, state, first_event,
          last_event, expire_at, version)
        VALUES (${id}, 'events', 0, ${n}, 'trig', '[]', '{}', ${from}::stream_state, 1, 1, 2, 1)`);
      const update = db.pool.query(
        sql.unsafe`UPDATE streams SET state = ${to}::stream_state, version = 2 WHERE id = ${id}`,
      );
      if (from === to || STREAM_TRANSITIONS[from].includes(to)) {
        await update;
      } else {
        await assert.rejects(update, /check integrity constraint/, `${from} → ${to} must be refused`);
      }
      const after = await db.pool.oneFirst(sql.unsafe`SELECT state FROM streams WHERE id = ${id}`);
      assert.equal(after, from === to || STREAM_TRANSITIONS[from].includes(to) ? to : from);
    }
  }
});
