import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  createDistiller,
  type Distiller,
  type DistillResult,
  distillerFromYaml,
  MALFORMED_REASONS,
} from '../../../src/distill/index.js';
import type { TraitPluginFactory } from '../../../src/distill/plugins.js';
import { ConfigError } from '../../../src/errors.js';
import type { Event, TraitValue } from '../../../src/model/event.js';
import { parseDatetime } from '../../../src/timex/instant.js';

const NOW = parseDatetime('2020-02-02T00:00:00Z');
const now = () => NOW;

function notification(eventType: string, messageId: string, payload: Record<string, unknown>) {
  return {
    event_type: eventType,
    message_id: messageId,
    priority: 'INFO',
    publisher_id: 'compute.host-1-2-3',
    timestamp: '2013-08-08 21:06:37.803826',
    payload,
  };
}

function event(r: DistillResult): Event {
  if (!r.ok) assert.fail(`expected an event, got ${JSON.stringify(r)}`);
  return r.event;
}

const trait = (e: Event, name: string): TraitValue | undefined => e.traits[name];

/** One-definition distiller over a trait config, like the reference's TraitDefinition tests. */
function single(traits: Record<string, unknown>, plugins?: Record<string, TraitPluginFactory>): Distiller {
  return createDistiller([{ event_type: 'test.thing', traits }], { plugins, now });
}

const n1 = notification('test.thing', 'uuid-for-notif-0001', {
  instance_uuid: 'uuid-for-instance-0001',
  instance_id: 'id-for-instance-0001',
  instance_uuid2: null,
  instance_id2: null,
  host: 'host-1-2-3',
  bogus_date: '',
  image_meta: { disk_gb: '20', thing: 'whatzit' },
  foobar: 50,
});

describe('trait extraction (reference TestTraitDefinition)', () => {
  test('text and int from a path', () => {
    const e = event(
      single({
        a: { type: 'text', fields: 'payload.instance_id' },
        b: { type: 'int', fields: 'payload.image_meta.disk_gb' },
      }).distill(n1),
    );
    assert.deepEqual(trait(e, 'a'), { type: 'text', value: 'id-for-instance-0001' });
    assert.deepEqual(trait(e, 'b'), { type: 'int', value: 20 });
  });
  test('several fields: the first present wins, in the order given', () => {
    const d = single({
      a: { fields: ['payload.instance_id', 'payload.instance_uuid'] },
      b: { fields: ['payload.instance_uuid', 'payload.instance_id'] },
      c: { type: 'int', fields: ['payload.foobar', 'payload.image_meta.disk_gb'] },
      d: { type: 'int', fields: ['payload.image_meta.disk_gb', 'payload.foobar'] },
      e: { fields: ['payload.instance_id2', 'payload.instance_uuid'] },
      f: { fields: ['payload.not_here_boss', 'payload.instance_uuid'] },
    });
    const e = event(d.distill(n1));
    assert.equal(trait(e, 'a')?.value, 'id-for-instance-0001');
    assert.equal(trait(e, 'b')?.value, 'uuid-for-instance-0001');
    assert.equal(trait(e, 'c')?.value, 50);
    assert.equal(trait(e, 'd')?.value, 20);
    assert.equal(trait(e, 'e')?.value, 'uuid-for-instance-0001', 'null is skipped');
    assert.equal(trait(e, 'f')?.value, 'uuid-for-instance-0001', 'missing is skipped');
  });
  test('missing, null, and empty non-text values leave the trait out', () => {
    const d = single({
      missing: { fields: 'payload.not_here_boss' },
      nul: { fields: 'payload.instance_id2' },
      empty_date: { type: 'datetime', fields: 'payload.bogus_date' },
      empty_int: { type: 'int', fields: 'payload.bogus_date' },
      empty_float: { type: 'float', fields: 'payload.bogus_date' },
      empty_text: { type: 'text', fields: 'payload.bogus_date' },
      both: { fields: ['payload.not_here_boss', 'payload.instance_id2'] },
    });
    const e = event(d.distill(n1));
    for (const name of ['missing', 'nul', 'empty_date', 'empty_int', 'empty_float', 'both']) {
      assert.equal(trait(e, name), undefined, name);
    }
    assert.deepEqual(trait(e, 'empty_text'), { type: 'text', value: '' }, 'an empty text is still a value');
  });
  test('plugins get every (path, value) match and their result is converted', () => {
    const calls: unknown[] = [];
    const made: unknown[] = [];
    const test: TraitPluginFactory = (params) => {
      made.push(params);
      return {
        traitValue(m) {
          calls.push(m);
          return 'foobar';
        },
      };
    };
    const nothing: TraitPluginFactory = () => ({ traitValue: () => null });
    const d = single(
      {
        a: {
          type: 'text',
          fields: ['payload.instance_id', 'payload.instance_uuid'],
          plugin: { name: 'test' },
        },
        b: { fields: ['payload.nothere', 'payload.bogus'], plugin: 'test' },
        c: { fields: ['payload.instance_id', 'payload.instance_uuid'], plugin: { name: 'nothing' } },
        d: { fields: 'payload.instance_id', plugin: { name: 'test', parameters: { a: 1, b: 'foo' } } },
      },
      { test, nothing },
    );
    assert.deepEqual(made, [{}, {}, { a: 1, b: 'foo' }], 'one instance per trait, created at load time');
    const e = event(d.distill(n1));
    assert.equal(trait(e, 'a')?.value, 'foobar');
    assert.equal(trait(e, 'b')?.value, 'foobar', 'a plugin is called even when nothing matched');
    assert.equal(trait(e, 'c'), undefined, 'a plugin returning null leaves the trait out');
    assert.deepEqual(calls, [
      [
        ['payload.instance_id', 'id-for-instance-0001'],
        ['payload.instance_uuid', 'uuid-for-instance-0001'],
      ],
      [],
      [['payload.instance_id', 'id-for-instance-0001']],
    ]);
  });
  test('a plugin result is coerced to the trait type', () => {
    const seven: TraitPluginFactory = () => ({ traitValue: () => '7' });
    const date: TraitPluginFactory = () => ({ traitValue: () => new Date(Date.UTC(2015, 0, 22)) });
    const e = event(
      single(
        {
          i: { type: 'int', fields: 'x', plugin: 'seven' },
          f: { type: 'float', fields: 'x', plugin: 'seven' },
          d: { type: 'datetime', fields: 'x', plugin: 'date' },
          b: {
            type: 'text',
            fields: 'payload.foobar',
            plugin: { name: 'bitfield', parameters: { initial_bitfield: 5 } },
          },
        },
        { seven, date },
      ).distill(n1),
    );
    assert.deepEqual(trait(e, 'i'), { type: 'int', value: 7 });
    assert.deepEqual(trait(e, 'f'), { type: 'float', value: 7 });
    assert.deepEqual(trait(e, 'd'), { type: 'datetime', value: parseDatetime('2015-01-22T00:00:00Z') });
    assert.deepEqual(trait(e, 'b'), { type: 'text', value: '5' });
  });
});

describe('bad trait configs are ConfigErrors (reference cases)', () => {
  const bad = (traits: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => single(traits, { test: () => ({ traitValue: () => 1 }) }),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
    );
  test('each', () => {
    bad({ t: 'foo' }, /expected a mapping/);
    bad({ t: {} }, /'fields' is required/);
    bad({ t: { fields: 'payload.bogus(' } }, /invalid path/);
    bad({ t: { fields: 'payload.test', plugin: { bogus: 'true' } } }, /no plugin name/);
    bad({ t: { fields: 'payload.test', plugin: { name: 'bogus' } } }, /no plugin named 'bogus'/);
    bad({ t: { fields: 'payload.test', type: 'foo' } }, /invalid type "foo"/);
    bad({ t: { fields: [] } }, /non-empty list/);
    bad({ t: { fields: 'x', plugin: { name: 'split', parameters: { separator: '' } } } }, /separator/);
  });
  test('types accepted', () => {
    for (const type of ['text', 'int', 'float', 'datetime']) {
      assert.equal(single({ t: { type, fields: 'payload.test' } }).definitions[0]!.traits.at(-1)!.type, type);
    }
  });
  test('definitions need event_type and traits', () => {
    assert.throws(() => createDistiller([{ event_type: 'test.foo' }]), /'traits' is missing/);
    assert.throws(() => createDistiller([{ traits: {} }]), /'event_type' is missing/);
    assert.throws(() => createDistiller({ event_type: 'x', traits: {} }), /must be a list/);
    assert.throws(() => createDistiller(['x']), /expected a mapping/);
    assert.throws(() => createDistiller([{ event_type: 5, traits: {} }]), /'event_type' must be a glob/);
    assert.throws(
      () => createDistiller([{ event_type: ['compute.*', '![z-a]'], traits: {} }]),
      /invalid event_type glob "!\[z-a\]"/,
    );
  });
  test('every problem is reported at once', () => {
    try {
      createDistiller([{ event_type: 'a', traits: { x: {} } }, { traits: {} }]);
      assert.fail('expected a ConfigError');
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.problems.length, 2);
    }
  });
});

describe('event definitions (reference TestEventDefinition)', () => {
  const traits = {
    instance_id: { type: 'text', fields: ['payload.instance_uuid', 'payload.instance_id'] },
    host: { type: 'text', fields: 'payload.host' },
  };
  const d = createDistiller([{ event_type: 'test.thing', traits }], { now });
  test('envelope and traits', () => {
    const e = event(
      d.distill(
        notification('test.thing', 'uuid-for-notif-0001', {
          instance_id: 'uuid-for-instance-0001',
          host: 'host-1-2-3',
        }),
      ),
    );
    assert.equal(e.event_type, 'test.thing');
    assert.equal(e.message_id, 'uuid-for-notif-0001');
    assert.equal(e.timestamp, parseDatetime('2013-08-08T21:06:37.803826Z'));
    assert.deepEqual(trait(e, 'service'), { type: 'text', value: 'compute.host-1-2-3' });
    assert.equal(trait(e, 'host')?.value, 'host-1-2-3');
    assert.equal(trait(e, 'instance_id')?.value, 'uuid-for-instance-0001');
  });
  test('missing and null traits are left out', () => {
    const e2 = event(d.distill(notification('test.thing', 'm2', { instance_id: 'i2' })));
    assert.equal(trait(e2, 'host'), undefined);
    const e3 = event(d.distill(notification('test.thing', 'm3', { instance_id: 'i3', host: null })));
    assert.equal(trait(e3, 'host'), undefined);
  });
  test('default traits: service, request_id, tenant_id, and a definition may override them', () => {
    const def = createDistiller([{ event_type: 'x', traits: {} }]).definitions[0]!;
    assert.deepEqual(
      def.traits.map((t) => t.name),
      ['service', 'request_id', 'tenant_id'],
    );
    const withTraits = createDistiller([{ event_type: 'x', traits }]).definitions[0]!;
    assert.deepEqual(
      withTraits.traits.map((t) => t.name),
      ['service', 'request_id', 'tenant_id', 'instance_id', 'host'],
    );
    const o = createDistiller(
      [{ event_type: 'x', traits: { service: { fields: 'publisher_id', plugin: 'split' } } }],
      { now },
    );
    const e = event(
      o.distill({
        event_type: 'x',
        message_id: 'm',
        publisher_id: 'compute.h',
        _context_request_id: 'req-1',
        _context_tenant: 'ct',
        payload: {},
      }),
    );
    assert.deepEqual(
      Object.keys(e.traits),
      ['service', 'request_id', 'tenant_id'],
      'an override keeps its place',
    );
    assert.equal(trait(e, 'service')?.value, 'compute');
    assert.equal(trait(e, 'request_id')?.value, 'req-1');
    assert.equal(trait(e, 'tenant_id')?.value, 'ct', '_context_tenant when payload.tenant_id is absent');
    const e2 = event(
      o.distill({ event_type: 'x', message_id: 'm', _context_tenant: 'ct', payload: { tenant_id: 'pt' } }),
    );
    assert.equal(trait(e2, 'tenant_id')?.value, 'pt');
  });
  test('event timestamp: timestamp, else _context_timestamp, else now', () => {
    const base = { event_type: 'test.thing', message_id: 'm' };
    const a = event(
      d.distill({ ...base, timestamp: '2015-01-01 00:00:01', _context_timestamp: '2015-01-01 00:00:02' }),
    );
    assert.equal(a.timestamp, parseDatetime('2015-01-01T00:00:01Z'));
    const b = event(d.distill({ ...base, _context_timestamp: '2015-01-01 00:00:02' }));
    assert.equal(b.timestamp, parseDatetime('2015-01-01T00:00:02Z'));
    const c = event(d.distill({ ...base, timestamp: null, _context_timestamp: '2015-01-01 00:00:02' }));
    assert.equal(c.timestamp, parseDatetime('2015-01-01T00:00:02Z'));
    const none = event(d.distill(base));
    assert.equal(none.timestamp, NOW);
    const offset = event(d.distill({ ...base, timestamp: '2015-01-01T02:00:00.5+02:00' }));
    assert.equal(offset.timestamp, parseDatetime('2015-01-01T00:00:00.500000Z'));
  });
  test('reserved trait names are ignored with a warning', () => {
    const w = createDistiller([{ event_type: 'x', traits: { timestamp: { fields: 'payload.t' } } }]);
    assert.equal(w.warnings.length, 1);
    assert.match(w.warnings[0]!.message, /'timestamp' is ignored/);
    assert.ok(!w.definitions[0]!.traits.some((t) => t.name === 'timestamp'));
  });
});

describe('the distiller (reference TestDistiller)', () => {
  const defs = [
    {
      event_type: 'compute.instance.create.*',
      traits: {
        instance_id: { type: 'text', fields: ['payload.instance_uuid', 'payload.instance_id'] },
        host: { type: 'text', fields: 'payload.host' },
      },
    },
  ];
  const n1 = notification('compute.instance.create.start', 'uuid-for-notif-0001', {
    instance_id: 'uuid-for-instance-0001',
    host: 'host-1-2-3',
  });
  const n2 = notification('bogus.notification.from.mars', 'uuid-for-notif-0002', {
    weird: 'true',
    host: 'cydonia',
  });

  test('a missing-keys notification with the catch-all: one trait, stamped now', () => {
    const d = createDistiller([], { catchAll: true, now });
    const e = event(d.distill({ event_type: 'foo', message_id: 'abc', publisher_id: '1' }));
    assert.deepEqual(Object.keys(e.traits), ['service']);
    assert.equal(e.event_type, 'foo');
    assert.equal(e.timestamp, NOW);
  });
  test('with catch-all', () => {
    const d = createDistiller(defs, { catchAll: true });
    assert.equal(d.definitions.length, 2);
    assert.equal(d.definitionCount, 1);
    const e1 = event(d.distill(n1));
    assert.deepEqual(Object.keys(e1.traits), ['service', 'instance_id', 'host']);
    const e2 = event(d.distill(n2));
    assert.deepEqual(Object.keys(e2.traits), ['service']);
  });
  test('without catch-all an unknown type is unmatched', () => {
    const d = createDistiller(defs);
    assert.equal(d.definitions.length, 1);
    assert.equal(Object.keys(event(d.distill(n1)).traits).length, 3);
    assert.deepEqual(d.distill(n2), {
      ok: false,
      kind: 'unmatched',
      eventType: 'bogus.notification.from.mars',
      messageId: 'uuid-for-notif-0002',
    });
  });
  test('empty config', () => {
    assert.equal(createDistiller([], { catchAll: true }).definitions.length, 1);
    assert.ok(createDistiller([], { catchAll: true }).definitions[0]!.matcher.isCatchAll);
    const d = createDistiller([]);
    assert.equal(d.definitions.length, 0);
    assert.equal(d.distill(n1).ok, false);
  });
  test('the catch-all is not added when the file already has one', () => {
    const d = createDistiller([{ event_type: '*', traits: { h: { fields: 'payload.host' } } }, ...defs], {
      catchAll: true,
    });
    assert.equal(d.definitions.length, 2);
    assert.equal(trait(event(d.distill(n2)), 'h')?.value, 'cydonia');
  });
  test('the file is searched from the last entry to the first', () => {
    const d = createDistiller([
      { event_type: 'compute.instance.*', traits: { which: { fields: 'payload.first' } } },
      { event_type: 'compute.instance.exists', traits: { which: { fields: 'payload.second' } } },
    ]);
    const p = { first: 'general', second: 'specific' };
    assert.equal(
      trait(event(d.distill(notification('compute.instance.exists', 'm', p))), 'which')?.value,
      'specific',
    );
    assert.equal(
      trait(event(d.distill(notification('compute.instance.update', 'm', p))), 'which')?.value,
      'general',
    );
  });
});

describe('malformed input is a result, never an exception', () => {
  const d = createDistiller(
    [
      {
        event_type: '*',
        traits: {
          n: { type: 'int', fields: 'payload.n' },
          f: { type: 'float', fields: 'payload.f' },
          t: { type: 'datetime', fields: 'payload.t' },
          boom: { fields: 'payload.boom', plugin: 'boom' },
        },
      },
    ],
    {
      plugins: {
        boom: () => ({
          traitValue: (m) => {
            if (m.length > 0) throw new Error('kaput');
            return undefined;
          },
        }),
      },
      now,
    },
  );
  const reason = (r: DistillResult) => (!r.ok && r.kind === 'malformed' ? r.reason : r.ok ? 'ok' : r.kind);
  const ok = { event_type: 'a.b', message_id: 'm1', timestamp: '2015-01-01 00:00:00' };
  test('each reason', () => {
    assert.equal(reason(d.distillJson('{not json')), 'invalid_json');
    assert.equal(reason(d.distill([1])), 'not_an_object');
    assert.equal(reason(d.distill(null)), 'not_an_object');
    assert.equal(reason(d.distill({ message_id: 'm' })), 'missing_event_type');
    assert.equal(reason(d.distill({ event_type: 7, message_id: 'm' })), 'missing_event_type');
    assert.equal(reason(d.distill({ event_type: 'a' })), 'missing_message_id');
    assert.equal(reason(d.distill({ event_type: 'a', message_id: '' })), 'missing_message_id');
    assert.equal(reason(d.distill({ ...ok, timestamp: 'yesterday' })), 'bad_timestamp');
    assert.equal(reason(d.distill({ ...ok, timestamp: 12345 })), 'bad_timestamp');
    assert.equal(reason(d.distill({ ...ok, payload: { n: '3.0' } })), 'bad_trait_value');
    assert.equal(reason(d.distill({ ...ok, payload: { f: 'x' } })), 'bad_trait_value');
    assert.equal(reason(d.distill({ ...ok, payload: { t: '2015-13-45' } })), 'bad_trait_value');
    assert.equal(reason(d.distill({ ...ok, payload: { t: 12 } })), 'bad_trait_value');
    assert.equal(reason(d.distill({ ...ok, payload: { boom: 1 } })), 'plugin_error');
    assert.equal(reason(d.distill({ 'oslo.version': '2.0', 'oslo.message': '{bad' })), 'bad_envelope');
    assert.equal(
      reason(d.distill({ 'oslo.version': '3.0', 'oslo.message': JSON.stringify(ok) })),
      'bad_envelope',
    );
    assert.equal(reason(d.distill({ 'oslo.version': '2.0', 'oslo.message': '[1]' })), 'bad_envelope');
    assert.equal(reason(d.distill({ 'oslo.version': '2.0' })), 'bad_envelope');
    assert.equal(reason(d.distill(ok)), 'ok');
  });
  test('details name the trait and the message', () => {
    const r = d.distill({ ...ok, payload: { n: 'abc' } });
    assert.ok(!r.ok && r.kind === 'malformed');
    assert.match(r.detail, /trait 'n' \(int\).*"abc".*message m1/);
  });
  test('the oslo.messaging v2 envelope is unwrapped', () => {
    const e = event(
      d.distill({ 'oslo.version': '2.0', 'oslo.message': JSON.stringify({ ...ok, payload: { n: 4 } }) }),
    );
    assert.equal(e.message_id, 'm1');
    assert.deepEqual(trait(e, 'n'), { type: 'int', value: 4 });
  });
  test('property: distill never throws, and every failure has a known reason', () => {
    const check = (v: unknown) => {
      const r = d.distill(v);
      if (!r.ok && r.kind === 'malformed') assert.ok(MALFORMED_REASONS.includes(r.reason));
    };
    fc.assert(fc.property(fc.anything(), check), { numRuns: 2000 });
    fc.assert(
      fc.property(fc.json(), (text) => {
        const r = d.distillJson(text);
        if (!r.ok && r.kind === 'malformed') assert.ok(MALFORMED_REASONS.includes(r.reason));
      }),
      { numRuns: 1000 },
    );
    // Notification-shaped values reach the trait code paths.
    const shaped = fc.record({
      event_type: fc.oneof(fc.constant('a.b'), fc.anything()),
      message_id: fc.oneof(fc.constant('m'), fc.anything()),
      timestamp: fc.oneof(fc.constant('2015-01-01 00:00:00'), fc.string(), fc.anything()),
      payload: fc.record(
        { n: fc.anything(), f: fc.anything(), t: fc.anything(), boom: fc.anything() },
        { requiredKeys: [] },
      ),
    });
    fc.assert(fc.property(shaped, check), { numRuns: 2000 });
  });
});

describe('event_definitions.yaml', () => {
  test('merge keys, anchors and YAML 1.1', () => {
    const d = distillerFromYaml(
      `---
- event_type: compute.instance.*
  traits: &base
    host:
      fields: payload.host
    flavor:
      fields: payload.flavor
- event_type: compute.instance.exists
  traits:
    <<: *base
    flavor:
      type: int
      fields: payload.flavor_id
    extra:
      fields: payload.extra
`,
      'defs.yaml',
    );
    const def = d.definitions[0]!;
    assert.deepEqual(def.eventTypes, ['compute.instance.exists']);
    assert.deepEqual(
      def.traits.map((t) => `${t.name}:${t.type}`),
      ['service:text', 'request_id:text', 'tenant_id:text', 'host:text', 'flavor:int', 'extra:text'],
    );
  });
  test('problems carry file and line', () => {
    const yaml = `- event_type: a
  traits:
    good:
      fields: payload.x
    bad:
      fields: payload.bogus(
    worse:
      type: bool
      fields: x
- event_type: b
`;
    try {
      distillerFromYaml(yaml, 'defs.yaml');
      assert.fail('expected a ConfigError');
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      const at = e.problems.map((p) => `${p.file}:${p.line}`);
      assert.deepEqual(at, ['defs.yaml:6', 'defs.yaml:8', 'defs.yaml:10']);
      assert.match(e.message, /defs\.yaml:6:\d+: trait 'bad': invalid path/);
    }
  });
  test('a problem inside a merged anchor points at the anchor', () => {
    const yaml = `- event_type: a
  traits: &t
    x:
      fields: payload.(
- event_type: b
  traits:
    <<: *t
`;
    assert.throws(
      () => distillerFromYaml(yaml, 'f.yaml'),
      (e: unknown) => e instanceof ConfigError && e.problems.every((p) => p.line === 4),
    );
  });
  test('YAML syntax errors carry the line', () => {
    assert.throws(
      () => distillerFromYaml('- event_type: a\n  traits: [unclosed\n', 'f.yaml'),
      (e: unknown) =>
        e instanceof ConfigError && e.problems[0]!.line !== undefined && /YAML syntax error/.test(e.message),
    );
  });
  test("PyYAML booleans: 'y' and 'n' stay strings, 'yes'/'off' are booleans", () => {
    const d = distillerFromYaml('- event_type: n\n  traits:\n    x:\n      fields: y\n', 'f.yaml');
    assert.deepEqual(d.definitions[0]!.eventTypes, ['n']);
    assert.deepEqual(d.definitions[0]!.traits.at(-1)!.paths, ['y']);
    assert.throws(
      () => distillerFromYaml('- event_type: yes\n  traits: {}\n', 'f.yaml'),
      /'event_type' must be a glob/,
    );
  });
  test('an empty file has no definitions', () => {
    assert.equal(distillerFromYaml('', 'f.yaml').definitions.length, 0);
    assert.equal(distillerFromYaml('# only a comment\n', 'f.yaml').definitions.length, 0);
  });
  test('unknown keys warn with their line', () => {
    const d = distillerFromYaml(
      '- event_type: a\n  traits:\n    x:\n      fields: y\n      typo: int\n  extra: 1\n',
      'f.yaml',
    );
    assert.deepEqual(new Set(d.warnings.map((w) => w.line)), new Set([5, 6]));
  });
});
