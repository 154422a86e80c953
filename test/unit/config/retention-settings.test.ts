import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { describeDuration } from '../../../src/cli/db.js';
import { loadConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

function configFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'winchester-retention-'));
  writeFileSync(join(dir, 'winchester.yaml'), text);
  return join(dir, 'winchester.yaml');
}

async function problems(text: string, env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  try {
    await loadConfig(configFile(text), { env });
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems.map((p) => `${p.line ?? '-'}: ${p.message}`);
  }
  assert.fail('expected a ConfigError');
}

describe('retention settings', () => {
  test('defaults: marks 7 days, published outbox rows 1 day, every 5 minutes, 1000 rows a statement', async () => {
    const c = await loadConfig(configFile('log_level: info\n'), { env: {} });
    assert.deepEqual(
      { ...c.settings.retention },
      { completed_batches: 604800, published_outbox: 86400, interval: 300, batch_size: 1000 },
    );
  });

  test('values under the floor are refused with their line', async () => {
    assert.deepEqual(
      await problems('retention:\n  completed_batches: 86399\n  published_outbox: 60\n  batch_size: 0\n'),
      [
        '2: retention.completed_batches: must be at least 86400 seconds, got 86399',
        '3: retention.published_outbox: must be at least 3600 seconds, got 60',
        '4: retention.batch_size: must be between 1 and 100000, got 0',
      ],
    );
  });

  test('a published outbox row may not outlive its completion mark', async () => {
    const [problem, ...rest] = await problems(
      'retention:\n  completed_batches: 86400\n  published_outbox: 172800\n',
    );
    assert.deepEqual(rest, []);
    assert.match(
      problem ?? '',
      /^3: retention\.published_outbox \(172800 s\) must not exceed retention\.completed_batches \(86400 s\)/,
    );
    // From the environment, the variable is named.
    const [fromEnv] = await problems('log_level: info\n', {
      WINCHESTER_RETENTION_PUBLISHED_OUTBOX: '700000',
    });
    assert.match(fromEnv ?? '', /^-: WINCHESTER_RETENTION_PUBLISHED_OUTBOX \(700000 s\) must not exceed/);
  });

  test('interval 0 turns the workers’ pruning off and is accepted', async () => {
    const c = await loadConfig(configFile('retention:\n  interval: 0\n'), { env: {} });
    assert.equal(c.settings.retention.interval, 0);
  });

  test('durations are printed in the largest whole unit', () => {
    assert.equal(describeDuration(604800), '7 days');
    assert.equal(describeDuration(86400), '1 day');
    assert.equal(describeDuration(129600), '36 hours');
    assert.equal(describeDuration(5400), '90 minutes');
    assert.equal(describeDuration(90.5), '90.5 s');
  });
});
