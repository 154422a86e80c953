import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionError, UniqueIntegrityConstraintViolationError } from 'slonik';
import { DatabaseUnavailableError } from '../../../src/db/databases.js';
import {
  classifyDatabaseError,
  DatabaseError,
  describeDatabaseError,
  isRetriableDatabaseError,
  toDatabaseError,
} from '../../../src/db/errors.js';
import { InputError } from '../../../src/errors.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

test('outages are retriable, refused statements are not', () => {
  const retriable = [
    withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'),
    withCode('read ECONNRESET', 'ECONNRESET'),
    withCode('terminating connection due to administrator command', '57P01'),
    withCode('the database system is starting up', '57P03'),
    withCode('could not serialize access', '40001'),
    withCode('deadlock detected', '40P01'),
    withCode('connection failure', '08006'),
    withCode('too many connections', '53300'),
    new Error('Connection terminated unexpectedly'),
    new Error('wrapper', { cause: withCode('connect ECONNREFUSED', 'ECONNREFUSED') }),
    new DatabaseUnavailableError('down'),
  ];
  for (const e of retriable) assert.equal(isRetriableDatabaseError(e), true, e.message);
  const permanent = [
    withCode('duplicate key value violates unique constraint', '23505'),
    withCode('syntax error at or near', '42601'),
    withCode('relation does not exist', '42P01'),
    withCode('new row violates check constraint', '23514'),
    new Error('anything else'),
    new InputError('bad input', { cause: withCode('x', 'ECONNREFUSED') }),
    'a string',
    null,
  ];
  for (const e of permanent) assert.equal(isRetriableDatabaseError(e), false, String(e));
});

test('slonik errors are classified by what they wrap', () => {
  const down = new ConnectionError('Failed to connect', {
    cause: withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'),
  });
  const classified = classifyDatabaseError(down, 'claiming events[3]');
  assert.ok(classified instanceof DatabaseUnavailableError);
  assert.equal(classified.retriable, true);
  assert.match(classified.message, /^claiming events\[3\]: Failed to connect: connect ECONNREFUSED/);
  // Recognised by its slonik name even when the cause says nothing useful.
  assert.equal(isRetriableDatabaseError(new ConnectionError('x')), true);

  const dup = new UniqueIntegrityConstraintViolationError(
    Object.assign(withCode('duplicate key value violates unique constraint "outbox_batch_id_key"', '23505'), {
      constraint: 'outbox_batch_id_key',
    }) as never,
  );
  assert.equal(classifyDatabaseError(dup, 'x'), dup, 'non-retriable errors pass through classify');
  const typed = toDatabaseError(dup, 'checkpointing events[3]');
  assert.ok(typed instanceof DatabaseError);
  assert.equal(typed.retriable, false);
  assert.match(typed.message, /^checkpointing events\[3\]: .*outbox_batch_id_key/);
  const already = new InputError('x');
  assert.equal(toDatabaseError(already, 'y'), already);
});

test('describeDatabaseError joins the cause chain and the parts of an AggregateError', () => {
  const agg = new AggregateError(
    [
      withCode('connect ECONNREFUSED ::1:5432', 'ECONNREFUSED'),
      new Error('connect ECONNREFUSED 127.0.0.1:5432'),
    ],
    '',
  );
  assert.equal(
    describeDatabaseError(new Error('Failed to connect', { cause: agg })),
    'Failed to connect: connect ECONNREFUSED ::1:5432: connect ECONNREFUSED 127.0.0.1:5432',
  );
  assert.equal(describeDatabaseError('plain'), 'plain');
});
