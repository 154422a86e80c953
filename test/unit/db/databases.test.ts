import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertDatabaseName, redactDatabaseUrl, withDatabaseName } from '../../../src/db/databases.js';

test('withDatabaseName swaps only the database, keeping credentials, host and parameters', () => {
  assert.equal(
    withDatabaseName('postgres://u:p%40ss@127.0.0.1:54329/winchester?sslmode=disable', 'test_abc'),
    'postgres://u:p%40ss@127.0.0.1:54329/test_abc?sslmode=disable',
  );
  assert.equal(withDatabaseName('postgres://127.0.0.1', 'x'), 'postgres://127.0.0.1/x');
});

test('database names are plain lower-case identifiers of at most 63 characters', () => {
  for (const ok of ['a', '_x', 'test_lz3k_0a1b2c3d4e', 'a'.repeat(63)]) assertDatabaseName(ok);
  for (const bad of ['', 'Upper', '1abc', 'has-dash', 'semi;colon', 'a'.repeat(64), 'x"y']) {
    assert.throws(() => assertDatabaseName(bad), TypeError, bad);
  }
});

test('redactDatabaseUrl hides the password only', () => {
  assert.equal(redactDatabaseUrl('postgres://u:secret@h:5432/d'), 'postgres://u:***@h:5432/d');
  assert.equal(redactDatabaseUrl('postgres://u@h/d'), 'postgres://u@h/d');
  assert.equal(redactDatabaseUrl('not a url'), '<unparsable DATABASE_URL>');
});
