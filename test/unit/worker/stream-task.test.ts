import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Checkpoint, ClaimedPartition } from '../../../src/db/checkpoint-store.js';
import { OwnershipLostError } from '../../../src/db/checkpoint-store.js';
import { EventTimeClock } from '../../../src/engine/clock.js';
import { WinchesterError } from '../../../src/errors.js';
import { encodeStreamEvent, encodeTick } from '../../../src/kafka/records.js';
import type { Event } from '../../../src/model/event.js';
import type { TriggerDefinition } from '../../../src/triggers/types.js';
import { StreamTask, type TaskStore } from '../../../src/worker/stream-task.js';
import { ev, HOUR, MINUTE, T0, trigger } from '../engine/builder.js';

const def: TriggerDefinition = trigger({
  name: 'usage',
  distinguishedBy: ['instance_id'],
  fire: [{ eventType: 'fire.me' }],
  firePipeline: null,
  expirePipeline: null,
});

const record = (e: Event): string => {
  const m = def.match(e, e.timestamp);
  assert.ok(m.matched);
  return encodeStreamEvent({ trigger: def.name, key: m.key, distinguishing: m.distinguishing, event: e });
};

function store(failures: unknown[] = []): TaskStore & { cps: Checkpoint[] } {
  const claim: ClaimedPartition = {
    topic: 'se',
    partition: 4,
    epoch: 7,
    offset: 10,
    nextSeq: 1,
    liveStreams: [],
    snapshot: { nextSeq: 1, now: null, streams: [] },
  };
  const cps: Checkpoint[] = [];
  return {
    cps,
    claimPartition: async () => claim,
    loadStreamEvents: async () => [],
    checkpoint: async (cp) => {
      const f = failures.shift();
      if (f !== undefined) throw f;
      cps.push(cp);
    },
  };
}

const task = (s: TaskStore, checkpointRecords = 3) =>
  StreamTask.claim({
    store: s,
    topic: 'se',
    partition: 4,
    triggers: [def],
    clock: new EventTimeClock(0),
    checkpointRecords,
    checkpointMs: 1e9,
    nowMs: () => 0,
  });

describe('StreamTask', () => {
  test('resumes at the stored offset, skips older records, checkpoints by count with its epoch', async () => {
    const s = store();
    const tk = await task(s);
    assert.equal(tk.nextOffset, 10);
    assert.equal(tk.handle(9, record(ev('x', T0, { instance_id: 'a' }))), false, 'already checkpointed');
    assert.equal(tk.checkpointDue(), false);
    tk.handle(10, record(ev('x', T0, { instance_id: 'a' })));
    tk.handle(11, record(ev('fire.me', T0 + MINUTE, { instance_id: 'a' })));
    assert.equal(tk.checkpointDue(), false);
    tk.handle(12, encodeTick(T0 + HOUR));
    assert.equal(tk.checkpointDue(), true);
    assert.equal(await tk.checkpoint(), true);
    const cp = s.cps[0]!;
    assert.equal(cp.epoch, 7);
    assert.equal(cp.offset, 13);
    assert.equal(cp.events.length, 2);
    assert.equal(cp.streams.length, 1);
    assert.equal(cp.streams[0]!.id, 'p4-1');
    assert.equal(cp.streams[0]!.state, 'completed', 'fired into no pipeline');
    assert.deepEqual(cp.outbox, [], 'no pipeline: nothing to publish');
    assert.equal(cp.nextSeq, 2);
    assert.equal(tk.counts.fired, 1);
    assert.equal(await tk.checkpoint(), false, 'nothing new');
  });

  test('undecodable records and unknown triggers are counted and skipped', async () => {
    const s = store();
    const tk = await task(s);
    tk.handle(10, 'garbage');
    tk.handle(11, null);
    tk.handle(12, record(ev('x', T0, { instance_id: 'a' })).replace('"trigger":"usage"', '"trigger":"gone"'));
    assert.equal(tk.counts.undecodable, 2);
    assert.equal(tk.counts.unknownTrigger, 1);
    await tk.checkpoint();
    assert.equal(s.cps[0]!.offset, 13, 'their offsets are still consumed');
    assert.equal(s.cps[0]!.streams.length, 0);
  });

  test('a retriable failure is retried with the same checkpoint; lost ownership is thrown', async () => {
    const flaky = store([new WinchesterError('db down', { retriable: true })]);
    const tk = await task(flaky);
    tk.handle(10, record(ev('x', T0, { instance_id: 'a' })));
    await tk.checkpoint();
    assert.equal(flaky.cps.length, 1);
    assert.equal(flaky.cps[0]!.events.length, 1);

    const lost = store([new OwnershipLostError('se', 4, 'epoch', 'epoch 7 is no longer current')]);
    const tk2 = await task(lost);
    tk2.handle(10, record(ev('x', T0, { instance_id: 'a' })));
    await assert.rejects(tk2.checkpoint(), OwnershipLostError);
  });
});
