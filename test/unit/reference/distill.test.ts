/**
 * Our distiller against stackdistiller (the reference), on a generated workload: every
 * notification must give the same event (same traits, same types) or be dropped by both.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { runCli } from '../../helpers/cli.js';
import { DEFINITIONS, FIXTURES, readJsonl } from './helpers.js';

/** Describes how two flat events differ, trait by trait (value and JSON type). */
function eventDiff(ref: Record<string, unknown>, ours: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const k of new Set([...Object.keys(ref), ...Object.keys(ours)])) {
    const a = ref[k];
    const b = ours[k];
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      out.push(`${k}: reference ${JSON.stringify(a) ?? '(absent)'}, ours ${JSON.stringify(b) ?? '(absent)'}`);
    }
  }
  return out;
}

describe('distill agrees with stackdistiller', () => {
  test('usage workload (20 instances × 3 days): same events, same traits, same types', async () => {
    const expected = readJsonl(`${FIXTURES}usage.distilled.jsonl`);
    const r = await runCli(['distill', '--definitions', DEFINITIONS, `${FIXTURES}usage.input.jsonl`]);
    assert.equal(r.code, 0, `winchester distill failed: ${r.stderr}`);
    const ours = r.stdoutLines().map((l) => JSON.parse(l) as Record<string, unknown>);
    // Same dropped notifications: the ids that come out must be the same, in input order.
    assert.deepEqual(
      ours.map((e) => e.message_id),
      expected.map((e) => e.message_id),
      'the set of distilled notifications differs from the reference',
    );
    const problems: string[] = [];
    expected.forEach((ref, i) => {
      const d = eventDiff(ref, ours[i]!);
      if (d.length > 0) problems.push(`${ref.event_type} ${ref.message_id}: ${d.join('; ')}`);
    });
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} events differ from the reference`);
  });

  test('the fixture is what its README says: every dropped notification has an event type without a definition', () => {
    const input = readFileSync(`${FIXTURES}usage.input.jsonl`, 'utf8').trim().split('\n');
    const kept = new Set(readJsonl(`${FIXTURES}usage.distilled.jsonl`).map((e) => e.message_id));
    const dropped = input
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((n) => !kept.has(n.message_id));
    assert.ok(dropped.length > 0);
    for (const n of dropped) assert.match(String(n.event_type), /^(terminate|rescue)_instance$/);
  });
});
