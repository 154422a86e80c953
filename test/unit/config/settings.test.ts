import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Problems } from '../../../src/config/problems.js';
import { envName, leaves, winchesterSchema } from '../../../src/config/schema.js';
import { closest, editDistance, readSettings } from '../../../src/config/settings.js';
import { parseYaml } from '../../../src/config/yaml.js';

function read(text: string, env: Record<string, string> = {}) {
  const problems = new Problems();
  const { root } = parseYaml(text, 'w.yaml', problems);
  const r = readSettings(root, 'w.yaml', env, problems);
  return { ...r, problems };
}

describe('settings', () => {
  test('defaults of the reference and ours', () => {
    const { settings, problems } = read('');
    assert.equal(problems.ok, true);
    assert.deepEqual(settings.config_path, []);
    assert.equal(settings.catch_all_notifications, false);
    assert.equal(settings.statistics_period, 10);
    assert.equal(settings.purge_completed_streams, true);
    assert.equal(settings.trim_events, false);
    assert.equal(settings.trim_events_age, '$timestamp - 14d');
    assert.equal(settings.database.url, null);
    assert.deepEqual(settings.kafka.brokers, ['localhost:9092']);
    assert.deepEqual(settings.kafka.topics, {
      notifications: 'notifications',
      stream_events: 'winchester.stream-events',
      batches: 'winchester.batches',
      dead_letter: 'winchester.dead-letter',
    });
    assert.equal(settings.metrics.port, 9464);
    assert.deepEqual(settings.clock, { mode: 'wall', lateness: 0 });
  });

  test('the reference example winchester.yaml reads (config_path string, log_level, worker keys)', () => {
    const { settings, problems } = read(
      [
        'config_path: /home/winchester/etc',
        'log_level: debug',
        'statistics_period: 10',
        'pipeline_worker_batch_size: 1000',
        'pipeline_worker_delay: 10',
        'catch_all_notifications: false',
        'database:',
        '    url: mysql://winchester:testpasswd@localhost/winchester',
        'distiller_config: event_definitions.yaml',
        'trigger_definitions: triggers.yaml',
        'pipeline_config: pipelines.yaml',
        'pipeline_handlers:',
        '    logger: winchester.pipeline_handler:LoggingHandler',
        '',
      ].join('\n'),
    );
    assert.deepEqual(problems.errors, []);
    assert.deepEqual(settings.config_path, ['/home/winchester/etc']);
    assert.equal(settings.log_level, 'debug');
    assert.deepEqual(settings.pipeline_handlers, { logger: 'winchester.pipeline_handler:LoggingHandler' });
  });

  test('environment overrides: WINCHESTER_<PATH> first, then the aliases; lists are comma-separated', () => {
    const { settings, fromEnv, problems } = read('kafka:\n  brokers: [file:9092]\nmetrics:\n  port: 1000\n', {
      WINCHESTER_KAFKA_BROKERS: 'a:1, b:2',
      KAFKA_BROKERS: 'ignored:1',
      DATABASE_URL: 'postgres://db/w',
      WINCHESTER_METRICS_PORT: '9100',
      WINCHESTER_CLOCK_MODE: 'event',
      WINCHESTER_CLOCK_LATENESS: '2.5',
      WINCHESTER_KAFKA_SSL_ENABLED: 'yes',
      WINCHESTER_KAFKA_TOPICS_BATCHES: 'b',
      WINCHESTER_CATCH_ALL_NOTIFICATIONS: '',
    });
    assert.equal(problems.ok, true);
    assert.deepEqual(settings.kafka.brokers, ['a:1', 'b:2']);
    assert.equal(settings.database.url, 'postgres://db/w');
    assert.equal(settings.metrics.port, 9100);
    assert.deepEqual(settings.clock, { mode: 'event', lateness: 2.5 });
    assert.equal(settings.kafka.ssl.enabled, true);
    assert.equal(settings.kafka.topics.batches, 'b');
    assert.equal(settings.catch_all_notifications, false, 'empty variables are ignored');
    assert.equal(fromEnv.get('database.url'), 'DATABASE_URL');
    assert.equal(fromEnv.get('kafka.brokers'), 'WINCHESTER_KAFKA_BROKERS');
  });

  test('the alias applies when the WINCHESTER_ variable is absent', () => {
    assert.deepEqual(read('', { KAFKA_BROKERS: 'k:1,k:2' }).settings.kafka.brokers, ['k:1', 'k:2']);
  });

  test('bad environment values are problems naming the variable, never echoing secrets', () => {
    const { problems } = read('', { WINCHESTER_METRICS_PORT: 'x', WINCHESTER_KAFKA_SSL_ENABLED: 'perhaps' });
    assert.deepEqual(problems.errors.map((p) => [p.file, p.message]).sort(), [
      ['(environment)', 'WINCHESTER_KAFKA_SSL_ENABLED: expected true or false, got "perhaps"'],
      ['(environment)', 'WINCHESTER_METRICS_PORT: expected a whole number, got "x"'],
    ]);
  });

  test('every leaf has help text and a unique environment name', () => {
    const names = new Set<string>();
    for (const [path, spec] of leaves()) {
      assert.ok(spec.help.length > 10, path.join('.'));
      const name = envName(path);
      assert.ok(!names.has(name), name);
      names.add(name);
    }
    assert.ok(Object.keys(winchesterSchema.fields).includes('pipeline_handlers'));
  });

  test('unknown keys: warnings, except likely typos which are errors', () => {
    const { problems } = read('my_extension: 1\ndatabse:\n  url: x\nmetrics:\n  prot: 1\n');
    assert.deepEqual(
      problems.warnings.map((w) => w.message),
      ["unknown setting 'my_extension' is ignored"],
    );
    assert.deepEqual(problems.errors.map((e) => e.message).sort(), [
      "unknown setting 'databse'; did you mean 'database'?",
      "unknown setting 'prot' in metrics; did you mean 'port'?",
    ]);
  });

  test('reference settings without effect are accepted with a warning', () => {
    const { problems } = read('time_sync_endpoint: http://x\nlogging_config: logging.conf\n');
    assert.equal(problems.ok, true);
    assert.equal(problems.warnings.length, 2);
  });

  test('shorthands: ssl: true, empty sections, a single broker string, log level warn', () => {
    const { settings, problems } = read(
      'kafka:\n  brokers: k:9092\n  ssl: true\nmetrics:\nlog_level: WARN\n',
    );
    assert.equal(problems.ok, true);
    assert.deepEqual(settings.kafka.brokers, ['k:9092']);
    assert.equal(settings.kafka.ssl.enabled, true);
    assert.equal(settings.kafka.ssl.reject_unauthorized, true);
    assert.equal(settings.metrics.port, 9464);
    assert.equal(settings.log_level, 'warning');
  });

  test('edit distance and closest', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('ab', 'ba'), 1);
    assert.equal(
      closest('trigger_definition', ['trigger_definitions', 'pipeline_config']),
      'trigger_definitions',
    );
    assert.equal(closest('Pipeline-Config', ['pipeline_config']), 'pipeline_config');
    assert.equal(closest('completely_else', ['pipeline_config']), undefined);
    assert.equal(closest('url', ['urls', 'uri']), 'urls');
  });
});

test('trim_events: true loads with a warning that it has no effect here', async () => {
  const { mkdtemp, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { loadConfig } = await import('../../../src/config/load.js');
  const dir = await mkdtemp(join(tmpdir(), 'trim-'));
  await writeFile(join(dir, 'w.yaml'), 'trim_events: true\n');
  const config = await loadConfig(join(dir, 'w.yaml'), { env: {} });
  assert.ok(config.warnings.some((w) => /trim_events is not implemented/.test(w.message) && w.line === 1));
  await writeFile(join(dir, 'w.yaml'), 'trim_events: false\n');
  const quiet = await loadConfig(join(dir, 'w.yaml'), { env: {} });
  assert.ok(!quiet.warnings.some((w) => /trim_events/.test(w.message)));
});
