/**
 * The restart decision (which kafkajs crashes are outages a new consumer rides out, which stay fatal) on
 * kafkajs' own error classes, built the way its runner and cluster build them, and the replacement
 * machinery with its bound on scripted consumers. The real thing, against a broker that is stopped and
 * started again, is test/integration/worker/consumer-restart.test.ts.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  consumerRestartPolicy,
  isOutageCrash,
  RestartingConsumer,
} from '../../../src/kafka/consumer-restart.js';
import { KafkaUnavailableError } from '../../../src/kafka/errors.js';
import type { Consumer } from '../../../src/kafka/types.js';
import type { LogLevel } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics/metrics.js';

// kafkajs' own error classes (its type declarations lack several, and its CommonJS spread of them is
// invisible to named ESM imports) and its table of broker error codes, as its protocol decoders use it.
type ErrorClass = new (e: unknown, options?: Record<string, unknown>) => Error;
const require = createRequire(import.meta.url);
const kafkajsExports = require('kafkajs') as Record<string, unknown>;
const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as {
  createErrorFromCode(code: number): object;
};
function errorClass(name: string): ErrorClass {
  const found = kafkajsExports[name];
  if (typeof found !== 'function') throw new Error(`kafkajs exports no ${name}`);
  return found as ErrorClass;
}
const KafkaJSBrokerNotFound = errorClass('KafkaJSBrokerNotFound');
const KafkaJSConnectionClosedError = errorClass('KafkaJSConnectionClosedError');
const KafkaJSConnectionError = errorClass('KafkaJSConnectionError');
const KafkaJSError = errorClass('KafkaJSError');
const KafkaJSGroupCoordinatorNotFound = errorClass('KafkaJSGroupCoordinatorNotFound');
const KafkaJSInvariantViolation = errorClass('KafkaJSInvariantViolation');
const KafkaJSLockTimeout = errorClass('KafkaJSLockTimeout');
const KafkaJSNoBrokerAvailableError = errorClass('KafkaJSNoBrokerAvailableError');
const KafkaJSNonRetriableError = errorClass('KafkaJSNonRetriableError');
const KafkaJSNumberOfRetriesExceeded = errorClass('KafkaJSNumberOfRetriesExceeded');
const KafkaJSProtocolError = errorClass('KafkaJSProtocolError');
const KafkaJSRequestTimeoutError = errorClass('KafkaJSRequestTimeoutError');
const KafkaJSSASLAuthenticationError = errorClass('KafkaJSSASLAuthenticationError');
const KafkaJSServerDoesNotSupportApiKey = errorClass('KafkaJSServerDoesNotSupportApiKey');

/** What kafkajs' runner hands to onCrash when a non-retriable error ends its retrier. */
function runnerWrapped(error: Error): Error {
  return new KafkaJSNonRetriableError(error, { cause: error });
}

/** A broker's answer with `code`, as kafkajs decodes it. */
function protocolError(code: number): Error {
  return new KafkaJSProtocolError(createErrorFromCode(code));
}

describe('isOutageCrash', () => {
  const outages: [string, Error][] = [
    [
      'group coordinator not found (the broker-restart case, as the runner wraps it)',
      runnerWrapped(new KafkaJSGroupCoordinatorNotFound('Failed to find group coordinator')),
    ],
    [
      'group coordinator not found, bare',
      new KafkaJSGroupCoordinatorNotFound('Failed to find group coordinator'),
    ],
    [
      'connection refused',
      new KafkaJSConnectionError('connect ECONNREFUSED 127.0.0.1:9092', { code: 'ECONNREFUSED' }),
    ],
    ['connection closed', new KafkaJSConnectionClosedError('Closed connection', { host: 'h', port: 1 })],
    [
      'request timeout',
      runnerWrapped(new KafkaJSRequestTimeoutError('Request Metadata(key: 3, version: 6) timed out')),
    ],
    [
      'retries exhausted on a connection error',
      new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('Connection timeout'), {
        retryCount: 10,
        retryTime: 10_000,
      }),
    ],
    ['no broker available', new KafkaJSNoBrokerAvailableError('No broker available')],
    ['broker not found', new KafkaJSBrokerNotFound('Broker 2 not found in the cached metadata')],
    ['lock timeout', new KafkaJSLockTimeout('Timeout while acquiring lock (1 waiting locks)')],
    ['coordinator moved (NOT_COORDINATOR_FOR_GROUP)', runnerWrapped(protocolError(16))],
    ['coordinator not available', runnerWrapped(protocolError(15))],
    ['coordinator loading', protocolError(14)],
    ['leader not available', protocolError(5)],
    ['rebalance in progress (kafkajs: non-retriable)', runnerWrapped(protocolError(27))],
    ['unknown member id (kafkajs: non-retriable)', runnerWrapped(protocolError(25))],
    ['illegal generation (kafkajs: non-retriable)', runnerWrapped(protocolError(22))],
  ];
  for (const [what, error] of outages) {
    test(`restarts: ${what}`, () => {
      assert.equal(isOutageCrash(error), true, `${error.name}: ${error.message}`);
    });
  }

  const fatal: [string, unknown][] = [
    ['invalid session timeout (a misconfiguration)', runnerWrapped(protocolError(26))],
    ['group authorization failed', runnerWrapped(protocolError(30))],
    ['topic authorization failed', runnerWrapped(protocolError(29))],
    ['SASL authentication failed (broker answer)', runnerWrapped(protocolError(58))],
    [
      'SASL authentication failed (client)',
      new KafkaJSSASLAuthenticationError('SASL PLAIN authentication failed'),
    ],
    ['unsupported version', protocolError(35)],
    ['invalid group id', runnerWrapped(protocolError(24))],
    [
      'API the broker does not support',
      new KafkaJSServerDoesNotSupportApiKey('not supported', { apiKey: 1, apiName: 'Produce' }),
    ],
    ['kafkajs invariant violation', new KafkaJSInvariantViolation('a bug')],
    ['a TypeError in the worker (kafkajs: unrecoverable)', runnerWrapped(new TypeError('x is undefined'))],
    [
      'an error of the worker itself, even a retriable one',
      runnerWrapped(new KafkaUnavailableError('producing stream events: Connection error')),
    ],
    [
      'a kafkajs usage error',
      new KafkaJSNonRetriableError('Cannot subscribe to topic while consumer is running'),
    ],
    ['a kafkajs error of no known outage class', new KafkaJSError('something else')],
    [
      'retries exhausted, but on refused credentials (fatal wins)',
      new KafkaJSNumberOfRetriesExceeded(new KafkaJSSASLAuthenticationError('refused'), {
        retryCount: 1,
        retryTime: 1,
      }),
    ],
    ['not an Error', 'Failed to find group coordinator'],
    ['nothing', undefined],
  ];
  for (const [what, error] of fatal) {
    test(`stays fatal: ${what}`, () => {
      assert.equal(isOutageCrash(error), false, String(error));
    });
  }
});

describe('consumerRestartPolicy', () => {
  test('as many replacements in a row as kafka.retries, backing off like the client', () => {
    assert.deepEqual(consumerRestartPolicy(10), {
      attempts: 10,
      initialBackoffMs: 300,
      maxBackoffMs: 10_000,
    });
    assert.equal(consumerRestartPolicy(0).attempts, 0);
  });
});

const EVENTS = { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' } as const;

/** A scripted consumer: records calls; the test emits its events. */
class ScriptedConsumer {
  readonly calls: string[] = [];
  readonly emitter = new EventEmitter();
  readonly events = EVENTS;
  connectError: Error | undefined;
  runConfig: unknown;

  constructor(readonly id: number) {}

  connect = async () => {
    this.calls.push('connect');
    if (this.connectError !== undefined) throw this.connectError;
  };
  subscribe = async (s: { topics: string[] }) => {
    this.calls.push(`subscribe ${s.topics.join(',')}`);
  };
  run = async (config: unknown) => {
    this.calls.push('run');
    this.runConfig = config;
  };
  stop = async () => {
    this.calls.push('stop');
  };
  disconnect = async () => {
    this.calls.push('disconnect');
  };
  commitOffsets = async () => {
    this.calls.push('commitOffsets');
  };
  seek = () => {
    this.calls.push('seek');
  };
  on = (name: string, listener: (e: unknown) => void) => {
    this.emitter.on(name, listener);
    return () => this.emitter.off(name, listener);
  };
  listeners(name: string): number {
    return this.emitter.listenerCount(name);
  }
  crash(error: Error, restart: boolean): void {
    this.emitter.emit(EVENTS.CRASH, { payload: { error, restart, groupId: 'g' } });
  }
  join(partitions: number[]): void {
    this.emitter.emit(EVENTS.GROUP_JOIN, { payload: { groupId: 'g', memberAssignment: { t: partitions } } });
  }
}

const OUTAGE = () => runnerWrapped(new KafkaJSGroupCoordinatorNotFound('Failed to find group coordinator'));

/** `connectErrors`: what the replacements' connect() fail with, in order (then they succeed). */
function rig(attempts = 3, connectErrors: Error[] = []) {
  const consumers: ScriptedConsumer[] = [];
  const lines: { level: LogLevel; msg: string; fields: Record<string, unknown> }[] = [];
  const fatal: unknown[] = [];
  const crashes: unknown[] = [];
  const order: string[] = [];
  const metrics = createMetrics();
  const restarting = new RestartingConsumer({
    create: () => {
      const c = new ScriptedConsumer(consumers.length);
      if (c.id > 0) c.connectError = connectErrors.shift();
      consumers.push(c);
      order.push(`create ${c.id}`);
      return c as unknown as Consumer;
    },
    stage: 'route',
    log: (level, msg, fields = {}) => lines.push({ level, msg, fields }),
    policy: { attempts, initialBackoffMs: 2, maxBackoffMs: 8 },
    metrics,
    beforeRestart: () => order.push('beforeRestart'),
    onCrash: (error) => crashes.push(error),
    onFatal: (error) => fatal.push(error),
    random: () => 0.5,
  });
  const restartsMetric = async () =>
    (await metrics.consumerRestarts.get()).values.find((v) => v.labels.stage === 'route')?.value ?? 0;
  return {
    restarting,
    consumer: restarting.consumer,
    consumers,
    lines,
    fatal,
    crashes,
    order,
    restartsMetric,
  };
}

/** Waits until `done()` holds (the replacement runs on timers). */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting: ${what}`);
    await sleep(2);
  }
}

async function started(r: ReturnType<typeof rig>, runConfig: object = { eachBatch: async () => undefined }) {
  await r.consumer.connect();
  await r.consumer.subscribe({ topics: ['t'], fromBeginning: true });
  await r.consumer.subscribe({ topics: ['u'] });
  await r.consumer.run(runConfig);
  return runConfig;
}

describe('RestartingConsumer', () => {
  test('an outage crash kafkajs gives up on: the consumer is replaced, same subscriptions, run options and listeners', async () => {
    const r = rig();
    const joins: number[] = [];
    r.consumer.on(r.consumer.events.GROUP_JOIN, (e) => {
      joins.push((e.payload.memberAssignment.t ?? []).length);
    });
    const runConfig = await started(r);
    const first = r.consumers[0] as ScriptedConsumer;
    first.join([0, 1]);
    first.crash(OUTAGE(), false);
    await until(
      () => r.consumers.length === 2 && r.consumers[1]?.calls.includes('run') === true,
      'replacement runs',
    );
    const second = r.consumers[1] as ScriptedConsumer;
    assert.deepEqual(first.calls, ['connect', 'subscribe t', 'subscribe u', 'run', 'disconnect']);
    assert.deepEqual(second.calls, ['connect', 'subscribe t', 'subscribe u', 'run']);
    assert.equal(second.runConfig, runConfig, 'the same run options (the same eachBatch)');
    assert.deepEqual(
      r.order,
      ['create 0', 'beforeRestart', 'create 1'],
      'stage state dropped before the new one',
    );
    second.join([1]);
    assert.deepEqual(joins, [2, 1], 'the listener registered once hears the replacement');
    first.join([0]);
    assert.deepEqual(joins, [2, 1], 'and no longer the dead consumer');
    assert.deepEqual(r.fatal, []);
    assert.equal(r.crashes.length, 1);
    const warn = r.lines.filter((l) => l.level === 'warn');
    assert.equal(warn.length, 1, JSON.stringify(r.lines));
    assert.match((warn[0] as { msg: string }).msg, /^route consumer .*restarting it in-process$/);
    assert.deepEqual((warn[0] as { fields: Record<string, unknown> }).fields, {
      error: 'Failed to find group coordinator',
      attempt: 1,
      attempts: 3,
      delay_ms: 2,
    });
    assert.equal(await r.restartsMetric(), 1);
    assert.equal(r.restarting.restarts, 1);
    // Calls go to the replacement now.
    await r.consumer.commitOffsets([]);
    assert.equal(second.calls.at(-1), 'commitOffsets');
    assert.equal(first.calls.at(-1), 'disconnect');
  });

  test('a crash no restart cures stays fatal: onFatal at once, no replacement, the crash logged as before', async () => {
    const r = rig();
    await started(r);
    const error = runnerWrapped(protocolError(26));
    (r.consumers[0] as ScriptedConsumer).crash(error, false);
    assert.deepEqual(r.fatal, [error]);
    await sleep(30);
    assert.equal(r.consumers.length, 1);
    assert.deepEqual(
      r.lines.map((l) => [l.level, l.msg, l.fields.restart]),
      [['error', 'route consumer crashed', false]],
    );
    assert.equal(await r.restartsMetric(), 0);
  });

  test('a crash kafkajs restarts itself is left to kafkajs', async () => {
    const r = rig();
    await started(r);
    (r.consumers[0] as ScriptedConsumer).crash(
      new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('refused'), {
        retryCount: 1,
        retryTime: 1,
      }),
      true,
    );
    await sleep(30);
    assert.equal(r.consumers.length, 1);
    assert.deepEqual(r.fatal, []);
    assert.equal(r.crashes.length, 1, 'still reported (readiness, error counter)');
    assert.deepEqual(
      r.lines.map((l) => [l.level, l.msg, l.fields.restart]),
      [['error', 'route consumer crashed', true]],
    );
  });

  test('the bound: after `attempts` replacements in a row that never joined, the next outage crash is fatal', async () => {
    const r = rig(2);
    await started(r);
    (r.consumers[0] as ScriptedConsumer).crash(OUTAGE(), false);
    await until(() => r.consumers[1]?.calls.includes('run') === true, 'first replacement');
    (r.consumers[1] as ScriptedConsumer).crash(OUTAGE(), false);
    await until(() => r.consumers[2]?.calls.includes('run') === true, 'second replacement');
    assert.deepEqual(r.fatal, []);
    const last = OUTAGE();
    (r.consumers[2] as ScriptedConsumer).crash(last, false);
    assert.equal(r.fatal.length, 1, 'budget exhausted: onFatal');
    const given: unknown = (r.fatal as unknown[])[0];
    if (!(given instanceof KafkaUnavailableError)) assert.fail(`a KafkaUnavailableError: ${String(given)}`);
    assert.equal(
      given.message,
      'Failed to find group coordinator (after 2 in-process restarts in a row, kafka.retries)',
    );
    assert.equal(given.cause, last);
    await sleep(30);
    assert.equal(r.consumers.length, 3, 'no third replacement');
    const final = r.lines.at(-1);
    assert.deepEqual(
      [final?.level, final?.msg, final?.fields.restart, final?.fields.in_process_restarts],
      ['error', 'route consumer crashed', false, 2],
    );
    assert.deepEqual(
      r.lines.filter((l) => l.level === 'warn').map((l) => [l.fields.attempt, l.fields.delay_ms]),
      [
        [1, 2],
        [2, 4],
      ],
      'backing off, doubling',
    );
    assert.equal(await r.restartsMetric(), 2);
  });

  test('a replacement that joined the group resets the count: each outage gets the whole budget', async () => {
    const r = rig(1);
    await started(r);
    for (let i = 0; i < 4; i++) {
      (r.consumers[i] as ScriptedConsumer).crash(OUTAGE(), false);
      await until(() => r.consumers[i + 1]?.calls.includes('run') === true, `replacement ${i + 1}`);
      (r.consumers[i + 1] as ScriptedConsumer).join([0]);
    }
    assert.deepEqual(r.fatal, []);
    assert.equal(r.restarting.restarts, 4);
  });

  test('kafka.retries 0: no in-process restart, the first outage crash is fatal (the old behaviour)', async () => {
    const r = rig(0);
    await started(r);
    const error = OUTAGE();
    (r.consumers[0] as ScriptedConsumer).crash(error, false);
    assert.equal(r.fatal.length, 1);
    assert.equal((r.fatal[0] as Error).cause, error);
    assert.match((r.fatal[0] as Error).message, /after 0 in-process restarts/);
    assert.equal(r.lines.at(-1)?.fields.in_process_restarts, 0);
  });

  test('a replacement that cannot connect (broker still away) counts as an attempt and is tried again', async () => {
    const refused = () =>
      new KafkaJSConnectionError('connect ECONNREFUSED 127.0.0.1:9092', { code: 'ECONNREFUSED' });
    const r = rig(3, [refused(), refused()]);
    await started(r);
    (r.consumers[0] as ScriptedConsumer).crash(OUTAGE(), false);
    await until(() => r.consumers[3]?.calls.includes('run') === true, 'third replacement runs');
    assert.deepEqual(r.consumers[1]?.calls, ['connect', 'disconnect']);
    assert.deepEqual(r.consumers[2]?.calls, ['connect', 'disconnect']);
    assert.deepEqual(r.fatal, []);
    assert.equal(r.restarting.restarts, 3);
    assert.match(String(r.lines.filter((l) => l.level === 'warn')[1]?.fields.error), /ECONNREFUSED/);
  });

  test('replacements that cannot connect use up the budget: then onFatal', async () => {
    const refused = () =>
      new KafkaJSConnectionError('connect ECONNREFUSED 127.0.0.1:9092', { code: 'ECONNREFUSED' });
    const r = rig(2, [refused(), refused(), refused()]);
    await started(r);
    (r.consumers[0] as ScriptedConsumer).crash(OUTAGE(), false);
    await until(() => r.fatal.length === 1, 'fatal');
    assert.equal(r.consumers.length, 3);
    assert.match(String((r.fatal[0] as Error).message), /ECONNREFUSED/);
    assert.equal(r.lines.at(-1)?.fields.in_process_restarts, 2);
  });

  test('a replacement failing on a fatal error (refused credentials) stops for good', async () => {
    const refused = new KafkaJSSASLAuthenticationError('SASL SCRAM SHA256 authentication failed');
    const r = rig(3, [refused]);
    await started(r);
    (r.consumers[0] as ScriptedConsumer).crash(OUTAGE(), false);
    await until(() => r.fatal.length === 1, 'fatal');
    assert.equal(r.fatal[0], refused);
    assert.equal(r.consumers.length, 2);
  });

  test('a replacement that neither joins nor fails within joinTimeoutMs counts as a failed attempt', async () => {
    const consumers: ScriptedConsumer[] = [];
    const lines: string[] = [];
    const restarting = new RestartingConsumer({
      create: () => {
        const c = new ScriptedConsumer(consumers.length);
        // The first replacement hangs in run(), as a join that never completes would.
        if (c.id === 1) c.run = () => new Promise<never>(() => undefined);
        consumers.push(c);
        return c as unknown as Consumer;
      },
      stage: 'route',
      log: (_level, msg, fields) => lines.push(`${msg} ${String(fields?.error)}`),
      policy: { attempts: 3, initialBackoffMs: 1, maxBackoffMs: 1 },
      joinTimeoutMs: 50,
    });
    await restarting.consumer.run({});
    (consumers[0] as ScriptedConsumer).crash(OUTAGE(), false);
    await until(() => consumers[2]?.calls.includes('run') === true, 'the second replacement runs');
    assert.ok(consumers[1]?.calls.includes('disconnect'), 'the stuck one was disconnected');
    assert.match(lines[1] ?? '', /did not connect and join its group within 0\.05 s/);
    // A late crash of the abandoned one changes nothing.
    (consumers[1] as ScriptedConsumer).crash(OUTAGE(), false);
    await sleep(20);
    assert.equal(consumers.length, 3);
    assert.equal(restarting.restarts, 2);
  });

  test('a stage clean-up that throws stops for good instead of leaving the stage without a consumer', async () => {
    const fatal: unknown[] = [];
    const broken = new Error('tasks could not be dropped');
    const consumers: ScriptedConsumer[] = [];
    const restarting = new RestartingConsumer({
      create: () => {
        const c = new ScriptedConsumer(consumers.length);
        consumers.push(c);
        return c as unknown as Consumer;
      },
      stage: 'streams',
      log: () => undefined,
      policy: { attempts: 3, initialBackoffMs: 1, maxBackoffMs: 1 },
      beforeRestart: () => {
        throw broken;
      },
      onFatal: (error) => fatal.push(error),
    });
    await restarting.consumer.run({});
    (consumers[0] as ScriptedConsumer).crash(OUTAGE(), false);
    await until(() => fatal.length === 1, 'fatal');
    assert.equal(fatal[0], broken);
    assert.equal(consumers.length, 1);
  });

  test('stopping during the backoff: no replacement, and late events of the crashed consumer are ignored', async () => {
    const r = rig(3);
    // A long backoff, so the stop surely comes first.
    const slow = new RestartingConsumer({
      create: () => {
        const c = new ScriptedConsumer(r.consumers.length);
        r.consumers.push(c);
        return c as unknown as Consumer;
      },
      stage: 'streams',
      log: () => undefined,
      policy: { attempts: 3, initialBackoffMs: 60_000, maxBackoffMs: 60_000 },
      onFatal: (error) => r.fatal.push(error),
    });
    const consumer = slow.consumer;
    await consumer.connect();
    await consumer.run({});
    const first = r.consumers.at(-1) as ScriptedConsumer;
    first.crash(OUTAGE(), false);
    const t0 = Date.now();
    await consumer.stop();
    await consumer.disconnect();
    await sleep(20);
    assert.ok(Date.now() - t0 < 5000, 'the stop did not wait for the backoff');
    assert.equal(r.consumers.at(-1), first, 'no replacement');
    first.crash(OUTAGE(), false);
    assert.deepEqual(r.fatal, [], 'nothing after the stop');
  });

  test('a removed listener is neither on the current consumer nor on a replacement', async () => {
    const r = rig();
    const remove = r.consumer.on(r.consumer.events.GROUP_JOIN, () => undefined);
    await started(r);
    const first = r.consumers[0] as ScriptedConsumer;
    const withOurs = first.listeners(EVENTS.GROUP_JOIN);
    remove();
    assert.equal(first.listeners(EVENTS.GROUP_JOIN), withOurs - 1);
    first.crash(OUTAGE(), false);
    await until(() => r.consumers[1]?.calls.includes('run') === true, 'replacement');
    assert.equal((r.consumers[1] as ScriptedConsumer).listeners(EVENTS.GROUP_JOIN), withOurs - 1);
    // A crash of the replaced consumer no longer matters.
    first.crash(OUTAGE(), false);
    await sleep(20);
    assert.equal(r.consumers.length, 2);
  });
});
