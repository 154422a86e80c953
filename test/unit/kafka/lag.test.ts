import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fetchConsumerLag } from '../../../src/kafka/lag.js';

type LagAdmin = Parameters<typeof fetchConsumerLag>[0];

/** An admin whose two requests answer after `delays` ms (or fail), counting the requests still in flight. */
function fakeAdmin(o: { offsetsFail?: boolean; endsFail?: boolean }) {
  let inFlight = 0;
  const calls: string[] = [];
  const later = <T>(what: string, ms: number, fail: boolean, value: T): Promise<T> => {
    calls.push(what);
    inFlight++;
    return new Promise<T>((resolve, reject) =>
      setTimeout(() => {
        inFlight--;
        if (fail)
          reject(
            Object.assign(new Error('This server does not host this topic-partition'), {
              name: 'KafkaJSProtocolError',
              type: 'UNKNOWN_TOPIC_OR_PARTITION',
              retriable: true,
            }),
          );
        else resolve(value);
      }, ms),
    );
  };
  const admin = {
    fetchOffsets: () =>
      later('fetchOffsets', 5, o.offsetsFail ?? false, [
        {
          topic: 't',
          partitions: [
            { partition: 1, offset: '3', metadata: null },
            { partition: 0, offset: '-1', metadata: null },
          ],
        },
      ]),
    fetchTopicOffsets: () =>
      later('fetchTopicOffsets', 30, o.endsFail ?? false, [
        { partition: 0, offset: '9', high: '9', low: '2' },
        { partition: 1, offset: '8', high: '8', low: '0' },
      ]),
  } as unknown as LagAdmin;
  return { admin, calls, inFlight: () => inFlight };
}

test('fetchConsumerLag: per partition, high watermark minus committed (retained records when none)', async () => {
  const { admin, inFlight } = fakeAdmin({});
  assert.deepEqual(await fetchConsumerLag(admin, 'g', 't'), [
    { partition: 0, highWatermark: 9, committed: null, lag: 7 },
    { partition: 1, highWatermark: 8, committed: 3, lag: 5 },
  ]);
  assert.equal(inFlight(), 0);
});

test('fetchConsumerLag never settles with a request still running (it would outlive the admin and leak its connection)', async () => {
  for (const failing of [{ offsetsFail: true }, { endsFail: true }, { offsetsFail: true, endsFail: true }]) {
    const { admin, inFlight, calls } = fakeAdmin(failing);
    await assert.rejects(fetchConsumerLag(admin, 'g', 'missing'), /fetching the lag of group g on missing/);
    assert.equal(inFlight(), 0, `${JSON.stringify(failing)}: ${calls.join(', ')}`);
  }
  // A missing topic fails the group's offsets at once; the watermarks are not even asked for.
  const { admin, calls } = fakeAdmin({ offsetsFail: true });
  await assert.rejects(fetchConsumerLag(admin, 'g', 'missing'));
  assert.deepEqual(calls, ['fetchOffsets']);
});
