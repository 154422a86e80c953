import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CheckpointCollector } from '../../../src/db/checkpoint-collector.js';
import { EventTimeClock } from '../../../src/engine/clock.js';
import { PartitionEngine } from '../../../src/engine/partition-engine.js';
import { ev, HOUR, MINUTE, T0, trigger } from '../engine/builder.js';

const at = { topic: 'events', partition: 0, epoch: 1, offset: 10, nextSeq: 1 };
const newEngine = () =>
  new PartitionEngine({ triggers: [trigger()], clock: new EventTimeClock(0), idPrefix: 'p0-' });

test('new streams are inserts with every field; after commit they are updates from their version', () => {
  const engine = newEngine();
  const collector = new CheckpointCollector();
  engine.add(ev('x', T0, { instance_id: 'a' }, 'm1'));
  collector.add(engine.takeEffects());
  const first = collector.build(at, engine);
  assert.deepEqual(first.streams, [
    {
      id: 'p0-1',
      expectedVersion: null,
      version: 2,
      state: 'active',
      seq: 1,
      trigger: 'test_trigger',
      key: '[["instance_id","text","a"]]',
      distinguishing: { instance_id: { type: 'text', value: 'a' } },
      first: T0,
      last: T0,
      expireAt: T0 + HOUR,
      fireAt: null,
      counts: [0],
    },
  ]);
  assert.deepEqual(
    first.events.map((e) => [e.streamId, e.event.message_id]),
    [['p0-1', 'm1']],
  );
  // Building again (a retry) gives the same checkpoint; nothing moves until committed().
  assert.deepEqual(collector.build(at, engine), first);
  collector.committed();
  assert.equal(collector.changedStreams, 0);
  assert.deepEqual(collector.build(at, engine).streams, []);

  engine.add(ev('fire.me', T0 + MINUTE, { instance_id: 'a' }, 'm2'));
  engine.add(ev('x', T0 + 2 * MINUTE, { instance_id: 'b' }, 'm3')); // fires a (fireAt T0+1m < now)
  collector.add(engine.takeEffects());
  const second = collector.build({ ...at, offset: 12 }, engine);
  assert.deepEqual(
    second.streams.map((s) => [s.id, s.expectedVersion, s.version, s.state, s.closedAt ?? null]),
    [
      ['p0-2', null, 2, 'active', null],
      ['p0-1', 2, 5, 'firing', T0 + 2 * MINUTE],
    ],
  );
  collector.committed();
  engine.add(ev('x', T0 + 5 * HOUR, { instance_id: 'c' }, 'm4')); // expires b
  collector.add(engine.takeEffects());
  const third = collector.build(at, engine);
  assert.deepEqual(
    third.streams.map((s) => [s.id, s.expectedVersion, s.state]),
    [
      ['p0-3', null, 'active'],
      ['p0-2', 2, 'expiring'],
    ],
  );
});

test('a stream opened and closed within one interval is inserted closed, with empty counts', () => {
  const engine = newEngine();
  const collector = new CheckpointCollector();
  engine.add(ev('fire.me', T0, { instance_id: 'a' }, 'm1'));
  engine.add(ev('x', T0 + MINUTE, { instance_id: 'b' }, 'm2'));
  collector.add(engine.takeEffects());
  const cp = collector.build(at, engine);
  const a = cp.streams.find((s) => s.id === 'p0-1');
  assert.deepEqual(a, {
    id: 'p0-1',
    expectedVersion: null,
    version: 4,
    state: 'firing',
    first: T0,
    last: T0,
    expireAt: T0 + HOUR,
    fireAt: T0,
    closedAt: T0 + MINUTE,
    seq: 1,
    trigger: 'test_trigger',
    key: '[["instance_id","text","a"]]',
    distinguishing: { instance_id: { type: 'text', value: 'a' } },
    counts: [],
  });
});

test('inconsistent input is a programming error, reported', () => {
  const engine = newEngine();
  engine.add(ev('x', T0, { instance_id: 'a' }, 'm1'));
  const effects = engine.takeEffects();
  const collector = new CheckpointCollector();
  collector.add(effects);
  // An engine that no longer has the stream (e.g. a different engine instance).
  assert.throws(
    () => collector.build(at, newEngine()),
    /p0-1 changed but the engine no longer has them live/,
  );
  // A close of a stream not opened in this interval: the collector keeps no list of stored streams, so
  // it is an update from the version before the effect, which the store's version check fences if the
  // stream was never stored.
  const orphan = new CheckpointCollector();
  orphan.add([
    {
      type: 'expired',
      streamId: 'p0-9',
      trigger: 'test_trigger',
      version: 3,
      key: '[]',
      pipeline: null,
      state: 'completed',
      first: T0,
      last: T0,
      at: T0 + 2 * HOUR,
      due: T0 + HOUR,
    },
  ]);
  const cp = orphan.build(at, engine);
  assert.deepEqual(
    cp.streams.map((s) => [s.id, s.expectedVersion, s.version, s.state]),
    [['p0-9', 2, 3, 'completed']],
  );
});

test('a sealed checkpoint is kept apart from the effects after it; the next is built from its versions', () => {
  const engine = newEngine();
  const collector = new CheckpointCollector();
  engine.add(ev('x', T0, { instance_id: 'a' }, 'm1'));
  collector.add(engine.takeEffects());
  const inFlight = collector.build(at, engine);
  collector.seal();
  assert.equal(collector.inFlight, true);
  assert.throws(() => collector.seal(), /already in flight/);
  // While it is written: a is extended then fired, b opens.
  engine.add(ev('x', T0 + MINUTE, { instance_id: 'a' }, 'm2'));
  engine.add(ev('fire.me', T0 + 2 * MINUTE, { instance_id: 'a' }, 'm3'));
  engine.add(ev('x', T0 + 3 * MINUTE, { instance_id: 'b' }, 'm4'));
  collector.add(engine.takeEffects());
  assert.deepEqual(
    inFlight.events.map((e) => e.event.message_id),
    ['m1'],
    'the in-flight checkpoint is not changed by later effects',
  );
  assert.equal(collector.changedStreams, 2, 'a and b changed after the seal');
  assert.throws(() => collector.build(at, engine), /in flight/, 'not before it committed');
  collector.committed();
  assert.equal(collector.inFlight, false);
  assert.equal(collector.changedStreams, 2, 'what came after the seal is still pending');
  const next = collector.build({ ...at, offset: 14 }, engine);
  assert.deepEqual(
    next.streams.map((s) => [s.id, s.expectedVersion, s.state]),
    [
      ['p0-2', null, 'active'],
      ['p0-1', 2, 'firing'],
    ],
    'a is an update from the version the sealed checkpoint wrote; b is new',
  );
  assert.deepEqual(
    next.events.map((e) => e.event.message_id),
    ['m2', 'm3', 'm4'],
  );
  collector.committed();
  assert.equal(collector.changedStreams, 0);
});
