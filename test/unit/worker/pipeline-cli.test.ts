import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCli } from '../../helpers/cli.js';

// Nothing listens on port 1: reaching the database or Kafka would fail with exit 1, not 2.
const ENV = {
  WINCHESTER_DATABASE_URL: 'postgres://nobody:secret@127.0.0.1:1/nothing',
  WINCHESTER_KAFKA_BROKERS: '127.0.0.1:1',
};

function configDir(t: { after(fn: () => void): void }, handlerSpec: string, handlerSource: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'winchester-pw-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'mine.js'), handlerSource);
  writeFileSync(
    join(dir, 'triggers.yaml'),
    [
      '- name: widgets',
      '  distinguished_by: [instance_id]',
      '  expiration: "$last + 1h"',
      '  fire_pipeline: pipe',
      '  match_criteria:',
      '  - event_type: widget.*',
      '  fire_criteria:',
      '  - event_type: widget.end',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'pipelines.yaml'), 'pipe:\n  - mine\n');
  writeFileSync(
    join(dir, 'winchester.yaml'),
    [
      'trigger_definitions: triggers.yaml',
      'pipeline_config: pipelines.yaml',
      'pipeline_handlers:',
      `  mine: ${handlerSpec}`,
      '',
    ].join('\n'),
  );
  return dir;
}

describe('winchester pipeline-worker: start-up checks', () => {
  test('a handler export that does not exist exits 2 naming it, before any service is contacted', async (t) => {
    const dir = configDir(t, './mine.js#Missing', 'export class Mine {}\n');
    const r = await runCli(['pipeline-worker', '-c', join(dir, 'winchester.yaml')], { env: ENV });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /invalid configuration/);
    assert.match(
      r.stderr,
      /pipeline_handlers\.mine: module .*mine\.js has no export 'Missing' \(its classes: Mine\)/,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  test('an unknown option or argument is a usage error (exit 2)', async () => {
    assert.equal((await runCli(['pipeline-worker', '--nope'])).code, 2);
    const r = await runCli(['pipeline-worker', 'extra']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unexpected argument 'extra'/);
  });

  test('--help describes the command', async () => {
    const r = await runCli(['pipeline-worker', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: winchester pipeline-worker/);
    assert.match(r.stdout, /<kafka.client_id>\.pipeline/);
  });
});
