import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { US_PER_SECOND } from '../../../src/timex/instant.js';
import { distinguishingKey, parseKey } from '../../../src/triggers/key.js';
import { at, base, compile, ev, messages, trigger } from './helpers.js';

const NOW = at('2014-08-10 00:00:00');

describe('trigger definition: required keys and defaults (reference test_config_error_check_and_defaults)', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['no name', { expiration: '$last + 1d' }, /without 'name'/],
    ['no expiration', { name: 't' }, /missing required 'expiration'/],
    [
      'no pipeline',
      { name: 't', expiration: '$last + 1d' },
      /at least one of 'fire_pipeline' or 'expire_pipeline'/,
    ],
    [
      'no fire_criteria',
      { name: 't', expiration: '$last + 1d', fire_pipeline: 'p', match_criteria: [{}] },
      /missing required 'fire_criteria'/,
    ],
    [
      'no match_criteria',
      {
        name: 't',
        expiration: '$last + 1d',
        fire_pipeline: 'p',
        fire_criteria: [{ event_type: 'test.thing' }],
      },
      /missing required 'match_criteria'/,
    ],
  ];
  for (const [what, def, pattern] of cases) {
    test(what, () => {
      const { triggers, problems } = compile([def]);
      assert.equal(triggers.length, 0);
      assert.ok(
        problems.errors.some((p) => pattern.test(p.message)),
        `${pattern} not in ${JSON.stringify(messages(problems))}`,
      );
    });
  }

  test('a minimal trigger gets the defaults', () => {
    const t = trigger(base());
    assert.equal(t.name, 'test_trigger');
    assert.deepEqual(t.distinguishedBy, []);
    assert.equal(t.fireCriteria.length, 1);
    assert.equal(t.matchCriteria.length, 1);
    assert.equal(t.loadCriteria.length, 0);
    assert.equal(t.fireDelay, 0);
    assert.equal(t.debugLevel, 0);
    assert.equal(t.firePipeline, 'test_pipeline');
    assert.equal(t.expirePipeline, null);
    assert.ok(Object.isFrozen(t));
    assert.ok(Object.isFrozen(t.fireCriteria));
  });

  test('expire_pipeline alone is enough', () => {
    const t = trigger(base({ fire_pipeline: undefined, expire_pipeline: 'exp' }));
    assert.equal(t.firePipeline, null);
    assert.equal(t.expirePipeline, 'exp');
  });

  test('every problem of every trigger is reported, with its line', () => {
    const yaml = [
      '- name: a', //                      1
      '  expiration: "$last +"', //        2  syntax error
      '  fire_pipeline: p', //             3
      '  match_criteria: [{}]', //         4
      '  fire_criteria: [{}]', //          5
      '- name: a', //                      6  duplicate
      '  expiration: $last + 1d', //       7
      '  fire_pipeline: p', //             8
      '  debug_level: 3', //               9
      '  match_criteria: [{}]', //        10
      '  fire_criteria: [{}]', //         11
      '',
    ].join('\n');
    const { problems } = compile(yaml);
    const lines = problems.errors.map((p) => p.line);
    assert.deepEqual(lines, [2, 6, 9]);
    assert.match(problems.errors[1]?.message ?? '', /duplicate trigger name 'a' \(first defined at line 1\)/);
    assert.match(problems.errors[2]?.message ?? '', /debug_level must be 0, 1 or 2/);
  });

  test('a timex syntax error points at the character', () => {
    const { problems } = compile(
      '- name: a\n  expiration: "$last + 1x"\n  fire_pipeline: p\n  match_criteria: [{}]\n  fire_criteria: [{}]\n',
    );
    const p = problems.errors[0];
    assert.equal(p?.line, 2);
    // `  expiration: "` puts the value at column 16; the problem is past "$last + 1".
    assert.ok((p?.column ?? 0) > 16, JSON.stringify(p));
    assert.match(p?.message ?? '', /expiration: invalid time expression "\$last \+ 1x"/);
  });

  test('expiration may only use $first, $last and $timestamp', () => {
    const { problems } = compile([base({ expiration: '$launched_at + 1d' })]);
    assert.match(
      messages(problems)[0] ?? '',
      /expiration may only use \$first, \$last and \$timestamp, not \$launched_at/,
    );
  });

  test('shape errors', () => {
    assert.match(messages(compile({ name: 'x' }).problems)[0] ?? '', /must be a list of trigger definitions/);
    assert.match(messages(compile(['x']).problems)[0] ?? '', /must be a mapping/);
    assert.match(
      messages(compile([base({ distinguished_by: 'instance_id' })]).problems)[0] ?? '',
      /must be a list/,
    );
    assert.match(
      messages(compile([base({ distinguished_by: [{ a: 'day', b: 'day' }] })]).problems)[0] ?? '',
      /exactly one trait/,
    );
    assert.match(
      messages(compile([base({ distinguished_by: ['a', 'a'] })]).problems)[0] ?? '',
      /lists 'a' twice/,
    );
    assert.match(
      messages(compile([base({ distinguished_by: [{ timestamp: 'day($other)' }] })]).problems)[0] ?? '',
      /may only use \$timestamp/,
    );
    assert.match(
      messages(compile([base({ fire_delay: -1 })]).problems)[0] ?? '',
      /fire_delay must be a number of seconds/,
    );
    assert.match(
      messages(compile([base({ match_criteria: {} })]).problems)[0] ?? '',
      /match_criteria must be a list/,
    );
    assert.match(
      messages(compile([base({ fire_pipelin: 'x' })]).problems)[0] ?? '',
      /did you mean 'fire_pipeline'/,
    );
  });

  test('an empty file defines no triggers (a warning)', () => {
    const { triggers, problems } = compile('');
    assert.equal(triggers.length, 0);
    assert.equal(problems.ok, true);
    assert.equal(problems.warnings.length, 1);
  });

  test('debug_level and fire_delay', () => {
    assert.equal(trigger(base({ debug_level: 2 })).debugLevel, 2);
    assert.equal(trigger(base({ debug_level: '1' })).debugLevel, 1);
    assert.equal(trigger(base({ fire_delay: 3600 })).fireDelay, 3600 * US_PER_SECOND);
    assert.equal(trigger(base({ fire_delay: 0.5 })).fireDelay, 500_000);
  });

  test('load_criteria is accepted and validated', () => {
    assert.equal(trigger(base({ load_criteria: [{ event_type: 'x.*' }] })).loadCriteria.length, 1);
    assert.match(
      messages(compile([base({ load_criteria: [{ number: -1 }] })]).problems)[0] ?? '',
      /load_criteria\[0\]/,
    );
  });
});

describe('trigger matching (reference test_match_*)', () => {
  test('any match criterion', () => {
    const t = trigger(base());
    assert.equal(t.match(ev('test.thing'), NOW).matched, true);
    const miss = t.match(ev('other.thing'), NOW);
    assert.deepEqual(miss, { matched: false, reason: 'no_criterion_matched' });
    const two = trigger(base({ match_criteria: [{ event_type: 'test.*' }, { event_type: 'other.*' }] }));
    assert.equal(two.match(ev('test.thing'), NOW).matched, true);
    assert.equal(two.match(ev('other.thing'), NOW).matched, true);
  });

  test('all distinguishing traits must be present', () => {
    const t = trigger(base({ distinguished_by: ['instance_id'] }));
    assert.equal(t.match(ev('test.thing', { instance_id: 'foo' }), NOW).matched, true);
    assert.deepEqual(t.match(ev('test.thing'), NOW), {
      matched: false,
      reason: 'missing_distinguishing_trait',
    });
  });

  test('distinguishing values and key', () => {
    const t = trigger(base({ distinguished_by: ['instance_id'] }));
    const m = t.match(ev('test.thing', { instance_id: 'foo' }), NOW);
    assert.ok(m.matched);
    assert.deepEqual(m.distinguishing, { instance_id: { type: 'text', value: 'foo' } });
    assert.equal(m.key, '[["instance_id","t","foo"]]');
  });

  test('a {trait: timex} entry gives a range from that trait as $timestamp', () => {
    const t = trigger(base({ distinguished_by: ['instance_id', { timestamp: 'day' }] }));
    const m = t.match(ev('test.thing', { instance_id: 'foo' }, '2014-08-01 20:04:23.000444'), NOW);
    assert.ok(m.matched);
    assert.deepEqual(Object.keys(m.distinguishing), ['instance_id', 'timestamp']);
    assert.deepEqual(m.distinguishing.timestamp, {
      type: 'range',
      begin: at('2014-08-01 00:00:00'),
      end: at('2014-08-02 00:00:00'),
    });
    assert.equal(
      m.key,
      '[["instance_id","t","foo"],["timestamp","r","2014-08-01T00:00:00.000000Z","2014-08-02T00:00:00.000000Z"]]',
    );
  });

  test('a timex entry yielding one instant is a datetime value', () => {
    const t = trigger(base({ distinguished_by: [{ timestamp: '$timestamp @ 0h 0m 0s' }] }));
    const m = t.match(ev('test.thing', {}, '2014-08-01 20:04:23'), NOW);
    assert.ok(m.matched);
    assert.deepEqual(m.distinguishing.timestamp, { type: 'datetime', value: at('2014-08-01 00:00:00') });
  });

  test('a timex entry over a non-datetime trait is a bad value', () => {
    const t = trigger(base({ distinguished_by: [{ launched: 'day' }] }));
    assert.deepEqual(t.match(ev('test.thing', { launched: 'yesterday' }), NOW), {
      matched: false,
      reason: 'bad_distinguishing_value',
    });
  });

  test('map_distinguished_by takes the value from another trait (test_get_distinguished_traits_with_map)', () => {
    const t = trigger(
      base({
        distinguished_by: ['instance_id'],
        match_criteria: [{ event_type: 'test.*', map_distinguished_by: { instance_id: 'other_id' } }],
      }),
    );
    const m = t.match(ev('test.thing', { instance_id: 'foo', other_id: 'bar' }), NOW);
    assert.ok(m.matched);
    assert.deepEqual(m.distinguishing, { instance_id: { type: 'text', value: 'bar' } });
    // The configured name must still be present (the reference checks it before mapping)…
    assert.equal(t.match(ev('test.thing', { other_id: 'bar' }), NOW).matched, false);
    // …and so must the mapped one.
    assert.deepEqual(t.match(ev('test.thing', { instance_id: 'foo' }), NOW), {
      matched: false,
      reason: 'missing_distinguishing_trait',
    });
  });

  test('the StackTach usage trigger: exists maps its audit period onto the day of the others', () => {
    const t = trigger({
      name: 'usage',
      distinguished_by: ['instance_id', { timestamp: 'day' }],
      expiration: '$last + 2d',
      fire_pipeline: 'f',
      match_criteria: [
        { event_type: ['compute.instance.*', '!compute.instance.exists'] },
        {
          event_type: 'compute.instance.exists',
          map_distinguished_by: { timestamp: 'audit_period_beginning' },
        },
      ],
      fire_criteria: [
        {
          event_type: 'compute.instance.exists',
          traits: { audit_period_ending: { datetime: '$audit_period_beginning + 1d' } },
        },
      ],
    });
    const create = t.match(
      ev('compute.instance.create.end', { instance_id: 'i1' }, '2014-08-01 10:00:00'),
      NOW,
    );
    const exists = ev(
      'compute.instance.exists',
      {
        instance_id: 'i1',
        audit_period_beginning: { dt: '2014-08-01 00:00:00' },
        audit_period_ending: { dt: '2014-08-02 00:00:00' },
      },
      '2014-08-02 00:05:00',
    );
    const ex = t.match(exists, NOW);
    assert.ok(create.matched && ex.matched);
    assert.equal(create.key, ex.key);
    assert.equal(t.fireCriteria[0]?.matches(exists), true);
    assert.equal(t.fireCriteria[0]?.matches(ev('compute.instance.create.end', { instance_id: 'i1' })), false);
  });

  test('fire criteria count events (reference test_should_fire)', () => {
    const shouldFire = (crit: Record<string, unknown>[], types: string[]) => {
      const t = trigger(base({ fire_criteria: crit }));
      return t.fireCriteria.every((c) => types.filter((ty) => c.matches(ev(ty))).length >= c.number);
    };
    const e1 = ['test.foobar', 'test.thing', 'test.thing'];
    const e2 = ['test.foobar', 'test.thing'];
    const e3 = ['test.foobar', 'test.whatsit'];
    assert.equal(shouldFire([{ event_type: 'test.thing' }], e1), true);
    assert.equal(shouldFire([{ event_type: 'test.thing' }], e2), true);
    assert.equal(shouldFire([{ event_type: 'test.thing' }], e3), false);
    assert.equal(shouldFire([{ event_type: 'test.thing', number: 2 }], e1), true);
    assert.equal(shouldFire([{ event_type: 'test.thing', number: 2 }], e2), false);
    assert.equal(shouldFire([{ event_type: 'test.thing', number: 2 }], e3), false);
  });

  test('expiration over $first and $last; a range means its beginning', () => {
    const t = trigger(base({ expiration: '$last + 1d' }));
    assert.equal(
      t.expiration(at('2014-08-01 00:00:00'), at('2014-08-01 10:00:00'), NOW),
      at('2014-08-02 10:00:00'),
    );
    const d = trigger(base({ expiration: 'day($first) + 1d' }));
    assert.equal(
      d.expiration(at('2014-08-01 09:00:00'), at('2014-08-01 10:00:00'), NOW),
      at('2014-08-02 00:00:00'),
    );
    const n = trigger(base({ expiration: '$timestamp + 1h' }));
    assert.equal(
      n.expiration(at('2014-08-01 09:00:00'), at('2014-08-01 10:00:00'), NOW),
      NOW + 3600 * US_PER_SECOND,
    );
  });

  test('match is deterministic and does not depend on trait insertion order', () => {
    const t = trigger(base({ distinguished_by: ['b', 'a', { timestamp: 'hour' }] }));
    fc.assert(
      fc.property(fc.string(), fc.integer(), fc.boolean(), (a, b, reversed) => {
        const traits = reversed ? { b, a } : { a, b };
        const e = ev('test.x', traits, '2014-08-01 12:34:56.000001');
        const m1 = t.match(e, NOW);
        const m2 = t.match(ev('test.x', { b, a }, '2014-08-01 12:34:56.000001'), NOW);
        assert.deepEqual(m1, m2);
        assert.ok(m1.matched);
      }),
    );
  });

  test('the key is the canonical key of the distinguishing values, and reads back to them', () => {
    const t = trigger(base({ distinguished_by: ['s', 'n', { when: 'day' }] }));
    const scalar = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double({ noNaN: true }).map((f) => ({ f })),
    );
    const when = fc.integer({ min: at('1990-01-01 00:00:00'), max: at('2100-01-01 00:00:00') });
    fc.assert(
      fc.property(scalar, scalar, when, (sv, nv, w) => {
        const e = ev('test.x', { s: sv, n: nv, when: { type: 'datetime', value: w } });
        const m = t.match(e, NOW);
        assert.ok(m.matched);
        assert.equal(m.key, distinguishingKey(m.distinguishing));
        const back = parseKey(m.key) as Record<string, unknown>;
        assert.deepEqual(Object.keys(back).sort(), ['n', 's', 'when']);
        assert.equal(m.key, distinguishingKey(parseKey(m.key)));
      }),
      { numRuns: 300 },
    );
  });
});
