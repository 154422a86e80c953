import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { loadTemplates, type Notification, NotificationGenerator, Prng } from '../../../src/notigen/index.js';
import { parseDatetime, US_PER_DAY } from '../../../src/timex/instant.js';
import { runCli } from '../../helpers/cli.js';

const templates = loadTemplates();
const gen = (o: ConstructorParameters<typeof NotificationGenerator>[0] = {}) =>
  new NotificationGenerator({ templates, ...o });

type Payload = Record<string, unknown>;
const payloadOf = (n: Notification) => (n.payload ?? {}) as Payload;
const unwrap = (n: Notification): Notification =>
  n['oslo.version'] === '2.0' ? (JSON.parse(n['oslo.message'] as string) as Notification) : n;

describe('notigen generator', () => {
  test('the same seed gives the same stream; another seed another one', () => {
    const a = [...gen({ seed: 42, instances: 8, days: 2 }).lines()];
    const b = [...gen({ seed: 42, instances: 8, days: 2 }).lines()];
    const c = [...gen({ seed: 43, instances: 8, days: 2 }).lines()];
    assert.ok(a.length > 100);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  test('lines() is exactly JSON.stringify of the objects, envelopes and duplicates included', () => {
    const o = { seed: 9, instances: 10, days: 2, duplicates: 0.05, osloEnvelope: 0.3 };
    const objects = [...gen(o)].map((n) => JSON.stringify(n));
    assert.deepEqual([...gen(o).lines()], objects);
  });

  test('every placeholder is filled', () => {
    for (const line of gen({ seed: 3, instances: 30, days: 3 }).lines()) {
      assert.ok(!line.includes('[[[['), `unfilled placeholder in ${line.slice(0, 200)}`);
    }
  });

  test('timestamps never go backwards (envelopes unwrapped)', () => {
    let prev = Number.NEGATIVE_INFINITY;
    for (const n of gen({ seed: 5, instances: 40, days: 3, osloEnvelope: 0.2, duplicates: 0.02 })) {
      const t = parseDatetime(unwrap(n).timestamp as string);
      assert.ok(t >= prev, `${unwrap(n).timestamp} after a later notification`);
      prev = t;
    }
  });

  test('message ids are unique except the intended duplicates, which directly follow their original', () => {
    const g = gen({ seed: 11, instances: 30, days: 3, duplicates: 0.03 });
    const seen = new Set<string>();
    let previous: string | undefined;
    let previousJson = '';
    let dups = 0;
    for (const n of g) {
      const json = JSON.stringify(n);
      const id = n.message_id as string;
      if (seen.has(id)) {
        assert.equal(id, previous, 'a repeated message_id must be a redelivery right after the original');
        assert.equal(json, previousJson, 'a redelivery is the same message');
        dups++;
      }
      seen.add(id);
      previous = id;
      previousJson = json;
    }
    assert.ok(dups > 0);
    assert.equal(dups, g.stats.duplicates);
  });

  test('an instance keeps its identity across all its operations', () => {
    const facts = [
      'tenant_id',
      'user_id',
      'display_name',
      'host',
      'launched_at',
      'created_at',
      'instance_type_id',
      'memory_mb',
    ];
    const byInstance = new Map<string, Payload>();
    for (const n of gen({ seed: 17, instances: 25, days: 3 })) {
      const p = payloadOf(n);
      const id = p.instance_id;
      if (typeof id !== 'string') continue;
      const known = byInstance.get(id) ?? {};
      for (const f of facts) {
        const v = p[f];
        if (v === undefined || v === '') continue;
        if (known[f] === undefined) known[f] = v;
        else assert.equal(v, known[f], `${f} of ${id} changed in ${n.event_type as string}`);
      }
      byInstance.set(id, known);
    }
    assert.ok(byInstance.size >= 20);
  });

  test('every live instance gets one end-of-day exists per day, covering exactly that day', () => {
    const start = parseDatetime('2015-03-10');
    const days = 4;
    const g = gen({ seed: 23, instances: 20, days, start: '2015-03-10T15:00:00Z', deleteRate: 0.2 });
    const eod = new Map<string, Array<{ apb: string; state: unknown; deletedAt: unknown }>>();
    const created = new Set<string>();
    for (const n of g) {
      const p = payloadOf(n);
      const id = p.instance_id as string;
      if (n.event_type === 'compute.instance.create.end' && p.state === 'active') created.add(id);
      if (n.event_type !== 'compute.instance.exists') continue;
      const apb = parseDatetime(p.audit_period_beginning as string);
      const ape = parseDatetime(p.audit_period_ending as string);
      if (ape - apb !== US_PER_DAY || apb % US_PER_DAY !== 0) continue; // the non-EOD exists some operations carry
      const ts = parseDatetime(n.timestamp as string);
      assert.ok(ts >= ape && ts < ape + US_PER_DAY / 24, 'the audit runs shortly after midnight');
      const list = eod.get(id) ?? [];
      list.push({ apb: p.audit_period_beginning as string, state: p.state, deletedAt: p.deleted_at });
      eod.set(id, list);
    }
    assert.ok(created.size > 0);
    let deletions = 0;
    let errored = 0;
    for (const id of created) {
      const periods = eod.get(id) ?? [];
      const expected = periods.map(
        (_, i) => `${new Date((start + i * US_PER_DAY) / 1000).toISOString().slice(0, 10)} 00:00:00`,
      );
      assert.deepEqual(
        periods.map((x) => x.apb),
        expected,
        `audit periods of ${id}`,
      );
      // Active every day until a delete that failed leaves it in error (for good, unless a later delete
      // succeeds); a deleted instance's last exists says so, and it gets no more.
      const last = periods[periods.length - 1]!;
      const states = periods.slice(0, -1).map((x) => x.state);
      const firstError = states.indexOf('error');
      for (const [i, state] of states.entries())
        assert.equal(state, firstError >= 0 && i >= firstError ? 'error' : 'active', `${id} day ${i}`);
      if (last.state === 'error') errored++;
      if (last.state === 'deleted') {
        deletions++;
        assert.notEqual(last.deletedAt, '');
      } else {
        // In error once a delete failed; else active, or in error since today's delete failed.
        if (firstError >= 0) assert.equal(last.state, 'error', id);
        else assert.ok(last.state === 'active' || last.state === 'error', `${id}: ${String(last.state)}`);
        assert.equal(periods.length, days, `${id} lived all ${days} days`);
      }
    }
    assert.ok(deletions > 0, 'some instances were deleted');
    assert.ok(errored > 0, 'some deletes failed (the instance stays, in error)');
  });

  test('count stops the stream; a count of 0 yields nothing', () => {
    assert.equal([...gen({ seed: 1, instances: 50, count: 123 })].length, 123);
    assert.equal([...gen({ seed: 1, count: 0 })].length, 0);
  });

  test('bad options are usage errors', () => {
    assert.throws(() => gen({ days: 0 }), /days/);
    assert.throws(() => gen({ duplicates: 1.5 }), /duplicates/);
    assert.throws(() => gen({ start: 'yesterday' }), /start/);
  });

  test('streams a large workload without keeping it (and at benchmark speed)', () => {
    const g = gen({ seed: 2, instances: 500, days: 30 });
    const t0 = performance.now();
    let n = 0;
    for (const _ of g.lines()) if (++n >= 100_000) break;
    const rate = n / ((performance.now() - t0) / 1000);
    assert.equal(n, 100_000);
    // Generous floor: CI machines are shared; the target on a quiet core is ≥ 50k/s.
    assert.ok(rate > 10_000, `only ${Math.round(rate)} notifications/s`);
  });

  test('Prng: deterministic per (seed, stream), uuid4 well-formed', () => {
    fc.assert(
      fc.property(fc.integer(), fc.nat(), (seed, stream) => {
        const a = new Prng(seed, stream);
        const b = new Prng(seed, stream);
        for (let i = 0; i < 5; i++) assert.equal(a.u32(), b.u32());
        assert.match(a.uuid4(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        const k = a.int(7);
        assert.ok(Number.isInteger(k) && k >= 0 && k < 7);
      }),
    );
  });
});

describe('winchester generate', () => {
  test('prints JSON lines, deterministic, summary on stderr', async () => {
    const args = ['generate', '--seed', '4', '--instances', '3', '--days', '2', '--duplicates', '0.05'];
    const a = await runCli(args);
    const b = await runCli(args);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, b.stdout);
    const lines = a.stdoutLines();
    assert.ok(lines.length > 20);
    for (const l of lines) assert.equal(typeof (JSON.parse(l) as Notification).event_type, 'string');
    assert.match(a.stderr, new RegExp(`generated ${lines.length} notifications`));
  });

  test('--count and bad values', async () => {
    const r = await runCli(['generate', '--count', '7']);
    assert.equal(r.code, 0);
    assert.equal(r.stdoutLines().length, 7);
    const bad = await runCli(['generate', '--instances', 'many']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--instances expects an integer/);
  });
});
