/**
 * The usage audit on hand-built streams: every error code, verified, warnings, the new events'
 * traits and ids, the notifications left in env, and the cases where the reference raises. Several
 * cases re-express the reference's own tests (tests/test_usage_handler.py) as whole streams.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BUILTIN_HANDLER_CLASSES } from '../../../src/handlers/index.js';
import {
  EXISTS,
  EXISTS_FAILED,
  EXISTS_VERIFIED,
  EXISTS_WARNINGS,
  USAGE_NOTIFICATIONS_KEY,
  UsageAuditError,
  UsageHandler,
} from '../../../src/handlers/usage.js';
import { NIL_UUID, parseUuid, uuidV5, uuidV5Bytes } from '../../../src/handlers/uuid.js';
import type { Logger } from '../../../src/log.js';
import { silentLogger } from '../../../src/log.js';
import { datetime, type Event, int, type TraitValue, text } from '../../../src/model/event.js';
import type { PipelineDefinition } from '../../../src/pipeline/definitions.js';
import type { HandlerEnv, HandlerFactory, PublishPort } from '../../../src/pipeline/handler.js';
import { runPipeline } from '../../../src/pipeline/runner.js';
import { type Instant, parseDatetime, US_PER_DAY, US_PER_HOUR } from '../../../src/timex/instant.js';

const at = (s: string): Instant => parseDatetime(s);
const APB = at('2014-12-30T00:00:00Z');
const APE = APB + US_PER_DAY;
const EXISTS_ID = 'c94c9cf1-6146-4ccb-a867-f97a305b53e7';

let seq = 0;
/** A fresh UUID message id per call (deterministic across runs). */
const nextId = (): string => uuidV5(NIL_UUID, `usage-test-${seq++}`);

function ev(
  event_type: string,
  timestamp: Instant,
  traits: Record<string, TraitValue> = {},
  id?: string,
): Event {
  return {
    message_id: id ?? nextId(),
    event_type,
    timestamp,
    traits: { instance_id: text('inst-1'), ...traits },
  };
}

/** An end-of-day .exists of an active instance launched before the audit day. */
function exists(traits: Record<string, TraitValue | undefined> = {}, id = EXISTS_ID, ts = APE + 5): Event {
  const base: Record<string, TraitValue> = {
    tenant_id: text('144913'),
    state: text('active'),
    launched_at: datetime(at('2014-12-01T10:00:00Z')),
    instance_flavor_id: int(2),
    os_architecture: text('x64'),
    os_version: text('12.04'),
    os_distro: text('com.ubuntu'),
    audit_period_beginning: datetime(APB),
    audit_period_ending: datetime(APE),
  };
  for (const [k, v] of Object.entries(traits)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return ev(EXISTS, ts, base, id);
}

/** An operation during the audit day, carrying the same core fields as {@link exists}. */
function op(event_type: string, hour: number, traits: Record<string, TraitValue> = {}): Event {
  return ev(event_type, APB + hour * US_PER_HOUR, {
    tenant_id: text('144913'),
    launched_at: datetime(at('2014-12-01T10:00:00Z')),
    instance_flavor_id: int(2),
    os_architecture: text('x64'),
    os_version: text('12.04'),
    os_distro: text('com.ubuntu'),
    ...traits,
  });
}

function envOf(streamId = '123'): HandlerEnv {
  return {
    batch_id: 'batch-1',
    stream_id: streamId,
    stream_name: 'usage_trigger',
    trigger: 'usage_trigger',
    kind: 'fire',
    pipeline: 'usage_pipeline',
    distinguishing: {},
  };
}

function run(events: Event[], streamId = '123', log: Logger = silentLogger) {
  const env = envOf(streamId);
  const input = events.slice();
  const out = new UsageHandler({}, { log }).handleEvents(input, env);
  assert.deepEqual(input, events, 'the input list is not modified');
  for (let i = 0; i < events.length; i++)
    assert.equal(out[i], events[i], 'input events come first, as they are');
  return {
    out,
    added: out.slice(events.length),
    notifications: env[USAGE_NOTIFICATIONS_KEY] as Record<string, unknown>[],
  };
}

/** The single verdict of a one-.exists stream, with its code (undefined when verified). */
function verdict(events: Event[]): { type: string; code: string | undefined; error: string } {
  const { added } = run(events);
  const v = added.at(-1)!;
  return {
    type: v.event_type,
    code: v.traits.error_code?.value as string | undefined,
    error: String(v.traits.error?.value),
  };
}

const failed = (code: string, error: string) => ({ type: EXISTS_FAILED, code, error });
const VERIFIED = { type: EXISTS_VERIFIED, code: undefined, error: 'None' };

describe('usage handler: stream shapes', () => {
  test('an empty stream adds nothing and leaves an empty notification list', () => {
    const { out, notifications } = run([]);
    assert.deepEqual(out, []);
    assert.deepEqual(notifications, []);
  });

  test('operations without any .exists: one U0 failure dated at the first operation', () => {
    const first = op('compute.instance.update', 3);
    const { added, notifications } = run([first, op('compute.instance.reboot.end', 4)]);
    assert.equal(added.length, 1);
    const u0 = added[0]!;
    assert.equal(u0.event_type, EXISTS_FAILED);
    assert.equal(u0.timestamp, first.timestamp);
    assert.equal(u0.message_id, uuidV5(parseUuid(first.message_id)!, EXISTS_FAILED));
    assert.deepEqual(
      { ...u0.traits },
      {
        stream_id: int(123),
        instance_id: text('inst-1'),
        error: text('Notifications, but no .exists notification found.'),
        error_code: text('U0'),
      },
    );
    assert.deepEqual(notifications, [
      {
        message_id: u0.message_id,
        event_type: EXISTS_FAILED,
        timestamp: '2014-12-30T03:00:00.000000Z',
        stream_id: 123,
        instance_id: 'inst-1',
        error: 'Notifications, but no .exists notification found.',
        error_code: 'U0',
      },
    ]);
  });

  test('U0 without an instance_id: the trait is absent, the notification has null', () => {
    const dangling: Event = { message_id: nextId(), event_type: 'foo', timestamp: APB, traits: {} };
    const { added, notifications } = run([dangling]);
    assert.equal(added[0]!.traits.instance_id, undefined);
    assert.equal(notifications[0]!.instance_id, null);
  });

  test('operations after the last .exists: its verdict, then U0 (the reference test "dangling")', () => {
    const { added } = run([op('foo', 1), exists(), op('foo', 30)]);
    assert.deepEqual(
      added.map((e) => [e.event_type, e.traits.error_code?.value]),
      [
        [EXISTS_VERIFIED, undefined],
        [EXISTS_FAILED, 'U0'],
      ],
    );
  });

  test('one verdict per .exists, each judged on the operations since the previous one', () => {
    const midday = exists(
      { audit_period_ending: datetime(APB + 12 * US_PER_HOUR) },
      '0f0e0d0c-0b0a-4908-8706-050403020100',
      APB + 12 * US_PER_HOUR,
    );
    // The second block has a rebuild that disagrees with the end-of-day .exists.
    const { added } = run([
      op('compute.instance.rebuild.end', 2),
      midday,
      op('compute.instance.rebuild.end', 14, { os_version: text('14.04') }),
      exists(),
    ]);
    assert.deepEqual(
      added.map((e) => [e.event_type, e.traits.error_code?.value]),
      [
        [EXISTS_VERIFIED, undefined],
        [EXISTS_FAILED, 'U2'],
      ],
    );
  });
});

describe('usage handler: verdicts', () => {
  test('verified: an active instance launched before the day, with operations', () => {
    assert.deepEqual(verdict([op('compute.instance.reboot.end', 5), exists()]), VERIFIED);
  });

  test('verified: a stream with only the .exists of an instance launched earlier', () => {
    assert.deepEqual(verdict([exists()]), VERIFIED);
  });

  test('U1: an active .exists without launched_at (or with an empty one)', () => {
    const want = failed('U1', '.exists has no launched_at value.');
    assert.deepEqual(verdict([op('foo', 1), exists({ launched_at: undefined })]), want);
    assert.deepEqual(verdict([op('foo', 1), exists({ launched_at: text('') })]), want);
  });

  test('U8: launched in the audit period (bounds included) with no other event', () => {
    const want = failed('U8', '.exists launched_at in audit period, but no related events found.');
    for (const launched of [APB, APB + US_PER_HOUR, APE]) {
      assert.deepEqual(verdict([exists({ launched_at: datetime(launched) })]), want);
    }
    // The same .exists with the creation events in its block is fine.
    assert.deepEqual(
      verdict([op('compute.instance.create.end', 1), exists({ launched_at: datetime(APB + US_PER_HOUR) })]),
      VERIFIED,
    );
  });

  test('U8 is only for active instances (the reference test "confirm_launched_at")', () => {
    assert.deepEqual(
      verdict([exists({ state: text('stopped'), launched_at: datetime(APB + US_PER_HOUR) })]),
      VERIFIED,
    );
  });

  test('U2: the last rebuild/resize/rescue disagrees with the .exists, message as the reference', () => {
    assert.deepEqual(
      verdict([op('compute.instance.finish_resize.end', 3, { instance_flavor_id: int(5) }), exists()]),
      failed('U2', "Conflicting 'instance_flavor_id' values ('5' != '2')"),
    );
    assert.deepEqual(
      verdict([
        op('compute.instance.rebuild.end', 3, { launched_at: datetime(at('2014-12-30T03:00:00.5Z')) }),
        exists(),
      ]),
      failed(
        'U2',
        "Conflicting 'launched_at' values ('2014-12-30 03:00:00.500000' != '2014-12-01 10:00:00')",
      ),
    );
  });

  test('U2 only looks at the last rebuild/resize/rescue of the block', () => {
    assert.deepEqual(
      verdict([
        op('compute.instance.rebuild.end', 3, { os_distro: text('rhel') }),
        op('compute.instance.rescue.end', 4),
        exists(),
      ]),
      VERIFIED,
    );
  });

  test('U2 compares ints and floats by value, as Python does', () => {
    assert.deepEqual(
      verdict([
        op('compute.instance.rebuild.end', 3, { instance_flavor_id: { type: 'float', value: 2 } }),
        exists(),
      ]),
      VERIFIED,
    );
  });

  test('a core field absent from both events is not compared', () => {
    assert.deepEqual(
      verdict([
        {
          ...op('compute.instance.rebuild.end', 3),
          traits: { launched_at: datetime(at('2014-12-01T10:00:00Z')) },
        },
        exists({
          tenant_id: undefined,
          instance_flavor_id: undefined,
          os_architecture: undefined,
          os_version: undefined,
          os_distro: undefined,
        }),
      ]),
      VERIFIED,
    );
  });

  const deletedAt = APB + 6 * US_PER_HOUR;
  const deleted = (traits: Record<string, TraitValue | undefined> = {}): Event =>
    exists({ state: text('deleted'), deleted_at: datetime(deletedAt), ...traits });
  const deleteEnd = (traits: Record<string, TraitValue> = {}): Event =>
    op('compute.instance.delete.end', 6, { deleted_at: datetime(deletedAt), ...traits });

  test('verified: deleted during the day with its .delete.end', () => {
    assert.deepEqual(verdict([op('compute.instance.delete.start', 5), deleteEnd(), deleted()]), VERIFIED);
  });

  test('verified: deleted before the audit period, no .delete.end expected', () => {
    assert.deepEqual(verdict([deleted({ deleted_at: datetime(APB - US_PER_HOUR) })]), VERIFIED);
  });

  test("U3: deleted_at set but the state is not 'deleted'", () => {
    const want = failed('U3', ".exists state not 'deleted' but .exists deleted_at is set.");
    assert.deepEqual(verdict([deleteEnd(), deleted({ state: text('stopped') })]), want);
    // The reference test: {'deleted_at': 'now', 'state': 'active'} (a text deleted_at is just truthy).
    assert.deepEqual(verdict([op('foo', 1), exists({ deleted_at: text('now') })]), want);
  });

  test('U4: deleted_at before launched_at without a .delete.end', () => {
    assert.deepEqual(
      verdict([
        op('foo', 1),
        deleted({
          deleted_at: datetime(at('2014-12-31T01:00:00Z')),
          launched_at: datetime(at('2014-12-31T02:00:00Z')),
        }),
      ]),
      failed('U4', '.exists deleted_at < .exists launched_at.'),
    );
  });

  test('U5: deleted_at in the audit period (bounds included) without a .delete.end', () => {
    const want = failed('U5', '.exists deleted_at in audit period, but no matching .delete event found.');
    for (const t of [APB, deletedAt, APE])
      assert.deepEqual(verdict([op('foo', 1), deleted({ deleted_at: datetime(t) })]), want);
  });

  test('U6: a .delete.end but no deleted_at on the .exists', () => {
    assert.deepEqual(
      verdict([deleteEnd(), deleted({ deleted_at: undefined })]),
      failed('U6', '.deleted events found but .exists has no deleted_at value.'),
    );
  });

  test('U7: more than one .delete.end', () => {
    assert.deepEqual(
      verdict([deleteEnd(), deleteEnd(), deleted()]),
      failed('U7', 'Multiple .delete.end events'),
    );
  });

  test('U2: the .delete.end disagrees on deleted_at (the .exists value first)', () => {
    assert.deepEqual(
      verdict([deleteEnd({ deleted_at: datetime(deletedAt + 1) }), deleted()]),
      failed('U2', "Conflicting 'deleted_at' values ('2014-12-30 06:00:00' != '2014-12-30 06:00:00.000001')"),
    );
  });

  test('checks run in the reference order: U1/U8 before U2 before the delete checks', () => {
    // Active, launched in the period, alone: U8 even though deleted_at is also inconsistent (U3).
    assert.deepEqual(
      verdict([exists({ launched_at: datetime(APB + 1), deleted_at: datetime(APB + 2) })]).code,
      'U8',
    );
    // A rebuild conflict (U2) wins over a missing .delete.end (U5).
    assert.deepEqual(
      verdict([op('compute.instance.rebuild.end', 2, { os_version: text('x') }), deleted()]).code,
      'U2',
    );
  });
});

describe('usage handler: warnings', () => {
  const nonEod = (traits: Record<string, TraitValue | undefined> = {}, id = EXISTS_ID): Event =>
    exists({ audit_period_ending: datetime(APB + US_PER_HOUR), ...traits }, id);

  test('a non-EOD .exists with no rebuild/resize/rescue: a .warnings event before the verdict', () => {
    const { added, notifications } = run([op('compute.instance.reboot.end', 0.5), nonEod()]);
    assert.deepEqual(
      added.map((e) => e.event_type),
      [EXISTS_WARNINGS, EXISTS_VERIFIED],
    );
    const w = added[0]!;
    assert.equal(w.message_id, uuidV5(parseUuid(EXISTS_ID)!, EXISTS_WARNINGS));
    assert.deepEqual(
      { ...w.traits },
      {
        publisher_id: text('stv3'),
        stream_id: int(123),
        instance_id: text('inst-1'),
        warnings: text(`Non-EOD .exists found (msg_id: ${EXISTS_ID}) with no operation event.`),
      },
    );
    assert.equal(notifications[0]!.warnings, w.traits.warnings!.value);
  });

  test('no warning for an end-of-day .exists, or when a rebuild/resize/rescue is in the block', () => {
    assert.deepEqual(
      run([op('foo', 1), exists()]).added.map((e) => e.event_type),
      [EXISTS_VERIFIED],
    );
    assert.deepEqual(
      run([op('compute.instance.rescue.end', 0.5), nonEod()]).added.map((e) => e.event_type),
      [EXISTS_VERIFIED],
    );
  });

  test('a .exists from midnight to 00:00 two days later is not end-of-day (the date check)', () => {
    const { added } = run([op('foo', 1), exists({ audit_period_ending: datetime(APB + 2 * US_PER_DAY) })]);
    assert.deepEqual(
      added.map((e) => e.event_type),
      [EXISTS_WARNINGS, EXISTS_VERIFIED],
    );
  });

  test('warnings accumulate over the stream, as in the reference', () => {
    const second = '11111111-2222-4333-8444-555555555555';
    const { added } = run([op('foo', 0.2), nonEod(), op('foo', 0.7), nonEod({}, second)]);
    assert.deepEqual(
      added.map((e) => e.event_type),
      [EXISTS_WARNINGS, EXISTS_VERIFIED, EXISTS_WARNINGS, EXISTS_VERIFIED],
    );
    assert.equal(
      added[2]!.traits.warnings!.value,
      `Non-EOD .exists found (msg_id: ${EXISTS_ID}) with no operation event., Non-EOD .exists found (msg_id: ${second}) with no operation event.`,
    );
    // A later end-of-day .exists still carries the earlier warning.
    const eod = run([op('foo', 0.2), nonEod(), op('foo', 5), exists({}, second)]).added;
    assert.deepEqual(
      eod.map((e) => e.event_type),
      [EXISTS_WARNINGS, EXISTS_VERIFIED, EXISTS_WARNINGS, EXISTS_VERIFIED],
    );
  });

  test('a warning and a failure together', () => {
    const { added } = run([
      op('foo', 0.2),
      nonEod({ state: text('deleted'), deleted_at: datetime(APB + 0.5 * US_PER_HOUR) }),
    ]);
    assert.deepEqual(
      added.map((e) => [e.event_type, e.traits.error_code?.value]),
      [
        [EXISTS_WARNINGS, undefined],
        [EXISTS_FAILED, 'U5'],
      ],
    );
  });

  test('no warning when U1/U8 fail first', () => {
    const { added } = run([nonEod({ launched_at: datetime(APB + 1) })]);
    assert.deepEqual(
      added.map((e) => [e.event_type, e.traits.error_code?.value]),
      [[EXISTS_FAILED, 'U8']],
    );
  });

  test('the .warnings instance_id is n/a when the .exists has none', () => {
    const e = nonEod();
    const bare: Event = {
      ...e,
      traits: Object.fromEntries(Object.entries(e.traits).filter(([k]) => k !== 'instance_id')),
    };
    assert.deepEqual(run([op('foo', 0.2), bare]).added[0]!.traits.instance_id, text('n/a'));
  });
});

describe('usage handler: the verdict event and its notification', () => {
  test('verified: the .exists traits, the defaults, and the reference bookkeeping fields', () => {
    const x = exists({ bandwidth_in: int(77), display_name: text('vm') });
    const { added, notifications } = run([op('foo', 1), x]);
    const v = added[0]!;
    // uuid.uuid5(uuid.UUID(EXISTS_ID), 'compute.instance.exists.verified') in CPython.
    assert.equal(v.message_id, 'c1a4c9a6-607d-527d-8d70-5eef2e924604');
    assert.equal(v.event_type, EXISTS_VERIFIED);
    assert.equal(v.timestamp, x.timestamp);
    assert.deepEqual(
      { ...v.traits },
      {
        ...x.traits,
        bandwidth_in: int(77),
        bandwidth_out: int(0),
        rax_options: text('0'),
        original_message_id: text(EXISTS_ID),
        publisher_id: text('stv3'),
        stream_id: int(123),
        error: text('None'),
      },
    );
    assert.deepEqual(notifications, [
      {
        message_id: 'c1a4c9a6-607d-527d-8d70-5eef2e924604',
        event_type: EXISTS_VERIFIED,
        timestamp: '2014-12-31T00:00:00.000005Z',
        instance_id: 'inst-1',
        tenant_id: '144913',
        state: 'active',
        launched_at: '2014-12-01T10:00:00.000000Z',
        instance_flavor_id: 2,
        os_architecture: 'x64',
        os_version: '12.04',
        os_distro: 'com.ubuntu',
        audit_period_beginning: '2014-12-30T00:00:00.000000Z',
        audit_period_ending: '2014-12-31T00:00:00.000000Z',
        bandwidth_in: 77,
        display_name: 'vm',
        bandwidth_out: 0,
        rax_options: '0',
        original_message_id: EXISTS_ID,
        publisher_id: 'stv3',
        stream_id: 123,
        error: 'None',
        error_code: null,
      },
    ]);
  });

  test('failed: message id from the failed type; error and error_code set', () => {
    const v = run([exists({ launched_at: undefined })]).added[0]!;
    assert.equal(v.message_id, 'd4dacc75-e698-58b3-987c-4e54be3581b1');
    assert.deepEqual(v.traits.error, text('.exists has no launched_at value.'));
    assert.deepEqual(v.traits.error_code, text('U1'));
  });

  test('a verified verdict drops an error_code the .exists happened to carry (None is not saved)', () => {
    const v = run([op('foo', 1), exists({ error_code: text('stale') })]).added[0]!;
    assert.equal(v.traits.error_code, undefined);
  });

  test('the same stream gives the same ids every time, warnings and U0 included', () => {
    const events = [
      op('foo', 0.2),
      exists({ audit_period_ending: datetime(APB + US_PER_HOUR) }),
      op('foo', 3),
    ];
    const a = run(events).added.map((e) => e.message_id);
    const b = run(events).added.map((e) => e.message_id);
    assert.equal(a.length, 3);
    assert.deepEqual(a, b);
    assert.equal(new Set(a).size, 3);
  });

  test('a message id that is not a UUID still gives a derived id (the reference would raise)', () => {
    const v = run([op('foo', 1), exists({}, 'exists-1')]).added[0]!;
    assert.equal(v.message_id, uuidV5(uuidV5Bytes(NIL_UUID, 'exists-1'), EXISTS_VERIFIED));
  });

  test('stream_id is an int for a numeric stream id, text otherwise', () => {
    assert.deepEqual(run([exists()], '42').added[0]!.traits.stream_id, int(42));
    assert.deepEqual(run([exists()], 'p3-17').added[0]!.traits.stream_id, text('p3-17'));
  });

  test('the notification list replaces any previous one under the key', () => {
    const env = envOf();
    env[USAGE_NOTIFICATIONS_KEY] = ['stale'];
    new UsageHandler({}, { log: silentLogger }).handleEvents([exists()], env);
    assert.equal((env[USAGE_NOTIFICATIONS_KEY] as unknown[]).length, 1);
  });

  test('a failure is logged once at warn with its code; a verified stream logs nothing', () => {
    const lines: [string, string, Record<string, unknown> | undefined][] = [];
    const log: Logger = (level, msg, fields) => lines.push([level, msg, fields]);
    run([op('foo', 1), exists()], '1', log);
    assert.equal(lines.length, 0);
    run([exists({ launched_at: undefined })], '1', log);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]![0], 'warn');
    assert.equal(lines[0]![2]!.error_code, 'U1');
    assert.equal(lines[0]![2]!.message_id, EXISTS_ID);
  });
});

describe('usage handler: where the reference raises, the batch fails', () => {
  test('deleted without launched_at and without .delete.end (datetime < None)', () => {
    assert.throws(
      () =>
        run([
          op('foo', 1),
          exists({ state: text('deleted'), deleted_at: datetime(APB + 1), launched_at: undefined }),
        ]),
      (err: unknown) => err instanceof UsageAuditError && err.message.includes(EXISTS_ID),
    );
  });

  test('a core field on only one side of a rebuild comparison (KeyError)', () => {
    const rebuild = op('compute.instance.rebuild.end', 2);
    const { os_distro: _, ...traits } = rebuild.traits;
    assert.throws(() => run([{ ...rebuild, traits }, exists()]), UsageAuditError);
  });

  test('audit period bounds that are not datetimes, where the date is needed', () => {
    assert.throws(
      () =>
        run([
          op('foo', 1),
          exists({ audit_period_beginning: text('2014-12-30'), audit_period_ending: text('x') }),
        ]),
      UsageAuditError,
    );
  });
});

describe('usage handler in the StackTach pipeline (usage, then notabene with env_keys)', () => {
  test('the verdicts are new events and the notifications are published once each, keyed by message id', async () => {
    const published: { topic: string; key: string | null; value: string }[] = [];
    const publish: PublishPort = async (topic, messages) => {
      for (const m of messages) published.push({ topic, key: m.key, value: m.value });
    };
    const pipeline: PipelineDefinition = {
      name: 'test_fire_pipeline',
      handlers: [
        { name: 'usage', handler: { kind: 'builtin', name: 'usage' }, params: {} },
        {
          name: 'notabene',
          handler: { kind: 'builtin', name: 'notabene' },
          params: { queue_name: 'monitor.info', env_keys: ['usage_notifications'] },
        },
      ],
    };
    const create: HandlerFactory = (step) => {
      const cls = BUILTIN_HANDLER_CLASSES[step.name as 'usage' | 'notabene'];
      assert.ok(cls, `${step.name} is registered`);
      return new cls(step.params, { log: silentLogger, publish });
    };
    const events = [op('compute.instance.rebuild.end', 2), exists(), op('foo', 30)];
    const outcome = await runPipeline(pipeline, { events, env: envOf() }, create, silentLogger);
    assert.ok(outcome.ok);
    assert.deepEqual(
      outcome.newEvents.map((e) => [e.event_type, e.traits.error_code?.value]),
      [
        [EXISTS_VERIFIED, undefined],
        [EXISTS_FAILED, 'U0'],
      ],
    );
    assert.deepEqual(
      published.map((p) => [p.topic, p.key]),
      outcome.newEvents.map((e) => ['monitor.info', e.message_id]),
    );
    const first = JSON.parse(published[0]!.value) as Record<string, unknown>;
    assert.equal(first.event_type, EXISTS_VERIFIED);
    assert.equal(first.original_message_id, EXISTS_ID);
    assert.equal(first.launched_at, '2014-12-01T10:00:00.000000Z');
  });
});
