import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  alignColumns,
  eventJson,
  formatDistinguishing,
  formatDistinguishingValue,
  formatListTable,
  formatRetryOutcomes,
  formatStreamView,
  type ListOptions,
  listQuery,
  parseDuration,
  parseStreamsArgs,
  planRetry,
  type RetryOutcome,
  retrySummary,
  streamSummaryJson,
  streamViewJson,
} from '../../../src/cli/streams.js';
import {
  compileDistinguishingFilter,
  type RetryCandidate,
  STREAM_STATES,
} from '../../../src/db/streams-query.js';
import { UsageError } from '../../../src/errors.js';
import { parseJsonLossless } from '../../../src/model/event-json.js';
import { MAX_INSTANT, MIN_INSTANT, parseDatetime } from '../../../src/timex/instant.js';
import type { DistinguishingValue } from '../../../src/triggers/types.js';
import { runCli } from '../../helpers/cli.js';

const H = 3_600_000_000;
const t = (s: string) => parseDatetime(s);

describe('parseDuration', () => {
  test('a number and a unit, or several, in microseconds', () => {
    assert.equal(parseDuration('45s'), 45_000_000);
    assert.equal(parseDuration('90m'), 90 * 60_000_000);
    assert.equal(parseDuration('2h'), 2 * H);
    assert.equal(parseDuration('3d'), 72 * H);
    assert.equal(parseDuration('1w'), 168 * H);
    assert.equal(parseDuration('1h30m'), 1.5 * H);
    assert.equal(parseDuration('1.5h'), 1.5 * H);
    assert.equal(parseDuration('0s'), 0);
  });

  test('anything else is a usage error naming the option', () => {
    for (const bad of ['', '2', 'h', '2x', '-1h', ' 2h', '2h ', '2 h', '1.h', 'PT2H', '2H']) {
      assert.throws(
        () => parseDuration(bad, '--older-than'),
        (e: unknown) => e instanceof UsageError && /--older-than expects a duration/.test(e.message),
        bad,
      );
    }
  });
});

describe('parseStreamsArgs', () => {
  test('list: defaults and every filter', () => {
    assert.deepEqual(parseStreamsArgs(['list']), {
      action: 'list',
      config: undefined,
      trigger: undefined,
      state: undefined,
      distinguishing: [],
      olderThan: undefined,
      newerThan: undefined,
      limit: 50,
      format: 'table',
    });
    const o = parseStreamsArgs([
      'list',
      '-c',
      'w.yaml',
      '--trigger',
      'usage',
      '--state',
      'expire_error',
      '--distinguishing',
      'instance_id=abc',
      '--distinguishing',
      'n=3',
      '--older-than',
      '2h',
      '--newer-than',
      '3d',
      '--limit',
      '7',
      '--format',
      'json',
    ]) as ListOptions;
    assert.equal(o.config, 'w.yaml');
    assert.equal(o.trigger, 'usage');
    assert.equal(o.state, 'expire_error');
    assert.deepEqual(
      o.distinguishing.map((f) => f.name),
      ['instance_id', 'n'],
    );
    assert.equal(o.olderThan, 2 * H);
    assert.equal(o.newerThan, 72 * H);
    assert.equal(o.limit, 7);
    assert.equal(o.format, 'json');
  });

  test('an unknown state lists the valid ones', () => {
    assert.throws(
      () => parseStreamsArgs(['list', '--state', 'broken']),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message === `streams: unknown state 'broken' (valid states: ${STREAM_STATES.join(', ')})`,
    );
  });

  test('usage errors', () => {
    const cases: [string[], RegExp][] = [
      [[], /missing action/],
      [['lst'], /unknown action 'lst'/],
      [['list', 'x'], /unexpected argument 'x'/],
      [['list', '--limit', '0'], /--limit expects/],
      [['list', '--limit', '2.5'], /--limit expects/],
      [['list', '--limit', 'ten'], /--limit expects/],
      [['list', '--format', 'yaml'], /--format expects table or json/],
      [['list', '--distinguishing', 'novalue'], /expects NAME=VALUE/],
      [['list', '--distinguishing', '=x'], /expects NAME=VALUE/],
      [['list', '--dry-run'], /--dry-run does not go with list/],
      [['list', '--trigger', ''], /--trigger expects a trigger name/],
      [['show'], /show needs a stream ID/],
      [['show', 'a', 'b'], /one stream ID/],
      [['show', 'a', '--state', 'error'], /--state does not go with show/],
      [['retry'], /needs stream IDs or --state/],
      [['retry', 'a', '--state', 'error'], /not both/],
      [['retry', '--state', 'active'], /takes error or expire_error/],
      [['retry', '--state', 'nope'], /unknown state 'nope'/],
      [['retry', 'a', '--trigger', 'x'], /--trigger only goes with --state/],
      [['retry', 'a', '--timeout', '0'], /--timeout expects/],
      [['retry', 'a', '--format', 'json'], /--format does not go with retry/],
      [['list', '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, pattern] of cases) {
      assert.throws(
        () => parseStreamsArgs(args),
        (e: unknown) => e instanceof UsageError && pattern.test(e.message),
        args.join(' '),
      );
    }
  });

  test('show and retry', () => {
    assert.deepEqual(parseStreamsArgs(['show', 'p0-1', '--format', 'json']), {
      action: 'show',
      config: undefined,
      id: 'p0-1',
      format: 'json',
    });
    assert.deepEqual(parseStreamsArgs(['retry', 'b', 'a', 'b', '--dry-run', '--timeout', '2.5']), {
      action: 'retry',
      config: undefined,
      ids: ['b', 'a'],
      state: undefined,
      trigger: undefined,
      dryRun: true,
      timeoutMs: 2500,
    });
    assert.deepEqual(parseStreamsArgs(['retry', '--state', 'expire_error', '--trigger', 'usage']), {
      action: 'retry',
      config: undefined,
      ids: [],
      state: 'expire_error',
      trigger: 'usage',
      dryRun: false,
      timeoutMs: 30_000,
    });
  });

  test('through the CLI: usage errors exit 2 before any configuration is read', async () => {
    const r = await runCli(['streams', 'list', '--state', 'broken', '-c', '/nonexistent.yaml']);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      `winchester: streams: unknown state 'broken' (valid states: ${STREAM_STATES.join(', ')})\n`,
    );
    const help = await runCli(['streams', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: winchester streams list/);
    const stateHelp = help.stdout.slice(
      help.stdout.indexOf('\n  --state STATE'),
      help.stdout.indexOf('\n  --distinguishing NAME'),
    );
    for (const state of STREAM_STATES) assert.match(stateHelp, new RegExp(`\\b${state}\\b`), state);
    const top = await runCli(['--help']);
    assert.match(top.stdout, /\n {2}streams +list, show and retry/);
  });
});

describe('listQuery', () => {
  test('ages are measured back from now on the first event', () => {
    const opts = parseStreamsArgs(['list', '--older-than', '2h', '--newer-than', '3d']) as ListOptions;
    const now = t('2026-01-10T00:00:00Z');
    const q = listQuery(opts, now);
    assert.equal(q.firstBefore, now - 2 * H);
    assert.equal(q.firstAfter, now - 72 * H);
    assert.equal(q.limit, 50);
    assert.equal(listQuery(opts, now, 51).limit, 51);
    const plain = listQuery(parseStreamsArgs(['list', '--state', 'error']) as ListOptions, now);
    assert.deepEqual(plain, { state: 'error', distinguishing: [], limit: 50 });
  });
});

describe('distinguishing values: printed and read back', () => {
  test('what a VALUE stands for', () => {
    assert.deepEqual(compileDistinguishingFilter('n', 'abc'), {
      name: 'n',
      equals: [{ type: 'text', value: 'abc' }],
      within: null,
    });
    assert.deepEqual(compileDistinguishingFilter('n', '3').equals, [
      { type: 'text', value: '3' },
      { type: 'int', value: 3 },
      { type: 'float', value: 3 },
    ]);
    assert.deepEqual(compileDistinguishingFilter('n', '2.5').equals, [
      { type: 'text', value: '2.5' },
      { type: 'float', value: 2.5 },
    ]);
    assert.deepEqual(compileDistinguishingFilter('n', '"3"').equals, [{ type: 'text', value: '3' }]);
    const day = compileDistinguishingFilter('ts', '2014-08-01');
    assert.equal(day.within, t('2014-08-01T00:00:00Z'));
    assert.deepEqual(day.equals.at(-1), { type: 'datetime', value: t('2014-08-01T00:00:00Z') });
    const range = compileDistinguishingFilter('ts', '2014-08-01T00:00:00Z/2014-08-02T00:00:00Z');
    assert.equal(range.within, null);
    assert.deepEqual(range.equals.at(-1), {
      type: 'range',
      begin: t('2014-08-01T00:00:00Z'),
      end: t('2014-08-02T00:00:00Z'),
    });
    // An integer too large for an int is still a float.
    assert.deepEqual(
      compileDistinguishingFilter('n', '9007199254740993').equals.map((v) => v.type),
      ['text', 'float'],
    );
  });

  test('the printed form', () => {
    assert.equal(formatDistinguishingValue({ type: 'text', value: 'abc-1' }), 'abc-1');
    assert.equal(formatDistinguishingValue({ type: 'text', value: '3' }), '"3"');
    assert.equal(formatDistinguishingValue({ type: 'text', value: 'a b' }), '"a b"');
    assert.equal(formatDistinguishingValue({ type: 'text', value: '' }), '""');
    assert.equal(formatDistinguishingValue({ type: 'int', value: 3 }), '3');
    assert.equal(formatDistinguishingValue({ type: 'float', value: 3 }), '3.0');
    assert.equal(
      formatDistinguishingValue({ type: 'range', begin: t('2014-08-01'), end: t('2014-08-02') }),
      '2014-08-01T00:00:00.000000Z/2014-08-02T00:00:00.000000Z',
    );
    assert.equal(
      formatDistinguishing({ z: { type: 'int', value: 1 }, a: { type: 'text', value: 'x' } }),
      'a=x z=1',
    );
    assert.equal(formatDistinguishing({}), '-');
  });

  const instant = fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT });
  const value: fc.Arbitrary<DistinguishingValue> = fc.oneof(
    fc.string().map((value) => ({ type: 'text' as const, value })),
    fc
      .constantFrom('3', '1.5', '2014-08-01', 'NaN', ' x', 'a=b', '"q"')
      .map((value) => ({ type: 'text' as const, value })),
    fc.maxSafeInteger().map((value) => ({ type: 'int' as const, value })),
    fc
      .double({ noNaN: true, noDefaultInfinity: true })
      .map((value) => ({ type: 'float' as const, value: value === 0 ? 0 : value })),
    instant.map((value) => ({ type: 'datetime' as const, value })),
    fc
      .tuple(instant, instant)
      .map(([a, b]) => ({ type: 'range' as const, begin: Math.min(a, b), end: Math.max(a, b) })),
  );

  test('property: list prints each value so that --distinguishing NAME=<printed> finds it', () => {
    fc.assert(
      fc.property(value, (v) => {
        const f = compileDistinguishingFilter('n', formatDistinguishingValue(v));
        assert.ok(
          f.equals.some((e) => JSON.stringify(e) === JSON.stringify(v)),
          `${JSON.stringify(v)} not among ${JSON.stringify(f.equals)}`,
        );
        // Never a value of another type with a different meaning: every typed candidate is the same text.
        for (const e of f.equals) {
          if (e.type === v.type && e.type !== 'text') assert.deepEqual(e, v);
        }
      }),
      { numRuns: 500 },
    );
  });
});

const summary = {
  id: 'p0-12',
  trigger: 'usage',
  state: 'error' as const,
  events: 3,
  first: t('2014-08-01T10:00:00.000001Z'),
  last: t('2014-08-01T11:30:00Z'),
  distinguishing: {
    timestamp: { type: 'range' as const, begin: t('2014-08-01'), end: t('2014-08-02') },
    instance_id: { type: 'text' as const, value: 'i-1' },
    ratio: { type: 'float' as const, value: 1 },
  },
};

describe('list output', () => {
  test('table: aligned columns, counts right-aligned, the last column unpadded', () => {
    const other = {
      ...summary,
      id: 'p10-3',
      trigger: 't',
      state: 'active' as const,
      events: 120,
      distinguishing: {},
    };
    assert.equal(
      formatListTable([summary, other]),
      [
        'ID     TRIGGER  STATE   EVENTS  FIRST_EVENT                  LAST_EVENT                   DISTINGUISHING',
        'p0-12  usage    error        3  2014-08-01T10:00:00.000001Z  2014-08-01T11:30:00.000000Z  instance_id=i-1 ratio=1.0 timestamp=2014-08-01T00:00:00.000000Z/2014-08-02T00:00:00.000000Z',
        'p10-3  t        active     120  2014-08-01T10:00:00.000001Z  2014-08-01T11:30:00.000000Z  -',
        '',
      ].join('\n'),
    );
    assert.equal(formatListTable([]).split('\n')[0]?.startsWith('ID  TRIGGER'), true);
  });

  test('alignColumns counts characters, not UTF-16 units', () => {
    assert.equal(
      alignColumns([
        ['é😀', 'x'],
        ['ab', 'y'],
      ]),
      'é😀  x\nab  y\n',
    );
  });

  test('json: typed fields, times with microseconds, floats keep .0', () => {
    const line = streamSummaryJson(summary);
    assert.match(line, /"ratio":\{"type":"float","value":1\.0\}/);
    const o = JSON.parse(line);
    assert.deepEqual(o, {
      id: 'p0-12',
      trigger: 'usage',
      state: 'error',
      events: 3,
      first_event: '2014-08-01T10:00:00.000001Z',
      last_event: '2014-08-01T11:30:00.000000Z',
      distinguishing: {
        instance_id: { type: 'text', value: 'i-1' },
        ratio: { type: 'float', value: 1 },
        timestamp: {
          type: 'range',
          begin: '2014-08-01T00:00:00.000000Z',
          end: '2014-08-02T00:00:00.000000Z',
        },
      },
    });
  });
});

describe('show output', () => {
  const view = {
    stream: {
      ...summary,
      topic: 'winchester.stream-events',
      partition: 0,
      seq: 12,
      key: '[["instance_id","t","i-1"]]',
      version: 4,
      expireAt: t('2014-08-02T11:30:00Z'),
      fireAt: null,
      closedAt: t('2014-08-02T00:00:00Z'),
      criterionCounts: [1, 0],
      createdAt: '2026-11-25T20:00:00.123456Z',
      updatedAt: '2026-11-25T20:01:00.000001Z',
    },
    events: [
      {
        message_id: 'm1',
        event_type: 'compute.instance.exists',
        timestamp: t('2014-08-01T10:00:00.000001Z'),
        traits: {
          memory_mb: { type: 'int' as const, value: 512 },
          ratio: { type: 'float' as const, value: 2 },
          launched_at: { type: 'datetime' as const, value: t('2014-07-30T00:00:00Z') },
          host: { type: 'text' as const, value: 'h 1' },
        },
      },
    ],
    batches: [
      {
        batchId: 'p0-12:fire',
        kind: 'fire' as const,
        messageKey: 'p0-12',
        bytes: 321,
        createdAt: '2026-11-25T20:00:01.000000Z',
        publishedAt: '2026-11-25T20:00:02.000000Z',
        completedAt: null,
      },
    ],
  };

  test('table', () => {
    const text = formatStreamView(view);
    const lines = text.split('\n');
    assert.equal(lines[0], 'stream            p0-12');
    assert.ok(lines.includes('version           4'));
    assert.ok(lines.includes('fire_at           -'));
    assert.ok(lines.includes('criterion_counts  1, 0'));
    assert.ok(
      lines.includes(
        'batch             p0-12:fire (fire, 321 bytes), published 2026-11-25T20:00:02.000000Z, not completed',
      ),
    );
    assert.ok(lines.includes('events (1)'));
    assert.ok(
      lines.includes(
        'm1          compute.instance.exists  2014-08-01T10:00:00.000001Z  host="h 1" launched_at=2014-07-30T00:00:00.000000Z memory_mb=512 ratio=2.0',
      ),
      text,
    );
    const none = formatStreamView({ ...view, batches: [], events: [] });
    assert.match(none, /\nbatch {13}- \(none in the outbox\)\n/);
    assert.match(none, /\nevents \(0\)\n$/);
  });

  test('json: one object, typed traits, floats keep .0', () => {
    const text = streamViewJson(view);
    assert.doesNotMatch(text, /\n/);
    assert.match(eventJson(view.events[0]!), /"ratio":\{"type":"float","value":2\.0\}/);
    const lossless = parseJsonLossless(text);
    assert.ok(lossless !== null && typeof lossless === 'object');
    const o = JSON.parse(text);
    assert.equal(o.stream.version, 4);
    assert.equal(o.stream.fire_at, null);
    assert.equal(o.stream.closed_at, '2014-08-02T00:00:00.000000Z');
    assert.deepEqual(o.stream.criterion_counts, [1, 0]);
    assert.equal(o.stream.created_at, '2026-11-25T20:00:00.123456Z');
    assert.deepEqual(o.events[0].traits.launched_at, {
      type: 'datetime',
      value: '2014-07-30T00:00:00.000000Z',
    });
    assert.deepEqual(o.events[0].traits.memory_mb, { type: 'int', value: 512 });
    assert.deepEqual(o.batches, [
      {
        batch_id: 'p0-12:fire',
        kind: 'fire',
        message_key: 'p0-12',
        bytes: 321,
        created_at: '2026-11-25T20:00:01.000000Z',
        published: true,
        published_at: '2026-11-25T20:00:02.000000Z',
        completed: false,
        completed_at: null,
      },
    ]);
  });
});

describe('retry planning', () => {
  const batch = (id: string, kind: 'fire' | 'expire', completed = false) => ({
    batchId: `${id}:${kind}`,
    kind,
    messageKey: id,
    bytes: 10,
    payload: '{}',
    completed,
  });
  const c = (
    id: string,
    state: RetryCandidate['state'],
    withBatch = true,
    completed = false,
  ): RetryCandidate => ({
    id,
    trigger: 'usage',
    state,
    version: 3,
    batch: withBatch
      ? batch(id, state === 'expire_error' || state === 'retry_expire' ? 'expire' : 'fire', completed)
      : null,
  });

  test('named ids: moves, republications and reasons, in the order asked', () => {
    const candidates = [
      c('a', 'error'),
      c('b', 'expire_error'),
      c('c', 'retry_fire'),
      c('d', 'retry_expire', true, true),
      c('e', 'error', false),
      c('f', 'completed'),
      c('g', 'active'),
    ];
    const plan = planRetry(['x', 'g', 'f', 'e', 'd', 'c', 'b', 'a'], candidates);
    assert.deepEqual(plan.moves, [
      { id: 'b', version: 3, from: 'expire_error', batchId: 'b:expire' },
      { id: 'a', version: 3, from: 'error', batchId: 'a:fire' },
    ]);
    assert.deepEqual(
      plan.republish.map((r) => r.id),
      ['c'],
    );
    assert.deepEqual(
      plan.skipped.map((o) => [o.id, o.result === 'skipped' ? o.reason : '']),
      [
        ['x', 'no such stream'],
        ['g', 'state active cannot be retried (only error and expire_error)'],
        ['f', 'state completed cannot be retried (only error and expire_error)'],
        ['e', 'no fire batch in the outbox to run again; left in error'],
        ['d', 'in retry_expire, but batch d:expire is recorded complete, so a pipeline worker would skip it'],
      ],
    );
  });

  test('a --state selection plans every candidate', () => {
    const plan = planRetry(null, [c('a', 'error'), c('b', 'error', false)]);
    assert.equal(plan.moves.length, 1);
    assert.equal(plan.skipped.length, 1);
  });

  test('outcome lines and the summary', () => {
    const outcomes: RetryOutcome[] = [
      {
        id: 'a',
        result: 'retried',
        from: 'error',
        to: 'retry_fire',
        version: 4,
        batchId: 'a:fire',
        uncompleted: false,
      },
      { id: 'bb', result: 'republished', state: 'retry_expire', batchId: 'bb:expire' },
      { id: 'c', result: 'skipped', reason: 'no such stream' },
    ];
    assert.equal(
      formatRetryOutcomes(outcomes, 'batches', false),
      [
        'retried      a   error → retry_fire (version 4); batch a:fire produced to batches',
        'republished  bb  already retry_expire; batch bb:expire produced again to batches',
        'skipped      c   no such stream',
        '',
      ].join('\n'),
    );
    assert.deepEqual(retrySummary(outcomes, false), {
      line: '1 retried, 1 republished, 1 skipped',
      ok: false,
    });
    assert.deepEqual(retrySummary(outcomes.slice(0, 2), true), {
      line: 'dry run: 1 would be retried, 1 would be republished, 0 skipped (nothing changed)',
      ok: true,
    });
    const already: RetryOutcome = { id: 'z', result: 'already', state: 'retry_fire' };
    assert.equal(retrySummary([already], false).ok, true);
    const failed: RetryOutcome = {
      id: 'z',
      result: 'unpublished',
      state: 'retry_fire',
      batchId: 'z:fire',
      reason: 'down',
    };
    assert.deepEqual(retrySummary([failed], false), {
      line: '0 retried, 0 republished, 0 skipped, 1 not produced',
      ok: false,
    });
    assert.match(
      formatRetryOutcomes([failed], 'b', false),
      /^failed {2}z {2}moved to retry_fire, but batch z:fire could not be produced \(down\); run 'winchester streams retry z' again\n$/,
    );
  });
});
