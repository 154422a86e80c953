import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { loadConfig, type WinchesterConfig } from '../../../src/config/index.js';
import { keyPartition, PartitionCache } from '../../../src/kafka/partitioner.js';
import {
  decodeStreamRecord,
  encodeStreamEvent,
  streamEventHead,
  streamRecordKey,
} from '../../../src/kafka/records.js';
import type { Event, TraitValue } from '../../../src/model/event.js';
import { generateNotifications } from '../../../src/notigen/index.js';
import { jsonCodec, type RecordCodec } from '../../../src/serde/codec.js';
import { MAX_INSTANT, MIN_INSTANT } from '../../../src/timex/instant.js';
import { distinguishingKey } from '../../../src/triggers/key.js';
import type { DistinguishingValues, TriggerDefinition, TriggerMatch } from '../../../src/triggers/types.js';
import {
  appendEventRecords,
  type InboundMessage,
  type OutboundMessage,
  Router,
  RouterWorker,
  StreamRecordCache,
} from '../../../src/worker/router.js';

// ---- arbitraries: any event, any distinguishing values ------------------------------------------

const anyText = fc.string({ unit: 'binary' });

const traitArb: fc.Arbitrary<TraitValue> = fc.oneof(
  anyText.map((value) => ({ type: 'text' as const, value })),
  fc
    .oneof(fc.maxSafeInteger(), fc.constantFrom(0, 1, -1))
    .map((value) => ({ type: 'int' as const, value: value === 0 ? 0 : value })),
  fc
    .oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(1, -0, 0, 1e21, 5e-324))
    .map((value) => ({ type: 'float' as const, value })),
  fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT }).map((value) => ({ type: 'datetime' as const, value })),
);

const nameArb = fc.oneof(anyText, fc.constantFrom('__proto__', 'constructor', 'timestamp', ''));

const eventArb: fc.Arbitrary<Event> = fc.record({
  message_id: anyText.filter((s) => s !== ''),
  event_type: anyText.filter((s) => s !== ''),
  timestamp: fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT }),
  traits: fc
    .uniqueArray(fc.tuple(nameArb, traitArb), { selector: ([n]) => n, maxLength: 8 })
    .map((entries) => {
      const traits: Record<string, TraitValue> = Object.create(null);
      for (const [n, v] of entries) traits[n] = v;
      return traits;
    }),
});

const distinguishingArb: fc.Arbitrary<DistinguishingValues> = fc
  .uniqueArray(
    fc.tuple(
      nameArb.filter((n) => n !== '__proto__'),
      fc.oneof(
        traitArb.map((t) => t as DistinguishingValues[string]),
        fc
          .tuple(fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT }), fc.integer({ min: 0, max: 1e12 }))
          .map(([begin, d]) => ({ type: 'range' as const, begin, end: begin + d })),
      ),
    ),
    { selector: ([n]) => n, maxLength: 3 },
  )
  .map((entries) => {
    const out: Record<string, DistinguishingValues[string]> = {};
    for (const [n, v] of entries) out[n] = v;
    return Object.freeze(out);
  });

/** A trigger that matches with the values it is given (or not at all), as a compiled one would. */
function fakeTrigger(name: string, result: () => TriggerMatch): TriggerDefinition {
  return { name, match: () => result() } as unknown as TriggerDefinition;
}

/** What appendEventRecords wrote before it cached anything: the generic encoder's text, its key, partition. */
function expectedRecord(
  trigger: string,
  match: TriggerMatch & { matched: true },
  event: Event,
  watermark: number | undefined,
  partitions: number | undefined,
): OutboundMessage {
  const key = streamRecordKey(trigger, match.key);
  const value = Buffer.from(
    encodeStreamEvent({
      trigger,
      key: match.key,
      distinguishing: match.distinguishing,
      event,
      ...(watermark === undefined ? {} : { watermark }),
    }),
  );
  return partitions === undefined
    ? { topic: 'se', key, value }
    : { topic: 'se', key, value, partition: keyPartition(key, partitions) };
}

describe('appendEventRecords', () => {
  test('property: every record is byte for byte the generic encoding, cached or not, and decodes to the event', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            event: eventArb,
            // Index into the streams below, so streams recur (cache hits) across events.
            stream: fc.nat({ max: 3 }),
            watermark: fc.option(fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT }), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        fc.array(distinguishingArb, { minLength: 4, maxLength: 4 }),
        fc.array(anyText, { minLength: 1, maxLength: 3 }),
        fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }),
        (items, streams, triggerNames, partitionCount) => {
          const names = [...new Set(triggerNames)];
          let current: TriggerMatch = { matched: false, reason: 'no_criterion_matched' };
          // One frozen result per stream, handed out again for its every event (as the trigger memo does).
          const results = streams.map(
            (d): TriggerMatch =>
              Object.freeze({ matched: true, distinguishing: d, key: distinguishingKey(d) }),
          );
          const triggers = names.map((n) => fakeTrigger(n, () => current));
          const cached = {
            triggers,
            streamEventsTopic: 'se',
            ...(partitionCount === undefined ? {} : { partitions: new PartitionCache(partitionCount) }),
            streams: new StreamRecordCache(triggers.length),
          };
          const plain = {
            triggers,
            streamEventsTopic: 'se',
            ...(partitionCount === undefined ? {} : { partitions: new PartitionCache(partitionCount) }),
          };
          for (const item of items) {
            current = results[item.stream] as TriggerMatch;
            const a: OutboundMessage[] = [];
            const b: OutboundMessage[] = [];
            assert.equal(appendEventRecords(a, item.event, cached, item.watermark), names.length);
            assert.equal(appendEventRecords(b, item.event, plain, item.watermark), names.length);
            const expected = names.map((n) =>
              expectedRecord(
                n,
                current as TriggerMatch & { matched: true },
                item.event,
                item.watermark,
                partitionCount,
              ),
            );
            assert.deepEqual(a, expected);
            assert.deepEqual(b, expected);
            for (const m of a) {
              const r = decodeStreamRecord(String(m.value));
              assert.equal(r.type, 'event');
              if (r.type === 'event') assert.equal(r.event.message_id, item.event.message_id);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('two sets of values with one key (a float -0 and 0) each get their own record head', () => {
    const zero: DistinguishingValues = Object.freeze({ x: { type: 'float', value: 0 } });
    const minusZero: DistinguishingValues = Object.freeze({ x: { type: 'float', value: -0 } });
    const key = distinguishingKey(zero);
    assert.equal(distinguishingKey(minusZero), key, 'the canonical key folds -0 into 0');
    let d = zero;
    const triggers = [fakeTrigger('t', () => ({ matched: true, distinguishing: d, key }))];
    const target = { triggers, streamEventsTopic: 'se', streams: new StreamRecordCache(1) };
    const event: Event = { message_id: 'm', event_type: 'e', timestamp: 1, traits: Object.create(null) };
    for (const values of [zero, minusZero, zero, minusZero]) {
      d = values;
      const out: OutboundMessage[] = [];
      appendEventRecords(out, event, target);
      const r = decodeStreamRecord(String(out[0]?.value));
      assert.ok(r.type === 'event');
      const x = r.distinguishing.x as { value: number };
      assert.ok(Object.is(x.value, (values.x as { value: number }).value), 'the values of this event');
    }
  });

  test('a codec other than JSON is used as it is, its text values sent as UTF-8 bytes', () => {
    const calls: string[] = [];
    const codec: RecordCodec = {
      ...jsonCodec,
      format: 'avro',
      encodeStreamEvent: (r) => {
        calls.push(r.trigger);
        return `custom ${r.key} é`;
      },
    };
    const triggers = [
      fakeTrigger('t', () => ({ matched: true, distinguishing: {}, key: '[]' })),
      fakeTrigger('u', () => ({ matched: false, reason: 'no_criterion_matched' })),
    ];
    const out: OutboundMessage[] = [];
    const target = { triggers, streamEventsTopic: 'se', codec, streams: new StreamRecordCache(2) };
    assert.equal(
      appendEventRecords(out, { message_id: 'm', event_type: 'e', timestamp: 1, traits: {} }, target),
      1,
    );
    assert.deepEqual(calls, ['t']);
    assert.deepEqual(out, [{ topic: 'se', key: '"t"[]', value: Buffer.from('custom [] é', 'utf8') }]);
  });
});

describe('StreamRecordCache', () => {
  test('remembers the parts per frozen values object (weakly); values built anew are not remembered', () => {
    const cache = new StreamRecordCache(2);
    const partitions = new PartitionCache(5);
    const values = Array.from({ length: 10 }, (_, i) =>
      Object.freeze({ n: { type: 'int' as const, value: i } }),
    );
    const first = values.map((d) => cache.parts(0, 't', distinguishingKey(d), d, partitions, true));
    for (let i = 0; i < values.length; i++) {
      const d = values[i]!;
      const key = streamRecordKey('t', distinguishingKey(d));
      assert.equal(first[i]?.key, key);
      assert.equal(first[i]?.partition, keyPartition(key, 5));
      assert.equal(first[i]?.head, streamEventHead('t', distinguishingKey(d), d));
      assert.equal(cache.parts(0, 't', distinguishingKey(d), d, partitions, true), first[i], 'a hit');
    }
    const other = cache.parts(1, 'u', distinguishingKey(values[0]!), values[0]!, partitions, true);
    assert.notEqual(other, first[0], 'each trigger has its own');
    assert.equal(other.key, streamRecordKey('u', distinguishingKey(values[0]!)));
    // Equal values in another (frozen) object: built again, the same.
    const twin = Object.freeze({ n: { type: 'int' as const, value: 0 } });
    const again = cache.parts(0, 't', distinguishingKey(twin), twin, partitions, true);
    assert.notEqual(again, first[0]);
    assert.deepEqual(again, first[0]);
    // Not frozen: nothing is remembered for it.
    const loose = { n: { type: 'int' as const, value: 3 } };
    const a = cache.parts(0, 't', distinguishingKey(loose), loose, partitions, true);
    const b = cache.parts(0, 't', distinguishingKey(loose), loose, partitions, true);
    assert.notEqual(a, b);
    assert.deepEqual(a, b);
    assert.equal(
      cache.parts(0, 't', distinguishingKey(values[1]!), values[1]!, undefined, false).head,
      undefined,
    );
  });
});

// ---- the router's state and the pipelined worker -----------------------------------------------

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
    streamEventsPartitions: 4,
  });

const notifications = (count: number, seed = 7): InboundMessage[] =>
  [...generateNotifications({ seed, instances: 4, days: 1, count })].map((n, i) => ({
    offset: String(i),
    key: null,
    value: Buffer.from(JSON.stringify(n)),
  }));

describe('Router.snapshot / restore', () => {
  test('restore forgets exactly what was routed after the snapshot', () => {
    const r = router();
    const input = notifications(60);
    input.push({ offset: '60', key: null, value: Buffer.from('{bad') });
    r.route('n', 0, input.slice(0, 30));
    const snap = r.snapshot();
    const before = JSON.stringify(r.counts);
    const time = r.highestEventTime;
    r.route('n', 0, input.slice(30));
    assert.notEqual(JSON.stringify(r.counts), before, 'the second part counted');
    assert.equal(r.counts.deadLettered.invalid_json, 1);
    r.restore(snap);
    assert.equal(JSON.stringify(r.counts), before);
    assert.equal(r.highestEventTime, time);
    assert.equal(r.counts.deadLettered.invalid_json, undefined);
    // Routing the second part again counts as if it had been routed once.
    const once = router();
    once.route('n', 0, input);
    r.route('n', 0, input.slice(30));
    assert.deepEqual(r.counts, once.counts);
    assert.equal(r.highestEventTime, once.highestEventTime);
  });
});

describe('RouterWorker.handleBatch (pipelined)', () => {
  interface Gate {
    readonly size: number;
    release(): void;
    fail(error: Error): void;
  }

  /** A send port whose every request waits until the test releases (or fails) it. */
  function gatedSend(log: string[]) {
    const gates: Gate[] = [];
    let waiter: (() => void) | undefined;
    const send = (messages: readonly OutboundMessage[]) =>
      new Promise<void>((resolve, reject) => {
        log.push(`send ${messages.length}`);
        gates.push({ size: messages.length, release: resolve, fail: reject });
        waiter?.();
      });
    /** The next request (waits for it). */
    const next = async (): Promise<Gate> => {
      while (gates.length === 0) await new Promise<void>((r) => (waiter = r));
      return gates.shift() as Gate;
    };
    return { send, next };
  }

  const payload = (messages: InboundMessage[], log: string[], stale = () => false) => ({
    batch: { topic: 'n', partition: 0, messages } as never,
    resolveOffset: (o: string) => void log.push(`resolve ${o}`),
    heartbeat: async () => void log.push('heartbeat'),
    isRunning: () => true,
    isStale: stale,
    commitOffsetsIfNecessary: async () => void log.push('commit'),
  });

  const worker = (r: Router, send: (m: readonly OutboundMessage[]) => Promise<void>) =>
    new RouterWorker({
      router: r,
      consumer: {} as never,
      send,
      notificationsTopic: 'n',
      streamEventsPartitions: 4,
      tickIntervalMs: 0,
      clockMode: 'event',
      now: () => 0,
      chunkSize: 10,
    });

  test('the next chunk is routed while one is in flight; sends stay one at a time; offsets follow the acks', async () => {
    const log: string[] = [];
    const r = router();
    const { send, next } = gatedSend(log);
    const w = worker(r, send);
    const handling = w.handleBatch(payload(notifications(25), log));
    const first = await next();
    // Chunk 2 is routed (counted) while chunk 1 waits for its acks, and not sent before them.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(r.counts.notifications, 20, 'two chunks routed');
    assert.deepEqual(log, [`send ${first.size}`], 'one request in flight');
    await w.tick();
    assert.deepEqual(log, [`send ${first.size}`], 'nothing acknowledged: no event-time tick yet');
    first.release();
    const second = await next();
    assert.deepEqual(log.slice(1, 3), ['resolve 9', 'heartbeat']);
    second.release();
    const third = await next();
    third.release();
    await handling;
    assert.deepEqual(log.slice(3), [
      `send ${second.size}`,
      'resolve 19',
      'heartbeat',
      `send ${third.size}`,
      'resolve 24',
      'heartbeat',
      'commit',
    ]);
    const once = router();
    once.route('n', 0, notifications(25));
    assert.deepEqual(r.counts, once.counts, 'each notification counted once');
  });

  test('a failed send: earlier chunks stay resolved, the failed one and the next are not, nothing is counted twice', async () => {
    const log: string[] = [];
    const r = router();
    const { send, next } = gatedSend(log);
    const handling = worker(r, send).handleBatch(payload(notifications(30), log));
    (await next()).release();
    (await next()).fail(new Error('broker down'));
    await assert.rejects(handling, /broker down/);
    assert.deepEqual(
      log.filter((l) => l.startsWith('resolve') || l === 'commit'),
      ['resolve 9'],
    );
    // The counters cover the two chunks handed to the producer (as before pipelining), not the third.
    const two = router();
    two.route('n', 0, notifications(30).slice(0, 20));
    assert.deepEqual(r.counts, two.counts);
  });

  test('a batch gone stale while a chunk was in flight: the routed next chunk is not sent nor counted', async () => {
    const log: string[] = [];
    const r = router();
    const { send, next } = gatedSend(log);
    let stale = false;
    const handling = worker(r, send).handleBatch(payload(notifications(30), log, () => stale));
    const first = await next();
    await new Promise((resolve) => setImmediate(resolve));
    stale = true;
    first.release();
    await handling;
    assert.deepEqual(log, [`send ${first.size}`, 'resolve 9', 'heartbeat']);
    const one = router();
    one.route('n', 0, notifications(30).slice(0, 10));
    assert.deepEqual(r.counts, one.counts);
  });

  test('by default a batch is cut so the pipeline has two chunks: halves of at least 100, at most 500', async () => {
    const resolved = async (count: number): Promise<string[]> => {
      const log: string[] = [];
      const messages: InboundMessage[] = Array.from({ length: count }, (_, i) => ({
        offset: String(i),
        key: null,
        value: Buffer.from('{}'),
      }));
      const w = new RouterWorker({
        router: router(),
        consumer: {} as never,
        send: async () => undefined,
        notificationsTopic: 'n',
        streamEventsPartitions: 4,
        tickIntervalMs: 0,
        clockMode: 'wall',
        now: () => 0,
      });
      await w.handleBatch(payload(messages, log));
      return log.filter((l) => l.startsWith('resolve'));
    };
    assert.deepEqual(await resolved(370), ['resolve 184', 'resolve 369'], 'one 1 MiB fetch: two halves');
    assert.deepEqual(await resolved(150), ['resolve 99', 'resolve 149'], 'chunks of at least 100');
    assert.deepEqual(await resolved(80), ['resolve 79'], 'a small batch in one chunk');
    assert.deepEqual(await resolved(1200), ['resolve 499', 'resolve 999', 'resolve 1199'], 'at most 500');
  });

  test('a registry failure before routing a chunk still lets the one in flight finish first', async () => {
    const log: string[] = [];
    const r = router();
    let prepared = 0;
    (r as unknown as { prepare: () => Promise<void> }).prepare = async () => {
      prepared++;
      if (prepared === 2) throw new Error('registry unreachable');
    };
    const { send, next } = gatedSend(log);
    const handling = worker(r, send).handleBatch(payload(notifications(30), log));
    const first = await next();
    setImmediate(() => first.release());
    await assert.rejects(handling, /registry unreachable/);
    assert.deepEqual(log, [`send ${first.size}`, 'resolve 9', 'heartbeat']);
  });
});
