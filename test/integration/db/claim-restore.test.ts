/**
 * The claim's read of a partition's live streams (session 4 of issue #7): keyset pages, streamed to a
 * sink or returned, message ids from the stream row while it is current (migration 0006) and from
 * stream_events otherwise. Every case compares the claim with what stream_events itself says.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type Checkpoint,
  CheckpointStore,
  ROW_MESSAGE_IDS_MAX,
  type StreamWrite,
} from '../../../src/db/checkpoint-store.js';
import { type DatabasePool, sql } from '../../../src/db/pool.js';
import type { StreamRow } from '../../../src/engine/state.js';
import { type Event, text } from '../../../src/model/event.js';
import { INTEGRATION_TIMEOUT_MS } from '../../helpers/integration.js';
import { migratedDatabase } from './schema.js';

const T0 = 1_421_893_822_702_356;
const HOUR = 3_600_000_000;
const opts = { timeout: INTEGRATION_TIMEOUT_MS };

const ev = (id: string, timestamp = T0): Event => ({
  message_id: id,
  event_type: 'compute.instance.update',
  timestamp,
  traits: {},
});

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
    last: T0,
    expireAt: T0 + HOUR,
    fireAt: null,
    counts: [0, 1],
    ...over,
  };
}

function cp(epoch: number, over: Partial<Checkpoint>): Checkpoint {
  return {
    topic: 'events',
    partition: 3,
    epoch,
    offset: 1,
    nextSeq: 1,
    streams: [],
    events: [],
    outbox: [],
    ...over,
  };
}

/** The ids as stream_events holds them, in arrival order: what the claim must give back. */
async function storedIds(pool: DatabasePool, id: string): Promise<string[]> {
  const rows = await pool.anyFirst(
    sql.unsafe`SELECT message_id FROM stream_events WHERE stream_id = ${id} ORDER BY ord`,
  );
  return rows.map(String);
}

async function rowIds(pool: DatabasePool, id: string): Promise<{ ids: unknown; current: boolean }> {
  const row = await pool.one(
    sql.unsafe`SELECT message_ids, message_ids_version = version AS current FROM streams WHERE id = ${id}`,
  );
  return { ids: row.message_ids, current: row.current === true };
}

/** Claims with a sink, returning the pages it was given and the claim. */
async function claimPages(store: CheckpointStore) {
  const pages: StreamRow[][] = [];
  const claim = await store.claimPartition('events', 3, (rows) => {
    pages.push(rows);
  });
  return { pages, claim };
}

describe('claimPartition: restore of the live streams', () => {
  test('an empty partition: no page, no stream, epoch bumped', opts, async (t) => {
    const db = await migratedDatabase(t, 'it_restore_empty');
    const store = new CheckpointStore(db.pool, { claimChunk: 2 });
    const { pages, claim } = await claimPages(store);
    assert.deepEqual(pages, []);
    assert.deepEqual(claim.liveStreams, []);
    assert.equal(claim.epoch, 1);
    assert.deepEqual(claim.snapshot, { nextSeq: 1, now: null, streams: [], recent: [] });
  });

  test('pages by seq skip closed streams; sink and return give the same rows', opts, async (t) => {
    const db = await migratedDatabase(t, 'it_restore_pages');
    const store = new CheckpointStore(db.pool, { claimChunk: 2 });
    const first = await store.claimPartition('events', 3);
    const streams = [
      newStream(1),
      newStream(2, { state: 'firing', version: 3, closedAt: T0 + 5, counts: [] }),
      newStream(3, { fireAt: T0 + 7, counts: [1, 1] }),
      newStream(4, { id: 'legacy-4' }),
      newStream(5, { state: 'completed', version: 3, closedAt: T0 + 5, counts: [] }),
      newStream(6, { counts: [] }),
      newStream(7),
    ];
    // Ids that need quoting in an array literal or escaping in JSON come back exactly.
    const odd = ['a,b', 'q"uote', '{brace}', 'back\\slash', 'NULL', ' sp ace', 'ünï', ''];
    await store.checkpoint(
      cp(first.epoch, {
        nextSeq: 8,
        streams,
        events: [
          ...streams.map((s) => ({ streamId: s.id, event: ev(`m-${s.seq}`) })),
          ...odd.map((id) => ({ streamId: 'p3-3', event: ev(id) })),
          { streamId: 'p3-6', event: ev('m-6') }, // a duplicate: stored once
          { streamId: 'p3-6', event: ev('m-6b') },
        ],
      }),
    );
    const { pages, claim } = await claimPages(store);
    assert.deepEqual(
      pages.map((p) => p.map((r) => r.id)),
      [['p3-1', 'p3-3'], ['legacy-4', 'p3-6'], ['p3-7']],
    );
    assert.deepEqual(claim.liveStreams, [], 'rows handed to the sink are not returned too');
    const returned = await store.claimPartition('events', 3);
    assert.deepEqual(pages.flat(), returned.liveStreams);
    assert.deepEqual(returned.snapshot.streams, returned.liveStreams);
    const byId = new Map(returned.liveStreams.map((r) => [r.id, r]));
    assert.deepEqual(byId.get('p3-3'), {
      id: 'p3-3',
      seq: 3,
      trigger: 'instance_usage',
      key: '[["instance_id","t","i-3"]]',
      first: T0,
      last: T0,
      expireAt: T0 + HOUR,
      fireAt: T0 + 7,
      version: 2,
      counts: [1, 1],
      messageIds: ['m-3', ...odd],
    });
    assert.deepEqual(byId.get('p3-6')?.counts, []);
    for (const r of returned.liveStreams) {
      assert.deepEqual(
        r.messageIds,
        await storedIds(db.pool, r.id),
        `${r.id}: ids as stream_events has them`,
      );
      assert.ok((await rowIds(db.pool, r.id)).current, `${r.id}: its row keeps its ids`);
    }
    assert.deepEqual(await rowIds(db.pool, 'p3-2'), { ids: null, current: false }, 'closed: no ids kept');
  });

  test(
    'ids kept on the row across checkpoints; a long stream and a foreign writer fall back to stream_events',
    opts,
    async (t) => {
      const db = await migratedDatabase(t, 'it_restore_ids');
      const store = new CheckpointStore(db.pool);
      const first = await store.claimPartition('events', 3);
      const half = Math.ceil(ROW_MESSAGE_IDS_MAX / 2) + 1;
      const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
      await store.checkpoint(
        cp(first.epoch, {
          nextSeq: 4,
          streams: [newStream(1), newStream(2), newStream(3)],
          events: [
            ...ids('a', half).map((id) => ({ streamId: 'p3-1', event: ev(id) })),
            { streamId: 'p3-2', event: ev('b-0') },
            { streamId: 'p3-3', event: ev('c-0') },
          ],
        }),
      );
      assert.ok((await rowIds(db.pool, 'p3-1')).current, 'a short list is kept');
      // Second checkpoint: p3-1 grows past the cap, p3-2 takes one more id (and a repeat of its first),
      // p3-3 only changes version.
      await store.checkpoint(
        cp(first.epoch, {
          offset: 2,
          nextSeq: 4,
          streams: [
            { id: 'p3-1', expectedVersion: 2, version: 3, state: 'active', last: T0 + 1 },
            { id: 'p3-2', expectedVersion: 2, version: 3, state: 'active', last: T0 + 1 },
            { id: 'p3-3', expectedVersion: 2, version: 3, state: 'active', fireAt: T0 + 9 },
          ],
          events: [
            ...ids('a2', half).map((id) => ({ streamId: 'p3-1', event: ev(id, T0 + 1) })),
            { streamId: 'p3-2', event: ev('b-0') },
            { streamId: 'p3-2', event: ev('b-1', T0 + 1) },
          ],
        }),
      );
      assert.deepEqual(await rowIds(db.pool, 'p3-1'), { ids: null, current: false }, 'too long: dropped');
      assert.deepEqual(await rowIds(db.pool, 'p3-2'), { ids: ['b-0', 'b-1'], current: true });
      assert.deepEqual(await rowIds(db.pool, 'p3-3'), { ids: ['c-0'], current: true });
      // Something that does not keep the list bumps p3-3's version (a pipeline worker, an older release).
      await db.pool.query(sql.unsafe`UPDATE streams SET version = version + 1 WHERE id = 'p3-3'`);
      await db.pool.query(sql.unsafe`INSERT INTO stream_events (stream_id, message_id, event_type, "timestamp", traits)
      VALUES ('p3-3', 'c-1', 'x', ${T0}, '{}')`);
      const claim = await store.claimPartition('events', 3);
      assert.equal(claim.liveStreams.length, 3);
      for (const r of claim.liveStreams) {
        assert.deepEqual(
          r.messageIds,
          await storedIds(db.pool, r.id),
          `${r.id}: ids as stream_events has them`,
        );
      }
      assert.equal(claim.liveStreams[0]?.messageIds.length, 2 * half);
      assert.deepEqual(claim.liveStreams[2]?.messageIds, ['c-0', 'c-1']);
      // A checkpoint of a stream whose list is not current leaves it not current (never a partial list).
      await store.checkpoint(
        cp(claim.epoch, {
          offset: 3,
          nextSeq: 4,
          streams: [{ id: 'p3-3', expectedVersion: 4, version: 5, state: 'active', last: T0 + 2 }],
          events: [{ streamId: 'p3-3', event: ev('c-2', T0 + 2) }],
        }),
      );
      assert.deepEqual(await rowIds(db.pool, 'p3-3'), { ids: null, current: false });
      const again = await store.claimPartition('events', 3);
      assert.deepEqual(again.liveStreams[2]?.messageIds, ['c-0', 'c-1', 'c-2']);
    },
  );

  test('a row without ids (written before migration 0006) is read from stream_events', opts, async (t) => {
    const db = await migratedDatabase(t, 'it_restore_legacy');
    const store = new CheckpointStore(db.pool);
    const first = await store.claimPartition('events', 3);
    await store.checkpoint(
      cp(first.epoch, {
        nextSeq: 2,
        streams: [newStream(1)],
        events: [
          { streamId: 'p3-1', event: ev('x-2') },
          { streamId: 'p3-1', event: ev('x-1') },
        ],
      }),
    );
    await db.pool.query(
      sql.unsafe`UPDATE streams SET message_ids = NULL, message_ids_version = NULL WHERE id = 'p3-1'`,
    );
    const claim = await store.claimPartition('events', 3);
    assert.deepEqual(claim.liveStreams[0]?.messageIds, ['x-2', 'x-1'], 'arrival order, not timestamp order');
  });

  test('a sink that throws: the error comes out unchanged and the claim is rolled back', opts, async (t) => {
    const db = await migratedDatabase(t, 'it_restore_sink');
    const store = new CheckpointStore(db.pool);
    const first = await store.claimPartition('events', 3);
    await store.checkpoint(
      cp(first.epoch, {
        nextSeq: 2,
        streams: [newStream(1)],
        events: [{ streamId: 'p3-1', event: ev('m') }],
      }),
    );
    const boom = new TypeError('engine refused the row');
    await assert.rejects(
      store.claimPartition('events', 3, () => {
        throw boom;
      }),
      (error: unknown) => error === boom,
    );
    const epoch = await db.pool.oneFirst(
      sql.unsafe`SELECT epoch FROM partition_checkpoints WHERE topic = 'events' AND partition = 3`,
    );
    assert.equal(Number(epoch), first.epoch, 'the failed claim did not bump the epoch');
  });

  test('the chunk size must be a positive integer', () => {
    const pool = {} as DatabasePool;
    assert.throws(() => new CheckpointStore(pool, { claimChunk: 0 }), /claimChunk must be an integer ≥ 1/);
    assert.throws(() => new CheckpointStore(pool, { claimChunk: 1.5 }), /claimChunk/);
  });
});
