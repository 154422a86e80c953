import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventTimeClock, ManualClock } from '../../../src/engine/clock.js';
import type { Effect, StreamClosed } from '../../../src/engine/effects.js';
import { PartitionEngine } from '../../../src/engine/partition-engine.js';
import { EngineStateError, evaluationFromEvents } from '../../../src/engine/state.js';
import type { TriggerDefinition } from '../../../src/triggers/types.js';
import { DAY, ev, HOUR, MINUTE, SECOND, T0, type TriggerSpec, trigger } from './builder.js';

function engineWith(spec: TriggerSpec | TriggerDefinition[] = {}, lateness = 0) {
  const triggers = Array.isArray(spec) ? spec : [trigger(spec)];
  return new PartitionEngine({ triggers, clock: new EventTimeClock(lateness) });
}

const closedOf = (effects: Effect[]) =>
  effects.filter((e): e is StreamClosed => e.type === 'fired' || e.type === 'expired');
const types = (effects: Effect[]) => effects.map((e) => e.type);

describe('joining and opening streams', () => {
  test('events with the same distinguishing values join one stream; others open their own', () => {
    const engine = engineWith();
    engine.add(ev('compute.instance.update', T0, { instance_id: 'a' }));
    engine.add(ev('compute.instance.update', T0 + SECOND, { instance_id: 'a' }));
    engine.add(ev('compute.instance.update', T0 + 2 * SECOND, { instance_id: 'b' }));
    const effects = engine.takeEffects();
    assert.deepEqual(types(effects), [
      'streamOpened',
      'eventAdded',
      'eventAdded',
      'streamOpened',
      'eventAdded',
    ]);
    const opened = effects.filter((e) => e.type === 'streamOpened');
    assert.deepEqual(
      opened.map((e) => [e.streamId, e.distinguishing]),
      [
        ['1', { instance_id: { type: 'text', value: 'a' } }],
        ['2', { instance_id: { type: 'text', value: 'b' } }],
      ],
    );
    const added = effects.filter((e) => e.type === 'eventAdded');
    assert.deepEqual(
      added.map((e) => e.streamId),
      ['1', '1', '2'],
    );
    assert.equal(engine.activeStreams, 2);
  });

  test('an event matching no trigger, or lacking a distinguishing trait, changes nothing', () => {
    const engine = engineWith({ match: ['compute.*'] });
    assert.equal(engine.add(ev('image.upload', T0, { instance_id: 'a' })), 0);
    assert.equal(engine.add(ev('compute.instance.update', T0, {})), 0);
    assert.deepEqual(engine.takeEffects(), []);
  });

  test('first/last follow the earliest and latest timestamps, even out of order', () => {
    const engine = engineWith({ expiration: (_f, last) => last + DAY });
    engine.add(ev('x', T0 + HOUR, { instance_id: 'a' }));
    engine.add(ev('x', T0, { instance_id: 'a' }));
    engine.add(ev('x', T0 + 2 * HOUR, { instance_id: 'a' }));
    const row = engine.exportState().streams[0];
    assert.ok(row);
    assert.equal(row.first, T0);
    assert.equal(row.last, T0 + 2 * HOUR);
    assert.equal(row.expireAt, T0 + 2 * HOUR + DAY);
  });

  test('the expiration is recomputed from $first and $last on every added event', () => {
    const seen: Array<[number, number]> = [];
    const engine = engineWith({
      expiration: (first, last) => {
        seen.push([first - T0, last - T0]);
        return first + (last - first) * 2 + HOUR;
      },
    });
    engine.add(ev('x', T0, { instance_id: 'a' }));
    engine.add(ev('x', T0 + 10 * MINUTE, { instance_id: 'a' }));
    assert.deepEqual(seen, [
      [0, 0],
      [0, 10 * MINUTE],
    ]);
    const added = engine.takeEffects().filter((e) => e.type === 'eventAdded');
    assert.deepEqual(
      added.map((e) => e.expireAt - T0),
      [HOUR, 20 * MINUTE + HOUR],
    );
  });

  test('addEvent takes router-computed trigger, key and distinguishing values', () => {
    const engine = engineWith();
    const dist = { instance_id: { type: 'text' as const, value: 'a' } };
    assert.equal(engine.addEvent('test_trigger', 'k1', dist, ev('x', T0, { instance_id: 'a' })), true);
    assert.equal(engine.addEvent('test_trigger', 'k1', dist, ev('x', T0 + 1, { instance_id: 'a' })), true);
    assert.equal(engine.addEvent('nope', 'k1', dist, ev('x', T0 + 2)), false);
    const effects = engine.takeEffects();
    assert.deepEqual(types(effects), ['streamOpened', 'eventAdded', 'eventAdded']);
    assert.equal(effects[0]?.type === 'streamOpened' && effects[0].key, 'k1');
  });
});

describe('deduplication', () => {
  test('a message_id already in the stream is ignored and never counted twice', () => {
    const engine = engineWith({ fire: [{ eventType: 'fire.me', number: 2 }] });
    engine.add(ev('fire.me', T0, { instance_id: 'a' }, 'dup'));
    engine.add(ev('fire.me', T0 + SECOND, { instance_id: 'a' }, 'dup'));
    const effects = engine.takeEffects();
    assert.deepEqual(types(effects), ['streamOpened', 'eventAdded', 'duplicateIgnored']);
    const row = engine.exportState().streams[0];
    assert.deepEqual(row?.counts, [1]);
    assert.deepEqual(row?.messageIds, ['dup']);
    assert.equal(row?.last, T0, 'a duplicate does not move last either');
    assert.equal(row?.version, 2, 'a duplicate does not change the stream');
  });

  test('dedupe is per stream: the same message may join streams of different triggers', () => {
    const engine = engineWith([trigger({ name: 'one' }), trigger({ name: 'two' })]);
    assert.equal(engine.add(ev('x', T0, { instance_id: 'a' }, 'same')), 2);
    assert.equal(engine.activeStreams, 2);
  });

  test('many ids per stream are remembered (the Set form)', () => {
    const engine = engineWith({ fire: [{ eventType: 'fire.me', number: 4 }] });
    for (const id of ['a', 'b', 'c', 'a', 'b', 'c']) engine.add(ev('fire.me', T0, { instance_id: 'i' }, id));
    assert.deepEqual(engine.exportState().streams[0]?.counts, [3]);
    assert.equal(engine.takeEffects().filter((e) => e.type === 'duplicateIgnored').length, 3);
  });
});

describe('expiry', () => {
  test('a stream expires only once now is strictly past its expiration', () => {
    const engine = engineWith();
    engine.add(ev('x', T0, { instance_id: 'a' }));
    engine.takeEffects();
    assert.equal(engine.advance(T0 + HOUR), 0, 'expire_timestamp < now is required (reference)');
    assert.equal(engine.advance(T0 + HOUR + 1), 1);
    const [closed] = closedOf(engine.takeEffects());
    assert.equal(closed?.type, 'expired');
    assert.equal(closed?.pipeline, 'expire_pipe');
    assert.equal(closed?.state, 'expiring');
    assert.equal(closed?.due, T0 + HOUR);
    assert.equal(closed?.at, T0 + HOUR + 1);
    assert.equal(engine.activeStreams, 0);
  });

  test('a stream whose expiration is not after now accepts no event: one arriving then opens a new stream', () => {
    const engine = engineWith();
    engine.add(ev('x', T0, { instance_id: 'a' }));
    engine.add(ev('x', T0 + HOUR - 1, { instance_id: 'a' })); // joins: expiration T0+1h > now
    // The second event moved the expiration to T0+2h-1; the third arrives exactly then: not joinable.
    engine.add(ev('x', T0 + 2 * HOUR - 1, { instance_id: 'a' }));
    const effects = engine.takeEffects();
    assert.deepEqual(
      effects.filter((e) => e.type === 'eventAdded').map((e) => e.streamId),
      ['1', '1', '2'],
    );
    // The first stream is closed to events but not yet expired (its expiration equals now).
    assert.equal(engine.activeStreams, 2);
    engine.advance(T0 + 2 * HOUR);
    assert.deepEqual(
      closedOf(engine.takeEffects()).map((c) => [c.type, c.streamId]),
      [['expired', '1']],
    );
  });

  test('reopening after expiry gives a fresh, unique stream id and fresh counts', () => {
    const engine = engineWith({ fire: [{ eventType: 'fire.me', number: 2 }] });
    engine.add(ev('fire.me', T0, { instance_id: 'a' }));
    engine.add(ev('fire.me', T0 + 2 * HOUR, { instance_id: 'a' }));
    const effects = engine.takeEffects();
    assert.deepEqual(
      effects
        .filter((e) => e.type === 'streamOpened' || e.type === 'expired')
        .map((e) => [e.type, e.streamId]),
      [
        ['streamOpened', '1'],
        ['expired', '1'],
        ['streamOpened', '2'],
      ],
    );
    assert.equal(
      effects.some((e) => e.type === 'fireScheduled'),
      false,
    );
    assert.deepEqual(engine.exportState().streams[0]?.counts, [1]);
  });

  test('an empty fire_criteria list is met at once: the stream is scheduled on its first event', () => {
    const engine = engineWith({ fire: [], fireDelay: 10 });
    engine.add(ev('x', T0, { instance_id: 'a' }));
    engine.add(ev('x', T0 + SECOND, { instance_id: 'a' }));
    engine.advance(T0 + DAY);
    assert.deepEqual(
      engine.takeEffects().map((e) => e.type),
      ['streamOpened', 'eventAdded', 'fireScheduled', 'eventAdded', 'fired'],
    );
  });

  test('no expire pipeline: the expired stream is simply completed', () => {
    const engine = engineWith({ expirePipeline: null });
    engine.add(ev('x', T0, { instance_id: 'a' }));
    engine.advance(T0 + DAY);
    const [closed] = closedOf(engine.takeEffects());
    assert.equal(closed?.pipeline, null);
    assert.equal(closed?.state, 'completed');
  });
});

describe('firing', () => {
  test('fire_delay 0: fires once now is strictly past the moment the criteria were met', () => {
    const engine = engineWith();
    engine.add(ev('x', T0, { instance_id: 'a' }));
    engine.add(ev('fire.me', T0 + MINUTE, { instance_id: 'a' }));
    const effects = engine.takeEffects();
    const sched = effects.find((e) => e.type === 'fireScheduled');
    assert.equal(sched?.type === 'fireScheduled' && sched.fireAt, T0 + MINUTE);
    assert.equal(engine.advance(T0 + MINUTE), 0);
    // an event at the same instant still joins (the stream is active until it fires)
    engine.add(ev('x', T0 + MINUTE, { instance_id: 'a' }));
    assert.equal(engine.takeEffects()[0]?.streamId, '1');
    engine.advance(T0 + MINUTE + 1);
    const [closed] = closedOf(engine.takeEffects());
    assert.deepEqual([closed?.type, closed?.pipeline, closed?.state], ['fired', 'fire_pipe', 'firing']);
  });

  test('fire_delay: events keep joining until the delayed fire, later ones open a new stream', () => {
    const engine = engineWith({ fireDelay: 60 });
    engine.add(ev('fire.me', T0, { instance_id: 'a' }));
    engine.add(ev('x', T0 + 30 * SECOND, { instance_id: 'a' }));
    engine.add(ev('fire.me', T0 + 60 * SECOND, { instance_id: 'a' }));
    let effects = engine.takeEffects();
    assert.deepEqual(
      effects
        .filter((e) => e.type === 'fireScheduled')
        .map((e) => e.type === 'fireScheduled' && e.fireAt - T0),
      [60 * SECOND],
      'scheduled once, not re-scheduled by later matching events',
    );
    assert.deepEqual(new Set(effects.map((e) => e.streamId)), new Set(['1']));
    engine.add(ev('x', T0 + 61 * SECOND, { instance_id: 'a' }));
    effects = engine.takeEffects();
    assert.deepEqual(
      effects.map((e) => [e.type, e.streamId]),
      [
        ['fired', '1'],
        ['streamOpened', '2'],
        ['eventAdded', '2'],
      ],
    );
  });

  test('due for both fire and expiry in one pass: the stream fires (reference precedence)', () => {
    const engine = engineWith({ fireDelay: 2 * 3600 });
    engine.add(ev('fire.me', T0, { instance_id: 'a' })); // fire T0+2h, expire T0+1h
    engine.advance(T0 + 3 * HOUR);
    const [closed] = closedOf(engine.takeEffects());
    assert.equal(closed?.type, 'fired');
    assert.equal(closed?.due, T0 + 2 * HOUR);
  });

  test('expiry before the delayed fire time expires the stream', () => {
    const engine = engineWith({ fireDelay: 2 * 3600 });
    engine.add(ev('fire.me', T0, { instance_id: 'a' }));
    engine.advance(T0 + HOUR + 1);
    engine.advance(T0 + 3 * HOUR);
    assert.deepEqual(
      closedOf(engine.takeEffects()).map((c) => c.type),
      ['expired'],
    );
  });

  test('number > 1: fires only after that many matching events', () => {
    const engine = engineWith({ fire: [{ eventType: 'fire.me', number: 3 }] });
    engine.add(ev('fire.me', T0, { instance_id: 'a' }));
    engine.add(ev('other', T0 + 1, { instance_id: 'a' }));
    engine.add(ev('fire.me', T0 + 2, { instance_id: 'a' }));
    assert.equal(
      engine.takeEffects().some((e) => e.type === 'fireScheduled'),
      false,
    );
    assert.deepEqual(engine.exportState().streams[0]?.counts, [2]);
    engine.add(ev('fire.me', T0 + 3, { instance_id: 'a' }));
    assert.equal(
      engine.takeEffects().some((e) => e.type === 'fireScheduled'),
      true,
    );
  });

  test('several criteria: every one must be met; one event may count for several', () => {
    const engine = engineWith({
      fire: [
        { eventType: 'a.*', number: 2 },
        { eventType: '*.end' },
        { eventType: '*', where: (e) => e.traits.flag?.value === 1 },
      ],
    });
    engine.add(ev('a.start', T0, { instance_id: 'i' }));
    engine.add(ev('a.end', T0 + 1, { instance_id: 'i' })); // counts for criteria 0 and 1
    assert.deepEqual(engine.exportState().streams[0]?.counts, [2, 1, 0]);
    engine.add(ev('b.other', T0 + 2, { instance_id: 'i', flag: 1 }));
    assert.equal(
      engine.takeEffects().some((e) => e.type === 'fireScheduled'),
      true,
    );
  });

  test('no fire pipeline: the fired stream is simply completed', () => {
    const engine = engineWith({ firePipeline: null });
    engine.add(ev('fire.me', T0, { instance_id: 'a' }));
    engine.advance(T0 + 1);
    const [closed] = closedOf(engine.takeEffects());
    assert.deepEqual([closed?.type, closed?.pipeline, closed?.state], ['fired', null, 'completed']);
  });

  test('streams due in one advance close in (due time, stream id) order', () => {
    // A frozen clock, so nothing closes while the streams are built.
    const engine = new PartitionEngine({
      triggers: [trigger({ expiration: (_f, last) => last + (last === T0 + 2 ? 0 : HOUR) })],
      clock: new ManualClock(T0),
    });
    engine.add(ev('x', T0, { instance_id: 'c' })); // 1: expires T0+1h
    engine.add(ev('x', T0, { instance_id: 'b' })); // 2: expires T0+1h
    engine.add(ev('fire.me', T0 + 1, { instance_id: 'a' })); // 3: fires at now = T0
    engine.add(ev('x', T0 + 2, { instance_id: 'd' })); // 4: expires T0+2
    engine.takeEffects();
    engine.advance(T0 + DAY);
    assert.deepEqual(
      closedOf(engine.takeEffects()).map((c) => [c.type, c.streamId]),
      [
        ['fired', '3'],
        ['expired', '4'],
        ['expired', '1'],
        ['expired', '2'],
      ],
    );
  });

  test('versions count every change of the stream row', () => {
    const engine = engineWith();
    engine.add(ev('x', T0, { instance_id: 'a' }));
    engine.add(ev('fire.me', T0 + 1, { instance_id: 'a' }));
    engine.advance(T0 + 2);
    assert.deepEqual(
      engine.takeEffects().map((e) => [e.type, e.version]),
      [
        ['streamOpened', 1],
        ['eventAdded', 2],
        ['eventAdded', 3],
        ['fireScheduled', 4],
        ['fired', 5],
      ],
    );
  });
});

describe('clocks', () => {
  test('event time with lateness lets a late event still join', () => {
    const engine = engineWith({}, 10 * MINUTE);
    engine.add(ev('x', T0, { instance_id: 'a' }));
    engine.add(ev('x', T0 + HOUR + 5 * MINUTE, { instance_id: 'b' })); // now = T0+55m
    engine.add(ev('x', T0 + 30 * MINUTE, { instance_id: 'a' })); // stream 1 still open
    assert.deepEqual(
      engine
        .takeEffects()
        .filter((e) => e.type === 'eventAdded')
        .map((e) => e.streamId),
      ['1', '2', '1'],
    );
  });

  test('a wall (manual) clock ignores event timestamps; advance() reads it', () => {
    const clock = new ManualClock(T0);
    const engine = new PartitionEngine({ triggers: [trigger()], clock });
    engine.add(ev('fire.me', T0 - 5 * MINUTE, { instance_id: 'a' }));
    const sched = engine.takeEffects().find((e) => e.type === 'fireScheduled');
    assert.equal(
      sched?.type === 'fireScheduled' && sched.fireAt,
      T0,
      'fire time is now + delay, not event time',
    );
    assert.equal(engine.advance(), 0);
    clock.tick(1);
    assert.equal(engine.advance(), 1);
    assert.equal(closedOf(engine.takeEffects())[0]?.type, 'fired');
  });

  test('a very late event still opens a stream, which expires at the next advance (as the reference)', () => {
    const clock = new ManualClock(T0);
    const engine = new PartitionEngine({ triggers: [trigger()], clock });
    engine.add(ev('x', T0 - 5 * DAY, { instance_id: 'a' }));
    engine.add(ev('x', T0 - 5 * DAY + 1, { instance_id: 'a' })); // expiration not after now: a new stream
    engine.advance();
    assert.deepEqual(
      engine.takeEffects().map((e) => [e.type, e.streamId]),
      [
        ['streamOpened', '1'],
        ['eventAdded', '1'],
        ['expired', '1'],
        ['streamOpened', '2'],
        ['eventAdded', '2'],
        ['expired', '2'],
      ],
    );
  });

  test('time never goes backwards inside the engine', () => {
    const engine = engineWith();
    engine.advance(T0 + DAY);
    engine.advance(T0);
    assert.equal(engine.now, T0 + DAY);
  });

  test('nextDue reports the earliest timer', () => {
    const engine = engineWith({ fireDelay: 5 });
    assert.equal(engine.nextDue(), null);
    engine.add(ev('x', T0, { instance_id: 'a' }));
    assert.equal(engine.nextDue(), T0 + HOUR);
    engine.add(ev('fire.me', T0 + 1, { instance_id: 'b' }));
    assert.equal(engine.nextDue(), T0 + 1 + 5 * SECOND);
  });
});

describe('errors and state', () => {
  test('an expiration that throws leaves the engine unchanged', () => {
    const engine = engineWith({
      expiration: (_f, last) => {
        if (last > T0) throw new Error('boom');
        return last + HOUR;
      },
    });
    engine.add(ev('x', T0, { instance_id: 'a' }));
    const before = engine.exportState();
    engine.takeEffects();
    assert.throws(() => engine.add(ev('x', T0 + 1, { instance_id: 'a' })), /boom/);
    assert.throws(() => engine.add(ev('x', T0 + 1, { instance_id: 'b' })), /boom/);
    assert.deepEqual(engine.takeEffects(), []);
    assert.deepEqual(engine.exportState(), { ...before, now: T0 + 1 });
  });

  test('export → JSON → import round-trips, and the restored engine continues identically', () => {
    const spec: TriggerSpec = {
      fire: [{ eventType: 'fire.me', number: 2 }, { eventType: 'x' }],
      fireDelay: 30,
    };
    const a = new PartitionEngine({
      triggers: [trigger(spec)],
      clock: new EventTimeClock(),
      idPrefix: 'p3-',
    });
    a.add(ev('fire.me', T0, { instance_id: 'a' }, 'm-a1'));
    a.add(ev('x', T0 + 1, { instance_id: 'a' }, 'm-a2'));
    a.add(ev('x', T0 + 2, { instance_id: 'b' }, 'm-b1'));
    a.add(ev('fire.me', T0 + 3, { instance_id: 'c' }, 'm-c1'));
    a.add(ev('fire.me', T0 + 4, { instance_id: 'c' }, 'm-c2'));
    a.add(ev('x', T0 + 5, { instance_id: 'c' }, 'm-c3')); // c scheduled
    a.takeEffects();
    const snap = JSON.parse(JSON.stringify(a.exportState()));
    assert.equal(snap.nextSeq, 4);
    assert.deepEqual(
      snap.streams.map((s: { id: string; counts: number[]; fireAt: number | null }) => [
        s.id,
        s.counts,
        s.fireAt,
      ]),
      [
        ['p3-1', [1, 1], null],
        ['p3-2', [0, 1], null],
        ['p3-3', [2, 1], T0 + 5 + 30 * SECOND],
      ],
    );
    const b = new PartitionEngine({
      triggers: [trigger(spec)],
      clock: new EventTimeClock(),
      idPrefix: 'p3-',
    });
    b.importState(snap);
    assert.deepEqual(b.exportState(), a.exportState());
    for (const engine of [a, b]) {
      engine.add(ev('fire.me', T0 + 6, { instance_id: 'a' }, 'm-a1')); // duplicate
      engine.add(ev('fire.me', T0 + 7, { instance_id: 'a' }, 'm-a3')); // a scheduled
      engine.add(ev('x', T0 + 8, { instance_id: 'd' }, 'm-d1')); // new stream p3-4
      engine.advance(T0 + DAY);
    }
    assert.deepEqual(b.takeEffects(), a.takeEffects());
  });

  test('import rejects a corrupt row and a non-empty engine; reports rows of unknown triggers', () => {
    const engine = engineWith();
    engine.add(ev('x', T0, { instance_id: 'a' }));
    const snap = engine.exportState();
    assert.throws(() => engine.importState(snap), EngineStateError);

    const row = snap.streams[0];
    assert.ok(row);
    const fresh = () => engineWith();
    assert.throws(
      () => fresh().importState({ ...snap, streams: [{ ...row, counts: [1, 2] }] }),
      /1 fire criteria/,
    );
    assert.throws(
      () => fresh().importState({ ...snap, streams: [{ ...row, version: 0 }] }),
      EngineStateError,
    );
    assert.throws(() => fresh().importState({ ...snap, streams: [row, row] }), /sequence number 1/);

    const orphan = fresh();
    orphan.importState({ ...snap, streams: [{ ...row, trigger: 'gone' }] });
    assert.equal(orphan.activeStreams, 0);
    assert.deepEqual(orphan.takeEffects(), [
      {
        type: 'streamErrored',
        streamId: '1',
        trigger: 'gone',
        version: 3,
        state: 'error',
        reason: 'unknown_trigger',
      },
    ]);
    orphan.add(ev('x', T0 + 1, { instance_id: 'z' }));
    assert.equal(orphan.takeEffects()[0]?.streamId, '2', 'sequence numbers are never reused');
  });

  test('import in chunks: a sequence number repeated across chunks is refused; the newest stream of a key wins; no import after finishImport', () => {
    const source = engineWith();
    source.add(ev('x', T0, { instance_id: 'a' }, 'm1'));
    const [row] = source.exportState().streams;
    assert.ok(row, 'one stream exported');
    const twice = engineWith();
    twice.importStreams([row]);
    assert.throws(() => twice.importStreams([row]), /sequence number 1/);

    // Two streams of one key (the older waits to expire), handed over newest first.
    const older = { ...row, id: '4', seq: 4, messageIds: ['m-old'] };
    const newer = { ...row, id: '9', seq: 9, messageIds: ['m-new'] };
    const engine = engineWith();
    engine.importStreams([newer]);
    engine.importStreams([older]);
    engine.finishImport({ nextSeq: 2, now: null });
    assert.equal(engine.activeStreams, 2);
    engine.add(ev('x', T0 + 1, { instance_id: 'a' }, 'm-next'));
    const joined = engine.takeEffects().find((e) => e.type === 'eventAdded');
    assert.equal(joined?.streamId, '9', 'the event joins the newest stream of its key');
    engine.add(ev('x', T0 + 2, { instance_id: 'b' }, 'm-b'));
    const opened = engine.takeEffects().find((e) => e.type === 'streamOpened');
    assert.equal(opened?.streamId, '10', 'the next sequence number is past every imported one');

    assert.throws(() => engine.importStreams([]), /import is not finished/);
    assert.throws(() => engine.finishImport({ nextSeq: 1, now: null }), /already finished/);
    const empty = engineWith();
    empty.finishImport({ nextSeq: 1, now: null });
    assert.throws(() => empty.importState({ nextSeq: 1, now: null, streams: [] }), EngineStateError);
    assert.throws(() => engineWith().finishImport({ nextSeq: 0, now: null }), /bad nextSeq 0/);
  });

  test('evaluationFromEvents rebuilds counts and message ids from stored events', () => {
    const def = trigger({ fire: [{ eventType: 'fire.me', number: 2 }] });
    const events = [
      ev('fire.me', T0 + 5, {}, 'a'),
      ev('fire.me', T0 + 5, {}, 'a'),
      ev('x', T0, {}, 'b'),
      ev('fire.me', T0 + 9, {}, 'c'),
      ev('fire.me', T0 + 7, {}, 'd'),
    ];
    assert.deepEqual(evaluationFromEvents(def, events), {
      first: T0,
      last: T0 + 9,
      counts: [2],
      messageIds: ['a', 'b', 'c', 'd'],
    });
    assert.equal(evaluationFromEvents(def, []), null);
  });
});
