import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  compileEventTypes,
  compileGlob,
  compileGlobs,
  globError,
  globToRegExpSource,
} from '../../src/glob.js';

const m = (globs: string[], s: string) => compileGlobs(globs)(s);

describe('event_type globs (Python fnmatch on POSIX)', () => {
  test('* spans dots, ? is one character', () => {
    assert.equal(m(['compute.instance.*'], 'compute.instance.create.end'), true);
    assert.equal(m(['compute.instance.*'], 'compute.instance'), false);
    assert.equal(m(['*.end'], 'compute.instance.create.end'), true);
    assert.equal(m(['a?c'], 'abc'), true);
    assert.equal(m(['a?c'], 'ac'), false);
    assert.equal(m(['*'], ''), true);
    assert.equal(m(['**'], 'x.y'), true);
  });

  test('sets, complements and a lone [', () => {
    assert.equal(m(['v[12]'], 'v1'), true);
    assert.equal(m(['v[12]'], 'v3'), false);
    assert.equal(m(['v[!12]'], 'v3'), true);
    assert.equal(m(['v[!12]'], 'v1'), false);
    assert.equal(m(['v[a-c]'], 'vb'), true);
    assert.equal(m(['v[]]'], 'v]'), true);
    assert.equal(m(['v[^]'], 'v^'), true);
    assert.equal(m(['a[b'], 'a[b'), true);
  });

  test('a reversed range is reported, not thrown at match time', () => {
    assert.match(globError('v[z-a]') ?? '', /range/i);
    assert.equal(globError('v[a-z]'), undefined);
  });

  test('case-sensitive, anchored, regex characters literal', () => {
    assert.equal(m(['Compute.*'], 'compute.x'), false);
    assert.equal(m(['a.b'], 'aXb'), false);
    assert.equal(m(['a+b(c)|$'], 'a+b(c)|$'), true);
    assert.equal(m(['x'], 'xx'), false);
  });

  test('several globs: any of them', () => {
    const f = compileGlobs(['snapshot_instance', 'keypair.import.*', 'compute.instance.*']);
    assert.equal(f('snapshot_instance'), true);
    assert.equal(f('keypair.import.start'), true);
    assert.equal(f('compute.instance.exists'), true);
    assert.equal(f('image.upload'), false);
    assert.equal(compileGlobs([])('x'), false);
  });

  test('a glob without metacharacters matches exactly itself', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !/[*?[]/.test(s)),
        fc.string(),
        (g, s) => {
          assert.equal(m([g], s), g === s);
          assert.equal(m([g], g), true);
        },
      ),
    );
  });

  test('prefix.* matches exactly the strings with that prefix', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z.]{0,8}$/), fc.string(), (prefix, rest) => {
        assert.equal(m([`${prefix}*`], prefix + rest), true);
        assert.equal(m([`${prefix}*`], rest), rest.startsWith(prefix));
      }),
    );
  });

  test('the optimised matcher agrees with one plain RegExp per glob', () => {
    const glob = fc.stringMatching(/^[ab.*?[\]!-]{0,6}$/);
    const input = fc.stringMatching(/^[ab.\]!-]{0,6}$/);
    fc.assert(
      fc.property(
        fc.array(
          glob.filter((g) => globError(g) === undefined),
          { maxLength: 4 },
        ),
        input,
        (globs, s) => {
          const naive = globs.some((g) => new RegExp(`^(?:${globToRegExpSource(g)})$`).test(s));
          assert.equal(compileGlobs(globs)(s), naive, JSON.stringify({ globs, s }));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

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
