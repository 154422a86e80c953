import assert from 'node:assert/strict';
import { type AddressInfo, createServer } from 'node:net';
import { test } from 'node:test';
import { createProducer } from '../../../src/kafka/kafka.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { startWorkerOps } from '../../../src/metrics/ops.js';
import { INTEGRATION_TIMEOUT_MS, uniqueName } from '../../helpers/integration.js';
import { testAdmin, testKafka, testTopic } from '../../helpers/kafka.js';
import { sampleValue, scrape } from '../../helpers/prometheus.js';

test('startWorkerOps serves the lag of its groups from a real broker, and port 0 starts nothing', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const kafka = testKafka('it-ops');
  const admin = await testAdmin(t, kafka);
  const topic = await testTopic(t, admin, 'it-ops', { numPartitions: 1 });
  const producer = createProducer(kafka);
  await producer.connect();
  t.after(() => producer.disconnect());
  await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] });
  const group = uniqueName('it-ops-group');

  const disabled = await startWorkerOps({
    host: '127.0.0.1',
    port: 0,
    metrics: createMetrics(),
    kafka: {
      admin: () => {
        throw new Error('nothing may be started when the port is 0');
      },
    },
    lagTargets: [{ group, topic }],
    ready: async () => ({ ready: true, checks: {} }),
    log: () => undefined,
  });
  assert.equal(disabled.port, null);
  await disabled.stop();

  // Port 0 means "disabled" here (the configuration's meaning): ask the system for a free port first.
  const free = createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', () => r()));
  const port = (free.address() as AddressInfo).port;
  await new Promise<void>((r) => free.close(() => r()));
  const ops = await startWorkerOps({
    host: '127.0.0.1',
    port,
    metrics: createMetrics(),
    kafka,
    lagTargets: [{ group, topic }],
    ready: async () => ({ ready: true, checks: { joined: true } }),
    log: () => undefined,
  });
  t.after(() => ops.stop());
  assert.equal(ops.port, port);
  const scraped = await scrape(port);
  assert.equal(sampleValue(scraped, 'winchester_consumer_lag', { group, topic, partition: '0' }), 3);
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  assert.equal(ready.status, 200);
  await Promise.all([ops.stop(), ops.stop()]);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`));
});
