import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { NotabeneHandler } from '../../../src/handlers/notabene.js';
import { HandlerParamsError } from '../../../src/handlers/param-checks.js';
import { datetime, type Event, float, text } from '../../../src/model/event.js';
import { eventToJson } from '../../../src/model/event-json.js';
import type { HandlerEnv, PublishPort } from '../../../src/pipeline/handler.js';
import { parseDatetime } from '../../../src/timex/instant.js';
import { testContext } from './http-test-server.js';

const T = parseDatetime('2015-02-03T04:05:06.000007Z');
const ev = (id: string, type: string, traits: Event['traits'] = {}): Event => ({
  message_id: id,
  event_type: type,
  timestamp: T,
  traits,
});

const EXISTS = ev('e-1', 'compute.instance.exists', { instance_id: text('i-1') });
const VERIFIED = ev('v-1', 'compute.instance.exists.verified', { ratio: float(2), launched_at: datetime(T) });
const FAILED = ev('f-1', 'compute.instance.exists.failed', { error_code: text('U3') });
const EVENTS = [EXISTS, VERIFIED, FAILED];

function env(extra: Record<string, unknown> = {}): HandlerEnv {
  return {
    batch_id: 'batch-1',
    stream_id: '5',
    stream_name: 'usage',
    trigger: 'usage',
    kind: 'fire',
    pipeline: 'p',
    distinguishing: {},
    ...extra,
  };
}

/** A publish port recording what it was asked to send. */
function recorder(): { publish: PublishPort; sent: { topic: string; key: string | null; value: string }[] } {
  const sent: { topic: string; key: string | null; value: string }[] = [];
  return {
    sent,
    publish: async (topic, messages) => {
      for (const m of messages) sent.push({ topic, key: m.key, value: m.value });
    },
  };
}

async function run(h: NotabeneHandler, batchEnv: HandlerEnv, events = EVENTS): Promise<void> {
  const out = await h.handleEvents(events.slice(), batchEnv);
  assert.deepEqual(out, events, 'events pass through unchanged');
  await h.commit();
}

describe('notabene selection', () => {
  test('event_types globs select events of the batch, published as flat event JSON keyed by message_id', async () => {
    const { publish, sent } = recorder();
    const h = new NotabeneHandler(
      { topic: 'verdicts', event_types: 'compute.instance.exists.*' },
      { ...testContext().context, publish },
    );
    await run(h, env());
    assert.deepEqual(sent, [
      { topic: 'verdicts', key: 'v-1', value: eventToJson(VERIFIED) },
      { topic: 'verdicts', key: 'f-1', value: eventToJson(FAILED) },
    ]);
    assert.match(sent[0]?.value ?? '', /"ratio":2\.0/);
  });

  test('exclusions: `!glob` removes, a list of only exclusions means everything else', async () => {
    const { publish, sent } = recorder();
    await run(
      new NotabeneHandler({ topic: 't', event_types: ['!*.failed'] }, { ...testContext().context, publish }),
      env(),
    );
    assert.deepEqual(
      sent.map((m) => m.key),
      ['e-1', 'v-1'],
    );
  });

  test('env_keys: every list, in env_keys order, after the selected events; absent keys skipped', async () => {
    const { publish, sent } = recorder();
    const h = new NotabeneHandler(
      { queue_name: 'monitor.info', env_keys: ['x', 'missing', 'y'], event_types: '*.failed' },
      { ...testContext().context, publish },
    );
    const notification = {
      message_id: 'n-1',
      event_type: 'compute.instance.exists.verified.old',
      payload: { a: [1, 2] },
    };
    await run(h, env({ x: [notification, VERIFIED], y: [{ event_type: 'no.id' }, 'plain'] }));
    assert.deepEqual(sent, [
      { topic: 'monitor.info', key: 'f-1', value: eventToJson(FAILED) },
      { topic: 'monitor.info', key: 'n-1', value: JSON.stringify(notification) },
      { topic: 'monitor.info', key: 'v-1', value: eventToJson(VERIFIED) },
      { topic: 'monitor.info', key: 'batch-1:y:0', value: '{"event_type":"no.id"}' },
      { topic: 'monitor.info', key: 'batch-1:y:1', value: '"plain"' },
    ]);
  });

  test('an id already published by this commit is not published again', async () => {
    const { publish, sent } = recorder();
    const h = new NotabeneHandler(
      { topic: 't', env_keys: ['x'], event_types: '*.verified' },
      { ...testContext().context, publish },
    );
    await run(h, env({ x: [VERIFIED, { message_id: 'v-1', again: true }] }));
    assert.deepEqual(
      sent.map((m) => m.key),
      ['v-1'],
    );
  });

  test('redelivery of the batch publishes the same keys and values', async () => {
    const a = recorder();
    const b = recorder();
    const params = Object.freeze({ topic: 't', env_keys: ['x'], event_types: 'compute.*' });
    const batchEnv = () => env({ x: [{ event_type: 'no.id' }] });
    await run(new NotabeneHandler(params, { ...testContext().context, publish: a.publish }), batchEnv());
    await run(new NotabeneHandler(params, { ...testContext().context, publish: b.publish }), batchEnv());
    assert.deepEqual(a.sent, b.sent);
  });

  test('nothing selected and no env lists: nothing published (and no port needed)', async () => {
    const { publish, sent } = recorder();
    await run(
      new NotabeneHandler({ topic: 't', env_keys: ['x'] }, { ...testContext().context, publish }),
      env(),
    );
    assert.deepEqual(sent, []);
    await run(new NotabeneHandler({ topic: 't', env_keys: ['x'] }, testContext().context), env({ x: [] }));
  });

  test('an env key holding something other than a list fails handleEvents, naming it', () => {
    const h = new NotabeneHandler({ topic: 't', env_keys: ['x'] }, testContext().context);
    assert.throws(
      () => h.handleEvents(EVENTS.slice(), env({ x: { a: 1 } })),
      /env\['x'\] must be a list of notifications, not a mapping/,
    );
    assert.throws(
      () => h.handleEvents(EVENTS.slice(), env({ x: [{ n: 1n }] })),
      /env\['x'\]\[0\] cannot be written as JSON/,
    );
  });
});

describe('notabene commit', () => {
  test('without a publish port (offline) commit fails with a clear message', async () => {
    const h = new NotabeneHandler({ topic: 'verdicts', event_types: '*' }, testContext().context);
    await h.handleEvents(EVENTS.slice(), env());
    await assert.rejects(
      Promise.resolve().then(() => h.commit()),
      /notabene: no Kafka publisher in this process .* 3 message\(s\) for topic 'verdicts' not published/,
    );
  });

  test("a publish failure is commit's failure", async () => {
    const publish: PublishPort = async () => {
      throw new Error('broker said no');
    };
    const h = new NotabeneHandler({ topic: 't', event_types: '*' }, { ...testContext().context, publish });
    await h.handleEvents(EVENTS.slice(), env());
    await assert.rejects(
      Promise.resolve().then(() => h.commit()),
      /broker said no/,
    );
  });

  test('rollback drops what handleEvents prepared', async () => {
    const { publish, sent } = recorder();
    const h = new NotabeneHandler({ topic: 't', event_types: '*' }, { ...testContext().context, publish });
    await h.handleEvents(EVENTS.slice(), env());
    await h.rollback();
    await h.commit();
    assert.deepEqual(sent, []);
  });

  test('one log line per published batch', async () => {
    const { publish } = recorder();
    const { context, logs } = testContext({ publish });
    await run(new NotabeneHandler({ topic: 't', event_types: '*' }, context), env());
    assert.deepEqual(
      logs.map((l) => [l.level, l.msg, l.fields]),
      [['info', 'notabene published', { handler: 'notabene', batch_id: 'batch-1', topic: 't', count: 3 }]],
    );
  });
});

describe('notabene params', () => {
  test("topic defaults to the reference's queue_name; topic wins when both are given", () => {
    const ctx = testContext().context;
    assert.equal(new NotabeneHandler({ queue_name: 'monitor.info' }, ctx).topic, 'monitor.info');
    assert.equal(
      new NotabeneHandler({ queue_name: 'monitor.info', topic: 'verdicts' }, ctx).topic,
      'verdicts',
    );
  });

  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      'no topic nor queue_name',
      { exchange: 'nova' },
      /notabene: param 'topic' is required \(or the reference's 'queue_name'/,
    ],
    ['invalid topic name', { topic: 'no spaces' }, /'no spaces' is not a valid Kafka topic name/],
    ['topic not a string', { topic: 3 }, /param 'topic' must be a string, not number 3/],
    [
      'env_keys a mapping',
      { topic: 't', env_keys: { a: 1 } },
      /'env_keys' must be a string or a list of strings, not a mapping/,
    ],
    ['event_types empty', { topic: 't', event_types: [] }, /'event_types' must list at least one glob/],
    ['port not a number', { topic: 't', port: [5672] }, /param 'port' must be a number, not a list/],
    ['host not a string', { topic: 't', host: 1 }, /param 'host' must be a string/],
  ];
  for (const [name, params, message] of cases) {
    test(name, () => {
      assert.throws(
        () => new NotabeneHandler(params, testContext().context),
        (err: unknown) => err instanceof HandlerParamsError && message.test(err.message),
      );
    });
  }

  test("StackTach's pipelines.yaml loads; its RabbitMQ params are ignored with one warning per step", () => {
    const config = parse(readFileSync('/work/shared/data/stacktach-config/pipelines.yaml', 'utf8')) as Record<
      string,
      (string | { name: string; params: Record<string, unknown> })[]
    >;
    const step = config.test_fire_pipeline?.find((s) => typeof s !== 'string' && s.name === 'notabene');
    assert.ok(step !== undefined && typeof step !== 'string');
    const params = Object.freeze(step.params);
    const { context, logs } = testContext();
    const first = new NotabeneHandler(params, context);
    new NotabeneHandler(params, context);
    assert.equal(first.topic, 'monitor.info');
    const warnings = logs.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1, 'once per pipeline step, not per batch');
    assert.deepEqual(warnings[0]?.fields, {
      handler: 'notabene',
      ignored: ['exchange', 'exchange_type', 'host', 'library', 'password', 'port', 'user', 'vhost'],
      topic: 'monitor.info',
    });
    new NotabeneHandler(Object.freeze({ ...params }), context);
    assert.equal(logs.filter((l) => l.level === 'warn').length, 2, 'another step warns for itself');
  });
});
