/**
 * `winchester_schema_registry_errors_total{operation}` as the workers wire it (workerAvro with the
 * worker's metrics): every failed registry call counts once, at start (`register`) and later
 * (`fetch_schema`, for the record codec and the notification decoder alike), against the in-test
 * stand-in of the Confluent API; an id the registry does not have (404) and calls that succeed do not.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { workerAvro } from '../../../src/cli/worker-runtime.js';
import { loadConfig } from '../../../src/config/index.js';
import {
  ConfluentSchemaSource,
  SchemaRegistryRequestError,
  SchemaRegistryUnavailableError,
} from '../../../src/kafka/schema-registry.js';
import type { Logger } from '../../../src/log.js';
import { createMetrics, type WinchesterMetrics } from '../../../src/metrics/metrics.js';
import { frame, UnknownSchemaError } from '../../../src/serde/codec.js';
import { freePort } from '../../helpers/process.js';
import { startFakeRegistry } from '../serde/fake-registry.js';

const dir = mkdtempSync(join(tmpdir(), 'registry-metrics-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const quiet: Logger = () => undefined;

async function configFor(url: string, extra = '') {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    path,
    `schema_registry:\n  url: ${url}\n  retries: 0\n  timeout: 2\n${extra}kafka:\n  topics:\n    stream_events: m.se\n    batches: m.b\n`,
  );
  return loadConfig(path, { env: {} });
}

/** The counter's values by operation (absent: never incremented). */
async function errors(metrics: WinchesterMetrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.schemaRegistryErrors.get()).values) {
    out[String(v.labels.operation)] = v.value;
  }
  return out;
}

describe('winchester_schema_registry_errors_total', () => {
  test('a registry that answers: nothing counted', async (t) => {
    const registry = await startFakeRegistry();
    t.after(() => registry.close());
    const metrics = createMetrics();
    const avro = await workerAvro(await configFor(registry.url), quiet, metrics);
    assert.ok(avro !== undefined, 'Avro wiring built');
    assert.deepEqual(await errors(metrics), {});
  });

  test('unreachable at start: one register error, and the worker gets the unavailable error', async () => {
    const metrics = createMetrics();
    const config = await configFor(`http://127.0.0.1:${await freePort()}`);
    await assert.rejects(workerAvro(config, quiet, metrics), SchemaRegistryUnavailableError);
    // Registration stops at the first subject that fails.
    assert.deepEqual(await errors(metrics), { register: 1 });
  });

  test('refusing the credentials at start: counted as a register error too', async (t) => {
    const registry = await startFakeRegistry({ auth: { username: 'w', password: 'right' } });
    t.after(() => registry.close());
    const metrics = createMetrics();
    const config = await configFor(registry.url, '  username: w\n  password: wrong\n');
    await assert.rejects(workerAvro(config, quiet, metrics), SchemaRegistryRequestError);
    assert.deepEqual(await errors(metrics), { register: 1 });
  });

  test('an outage after start: each failed fetch counts (codec and notifications); a 404 does not', async (t) => {
    const registry = await startFakeRegistry();
    t.after(() => registry.close());
    const metrics = createMetrics();
    const avro = await workerAvro(await configFor(registry.url), quiet, metrics);
    assert.ok(avro !== undefined, 'Avro wiring built');
    const otherId = await new ConfluentSchemaSource({ url: registry.url }).register(
      'm.other-value',
      JSON.stringify({ type: 'record', name: 'Other', fields: [{ name: 'n', type: 'long' }] }),
    );
    const record = frame(otherId, Buffer.from([2]));

    registry.unavailable = true;
    await assert.rejects(avro.codec.prepare([record]), SchemaRegistryUnavailableError);
    await assert.rejects(avro.avroNotifications.prepare([record]), SchemaRegistryUnavailableError);
    assert.deepEqual(await errors(metrics), { fetch_schema: 2 });

    registry.unavailable = false;
    await avro.codec.prepare([record]);
    await avro.avroNotifications.prepare([record]);
    // An id nobody registered: the registry answered (404); the value is dead-lettered, not counted.
    const unknown = frame(otherId + 1000, Buffer.from([2]));
    await avro.codec.prepare([unknown]);
    assert.throws(() => avro.codec.decodeBatchMessage(unknown), UnknownSchemaError);
    await avro.avroNotifications.prepare([unknown]);
    const d = avro.avroNotifications.decode(unknown);
    assert.ok(!d.ok && d.reason === 'unknown_schema', 'unknown id dead-lettered as unknown_schema');
    assert.deepEqual(await errors(metrics), { fetch_schema: 2 });
  });

  test('without metrics (the CLI writers) the failure is the same', async () => {
    const config = await configFor(`http://127.0.0.1:${await freePort()}`);
    await assert.rejects(workerAvro(config, quiet), SchemaRegistryUnavailableError);
  });
});
