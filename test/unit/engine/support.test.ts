import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventTimeClock, ManualClock, WallClock } from '../../../src/engine/clock.js';
import { STREAM_TRANSITIONS, type StreamState } from '../../../src/engine/effects.js';
import { MemoryEventStore } from '../../../src/engine/event-store.js';
import { PartitionEngine } from '../../../src/engine/partition-engine.js';
import { EngineStateError } from '../../../src/engine/state.js';
import { ev, T0, trigger } from './builder.js';

describe('clocks', () => {
  test('event time is the highest timestamp observed minus the lateness; -Infinity before any', () => {
    const c = new EventTimeClock(5);
    assert.equal(c.now(), Number.NEGATIVE_INFINITY);
    c.observe(100);
    c.observe(50);
    assert.equal(c.now(), 95);
    assert.throws(() => new EventTimeClock(-1), RangeError);
  });

  test('the wall clock reads its source and ignores observations', () => {
    let t = 7;
    const c = new WallClock(() => t);
    c.observe(1_000_000);
    assert.equal(c.now(), 7);
    t = 9;
    assert.equal(c.now(), 9);
    assert.ok(Math.abs(new WallClock().now() - Date.now() * 1000) < 60_000_000);
  });

  test('the manual clock moves only when told', () => {
    const c = new ManualClock(10);
    c.observe(99);
    c.tick(5);
    assert.equal(c.now(), 15);
    c.set(3);
    assert.equal(c.now(), 3);
  });
});

describe('memory event store', () => {
  test('reads a stream’s events sorted by timestamp, ties in arrival order; discard forgets', () => {
    const store = new MemoryEventStore();
    const a = ev('x', T0 + 2, {}, 'a');
    const b = ev('x', T0, {}, 'b');
    const c = ev('x', T0 + 2, {}, 'c');
    for (const e of [a, b, c]) store.append('s1', e);
    store.append('s2', b);
    assert.deepEqual(
      store.read('s1').map((e) => e.message_id),
      ['b', 'a', 'c'],
    );
    assert.equal(store.size, 2);
    store.discard('s1');
    assert.deepEqual(store.read('s1'), []);
    assert.equal(store.size, 1);
  });

  test('apply stores exactly the events of eventAdded effects', () => {
    const engine = new PartitionEngine({ triggers: [trigger()], clock: new EventTimeClock() });
    const store = new MemoryEventStore();
    engine.add(ev('x', T0, { instance_id: 'i' }, 'one'));
    engine.add(ev('x', T0 + 1, { instance_id: 'i' }, 'one'));
    engine.add(ev('x', T0 + 2, { instance_id: 'j' }, 'two'));
    store.apply(engine.takeEffects());
    assert.deepEqual(
      store.read('1').map((e) => e.message_id),
      ['one'],
    );
    assert.deepEqual(
      store.read('2').map((e) => e.message_id),
      ['two'],
    );
  });
});

describe('engine construction and states', () => {
  test('trigger names must be unique', () => {
    assert.throws(
      () => new PartitionEngine({ triggers: [trigger(), trigger()], clock: new ManualClock() }),
      EngineStateError,
    );
  });

  test('every state the engine emits is a legal move from active', () => {
    const emitted: StreamState[] = ['firing', 'expiring', 'completed', 'error'];
    for (const s of emitted) assert.ok(STREAM_TRANSITIONS.active.includes(s), s);
    assert.deepEqual(STREAM_TRANSITIONS.completed, []);
  });
});
