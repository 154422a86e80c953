import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileFields, JsonPathError } from '../../../src/distill/jsonpath.js';

const doc = {
  publisher_id: 'compute.host-1',
  payload: {
    host: 'h1',
    state: 'active',
    nothing: null,
    image_meta: { 'org.openstack__1__os_distro': 'com.ubuntu', 'a"b': 'quoted' },
    fixed_ips: [
      { address: '10.0.0.1', vif_mac: 'aa' },
      { address: '10.0.0.2', vif_mac: 'bb' },
    ],
    bandwidth: { public: { bw_in: 1 }, private: { bw_in: 2 } },
    text: 'héllo',
  },
};

const first = (path: string | string[], root: unknown = doc) =>
  compileFields(Array.isArray(path) ? path : [path]).first(root);
const matches = (path: string | string[], root: unknown = doc) =>
  compileFields(Array.isArray(path) ? path : [path]).matches(root);

describe('field paths (jsonpath_rw dialect)', () => {
  test('dots, brackets and quoted keys', () => {
    assert.equal(first('payload.host'), 'h1');
    assert.equal(first('payload[host]'), 'h1');
    assert.equal(first("payload.image_meta.'org.openstack__1__os_distro'"), 'com.ubuntu');
    assert.equal(first('payload.image_meta."org.openstack__1__os_distro"'), 'com.ubuntu');
    assert.equal(first("payload.image_meta['org.openstack__1__os_distro']"), 'com.ubuntu');
    assert.equal(first("payload.image_meta.'a\"b'"), 'quoted');
    assert.equal(first('payload.image_meta."a\\"b"'), 'quoted');
    assert.equal(first(' payload . host '), 'h1', 'whitespace between tokens is ignored');
    assert.equal(first('$.payload.host'), 'h1');
  });

  test('a missing key, a null value, or a step through a non-object selects nothing', () => {
    assert.equal(first('payload.missing'), undefined);
    assert.equal(first('payload.nothing'), undefined);
    assert.equal(first('payload.host.deeper'), undefined);
    assert.equal(first('payload.fixed_ips.address'), undefined, 'a key on a list selects nothing');
    assert.equal(first('payload.host', null), undefined);
    assert.equal(first('payload.host', 'a string'), undefined);
    assert.equal(first('payload.host', [1, 2]), undefined);
  });

  test('a list of paths: the first that exists and is not null wins, in list order', () => {
    assert.equal(first(['payload.nothing', 'payload.missing', 'payload.state']), 'active');
    assert.equal(first(['payload.state', 'payload.host']), 'active');
    assert.equal(first(['payload.host', 'payload.state']), 'h1');
    assert.equal(first(['payload.nothing', 'payload.missing']), undefined);
  });

  test('indexes (negative from the end), slices and wildcards', () => {
    assert.equal(first('payload.fixed_ips[0].address'), '10.0.0.1');
    assert.equal(first('payload.fixed_ips[1].address'), '10.0.0.2');
    assert.equal(first('payload.fixed_ips[-1].address'), '10.0.0.2');
    assert.equal(first('payload.fixed_ips[5].address'), undefined);
    assert.equal(
      first('payload.fixed_ips[-5].address'),
      undefined,
      'the reference raises; we select nothing',
    );
    assert.deepEqual(
      matches('payload.fixed_ips[*].address').map((m) => m[1]),
      ['10.0.0.1', '10.0.0.2'],
    );
    assert.deepEqual(
      matches('payload.fixed_ips[1:].address').map((m) => m[1]),
      ['10.0.0.2'],
    );
    assert.deepEqual(
      matches('payload.fixed_ips[:1].address').map((m) => m[1]),
      ['10.0.0.1'],
    );
    assert.deepEqual(
      matches('payload.bandwidth.*.bw_in').map((m) => m[1]),
      [1, 2],
    );
    assert.equal(first('payload.text[1]'), 'é', 'a str is indexed by code point, as in Python');
    // A slice wraps a non-list value in a one-element list (the reference's coercion).
    assert.deepEqual(matches('payload.host[*]'), [['payload.host.[0]', 'h1']]);
  });

  test('descendants, unions, where, comma fields, parent and this', () => {
    assert.deepEqual(
      matches('payload..vif_mac').map((m) => m[1]),
      ['aa', 'bb'],
    );
    assert.deepEqual(
      matches('$..bw_in').map((m) => m[1]),
      [1, 2],
    );
    assert.equal(first('(payload.missing)|(payload.state)'), 'active');
    assert.deepEqual(
      matches('payload.host,state').map((m) => m[1]),
      ['h1', 'active'],
    );
    assert.deepEqual(matches('payload.fixed_ips[*] where vif_mac').length, 2);
    assert.equal(first('payload.host.`parent`.state'), 'active');
    assert.equal(first('payload.`this`.host'), 'h1');
  });

  test("precedence is the reference's: '|' binds tighter than '.'", () => {
    // a.b|c.d means a.(b|c).d
    const root = { a: { b: { d: 1 }, c: { d: 2 } }, c: { d: 3 } };
    assert.deepEqual(
      matches('a.b|c.d', root).map((m) => m[1]),
      [1, 2],
    );
    assert.deepEqual(
      matches('(a.b.d)|(c.d)', root).map((m) => m[1]),
      [1, 3],
    );
  });

  test('match paths are dotted, unquoted, with [i] steps (what plugins and bitfield flags see)', () => {
    assert.deepEqual(
      matches(["payload.image_meta.'org.openstack__1__os_distro'", 'payload.fixed_ips[0].address']),
      [
        ['payload.image_meta.org.openstack__1__os_distro', 'com.ubuntu'],
        ['payload.fixed_ips.[0].address', '10.0.0.1'],
      ],
    );
    assert.deepEqual(matches('$.payload.host'), [['payload.host', 'h1']]);
    assert.deepEqual(
      matches(['payload.nothing', 'payload.host']),
      [['payload.host', 'h1']],
      'nulls are dropped',
    );
  });

  test('own keys only: inherited properties are never selected', () => {
    assert.equal(first('payload.constructor'), undefined);
    assert.equal(first('payload.__proto__'), undefined);
    assert.equal(first('toString'), undefined);
    const parsed = JSON.parse('{"__proto__": {"x": 1}}');
    assert.equal(first('__proto__.x', parsed), 1);
  });

  test('syntax errors say where', () => {
    const err = (p: string) => {
      try {
        compileFields([p]);
      } catch (e) {
        assert.ok(e instanceof JsonPathError);
        return e;
      }
      assert.fail(`expected ${p} to be rejected`);
    };
    assert.equal(err('payload.bogus(').column, 14);
    err('');
    err('payload.');
    err("payload.'unterminated");
    err('payload.1abc');
    err('payload[');
    err('a & b');
    err('payload.`nope`');
    err('payload..');
  });
});
