import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { OutboxRow } from '../../../src/db/checkpoint-store.js';
import { EventTimeClock } from '../../../src/engine/clock.js';
import { encodeTick } from '../../../src/kafka/records.js';
import type { Consumer } from '../../../src/kafka/types.js';
import { OutboxPublisher } from '../../../src/worker/stream-task.js';
import { StreamsWorker } from '../../../src/worker/streams-worker.js';
import { memoryTaskStore, streamEventRecord, usageTrigger } from '../../helpers/stream-task.js';
import { ev, MINUTE, T0 } from '../engine/builder.js';

const def = usageTrigger('fire_pipe');

/** A consumer whose offset commits hang until released, as a slow group coordinator would. */
function slowCommitConsumer() {
  const commits: { offsets: unknown; release: () => void }[] = [];
  const consumer = {
    events: { GROUP_JOIN: 'consumer.group_join' },
    on: () => () => undefined,
    connect: async () => undefined,
    subscribe: async () => undefined,
    run: async () => undefined,
    stop: async () => undefined,
    disconnect: async () => undefined,
    commitOffsets: (offsets: unknown) =>
      new Promise<void>((resolve) => {
        commits.push({ offsets, release: resolve });
      }),
    seek: () => undefined,
  };
  return { consumer: consumer as unknown as Consumer, commits };
}

/** A caught-up batch (offset lag '0') of partition 0. */
function caughtUp(values: string[]) {
  const messages = values.map((v, i) => ({ offset: String(i), key: null, value: Buffer.from(v) }));
  return {
    batch: {
      topic: 'se',
      partition: 0,
      messages,
      firstOffset: () => '0',
      offsetLag: () => '0',
    },
    heartbeat: async () => undefined,
    resolveOffset: () => undefined,
    isRunning: () => true,
    isStale: () => false,
  } as unknown as Parameters<StreamsWorker['handleBatch']>[0];
}

const until = async (what: string, ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(ok(), `timed out waiting for ${what}`);
};

describe('streams stage: publication after a checkpoint', () => {
  test('a batch is published once its checkpoint commits, without waiting for the informational offset commit', async () => {
    const outbox: (OutboxRow & { published: boolean })[] = [];
    const store = memoryTaskStore({
      claim: { offset: null, nextSeq: 1, liveStreams: [] },
      failures: [],
      onCheckpoint: (cp) => {
        for (const w of cp.outbox) outbox.push({ ...w, id: outbox.length + 1, published: false });
      },
    });
    const sent: string[] = [];
    const publisher = new OutboxPublisher(
      {
        unpublishedOutbox: async () => outbox.filter((r) => !r.published),
        markPublished: async (ids) => {
          for (const r of outbox) if (ids.includes(r.id)) r.published = true;
          return ids.length;
        },
      },
      async (rows) => {
        // Published only once the checkpoint that wrote the row committed (it is in the outbox).
        for (const r of rows) sent.push(r.batchId);
      },
    );
    const { consumer, commits } = slowCommitConsumer();
    const worker = new StreamsWorker({
      consumer,
      topic: 'se',
      publisher,
      taskOptions: (partition) => ({
        store,
        topic: 'se',
        partition,
        triggers: [def],
        clock: new EventTimeClock(0),
        checkpointMs: 1e9,
      }),
    });
    await worker.start();
    await worker.handleBatch(
      caughtUp([
        streamEventRecord(def, ev('fire.me', T0, { instance_id: 'a' }, 'a1')),
        encodeTick(T0 + MINUTE), // `a` fires
      ]),
    );
    await until('the batch to be published', () => outbox.length === 1 && outbox[0]?.published === true);
    assert.equal(sent.length, 1, 'one batch produced');
    assert.equal(store.cps.length, 1, 'by the caught-up checkpoint');
    assert.equal(commits.length, 1, 'the offset commit was requested');
    let settled = false;
    const done = worker.settled().then(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(settled, false, 'settled() still waits for the offset commit');
    assert.deepEqual(commits[0]?.offsets, [{ topic: 'se', partition: 0, offset: '2' }]);
    commits[0]?.release();
    await done;
    for (const c of commits) c.release();
    await worker.stop();
  });
});
