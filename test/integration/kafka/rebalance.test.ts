import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createProducer } from '../../../src/kafka/kafka.js';
import type { Consumer } from '../../../src/kafka/types.js';
import { INTEGRATION_TIMEOUT_MS, uniqueName } from '../../helpers/integration.js';
import { Inbox, startConsumer, testAdmin, testKafka, testTopic } from '../../helpers/kafka.js';

const PARTITIONS = 4;

/** Tracks the partitions a consumer was last assigned, from its GROUP_JOIN instrumentation events. */
function trackAssignment(consumer: Consumer, topic: string): () => number[] {
  let assigned: number[] = [];
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    assigned = [...(event.payload.memberAssignment[topic] ?? [])].sort((a, b) => a - b);
  });
  return () => assigned;
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('a second consumer joining the group takes over part of the partitions; each message is consumed once', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const kafka = testKafka('it-rebalance');
  const admin = await testAdmin(t, kafka);
  const topic = await testTopic(t, admin, 'it-rebalance', { numPartitions: PARTITIONS });
  const groupId = uniqueName('it-rebalance-group');

  const producer = createProducer(kafka);
  await producer.connect();
  t.after(() => producer.disconnect());
  const produce = async (round: string, count: number) => {
    const messages = Array.from({ length: count }, (_, i) => ({
      partition: i % PARTITIONS,
      value: `${round}-${i}`,
    }));
    await producer.send({ topic, messages });
    return messages.map((m) => m.value);
  };

  // Short fetch waits and heartbeats: the first consumer must notice the rebalance quickly.
  const consumerOptions = { groupId, sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200 };
  const inbox = new Inbox();

  const first = kafka.consumer(consumerOptions);
  const firstAssignment = trackAssignment(first, topic);
  await startConsumer(t, first, topic, inbox.handler('first'));
  const round1 = await produce('round1', 40);
  await inbox.waitFor(round1.length, 30_000);
  assert.deepEqual(
    firstAssignment(),
    [0, 1, 2, 3],
    'alone in the group, the first consumer reads every partition',
  );
  assert.ok(inbox.messages.every((m) => m.consumer === 'first'));

  const second = kafka.consumer(consumerOptions);
  const secondAssignment = trackAssignment(second, topic);
  await startConsumer(t, second, topic, inbox.handler('second'));
  await until(
    () =>
      firstAssignment().length > 0 &&
      secondAssignment().length > 0 &&
      firstAssignment().length + secondAssignment().length === PARTITIONS,
    30_000,
    'both consumers to hold partitions',
  );
  const a = firstAssignment();
  const b = secondAssignment();
  assert.deepEqual(
    [...a, ...b].sort(),
    [0, 1, 2, 3],
    `partitions split without overlap: first ${a}, second ${b}`,
  );

  const round2 = await produce('round2', 40);
  const received = await inbox.waitFor(round1.length + round2.length, 30_000);
  // Let any late duplicate (a redelivery after the rebalance) show up before judging.
  await new Promise((resolve) => setTimeout(resolve, 500));

  assert.deepEqual(
    received.map((m) => m.value).sort(),
    [...round1, ...round2].sort(),
    'every message consumed exactly once across both consumers',
  );
  for (const m of received.filter((r) => r.value?.startsWith('round2'))) {
    const owner = a.includes(m.partition) ? 'first' : 'second';
    assert.equal(m.consumer, owner, `partition ${m.partition} is read by its assignee`);
  }
  assert.ok(
    received.some((m) => m.consumer === 'second'),
    'the second consumer did consume',
  );
});
