/**
 * The production StackTach event definitions over the real notification templates
 * (etc/ and the notigen templates, copies of ../shared/data), with the placeholders filled the way notigen fills them.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Distiller, loadDistiller } from '../../../src/distill/index.js';
import type { Event, TraitValue } from '../../../src/model/event.js';
import { formatInstant, parseDatetime, US_PER_DAY, US_PER_SECOND } from '../../../src/timex/instant.js';

// The repository's own copies (etc/ is byte-identical to shared/data/stacktach-config), so the
// test runs in any clone, with or without shared/ beside it.
const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const templates = join(root, 'src/notigen/templates');
const definitions = join(root, 'etc/event_definitions.yaml');

const START = parseDatetime('2015-01-22T02:50:22.702356Z');

/** Python's str(datetime) for a UTC instant: '2015-01-22 02:50:22.702356' (no fraction when 0). */
function pyDatetime(t: number): string {
  const iso = formatInstant(t);
  const s = `${iso.slice(0, 10)} ${iso.slice(11, 26)}`;
  return s.endsWith('.000000') ? s.slice(0, 19) : s;
}

const FIXED: Record<string, string> = {
  tenant_id: '5823423',
  user_id: '773312',
  display_name: 'Instance_4242',
  host: 'host-1234',
  hostname: 'server-99',
  node: 'node-7',
  publisher_id: 'compute.host-1234.example.com',
  reservation_id: 'res-55',
  image_name: 'image-9',
  device_name: 'device-3',
};

/** Fills one template file; returns its notifications. */
function fill(file: string): Record<string, unknown>[] {
  const raw = readFileSync(join(templates, file), 'utf8');
  const meta = (JSON.parse(raw) as [{ time_map: Record<string, [number, number, number]> }])[0];
  let text = raw;
  for (const [key, [days, seconds, micros]] of Object.entries(meta.time_map)) {
    text = text.replaceAll(key, pyDatetime(START + days * US_PER_DAY + seconds * US_PER_SECOND + micros));
  }
  text = text.replace(/\[\[\[\[(\w+?)_(\d+)\]\]\]\]/g, (_m, kind: string, n: string) => {
    const i = Number(n);
    switch (kind) {
      case 'UUID':
        return `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
      case 'XUUID':
        return `${String(i).padStart(32, '0')}`;
      case 'V4':
        return `10.0.0.${i + 1}`;
      case 'V6':
        return `fe80::${i + 1}`;
      default:
        return `${kind}-${i}`;
    }
  });
  text = text.replace(/\[\[\[\[(\w+)\]\]\]\]/g, (_m, name: string) => FIXED[name] ?? `x-${name}`);
  assert.ok(!text.includes('[[[['), `${file}: unfilled placeholder`);
  return (JSON.parse(text) as Record<string, unknown>[]).slice(1);
}

let distiller: Distiller;
const all = new Map<string, Record<string, unknown>[]>();

const tv = (e: Event, name: string): TraitValue | undefined => e.traits[name];

function distillOne(file: string, eventType: string): Event {
  const n = all.get(file)!.find((x) => x.event_type === eventType);
  assert.ok(n, `${file} has no ${eventType}`);
  const r = distiller.distill(n);
  assert.ok(r.ok, JSON.stringify(r));
  return r.event;
}

describe('StackTach production definitions over the notigen templates', async () => {
  distiller = await loadDistiller(definitions);
  for (const f of readdirSync(templates).filter((x) => x.endsWith('.json'))) all.set(f, fill(f));

  test('the definitions load without warnings, searched from the last entry', () => {
    assert.deepEqual(distiller.warnings, []);
    assert.equal(distiller.definitionCount, 6);
    assert.deepEqual(distiller.definitions[0]!.eventTypes, ['rebuild_instance']);
    assert.deepEqual(distiller.definitions.at(-1)!.eventTypes, ['compute.instance.*']);
  });

  test('every notification distills or is unmatched, none is malformed', () => {
    let events = 0;
    const unmatched = new Set<string>();
    for (const [file, ns] of all) {
      for (const n of ns) {
        const r = distiller.distill(n);
        if (r.ok) events++;
        else if (r.kind === 'unmatched') unmatched.add(r.eventType);
        else assert.fail(`${file}: ${r.reason}: ${r.detail}`);
      }
    }
    assert.ok(events > 250);
    // Legacy event types that no definition covers.
    assert.deepEqual([...unmatched].sort(), [
      'rescue_instance',
      'scheduler.run_instance',
      'terminate_instance',
    ]);
  });

  test('compute.instance.exists: datetimes, ints, split host, quoted keys', () => {
    const e = distillOne('eod_exists.json', 'compute.instance.exists');
    assert.equal(e.message_id, '00000000-0000-4000-8000-000000000003');
    assert.equal(e.timestamp, START, 'DT_4 is the operation start');
    assert.deepEqual(tv(e, 'audit_period_beginning'), {
      type: 'datetime',
      value: START - 2 * US_PER_DAY + 86399 * US_PER_SECOND + 866412,
    });
    assert.deepEqual(tv(e, 'audit_period_ending'), {
      type: 'datetime',
      value: START - US_PER_DAY + 86399 * US_PER_SECOND + 866412,
    });
    assert.deepEqual(tv(e, 'launched_at'), {
      type: 'datetime',
      value: START - 75 * US_PER_DAY + 45627 * US_PER_SECOND + 866412,
    });
    assert.equal(tv(e, 'deleted_at'), undefined, "Nova's '' for an unset date is absent");
    assert.deepEqual(tv(e, 'memory_mb'), { type: 'int', value: 15360 });
    assert.deepEqual(tv(e, 'vcpus'), { type: 'int', value: 6 });
    assert.deepEqual(tv(e, 'ephemeral_gb'), { type: 'int', value: 0 });
    assert.deepEqual(tv(e, 'instance_flavor_id'), { type: 'int', value: 7 }, 'from payload.instance_type_id');
    assert.deepEqual(
      tv(e, 'host'),
      { type: 'text', value: 'host-1234.example.com' },
      'split, segment 1, max_split 1',
    );
    assert.deepEqual(
      tv(e, 'service'),
      { type: 'text', value: 'compute' },
      'split plugin overrides the default trait',
    );
    assert.deepEqual(tv(e, 'os_distro'), { type: 'text', value: 'com.ubuntu' });
    assert.deepEqual(tv(e, 'os_architecture'), { type: 'text', value: 'x64' });
    assert.deepEqual(tv(e, 'os_version'), { type: 'text', value: '12.04' });
    assert.deepEqual(tv(e, 'tenant_id'), { type: 'text', value: '5823423' });
    assert.deepEqual(tv(e, 'request_id'), {
      type: 'text',
      value: 'req-00000000-0000-4000-8000-000000000000',
    });
    assert.deepEqual(
      tv(e, 'bandwidth_in'),
      { type: 'text', value: '0' },
      'a number in a text trait is str()-ed',
    );
    assert.deepEqual(tv(e, 'state_description'), { type: 'text', value: '' }, 'empty text is kept');
    assert.equal(tv(e, 'message'), undefined);
  });

  test('compute.instance.create.end and delete.end', () => {
    const c = distillOne('compute.instance.create.start_23.json', 'compute.instance.create.end');
    assert.equal(tv(c, 'launched_at'), undefined, "this capture's create.end has launched_at '' (absent)");
    assert.equal(tv(c, 'audit_period_beginning'), undefined, 'only the exists definition has audit traits');
    assert.equal(tv(c, 'instance_id')?.type, 'text');
    const d = distillOne('compute.instance.delete.start_8.json', 'compute.instance.delete.end');
    assert.deepEqual(
      tv(d, 'deleted_at'),
      { type: 'datetime', value: START + 24 * US_PER_SECOND + 585401 },
      'DT_11 = +24.585401s',
    );
    assert.equal(tv(d, 'launched_at')?.type, 'datetime');
    assert.equal(tv(d, 'memory_mb')?.type, 'int');
  });

  test('scheduler.run_instance.* uses the merged instance traits', () => {
    const e = distillOne('compute.instance.create.start_23.json', 'scheduler.run_instance.scheduled');
    assert.equal(tv(e, 'host')?.value, 'host-1234.example.com');
    assert.equal(tv(e, 'service')?.value, 'compute');
  });
});
