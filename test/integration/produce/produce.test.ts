import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../helpers/cli.js';
import {
  INTEGRATION_TIMEOUT_MS,
  kafkaBrokers,
  type TestScope,
  uniqueName,
} from '../../helpers/integration.js';
import { Inbox, type Received, testAdmin, testKafka } from '../../helpers/kafka.js';
import { freePort } from '../../helpers/process.js';

const opts = { timeout: INTEGRATION_TIMEOUT_MS };
// etc/winchester.yaml names localhost:9092 and 12 partitions; KAFKA_BROKERS points it at the test cluster.
const CONFIG = fileURLToPath(new URL('../../../etc/winchester.yaml', import.meta.url));

/** A topic name for the CLI to create, deleted when the test ends (with its own short-lived admin). */
function cliTopic(t: TestScope, prefix: string): string {
  const topic = uniqueName(prefix);
  t.after(async () => {
    const admin = testKafka('it-produce-cleanup').admin();
    try {
      await admin.connect();
      await admin.deleteTopics({ topics: [topic], timeout: 10000 });
    } catch {
      // Clean-up only: a topic left behind has a unique name and harms no other test.
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  });
  return topic;
}

/** Reads `count` messages of `topic` from the beginning, then disconnects the consumer. */
async function consumeAll(topic: string, count: number): Promise<Received[]> {
  const kafka = testKafka('it-produce-reader');
  const inbox = new Inbox();
  const consumer = kafka.consumer({ groupId: uniqueName('it-produce-group'), maxWaitTimeInMs: 200 });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: inbox.handler('reader') });
    return [...(await inbox.waitFor(count, 30_000))];
  } finally {
    await consumer.disconnect();
  }
}

function notification(i: number, instance: string | null): string {
  const payload: Record<string, unknown> = { tenant_id: 't1', seq: i };
  if (instance !== null) payload.instance_id = instance;
  return JSON.stringify({ message_id: `msg-${i}`, event_type: 'compute.instance.update', payload });
}

test('every notification arrives intact, keyed by instance, in order per key', opts, async (t) => {
  const admin = await testAdmin(t, testKafka('it-produce-admin'));
  const topic = cliTopic(t, 'it-produce');

  const lines: string[] = [];
  for (let i = 0; i < 1200; i++) {
    // 7 instances interleaved, and every 10th notification about no instance.
    lines.push(notification(i, i % 10 === 9 ? null : `inst-${i % 7}`));
  }
  // Bytes are kept as written: odd spacing, key order, escapes and non-ASCII text are not re-serialized.
  lines.push('{ "payload" : {"instance_uuid":"uuid-9", "note":"caf\\u00e9 café ☕"},"message_id":"odd"  }');
  const oslo = JSON.stringify({
    'oslo.version': '2.0',
    'oslo.message': notification(5000, 'inst-oslo'),
  });
  lines.push(oslo);

  // --batch-size 100 makes this many batches, so order across batches is exercised too.
  const r = await runCli(['produce', '-c', CONFIG, '--topic', topic, '--batch-size', '100', '-'], {
    env: { KAFKA_BROKERS: kafkaBrokers() },
    stdin: `${lines.join('\n')}\n`,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  const err = r.stderrLines();
  assert.equal(err[0], `winchester: created topic ${topic} (12 partitions, replication factor 1)`);
  assert.match(
    err[1] ?? '',
    new RegExp(
      `^produced ${lines.length} notifications to ${topic} in \\d+\\.\\d+s \\(\\d+/s\\); skipped 0 malformed lines$`,
    ),
  );
  assert.equal(err.length, 2);

  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.equal(metadata.topics[0]?.partitions.length, 12, 'partitions from kafka.partitions');

  const received = await consumeAll(topic, lines.length);
  assert.equal(received.length, lines.length);
  assert.deepEqual(
    received.map((m) => m.value).sort(),
    [...lines].sort(),
    'every value arrives, byte for byte, exactly once',
  );
  const expectedKey = (line: string): string => {
    if (line === oslo) return 'inst-oslo';
    if (line.includes('"odd"')) return 'uuid-9';
    const n = JSON.parse(line) as { message_id: string; payload: { instance_id?: string } };
    return n.payload.instance_id ?? n.message_id;
  };
  const byValue = new Map(received.map((m) => [m.value, m]));
  for (const line of lines) assert.equal(byValue.get(line)?.key, expectedKey(line), line);

  // Per key: one partition, and the order of the input (offsets increase with the input position).
  const perKey = new Map<string, Received[]>();
  for (const line of lines) {
    const m = byValue.get(line)!;
    const list = perKey.get(m.key!) ?? [];
    list.push(m);
    perKey.set(m.key!, list);
  }
  for (const [key, list] of perKey) {
    assert.equal(new Set(list.map((m) => m.partition)).size, 1, `${key} stays on one partition`);
    const offsets = list.map((m) => BigInt(m.offset));
    for (let i = 1; i < offsets.length; i++) {
      assert.ok(
        offsets[i]! > offsets[i - 1]!,
        `${key}: input order kept (${offsets[i - 1]} then ${offsets[i]})`,
      );
    }
  }
  assert.equal(perKey.size, 7 + 120 + 2, '7 instances, 120 message ids, uuid-9 and inst-oslo');
});

test('large notifications into one partition stay under the broker batch size limit', opts, async (t) => {
  const topic = cliTopic(t, 'it-produce-large');
  // 1500 notifications of ~3 KB: 500 of them in one record batch would be 1.5 MB, above message.max.bytes.
  const filler = 'x'.repeat(3000);
  const lines = Array.from({ length: 1500 }, (_, i) =>
    JSON.stringify({ message_id: `m${i}`, payload: { instance_id: 'one', i, filler } }),
  );
  const r = await runCli(['produce', '-c', CONFIG, '--topic', topic], {
    env: { KAFKA_BROKERS: kafkaBrokers(), WINCHESTER_KAFKA_PARTITIONS: '1' },
    stdin: lines.join('\n'),
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderrLines()[0], `winchester: created topic ${topic} (1 partition, replication factor 1)`);
  const received = await consumeAll(topic, lines.length);
  assert.deepEqual(
    received.map((m) => m.value),
    lines,
    'one key, one partition: exactly the input order',
  );
});

test(
  'malformed lines are reported with line numbers and skipped; a JSON array works too',
  opts,
  async (t) => {
    const topic = cliTopic(t, 'it-produce-bad');
    const good = [notification(1, 'a'), notification(2, 'b'), notification(3, 'a')];
    const input = [
      '',
      good[0],
      'not json at all',
      '[1, 2]',
      good[1],
      '{"unterminated": ',
      '',
      good[2],
      'null',
    ].join('\n');

    const r = await runCli(['produce', '-c', CONFIG, '--topic', topic], {
      env: { KAFKA_BROKERS: kafkaBrokers() },
      stdin: input,
    });
    assert.equal(r.code, 0, r.stderr);
    const err = r.stderrLines();
    assert.equal(err[0], `winchester: created topic ${topic} (12 partitions, replication factor 1)`);
    assert.match(err[1] ?? '', /^winchester: line 3: malformed notification \(invalid_json\): /);
    assert.equal(
      err[2],
      'winchester: line 4: malformed notification (not_an_object): a JSON array, not an object',
    );
    assert.match(err[3] ?? '', /^winchester: line 6: malformed notification \(invalid_json\): /);
    assert.equal(
      err[4],
      'winchester: line 9: malformed notification (not_an_object): a JSON null, not an object',
    );
    assert.match(
      err[5] ?? '',
      new RegExp(`^produced 3 notifications to ${topic} in .*; skipped 4 malformed lines$`),
    );
    assert.equal(err.length, 6);
    const received = await consumeAll(topic, 3);
    assert.deepEqual(received.map((m) => m.value).sort(), [...good].sort());

    // The same notifications as one JSON array (pretty-printed: elements on lines 2, 3, 4…).
    const arrayTopic = cliTopic(t, 'it-produce-array');
    const r2 = await runCli(['produce', '-c', CONFIG, '-t', arrayTopic, '-q'], {
      env: { KAFKA_BROKERS: kafkaBrokers() },
      stdin: `[\n${good.join(',\n')}\n]\n`,
    });
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(r2.stderr, '', '--quiet prints nothing');
    const fromArray = await consumeAll(arrayTopic, 3);
    assert.deepEqual(fromArray.map((m) => m.value).sort(), [...good].sort());
  },
);

test(
  '--strict stops at the first malformed line, exit 1, after producing what came before',
  opts,
  async (t) => {
    const admin = await testAdmin(t, testKafka('it-produce-admin'));
    const topic = cliTopic(t, 'it-produce-strict');
    const before = [notification(1, 'a'), notification(2, 'b')];
    const input = [...before, '{"broken"', notification(3, 'c')].join('\n');

    const r = await runCli(['produce', '-c', CONFIG, '--topic', topic, '--strict'], {
      env: { KAFKA_BROKERS: kafkaBrokers() },
      stdin: input,
    });
    assert.equal(r.code, 1);
    const err = r.stderrLines();
    assert.match(err[1] ?? '', /^winchester: line 3: malformed notification \(invalid_json\): /);
    assert.equal(
      err[2],
      `winchester: stopped at line 3 (--strict); produced 2 notifications to ${topic} before it`,
    );
    assert.equal(err.length, 3);
    const received = await consumeAll(topic, 2);
    assert.deepEqual(received.map((m) => m.value).sort(), [...before].sort());
    // Nothing after the bad line was sent.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const offsets = await admin.fetchTopicOffsets(topic);
    assert.equal(
      offsets.reduce((sum, p) => sum + Number(p.high), 0),
      2,
    );
  },
);

test('--no-create-topic refuses a missing topic with a clear message', opts, async () => {
  const topic = uniqueName('it-produce-missing');
  const r = await runCli(['produce', '-c', CONFIG, '--topic', topic, '--no-create-topic'], {
    env: { KAFKA_BROKERS: kafkaBrokers() },
    stdin: `${notification(1, 'a')}\n`,
  });
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    `winchester: topic ${topic} does not exist (create it, or leave out --no-create-topic)\n`,
  );
});

test('an unreachable broker is a one-line error and exit 1 within the timeout', opts, async () => {
  // A port that was free a moment ago: nothing listens there.
  const port = await freePort();
  const started = Date.now();
  const r = await runCli(['produce', '-c', CONFIG, '--timeout', '4'], {
    env: { KAFKA_BROKERS: `127.0.0.1:${port}` },
    stdin: `${notification(1, 'a')}\n`,
  });
  const elapsed = Date.now() - started;
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderrLines().length, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^winchester: .*Kafka at 127\\.0\\.0\\.1:${port}.*`));
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.ok(elapsed < 8000, `gave up after ${elapsed} ms`);
});

test(
  '--advance-clock refuses a missing stream-events topic, and waits for the route stage only within --timeout',
  opts,
  async (t) => {
    const env = {
      KAFKA_BROKERS: kafkaBrokers(),
      WINCHESTER_KAFKA_CLIENT_ID: uniqueName('it-advance'),
      WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS: uniqueName('it-advance-missing'),
    };
    const missing = await runCli(
      ['produce', '-c', CONFIG, '--advance-clock', '2015-02-01T00:00:00Z', '--timeout', '10'],
      {
        env,
      },
    );
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /does not exist: start a trigger worker first/);

    // Notifications nobody routes: the wait gives up after --timeout and says why; --no-wait ticks anyway.
    const admin = await testAdmin(t, testKafka('it-advance'));
    const notifications = cliTopic(t, 'it-advance-n');
    const streamEvents = cliTopic(t, 'it-advance-se');
    await admin.createTopics({ topics: [{ topic: streamEvents, numPartitions: 3 }], waitForLeaders: true });
    const withTopics = {
      ...env,
      WINCHESTER_KAFKA_TOPICS_NOTIFICATIONS: notifications,
      WINCHESTER_KAFKA_TOPICS_STREAM_EVENTS: streamEvents,
    };
    const sent = await runCli(['produce', '-q', '-c', CONFIG], {
      stdin: '{"event_type":"compute.instance.exists","message_id":"m1","timestamp":"2015-02-01 00:00:00"}\n',
      env: withTopics,
    });
    assert.equal(sent.code, 0, sent.stderr);
    const started = Date.now();
    const waited = await runCli(
      ['produce', '-c', CONFIG, '--advance-clock', '2015-02-02T00:00:00Z', '--timeout', '3'],
      {
        env: withTopics,
      },
    );
    assert.equal(waited.code, 1);
    assert.match(waited.stderr, /still has 1 notification of .* to route: is a trigger worker running\?/);
    assert.ok(Date.now() - started < 20_000, 'gave up near the timeout');
    const forced = await runCli(
      ['produce', '-c', CONFIG, '--advance-clock', '2015-02-02T00:00:00Z', '--no-wait'],
      {
        env: withTopics,
      },
    );
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(
      forced.stderr,
      /advanced the event-time clock of 3 partitions of .* to 2015-02-02T00:00:00.000000Z/,
    );
    const ticks = await consumeAll(streamEvents, 3);
    assert.deepEqual(
      ticks.map((m) => JSON.parse(m.value as string)).map((v) => [v.type, v.time]),
      // Record format 2: times are integer microseconds (2015-02-02T00:00:00Z).
      [0, 1, 2].map(() => ['tick', 1_422_835_200_000_000]),
    );
    assert.deepEqual(ticks.map((m) => m.partition).sort(), [0, 1, 2]);
  },
);
