import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readMigrations } from '../../../src/db/migrate.js';
import { sql } from '../../../src/db/pool.js';
import { runCli } from '../../helpers/cli.js';
import { testDatabase } from '../../helpers/db.js';
import { INTEGRATION_TIMEOUT_MS } from '../../helpers/integration.js';

const opts = { timeout: INTEGRATION_TIMEOUT_MS };
// etc/winchester.yaml names a database on localhost:5432; DATABASE_URL overrides it.
const CONFIG = fileURLToPath(new URL('../../../etc/winchester.yaml', import.meta.url));

test('winchester db status / upgrade against a real database', opts, async (t) => {
  const db = await testDatabase(t, 'it_cli_db');
  const env = { DATABASE_URL: db.url };
  const files = (await readMigrations()).map((m) => m.file);
  const latest = files.length;

  const before = await runCli(['db', 'status', '-c', CONFIG], { env });
  assert.equal(before.code, 0, before.stderr);
  assert.deepEqual(
    before.stdoutLines(),
    files.map((f) => `pending  ${f}`),
  );

  const up = await runCli(['db', 'upgrade', '-c', CONFIG], { env });
  assert.equal(up.code, 0, up.stderr);
  assert.deepEqual(up.stdoutLines(), [
    ...files.map((f) => `applying ${f}`),
    `database schema upgraded to version ${latest} (${latest} migrations applied)`,
  ]);
  assert.equal(up.stderr, '');

  const again = await runCli(['db', 'upgrade'], { env: { ...env, WINCHESTER_CONFIG: CONFIG } });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(again.stdoutLines(), [`database schema is up to date (version ${latest})`]);

  const after = await runCli(['db', 'status', '-c', CONFIG], { env });
  assert.equal(after.code, 0);
  const lines = after.stdoutLines();
  assert.equal(lines.length, files.length);
  lines.forEach((line, i) => {
    assert.match(line, new RegExp(`^applied  ${files[i]}  \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z$`));
  });

  // A migration recorded by a newer winchester: status says so and exits 1; upgrade refuses.
  await db.pool.query(
    sql.unsafe`INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')`,
  );
  const drift = await runCli(['db', 'status', '-c', CONFIG], { env });
  assert.equal(drift.code, 1);
  assert.match(
    drift.stdoutLines().at(-1)!,
    /^unknown {2}9999_future\.sql {2}applied .*, not in this winchester$/,
  );
  assert.match(drift.stderr, /does not match this winchester \(1 changed or unknown migration\)/);
  const refused = await runCli(['db', 'upgrade', '-c', CONFIG], { env });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^winchester: the database has migration 9999 \(future\)/);
  assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
});

test('an unreachable database exits 1 with one line, password hidden, no stack trace', opts, async () => {
  for (const action of ['upgrade', 'status']) {
    const r = await runCli(['db', action, '-c', CONFIG], {
      env: { DATABASE_URL: 'postgres://winchester:s3cret@127.0.0.1:1/nowhere' },
    });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderrLines().length, 1, r.stderr);
    assert.match(
      r.stderr,
      /^winchester: cannot use PostgreSQL at postgres:\/\/winchester:\*\*\*@127\.0\.0\.1:1\/nowhere: .*ECONNREFUSED/,
    );
    assert.doesNotMatch(r.stderr, /s3cret/);
  }
});
