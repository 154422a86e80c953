import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EventTimeClock } from '../../../src/engine/clock.js';
import { decodeBatch } from '../../../src/kafka/records.js';
import type { Event } from '../../../src/model/event.js';
import type { AvroCodec } from '../../../src/serde/avro-codec.js';
import { frame } from '../../../src/serde/codec.js';
import { StreamTask } from '../../../src/worker/stream-task.js';
import { startAvroCodec } from '../../helpers/avro-registry.js';
import { memoryTaskStore, usageTrigger } from '../../helpers/stream-task.js';
import { ev, HOUR, MINUTE, T0 } from '../engine/builder.js';
import type { FakeRegistry } from './fake-registry.js';

const def = usageTrigger('usage_pipe');

describe('StreamTask with the Avro record codec', () => {
  let registry: FakeRegistry;
  let codec: AvroCodec;
  before(async () => {
    ({ registry, codec } = await startAvroCodec());
  });
  after(() => registry.close());

  const record = (e: Event): Buffer => {
    const m = def.match(e, e.timestamp);
    assert.ok(m.matched);
    return codec.encodeStreamEvent({
      trigger: def.name,
      key: m.key,
      distinguishing: m.distinguishing,
      event: e,
    });
  };

  test('Avro records fire a stream whose outbox payload is JSON; an unknown schema id is undecodable', async () => {
    const s = memoryTaskStore();
    const tk = await StreamTask.claim({
      store: s,
      topic: 'se',
      partition: 0,
      triggers: [def],
      clock: new EventTimeClock(0),
      checkpointRecords: 1000,
      checkpointMs: 1e9,
      nowMs: () => 0,
      codec,
    });
    const unknown = frame(31337, Buffer.from([0]));
    const values = [
      record(ev('x', T0, { instance_id: 'a', n: 1 })),
      unknown,
      record(ev('fire.me', T0 + MINUTE, { instance_id: 'a' })),
      codec.encodeTick(T0 + HOUR),
    ];
    await tk.prepare(values);
    for (const [i, v] of values.entries()) tk.handle(i, v);
    assert.equal(tk.counts.undecodable, 1);
    assert.equal(tk.counts.ticks, 1);
    assert.equal(tk.counts.fired, 1);
    await tk.checkpoint();
    const cp = s.cps[0]!;
    assert.equal(cp.offset, 4);
    assert.equal(cp.outbox.length, 1);
    const batch = decodeBatch(cp.outbox[0]!.payload);
    assert.equal(batch.events.length, 2);
    assert.deepStrictEqual(batch.events[0]?.traits.n, { type: 'int', value: 1 });
  });
});
