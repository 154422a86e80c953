import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  bitfieldPlugin,
  loadTraitPlugins,
  PluginLoadError,
  parsePluginRef,
  splitPlugin,
} from '../../../src/distill/plugins.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '../../fixtures/distill/plugins');

describe('split plugin (reference cases)', () => {
  const m = [['test.thing', 'test-foobar-baz']] as const;
  test('segments and max_split', () => {
    assert.equal(splitPlugin({ separator: '-', segment: 0 }).traitValue(m), 'test');
    assert.equal(splitPlugin({ separator: '-', segment: 1 }).traitValue(m), 'foobar');
    assert.equal(splitPlugin({ separator: '-', segment: 1, max_split: 1 }).traitValue(m), 'foobar-baz');
    assert.equal(splitPlugin({ separator: '-', segment: -1 }).traitValue(m), 'baz');
  });
  test('no separator in the value: the whole value', () => {
    assert.equal(
      splitPlugin({ separator: '-', segment: 0 }).traitValue([['x', 'test.foobar.baz']]),
      'test.foobar.baz',
    );
  });
  test('defaults: separator ".", segment 0', () => {
    assert.equal(splitPlugin({}).traitValue([['publisher_id', 'compute.host-1']]), 'compute');
  });
  test('no such segment, or nothing matched: absent', () => {
    assert.equal(splitPlugin({ separator: '-', segment: 5 }).traitValue(m), undefined);
    assert.equal(splitPlugin({ separator: '-', segment: 0 }).traitValue([]), undefined);
  });
  test('only the first match is used; non-strings are str()-ed', () => {
    assert.equal(
      splitPlugin({ separator: '1' }).traitValue([
        ['a', 2048],
        ['b', 'x'],
      ]),
      '2048'.split('1')[0],
    );
  });
  test('bad parameters are rejected at load time', () => {
    assert.throws(() => splitPlugin({ separator: '' }), /separator/);
    assert.throws(() => splitPlugin({ segment: '1' }), /segment/);
    assert.throws(() => splitPlugin({ max_split: 1.5 }), /max_split/);
  });
});

describe('bitfield plugin (reference cases)', () => {
  const params = {
    initial_bitfield: 0,
    flags: [
      { path: 'payload.foo', bit: 0, value: 42 },
      { path: 'payload.foo', bit: 1, value: 12 },
      { path: 'payload.thud', bit: 1, value: 23 },
      { path: 'thingy.boink', bit: 4 },
      { path: 'thingy.quux', bit: 6, value: 'wokka' },
      { path: 'payload.bar', bit: 10, value: 'test' },
    ],
  };
  const matches = [
    ['payload.foo', 12],
    ['payload.bar', 'test'],
    ['thingy.boink', 'testagain'],
  ] as const;
  test('flags set by path and value', () => {
    assert.equal(bitfieldPlugin(params).traitValue(matches), 0x412);
  });
  test('initial bitfield is OR-ed', () => {
    assert.equal(bitfieldPlugin({ ...params, initial_bitfield: 0x2000 }).traitValue(matches), 0x2412);
  });
  test('no match: the initial value (the trait is still present)', () => {
    assert.equal(bitfieldPlugin(params).traitValue([]), 0);
  });
  test('a bit set twice stays set', () => {
    assert.equal(
      bitfieldPlugin(params).traitValue([['payload.foo', 12], ['payload.thud', 23], ...matches.slice(1)]),
      0x412,
    );
  });
  test('high bits do not overflow 32-bit arithmetic', () => {
    assert.equal(bitfieldPlugin({ flags: [{ path: 'a', bit: 40 }] }).traitValue([['a', 1]]), 2 ** 40);
  });
  test('bad flags are rejected at load time', () => {
    assert.throws(() => bitfieldPlugin({ flags: 'x' }), /flags/);
    assert.throws(() => bitfieldPlugin({ flags: [{ bit: 1 }] }), /path/);
    assert.throws(() => bitfieldPlugin({ flags: [{ path: 'a', bit: 'x' }] }), /bit/);
    assert.throws(() => bitfieldPlugin({ flags: [{ path: 'a', bit: 64 }] }), /between/);
  });
});

describe('user plugins', () => {
  test('MODULE[#EXPORT] references', () => {
    assert.deepEqual(parsePluginRef('./p.mjs#Upper'), { module: './p.mjs', exportName: 'Upper' });
    assert.deepEqual(parsePluginRef('./p.mjs'), { module: './p.mjs', exportName: 'default' });
  });
  test('a class export and a factory export both load', async () => {
    const loaded = await loadTraitPlugins({ upper: './upper.mjs#Upper', count: './upper.mjs' }, fixtures);
    assert.equal(loaded.upper!({ fallback: 'none' }).traitValue([['a', 'abc']]), 'ABC');
    assert.equal(loaded.upper!({ fallback: 'none' }).traitValue([]), 'none');
    assert.equal(
      loaded.count!({}).traitValue([
        ['a', 1],
        ['b', 2],
      ]),
      2,
    );
  });
  test('a resolved {path, exportName} (what winchester.yaml loading passes)', async () => {
    const loaded = await loadTraitPlugins(
      { upper: { path: join(fixtures, 'upper.mjs'), exportName: 'Upper' } },
      '/',
    );
    assert.equal(loaded.upper!({}).traitValue([['a', 'x']]), 'X');
  });
  test('load failures name the plugin', async () => {
    await assert.rejects(
      loadTraitPlugins({ p: './nope.mjs' }, fixtures),
      (e: unknown) => e instanceof PluginLoadError && /plugin 'p'.*cannot import/.test(e.message),
    );
    await assert.rejects(
      loadTraitPlugins({ p: './upper.mjs#Missing' }, fixtures),
      /no function or class export 'Missing'/,
    );
    await assert.rejects(loadTraitPlugins({ p: 'mypkg.plugins:Thing' }, fixtures), /Python class path/);
  });
});
