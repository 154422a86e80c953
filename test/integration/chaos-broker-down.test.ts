/**
 * Found by the chaos suite (docs/chaos.md): a worker started (or restarted by its supervisor) while the
 * Kafka broker is down or restarting ended with "internal error" and exit 70, kafkajs' raw error escaping
 * the start. Both worker CLIs must exit 1 with one line naming Kafka, as their help promises, so that a
 * supervisor restarts them and an operator sees why.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { INTEGRATION_TIMEOUT_MS } from '../helpers/integration.js';
import { freePort } from '../helpers/process.js';
import { migratedDatabase } from './db/schema.js';

for (const command of ['trigger-worker', 'pipeline-worker']) {
  test(`${command} started while the broker is down: exit 1, one line naming Kafka, no stack trace`, {
    timeout: INTEGRATION_TIMEOUT_MS,
  }, async (t) => {
    const db = await migratedDatabase(t, 'it_chaos_down');
    const r = await runCli([command, '-c', 'etc/winchester.yaml'], {
      env: {
        DATABASE_URL: db.url,
        // A port nothing listens on: the broker is down.
        KAFKA_BROKERS: `127.0.0.1:${await freePort()}`,
        // Workers ride out a minute of outage by default (kafka.retries); give up after two tries here.
        WINCHESTER_KAFKA_RETRIES: '1',
        WINCHESTER_METRICS_PORT: '0',
        WINCHESTER_LOG_LEVEL: 'error',
      },
    });
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderrLines().filter((l) => !l.startsWith('{'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0] as string,
      new RegExp(`^winchester: ${command} could not start: Kafka: .*ECONNREFUSED`),
    );
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
  });
}
