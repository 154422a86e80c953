/**
 * The fast matching path (event_type decision cache, `day`/`hour` without the generic timex,
 * cached range values and key entries, remembered keys) against a plain re-statement of the
 * contract: the same result for every event, in any order, across cache evictions.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type Event, fieldOf, type TraitValue } from '../../../src/model/event.js';
import { parseTimex, TimexEvalError, type TimexExpression } from '../../../src/timex/index.js';
import { MAX_INSTANT, MIN_INSTANT, US_PER_DAY, US_PER_HOUR } from '../../../src/timex/instant.js';
import { fieldGetter } from '../../../src/triggers/criteria.js';
import {
  type CompiledTrigger,
  EVENT_TYPE_CACHE_LIMIT,
  fixedRangeStep,
  KEY_MEMO_LIMIT,
} from '../../../src/triggers/definition.js';
import { distinguishingKey, EntryEncoder, jsonString, keyEntry } from '../../../src/triggers/key.js';
import type { DistinguishingValue, TriggerMatch } from '../../../src/triggers/types.js';
import { at, base, trigger } from './helpers.js';

const NOW = at('2014-08-05 00:00:00');

type Dist = string | Record<string, string>;

/**
 * The contract of `match`, stated the slow and obvious way: `fieldOf` for every read, the whole
 * criterion, the generic timex evaluation and `distinguishingKey`.
 */
function slowMatch(t: CompiledTrigger, dist: readonly Dist[], event: Event, now: number): TriggerMatch {
  const entries = dist.map((d) => {
    if (typeof d === 'string') return { name: d, expr: undefined as TimexExpression | undefined };
    const [name, src] = Object.entries(d)[0] as [string, string];
    return { name, expr: parseTimex(src) };
  });
  for (const d of entries) {
    if (fieldOf(event, d.name) === undefined)
      return { matched: false, reason: 'missing_distinguishing_trait' };
  }
  const c = t.matchCriteria.find((x) => x.matches(event));
  if (c === undefined) return { matched: false, reason: 'no_criterion_matched' };
  const values: Record<string, DistinguishingValue> = {};
  for (const d of entries) {
    const from = Object.hasOwn(c.mapDistinguishedBy, d.name)
      ? (c.mapDistinguishedBy[d.name] as string)
      : d.name;
    const v = fieldOf(event, from);
    if (v === undefined) return { matched: false, reason: 'missing_distinguishing_trait' };
    if (d.expr === undefined) {
      values[d.name] = v;
      continue;
    }
    if (v.type !== 'datetime') return { matched: false, reason: 'bad_distinguishing_value' };
    try {
      const r = d.expr.evaluate({ timestamp: v.value }, now);
      values[d.name] =
        r.kind === 'range'
          ? { type: 'range', begin: r.begin, end: r.end }
          : { type: 'datetime', value: r.at };
    } catch (err) {
      if (err instanceof TimexEvalError) return { matched: false, reason: 'bad_distinguishing_value' };
      throw err;
    }
  }
  return { matched: true, distinguishing: values, key: distinguishingKey(values) };
}

const day0 = at('2014-08-01 00:00:00');
/** Instants clustered on a few days (so caches hit), with some anywhere and some out of range. */
const instant = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 3 * US_PER_DAY }).map((d) => day0 + d) },
  { weight: 2, arbitrary: fc.integer({ min: MIN_INSTANT, max: MAX_INSTANT }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      MIN_INSTANT,
      MAX_INSTANT,
      MIN_INSTANT - 1,
      MAX_INSTANT + 1,
      0,
      -0,
      -1,
      day0,
      day0 - 1,
      Number.NaN,
    ),
  },
);

const traitValue: fc.Arbitrary<TraitValue> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .constantFrom('i-1', 'i-2', 'i-3', 'a"b', 'x\\y', '\n', '\ud800', 'é')
      .map((v) => ({ type: 'text' as const, value: v })),
  },
  {
    weight: 1,
    arbitrary: fc.string({ unit: 'binary', maxLength: 6 }).map((v) => ({ type: 'text' as const, value: v })),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(fc.integer({ min: -3, max: 3 }), fc.constant(-0))
      .map((v) => ({ type: 'int' as const, value: v })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(0.5, -0, 0, 3, Number.NaN).map((v) => ({ type: 'float' as const, value: v })),
  },
  { weight: 3, arbitrary: instant.map((v) => ({ type: 'datetime' as const, value: v })) },
);

const TRAITS = [
  'instance_id',
  'tenant',
  'audit_period_beginning',
  'when',
  'timestamp',
  'constructor',
  'message_id',
];
const TYPES = [
  'compute.instance.create.end',
  'compute.instance.exists',
  'compute.instance.exists.verified',
  'snapshot_instance',
  'keypair.import.start',
  'other.thing',
  'constructor',
];

const event: fc.Arbitrary<Event> = fc
  .record({
    type: fc.constantFrom(...TYPES),
    ts: instant,
    id: fc.constantFrom('m-1', 'm-2'),
    traits: fc.array(fc.tuple(fc.constantFrom(...TRAITS), traitValue), { maxLength: 6 }),
    nullProto: fc.boolean(),
  })
  .map(({ type, ts, id, traits, nullProto }) => {
    const out: Record<string, TraitValue> = nullProto ? Object.create(null) : {};
    for (const [k, v] of traits) out[k] = v;
    return { message_id: id, event_type: type, timestamp: ts, traits: out };
  });

/** Trigger shapes the fast path specialises differently. */
const SHAPES: Array<{ what: string; dist: Dist[]; criteria: unknown[] }> = [
  {
    what: 'the StackTach usage audit (etc/triggers.yaml)',
    dist: ['instance_id', { timestamp: 'day' }],
    criteria: [
      {
        event_type: [
          'compute.instance.*',
          'snapshot_instance',
          'keypair.import.*',
          '!compute.instance.exists',
          '!compute.instance.exists.verified',
        ],
      },
      {
        event_type: 'compute.instance.exists',
        map_distinguished_by: { timestamp: 'audit_period_beginning' },
      },
    ],
  },
  {
    what: 'criteria with trait and timestamp tests, several plain traits, hour ranges',
    dist: ['tenant', 'instance_id', { when: 'hour' }],
    criteria: [
      { event_type: 'compute.*', traits: { tenant: 'i-1' } },
      { event_type: 'compute.*', timestamp: 'day($audit_period_beginning)' },
      { event_type: ['*', '!other.*'], map_distinguished_by: { when: 'timestamp', instance_id: 'tenant' } },
    ],
  },
  {
    what: 'generic timex values (month, shifted day, a single datetime) and envelope names',
    dist: [
      { timestamp: 'month' },
      { audit_period_beginning: 'day + 6h' },
      { when: '$timestamp + 1h' },
      'message_id',
    ],
    criteria: [
      { event_type: 'compute.instance.exists', map_distinguished_by: { when: 'message_id' } },
      { event_type: 'compute.instance.[ce]*' },
    ],
  },
  {
    what: 'names found on Object.prototype, and a plain datetime value first',
    dist: ['timestamp', 'constructor', { instance_id: 'day($timestamp)' }],
    criteria: [{ event_type: '*', map_distinguished_by: { instance_id: 'when' } }],
  },
];

describe('fast match path', () => {
  for (const shape of SHAPES) {
    test(`same result as the plain contract: ${shape.what}`, () => {
      const t = trigger(base({ distinguished_by: shape.dist, match_criteria: shape.criteria }));
      fc.assert(
        fc.property(fc.array(event, { minLength: 1, maxLength: 30 }), (events) => {
          // Twice, so the second pass runs on warm caches.
          for (const e of [...events, ...events])
            assert.deepEqual(t.match(e, NOW), slowMatch(t, shape.dist, e, NOW));
        }),
        { numRuns: 300 },
      );
    });
  }

  test('the StackTach shape on realistic streams: keys are remembered, never stale', () => {
    const shape = SHAPES[0] as (typeof SHAPES)[number];
    const t = trigger(base({ distinguished_by: shape.dist, match_criteria: shape.criteria }));
    const step = fc.record({
      id: fc.constantFrom('i-1', 'i-2', 'i-3'),
      exists: fc.boolean(),
      ts: fc.integer({ min: 0, max: 4 * US_PER_DAY }).map((d) => day0 + d),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        for (const s of steps) {
          const e: Event = {
            message_id: 'm',
            event_type: s.exists ? 'compute.instance.exists' : 'compute.instance.update',
            timestamp: s.ts,
            traits: {
              instance_id: { type: 'text', value: s.id },
              audit_period_beginning: { type: 'datetime', value: s.ts - US_PER_DAY },
            },
          };
          const m = t.match(e, NOW);
          assert.deepEqual(m, slowMatch(t, shape.dist, e, NOW));
        }
      }),
    );
  });

  test('a remembered result is reused only for the very same values (0 and -0, int and float differ)', () => {
    const dist: Dist[] = ['id', 'n', { timestamp: 'day' }];
    const t = trigger(base({ distinguished_by: dist }));
    const seq: TraitValue[] = [
      { type: 'float', value: 0 },
      { type: 'float', value: -0 },
      { type: 'int', value: 0 },
      { type: 'int', value: -0 },
      { type: 'float', value: Number.NaN },
      { type: 'float', value: Number.NaN },
      { type: 'text', value: '0' },
      { type: 'float', value: 0 },
    ];
    for (const n of [...seq, ...seq]) {
      const e: Event = {
        message_id: 'm',
        event_type: 'test.x',
        timestamp: day0,
        traits: { id: { type: 'text', value: 'a' }, n },
      };
      const m = t.match(e, NOW);
      assert.deepEqual(m, slowMatch(t, dist, e, NOW));
      assert.ok(m.matched);
      assert.ok(Object.is((m.distinguishing.n as { value: unknown }).value, n.value));
    }
  });

  test('more distinct event types than the decision cache holds: still decided correctly', () => {
    const t = trigger(base({ match_criteria: [{ event_type: ['t.*', '!t.*7'] }] }));
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < EVENT_TYPE_CACHE_LIMIT * 2 + 5; i++) {
        const e: Event = { message_id: 'm', event_type: `t.${i}`, timestamp: day0, traits: {} };
        assert.equal(t.match(e, NOW).matched, i % 10 !== 7, e.event_type);
      }
    }
  });

  test('more distinct keys than the key memo holds: every key stays right', () => {
    const dist: Dist[] = ['instance_id', { timestamp: 'day' }];
    const t = trigger(base({ distinguished_by: dist }));
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < KEY_MEMO_LIMIT + 100; i += 7) {
        const e: Event = {
          message_id: 'm',
          event_type: 'test.x',
          timestamp: day0 + (i % 3) * US_PER_DAY,
          traits: { instance_id: { type: 'text', value: `i-${i}` } },
        };
        assert.deepEqual(t.match(e, NOW), slowMatch(t, dist, e, NOW));
      }
    }
  });
});

describe('fixedRangeStep', () => {
  test('recognises day and hour of the timestamp only', () => {
    assert.equal(fixedRangeStep(parseTimex('day')), US_PER_DAY);
    assert.equal(fixedRangeStep(parseTimex(' day($timestamp) ')), US_PER_DAY);
    assert.equal(fixedRangeStep(parseTimex('hour')), US_PER_HOUR);
    for (const src of ['month', 'year', 'day + 6h', 'day($launched_at)', '$timestamp', 'day @ 6h']) {
      assert.equal(fixedRangeStep(parseTimex(src)), 0, src);
    }
  });
});

describe('EntryEncoder', () => {
  test('never returns a cached value for another instant (ring of 1, 2 and 4 slots)', () => {
    const pool = [0, -0, 1, -1, day0, day0 + US_PER_DAY, day0 - US_PER_DAY, MAX_INSTANT];
    const op = fc.record({
      kind: fc.constantFrom('range', 'datetime'),
      a: fc.constantFrom(...pool),
      b: fc.constantFrom(...pool),
    });
    fc.assert(
      fc.property(fc.constantFrom(1, 2, 4), fc.array(op, { maxLength: 40 }), (size, ops) => {
        const enc = new EntryEncoder('timestamp', size);
        for (const o of ops) {
          const want: DistinguishingValue =
            o.kind === 'range' ? { type: 'range', begin: o.a, end: o.b } : { type: 'datetime', value: o.a };
          const got = o.kind === 'range' ? enc.range(o.a, o.b) : enc.datetime(o.a);
          assert.deepEqual(got.value, want);
          assert.equal(got.entry, keyEntry('timestamp', want));
        }
      }),
    );
  });

  test('a repeated value is the same frozen object (what saves the allocation)', () => {
    const enc = new EntryEncoder('t');
    const a = enc.range(day0, day0 + US_PER_DAY);
    enc.datetime(day0);
    assert.equal(enc.range(day0, day0 + US_PER_DAY), a);
    assert.ok(Object.isFrozen(a.value));
    assert.notEqual(enc.range(day0, day0 + 2 * US_PER_DAY), a);
    assert.throws(() => new EntryEncoder('t', 0), RangeError);
  });

  test('trait entries are the canonical ones', () => {
    fc.assert(
      fc.property(traitValue, (v) => assert.equal(new EntryEncoder('n"x').trait(v), keyEntry('n"x', v))),
    );
  });
});

describe('jsonString', () => {
  test('is JSON.stringify for any string, lone surrogates and controls included', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('binary', 'grapheme', 'binary-ascii') }), (s) =>
        assert.equal(jsonString(s), JSON.stringify(s)),
      ),
      { numRuns: 2000 },
    );
    for (const s of [
      '',
      '"',
      '\\',
      '\u0000',
      '\u001f',
      '\u007f',
      '\ud800',
      '\udfff',
      '\u2028',
      'a\ud83d\ude00b',
    ]) {
      assert.equal(jsonString(s), JSON.stringify(s), JSON.stringify(s));
    }
  });
});

describe('fieldOf and fieldGetter: only own traits', () => {
  const e = (traits: Record<string, TraitValue>): Event => ({
    message_id: 'm',
    event_type: 'x',
    timestamp: day0,
    traits,
  });
  const names = ['constructor', 'toString', 'hasOwnProperty', 'valueOf', '__proto__', 'isPrototypeOf'];

  test('a name of Object.prototype is not a trait unless the event has it', () => {
    for (const n of names) {
      assert.equal(fieldOf(e({}), n), undefined, n);
      assert.equal(fieldGetter(n)(e({})), undefined, n);
      const own: Record<string, TraitValue> = {};
      Object.defineProperty(own, n, { value: { type: 'text', value: 'v' }, enumerable: true });
      assert.deepEqual(fieldOf(e(own), n), { type: 'text', value: 'v' }, n);
      assert.deepEqual(fieldGetter(n)(e(own)), { type: 'text', value: 'v' }, n);
    }
  });

  test('null-prototype traits, and envelope fields behind same-named traits', () => {
    const traits = Object.assign(Object.create(null) as Record<string, TraitValue>, {
      a: { type: 'int', value: 1 } as TraitValue,
    });
    assert.deepEqual(fieldOf(e(traits), 'a'), { type: 'int', value: 1 });
    assert.equal(fieldOf(e(traits), 'constructor'), undefined);
    assert.deepEqual(fieldOf(e(traits), 'timestamp'), { type: 'datetime', value: day0 });
    assert.deepEqual(fieldOf(e({ timestamp: { type: 'text', value: 'z' } }), 'timestamp'), {
      type: 'text',
      value: 'z',
    });
    assert.deepEqual(fieldOf(e({}), 'event_type'), { type: 'text', value: 'x' });
  });

  test('a trigger distinguished by `constructor` needs the event to have that trait', () => {
    const t = trigger(base({ distinguished_by: ['constructor'] }));
    const without: Event = { message_id: 'm', event_type: 'test.x', timestamp: day0, traits: {} };
    assert.deepEqual(t.match(without, NOW), { matched: false, reason: 'missing_distinguishing_trait' });
    const withIt: Event = { ...without, traits: JSON.parse('{"constructor":{"type":"text","value":"c"}}') };
    const m = t.match(withIt, NOW);
    assert.ok(m.matched);
    assert.equal(m.key, '[["constructor","t","c"]]');
  });
});
