import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { type OpsServer, type ReadinessReport, startOpsServer } from '../../../src/http/ops-server.js';
import type { Logger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { parseExposition, sampleValue, scrape } from '../../helpers/prometheus.js';

interface Logged {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

function logger(): Logger & { lines: Logged[] } {
  const lines: Logged[] = [];
  const log = ((level, msg, fields) => {
    lines.push({ level, msg, ...(fields === undefined ? {} : { fields }) });
  }) as Logger & { lines: Logged[] };
  log.lines = lines;
  return log;
}

/** One raw HTTP exchange (fetch cannot send every method, nor show HEAD's missing body). */
function call(
  port: number,
  method: string,
  path: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function withServer(
  t: { after(fn: () => unknown): void },
  ready: () => Promise<ReadinessReport> = async () => ({ ready: true, checks: {} }),
  extra: { timeoutMs?: number; beforeMetrics?: () => Promise<void> } = {},
): Promise<{ server: OpsServer; metrics: ReturnType<typeof createMetrics>; log: ReturnType<typeof logger> }> {
  const metrics = createMetrics();
  const log = logger();
  const server = await startOpsServer({
    host: '127.0.0.1',
    port: 0,
    registry: metrics.registry,
    ready,
    log,
    ...extra,
  });
  t.after(() => server.close());
  return { server, metrics, log };
}

describe('ops server', () => {
  test('/metrics serves the registry in the exposition format, with its content type', async (t) => {
    const { server, metrics } = await withServer(t);
    assert.ok(server.port > 0);
    metrics.eventsMatched.labels({ trigger: 'a "quoted"\\trigger' }).inc(4);
    metrics.checkpointDuration.observe(0.003);
    const res = await call(server.port, 'GET', '/metrics');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], metrics.registry.contentType);
    const parsed = parseExposition(res.body);
    assert.equal(parsed.get('winchester_events_matched_total')?.type, 'counter');
    assert.match(parsed.get('winchester_events_matched_total')?.help ?? '', /trigger/);
    assert.equal(
      sampleValue(parsed, 'winchester_events_matched_total', { trigger: 'a "quoted"\\trigger' }),
      4,
    );
    assert.equal(parsed.get('winchester_checkpoint_duration_seconds')?.type, 'histogram');
    assert.equal(sampleValue(parsed, 'winchester_checkpoint_duration_seconds_count'), 1);
    assert.equal(sampleValue(parsed, 'winchester_checkpoint_duration_seconds_bucket', { le: '0.0025' }), 0);
    assert.equal(sampleValue(parsed, 'winchester_checkpoint_duration_seconds_bucket', { le: '0.005' }), 1);
    assert.equal(sampleValue(parsed, 'winchester_checkpoint_duration_seconds_bucket', { le: '+Inf' }), 1);
    assert.equal(parsed.get('process_cpu_user_seconds_total')?.type, 'counter', 'default metrics');
    // A query string does not change the path.
    assert.equal((await call(server.port, 'GET', '/metrics?x=1')).status, 200);
  });

  test('counters move between scrapes', async (t) => {
    const { server, metrics } = await withServer(t);
    metrics.ticksSent.inc(2);
    assert.equal(sampleValue(await scrape(server.port), 'winchester_ticks_sent_total'), 2);
    metrics.ticksSent.inc(3);
    assert.equal(sampleValue(await scrape(server.port), 'winchester_ticks_sent_total'), 5);
  });

  test('/metrics refreshes through beforeMetrics, and serves the last values when it fails or hangs', async (t) => {
    let calls = 0;
    let mode: 'ok' | 'fail' | 'hang' = 'ok';
    const { server, metrics, log } = await withServer(t, undefined, {
      timeoutMs: 200,
      beforeMetrics: async () => {
        calls++;
        if (mode === 'fail') throw new Error('broker away');
        if (mode === 'hang') await new Promise((r) => setTimeout(r, 1000));
        metrics.consumerLag.labels({ group: 'g', topic: 't', partition: '0' }).set(calls * 10);
      },
    });
    assert.equal(sampleValue(await scrape(server.port), 'winchester_consumer_lag', { partition: '0' }), 10);
    mode = 'fail';
    assert.equal(sampleValue(await scrape(server.port), 'winchester_consumer_lag', { partition: '0' }), 10);
    assert.ok(log.lines.some((l) => l.level === 'warn' && String(l.fields?.error).includes('broker away')));
    mode = 'hang';
    const started = Date.now();
    assert.equal(sampleValue(await scrape(server.port), 'winchester_consumer_lag', { partition: '0' }), 10);
    assert.ok(Date.now() - started < 900, 'a hanging refresh is cut at the timeout');
    assert.equal(calls, 3);
  });

  test('/healthz answers ok while the process runs, whatever readiness says', async (t) => {
    const { server } = await withServer(t, async () => ({ ready: false, checks: { kafka: false } }));
    const res = await call(server.port, 'GET', '/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.body, 'ok\n');
  });

  test('/readyz follows the readiness check: 503 with the failing checks, then 200', async (t) => {
    const checks: Record<string, boolean | string> = { route_group_joined: false, database: 'connecting' };
    const { server } = await withServer(t, async () => ({
      ready: Object.values(checks).every((v) => v === true),
      checks: { ...checks },
    }));
    let res = await call(server.port, 'GET', '/readyz');
    assert.equal(res.status, 503);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(res.body), {
      ready: false,
      failing: { route_group_joined: false, database: 'connecting' },
      checks: { route_group_joined: false, database: 'connecting' },
    });
    checks.route_group_joined = true;
    res = await call(server.port, 'GET', '/readyz');
    assert.equal(res.status, 503);
    assert.deepEqual(JSON.parse(res.body).failing, { database: 'connecting' });
    checks.database = true;
    res = await call(server.port, 'GET', '/readyz');
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), {
      ready: true,
      checks: { route_group_joined: true, database: true },
    });
  });

  test('/readyz is 503 when the check throws (even synchronously) or does not answer in time', async (t) => {
    let mode: 'throw' | 'sync' | 'slow' = 'throw';
    const { server } = await withServer(
      t,
      () => {
        if (mode === 'sync') throw new Error('no config yet');
        if (mode === 'throw') return Promise.reject(new Error('database down'));
        return new Promise((r) => setTimeout(() => r({ ready: true, checks: {} }), 1000));
      },
      { timeoutMs: 150 },
    );
    let res = await call(server.port, 'GET', '/readyz');
    assert.equal(res.status, 503);
    assert.deepEqual(JSON.parse(res.body), { ready: false, error: 'database down' });
    mode = 'sync';
    res = await call(server.port, 'GET', '/readyz');
    assert.equal(res.status, 503);
    assert.equal(JSON.parse(res.body).error, 'no config yet');
    mode = 'slow';
    res = await call(server.port, 'GET', '/readyz');
    assert.equal(res.status, 503);
    assert.match(JSON.parse(res.body).error, /did not answer within 150 ms/);
  });

  test('HEAD is answered without a body; other methods get 405 with Allow; other paths 404', async (t) => {
    const { server } = await withServer(t);
    const head = await call(server.port, 'HEAD', '/metrics');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.ok(Number(head.headers['content-length']) > 1000);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await call(server.port, method, '/metrics');
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.allow, 'GET, HEAD');
    }
    for (const path of ['/', '/metrics/', '/health', '/readyz/x', '/%00']) {
      assert.equal((await call(server.port, 'GET', path)).status, 404, path);
    }
  });

  test('a malformed request gets 400 and the server keeps serving', async (t) => {
    const { server } = await withServer(t);
    const { connect } = await import('node:net');
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let data = '';
      socket.on('data', (d) => {
        data += d.toString();
      });
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 400/);
    assert.equal((await call(server.port, 'GET', '/healthz')).status, 200);
  });

  test('a port in use fails with an error naming host:port and a hint', async (t) => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    t.after(() => new Promise<void>((r) => blocker.close(() => r())));
    const port = (blocker.address() as { port: number }).port;
    await assert.rejects(
      startOpsServer({
        host: '127.0.0.1',
        port,
        registry: createMetrics().registry,
        ready: async () => ({ ready: true, checks: {} }),
        log: logger(),
      }),
      (error: Error) => {
        assert.equal(error.name, 'OpsServerListenError');
        assert.ok(error.message.includes(`127.0.0.1:${port}`), error.message);
        assert.match(error.message, /EADDRINUSE/);
        assert.match(error.message, /metrics\.port/);
        return true;
      },
    );
  });

  test('close() is idempotent and frees the port', async () => {
    const server = await startOpsServer({
      host: '127.0.0.1',
      port: 0,
      registry: createMetrics().registry,
      ready: async () => ({ ready: true, checks: {} }),
      log: logger(),
    });
    assert.equal((await call(server.port, 'GET', '/healthz')).status, 200);
    await Promise.all([server.close(), server.close()]);
    await assert.rejects(call(server.port, 'GET', '/healthz'), /ECONNREFUSED/);
  });
});
