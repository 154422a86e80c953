/**
 * The short chaos run in CI (the full one is `npm run test:chaos`, docs/chaos.md): a small notigen
 * workload with duplicates through trigger and pipeline workers on a private Kafka + PostgreSQL (never the
 * shared test services: this test restarts them), with one SIGKILL of each kind of worker, one pipeline
 * worker killed right after a handler commit(), one broker restart and one PostgreSQL restart. The run
 * itself checks everything against `winchester replay`; here its problems must be none and its figures
 * must show that each fault really happened.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runChaos, SHORT } from '../chaos/scenario.js';

test('chaos (short): kills and service restarts lose, double and repeat nothing replay would not', {
  timeout: 8 * 60_000,
}, async () => {
  const lines: string[] = [];
  const report = await runChaos({ ...SHORT, log: (line) => lines.push(line) });
  const figures = JSON.stringify(report.figures, null, 1);
  assert.deepEqual(report.problems, [], `${figures}\n${lines.join('\n')}`);
  const f = report.figures;
  assert.equal(f['trigger workers SIGKILLed'], SHORT.triggerKills, figures);
  assert.equal(f['pipeline workers SIGKILLed'], SHORT.pipelineKills, figures);
  assert.equal(f['pipeline workers SIGKILLed in the commit window'], SHORT.commitWindowKills, figures);
  assert.equal(f['Kafka restarts'], SHORT.kafkaRestarts, figures);
  assert.match(String(f['PostgreSQL restarts']), new RegExp(`^${SHORT.postgresRestarts} `), figures);
  assert.ok(Number(f['batches expected (replay)']) >= 50, figures);
  assert.equal(f['effects (exactly once per batch)'], f['batches expected (replay)'], figures);
  // The commit-window kill shows: commit() ran again for that batch, its effect is there once.
  assert.ok(Number(f['commit() repeated (crash window)']) >= SHORT.commitWindowKills, figures);
  assert.equal(
    f['commit() calls'],
    Number(f['effects (exactly once per batch)']) + Number(f['commit() repeated (crash window)']),
    figures,
  );
});
