import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { EventTimeClock, ManualClock } from '../../../src/engine/clock.js';
import type { Effect } from '../../../src/engine/effects.js';
import { MemoryEventStore } from '../../../src/engine/event-store.js';
import { PartitionEngine } from '../../../src/engine/partition-engine.js';
import type { PartitionSnapshot, StreamRow } from '../../../src/engine/state.js';
import { type TimerEntry, TimerQueue } from '../../../src/engine/timer-queue.js';
import type { Event } from '../../../src/model/event.js';
import type { TriggerDefinition } from '../../../src/triggers/types.js';
import { DAY, ev, HOUR, MINUTE, T0, trigger } from './builder.js';

const RUNS = 150;

/** Two triggers over the same events: different keys, criteria, delays and expirations. */
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

/** A workload: unique message ids, a few instances and tenants, timestamps over ~10 hours. */
const workload = fc
  .array(
    fc.record({
      type: fc.constantFrom('x', 'y', 'fire.me'),
      minute: fc.integer({ min: 0, max: 600 }),
      instance: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
      tenant: fc.constantFrom('t1', 't2'),
    }),
    { maxLength: 60 },
  )
  .map((rows) =>
    rows.map((r, i) =>
      ev(r.type, T0 + r.minute * MINUTE, { instance_id: r.instance, tenant: r.tenant }, `msg-${i}`),
    ),
  );

/** A closed stream as content: what fired or expired, with which events (ids sorted). */
function closedStreams(effects: readonly Effect[], withTime = true): string[] {
  const store = new MemoryEventStore();
  const out: string[] = [];
  for (const e of effects) {
    if (e.type === 'eventAdded') store.append(e.streamId, e.event);
    if (e.type === 'fired' || e.type === 'expired') {
      const ids = store
        .read(e.streamId)
        .map((x) => x.message_id)
        .sort();
      out.push(JSON.stringify([e.type, e.trigger, e.key, withTime ? e.at : null, ids]));
    }
  }
  return out;
}

function runAll(events: readonly Event[], until = T0 + 30 * DAY): Effect[] {
  const engine = new PartitionEngine({ triggers: triggers(), clock: new EventTimeClock() });
  for (const e of events) engine.add(e);
  engine.advance(until);
  return engine.takeEffects();
}

/** Checks the exactly-once invariants over a run's effects. */
function assertClosesOnce(effects: readonly Effect[]): void {
  const opened = new Set<string>();
  const closed = new Set<string>();
  const idsPerStream = new Map<string, Set<string>>();
  for (const e of effects) {
    if (e.type === 'streamOpened') {
      assert.ok(!opened.has(e.streamId), `stream ${e.streamId} opened twice`);
      opened.add(e.streamId);
    } else if (e.type === 'eventAdded') {
      assert.ok(!closed.has(e.streamId), `event added to closed stream ${e.streamId}`);
      const ids = idsPerStream.get(e.streamId) ?? new Set();
      assert.ok(!ids.has(e.event.message_id), `message ${e.event.message_id} counted twice`);
      ids.add(e.event.message_id);
      idsPerStream.set(e.streamId, ids);
    } else if (e.type === 'fired' || e.type === 'expired') {
      assert.ok(!closed.has(e.streamId), `stream ${e.streamId} closed twice`);
      closed.add(e.streamId);
    }
  }
  assert.deepEqual(closed, opened, 'every opened stream closes once the clock is far enough');
}

describe('engine properties', () => {
  test('shuffled and duplicated input never closes a stream twice nor counts a message twice', () => {
    fc.assert(
      fc.property(
        workload.chain((events) =>
          fc.tuple(
            fc.constant(events),
            fc.shuffledSubarray(events, { minLength: 0, maxLength: events.length }),
            fc.infiniteStream(fc.nat()),
          ),
        ),
        ([events, dups, positions]) => {
          const shuffled = [...events];
          const it = positions[Symbol.iterator]();
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = (it.next().value as number) % (i + 1);
            [shuffled[i], shuffled[j]] = [shuffled[j] as Event, shuffled[i] as Event];
          }
          for (const d of dups) shuffled.splice((it.next().value as number) % (shuffled.length + 1), 0, d);
          assertClosesOnce(runAll(shuffled));
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('duplicates never change counts nor outcomes while the stream is open', () => {
    fc.assert(
      fc.property(workload, fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 40 }), (events, dupSpecs) => {
        // Each duplicate goes somewhere after its original. A frozen clock keeps every stream open
        // during ingestion, so every duplicate meets the stream its original joined.
        const withDups: Event[] = [...events];
        for (const [which, where] of dupSpecs) {
          if (events.length === 0) break;
          const original = events[which % events.length] as Event;
          const at = withDups.indexOf(original);
          withDups.splice(at + 1 + (where % (withDups.length - at)), 0, { ...original });
        }
        const run = (input: Event[]) => {
          const clock = new ManualClock(T0);
          const engine = new PartitionEngine({ triggers: triggers(), clock });
          for (const e of input) engine.add(e);
          const state = engine.exportState();
          clock.set(T0 + 30 * DAY);
          engine.advance();
          return { state, closed: closedStreams(engine.takeEffects()) };
        };
        const plain = run(events);
        const duplicated = run(withDups);
        assert.deepEqual(
          duplicated.state.streams.map((s) => ({ ...s, version: 0 })),
          plain.state.streams.map((s) => ({ ...s, version: 0 })),
        );
        assert.deepEqual(duplicated.closed, plain.closed);
      }),
      { numRuns: RUNS },
    );
  });

  test('the closed streams do not depend on the partition count (routing by trigger + key)', () => {
    fc.assert(
      fc.property(workload, fc.integer({ min: 2, max: 5 }), (events, partitions) => {
        const run = (n: number) => {
          const defs = triggers();
          const engines = Array.from(
            { length: n },
            (_, i) =>
              new PartitionEngine({ triggers: defs, clock: new EventTimeClock(), idPrefix: `p${i}-` }),
          );
          const hash = (s: string) => {
            let h = 7;
            for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
            return h;
          };
          const effects: Effect[] = [];
          let high = Number.NEGATIVE_INFINITY;
          for (const e of events) {
            // The router's time ticks: every partition sees time pass, not only the one with the event.
            high = Math.max(high, e.timestamp);
            for (const engine of engines) engine.advance(high);
            for (const def of defs) {
              const m = def.match(e, high);
              if (!m.matched) continue;
              const engine = engines[hash(def.name + m.key) % n] as PartitionEngine;
              engine.addEvent(def.name, m.key, m.distinguishing, e);
            }
            for (const engine of engines) effects.push(...engine.takeEffects());
          }
          for (const engine of engines) {
            engine.advance(T0 + 30 * DAY);
            effects.push(...engine.takeEffects());
          }
          // When a stream that was already past its expiration on opening is noticed depends on which
          // partition's tick comes first, so only the content is compared.
          return closedStreams(effects, false).sort();
        };
        assert.deepEqual(run(partitions), run(1));
      }),
      { numRuns: RUNS },
    );
  });

  test('snapshot and restore at any point gives the same effects as uninterrupted processing', () => {
    fc.assert(
      fc.property(
        workload.chain((events) => fc.tuple(fc.constant(events), fc.integer({ min: 0, max: events.length }))),
        ([events, cut]) => {
          const make = () =>
            new PartitionEngine({ triggers: triggers(), clock: new EventTimeClock(), idPrefix: 'p-' });
          const whole = make();
          for (const e of events) whole.add(e);
          whole.advance(T0 + 30 * DAY);
          const expected = whole.takeEffects();

          const first = make();
          for (const e of events.slice(0, cut)) first.add(e);
          const before = first.takeEffects();
          const snapshot = JSON.parse(JSON.stringify(first.exportState()));
          // A new worker: a new clock that has seen nothing, and the partition state from the store.
          const second = make();
          second.importState(snapshot);
          for (const e of events.slice(cut)) second.add(e);
          second.advance(T0 + 30 * DAY);
          assert.deepEqual([...before, ...second.takeEffects()], expected);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('a restore in chunks, rows in any order, is the same as one importState', () => {
    fc.assert(
      fc.property(
        workload.chain((events) =>
          fc.tuple(
            fc.constant(events),
            fc.integer({ min: 0, max: events.length }),
            fc.integer({ min: 1, max: 4 }),
            fc.integer(),
          ),
        ),
        ([events, cut, chunk, seed]) => {
          const make = () =>
            new PartitionEngine({ triggers: triggers(), clock: new EventTimeClock(), idPrefix: 'p-' });
          const first = make();
          for (const e of events.slice(0, cut)) first.add(e);
          first.takeEffects();
          const snapshot = JSON.parse(JSON.stringify(first.exportState())) as PartitionSnapshot;
          const whole = make();
          whole.importState(snapshot);
          // The store reads by seq, but the engine must not depend on it: shuffle, then cut in chunks.
          const rows = [...snapshot.streams];
          let r = seed >>> 0;
          for (let i = rows.length - 1; i > 0; i--) {
            r = (Math.imul(r, 1103515245) + 12345) >>> 0;
            const j = r % (i + 1);
            [rows[i], rows[j]] = [rows[j] as StreamRow, rows[i] as StreamRow];
          }
          const chunked = make();
          for (let i = 0; i < rows.length; i += chunk) chunked.importStreams(rows.slice(i, i + chunk));
          chunked.finishImport(snapshot);
          assert.deepEqual(chunked.exportState(), whole.exportState());
          for (const e of events.slice(cut)) {
            whole.add(e);
            chunked.add(e);
          }
          whole.advance(T0 + 30 * DAY);
          chunked.advance(T0 + 30 * DAY);
          assert.deepEqual(chunked.takeEffects(), whole.takeEffects());
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('timer queue', () => {
  interface Entry extends TimerEntry {
    /** Mutable here: the test moves entries (the queue itself only reads `due`). */
    due: number;
    id: number;
  }

  test('pops in (due, seq) order under arbitrary pushes, updates and removals', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('push' as const), due: fc.integer({ min: 0, max: 50 }) }),
            fc.record({
              op: fc.constant('update' as const),
              pick: fc.nat(),
              due: fc.integer({ min: 0, max: 50 }),
            }),
            fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }),
            fc.record({ op: fc.constant('pop' as const) }),
          ),
          { maxLength: 200 },
        ),
        (ops) => {
          const q = new TimerQueue<Entry>();
          let live: Entry[] = [];
          let seq = 0;
          const sortLive = () => live.sort((a, b) => a.due - b.due || a.seq - b.seq);
          for (const o of ops) {
            if (o.op === 'push') {
              const e: Entry = { due: o.due, seq: ++seq, heapIndex: -1, id: seq };
              q.push(e);
              live.push(e);
            } else if (o.op === 'update' && live.length > 0) {
              const e = live[o.pick % live.length] as Entry;
              e.due = o.due;
              q.update(e);
            } else if (o.op === 'remove' && live.length > 0) {
              const e = live[o.pick % live.length] as Entry;
              q.remove(e);
              live = live.filter((x) => x !== e);
            } else if (o.op === 'pop') {
              sortLive();
              const want = live.shift();
              assert.equal(q.pop(), want);
            }
            assert.equal(q.size, live.length);
            sortLive();
            assert.equal(q.peek(), live[0]);
            assert.equal(q.peekDue(), live[0]?.due ?? Number.POSITIVE_INFINITY);
          }
          const drained: Entry[] = [];
          for (let e = q.pop(); e !== undefined; e = q.pop()) drained.push(e);
          assert.deepEqual(
            drained.map((e) => e.id),
            live.map((e) => e.id),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
