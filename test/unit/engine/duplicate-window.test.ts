import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { EventTimeClock } from '../../../src/engine/clock.js';
import type { Effect } from '../../../src/engine/effects.js';
import { MemoryEventStore } from '../../../src/engine/event-store.js';
import { PartitionEngine } from '../../../src/engine/partition-engine.js';
import type { Event } from '../../../src/model/event.js';
import type { TriggerDefinition } from '../../../src/triggers/types.js';
import { DAY, ev, HOUR, MINUTE, T0, trigger } from './builder.js';

const RUNS = 150;

function triggers(): TriggerDefinition[] {
  return [
    trigger({ name: 'per_instance', fire: [{ eventType: 'fire.me', number: 2 }], fireDelay: 300 }),
    trigger({
      name: 'per_tenant',
      distinguishedBy: ['tenant'],
      match: ['x', 'fire.*'],
      fire: [{ eventType: 'fire.me' }, { eventType: 'x' }],
      expiration: (first, last) => Math.max(first + 3 * HOUR, last + 30 * MINUTE),
    }),
  ];
}

const make = (windowUs: number) =>
  new PartitionEngine({
    triggers: triggers(),
    clock: new EventTimeClock(),
    duplicateWindow: windowUs,
    idPrefix: 'p-',
  });

/** Closed streams as content: kind, trigger, key and sorted message ids (no ids of streams, no times). */
function closedStreams(effects: readonly Effect[]): string[] {
  const store = new MemoryEventStore();
  const out: string[] = [];
  for (const e of effects) {
    if (e.type === 'eventAdded') store.append(e.streamId, e.event);
    if (e.type === 'fired' || e.type === 'expired') {
      const ids = store
        .read(e.streamId)
        .map((x) => x.message_id)
        .sort();
      out.push(JSON.stringify([e.type, e.trigger, e.key, ids]));
    }
  }
  return out.sort();
}

function run(engine: PartitionEngine, events: readonly Event[]): Effect[] {
  for (const e of events) engine.add(e);
  engine.advance(T0 + 60 * DAY);
  return engine.takeEffects();
}

/** A workload in timestamp order (event time), unique message ids, over ~10 hours. */
const workload = fc
  .array(
    fc.record({
      type: fc.constantFrom('x', 'y', 'fire.me'),
      minute: fc.integer({ min: 0, max: 600 }),
      instance: fc.constantFrom('a', 'b', 'c'),
      tenant: fc.constantFrom('t1', 't2'),
    }),
    { maxLength: 50 },
  )
  .map((rows) =>
    rows
      .sort((a, b) => a.minute - b.minute)
      .map((r, i) =>
        ev(r.type, T0 + r.minute * MINUTE, { instance_id: r.instance, tenant: r.tenant }, `msg-${i}`),
      ),
  );

describe('duplicate window', () => {
  test('a resend after its stream closed is ignored within the window and opens a stream after it', () => {
    const a = ev('fire.me', T0, { instance_id: 'a', tenant: 't1' }, 'm1');
    const b = ev('fire.me', T0 + MINUTE, { instance_id: 'a', tenant: 't1' }, 'm2');
    const later = (m: number) => ev('y', T0 + m * MINUTE, { instance_id: 'z', tenant: 't9' }, `tick-${m}`);
    // per_instance fires 300 s after its second fire.me; the resend of m1 comes 10 minutes later.
    const within = make(HOUR);
    const effects = run(within, [a, b, later(10), a]);
    const withM1 = closedStreams(effects).filter((x) => x.includes('"m1"'));
    assert.equal(
      withM1.filter((x) => x.includes('per_instance')).length,
      1,
      'm1 is in one per_instance stream',
    );
    assert.ok(withM1.some((x) => x.startsWith('["fired","per_instance"') && x.endsWith('["m1","m2"]]')));
    const ignored = effects.filter((e) => e.type === 'duplicateIgnored');
    assert.ok(ignored.length >= 1, 'the resend is reported as a duplicate');
    const opened = effects.filter((e) => e.type === 'streamOpened' && e.trigger === 'per_instance');
    assert.equal(opened.length, 2, 'per_instance: the stream of a and the one of z, no second stream of a');

    const after = make(5 * MINUTE);
    const effects2 = run(after, [a, b, later(20), later(40), a]);
    const opened2 = effects2.filter((e) => e.type === 'streamOpened' && e.trigger === 'per_instance');
    assert.equal(opened2.length, 3, 'outside the window the resend opens a new stream (as without memory)');
    assert.ok(after.rememberedKeys > 0, 'streams closed by the final advance are remembered');
    after.advance(T0 + 61 * DAY);
    assert.equal(after.rememberedKeys, 0, 'everything is forgotten once the window has passed');
  });

  test('duplicates anywhere within the window never change what closes', () => {
    fc.assert(
      fc.property(workload, fc.array(fc.tuple(fc.nat(), fc.nat(20)), { maxLength: 30 }), (events, dups) => {
        // Each duplicate is re-sent up to 20 positions after its original: well within a 30-day window.
        const withDups: Event[] = [...events];
        for (const [which, gap] of dups) {
          if (events.length === 0) break;
          const original = events[which % events.length] as Event;
          const at = withDups.indexOf(original);
          withDups.splice(Math.min(withDups.length, at + 1 + gap), 0, original);
        }
        assert.deepEqual(
          closedStreams(run(make(30 * DAY), withDups)),
          closedStreams(run(make(30 * DAY), events)),
        );
      }),
      { numRuns: RUNS },
    );
  });

  test('the remembered ids survive a snapshot: restoring at any point gives the uninterrupted result', () => {
    fc.assert(
      fc.property(
        workload.chain((events) =>
          fc.tuple(
            fc.constant(events),
            fc.integer({ min: 0, max: events.length }),
            fc.array(fc.nat(), { maxLength: 10 }),
          ),
        ),
        ([events, cut, dupIndexes]) => {
          // Duplicates of earlier events are appended after the cut: only the restored memory can drop them.
          const dups = events.length === 0 ? [] : dupIndexes.map((i) => events[i % events.length] as Event);
          const input = [
            ...events.slice(0, cut),
            ...dups.filter((d) => events.indexOf(d) < cut),
            ...events.slice(cut),
          ];
          const whole = make(30 * DAY);
          const expected = run(whole, input);

          const first = make(30 * DAY);
          const head = input.slice(0, cut + dups.filter((d) => events.indexOf(d) < cut).length);
          for (const e of head) first.add(e);
          const before = first.takeEffects();
          const snapshot = JSON.parse(JSON.stringify(first.exportState()));
          const second = make(30 * DAY);
          second.importState(snapshot);
          const after = run(second, input.slice(head.length));
          assert.deepEqual([...before, ...after], expected);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('takeRecentChanges reports each closed key once per change, with its message ids', () => {
    const engine = make(HOUR);
    engine.add(ev('fire.me', T0, { instance_id: 'a', tenant: 't1' }, 'm1'));
    engine.add(ev('fire.me', T0 + 1, { instance_id: 'a', tenant: 't1' }, 'm2'));
    assert.deepEqual(engine.takeRecentChanges(), [], 'nothing closed yet');
    engine.advance(T0 + 10 * MINUTE);
    const rows = engine.takeRecentChanges();
    assert.deepEqual(
      rows.map((r) => [r.trigger, [...r.messageIds].sort(), r.until]),
      [['per_instance', ['m1', 'm2'], T0 + 10 * MINUTE + HOUR]],
    );
    assert.deepEqual(engine.takeRecentChanges(), [], 'taken');
    assert.throws(() => make(-1), /non-negative/);
  });
});
