/**
 * Regenerates test/fixtures/usage/reference-verdicts.jsonl: what the reference's UsageHandler
 * (stacktach-winchester, run under Python 3) produces for streams of a notigen workload, as ground
 * truth for test/unit/handlers/usage-reference.test.ts.
 *
 *   npx tsx scripts/usage-reference-fixture.ts
 *
 * Steps: `winchester generate` (seeded) → `winchester replay -c etc/winchester.yaml` (the StackTach
 * trigger: one stream per instance and audit day) → one case per fired or expired stream, plus
 * perturbed copies (an operation dropped, a field changed, an event added) chosen to reach every
 * error code and the warnings → the reference handler run over every case in a scratch directory
 * under /tmp (a Python 3 venv with six and requests; the reference file is read from the git mirror,
 * never copied into this repository) → one fixture line per case: the events and what the reference
 * emitted (or the exception it raised).
 *
 * Non-exists events keep only the traits the audit can read (ids, times, the compared fields), to keep
 * the fixture small; that cannot change a verdict. Environment: WINCHESTER_MIRROR (the bare
 * stacktach-winchester mirror), USAGE_VENV (default /tmp/usage-venv).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CORE_FIELDS, EXISTS } from '../src/handlers/usage.js';
import { NIL_UUID, uuidV5 } from '../src/handlers/uuid.js';
import { main } from '../src/main.js';
import { datetime, type Event, type TraitValue, text } from '../src/model/event.js';
import { eventFromLossless, eventToJson, parseJsonLossless } from '../src/model/event-json.js';
import { US_PER_HOUR, US_PER_SECOND } from '../src/timex/instant.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const mirror = process.env.WINCHESTER_MIRROR ?? '/work/.mirror/openstack-archive+stacktach-winchester/repo';
// The last commit of the reference before the repository was retired (master only deletes files).
const referenceCommit = '54f3ffc';
const venv = process.env.USAGE_VENV ?? '/tmp/usage-venv';
const scratch = '/tmp/usage-reference-fixture';
const output = join(repo, 'test/fixtures/usage/reference-verdicts.jsonl');

const DELETE_END = 'compute.instance.delete.end';
const INTERESTING = new Set([
  'compute.instance.rebuild.end',
  'compute.instance.finish_resize.end',
  'compute.instance.rescue.end',
]);
const KEPT = new Set(['instance_id', 'launched_at', 'deleted_at', ...CORE_FIELDS]);

interface Case {
  readonly name: string;
  readonly stream_id: string;
  readonly events: readonly Event[];
}

async function run(args: string[]): Promise<void> {
  const code = await main(args, { stdout: process.stderr });
  if (code !== 0) throw new Error(`winchester ${args.join(' ')} exited ${code}`);
}

function trim(e: Event): Event {
  if (e.event_type === EXISTS) return e;
  const traits: Record<string, TraitValue> = {};
  for (const [k, v] of Object.entries(e.traits)) if (KEPT.has(k)) traits[k] = v;
  return { ...e, traits };
}

function withTraits(e: Event, changes: Record<string, TraitValue | undefined>): Event {
  const traits: Record<string, TraitValue> = { ...e.traits };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete traits[k];
    else traits[k] = v;
  }
  return { ...e, traits };
}

const byTime = (a: Event, b: Event): number => a.timestamp - b.timestamp;
const newId = (seed: string): string => uuidV5(NIL_UUID, `usage-fixture:${seed}`);
const lastExists = (events: readonly Event[]): Event | undefined =>
  events.filter((e) => e.event_type === EXISTS).at(-1);
const dt = (e: Event | undefined, name: string): number | undefined => {
  const t = e?.traits[name];
  return t?.type === 'datetime' ? t.value : undefined;
};

/** Replaces the last .exists of a stream by `f(exists)`. */
function mapExists(events: readonly Event[], f: (e: Event) => Event): Event[] {
  const last = lastExists(events);
  return events.map((e) => (e === last ? f(e) : e));
}

type Perturbation = {
  readonly name: string;
  /** Which streams it applies to. */
  readonly when: (events: readonly Event[]) => boolean;
  readonly apply: (events: readonly Event[], tag: string) => Event[];
};

const isActive = (e: Event | undefined): boolean => e?.traits.state?.value === 'active';
const isDeleted = (e: Event | undefined): boolean => e?.traits.state?.value === 'deleted';
const launchedInPeriod = (e: Event | undefined): boolean => {
  const l = dt(e, 'launched_at');
  const b = dt(e, 'audit_period_beginning');
  const x = dt(e, 'audit_period_ending');
  return l !== undefined && b !== undefined && x !== undefined && b <= l && l <= x;
};
const hasDeleteEnd = (events: readonly Event[]): boolean => events.some((e) => e.event_type === DELETE_END);
const hasInteresting = (events: readonly Event[]): boolean =>
  events.some((e) => INTERESTING.has(e.event_type));
const endsWithExists = (events: readonly Event[]): boolean => events.at(-1)?.event_type === EXISTS;

const perturbations: Perturbation[] = [
  {
    name: 'U8 operations dropped on the launch day',
    when: (ev) => endsWithExists(ev) && isActive(lastExists(ev)) && launchedInPeriod(lastExists(ev)),
    apply: (ev) => ev.filter((e) => e.event_type === EXISTS),
  },
  {
    name: 'U1 launched_at removed from an active .exists',
    when: (ev) => endsWithExists(ev) && isActive(lastExists(ev)),
    apply: (ev) => mapExists(ev, (e) => withTraits(e, { launched_at: undefined })),
  },
  {
    name: 'U2 flavor changed on the .exists after a rebuild/resize/rescue',
    when: (ev) => endsWithExists(ev) && hasInteresting(ev),
    apply: (ev) =>
      mapExists(ev, (e) => {
        const f = e.traits.instance_flavor_id;
        return withTraits(e, {
          instance_flavor_id: f?.type === 'int' ? { type: 'int', value: f.value + 100 } : text('changed'),
        });
      }),
  },
  {
    name: 'U2 os_version changed on the last rebuild/resize/rescue',
    when: (ev) => endsWithExists(ev) && hasInteresting(ev),
    apply: (ev) => {
      const last = ev.filter((e) => INTERESTING.has(e.event_type)).at(-1);
      return ev.map((e) => (e === last ? withTraits(e, { os_version: text('99.99') }) : e));
    },
  },
  {
    name: 'U2 deleted_at of the .delete.end one second off',
    when: (ev) => endsWithExists(ev) && hasDeleteEnd(ev) && isDeleted(lastExists(ev)),
    apply: (ev) =>
      ev.map((e) => {
        const d = dt(e, 'deleted_at');
        return e.event_type === DELETE_END && d !== undefined
          ? withTraits(e, { deleted_at: datetime(d + US_PER_SECOND) })
          : e;
      }),
  },
  {
    name: "U3 state not 'deleted' with deleted_at set",
    when: (ev) => endsWithExists(ev) && isDeleted(lastExists(ev)),
    apply: (ev) => mapExists(ev, (e) => withTraits(e, { state: text('stopped') })),
  },
  {
    name: 'U4 .delete.end dropped, deleted_at before launched_at',
    when: (ev) =>
      endsWithExists(ev) && isDeleted(lastExists(ev)) && dt(lastExists(ev), 'launched_at') !== undefined,
    apply: (ev) =>
      mapExists(
        ev.filter((e) => e.event_type !== DELETE_END),
        (e) => withTraits(e, { deleted_at: datetime(dt(e, 'launched_at')! - US_PER_HOUR) }),
      ),
  },
  {
    name: 'U5 .delete.end dropped',
    when: (ev) => endsWithExists(ev) && hasDeleteEnd(ev) && isDeleted(lastExists(ev)),
    apply: (ev) => ev.filter((e) => e.event_type !== DELETE_END),
  },
  {
    name: 'U6 deleted_at removed from the .exists',
    when: (ev) => endsWithExists(ev) && hasDeleteEnd(ev),
    apply: (ev) => mapExists(ev, (e) => withTraits(e, { deleted_at: undefined })),
  },
  {
    name: 'U7 .delete.end delivered twice under two ids',
    when: (ev) => endsWithExists(ev) && hasDeleteEnd(ev) && isDeleted(lastExists(ev)),
    apply: (ev, tag) => {
      const d = ev.find((e) => e.event_type === DELETE_END)!;
      return [...ev, { ...d, message_id: newId(`${tag}:dup`), timestamp: d.timestamp + 1 }].sort(byTime);
    },
  },
  {
    name: 'U0 an operation after the .exists',
    when: (ev) => endsWithExists(ev) && ev.some((e) => e.event_type !== EXISTS),
    apply: (ev, tag) => {
      const op = ev.filter((e) => e.event_type !== EXISTS).at(-1)!;
      return [
        ...ev,
        { ...op, message_id: newId(`${tag}:late`), timestamp: ev.at(-1)!.timestamp + US_PER_SECOND },
      ];
    },
  },
  {
    name: 'warnings: a non-EOD .exists (one-hour audit period) with no rebuild/resize/rescue',
    when: (ev) =>
      endsWithExists(ev) && !hasInteresting(ev) && dt(lastExists(ev), 'audit_period_beginning') !== undefined,
    apply: (ev) =>
      mapExists(ev, (e) =>
        withTraits(e, { audit_period_ending: datetime(dt(e, 'audit_period_beginning')! + US_PER_HOUR) }),
      ),
  },
  {
    name: 'warnings repeated: a mid-day non-EOD .exists, then the end-of-day one',
    when: (ev) => endsWithExists(ev) && !hasInteresting(ev) && ev.length > 3,
    apply: (ev, tag) => {
      const eod = lastExists(ev)!;
      const mid = ev[Math.floor((ev.length - 1) / 2)]!;
      const apb = dt(eod, 'audit_period_beginning')!;
      const extra = withTraits(
        { ...eod, message_id: newId(`${tag}:mid`), timestamp: mid.timestamp + 1 },
        { audit_period_ending: datetime(apb + 6 * US_PER_HOUR) },
      );
      return [...ev, extra].sort(byTime);
    },
  },
  {
    name: 'warnings and U5: a non-EOD deleted .exists, its .delete.end and rebuild/resize/rescue dropped',
    when: (ev) => endsWithExists(ev) && hasDeleteEnd(ev) && isDeleted(lastExists(ev)),
    apply: (ev) =>
      mapExists(
        ev.filter((e) => e.event_type !== DELETE_END && !INTERESTING.has(e.event_type)),
        (e) => withTraits(e, { audit_period_ending: datetime(dt(e, 'deleted_at')! + US_PER_HOUR) }),
      ),
  },
  {
    name: 'raises: deleted .exists without launched_at, .delete.end and rebuild/resize/rescue',
    when: (ev) => endsWithExists(ev) && hasDeleteEnd(ev) && isDeleted(lastExists(ev)),
    apply: (ev) =>
      mapExists(
        ev.filter((e) => e.event_type !== DELETE_END && !INTERESTING.has(e.event_type)),
        (e) => withTraits(e, { launched_at: undefined }),
      ),
  },
  {
    name: 'raises: os_distro missing from the last rebuild/resize/rescue only',
    when: (ev) => endsWithExists(ev) && hasInteresting(ev) && lastExists(ev)?.traits.os_distro !== undefined,
    apply: (ev) => {
      const last = ev.filter((e) => INTERESTING.has(e.event_type)).at(-1);
      return ev.map((e) => (e === last ? withTraits(e, { os_distro: undefined }) : e));
    },
  },
];

async function buildCases(): Promise<Case[]> {
  mkdirSync(scratch, { recursive: true });
  const notifications = join(scratch, 'notifications.jsonl');
  const streams = join(scratch, 'streams.jsonl');
  await run([
    'generate',
    '--seed',
    '11',
    '--instances',
    '8',
    '--days',
    '3',
    '--ops-per-day',
    '3',
    '--delete-rate',
    '0.35',
    '-o',
    notifications,
  ]);
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const code = await main(
    ['replay', '-q', '-c', join(repo, 'etc/winchester.yaml'), '--until', '2030-01-01', notifications],
    { stdout: sink },
  );
  if (code !== 0) throw new Error(`winchester replay exited ${code}`);
  writeFileSync(streams, chunks.join(''));

  const base: { kind: string; events: Event[] }[] = [];
  for (const line of chunks.join('').split('\n')) {
    if (line.trim() === '') continue;
    const s = parseJsonLossless(line) as { kind: string; events: Parameters<typeof eventFromLossless>[0][] };
    base.push({ kind: s.kind, events: s.events.map((e) => trim(eventFromLossless(e))) });
  }
  const cases: Case[] = [];
  let next = 1;
  const add = (name: string, events: readonly Event[]): void => {
    cases.push({ name, stream_id: String(next++), events });
  };
  for (const [i, s] of base.entries()) add(`${s.kind} stream ${i + 1}`, s.events);
  add('empty stream', []);
  for (const p of perturbations) {
    // Up to two streams per perturbation, the smallest first (a small fixture), distinct verdicts.
    const fits = base
      .map((s, i) => ({ i, events: s.events }))
      .filter((s) => p.when(s.events))
      .sort((a, b) => a.events.length - b.events.length)
      .slice(0, 2);
    if (fits.length === 0) throw new Error(`no stream of the workload fits '${p.name}'`);
    for (const s of fits) add(`${p.name} (stream ${s.i + 1})`, p.apply(s.events, `${p.name}:${s.i}`));
  }
  return cases;
}

function runReference(cases: readonly Case[]): string[] {
  const dir = join(scratch, 'reference');
  mkdirSync(dir, { recursive: true });
  const source = execFileSync(
    'git',
    ['--git-dir', mirror, 'show', `${referenceCommit}:winchester/pipeline_handler.py`],
    { encoding: 'utf8' },
  );
  writeFileSync(join(dir, 'pipeline_handler.py'), source);
  copyFileSync(join(repo, 'scripts/usage-reference-harness.py'), join(dir, 'harness.py'));
  const input = cases
    .map(
      (c) =>
        `{"name":${JSON.stringify(c.name)},"stream_id":"${c.stream_id}","events":[${c.events.map(eventToJson).join(',')}]}`,
    )
    .join('\n');
  const out = execFileSync(join(venv, 'bin/python'), ['harness.py'], { cwd: dir, input, maxBuffer: 1 << 28 });
  return out.toString('utf8').trim().split('\n');
}

const cases = await buildCases();
const results = runReference(cases);
if (results.length !== cases.length)
  throw new Error(`reference answered ${results.length} of ${cases.length} cases`);
const lines = cases.map((c, i) => {
  const r = JSON.parse(results[i]!) as { name: string };
  if (r.name !== c.name) throw new Error(`case ${i}: reference answered for '${r.name}'`);
  const { name: _, ...expected } = r;
  return `{"name":${JSON.stringify(c.name)},"stream_id":"${c.stream_id}","events":[${c.events.map(eventToJson).join(',')}],"reference":${JSON.stringify(expected)}}`;
});
mkdirSync(dirname(output), { recursive: true });
writeFileSync(output, `${lines.join('\n')}\n`);
process.stderr.write(`${cases.length} cases written to ${output}\n`);
