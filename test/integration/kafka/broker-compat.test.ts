/**
 * kafkajs 2.2.4 negotiates protocol versions with the broker (ApiVersions) and uses old versions of some
 * requests. This proves that the broker we run answers every kind of request the project relies on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createProducer } from '../../../src/kafka/kafka.js';
import { sendOffsets } from '../../../src/kafka/transactions.js';
import { INTEGRATION_TIMEOUT_MS, uniqueName } from '../../helpers/integration.js';
import { Inbox, startConsumer, testAdmin, testKafka, testTopic } from '../../helpers/kafka.js';

const BROKER_RESOURCE = 4; // kafkajs ConfigResourceTypes.BROKER

test('the broker answers cluster, config and group admin requests', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const kafka = testKafka('it-compat-admin');
  const admin = await testAdmin(t, kafka);

  const cluster = await admin.describeCluster();
  assert.ok(cluster.clusterId.length > 0, 'cluster id');
  assert.ok(cluster.brokers.length >= 1, 'at least one broker');
  assert.ok(cluster.controller !== null && cluster.controller >= 0, 'an active controller');

  const brokerId = String(cluster.brokers[0]!.nodeId);
  // inter.broker.protocol.version names the broker's release on 3.x; Kafka 4 dropped the setting, so it is
  // reported when present but only log.segment.bytes (which every version has) is required.
  const configs = await admin.describeConfigs({
    resources: [
      {
        type: BROKER_RESOURCE,
        name: brokerId,
        configNames: ['log.segment.bytes', 'inter.broker.protocol.version'],
      },
    ],
    includeSynonyms: false,
  });
  const entries = new Map(configs.resources[0]?.configEntries.map((e) => [e.configName, e.configValue]));
  assert.match(entries.get('log.segment.bytes') ?? '', /^\d+$/, 'DescribeConfigs on the broker');
  t.diagnostic(
    `broker ${brokerId} protocol version ${entries.get('inter.broker.protocol.version') ?? 'not reported (Kafka 4+)'}`,
  );

  const topic = await testTopic(t, admin, 'it-compat-admin', {
    numPartitions: 2,
    configs: { 'retention.ms': '3600000' },
  });
  const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
  assert.equal(metadata?.partitions.length, 2);
  const topicConfigs = await admin.describeConfigs({
    resources: [{ type: 2, name: topic, configNames: ['retention.ms'] }],
    includeSynonyms: false,
  });
  assert.equal(
    topicConfigs.resources[0]?.configEntries[0]?.configValue,
    '3600000',
    'topic created with its config',
  );
  const offsets = await admin.fetchTopicOffsets(topic);
  assert.deepEqual(
    offsets.map((o) => [o.partition, o.offset]).sort(),
    [
      [0, '0'],
      [1, '0'],
    ],
    'ListOffsets on an empty topic',
  );
});

test('transactions: read_committed consumers see committed batches only; offsets commit inside a transaction', {
  timeout: INTEGRATION_TIMEOUT_MS,
}, async (t) => {
  const kafka = testKafka('it-compat-txn');
  const admin = await testAdmin(t, kafka);
  const topic = await testTopic(t, admin, 'it-compat-txn');
  const groupId = uniqueName('it-compat-txn-group');

  const producer = createProducer(kafka, {
    transactionalId: uniqueName('it-compat-txn-id'),
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  t.after(() => producer.disconnect());

  const committed = await producer.transaction();
  await committed.send({ topic, messages: [{ value: 'c1' }, { value: 'c2' }, { value: 'c3' }] });
  await committed.commit();

  const aborted = await producer.transaction();
  await aborted.send({ topic, messages: [{ value: 'a1' }, { value: 'a2' }] });
  await aborted.abort();

  // The consume-transform-produce step: output and the input group's offset commit atomically.
  const last = await producer.transaction();
  await last.send({ topic, messages: [{ value: 'end' }] });
  // Through the adapter: kafkajs' own sendOffsets gives up on a coordinator that is still loading, which is
  // what a fresh broker (every CI run) answers first.
  await sendOffsets(last, {
    consumerGroupId: groupId,
    topics: [{ topic, partitions: [{ partition: 0, offset: '3' }] }],
  });
  await last.commit();

  // The group coordinator applies a transactional offset once the COMMIT marker reaches __consumer_offsets,
  // which EndTxn does not wait for; OffsetFetch (kafkajs speaks up to v4, before require_stable) reports
  // "no offset" (-1) until then. So poll, with a deadline.
  const fetchCommitted = async () =>
    (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]?.partitions.map((p) => [
      p.partition,
      p.offset,
    ]);
  let stored = await fetchCommitted();
  for (const deadline = Date.now() + 10_000; stored?.[0]?.[1] === '-1' && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    stored = await fetchCommitted();
  }
  assert.deepEqual(stored, [[0, '3']], 'TxnOffsetCommit stored the group offset');

  const committedOnly = new Inbox();
  await startConsumer(
    t,
    kafka.consumer({ groupId: uniqueName('it-compat-rc'), maxWaitTimeInMs: 200 }),
    topic,
    committedOnly.handler('read_committed'),
  );
  const everything = new Inbox();
  await startConsumer(
    t,
    kafka.consumer({ groupId: uniqueName('it-compat-ru'), maxWaitTimeInMs: 200, readUncommitted: true }),
    topic,
    everything.handler('read_uncommitted'),
  );

  const seen = await committedOnly.waitFor(4, 30_000);
  assert.deepEqual(
    seen.map((m) => m.value),
    ['c1', 'c2', 'c3', 'end'],
  );
  const raw = await everything.waitFor(6, 30_000);
  assert.deepEqual(
    raw.map((m) => m.value),
    ['c1', 'c2', 'c3', 'a1', 'a2', 'end'],
  );
});
