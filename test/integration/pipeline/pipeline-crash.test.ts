import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { TestScope } from '../../helpers/integration.js';
import {
  eventually,
  isCompleted,
  type PipelineRig,
  pipelineRig,
  publishBatch,
  recorded,
  storeStream,
  streamRow,
} from './rig.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
// The CLI from the sources, as bin/winchester.js runs it from dist/.
const ENTRY = "import { main } from './src/main.ts'; process.exitCode = await main(process.argv.slice(1));";

/** `winchester pipeline-worker -c <rig config>` in a child process; its JSON log lines are collected. */
function startChild(t: TestScope, rig: PipelineRig, env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', ENTRY, 'pipeline-worker', '-c', rig.configFile],
    { cwd: ROOT, env: { ...process.env, ...rig.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  let buffered = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ raw: line });
      }
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as string | null,
  }));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, lines, exited, stderr: () => stderr };
}

/** A TCP port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

async function scrape(port: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  return r.text();
}

test('SIGKILL between commit() and the completion record: after a restart the batch runs again, its effect is there once', {
  timeout: 120_000,
}, async (t) => {
  const rig = await pipelineRig(t, 'kill');
  const s = await storeStream(rig, { pipeline: 'die_pipe' });
  await publishBatch(rig, s.batch.batchId, s.value);

  // The handler kills its own worker right after its first commit(), before completion is recorded.
  const first = startChild(t, rig);
  const end = await first.exited;
  assert.equal(end.signal, 'SIGKILL', `killed by its handler; stderr: ${first.stderr()}`);
  assert.deepEqual((await recorded(rig)).get(s.batch.batchId), { commits: 1, events: 3 });
  assert.equal(await isCompleted(rig, s.batch.batchId), false, 'completion not recorded');
  assert.equal((await streamRow(rig, s.batch.streamId))?.state, 'firing');

  // A new worker of the same group gets the partition (once the dead member's session times out), the
  // batch is delivered again and, not being recorded complete, runs again: commit() is called a second
  // time, and the handler's batch_id-keyed write leaves one effect.
  const port = await freePort();
  const second = startChild(t, rig, {
    WINCHESTER_METRICS_PORT: String(port),
    WINCHESTER_METRICS_HOST: '127.0.0.1',
  });
  await eventually('completion recorded after the restart', () => isCompleted(rig, s.batch.batchId), 60_000);
  await eventually('the batch counted', async () =>
    (await scrape(port)).includes(
      'winchester_pipeline_batches_total{pipeline="die_pipe",kind="fire",outcome="completed"} 1',
    ),
  );
  const metrics = await scrape(port);
  assert.match(metrics, /winchester_handler_duration_seconds_count\{handler="recorder",phase="commit"\} 1/);
  assert.match(metrics, /winchester_partitions_assigned\{stage="pipeline"\} 2/);
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  assert.equal(ready.status, 200);
  const rows = await recorded(rig);
  assert.equal(rows.size, 1);
  assert.deepEqual(rows.get(s.batch.batchId), { commits: 2, events: 3 });
  assert.equal(await streamRow(rig, s.batch.streamId), null, 'completed and purged');

  // Graceful stop on SIGTERM.
  second.child.kill('SIGTERM');
  const stopped = await second.exited;
  assert.deepEqual(stopped, { code: 0, signal: null }, second.stderr());
  const msgs = second.lines.map((l) => l.msg);
  assert.ok(msgs.includes('batch completed'), JSON.stringify(msgs));
  assert.ok(msgs.includes('stopping gracefully'));
  assert.equal(msgs[msgs.length - 1], 'pipeline worker stopped');
  assert.ok(
    second.lines.every((l) => l.raw === undefined),
    'every stdout line is JSON',
  );
});
