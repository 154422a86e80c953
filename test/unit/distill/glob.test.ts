import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compileEventTypes, compileGlob } from '../../../src/glob.js';

describe('globs (fnmatch semantics)', () => {
  test('literal, *, ?, classes', () => {
    assert.ok(compileGlob('compute.instance.exists')('compute.instance.exists'));
    assert.ok(!compileGlob('compute.instance.exists')('compute.instance.exists.verified'));
    assert.ok(compileGlob('compute.instance.*')('compute.instance.create.start'), '* crosses dots');
    assert.ok(!compileGlob('compute.instance.*')('compute.instancex'));
    assert.ok(compileGlob('*.end')('compute.instance.create.end'));
    assert.ok(compileGlob('*.create.*')('compute.instance.create.start'));
    assert.ok(!compileGlob('*.create.*')('compute.instance.delete.start'));
    assert.ok(compileGlob('a?c')('abc'));
    assert.ok(!compileGlob('a?c')('ac'));
    assert.ok(compileGlob('[ab]x')('bx'));
    assert.ok(!compileGlob('[!ab]x')('bx'));
    assert.ok(compileGlob('[!ab]x')('cx'));
    assert.ok(compileGlob('[a-c]')('b'));
    assert.ok(compileGlob('[]]')(']'), 'a ] first in a class is literal');
    assert.ok(compileGlob('a[')('a['), 'an unclosed [ is literal');
    assert.ok(compileGlob('a.(b)+$')('a.(b)+$'), 'regex characters are literal');
    assert.ok(!compileGlob('Compute.*')('compute.x'), 'case-sensitive');
  });

  test('a literal glob matches only itself (property)', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !/[*?[]/.test(s)),
        fc.string(),
        (p, s) => {
          assert.equal(compileGlob(p)(s), p === s);
          assert.ok(compileGlob(p)(p));
        },
      ),
    );
  });

  test('prefix* and *suffix fast paths agree with the regex semantics (property)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-c.]{0,4}$/),
        fc.stringMatching(/^[a-c.]{0,4}$/),
        fc.stringMatching(/^[a-c.]{0,8}$/),
        (a, b, s) => {
          const expected = s.length >= a.length + b.length && s.startsWith(a) && s.endsWith(b);
          assert.equal(compileGlob(`${a}*${b}`)(s), expected);
          // `**` is the same language but goes through the regex translation.
          assert.equal(compileGlob(`${a}**${b}`)(s), expected);
        },
      ),
    );
  });
});

describe('event_type rules (the reference test cases)', () => {
  test('a single type', () => {
    const m = compileEventTypes(['test.thing']);
    assert.ok(m.test('test.thing'));
    assert.ok(!m.test('random.thing'));
    assert.ok(!m.isCatchAll);
  });
  test('a list of types', () => {
    const m = compileEventTypes(['test.thing', 'other.thing']);
    assert.ok(m.test('test.thing') && m.test('other.thing'));
    assert.ok(!m.test('random.thing'));
  });
  test('only exclusions means everything except', () => {
    const one = compileEventTypes(['!test.thing']);
    assert.ok(!one.test('test.thing'));
    assert.ok(one.test('random.thing'));
    const two = compileEventTypes(['!test.thing', '!other.thing']);
    assert.ok(!two.test('test.thing') && !two.test('other.thing'));
    assert.ok(two.test('random.thing'));
  });
  test('inclusions and exclusions mixed', () => {
    const m = compileEventTypes(['*.thing', '!test.thing', '!other.thing']);
    assert.ok(!m.test('test.thing'));
    assert.ok(!m.test('other.thing'));
    assert.ok(!m.test('random.whatzit'));
    assert.ok(m.test('random.thing'));
  });
  test('catch-all detection', () => {
    assert.ok(!compileEventTypes(['*.thing', '!test.thing']).isCatchAll);
    assert.ok(!compileEventTypes(['!other.thing']).isCatchAll);
    assert.ok(!compileEventTypes(['other.thing']).isCatchAll);
    assert.ok(!compileEventTypes(['*', '!other.thing']).isCatchAll);
    assert.ok(compileEventTypes(['*']).isCatchAll);
    assert.ok(compileEventTypes(['*', 'foo']).isCatchAll);
  });
  test('an empty list matches nothing', () => {
    assert.ok(!compileEventTypes([]).test('x'));
  });
});
