import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checksumOf, MigrationError, readMigrations, upgradeSql } from '../../../src/db/migrate.js';
import { splitSqlStatements } from '../../../src/db/sql-split.js';

async function dirWith(
  t: { after(fn: () => unknown): void },
  files: Record<string, string>,
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'winchester-migrate-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

test('the shipped migrations are numbered 1, 2, … without gaps and parse', async () => {
  const migrations = await readMigrations();
  assert.deepEqual(
    migrations.map((m) => m.version),
    migrations.map((_, i) => i + 1),
  );
  for (const m of migrations) {
    assert.equal(m.checksum, checksumOf(m.sql));
    assert.ok(splitSqlStatements(m.sql).length > 0);
    // Transactions are upgrade's business: a migration that commits by itself would escape its rollback.
    const control = splitSqlStatements(m.sql)
      .map((st) => st.replace(/^(--.*\n)*/, ''))
      .filter((st) => /^(BEGIN|COMMIT|ROLLBACK|START TRANSACTION|END)\b/i.test(st));
    assert.deepEqual(control, [], m.file);
  }
});

test('readMigrations sorts by number, not by name, and ignores dot files', async (t) => {
  const dir = await dirWith(t, {
    '0010_later.sql': 'SELECT 10;',
    '0002_early.sql': 'SELECT 2;',
    '.keep': '',
  });
  const migrations = await readMigrations(dir);
  assert.deepEqual(
    migrations.map((m) => [m.version, m.name, m.file]),
    [
      [2, 'early', '0002_early.sql'],
      [10, 'later', '0010_later.sql'],
    ],
  );
  assert.equal(migrations[0]!.checksum, checksumOf('SELECT 2;'));
  assert.match(migrations[0]!.checksum, /^[0-9a-f]{64}$/);
});

test('readMigrations refuses bad names, duplicate numbers, empty or unparsable files', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ '0001_Streams.sql': 'SELECT 1;' }, /not a migration file name/],
    [{ 'streams.sql': 'SELECT 1;' }, /not a migration file name/],
    [{ '0001_a.sql': 'SELECT 1;', '00001_b.sql': 'SELECT 1;' }, /both have version 1/],
    [{ '0001_a.sql': '-- nothing\n' }, /no SQL statement/],
    [{ '0001_a.sql': "SELECT 'open" }, /unterminated string/],
  ];
  for (const [files, message] of cases) {
    const dir = await dirWith(t, files);
    await assert.rejects(readMigrations(dir), (e) => e instanceof MigrationError && message.test(e.message));
  }
  await assert.rejects(
    readMigrations(join(tmpdir(), 'no-such-dir-winchester')),
    /cannot read the migrations directory/,
  );
});

test('upgradeSql quotes names and checksums and wraps everything in one transaction', async (t) => {
  const dir = await dirWith(t, { '0001_it_s.sql': "CREATE TABLE a (v text DEFAULT 'x');\n" });
  const text = upgradeSql(await readMigrations(dir));
  const statements = splitSqlStatements(text);
  assert.match(statements[0]!, /BEGIN$/);
  assert.equal(statements.at(-1), 'COMMIT');
  assert.ok(statements.includes("CREATE TABLE a (v text DEFAULT 'x')".replace(/^/, '-- 0001_it_s.sql\n')));
  assert.match(
    text,
    /INSERT INTO schema_migrations \(version, name, checksum\) VALUES \(1, 'it_s', '[0-9a-f]{64}'\);/,
  );
});
