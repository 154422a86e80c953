import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCommandArgs } from '../../../src/cli/io.js';
import { UsageError } from '../../../src/errors.js';

describe('parseCommandArgs', () => {
  const options = { config: { type: 'string', short: 'c' }, quiet: { type: 'boolean' } } as const;

  test('parses options and positionals strictly', () => {
    const { values, positionals } = parseCommandArgs(
      'demo',
      ['-c', 'w.yaml', '--quiet', 'in.jsonl'],
      options,
    );
    assert.deepEqual({ ...values }, { config: 'w.yaml', quiet: true });
    assert.deepEqual(positionals, ['in.jsonl']);
  });

  test('an unknown option or a missing value is a UsageError named after the command', () => {
    assert.throws(
      () => parseCommandArgs('demo', ['--nope'], options),
      (err: unknown) => err instanceof UsageError && /^demo: .*--nope/.test(err.message),
    );
    assert.throws(
      () => parseCommandArgs('demo', ['-c'], options),
      (err: unknown) => err instanceof UsageError && err.message.startsWith('demo: '),
    );
  });
});
