/**
 * The worker CLIs' exit path for a consumer kafkajs will not restart and no restart would cure: the
 * process must not stay up consuming nothing, but stop and exit 1 (so an orchestrator restarts it),
 * saying why in one line. (A crash kafkajs will not restart that is a Kafka outage, such as "Failed to
 * find group coordinator" in a broker restart, is ridden out instead: the consumer is replaced in the
 * process, test/integration/worker/consumer-restart.test.ts.)
 *
 * The crash is a real one, made without any authorizer: a consumer session timeout above the broker's
 * `group.max.session.timeout.ms` (30 min by default) is refused by the group coordinator with
 * INVALID_SESSION_TIMEOUT, an error kafkajs marks non-retriable, so its CRASH event says `restart: false`;
 * a misconfiguration, so the worker does not try a replacement either.
 * (Deleting a subscribed topic is no such crash: kafkajs restarts the consumer and keeps trying.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INTEGRATION_TIMEOUT_MS, uniqueName, workerEnv } from '../../helpers/integration.js';
import { testKafka } from '../../helpers/kafka.js';
import { startWinchester } from '../../helpers/process.js';
import { migratedDatabase } from '../db/schema.js';
import { workerTopics } from './topics.js';

const opts = { timeout: INTEGRATION_TIMEOUT_MS };
/** One hour: above the broker's largest allowed session timeout. */
const TOO_LONG = '3600';

const cases = [
  {
    command: 'trigger-worker',
    setting: 'WINCHESTER_TRIGGER_WORKER_SESSION_TIMEOUT',
    crashed: /^(route|streams) consumer crashed$/,
    fatal: /^winchester: a trigger-worker consumer stopped and cannot restart: .*session timeout/m,
  },
  {
    command: 'pipeline-worker',
    setting: 'WINCHESTER_PIPELINE_WORKER_SESSION_TIMEOUT',
    crashed: /^pipeline consumer crashed$/,
    fatal: /^winchester: the pipeline consumer stopped and cannot restart: .*session timeout/m,
  },
] as const;

for (const c of cases) {
  test(
    `${c.command}: a consumer that crashed for good stops the worker with exit status 1`,
    opts,
    async (t) => {
      const name = c.command.slice(0, 1);
      const db = await migratedDatabase(t, `it_fatal_${name}`);
      const kafka = testKafka(`it-fatal-${name}`);
      const { names: topics } = await workerTopics(t, kafka, {
        notifications: { prefix: `it-fatal-${name}-in`, partitions: 1 },
        streamEvents: { prefix: `it-fatal-${name}-se`, partitions: 1 },
        batches: { prefix: `it-fatal-${name}-b`, partitions: 1 },
        deadLetter: { prefix: `it-fatal-${name}-dl`, partitions: 1 },
      });
      const worker = startWinchester(t, [c.command, '-c', 'etc/winchester.yaml'], {
        ...workerEnv({
          databaseUrl: db.url,
          clientId: uniqueName(`it-fatal-${name}`),
          topics,
          partitions: 1,
        }),
        WINCHESTER_METRICS_PORT: '0',
        [c.setting]: TOO_LONG,
      });
      const status = await worker.exit();
      assert.equal(status, 1, `exit status; stderr: ${worker.stderr}`);
      // One line on stderr that says what happened and why; no stack trace.
      assert.match(worker.stderr, c.fatal);
      assert.equal(worker.stderr.trim().split('\n').length, 1, worker.stderr);
      assert.doesNotMatch(worker.stderr, /\n\s+at /);
      // The log says the consumer crashed and will not be restarted, then the worker stopped on that.
      const crash = worker.lines.find((l) => typeof l.msg === 'string' && c.crashed.test(l.msg));
      assert.ok(crash, `a crash line in ${JSON.stringify(worker.lines.slice(-10))}`);
      assert.equal(crash.level, 'error');
      assert.equal(crash.restart, false);
      assert.match(String(crash.error), /session timeout/);
      assert.equal(crash.in_process_restarts, undefined, 'not an outage: no replacement was tried');
      assert.ok(
        !worker.lines.some((l) => typeof l.msg === 'string' && l.msg.endsWith('restarting it in-process')),
        'no in-process restart',
      );
      const stopping = worker.lines.find((l) => l.msg === 'stopping gracefully');
      assert.equal(stopping?.signal, 'abort', 'stopped by the fatal crash, not by a signal');
      assert.ok(
        worker.lines.indexOf(crash) < worker.lines.indexOf(stopping as Record<string, unknown>),
        'the crash came first',
      );
    },
  );
}
