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
    // The reference's notabene params name a RabbitMQ server; here they are read and ignored (each step is
    // constructed by check, as by the pipeline worker at start, which says so once).
    assert.deepEqual(r.stderrLines(), [
      "etc/pipelines.yaml:5:7: warning: pipeline 'test_fire_pipeline', handler 3 'notabene': notabene: RabbitMQ connection params are ignored; messages go to the Kafka topic",
      "etc/pipelines.yaml:22:7: warning: pipeline 'test_expire_pipeline', handler 3 'notabene': notabene: RabbitMQ connection params are ignored; messages go to the Kafka topic",
    ]);
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
    const dir = dirWith({ 'winchester.yaml': 'logging_config: logging.conf\n' });
    const r = await runCli(['check', '-c', 'winchester.yaml'], { cwd: dir });
    assert.equal(r.code, 0);
    assert.equal(
      r.stderr,
      'winchester.yaml:1:17: warning: logging_config (a Python logging file) is not used: set log_level instead\n',
    );
    assert.equal(r.stdout, 'ok: 0 triggers, 0 pipelines, 0 event definitions\n');
    const strict = await runCli(['check', '-c', 'winchester.yaml', '--strict'], { cwd: dir });
    assert.equal(strict.code, 2);
    const quiet = await runCli(['check', '-c', 'winchester.yaml', '-q'], { cwd: dir });
    assert.equal(quiet.stderr, '');
    assert.equal(quiet.code, 0);
  });

  test('a key nothing reads is a problem for check (a worker only warns), with its file and line', async () => {
    const dir = dirWith({
      'winchester.yaml': 'site_notes: x\ntrigger_definitions: triggers.yaml\n',
      'triggers.yaml':
        '- name: t\n  colour: red\n  expiration: $last + 1h\n  fire_pipeline: p\n' +
        '  match_criteria: [{event_type: a.*, shade: x}]\n  fire_criteria: [{event_type: a.end}]\n',
    });
    const r = await runCli(['check', '-c', 'winchester.yaml'], { cwd: dir });
    assert.equal(r.code, 2);
    assert.deepEqual(r.stderrLines(), [
      "winchester.yaml:1:1: unknown setting 'site_notes'",
      "triggers.yaml:2:3: trigger 't': unknown key 'colour'",
      "triggers.yaml:4:18: trigger 't': fire_pipeline 'p' is not defined (winchester.yaml sets no pipeline_config)",
      "triggers.yaml:5:38: trigger 't': match_criteria[0]: unknown key 'shade'",
      'winchester: invalid configuration: 4 problems',
    ]);
  });

  test('every pipeline step is constructed: what its handler says about its params is a warning at that line', async () => {
    const dir = dirWith({
      'winchester.yaml': 'pipeline_config: pipelines.yaml\n',
      'pipelines.yaml':
        'p:\n  - name: usage\n    params:\n      bogus: 1\n  - name: logger\n    params: {level: debug, colour: red}\n',
    });
    const r = await runCli(['check', '-c', 'winchester.yaml'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stderrLines(), [
      "pipelines.yaml:4:7: warning: pipeline 'p', handler 1 'usage': usage: ignoring unknown params (bogus)",
      "pipelines.yaml:6:28: warning: pipeline 'p', handler 2 'logger': logger: ignoring unknown params (colour)",
    ]);
    const strict = await runCli(['check', '-c', 'winchester.yaml', '--strict'], { cwd: dir });
    assert.equal(strict.code, 2);
  });
});
