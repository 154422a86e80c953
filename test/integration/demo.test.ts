/**
 * `npm run demo` with a tiny workload against the running services: the whole job (migration, both
 * workers, generate, produce, advance the clock, progress, summary) must finish, report numbers that
 * show work was done, and leave no worker behind with --stop-after.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { databaseUrl, kafkaBrokers } from '../helpers/integration.js';
import { freePort, pidAlive, runScript } from '../helpers/process.js';

/** The number on the summary line `label   N …`. */
function figure(out: string, label: string): number {
  const m = new RegExp(`^ {2}${label.replace(/ /g, ' ')}\\s+(\\d+)`, 'm').exec(out);
  assert.ok(m, `summary line '${label}' missing in:\n${out}`);
  return Number(m[1]);
}

test('npm run demo: a tiny workload end to end, summary with verdicts, no worker left running', {
  timeout: 250_000,
}, async (t) => {
  const demoDir = mkdtempSync(join(tmpdir(), 'winchester-demo-'));
  t.after(() => rmSync(demoDir, { recursive: true, force: true }));
  const env = {
    ...process.env,
    KAFKA_BROKERS: kafkaBrokers(),
    DATABASE_URL: databaseUrl(),
    DEMO_DIR: demoDir,
    DEMO_PARTITIONS: '2',
    DEMO_TRIGGER_METRICS_PORT: String(await freePort()),
    DEMO_PIPELINE_METRICS_PORT: String(await freePort()),
    DEMO_TIMEOUT: '60',
  };
  const { code, output: out } = await runScript(
    'demo.sh',
    ['--instances', '6', '--days', '1', '--seed', '3', '--stop-after'],
    env,
    240_000, // a hang guard, not a speed check: npm test runs the chaos suite beside it on 2 cores
  );
  assert.equal(code, 0, out);

  const notifications = figure(out, 'notifications in');
  assert.ok(notifications > 0, out);
  assert.equal(figure(out, 'notifications routed'), notifications, out);
  const fired = figure(out, 'streams fired');
  assert.ok(fired > 0, out);
  assert.equal(figure(out, 'streams opened'), fired + figure(out, 'streams expired'), out);
  assert.equal(figure(out, 'streams still open'), 0, out);
  assert.equal(figure(out, 'batches completed'), figure(out, 'batches published'), out);
  assert.equal(figure(out, 'batches failed'), 0, out);
  // One verdict at least per fired stream (each ends with its end-of-day .exists).
  const verdicts = figure(out, 'verdicts');
  assert.ok(verdicts >= fired, out);
  const verified = figure(out, ' {2}verified');
  const failed = figure(out, ' {2}failed');
  const warnings = figure(out, ' {2}warnings');
  assert.equal(verified + failed + warnings, verdicts, out);
  assert.equal(figure(out, '  published twice'), 0, `each verdict is published exactly once:\n${out}`);
  assert.ok(verified > 0, out);
  const codes = /compute\.instance\.exists\.failed: (U0 \d+( · U\d \d+){8})/.exec(out);
  assert.ok(codes, `failed verdicts by code U0–U8 missing:\n${out}`);
  const byCode = [...(codes[1] as string).matchAll(/U\d (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  assert.equal(byCode, failed, out);
  assert.match(out, /metrics\s+http:\/\/127\.0\.0\.1:\d+\/metrics/);

  const pids = [...out.matchAll(/^(?:trigger|pipeline) worker\s+pid (\d+)/gm)].map((m) => Number(m[1]));
  assert.equal(pids.length, 2, out);
  for (const pid of pids)
    assert.equal(pidAlive(pid), false, `worker ${pid} still running after --stop-after`);
  assert.match(out, /demo: stopped run \S+ \(workers \d+ \d+\)/);
});
