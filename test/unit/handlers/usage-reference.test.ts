/**
 * Ground truth: the reference's UsageHandler (stacktach-winchester, run under Python 3) over the
 * streams of a notigen workload replayed through the StackTach trigger, plus perturbed copies that
 * reach every error code, the warnings and the cases where the reference raises. Recorded by
 * scripts/usage-reference-fixture.ts in test/fixtures/usage/reference-verdicts.jsonl; every case
 * must give exactly what the reference gave: the same new events (type, message id, timestamp,
 * every trait with its type), the same notification dicts, or a failure where it raised.
 *
 * The reference draws `.warnings` and U0 message ids at random (ours are derived); the fixture
 * records null for those and they are compared everywhere else.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { USAGE_NOTIFICATIONS_KEY, UsageAuditError, UsageHandler } from '../../../src/handlers/usage.js';
import { silentLogger } from '../../../src/log.js';
import type { Event } from '../../../src/model/event.js';
import { eventFromLossless, type LosslessJson, parseJsonLossless } from '../../../src/model/event-json.js';
import type { HandlerEnv } from '../../../src/pipeline/handler.js';
import { formatInstant } from '../../../src/timex/instant.js';

interface RecordedEvent {
  event_type: string;
  message_id: string | null;
  timestamp: string;
  traits: Record<string, [string, string | number]>;
  notification: Record<string, string | number | null>;
}

interface Case {
  name: string;
  stream_id: string;
  events: Event[];
  reference: { new_events: RecordedEvent[] } | { error: string };
}

const fixture = new URL('../../fixtures/usage/reference-verdicts.jsonl', import.meta.url);

function loadCases(): Case[] {
  const cases: Case[] = [];
  for (const line of readFileSync(fixture, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const plain = JSON.parse(line) as Omit<Case, 'events'>;
    // Events are read losslessly so an int stays an int and a float a float.
    const lossless = parseJsonLossless(line) as { events: LosslessJson[] };
    cases.push({ ...plain, events: lossless.events.map(eventFromLossless) });
  }
  return cases;
}

function envFor(streamId: string): HandlerEnv {
  return {
    batch_id: `batch-${streamId}`,
    stream_id: streamId,
    stream_name: 'test_trigger',
    trigger: 'test_trigger',
    kind: 'fire',
    pipeline: 'test_fire_pipeline',
    distinguishing: {},
  };
}

/** Our new event in the fixture's shape; ids the reference draws at random are left out. */
function recorded(e: Event, notification: Record<string, unknown>, keepId: boolean): RecordedEvent {
  const traits: Record<string, [string, string | number]> = {};
  for (const [name, t] of Object.entries(e.traits)) {
    traits[name] = [t.type, t.type === 'datetime' ? formatInstant(t.value) : t.value];
  }
  return {
    event_type: e.event_type,
    message_id: keepId ? e.message_id : null,
    timestamp: formatInstant(e.timestamp),
    traits,
    notification: {
      ...notification,
      ...(keepId ? {} : { message_id: null }),
    } as RecordedEvent['notification'],
  };
}

const cases = loadCases();

describe('usage handler agrees with the reference UsageHandler', () => {
  test('the fixture covers every code, verified, warnings and the raising cases', () => {
    const seen = new Set<string>();
    for (const c of cases) {
      if ('error' in c.reference) seen.add('raises');
      else
        for (const e of c.reference.new_events) {
          const code = e.traits.error_code?.[1];
          seen.add(code === undefined ? e.event_type : String(code));
        }
    }
    for (const want of [
      'U0',
      'U1',
      'U2',
      'U3',
      'U4',
      'U5',
      'U6',
      'U7',
      'U8',
      'compute.instance.exists.verified',
      'compute.instance.exists.warnings',
      'raises',
    ]) {
      assert.ok(seen.has(want), `no case of ${want} in the fixture`);
    }
  });

  for (const c of cases) {
    test(c.name, () => {
      const handler = new UsageHandler({}, { log: silentLogger });
      const env = envFor(c.stream_id);
      if ('error' in c.reference) {
        assert.throws(() => handler.handleEvents(c.events.slice(), env), UsageAuditError, c.reference.error);
        return;
      }
      const expected = c.reference.new_events;
      const out = handler.handleEvents(c.events.slice(), env);
      // The input comes back first, untouched, then the new events.
      assert.equal(out.length, c.events.length + expected.length);
      for (let i = 0; i < c.events.length; i++) assert.equal(out[i], c.events[i]);
      const notifications = env[USAGE_NOTIFICATIONS_KEY] as Record<string, unknown>[];
      assert.equal(notifications.length, expected.length);
      const ours = out
        .slice(c.events.length)
        .map((e, i) => recorded(e, notifications[i]!, expected[i]!.message_id !== null));
      assert.deepEqual(ours, expected);
    });
  }
});
