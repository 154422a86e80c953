import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Checkpoint } from '../../../src/db/checkpoint-store.js';
import { OwnershipLostError } from '../../../src/db/checkpoint-store.js';
import { EventTimeClock } from '../../../src/engine/clock.js';
import { WinchesterError } from '../../../src/errors.js';
import { encodeTick } from '../../../src/kafka/records.js';
import type { Event } from '../../../src/model/event.js';
import type { TriggerDefinition } from '../../../src/triggers/types.js';
import { StreamTask, type TaskStore } from '../../../src/worker/stream-task.js';
import { memoryTaskStore, streamEventRecord } from '../../helpers/stream-task.js';
import { ev, HOUR, MINUTE, T0, trigger } from '../engine/builder.js';

const def: TriggerDefinition = trigger({
  name: 'usage',
  distinguishedBy: ['instance_id'],
  fire: [{ eventType: 'fire.me' }],
  firePipeline: null,
  expirePipeline: null,
});

const record = (e: Event): string => streamEventRecord(def, e);

// A claim of partition 4 at epoch 7, checkpointed up to offset 10.
const store = (failures: unknown[] = []) =>
  memoryTaskStore({ claim: { partition: 4, epoch: 7, offset: 10 }, failures });

const task = (s: TaskStore, checkpointRecords = 3, duplicateWindow = 0) =>
  StreamTask.claim({
    duplicateWindow,
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

  test('a started checkpoint is written while the next records are handled; one in flight at a time', async () => {
    const s = store();
    let release = () => {};
    const inner = s.checkpoint;
    s.checkpoint = async (cp) => {
      await new Promise<void>((r) => {
        release = r;
      });
      await inner(cp);
    };
    const tk = await task(s);
    tk.handle(10, record(ev('x', T0, { instance_id: 'a' })));
    tk.handle(11, record(ev('x', T0 + MINUTE, { instance_id: 'a' })));
    tk.handle(12, record(ev('x', T0 + 2 * MINUTE, { instance_id: 'b' })));
    assert.equal(tk.checkpointDue(), true);
    const written = tk.startCheckpoint();
    assert.equal(tk.checkpointInFlight, true);
    assert.equal(tk.checkpointDue(), false, 'counted from the start of the one in flight');
    assert.throws(() => tk.startCheckpoint(), /already in flight/);
    tk.handle(13, record(ev('fire.me', T0 + 3 * MINUTE, { instance_id: 'a' })));
    tk.handle(14, record(ev('x', T0 + 4 * MINUTE, { instance_id: 'c' })));
    assert.equal(tk.committedOffset, 10, 'nothing committed yet');
    await new Promise((r) => setImmediate(r));
    release();
    assert.equal(await written, true);
    assert.equal(tk.checkpointInFlight, false);
    assert.equal(tk.committedOffset, 13);
    assert.equal(tk.counts.checkpoints, 1);
    const next = tk.checkpoint();
    await new Promise((r) => setImmediate(r));
    release();
    assert.equal(await next, true);
    const [first, second] = s.cps as [Checkpoint, Checkpoint];
    assert.equal(first.offset, 13);
    assert.deepEqual(
      first.streams.map((x) => [x.id, x.expectedVersion]),
      [
        ['p4-1', null],
        ['p4-2', null],
      ],
    );
    assert.equal(first.events.length, 3);
    assert.equal(second.offset, 15);
    assert.equal(second.events.length, 2, 'only the records handled while the first was written');
    assert.deepEqual(
      second.streams.map((x) => [x.id, x.expectedVersion, x.state]),
      [
        ['p4-3', null, 'active'],
        ['p4-1', 3, 'completed'],
      ],
      'p4-1 closes as an update from the version the first checkpoint wrote',
    );
    assert.equal(tk.committedOffset, 15);
  });

  test('a checkpoint that fails in flight leaves the task failed; settle() throws its error', async () => {
    const lost = store([new OwnershipLostError('se', 4, 'epoch', 'epoch 7 is no longer current')]);
    const tk = await task(lost);
    tk.handle(10, record(ev('x', T0, { instance_id: 'a' })));
    const written = tk.startCheckpoint();
    tk.handle(11, record(ev('x', T0 + MINUTE, { instance_id: 'a' })));
    await assert.rejects(written, OwnershipLostError);
    assert.equal(tk.failed, true);
    await assert.rejects(tk.settle(), OwnershipLostError);
    await assert.rejects(tk.checkpoint(), OwnershipLostError, 'never written after a failure');
    assert.equal(tk.committedOffset, 10);
    assert.deepEqual(lost.cps, []);
  });

  test('recent_closed is pruned only by a checkpoint at whose time a stored row can have expired', async () => {
    const s = store();
    const tk = await task(s, 1000, HOUR);
    tk.handle(10, record(ev('x', T0, { instance_id: 'a' })));
    tk.handle(11, record(ev('fire.me', T0 + MINUTE, { instance_id: 'a' })));
    tk.handle(12, encodeTick(T0 + 2 * MINUTE)); // fires a: its ids are remembered until about T0 + 1h
    await tk.checkpoint();
    tk.handle(13, encodeTick(T0 + 30 * MINUTE));
    await tk.checkpoint();
    tk.handle(14, encodeTick(T0 + 3 * HOUR));
    await tk.checkpoint();
    tk.handle(15, encodeTick(T0 + 4 * HOUR));
    await tk.checkpoint();
    const [closing, before, after, later] = s.cps as Checkpoint[];
    assert.equal(closing?.recent?.length, 1, 'the closing checkpoint stores the ids');
    assert.equal(closing?.pruneRecent, false, 'nothing stored can have expired yet');
    assert.equal(before?.pruneRecent, false);
    assert.equal(after?.pruneRecent, true, 'its time is past the stored row');
    assert.equal(later?.pruneRecent, false, 'nothing is left to expire');
  });

  test('a claim streamed in chunks: the event loop turns between them, and the task resumes every stream', async () => {
    // The rows a previous owner stored: stream 1 of key a (two ids), stream 2 of a trigger no longer
    // configured, stream 3 of key b, handed over one page at a time.
    const row = (seq: number, key: string, ids: string[], trig = 'usage') => ({
      id: `p4-${seq}`,
      seq,
      trigger: trig,
      key,
      first: T0,
      last: T0,
      expireAt: T0 + HOUR,
      fireAt: null,
      version: 5,
      counts: [0],
      messageIds: ids,
    });
    const aKey = def.match(ev('x', T0, { instance_id: 'a' }), T0);
    const bKey = def.match(ev('x', T0, { instance_id: 'b' }), T0);
    assert.ok(aKey.matched && bKey.matched, 'the builder trigger keys both instances');
    const pages = [
      [row(1, aKey.key, ['m-1', 'm-2'])],
      [row(2, 'gone-key', ['m-3'], 'gone'), row(3, bKey.key, ['m-4'])],
    ];
    let ticks = 0;
    const cps: Checkpoint[] = [];
    const streaming: TaskStore = {
      claimPartition: async (topic, partition, sink) => {
        assert.ok(sink !== undefined, 'the task asks for the rows as they are read');
        const timer = setInterval(() => ticks++, 0);
        try {
          for (const page of pages) {
            const before = ticks;
            await sink(page);
            await new Promise((resolve) => setTimeout(resolve, 5));
            assert.ok(ticks > before, 'timers (heartbeats) run while the claim goes on');
          }
        } finally {
          clearInterval(timer);
        }
        const snapshot = { nextSeq: 4, now: null, streams: [], recent: [] };
        return { topic, partition, epoch: 7, offset: 10, nextSeq: 4, liveStreams: [], snapshot };
      },
      loadStreamEvents: async () => [],
      checkpoint: async (cp) => {
        cps.push(cp);
      },
    };
    const tk = await task(streaming, 1000);
    assert.equal(tk.counts.byTrigger.get('usage')?.active, 2);
    tk.handle(10, record(ev('x', T0 + 1, { instance_id: 'a' }, 'm-2'))); // a duplicate of a stored id
    tk.handle(11, record(ev('x', T0 + 2, { instance_id: 'b' }, 'm-5')));
    tk.handle(12, record(ev('x', T0 + 3, { instance_id: 'c' }, 'm-6')));
    await tk.checkpoint();
    assert.equal(tk.counts.duplicates, 1);
    const [cp] = cps;
    assert.ok(cp, 'one checkpoint');
    assert.deepEqual(
      cp.streams.map((w) => [w.id, w.expectedVersion, w.version, w.state]),
      [
        ['p4-3', 5, 6, 'active'],
        ['p4-4', null, 2, 'active'],
        ['p4-2', 5, 6, 'error'],
      ],
      'restored streams update from their stored version; the next id follows the stored ones',
    );
  });
});
