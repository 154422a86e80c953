/**
 * `schema_registry` in winchester.yaml, and what a worker builds from it at start (workerAvro): nothing
 * without a URL (JSON, as before), the Avro codec and notification decoder with one, credentials and
 * timeout passed on, and the settings' mistakes reported where they are.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { workerAvro } from '../../../src/cli/worker-runtime.js';
import { loadConfig } from '../../../src/config/index.js';
import { ConfigError } from '../../../src/errors.js';
import { SchemaRegistryRequestError } from '../../../src/kafka/schema-registry.js';
import type { Logger } from '../../../src/log.js';
import { startFakeRegistry } from './fake-registry.js';

const dir = mkdtempSync(join(tmpdir(), 'avro-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, 'utf8');
  return path;
}

function recorder(): { log: Logger; lines: { msg: string; fields: Record<string, unknown> }[] } {
  const lines: { msg: string; fields: Record<string, unknown> }[] = [];
  const log: Logger = (_level, msg, fields = {}) => {
    lines.push({ msg, fields });
  };
  return { log, lines };
}

describe('schema_registry settings', () => {
  test('defaults: no URL, 10 s timeout, 3 retries; the worker builds nothing (JSON)', async () => {
    const config = await loadConfig(file('plain.yaml', 'kafka:\n  brokers: [k:9092]\n'), { env: {} });
    const r = config.settings.schema_registry;
    assert.deepEqual(
      { url: r.url, username: r.username, password: r.password, timeout: r.timeout, retries: r.retries },
      { url: null, username: null, password: null, timeout: 10, retries: 3 },
    );
    const { log, lines } = recorder();
    assert.equal(await workerAvro(config, log), undefined);
    assert.deepEqual(lines, [], 'nothing said, nothing contacted');
  });

  test('the password may come from the environment; a user without a password is an error where it is', async () => {
    const path = file('auth.yaml', 'schema_registry:\n  url: http://r:8081\n  username: winchester\n');
    const ok = await loadConfig(path, { env: { WINCHESTER_SCHEMA_REGISTRY_PASSWORD: 'pw' } });
    assert.equal(ok.settings.schema_registry.password, 'pw');
    await assert.rejects(loadConfig(path, { env: {} }), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /auth\.yaml:3:\d+: schema_registry\.username: basic auth needs both/);
      return true;
    });
  });

  test('a timeout of 0 is refused', async () => {
    const path = file('timeout.yaml', 'schema_registry:\n  url: http://r:8081\n  timeout: 0\n');
    await assert.rejects(
      loadConfig(path, { env: {} }),
      /schema_registry\.timeout: must be more than 0 seconds/,
    );
  });

  test('with a URL and credentials: both schemas registered under the topics subjects, logged with ids', async (t) => {
    const registry = await startFakeRegistry({ auth: { username: 'w', password: 'pw' } });
    t.after(() => registry.close());
    const path = file(
      'avro.yaml',
      `schema_registry:\n  url: ${registry.url}\n  username: w\nkafka:\n  topics:\n    stream_events: se\n    batches: b\n`,
    );
    const config = await loadConfig(path, { env: { WINCHESTER_SCHEMA_REGISTRY_PASSWORD: 'pw' } });
    const { log, lines } = recorder();
    const avro = await workerAvro(config, log);
    assert.ok(avro !== undefined);
    assert.equal(avro.codec.format, 'avro');
    assert.ok(registry.requests.includes('POST /subjects/se-value/versions'));
    assert.ok(registry.requests.includes('POST /subjects/b-value/versions'));
    assert.deepEqual(lines, [
      {
        msg: 'schema registry: internal topics carry Avro',
        fields: {
          registry: registry.url,
          subjects: {
            'se-value': avro.codec.schemaIds.streamRecord,
            'b-value': avro.codec.schemaIds.batchMessage,
          },
        },
      },
    ]);
    const wrong = await loadConfig(path, { env: { WINCHESTER_SCHEMA_REGISTRY_PASSWORD: 'nope' } });
    await assert.rejects(workerAvro(wrong, log), SchemaRegistryRequestError);
  });
});
