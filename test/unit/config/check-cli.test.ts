import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCli } from '../../helpers/cli.js';

const root = new URL('../../../', import.meta.url).pathname;
const corpus = join(root, 'test/fixtures/bad-config');

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'winchester-check-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('winchester check', () => {
  test('the example configuration passes', async () => {
    const r = await runCli(['check', '-c', 'etc/winchester.yaml'], { cwd: root });
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'ok: 1 triggers, 2 pipelines, 6 event definitions\n');
    assert.equal(r.code, 0);
  });

  test('--config= and $WINCHESTER_CONFIG name the file too', async () => {
    assert.equal((await runCli(['check', '--config=etc/winchester.yaml'], { cwd: root })).code, 0);
    const r = await runCli(['check'], { cwd: root, env: { WINCHESTER_CONFIG: 'etc/winchester.yaml' } });
    assert.equal(r.code, 0);
  });

  test('problems: exit 2, one file:line:column: message per line on stderr, no stack trace', async () => {
    const r = await runCli(['check', '-c', 'winchester.yaml'], { cwd: join(corpus, 'trigger-rules') });
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    const lines = r.stderrLines();
    const last = lines.pop();
    assert.match(last ?? '', /^winchester: invalid configuration: \d+ problems?$/);
    assert.ok(lines.length >= 10);
    for (const line of lines) assert.match(line, /^triggers\.yaml:\d+:\d+: \S/);
    assert.ok(
      lines.includes("triggers.yaml:6:9: duplicate trigger name 'first' (first defined at line 1)"),
      lines.join('\n'),
    );
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  });

  test('a missing file: exit 2', async () => {
    const r = await runCli(['check', '-c', 'nope.yaml'], { cwd: root });
    assert.equal(r.code, 2);
    assert.equal(r.stderrLines()[0], 'nope.yaml: file not found');
  });

  test('bad usage: exit 2', async () => {
    assert.equal((await runCli(['check', '--bogus'], { cwd: root })).code, 2);
    assert.equal((await runCli(['check', 'extra'], { cwd: root })).code, 2);
    const help = await runCli(['check', '--help'], { cwd: root });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: winchester check/);
  });

  test('environment problems are reported as (environment)', async () => {
    const r = await runCli(['check', '-c', 'etc/winchester.yaml'], {
      cwd: root,
      env: { WINCHESTER_METRICS_PORT: 'ninety' },
    });
    assert.equal(r.code, 2);
    assert.equal(
      r.stderrLines()[0],
      '(environment): WINCHESTER_METRICS_PORT: expected a whole number, got "ninety"',
    );
    const timex = await runCli(['check', '-c', 'etc/winchester.yaml'], {
      cwd: root,
      env: { WINCHESTER_TRIM_EVENTS_AGE: '$timestamp -' },
    });
    assert.equal(timex.code, 2);
    assert.match(
      timex.stderrLines()[0] ?? '',
      /^\(environment\): WINCHESTER_TRIM_EVENTS_AGE: invalid time expression: /,
    );
  });

  test('a database URL from the environment that cannot work names the variable, never the password', async () => {
    const r = await runCli(['check', '-c', 'etc/winchester.yaml'], {
      cwd: root,
      env: { DATABASE_URL: 'mysql://winchester:s3cret@db/winchester' },
    });
    assert.equal(r.code, 2);
    assert.match(r.stderrLines()[0] ?? '', /^\(environment\): DATABASE_URL: mysql:\/\/ is not supported/);
    assert.doesNotMatch(r.stderr, /s3cret/);
  });

  test('warnings go to stderr and pass, unless --strict; --quiet hides them', async () => {
    const dir = dirWith({ 'winchester.yaml': 'site_notes: x\n' });
    const r = await runCli(['check', '-c', 'winchester.yaml'], { cwd: dir });
    assert.equal(r.code, 0);
    assert.equal(r.stderr, "winchester.yaml:1:1: warning: unknown setting 'site_notes' is ignored\n");
    assert.equal(r.stdout, 'ok: 0 triggers, 0 pipelines, 0 event definitions\n');
    const strict = await runCli(['check', '-c', 'winchester.yaml', '--strict'], { cwd: dir });
    assert.equal(strict.code, 2);
    const quiet = await runCli(['check', '-c', 'winchester.yaml', '-q'], { cwd: dir });
    assert.equal(quiet.stderr, '');
    assert.equal(quiet.code, 0);
  });
});
