/**
 * Our trigger engine against the reference Winchester (TriggerManager + PipelineManager on
 * SQLite, "now" driven by event time): the same streams must fire or expire, with the same
 * distinguishing values and the same events. Checked twice: through the engine API, and through
 * `winchester replay` (the SPEC §7 contract), each on the same recorded reference output.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { commands } from '../../../src/cli/commands.js';
import { loadConfig } from '../../../src/config/load.js';
import { EventTimeClock, PartitionEngine } from '../../../src/engine/index.js';
import type { Event } from '../../../src/model/event.js';
import { formatInstant } from '../../../src/timex/instant.js';
import type { DistinguishingValue } from '../../../src/triggers/types.js';
import { runCli } from '../../helpers/cli.js';
import { type ClosedStream, CONFIG, diffStreams, FIXTURES, referenceStreams } from './helpers.js';

/** A distinguishing value as the fixtures write it (ranges as {begin, end}, datetimes as ISO). */
function distJson(v: DistinguishingValue): unknown {
  const x = v as unknown;
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    if ('begin' in o && 'end' in o && typeof o.begin === 'number' && typeof o.end === 'number') {
      return { begin: formatInstant(o.begin), end: formatInstant(o.end) };
    }
    if ('type' in o && 'value' in o) {
      return o.type === 'datetime' ? formatInstant(o.value as number) : o.value;
    }
  }
  return x;
}

describe('replay agrees with the reference Winchester', () => {
  test('engine API: usage workload fires and expires the reference streams with the same events', async () => {
    const config = await loadConfig(CONFIG);
    assert.ok(config.distiller, 'the fixture configuration has a distiller');
    const engine = new PartitionEngine({ triggers: config.triggers, clock: new EventTimeClock() });
    const events = new Map<string, Event[]>();
    const dist = new Map<string, Record<string, unknown>>();
    const ours: ClosedStream[] = [];
    const collect = () => {
      for (const e of engine.takeEffects()) {
        if (e.type === 'streamOpened') {
          dist.set(
            e.streamId,
            Object.fromEntries(Object.entries(e.distinguishing).map(([k, v]) => [k, distJson(v)])),
          );
        } else if (e.type === 'eventAdded') {
          events.set(e.streamId, [...(events.get(e.streamId) ?? []), e.event]);
        } else if (e.type === 'fired' || e.type === 'expired') {
          const evs = [...(events.get(e.streamId) ?? [])].sort((a, b) => a.timestamp - b.timestamp);
          ours.push({
            trigger: e.trigger,
            kind: e.type === 'fired' ? 'fire' : 'expire',
            distinguished_by: dist.get(e.streamId) ?? {},
            message_ids: evs.map((x) => x.message_id),
          });
        }
      }
    };
    let last: number | undefined;
    for (const line of readFileSync(`${FIXTURES}usage.input.jsonl`, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      const r = config.distiller.distill(JSON.parse(line));
      if (!r.ok) continue;
      engine.add(r.event);
      last = r.event.timestamp;
      collect();
    }
    assert.ok(last !== undefined);
    engine.advance(last);
    collect();
    const reference = referenceStreams('usage');
    const problems = diffStreams(reference, ours);
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} differences from the reference`);
    assert.equal(ours.length, reference.length);
  });

  test('winchester replay: usage workload prints the reference streams with the same events', async () => {
    // The replay command is another engineer's work; until it is registered this must fail, not skip.
    assert.ok(
      commands.some((c) => c.name === 'replay'),
      'winchester replay is not registered in src/cli/commands.ts yet: cannot compare replay with the reference',
    );
    const r = await runCli(['replay', '-c', CONFIG, `${FIXTURES}usage.input.jsonl`]);
    assert.equal(r.code, 0, `winchester replay failed: ${r.stderr}`);
    const ours: ClosedStream[] = r.stdoutLines().map((l) => {
      const o = JSON.parse(l) as {
        trigger: string;
        kind: 'fire' | 'expire';
        distinguished_by: Record<string, unknown>;
        events: Array<{ message_id: string }>;
      };
      return {
        trigger: o.trigger,
        kind: o.kind,
        distinguished_by: o.distinguished_by,
        message_ids: o.events.map((e) => e.message_id),
      };
    });
    const reference = referenceStreams('usage');
    const problems = diffStreams(reference, ours);
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} differences from the reference`);
    assert.equal(ours.length, reference.length);
  });
});
