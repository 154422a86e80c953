import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readMigrations } from '../../../src/db/migrate.js';
import { runCli } from '../../helpers/cli.js';

test('db upgrade --sql prints every migration without a database or a configuration', async () => {
  const r = await runCli(['db', 'upgrade', '--sql'], { env: {} });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const migrations = await readMigrations();
  let at = r.stdout.indexOf('BEGIN;');
  assert.ok(at >= 0);
  for (const m of migrations) {
    // In order, each followed by its schema_migrations row with the file's checksum.
    const header = r.stdout.indexOf(`-- ${m.file}\n`, at);
    assert.ok(header > at, `${m.file} in order`);
    const row = r.stdout.indexOf(`VALUES (${m.version}, '${m.name}', '${m.checksum}');`, header);
    assert.ok(row > header, `${m.file} recorded`);
    at = row;
  }
  assert.ok(r.stdout.includes('CREATE TABLE streams ('));
  assert.ok(r.stdout.includes('CREATE TABLE IF NOT EXISTS schema_migrations'));
  assert.match(r.stdout, /COMMIT;\n$/);
});

test('db usage errors exit 2 with one line', async () => {
  const cases: [string[], RegExp][] = [
    [['db'], /missing action/],
    [['db', 'downgrade'], /unknown action 'downgrade'/],
    [['db', 'status', '--sql'], /--sql only goes with upgrade/],
    [['db', 'upgrade', '--sql', '-c', 'x.yaml'], /-c is not used with it/],
    [['db', 'upgrade', 'extra'], /unexpected argument 'extra'/],
    [['db', 'upgrade', '--frob'], /Unknown option '--frob'/],
  ];
  for (const [argv, message] of cases) {
    const r = await runCli(argv, { env: {} });
    assert.equal(r.code, 2, argv.join(' '));
    assert.equal(r.stderrLines().length, 1, r.stderr);
    assert.match(r.stderr, message);
  }
  const help = await runCli(['db', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /winchester db upgrade --sql/);
});

test('db without database.url says where to set it (exit 2)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'winchester-db-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'winchester.yaml'), 'log_level: info\n');
  const r = await runCli(['db', 'status'], { env: {}, cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /winchester\.yaml: database\.url is not set: set it there, or set DATABASE_URL/);
});
