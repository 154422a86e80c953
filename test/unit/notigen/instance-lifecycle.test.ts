/**
 * An instance's notifications tell one consistent life: a deletion is its own step, and nothing but
 * `.exists` (reporting it deleted) follows it. A captured operation template that ran on into a deletion
 * (resize.confirm.start_12) used to make instances that went on living after a delete.end, and the usage
 * audit rightly failed their day with U6 (".deleted events found but .exists has no deleted_at value"), as
 * the reference's does: `npm run demo` showed 69 such verdicts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { loadTemplates, type Notification, NotificationGenerator } from '../../../src/notigen/index.js';
import { compileTemplate } from '../../../src/notigen/template.js';

const templates = loadTemplates();
const DELETE_TYPES = /^compute\.instance\.(delete\.|shutdown\.)/;

test('an operation template ends where a deletion would start; delete templates keep their deletion', () => {
  const confirms = templates.operations.get('compute.instance.resize.confirm.start') ?? [];
  assert.ok(confirms.length >= 2);
  for (const t of templates.operations.values()) {
    for (const op of t) {
      const types = op.notifications.map((n) => n.eventType);
      assert.ok(!types.includes('compute.instance.delete.start'), `${op.name}: ${types.join(' ')}`);
      assert.ok(!types.includes('compute.instance.delete.end'), op.name);
    }
  }
  const cut = confirms.find((t) => t.name === 'compute.instance.resize.confirm.start_12');
  assert.equal(cut?.notifications.at(-1)?.eventType, 'compute.instance.resize.confirm.end');
  assert.ok(
    templates.deletes.some((t) => t.notifications.some((n) => n.eventType === 'compute.instance.delete.end')),
  );
});

test('a template that would begin by deleting the instance is refused as an operation', () => {
  const doc = [
    { time_map: { '[[[[DT_0]]]]': [0, 0, 0] }, uuid: 1, xuuid: 0, v4: 0, v6: 0 },
    {
      event_type: 'compute.instance.delete.start',
      timestamp: '[[[[DT_0]]]]',
      payload: { instance_id: '[[[[UUID_0]]]]' },
    },
  ];
  assert.throws(
    () => compileTemplate('compute.instance.reboot.start_1', doc),
    /starts by deleting the instance/,
  );
  assert.equal(compileTemplate('compute.instance.delete.start_1', doc).notifications.length, 1);
});

test('after its delete.end an instance only has .exists notifications that say it is deleted', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1_000_000 }), (seed) => {
      const deletedAt = new Map<string, string>();
      for (const n of new NotificationGenerator({
        templates,
        seed,
        instances: 40,
        days: 4,
        deleteRate: 0.3,
      })) {
        const p = (n as Notification).payload as Record<string, unknown>;
        const id = String(p.instance_id);
        const type = String(n.event_type);
        if (!deletedAt.has(id)) {
          if (type === 'compute.instance.delete.end') deletedAt.set(id, String(n.timestamp));
          continue;
        }
        assert.equal(
          type,
          'compute.instance.exists',
          `${id}: ${type} after its delete.end (${deletedAt.get(id)})`,
        );
        assert.notEqual(p.deleted_at, '', `${id}: .exists after delete.end without deleted_at`);
        assert.equal(p.state, 'deleted');
        assert.ok(!DELETE_TYPES.test(type));
      }
      return true;
    }),
    { numRuns: 8 },
  );
});
