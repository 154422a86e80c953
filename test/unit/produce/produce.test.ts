import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  formatSeconds,
  formatSummary,
  ProgressLine,
  produceCommand,
  ratePerSecond,
} from '../../../src/cli/produce.js';
import { judgeLine, notificationKey } from '../../../src/kafka/notification-key.js';
import { retriesWithin } from '../../../src/kafka/notification-producer.js';
import { runCli } from '../../helpers/cli.js';

describe('notificationKey', () => {
  test('payload.instance_id comes first, so one instance stays on one partition', () => {
    assert.equal(
      notificationKey({ message_id: 'm1', payload: { instance_id: 'i-1', instance_uuid: 'u-1' } }),
      'i-1',
    );
  });

  test('payload.instance_uuid when there is no instance_id', () => {
    assert.equal(notificationKey({ message_id: 'm1', payload: { instance_uuid: 'u-1' } }), 'u-1');
    assert.equal(
      notificationKey({ message_id: 'm1', payload: { instance_id: '', instance_uuid: 'u-1' } }),
      'u-1',
    );
  });

  test('message_id when the notification is about no instance', () => {
    assert.equal(notificationKey({ message_id: 'm1', payload: { tenant_id: 't' } }), 'm1');
    assert.equal(notificationKey({ message_id: 'm1', payload: 'not an object' }), 'm1');
    assert.equal(notificationKey({ message_id: 'm1', payload: { instance_id: null } }), 'm1');
    assert.equal(notificationKey({ message_id: 'm1' }), 'm1');
  });

  test('no key at all when there is neither (the partitioner then spreads them)', () => {
    assert.equal(notificationKey({}), null);
    assert.equal(notificationKey({ message_id: '', payload: [] }), null);
  });

  test('numeric ids are keys too, as their JSON text', () => {
    assert.equal(notificationKey({ payload: { instance_id: 42 } }), '42');
    assert.equal(notificationKey({ message_id: 7 }), '7');
  });

  test('the key is always the first present id, in the documented order', () => {
    const id = fc.option(fc.string(), { nil: undefined });
    fc.assert(
      fc.property(id, id, id, (instanceId, instanceUuid, messageId) => {
        const n: Record<string, unknown> = { payload: {} };
        if (instanceId !== undefined) (n.payload as Record<string, unknown>).instance_id = instanceId;
        if (instanceUuid !== undefined) (n.payload as Record<string, unknown>).instance_uuid = instanceUuid;
        if (messageId !== undefined) n.message_id = messageId;
        const expected = [instanceId, instanceUuid, messageId].find((v) => v !== undefined && v !== '');
        assert.equal(notificationKey(n), expected ?? null);
      }),
    );
  });
});

describe('judgeLine', () => {
  test('a JSON object is produced with its key', () => {
    assert.deepEqual(judgeLine('{"message_id":"m","payload":{"instance_id":"i"}}'), { ok: true, key: 'i' });
  });

  test('text that is not JSON is invalid_json', () => {
    const v = judgeLine('{"message_id": ');
    assert.equal(v.ok, false);
    assert.equal(!v.ok && v.kind, 'invalid_json');
  });

  test('JSON that is not an object is not_an_object, naming what it is', () => {
    for (const [text, kind] of [
      ['[1,2]', 'array'],
      ['null', 'null'],
      ['42', 'number'],
      ['"x"', 'string'],
      ['true', 'boolean'],
    ] as const) {
      const v = judgeLine(text);
      assert.deepEqual(v, { ok: false, kind: 'not_an_object', detail: `a JSON ${kind}, not an object` });
    }
  });

  test('an oslo.messaging v2 envelope is keyed by the notification inside', () => {
    const inner = JSON.stringify({ message_id: 'm', payload: { instance_id: 'inside' } });
    assert.deepEqual(judgeLine(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': inner })), {
      ok: true,
      key: 'inside',
    });
  });

  test('an envelope that wraps no JSON object is invalid_envelope', () => {
    for (const wrapped of ['{', '[1]', 5]) {
      const v = judgeLine(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': wrapped }));
      assert.equal(v.ok, false);
      assert.equal(!v.ok && v.kind, 'invalid_envelope');
    }
  });
});

describe('summary and progress', () => {
  test('the summary names counts, topic, time and rate', () => {
    assert.equal(
      formatSummary(100000, 'notifications', 4000, 3),
      'produced 100000 notifications to notifications in 4.0s (25000/s); skipped 3 malformed lines',
    );
    assert.equal(
      formatSummary(1, 't', 250, 1),
      'produced 1 notification to t in 0.25s (4/s); skipped 1 malformed line',
    );
    assert.equal(
      formatSummary(0, 't', 0, 0),
      'produced 0 notifications to t in 0.00s (0/s); skipped 0 malformed lines',
    );
  });

  test('rate and seconds', () => {
    assert.equal(ratePerSecond(10, 0), 0);
    assert.equal(ratePerSecond(3, 2000), 2);
    assert.equal(formatSeconds(12345), '12.3s');
    assert.equal(formatSeconds(40), '0.04s');
  });

  test('the progress line is redrawn at most every 200 ms and cleared before the summary', () => {
    let now = 1000;
    const out: string[] = [];
    const p = new ProgressLine(
      (s) => out.push(s),
      () => now,
      1000,
    );
    p.update(1, 0);
    now = 1199;
    p.update(2, 0);
    assert.deepEqual(out, [], 'nothing before 200 ms have passed');
    now = 1200;
    p.update(3, 1);
    assert.deepEqual(out, ['\r\x1b[K3 produced, 1 skipped, 0.20s, 15/s']);
    now = 1300;
    p.update(4, 1);
    assert.equal(out.length, 1);
    p.clear();
    assert.deepEqual(out.at(-1), '\r\x1b[K');
    p.clear();
    assert.equal(out.length, 2, 'clearing twice erases once');
  });

  test('a run that never drew progress does not erase anything', () => {
    const out: string[] = [];
    new ProgressLine(
      (s) => out.push(s),
      () => 0,
      0,
    ).clear();
    assert.deepEqual(out, []);
  });
});

describe('retry budget', () => {
  test('kafkajs retries fit in the timeout, at least one', () => {
    assert.equal(retriesWithin(100), 1);
    assert.equal(retriesWithin(5000), 4); // 300 + 600 + 1200 + 2400
    assert.equal(retriesWithin(30000), 12); // 4500 + 3000 × 8 = 28500
  });
});

describe('produce usage', () => {
  test('the help documents --advance-clock and --no-wait; a bad date is refused before anything is touched', async () => {
    assert.match(produceCommand.usage, /--advance-clock DATETIME/);
    assert.match(produceCommand.usage, /--no-wait/);
    const r = await runCli(['produce', '--advance-clock', '1h']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--advance-clock expects a date and time/);
  });

  test('bad options exit 2 before any configuration or broker is touched', async () => {
    for (const args of [
      ['--batch-size', '0'],
      ['--batch-size', '1.5'],
      ['--timeout', 'soon'],
      ['--create-topic', '--no-create-topic'],
      ['a.json', 'b.json'],
      ['--topic', ''],
      ['--advance-clock', 'yesterday-ish'],
      ['--advance-clock'],
      ['--no-wait'],
    ]) {
      const r = await runCli(['produce', '-c', '/nonexistent.yaml', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^winchester: produce: /);
    }
  });

  test('is listed in winchester --help', async () => {
    const r = await runCli(['--help']);
    assert.match(r.stdout, /^ {2}produce +send notifications/m);
  });
});
