import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { loadConfig, type WinchesterConfig } from '../../../src/config/index.js';
import { kafkajsKeyPartition } from '../../../src/kafka/partitioner.js';
import { decodeStreamRecord, streamRecordKey } from '../../../src/kafka/records.js';
import { generateNotifications } from '../../../src/notigen/index.js';
import {
  type InboundMessage,
  type OutboundMessage,
  producerSendPort,
  Router,
  RouterWorker,
} from '../../../src/worker/router.js';

let config: WinchesterConfig;
before(async () => {
  config = await loadConfig('etc/winchester.yaml', { env: {} });
});

const router = () =>
  new Router({
    distiller: config.distiller!,
    triggers: config.triggers,
    streamEventsTopic: 'se',
    deadLetterTopic: 'dl',
  });

const msg = (offset: number, value: string | null, key: string | null = null): InboundMessage => ({
  offset: String(offset),
  key: key === null ? null : Buffer.from(key),
  value: value === null ? null : Buffer.from(value),
});

describe('Router (pure core)', () => {
  test('each matched trigger gives one keyed record; malformed input is dead-lettered with its reason', () => {
    const notifications = [
      ...generateNotifications({ seed: 3, instances: 3, days: 1, count: 40, osloEnvelope: 0.3 }),
    ];
    const r = router();
    const input = [
      ...notifications.map((n, i) => msg(i, JSON.stringify(n))),
      msg(100, '{not json', 'k1'),
      msg(101, null),
      msg(
        102,
        JSON.stringify({ event_type: 'nobody.cares', message_id: 'x', timestamp: '2015-02-01 00:00:00' }),
      ),
      msg(103, '[1,2]'),
    ];
    const out = r.route('notifications', 2, input);
    const records = out.filter((m) => m.topic === 'se');
    const dead = out.filter((m) => m.topic === 'dl');
    assert.equal(r.counts.notifications, input.length);
    assert.equal(r.counts.records, records.length);
    assert.ok(records.length > 0);
    for (const m of records) {
      const rec = decodeStreamRecord(String(m.value));
      assert.equal(rec.type, 'event');
      if (rec.type !== 'event') continue;
      assert.equal(m.key, streamRecordKey(rec.trigger, rec.key), 'keyed by trigger + stream key');
      const def = config.triggers.find((d) => d.name === rec.trigger)!;
      const again = def.match(rec.event, rec.event.timestamp);
      assert.ok(again.matched && again.key === rec.key, 'the decoded event matches the same stream');
    }
    assert.deepEqual(
      dead.map((m) => [
        m.headers?.['winchester-reason'],
        m.headers?.['winchester-offset'],
        m.headers?.['winchester-partition'],
        m.headers?.['winchester-topic'],
      ]),
      [
        ['invalid_json', '100', '2', 'notifications'],
        ['empty_value', '101', '2', 'notifications'],
        ['not_an_object', '103', '2', 'notifications'],
      ],
    );
    assert.equal(String(dead[0]!.key), 'k1', 'the original key is kept');
    assert.equal(String(dead[0]!.value), '{not json', 'the original value is kept');
    assert.deepEqual({ ...r.counts.deadLettered }, { invalid_json: 1, empty_value: 1, not_an_object: 1 });
    assert.equal(r.counts.unmatched, 1);
    assert.ok(r.highestEventTime !== null);
  });

  test('with the partition count, each record carries the partition kafkajs would choose for its key; nothing else changes', () => {
    const input = [
      ...generateNotifications({ seed: 5, instances: 20, days: 1, count: 300, osloEnvelope: 0.2 }),
    ].map((n, i) => msg(i, JSON.stringify(n)));
    input.push(msg(999, '{not json'));
    for (const partitions of [1, 7, 12]) {
      const plain = router().route('n', 0, input);
      const withPartitions = new Router({
        distiller: config.distiller!,
        triggers: config.triggers,
        streamEventsTopic: 'se',
        deadLetterTopic: 'dl',
        streamEventsPartitions: partitions,
      }).route('n', 0, input);
      assert.equal(withPartitions.length, plain.length);
      const used = new Set<number>();
      for (let i = 0; i < plain.length; i++) {
        const { partition, ...rest } = withPartitions[i]!;
        assert.deepEqual(rest, plain[i], 'same record, same order');
        if (rest.topic === 'dl') {
          assert.equal(partition, undefined, 'dead letters keep the default partitioner');
          continue;
        }
        assert.equal(partition, kafkajsKeyPartition(String(rest.key), partitions));
        used.add(partition!);
      }
      assert.equal(used.size > 1, partitions > 1, 'streams spread over the partitions');
    }
  });

  test('an oslo-wrapped notification routes exactly like the bare one', () => {
    const bare = [...generateNotifications({ seed: 9, instances: 2, count: 10 })];
    const wrapped = bare.map((n) => ({ 'oslo.version': '2.0', 'oslo.message': JSON.stringify(n) }));
    const a = router().route(
      'n',
      0,
      bare.map((n, i) => msg(i, JSON.stringify(n))),
    );
    const b = router().route(
      'n',
      0,
      wrapped.map((n, i) => msg(i, JSON.stringify(n))),
    );
    assert.ok(a.length > 0);
    assert.deepEqual(b, a);
  });

  test('oversize input is dead-lettered, never produced: a notification over the limit, an event too large to send', () => {
    const [n] = [...generateNotifications({ seed: 5, instances: 1, days: 1, count: 1 })];
    const notification = n as Record<string, unknown>;
    const small = new Router({
      distiller: config.distiller!,
      triggers: config.triggers,
      streamEventsTopic: 'se',
      deadLetterTopic: 'dl',
      maxNotificationBytes: 2000,
    });
    const huge = JSON.stringify({ ...notification, padding: 'x'.repeat(5 * 1024 * 1024) });
    const out = small.route('n', 0, [msg(7, huge, 'k')]);
    assert.equal(out.length, 1);
    const dl = out[0] as OutboundMessage;
    assert.equal(dl.topic, 'dl');
    assert.equal(dl.headers?.['winchester-reason'], 'too_large');
    assert.equal(dl.headers?.['winchester-truncated-from'], String(Buffer.byteLength(huge)));
    assert.equal(
      (dl.value as Buffer).length,
      512 * 1024,
      'the dead-lettered value is cut to what the topic takes',
    );
    assert.deepEqual({ ...small.counts.deadLettered }, { too_large: 1 });

    // Within the notification limit, but the display_name trait (event_definitions.yaml) carries 2 MB:
    // every stream-events record would be refused by the broker.
    const payload = (notification.payload ?? {}) as Record<string, unknown>;
    const bloated = JSON.stringify({
      ...notification,
      payload: { ...payload, display_name: 'y'.repeat(2_000_000) },
    });
    const normal = router();
    assert.ok(normal.route('n', 0, [msg(1, JSON.stringify(notification))]).some((m) => m.topic === 'se'));
    const big = new Router({
      distiller: config.distiller!,
      triggers: config.triggers,
      streamEventsTopic: 'se',
      deadLetterTopic: 'dl',
      maxNotificationBytes: 10 * 1024 * 1024,
    });
    const res = big.route('n', 0, [msg(2, bloated)]);
    assert.deepEqual(
      res.map((m) => [m.topic, m.headers?.['winchester-reason']]),
      [['dl', 'event_too_large']],
    );
    assert.deepEqual(
      big.counts.matched,
      big.counts.matched.map(() => 0),
      'not counted as matched',
    );
    assert.equal(big.counts.records, 0);
    assert.equal(big.counts.events, 0);
  });

  test('ticks go to every partition explicitly', () => {
    const ticks = router().ticks(3, 5_000_000);
    assert.deepEqual(
      ticks.map((t) => t.partition),
      [0, 1, 2],
    );
    for (const t of ticks)
      assert.deepEqual(decodeStreamRecord(String(t.value)), { type: 'tick', time: 5_000_000 });
  });
});

describe('RouterWorker.handleBatch', () => {
  const batchPayload = (messages: InboundMessage[], log: string[], opts: { staleAfter?: number } = {}) => {
    let heartbeats = 0;
    return {
      batch: { topic: 'n', partition: 0, messages } as never,
      resolveOffset: (o: string) => void log.push(`resolve ${o}`),
      heartbeat: async () => {
        heartbeats++;
        log.push('heartbeat');
      },
      isRunning: () => true,
      isStale: () => opts.staleAfter !== undefined && heartbeats >= opts.staleAfter,
      commitOffsetsIfNecessary: async () => void log.push('commit'),
    };
  };

  test('offsets are resolved only after the chunk was acknowledged, with a heartbeat per chunk', async () => {
    const log: string[] = [];
    const sent: OutboundMessage[][] = [];
    const worker = new RouterWorker({
      router: router(),
      consumer: {} as never,
      send: async (m) => {
        sent.push([...m]);
        log.push(`send ${m.length}`);
      },
      notificationsTopic: 'n',
      streamEventsPartitions: 1,
      tickIntervalMs: 0,
      clockMode: 'wall',
      now: () => 0,
      chunkSize: 2,
    });
    const messages = [0, 1, 2, 3, 4].map((i) => msg(i, '{}'));
    await worker.handleBatch(batchPayload(messages, log));
    assert.deepEqual(log, [
      'send 2',
      'resolve 1',
      'heartbeat',
      'send 2',
      'resolve 3',
      'heartbeat',
      'send 1',
      'resolve 4',
      'heartbeat',
      'commit',
    ]);
  });

  test('a failed send resolves nothing (the batch is fetched again)', async () => {
    const log: string[] = [];
    const worker = new RouterWorker({
      router: router(),
      consumer: {} as never,
      notificationsTopic: 'n',
      streamEventsPartitions: 1,
      tickIntervalMs: 0,
      clockMode: 'wall',
      now: () => 0,
      send: async () => {
        throw new Error('broker down');
      },
    });
    await assert.rejects(worker.handleBatch(batchPayload([msg(0, '{}')], log)), /broker down/);
    assert.deepEqual(log, []);
  });

  test('a batch that went stale after a rebalance stops without resolving the rest', async () => {
    const log: string[] = [];
    const worker = new RouterWorker({
      router: router(),
      consumer: {} as never,
      notificationsTopic: 'n',
      streamEventsPartitions: 1,
      tickIntervalMs: 0,
      clockMode: 'wall',
      now: () => 0,
      chunkSize: 1,
      send: async () => void log.push('send'),
    });
    await worker.handleBatch(
      batchPayload([msg(0, '{}'), msg(1, '{}'), msg(2, '{}')], log, { staleAfter: 1 }),
    );
    assert.deepEqual(log, ['send', 'resolve 0', 'heartbeat']);
  });

  test('ticks: wall time, or the highest routed event time (none before the first event)', async () => {
    const sent: OutboundMessage[] = [];
    const r = router();
    const mk = (clockMode: 'wall' | 'event') =>
      new RouterWorker({
        router: r,
        consumer: {} as never,
        notificationsTopic: 'n',
        streamEventsPartitions: 2,
        tickIntervalMs: 0,
        clockMode,
        now: () => 42,
        send: async (m) => void sent.push(...m),
      });
    await mk('event').tick();
    assert.equal(sent.length, 0);
    await mk('wall').tick();
    assert.deepEqual(
      sent.map((m) => decodeStreamRecord(String(m.value))),
      [
        { type: 'tick', time: 42 },
        { type: 'tick', time: 42 },
      ],
    );
    const worker = mk('event');
    const log: string[] = [];
    const notes = [...generateNotifications({ seed: 1, count: 3 })].map((n, i) => msg(i, JSON.stringify(n)));
    // While the produce is in flight, a tick must not carry the time of the unacknowledged events.
    let release: () => void = () => {};
    const inFlight = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = new RouterWorker({
      router: r,
      consumer: {} as never,
      notificationsTopic: 'n',
      streamEventsPartitions: 2,
      tickIntervalMs: 0,
      clockMode: 'event',
      now: () => 42,
      send: async (m) => {
        if (m[0]?.partition === undefined) await inFlight;
        sent.push(...m);
      },
    });
    const handling = slow.handleBatch(batchPayload(notes, log));
    sent.length = 0;
    await slow.tick();
    assert.equal(sent.length, 0, 'no tick before the first acknowledged event');
    release();
    await handling;
    sent.length = 0;
    await slow.tick();
    assert.ok(r.highestEventTime !== null);
    assert.deepEqual(
      sent.map((m) => decodeStreamRecord(String(m.value))),
      [
        { type: 'tick', time: r.highestEventTime },
        { type: 'tick', time: r.highestEventTime },
      ],
    );
    sent.length = 0;
    await worker.tick();
    assert.equal(sent.length, 0, 'each worker ticks with what it has itself produced');
  });
});

describe('producerSendPort', () => {
  test('requests are cut by size, in order, one oversized message alone; nothing sent for nothing', async () => {
    const requests: string[][] = [];
    const send = producerSendPort(
      {
        sendBatch: async (b: { topicMessages?: { topic: string; messages: { value: unknown }[] }[] }) => {
          requests.push(
            (b.topicMessages ?? []).flatMap((tm) => tm.messages.map((m) => `${tm.topic}:${String(m.value)}`)),
          );
          return [];
        },
      } as never,
      10,
    );
    await send([]);
    assert.equal(requests.length, 0);
    const m = (topic: string, value: string): OutboundMessage => ({ topic, key: null, value });
    await send([m('a', '1234'), m('b', '5678'), m('a', '90'), m('a', 'x'.repeat(30)), m('a', 'y')]);
    // 4 + 4 + 2 bytes fit in 10 (grouped by topic within a request); 30 bytes go alone.
    assert.deepEqual(requests, [['a:1234', 'a:90', 'b:5678'], [`a:${'x'.repeat(30)}`], ['a:y']]);
  });
});
