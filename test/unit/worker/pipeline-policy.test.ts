import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { STREAM_TRANSITIONS, type StreamState } from '../../../src/engine/effects.js';
import {
  backoffDelay,
  decideForState,
  failedState,
  runningState,
} from '../../../src/worker/pipeline-policy.js';

const STATES = Object.keys(STREAM_TRANSITIONS) as StreamState[];

describe('decideForState', () => {
  test('fire: firing runs, retry_fire resumes to firing, everything else is skipped', () => {
    assert.deepEqual(decideForState('firing', 'fire'), { action: 'run', state: 'firing' });
    assert.deepEqual(decideForState('retry_fire', 'fire'), {
      action: 'resume',
      from: 'retry_fire',
      to: 'firing',
    });
    for (const s of STATES.filter((s) => s !== 'firing' && s !== 'retry_fire')) {
      assert.equal(decideForState(s, 'fire').action, 'skip', s);
    }
  });

  test('expire: expiring runs, retry_expire resumes to expiring, everything else is skipped', () => {
    assert.deepEqual(decideForState('expiring', 'expire'), { action: 'run', state: 'expiring' });
    assert.deepEqual(decideForState('retry_expire', 'expire'), {
      action: 'resume',
      from: 'retry_expire',
      to: 'expiring',
    });
    for (const s of STATES.filter((s) => s !== 'expiring' && s !== 'retry_expire')) {
      assert.equal(decideForState(s, 'expire').action, 'skip', s);
    }
  });

  test('a missing stream, an error state and a completed stream say why they are skipped', () => {
    const why = (s: StreamState | null, k: 'fire' | 'expire') => {
      const d = decideForState(s, k);
      assert.equal(d.action, 'skip');
      return (d as { why: string }).why;
    };
    assert.match(why(null, 'fire'), /does not exist/);
    assert.match(why('error', 'fire'), /streams retry/);
    assert.match(why('expire_error', 'expire'), /streams retry/);
    assert.match(why('completed', 'expire'), /already completed/);
    assert.match(why('expiring', 'fire'), /not waiting for a fire pipeline/);
  });

  test('every move the worker makes is one the stream state machine allows', () => {
    for (const kind of ['fire', 'expire'] as const) {
      for (const s of STATES) {
        const d = decideForState(s, kind);
        if (d.action === 'resume') assert.ok(STREAM_TRANSITIONS[d.from].includes(d.to), `${d.from}→${d.to}`);
      }
      const running = runningState(kind);
      assert.ok(STREAM_TRANSITIONS[running].includes(failedState(kind)));
      assert.ok(STREAM_TRANSITIONS[running].includes('completed'));
    }
  });
});

describe('backoffDelay', () => {
  const policy = { baseMs: 1000, maxMs: 60_000 };

  test('doubles per retry from the base, with the jitter in the upper half', () => {
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => backoffDelay(n, policy, () => 0)),
      [500, 1000, 2000, 4000],
    );
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => backoffDelay(n, policy, () => 0.999999)),
      [1000, 2000, 4000, 8000],
    );
    assert.equal(
      backoffDelay(3, policy, () => 0.5),
      3000,
    );
  });

  test('is capped at maxMs, even for absurd retry numbers', () => {
    assert.equal(
      backoffDelay(7, policy, () => 0.999999),
      60_000,
    );
    assert.equal(
      backoffDelay(10_000, policy, () => 0),
      30_000,
    );
  });

  test('refuses a retry number below 1', () => {
    assert.throws(() => backoffDelay(0, policy), RangeError);
    assert.throws(() => backoffDelay(1.5, policy), RangeError);
  });

  test('property: within [nominal/2, nominal] and never decreasing in the retry number for a fixed draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 600_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (retry, baseMs, extra, r) => {
          const p = { baseMs, maxMs: baseMs + extra };
          const nominal = Math.min(p.maxMs, baseMs * 2 ** (retry - 1));
          const d = backoffDelay(retry, p, () => r);
          assert.ok(d >= Math.floor(nominal / 2) && d <= Math.ceil(nominal), `${d} vs ${nominal}`);
          assert.ok(backoffDelay(retry + 1, p, () => r) >= d);
        },
      ),
    );
  });
});

test('the topics notabene steps publish to are created at start: topic, else queue_name, once each', async () => {
  const { loadConfig } = await import('../../../src/config/index.js');
  const { publishedTopics } = await import('../../../src/worker/pipeline-service.js');
  const config = await loadConfig('etc/winchester.yaml', { env: {} });
  // StackTach's pipelines.yaml: two notabene steps, both with queue_name monitor.info and no topic.
  assert.deepEqual(publishedTopics(config), ['monitor.info']);
});
