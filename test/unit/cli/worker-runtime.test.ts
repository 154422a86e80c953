import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closeWorkerPool } from '../../../src/cli/worker-runtime.js';
import type { DatabasePool } from '../../../src/db/pool.js';

type Line = [string, string, Record<string, unknown> | undefined];

function recorder() {
  const lines: Line[] = [];
  const log = ((level: string, msg: string, fields?: Record<string, unknown>) => {
    lines.push([level, msg, fields]);
  }) as Parameters<typeof closeWorkerPool>[1];
  return { lines, log };
}

test('closeWorkerPool waits for the pool to end', async () => {
  const { lines, log } = recorder();
  let ended = false;
  const pool = {
    end: async () => {
      ended = true;
    },
  } as unknown as DatabasePool;
  await closeWorkerPool(pool, log, 1000);
  assert.ok(ended);
  assert.deepEqual(lines, []);
});

test('closeWorkerPool gives up on a pool that never ends, with a warning, and never rejects', async () => {
  const { lines, log } = recorder();
  const stuck = { end: () => new Promise<void>(() => undefined) } as unknown as DatabasePool;
  const started = Date.now();
  // The bound's timer is unref'd (it must not keep a worker alive): something else keeps this test alive.
  const keepAlive = setInterval(() => undefined, 1000);
  await closeWorkerPool(stuck, log, 50);
  clearInterval(keepAlive);
  assert.ok(Date.now() - started >= 45, 'waited for the bound');
  assert.deepEqual(lines, [
    ['warn', 'database pool did not close in time; leaving its connections to the exit', { ms: 50 }],
  ]);
  const failing = { end: async () => Promise.reject(new Error('boom')) } as unknown as DatabasePool;
  await closeWorkerPool(failing, log, 1000);
  assert.equal(lines.length, 1, 'a pool that fails to end is not waited for again or logged');
});
