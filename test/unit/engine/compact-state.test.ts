/**
 * The engine keeps as little as it can per live stream (issue #7): a stream id string only once a
 * second event needs it (else derived from the prefix and sequence number), timestamps in shared columns whose slots are reused, message ids as
 * one string, a small array or a Set. These tests pin down that none of it is observable.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventTimeClock } from '../../../src/engine/clock.js';
import type { Effect, StreamClosed } from '../../../src/engine/effects.js';
import { PartitionEngine } from '../../../src/engine/partition-engine.js';
import type { PartitionSnapshot, StreamRow } from '../../../src/engine/state.js';
import { DAY, ev, HOUR, MINUTE, SECOND, T0, type TriggerSpec, trigger } from './builder.js';

function engineWith(spec: TriggerSpec = {}, idPrefix = 'p1-') {
  return new PartitionEngine({ triggers: [trigger(spec)], clock: new EventTimeClock(), idPrefix });
}

const ids = (effects: Effect[]) => effects.map((e) => `${e.type}:${e.streamId}`);
const closedOf = (effects: Effect[]) =>
  effects.filter((e): e is StreamClosed => e.type === 'fired' || e.type === 'expired');

/** A live row of the test trigger, as a store would give it back. */
function row(over: Partial<StreamRow>): StreamRow {
  return {
    id: 'p1-5',
    seq: 5,
    trigger: 'test_trigger',
    key: JSON.stringify([['instance_id', 'text', 'a']]),
    first: T0,
    last: T0,
    expireAt: T0 + HOUR,
    fireAt: null,
    version: 2,
    counts: [0],
    messageIds: ['m-a'],
    ...over,
  };
}

describe('stream ids are derived until kept', () => {
  test('a restored stream whose id is not prefix + seq keeps that id in every effect and export', () => {
    const engine = engineWith();
    const snap: PartitionSnapshot = { nextSeq: 6, now: T0, streams: [row({ id: 'old-5' })] };
    engine.importState(snap);
    assert.deepEqual(engine.exportState().streams, snap.streams);
    assert.deepEqual(
      engine.exportStreams(new Set(['old-5'])).map((r) => r.id),
      ['old-5'],
    );
    assert.deepEqual(engine.exportStreams(new Set(['p1-5'])), [], 'its sequence number is not its id');

    engine.add(ev('x', T0 + 1, { instance_id: 'a' }, 'm-a')); // duplicate
    engine.add(ev('fire.me', T0 + 2, { instance_id: 'a' }, 'm-a2'));
    engine.add(ev('x', T0 + 3, { instance_id: 'b' }, 'm-b'));
    engine.advance(T0 + DAY);
    assert.deepEqual(ids(engine.takeEffects()), [
      'duplicateIgnored:old-5',
      'eventAdded:old-5',
      'fireScheduled:old-5',
      'fired:old-5', // due at T0 + 2, closed as time reaches T0 + 3
      'streamOpened:p1-6',
      'eventAdded:p1-6',
      'expired:p1-6',
    ]);
    // Its slot is freed with it: a new stream of the same key gets a derived id again.
    engine.add(ev('x', T0 + 2 * DAY, { instance_id: 'a' }, 'm-a3'));
    assert.deepEqual(ids(engine.takeEffects()), ['streamOpened:p1-7', 'eventAdded:p1-7']);
  });

  test('exportStreams matches ids exactly: no leading zeros, no other prefix, no suffix', () => {
    const engine = engineWith();
    for (const i of ['a', 'b', 'c']) engine.add(ev('x', T0, { instance_id: i }));
    const exported = (names: string[]) => engine.exportStreams(new Set(names)).map((r) => r.id);
    assert.deepEqual(exported(['p1-3', 'p1-1']), ['p1-1', 'p1-3']);
    assert.deepEqual(exported(['p1-01', 'p1-2x', 'p2-2', '2', 'p1-', 'p1-2.0', 'p1-9']), []);
  });

  test('an empty prefix: ids are the bare sequence numbers', () => {
    const engine = engineWith({}, '');
    engine.add(ev('x', T0, { instance_id: 'a' }));
    assert.deepEqual(ids(engine.takeEffects()), ['streamOpened:1', 'eventAdded:1']);
    assert.deepEqual(
      engine.exportStreams(new Set(['1'])).map((r) => r.id),
      ['1'],
    );
  });
});

describe('message ids', () => {
  test('any number of ids: every repeat is ignored and the export keeps arrival order', () => {
    for (const n of [1, 2, 7, 8, 9, 20]) {
      const engine = engineWith({ fire: [{ eventType: 'fire.me', number: 1000 }] });
      const sent = Array.from({ length: n }, (_, i) => `m${n}-${i}`);
      for (const id of sent) engine.add(ev('fire.me', T0, { instance_id: 'i' }, id));
      // Repeat the first, the middle and the last (both sides of the array → Set switch).
      for (const id of [sent[0], sent[n >> 1], sent[n - 1]] as string[]) {
        engine.add(ev('fire.me', T0 + 1, { instance_id: 'i' }, id));
      }
      const effects = engine.takeEffects();
      assert.equal(effects.filter((e) => e.type === 'duplicateIgnored').length, 3, `${n} ids`);
      const streams = engine.exportState().streams;
      assert.equal(streams.length, 1);
      assert.deepEqual(streams[0]?.messageIds, sent, `${n} ids`);
      assert.deepEqual(streams[0]?.counts, [n]);
    }
  });

  test('restored ids beyond the array form dedupe as before the restore', () => {
    const messageIds = Array.from({ length: 12 }, (_, i) => `r${i}`);
    const engine = engineWith();
    engine.importState({ nextSeq: 6, now: T0, streams: [row({ messageIds })] });
    for (const id of [...messageIds, 'new']) engine.add(ev('x', T0 + 1, { instance_id: 'a' }, id));
    const effects = engine.takeEffects();
    assert.equal(effects.filter((e) => e.type === 'duplicateIgnored').length, 12);
    assert.deepEqual(engine.exportState().streams[0]?.messageIds, [...messageIds, 'new']);
  });
});

describe('timestamp columns', () => {
  test('a stream opened in a closed stream’s slot starts from its own timestamps', () => {
    const engine = engineWith({ fire: [{ eventType: 'fire.me' }], fireDelay: 600 });
    engine.add(ev('fire.me', T0, { instance_id: 'a' }));
    engine.add(ev('x', T0 + 5 * MINUTE, { instance_id: 'a' }));
    engine.advance(T0 + 2 * HOUR);
    const first = closedOf(engine.takeEffects());
    assert.deepEqual(
      first.map((c) => [c.type, c.first, c.last, c.due]),
      [['fired', T0, T0 + 5 * MINUTE, T0 + 10 * MINUTE]],
    );
    const t = T0 + 3 * HOUR;
    engine.add(ev('x', t, { instance_id: 'b' }));
    const [s] = engine.exportState().streams;
    assert.deepEqual([s?.id, s?.first, s?.last, s?.expireAt, s?.fireAt], ['p1-2', t, t, t + HOUR, null]);
    assert.equal(engine.nextDue(), t + HOUR);
    engine.advance(t + HOUR + SECOND);
    assert.deepEqual(
      closedOf(engine.takeEffects()).map((c) => [c.type, c.streamId, c.first, c.last, c.due]),
      [['expired', 'p1-2', t, t, t + HOUR]],
    );
  });

  test('many streams opening and closing in waves keep their own times', () => {
    const engine = engineWith({ fire: [] });
    for (let wave = 0; wave < 5; wave++) {
      const base = T0 + wave * DAY;
      const n = 10 + wave * 7; // more and more live streams: slots are reused, then added
      for (let i = 0; i < n; i++) engine.add(ev('x', base + i, { instance_id: `w${wave}-${i}` }));
      engine.advance(base + HOUR);
      const closed = closedOf(engine.takeEffects());
      assert.equal(closed.length, n);
      for (const c of closed) assert.equal(c.type, 'fired');
      assert.deepEqual(
        closed.map((c) => c.first),
        Array.from({ length: n }, (_, i) => base + i),
      );
      assert.equal(engine.activeStreams, 0);
    }
  });
});
