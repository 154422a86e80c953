import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

const root = new URL('../../../', import.meta.url).pathname;

/** Writes files (path → content) into a fresh temporary directory and returns it. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'winchester-config-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

const TRIGGERS = `- name: t
  expiration: $last + 1h
  fire_pipeline: fire
  match_criteria: [{event_type: "a.*"}]
  fire_criteria: [{event_type: a.end}]
`;

async function configError(path: string, opts: Parameters<typeof loadConfig>[1]): Promise<ConfigError> {
  try {
    await loadConfig(path, opts);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  test('the example etc/winchester.yaml: the StackTach usage audit', async () => {
    const c = await loadConfig('etc/winchester.yaml', { cwd: root, env: {} });
    assert.deepEqual(c.warnings, []);
    assert.deepEqual(
      c.triggers.map((t) => [t.name, t.firePipeline, t.expirePipeline, t.debugLevel, t.distinguishedBy]),
      [['test_trigger', 'test_fire_pipeline', 'test_expire_pipeline', 2, ['instance_id', 'timestamp']]],
    );
    assert.deepEqual([...c.pipelines.keys()], ['test_fire_pipeline', 'test_expire_pipeline']);
    const fire = c.pipelines.get('test_fire_pipeline');
    assert.deepEqual(
      fire?.handlers.map((h) => [h.name, h.handler]),
      [
        ['logger', { kind: 'builtin', name: 'logger' }],
        ['usage', { kind: 'builtin', name: 'usage' }],
        ['notabene', { kind: 'builtin', name: 'notabene' }],
      ],
    );
    // The reference's RabbitMQ parameters are accepted unchanged.
    assert.deepEqual(fire?.handlers[2]?.params, {
      host: 'localhost',
      user: 'guest',
      password: 'guest',
      port: 5672,
      vhost: '/',
      library: 'librabbitmq',
      exchange: 'nova',
      exchange_type: 'topic',
      queue_name: 'monitor.info',
      env_keys: ['usage_notifications'],
    });
    assert.equal(c.eventDefinitionCount, 6);
    assert.ok(c.distiller);
    assert.equal(c.files.triggerDefinitions, join(root, 'etc/triggers.yaml'));
    assert.equal(c.settings.kafka.topics.stream_events, 'winchester.stream-events');
    assert.equal(c.settings.database.url, 'postgres://winchester:winchester@localhost:5432/winchester');
  });

  test('the result is deeply frozen', async () => {
    const c = await loadConfig('etc/winchester.yaml', { cwd: root, env: {} });
    assert.ok(Object.isFrozen(c));
    assert.ok(Object.isFrozen(c.settings.kafka.topics));
    assert.throws(() => {
      (c.settings.metrics as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => (c.pipelines as Map<string, unknown>).set('x', {}), TypeError);
    assert.throws(() => (c.handlers as Map<string, unknown>).delete('logger'), TypeError);
    const params = c.pipelines.get('test_fire_pipeline')?.handlers[2]?.params as { env_keys: string[] };
    assert.throws(() => params.env_keys.push('x'), TypeError);
    assert.ok(Object.isFrozen(c.triggers[0]));
  });

  test('environment overrides apply to the loaded config', async () => {
    const c = await loadConfig('etc/winchester.yaml', {
      cwd: root,
      env: { DATABASE_URL: 'postgres://elsewhere/db', WINCHESTER_KAFKA_BROKERS: 'k1:9092,k2:9092' },
    });
    assert.equal(c.settings.database.url, 'postgres://elsewhere/db');
    assert.deepEqual(c.settings.kafka.brokers, ['k1:9092', 'k2:9092']);
  });

  test('files are searched along config_path, then next to winchester.yaml', async () => {
    const dir = tree({
      'conf/winchester.yaml':
        'config_path: [../first, ../second]\ntrigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\n',
      'second/triggers.yaml': 'not: [valid',
      'first/triggers.yaml': TRIGGERS,
      'conf/pipelines.yaml': 'fire: [logger]\n',
    });
    const c = await loadConfig('conf/winchester.yaml', { cwd: dir, env: {} });
    assert.equal(c.files.triggerDefinitions, join(dir, 'first/triggers.yaml'));
    assert.equal(c.files.pipelineConfig, join(dir, 'conf/pipelines.yaml'));
    assert.deepEqual(c.configPath, [join(dir, 'first'), join(dir, 'second'), join(dir, 'conf')]);
    assert.equal(c.triggers.length, 1);
  });

  test('handler modules: existence is checked, the import is left to the runner', async () => {
    const dir = tree({
      'winchester.yaml':
        'config_path: lib\npipeline_config: pipelines.yaml\ntrigger_definitions: triggers.yaml\npipeline_handlers:\n  mine: ./handlers/mine.js#MyHandler\n  dflt: ./handlers/mine.js\n  log: winchester.pipeline_handler:LoggingHandler\n',
      'lib/handlers/mine.js': 'throw new Error("must not be imported at load");\n',
      'pipelines.yaml':
        'fire:\n  - mine\n  - dflt\n  - log\n  - winchester.pipeline_handler:AtomPubHandler\n  - name: webhook\n    params: {url: "http://h/x"}\n',
      'triggers.yaml': TRIGGERS,
    });
    const c = await loadConfig('winchester.yaml', { cwd: dir, env: {} });
    const handlers = c.pipelines.get('fire')?.handlers.map((h) => h.handler);
    assert.deepEqual(handlers, [
      {
        kind: 'module',
        spec: './handlers/mine.js#MyHandler',
        path: join(dir, 'lib/handlers/mine.js'),
        exportName: 'MyHandler',
      },
      {
        kind: 'module',
        spec: './handlers/mine.js',
        path: join(dir, 'lib/handlers/mine.js'),
        exportName: 'default',
      },
      { kind: 'builtin', name: 'logger' },
      { kind: 'builtin', name: 'atompub' },
      { kind: 'builtin', name: 'webhook' },
    ]);
  });

  test('no triggers file and no pipelines file is a valid (idle) configuration', async () => {
    const dir = tree({ 'winchester.yaml': 'database:\n  url: postgres://x/y\n' });
    const c = await loadConfig(join(dir, 'winchester.yaml'), { env: {} });
    assert.equal(c.triggers.length, 0);
    assert.equal(c.pipelines.size, 0);
    assert.equal(c.distiller, null);
  });

  test('a trigger naming a pipeline with no pipeline_config is an error at the trigger', async () => {
    const dir = tree({
      'winchester.yaml': 'trigger_definitions: triggers.yaml\n',
      'triggers.yaml': TRIGGERS,
    });
    const err = await configError('winchester.yaml', { cwd: dir, env: {} });
    assert.deepEqual(
      err.problems.map((p) => [p.file, p.line, p.message]),
      [
        [
          'triggers.yaml',
          3,
          "trigger 't': fire_pipeline 'fire' is not defined (winchester.yaml sets no pipeline_config)",
        ],
      ],
    );
  });

  test('a broken pipeline is reported once, not again by the triggers naming it', async () => {
    const dir = tree({
      'winchester.yaml': 'trigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\n',
      'triggers.yaml': TRIGGERS,
      'pipelines.yaml': 'fire:\n  - nosuch\n',
    });
    const err = await configError('winchester.yaml', { cwd: dir, env: {} });
    assert.equal(err.problems.length, 1);
    assert.match(err.problems[0]?.message ?? '', /unknown handler 'nosuch'/);
  });

  test('an unreadable winchester.yaml is a ConfigError naming it', async () => {
    const dir = tree({});
    const err = await configError('missing.yaml', { cwd: dir, env: {} });
    assert.deepEqual(err.problems, [{ file: 'missing.yaml', message: 'file not found' }]);
    const isDir = await configError('.', { cwd: dir, env: {} });
    assert.match(isDir.problems[0]?.message ?? '', /directory/);
  });

  test('problems from every file are reported together, winchester.yaml first', async () => {
    const dir = tree({
      'winchester.yaml':
        'trigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\nmetrics: {port: -1}\n',
      'triggers.yaml': '- name: t\n  fire_pipeline: fire\n  match_criteria: [{}]\n  fire_criteria: [{}]\n',
      'pipelines.yaml': 'fire: [nope]\n',
    });
    const err = await configError('winchester.yaml', { cwd: dir, env: {} });
    assert.deepEqual(
      err.problems.map((p) => p.file),
      ['winchester.yaml', 'pipelines.yaml', 'triggers.yaml'],
    );
  });

  test('warnings are kept on the result', async () => {
    const dir = tree({ 'winchester.yaml': 'my_site_notes: hello\nconfig_path: nowhere\n' });
    const c = await loadConfig('winchester.yaml', { cwd: dir, env: {} });
    assert.deepEqual(
      c.warnings.map((w) => [w.line, w.message.replace(dir, 'DIR')]),
      [
        [1, "unknown setting 'my_site_notes' is ignored"],
        [2, 'config_path: directory DIR/nowhere does not exist'],
      ],
    );
  });

  test('trait plugins: JS modules found along config_path, and the stackdistiller class paths of the built-ins', async () => {
    const dir = tree({
      'winchester.yaml': [
        'config_path: plugins',
        'distiller_config: defs.yaml',
        'distiller_trait_plugins:',
        '  upper: ./upper.js#Upper',
        '  cut: stackdistiller.trait_plugins:SplitterTraitPlugin',
        '',
      ].join('\n'),
      'plugins/upper.js':
        'export function Upper() { return { traitValue: (m) => (m.length ? String(m[0][1]).toUpperCase() : null) }; }\n',
      'defs.yaml': [
        '- event_type: compute.*',
        '  traits:',
        '    host:',
        '      fields: publisher_id',
        '      plugin: upper',
        '    service:',
        '      fields: publisher_id',
        '      plugin: cut',
        '',
      ].join('\n'),
    });
    const c = await loadConfig('winchester.yaml', { cwd: dir, env: {} });
    assert.deepEqual(c.traitPlugins.get('cut'), { kind: 'builtin', name: 'split' });
    assert.equal(c.traitPlugins.get('upper')?.kind, 'module');
    assert.equal(c.eventDefinitionCount, 1);
    const r = c.distiller?.distill({
      event_type: 'compute.x',
      message_id: 'm1',
      timestamp: '2015-01-01 00:00:00',
      publisher_id: 'compute.host1',
      payload: {},
    });
    assert.ok(r?.ok);
    assert.deepEqual(r.event.traits.host, { type: 'text', value: 'COMPUTE.HOST1' });
    assert.deepEqual(r.event.traits.service, { type: 'text', value: 'compute' });
  });
});
