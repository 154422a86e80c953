import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type Checkpoint,
  CheckpointStore,
  OwnershipLostError,
  type StreamWrite,
} from '../../../src/db/checkpoint-store.js';
import { DatabaseError } from '../../../src/db/errors.js';
import { type DatabasePool, sql } from '../../../src/db/pool.js';
import { datetime, type Event, float, int, type TraitValue, text } from '../../../src/model/event.js';
import { INTEGRATION_TIMEOUT_MS } from '../../helpers/integration.js';
import { migratedDatabase } from './schema.js';

const T0 = 1_421_893_822_702_356; // 2015-01-22T02:30:22.702356Z, µs
const HOUR = 3_600_000_000;
const opts = { timeout: INTEGRATION_TIMEOUT_MS };

function ev(id: string, timestamp: number, traits: Event['traits'] = {}): Event {
  return { message_id: id, event_type: 'compute.instance.exists', timestamp, traits };
}

function newStream(seq: number, over: Partial<StreamWrite> = {}): StreamWrite {
  return {
    id: `p3-${seq}`,
    expectedVersion: null,
    version: 2,
    state: 'active',
    seq,
    trigger: 'instance_usage',
    key: `[["instance_id","t","i-${seq}"]]`,
    distinguishing: { instance_id: text(`i-${seq}`) },
    first: T0,
    last: T0 + 10,
    expireAt: T0 + HOUR,
    fireAt: null,
    counts: [1, 0],
    ...over,
  };
}

function checkpoint(epoch: number, over: Partial<Checkpoint> = {}): Checkpoint {
  return {
    topic: 'events',
    partition: 3,
    epoch,
    offset: 0,
    nextSeq: 1,
    streams: [],
    events: [],
    outbox: [],
    ...over,
  };
}

async function partitionRow(pool: DatabasePool) {
  return pool.one(
    sql.unsafe`SELECT epoch, "offset", next_seq FROM partition_checkpoints WHERE topic = 'events' AND partition = 3`,
  );
}

async function count(pool: DatabasePool, table: 'streams' | 'stream_events' | 'outbox'): Promise<number> {
  return Number(await pool.oneFirst(sql.unsafe`SELECT count(*) FROM ${sql.identifier([table])}`));
}

describe('CheckpointStore', () => {
  test(
    'remembered message ids of closed streams survive a re-claim and are deleted once their time passed',
    opts,
    async (t) => {
      const db = await migratedDatabase(t, 'it_ckpt_recent');
      const store = new CheckpointStore(db.pool);
      const claim = await store.claimPartition('events', 3);
      const row = (key: string, until: number, ids: string[]) => ({
        trigger: 'instance_usage',
        key,
        streamId: `s-${key}`,
        version: 4,
        until,
        messageIds: ids,
      });
      await store.checkpoint(
        checkpoint(claim.epoch, {
          recent: [row('a', T0 + HOUR, ['m1', 'm2']), row('b', T0 + 2 * HOUR, ['m3'])],
          now: T0,
        }),
      );
      // The key closed again: its row is replaced by the engine's union of ids and its later time.
      await store.checkpoint(
        checkpoint(claim.epoch, { recent: [row('a', T0 + 3 * HOUR, ['m1', 'm2', 'm4'])], now: T0 }),
      );
      const again = await store.claimPartition('events', 3);
      assert.deepEqual(
        [...(again.snapshot.recent ?? [])].sort((x, y) => x.key.localeCompare(y.key)),
        [row('a', T0 + 3 * HOUR, ['m1', 'm2', 'm4']), row('b', T0 + 2 * HOUR, ['m3'])],
      );
      // Time passes beyond b's window: the next checkpoint deletes it, a's stays.
      await store.checkpoint(checkpoint(again.epoch, { now: T0 + 2 * HOUR + 1 }));
      const third = await store.claimPartition('events', 3);
      assert.deepEqual(
        (third.snapshot.recent ?? []).map((r) => r.key),
        ['a'],
      );
      assert.equal(
        third.snapshot.now,
        T0 + 2 * HOUR + 1,
        'the engine time of the last checkpoint comes back',
      );
      await store.checkpoint(checkpoint(third.epoch, {}));
      assert.equal(
        (await store.claimPartition('events', 3)).snapshot.now,
        T0 + 2 * HOUR + 1,
        'kept when not given',
      );
      const other = await store.claimPartition('events', 4);
      assert.deepEqual(other.snapshot.recent, [], 'rows belong to their partition');
    },
  );

  test('claim, checkpoint, re-claim: the engine resumes from what was committed', opts, async (t) => {
    const db = await migratedDatabase(t, 'it_ckpt');
    const store = new CheckpointStore(db.pool);

    const first = await store.claimPartition('events', 3);
    assert.deepEqual(
      { epoch: first.epoch, offset: first.offset, nextSeq: first.nextSeq, streams: first.liveStreams },
      { epoch: 1, offset: null, nextSeq: 1, streams: [] },
    );

    await store.checkpoint(
      checkpoint(first.epoch, {
        offset: 42,
        nextSeq: 3,
        streams: [
          newStream(1),
          newStream(2, { state: 'firing', version: 3, fireAt: T0 + 5, closedAt: T0 + 20 }),
        ],
        events: [
          { streamId: 'p3-1', event: ev('m-b', T0 + 10) },
          { streamId: 'p3-1', event: ev('m-a', T0) },
          { streamId: 'p3-1', event: ev('m-b', T0 + 10) }, // a duplicate in the same batch is ignored
          { streamId: 'p3-2', event: ev('m-c', T0) },
        ],
        outbox: [
          {
            batchId: 'p3-2:fire',
            streamId: 'p3-2',
            kind: 'fire',
            messageKey: 'p3-2',
            payload: '{"ratio":1.0}',
          },
        ],
      }),
    );

    const second = await store.claimPartition('events', 3);
    assert.equal(second.epoch, 2);
    assert.equal(second.offset, 42);
    assert.equal(second.nextSeq, 3);
    // Only the active stream is live; message ids come back in arrival order.
    assert.deepEqual(second.liveStreams, [
      {
        id: 'p3-1',
        seq: 1,
        trigger: 'instance_usage',
        key: '[["instance_id","t","i-1"]]',
        first: T0,
        last: T0 + 10,
        expireAt: T0 + HOUR,
        fireAt: null,
        version: 2,
        counts: [1, 0],
        messageIds: ['m-b', 'm-a'],
      },
    ]);
    assert.deepEqual(second.snapshot, { nextSeq: 3, now: null, streams: second.liveStreams, recent: [] });
    assert.deepEqual(
      (await store.loadStreamEvents('p3-1')).map((e) => e.message_id),
      ['m-a', 'm-b'],
      'events read back by timestamp',
    );
    assert.deepEqual(await store.loadStreamEvents('nope'), []);
    const many = await store.loadEventsOfStreams(['p3-1', 'p3-2', 'nope']);
    assert.deepEqual(
      [...many].map(([id, events]) => [id, events.map((e) => e.message_id)]),
      [
        ['p3-1', ['m-a', 'm-b']],
        ['p3-2', ['m-c']],
        ['nope', []],
      ],
      'several streams in one query, each by timestamp',
    );
    assert.deepEqual(many.get('p3-1'), await store.loadStreamEvents('p3-1'));

    // The next checkpoint updates the stream from the version it read (2) and closes it.
    await store.checkpoint(
      checkpoint(second.epoch, {
        offset: 50,
        nextSeq: 3,
        streams: [{ id: 'p3-1', expectedVersion: 2, version: 4, state: 'expiring', closedAt: T0 + 2 * HOUR }],
        events: [{ streamId: 'p3-1', event: ev('m-d', T0 + 10) }],
        outbox: [
          { batchId: 'p3-1:expire', streamId: 'p3-1', kind: 'expire', messageKey: null, payload: '{}' },
        ],
      }),
    );
    const stored = await db.pool.one(
      sql.unsafe`SELECT state, version, last_event, expire_at, criterion_counts, closed_at FROM streams WHERE id = 'p3-1'`,
    );
    assert.deepEqual(
      {
        ...stored,
        last_event: Number(stored.last_event),
        expire_at: Number(stored.expire_at),
        closed_at: Number(stored.closed_at),
      },
      {
        state: 'expiring',
        version: 4,
        last_event: T0 + 10,
        expire_at: T0 + HOUR,
        criterion_counts: [1, 0],
        closed_at: T0 + 2 * HOUR,
      },
      'omitted fields keep their stored values',
    );
    assert.deepEqual(
      (await store.loadStreamEvents('p3-1')).map((e) => e.message_id),
      ['m-a', 'm-b', 'm-d'],
      'equal timestamps read back in arrival order',
    );
    assert.deepEqual((await store.claimPartition('events', 3)).liveStreams, []);

    const outbox = await store.unpublishedOutbox();
    assert.deepEqual(
      outbox.map(({ id: _, ...rest }) => rest),
      [
        {
          batchId: 'p3-2:fire',
          streamId: 'p3-2',
          kind: 'fire',
          messageKey: 'p3-2',
          payload: '{"ratio":1.0}',
        },
        { batchId: 'p3-1:expire', streamId: 'p3-1', kind: 'expire', messageKey: null, payload: '{}' },
      ],
    );
    assert.equal(await store.markPublished([outbox[0]!.id]), 1);
    assert.equal(await store.markPublished([outbox[0]!.id]), 0, 'already published');
    assert.deepEqual(
      (await store.unpublishedOutbox()).map((o) => o.batchId),
      ['p3-1:expire'],
    );
    assert.equal((await store.unpublishedOutbox(1)).length, 1);
    assert.equal(await store.markPublished([]), 0);
  });

  test('a stale stream version throws OwnershipLostError and writes nothing', opts, async (t) => {
    const db = await migratedDatabase(t, 'it_ckpt_ver');
    const store = new CheckpointStore(db.pool);
    const { epoch } = await store.claimPartition('events', 3);
    await store.checkpoint(checkpoint(epoch, { offset: 10, nextSeq: 2, streams: [newStream(1)] }));

    const stale = checkpoint(epoch, {
      offset: 20,
      nextSeq: 3,
      streams: [newStream(2), { id: 'p3-1', expectedVersion: 1, version: 3, state: 'active', last: T0 + 99 }],
      events: [{ streamId: 'p3-1', event: ev('m-x', T0 + 99) }],
      outbox: [{ batchId: 'b', streamId: 'p3-1', kind: 'fire', messageKey: null, payload: '{}' }],
    });
    await assert.rejects(store.checkpoint(stale), (error) => {
      assert.ok(error instanceof OwnershipLostError);
      assert.equal(error.reason, 'version');
      assert.equal(error.retriable, false);
      assert.match(error.message, /events\[3\].*p3-1.*version 1/);
      return true;
    });
    const row = await partitionRow(db.pool);
    assert.equal(Number(row.offset), 10, 'offset not advanced');
    assert.equal(Number(row.next_seq), 2);
    assert.equal(
      await count(db.pool, 'streams'),
      1,
      'the new stream of the failed checkpoint was rolled back',
    );
    assert.equal(await count(db.pool, 'stream_events'), 0);
    assert.equal(await count(db.pool, 'outbox'), 0);

    // Re-inserting a stream that exists is the same situation (another owner opened it).
    await assert.rejects(
      store.checkpoint(
        checkpoint(epoch, { offset: 30, nextSeq: 2, streams: [newStream(1, { version: 1 })] }),
      ),
      (error) => error instanceof OwnershipLostError && error.reason === 'exists',
    );
    assert.equal(Number((await partitionRow(db.pool)).offset), 10);
  });

  test('a checkpoint with the epoch of a superseded claim throws OwnershipLostError', opts, async (t) => {
    const db = await migratedDatabase(t, 'it_ckpt_epoch');
    const store = new CheckpointStore(db.pool);
    const old = await store.claimPartition('events', 3);
    await store.checkpoint(checkpoint(old.epoch, { offset: 5, nextSeq: 1 }));
    const current = await store.claimPartition('events', 3);
    assert.equal(current.epoch, old.epoch + 1);
    assert.equal(current.offset, 5);

    await assert.rejects(
      store.checkpoint(checkpoint(old.epoch, { offset: 9, nextSeq: 2, streams: [newStream(1)] })),
      (error) =>
        error instanceof OwnershipLostError && error.reason === 'epoch' && /epoch 1/.test(error.message),
    );
    assert.equal(Number((await partitionRow(db.pool)).offset), 5);
    assert.equal(await count(db.pool, 'streams'), 0);
    // The new owner goes on; partitions and topics are independent.
    await store.checkpoint(checkpoint(current.epoch, { offset: 9, nextSeq: 2, streams: [newStream(1)] }));
    assert.equal((await store.claimPartition('events', 4)).epoch, 1);
    assert.equal((await store.claimPartition('other', 3)).epoch, 1);
    await assert.rejects(
      store.checkpoint(checkpoint(1, { partition: 99 })),
      (error) => error instanceof OwnershipLostError && error.reason === 'epoch',
      'a partition never claimed is not owned',
    );
  });

  test(
    'typed traits round-trip: int stays int, 1.0 stays float, datetimes keep microseconds',
    opts,
    async (t) => {
      const db = await migratedDatabase(t, 'it_ckpt_traits');
      const store = new CheckpointStore(db.pool);
      const { epoch } = await store.claimPartition('events', 3);
      let event = ev('m-1', T0, {
        memory_mb: int(15360),
        big: int(Number.MAX_SAFE_INTEGER),
        negative: int(-7),
        ratio: float(1.0),
        half: float(0.5),
        tiny: float(5e-324),
        launched_at: datetime(1_421_712_000_000_001),
        before_1970: datetime(-1_000_001),
        host: text('compute-1'),
        numeric_text: text('1.0'),
        unicode: text('zürich 東京 "quoted" \\ \n'),
      });
      // Trait names that are Object.prototype members must stay plain data on the way back.
      const traits = Object.assign(Object.create(null), event.traits) as Record<string, TraitValue>;
      for (const [name, value] of [
        ['__proto__', text('proto')],
        ['constructor', int(1)],
      ] as const) {
        Object.defineProperty(traits, name, { value, enumerable: true, writable: true, configurable: true });
      }
      event = { ...event, traits };
      await store.checkpoint(
        checkpoint(epoch, {
          offset: 1,
          nextSeq: 2,
          streams: [newStream(1)],
          events: [{ streamId: 'p3-1', event }],
        }),
      );
      const [back] = await store.loadStreamEvents('p3-1');
      assert.deepEqual({ ...back, traits: { ...back!.traits } }, { ...event, traits: { ...event.traits } });
      assert.equal(Object.getPrototypeOf(back!.traits), null);
      assert.deepEqual(Object.getOwnPropertyDescriptor(back!.traits, '__proto__')?.value, text('proto'));
      assert.equal(Object.keys(back!.traits).length, 13);
      // What SQL sees is typed too (usable in ad-hoc queries and by other tools).
      const ratio = await db.pool.one(
        sql.unsafe`SELECT traits->'ratio'->>'type' AS type, jsonb_typeof(traits->'ratio'->'value') AS json FROM stream_events`,
      );
      assert.deepEqual(ratio, { type: 'float', json: 'number' });

      await assert.rejects(
        store.checkpoint(
          checkpoint(epoch, {
            offset: 2,
            nextSeq: 2,
            events: [{ streamId: 'p3-1', event: ev('m-2', T0, { x: float(Number.NaN) }) }],
          }),
        ),
        /trait 'x' \(float\) cannot be stored/,
      );
    },
  );

  test('a statement failing mid-checkpoint leaves the previous checkpoint intact', opts, async (t) => {
    const db = await migratedDatabase(t, 'it_ckpt_crash');
    const store = new CheckpointStore(db.pool);
    const { epoch } = await store.claimPartition('events', 3);
    await store.checkpoint(
      checkpoint(epoch, {
        offset: 10,
        nextSeq: 2,
        streams: [newStream(1)],
        events: [{ streamId: 'p3-1', event: ev('m-1', T0) }],
      }),
    );

    // The partition row, a new stream and a stream update succeed; then an event of a stream that does not
    // exist violates the foreign key, as a crash between statements would stop the transaction.
    const failing = checkpoint(epoch, {
      offset: 20,
      nextSeq: 3,
      streams: [newStream(2), { id: 'p3-1', expectedVersion: 2, version: 3, state: 'active', last: T0 + 5 }],
      events: [
        { streamId: 'p3-1', event: ev('m-2', T0 + 5) },
        { streamId: 'p3-404', event: ev('m-3', T0) },
      ],
    });
    await assert.rejects(store.checkpoint(failing), (error) => {
      assert.ok(error instanceof DatabaseError, 'a failed statement is not an ownership loss');
      assert.equal(error.retriable, false);
      assert.match(error.message, /^checkpointing events\[3\]: .*stream_events.*foreign key/i);
      return true;
    });
    const row = await partitionRow(db.pool);
    assert.deepEqual([Number(row.offset), Number(row.next_seq)], [10, 2]);
    const again = await store.claimPartition('events', 3);
    assert.deepEqual(
      again.liveStreams.map((s) => [s.id, s.version, s.last, s.messageIds]),
      [['p3-1', 2, T0 + 10, ['m-1']]],
    );

    // And a stream moved to a state it cannot reach is refused by the database (state machine).
    await assert.rejects(
      store.checkpoint(
        checkpoint(again.epoch, {
          offset: 11,
          nextSeq: 2,
          streams: [{ id: 'p3-1', expectedVersion: 2, version: 3, state: 'retry_fire' }],
        }),
      ),
      /state active cannot change to retry_fire/,
    );
    assert.equal(Number((await partitionRow(db.pool)).offset), 10);
  });

  test('malformed checkpoints are refused before touching the database', opts, async (t) => {
    const db = await migratedDatabase(t, 'it_ckpt_bad');
    const store = new CheckpointStore(db.pool);
    const { epoch } = await store.claimPartition('events', 3);
    const { trigger: _, ...noTrigger } = newStream(1);
    await assert.rejects(
      store.checkpoint(checkpoint(epoch, { streams: [noTrigger] })),
      /new stream p3-1 lacks trigger/,
    );
    await assert.rejects(
      store.checkpoint(
        checkpoint(epoch, { streams: [{ id: 'p3-1', expectedVersion: 3, version: 3, state: 'active' }] }),
      ),
      /version 3 is not after 3/,
    );
    await assert.rejects(
      store.checkpoint(checkpoint(epoch, { streams: [newStream(1), newStream(1)] })),
      /twice/,
    );
    await assert.rejects(store.checkpoint(checkpoint(epoch, { offset: -1 })), /offset must be an integer/);
    assert.equal(Number((await partitionRow(db.pool)).offset ?? -1), -1);
  });
});
