import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CheckpointCollector } from '../../../src/db/checkpoint-collector.js';
import { CheckpointStore, OwnershipLostError } from '../../../src/db/checkpoint-store.js';
import { sql } from '../../../src/db/pool.js';
import { EventTimeClock } from '../../../src/engine/clock.js';
import { PartitionEngine } from '../../../src/engine/partition-engine.js';
import type { Event } from '../../../src/model/event.js';
import { INTEGRATION_TIMEOUT_MS } from '../../helpers/integration.js';
import { ev, HOUR, MINUTE, T0, trigger } from '../../unit/engine/builder.js';
import { migratedDatabase } from './schema.js';

const triggers = [trigger({ name: 'usage', fire: [{ eventType: 'fire.me' }] })];
const engine = () => new PartitionEngine({ triggers, clock: new EventTimeClock(0), idPrefix: 'p3-' });
const at = (id: string, offset: number, type = 'compute.instance.update', messageId?: string): Event =>
  ev(type, T0 + offset, { instance_id: id }, messageId);

test('an engine restored from the store behaves exactly like the one that kept running', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const db = await migratedDatabase(t, 'it_roundtrip');
  const store = new CheckpointStore(db.pool);
  const where = { topic: 'events', partition: 3 };

  const claim1 = await store.claimPartition('events', 3);
  const running = engine();
  running.importState(claim1.snapshot);
  const collector1 = new CheckpointCollector();
  let offset = 0;
  const feed = async (e: PartitionEngine, c: CheckpointCollector, epoch: number, events: Event[]) => {
    for (const x of events) e.add(x);
    c.add(e.takeEffects());
    offset += events.length;
    await store.checkpoint(c.build({ ...where, epoch, offset, nextSeq: e.exportState().nextSeq }, e));
    c.committed();
  };

  // a: two events; b: one; c: its fire criterion is met (fires once time passes T0+3m).
  await feed(running, collector1, claim1.epoch, [
    at('a', 0),
    at('a', MINUTE),
    at('b', 2 * MINUTE),
    at('c', 3 * MINUTE, 'fire.me'),
  ]);
  // c fires (now T0+4m > fireAt) and its next event opens a new stream; a's repeated message id is ignored;
  // d opens and is met and fires within the same interval (inserted already closed).
  await feed(running, collector1, claim1.epoch, [
    at('c', 4 * MINUTE),
    at('a', 5 * MINUTE, 'compute.instance.update', 'dup-1'),
    at('a', 5 * MINUTE, 'compute.instance.update', 'dup-1'),
    at('d', 6 * MINUTE, 'fire.me'),
    at('e', 7 * MINUTE),
  ]);

  // Another worker takes over from what was committed.
  const claim2 = await store.claimPartition('events', 3);
  assert.equal(claim2.offset, offset);
  const restored = engine();
  restored.importState(claim2.snapshot);
  assert.deepEqual(restored.takeEffects(), []);
  assert.deepEqual(restored.exportState().streams, running.exportState().streams, 'same live state');
  assert.equal(restored.exportState().nextSeq, running.exportState().nextSeq);

  // From here both see the same input and must produce the same effects (same ids, versions, times).
  const more = [
    at('a', 10 * MINUTE),
    at('b', 20 * MINUTE, 'fire.me'),
    at('c', 30 * MINUTE),
    at('z', 5 * HOUR),
  ];
  for (const x of more) {
    running.add(x);
    restored.add(x);
  }
  const expected = running.takeEffects();
  const collector2 = new CheckpointCollector();
  const effects = restored.takeEffects();
  assert.deepEqual(effects, expected);
  collector2.add(effects);
  offset += more.length;
  await store.checkpoint(
    collector2.build(
      { ...where, epoch: claim2.epoch, offset, nextSeq: restored.exportState().nextSeq },
      restored,
    ),
  );
  collector2.committed();

  // The first worker, unaware, cannot write over the new owner.
  collector1.add(expected);
  await assert.rejects(
    store.checkpoint(
      collector1.build(
        { ...where, epoch: claim1.epoch, offset, nextSeq: running.exportState().nextSeq },
        running,
      ),
    ),
    OwnershipLostError,
  );

  const rows = await db.pool.any(
    sql.unsafe`SELECT id, state, version, closed_at IS NOT NULL AS closed FROM streams ORDER BY seq`,
  );
  assert.deepEqual(
    rows.map((r) => `${r.id} ${r.state} v${r.version}${r.closed ? ' closed' : ''}`),
    [
      'p3-1 expiring v6 closed', // a: opened, 4 events (the duplicate ignored), expired
      'p3-2 firing v5 closed', // b: opened, 2 events, fire scheduled at T0+20m, fired when z's time passed
      'p3-3 firing v4 closed', // c: fired at T0+4m
      'p3-4 expiring v4 closed', // c again: 2 events, expired
      'p3-5 firing v4 closed', // d
      'p3-6 expiring v3 closed', // e
      'p3-7 active v2', // z
    ],
  );
  const events = await store.loadStreamEvents('p3-1');
  assert.deepEqual(
    events.map((e) => e.timestamp - T0),
    [0, MINUTE, 5 * MINUTE, 10 * MINUTE],
  );
  const final = await store.claimPartition('events', 3);
  assert.deepEqual(
    final.liveStreams.map((s) => s.id),
    ['p3-7'],
  );
  assert.equal(final.nextSeq, 8);
});
