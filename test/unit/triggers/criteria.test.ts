import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseTimex, TimexEvalError } from '../../../src/timex/index.js';
import { type Criterion, timeVariables, timexContains } from '../../../src/triggers/criteria.js';
import { at, criterion, ev, messages } from './helpers.js';

function ok(def: unknown): Criterion {
  const { c, problems } = criterion(def);
  assert.deepEqual(messages(problems), []);
  assert.ok(c);
  return c;
}

function rejects(def: unknown, pattern: RegExp): void {
  const { c, problems } = criterion(def);
  assert.equal(c, undefined);
  assert.ok(
    problems.errors.some((p) => pattern.test(p.message)),
    `expected ${pattern}, got ${JSON.stringify(messages(problems))}`,
  );
}

const T = '2014-08-01 12:00:00';

describe('trait criteria (reference TestCriterion)', () => {
  test('a constant matches an equal value of the same kind only', () => {
    const c = ok({ traits: { foo: 3 } });
    assert.equal(c.matches(ev('x', { foo: 3 })), true);
    assert.equal(c.matches(ev('x', { foo: 5 })), false);
    assert.equal(c.matches(ev('x', { bar: 5 })), false);
    assert.equal(c.matches(ev('x', { foo: 'booga' })), false);
    // Python's 3 == 3.0: a float trait of the same value matches.
    assert.equal(c.matches(ev('x', { foo: { f: 3 } })), true);
    // …but the text "3" does not.
    assert.equal(c.matches(ev('x', { foo: '3' })), false);
  });

  test('a text constant matches text traits only', () => {
    const c = ok({ traits: { foo: 'test' } });
    assert.equal(c.matches(ev('x', { foo: 'test' })), true);
    assert.equal(c.matches(ev('x', { foo: 'Test' })), false);
    const quoted = ok('traits:\n  foo: "3"\n');
    assert.equal(quoted.matches(ev('x', { foo: '3' })), true);
    assert.equal(quoted.matches(ev('x', { foo: 3 })), false);
  });

  test('int criterion: =, >, < and a bare number', () => {
    const eq = ok({ traits: { foo: { int: '3' } } });
    assert.equal(eq.matches(ev('x', { foo: 3 })), true);
    assert.equal(eq.matches(ev('x', { foo: 5 })), false);
    assert.equal(eq.matches(ev('x', { bar: 5 })), false);
    assert.equal(eq.matches(ev('x', { foo: 'booga' })), false);
    const gt = ok({ traits: { foo: { int: '> 3' } } });
    assert.equal(gt.matches(ev('x', { foo: 3 })), false);
    assert.equal(gt.matches(ev('x', { foo: 5 })), true);
    assert.equal(gt.matches(ev('x', { foo: 'booga' })), false);
    const lt = ok({ traits: { foo: { int: '< 3' } } });
    assert.equal(lt.matches(ev('x', { foo: 3 })), false);
    assert.equal(lt.matches(ev('x', { foo: 5 })), false);
    assert.equal(lt.matches(ev('x', { foo: 1 })), true);
    const bare = ok({ traits: { foo: { int: 4096 } } });
    assert.equal(bare.matches(ev('x', { foo: 4096 })), true);
    const tight = ok({ traits: { foo: { int: '>4096' } } });
    assert.equal(tight.matches(ev('x', { foo: 4097 })), true);
    assert.equal(tight.matches(ev('x', { foo: 4096 })), false);
    const explicitEq = ok({ traits: { foo: { int: '= -2' } } });
    assert.equal(explicitEq.matches(ev('x', { foo: -2 })), true);
  });

  test('int criterion: malformed values and unsupported operators are load errors', () => {
    rejects({ traits: { foo: { int: 'zazz' } } }, /invalid int criterion "zazz"/);
    rejects({ traits: { foo: { int: '' } } }, /invalid int criterion ""/);
    rejects({ traits: { foo: { int: '3.5' } } }, /invalid int criterion/);
    rejects({ traits: { foo: { int: 3.5 } } }, /not a whole number/);
    rejects({ traits: { foo: { int: '>= 3' } } }, /unsupported operator ">="/);
    rejects({ traits: { foo: { int: '!= 3' } } }, /unsupported operator "!="/);
  });

  test('float criterion: =, >, <', () => {
    const eq = ok({ traits: { foo: { float: '3.14' } } });
    assert.equal(eq.matches(ev('x', { foo: 3.14 })), true);
    assert.equal(eq.matches(ev('x', { foo: 5.2 })), false);
    assert.equal(eq.matches(ev('x', { bar: 5.2 })), false);
    assert.equal(eq.matches(ev('x', { foo: 'booga' })), false);
    const gt = ok({ traits: { foo: { float: '> 3.14' } } });
    assert.equal(gt.matches(ev('x', { foo: 3.14 })), false);
    assert.equal(gt.matches(ev('x', { foo: 5.2 })), true);
    const lt = ok({ traits: { foo: { float: '< 3.14' } } });
    assert.equal(lt.matches(ev('x', { foo: 3.14 })), false);
    assert.equal(lt.matches(ev('x', { foo: 3.5 })), false);
    assert.equal(lt.matches(ev('x', { foo: 3.02 })), true);
    // ints compare with floats numerically
    assert.equal(lt.matches(ev('x', { foo: 3 })), true);
    const exp = ok({ traits: { foo: { float: '> 1e3' } } });
    assert.equal(exp.matches(ev('x', { foo: 1001 })), true);
    rejects({ traits: { foo: { float: 'zazz' } } }, /invalid float criterion "zazz"/);
    rejects({ traits: { foo: { float: '' } } }, /invalid float criterion ""/);
  });

  test('numeric comparisons never match datetime or text traits', () => {
    const gt = ok({ traits: { foo: { int: '> 3' } } });
    assert.equal(gt.matches(ev('x', { foo: { dt: T } })), false);
    assert.equal(gt.matches(ev('x', { foo: '9' })), false);
  });

  test('string/text criteria compare like a constant', () => {
    const c = ok({ traits: { other_trait: { string: 'text here' } } });
    assert.equal(c.matches(ev('x', { other_trait: 'text here' })), true);
    assert.equal(c.matches(ev('x', { other_trait: 'text' })), false);
    const t = ok({ traits: { other_trait: { text: 'text here' } } });
    assert.equal(t.matches(ev('x', { other_trait: 'text here' })), true);
  });

  test('datetime criterion: the trait must fall in the expression (reference test_time_criterion)', () => {
    const c = ok({ traits: { foo: { datetime: 'day' } } });
    const ts = '2014-08-01 07:52:31.000002';
    assert.equal(c.matches(ev('x', { foo: { dt: '2014-08-01 01:02:00' } }, ts)), true);
    assert.equal(c.matches(ev('x', { foo: { dt: '2014-08-02 01:02:00' } }, ts)), false);
    assert.equal(c.matches(ev('x', { bar: { dt: '2014-08-01 01:02:00' } }, ts)), false);
    assert.equal(c.matches(ev('x', { quux: 4, foo: { dt: '2014-08-01 01:02:00' } }, ts)), true);
    // a text trait is never in a time range
    assert.equal(c.matches(ev('x', { foo: '2014-08-01 01:02:00' }, ts)), false);
  });

  test('datetime criterion over other traits; a missing variable is a mismatch, not a crash', () => {
    const c = ok({ traits: { audit_period_ending: { datetime: '$audit_period_beginning + 1d' } } });
    const good = ev('x', {
      audit_period_beginning: { dt: '2014-08-01 00:00:00' },
      audit_period_ending: { dt: '2014-08-02 00:00:00' },
    });
    assert.equal(c.matches(good), true);
    const off = ev('x', {
      audit_period_beginning: { dt: '2014-08-01 00:00:00' },
      audit_period_ending: { dt: '2014-08-02 00:00:01' },
    });
    assert.equal(c.matches(off), false);
    assert.equal(c.matches(ev('x', { audit_period_ending: { dt: '2014-08-02 00:00:00' } })), false);
  });

  test('an unquoted YAML timestamp constant is a datetime', () => {
    const c = ok('traits:\n  launched_at: 2014-08-01 01:02:03.000004\n');
    assert.equal(c.matches(ev('x', { launched_at: { dt: '2014-08-01 01:02:03.000004' } })), true);
    assert.equal(c.matches(ev('x', { launched_at: '2014-08-01 01:02:03.000004' })), false);
    const quoted = ok('traits:\n  launched_at: "2014-08-01 01:02:03.000004"\n');
    assert.equal(quoted.matches(ev('x', { launched_at: '2014-08-01 01:02:03.000004' })), true);
  });

  test('odd constants load with a warning', () => {
    const { c, problems } = criterion('traits:\n  flag: true\n  day: 2014-08-01\n');
    assert.ok(c);
    assert.equal(problems.warnings.length, 2);
    assert.equal(c.matches(ev('x', { flag: 1, day: '2014-08-01' })), false);
    const { c: one } = criterion('traits:\n  flag: true\n');
    assert.equal(one?.matches(ev('x', { flag: 1 })), true);
  });

  test('typed criteria need exactly one known key', () => {
    rejects({ traits: { foo: { int: '3', float: '3' } } }, /exactly one key/);
    rejects({ traits: { foo: { integer: '3' } } }, /unknown criterion type 'integer'/);
    rejects({ traits: { foo: { strin: 'x' } } }, /did you mean 'string'/);
    rejects({ traits: { foo: [1, 2] } }, /not a list/);
    rejects({ traits: { foo: { datetime: 'day(' } } }, /invalid time expression/);
  });
});

describe('criteria (reference TestCriteria)', () => {
  test('defaults: every event type, number 1, no mapping', () => {
    const c = ok({});
    assert.equal(c.number, 1);
    assert.deepEqual(c.mapDistinguishedBy, {});
    assert.equal(c.matches(ev('anything.at.all')), true);
  });

  test('event_type: a string, an exclusion, a list', () => {
    const one = ok({ event_type: 'test.foo.bar' });
    assert.equal(one.matches(ev('test.foo.bar')), true);
    assert.equal(one.matches(ev('test.foo.baz')), false);
    const exclOnly = ok({ event_type: '!test.foo.bar' });
    assert.equal(exclOnly.matches(ev('test.foo.bar')), false);
    assert.equal(exclOnly.matches(ev('anything')), true);
    const both = ok({ event_type: ['test.foo.bar', '!test.wakka.wakka'] });
    assert.equal(both.matches(ev('test.foo.bar')), true);
    assert.equal(both.matches(ev('test.wakka.wakka')), false);
    assert.equal(both.matches(ev('test.foo.baz')), false);
  });

  test('event_type globs with exclusions (test_match_type, test_match_for_type)', () => {
    const c = ok({ event_type: ['test.foo.*', '!test.wakka.*'] });
    assert.equal(c.matches(ev('test.foo.bar')), true);
    assert.equal(c.matches(ev('test.foo.baz')), true);
    assert.equal(c.matches(ev('test.foo.zazz')), true);
    assert.equal(c.matches(ev('test.wakka.wakka')), false);
    assert.equal(c.matches(ev('test.wakka.zazz')), false);
    assert.equal(c.matches(ev('test.boingy')), false);
  });

  test('timestamp: the event timestamp must fall in the expression', () => {
    const c = ok({ timestamp: 'day($launched_at)' });
    assert.equal(
      c.matches(
        ev('test.thing', { launched_at: { dt: '2014-08-01 01:02:03.000004' } }, '2014-08-01 17:16:15.000014'),
      ),
      true,
    );
    assert.equal(
      c.matches(
        ev('test.thing', { launched_at: { dt: '2014-08-01 01:02:03.000004' } }, '2014-08-02 17:16:15.000014'),
      ),
      false,
    );
    assert.equal(c.matches(ev('test.thing', {}, '2014-08-02 17:16:15.000014')), false);
  });

  test('traits: all must hold (test_match_for_traits)', () => {
    const c = ok({
      traits: {
        some_trait: 'test',
        launched_at: { datetime: 'day' },
        memory_mb: { int: '> 2048' },
        test_weight: { float: '< 4.02' },
        other_trait: { string: 'text here' },
      },
    });
    const ts = '2014-08-01 17:16:15.000014';
    const good = {
      launched_at: { dt: '2014-08-01 01:02:03.000004' },
      some_trait: 'test',
      other_trait: 'text here',
      memory_mb: 4096,
      test_weight: { f: 3.25 },
    };
    assert.equal(c.matches(ev('test.thing', good, ts)), true);
    assert.equal(c.matches(ev('test.thing', { ...good, some_trait: 'foo' }, ts)), false);
    const { some_trait: _, ...missing } = good;
    assert.equal(c.matches(ev('test.thing', missing, ts)), false);
    assert.equal(
      c.matches(ev('test.thing', { ...good, launched_at: { dt: '2014-08-02 01:02:03.000004' } }, ts)),
      false,
    );
    assert.equal(c.matches(ev('test.thing', { ...good, memory_mb: 1024 }, ts)), false);
    assert.equal(c.matches(ev('test.thing', { ...good, test_weight: { f: 6.283 } }, ts)), false);
  });

  test('event fields are readable like traits', () => {
    const c = ok({ traits: { message_id: 'abc' } });
    assert.equal(c.matches(ev('x', {}, T, 'abc')), true);
    assert.equal(c.matches(ev('x', {}, T, 'abd')), false);
  });

  test('number and map_distinguished_by are validated', () => {
    assert.equal(ok({ number: 3 }).number, 3);
    rejects({ number: 0 }, /number must be a whole number ≥ 1/);
    rejects({ number: 'two' }, /number must be a whole number/);
    assert.deepEqual(
      ok({ map_distinguished_by: { timestamp: 'audit_period_beginning' } }).mapDistinguishedBy,
      {
        timestamp: 'audit_period_beginning',
      },
    );
    rejects({ map_distinguished_by: ['x'] }, /map_distinguished_by must be a mapping/);
    rejects({ event_type: [1] }, /event_type must be a glob/);
    rejects({ event_type: ['compute.[z-a]'] }, /invalid event_type glob "compute\.\[z-a\]"/);
  });

  test('event_type: absent means every type, an empty list none (with a warning), only exclusions all but', () => {
    assert.equal(ok({}).matchesEventType('anything.at.all'), true);
    const { c, problems } = criterion({ event_type: [] });
    assert.ok(c);
    assert.equal(c.matchesEventType('compute.instance.exists'), false);
    assert.match(problems.warnings[0]?.message ?? '', /empty event_type list matches nothing/);
    const allBut = ok({ event_type: ['!compute.instance.exists'] });
    assert.equal(allBut.matchesEventType('compute.instance.exists'), false);
    assert.equal(allBut.matchesEventType('compute.instance.update'), true);
  });

  test('unknown keys: a typo is an error, anything else a warning', () => {
    rejects({ event_types: 'x' }, /unknown key 'event_types'; did you mean 'event_type'/);
    const { c, problems } = criterion({ comment: 'why this exists' });
    assert.ok(c);
    assert.match(problems.warnings[0]?.message ?? '', /unknown key 'comment' is ignored/);
  });

  test('evaluating with only the referenced variables equals evaluating with all datetime traits (reference)', () => {
    const exprs = ['day($a)', '$a + 1d', '$a to $b', 'day', 'month($b) + 3d', '$timestamp - 2h'];
    const dt = fc.integer({ min: at('2014-01-01 00:00:00'), max: at('2014-12-31 00:00:00') });
    const traitValue = fc.oneof(
      dt.map((v) => ({ type: 'datetime' as const, value: v })),
      fc.string().map((v) => ({ type: 'text' as const, value: v })),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...exprs),
        fc.record({ a: traitValue, b: traitValue }, { requiredKeys: [] }),
        dt,
        (source, traits, ts) => {
          const c = ok({ timestamp: source });
          const e = { message_id: 'm', event_type: 'x', timestamp: ts, traits };
          let expected: boolean;
          try {
            expected = timexContains(parseTimex(source).evaluate(timeVariables(e), ts), ts);
          } catch (err) {
            if (!(err instanceof TimexEvalError)) throw err;
            expected = false;
          }
          assert.equal(c.matches(e), expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});
