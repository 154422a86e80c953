import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { generateNotifications, type Notification } from '../../../src/notigen/index.js';
import { parseDatetime } from '../../../src/timex/instant.js';
import { runCli } from '../../helpers/cli.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const CONFIG = join(ROOT, 'etc/winchester.yaml');
const DAY = 86_400_000_000;

interface Line {
  trigger: string;
  kind: 'fire' | 'expire';
  pipeline: string | null;
  distinguished_by: Record<string, unknown>;
  first_event: string;
  last_event: string;
  events: Array<Record<string, unknown> & { message_id: string; event_type: string; timestamp: string }>;
}

const payload = (n: Notification) => n.payload as Record<string, unknown>;
const toLines = (notifications: Iterable<Notification>) =>
  `${[...notifications].map((n) => JSON.stringify(n)).join('\n')}\n`;
/** Nova writes `2015-02-01 00:00:00.000000`; the replay prints `2015-02-01T00:00:00.000000Z`. */
const iso = (novaDate: string) => new Date(parseDatetime(novaDate) / 1000).toISOString().replace('Z', '000Z');

async function replay(args: string[], stdin: string) {
  const r = await runCli(['replay', '-c', CONFIG, ...args], { stdin });
  return { ...r, lines: r.stdoutLines().map((l) => JSON.parse(l) as Line) };
}

describe('winchester replay over the StackTach usage audit (etc/, notigen workload)', () => {
  const gen = generateNotifications({
    seed: 11,
    instances: 6,
    days: 3,
    operationsPerDay: 3,
    deleteRate: 0.1,
  });
  const notifications = [...gen];
  const input = toLines(notifications);
  // Operations such as resize also emit exists with a partial audit period; only the end-of-day
  // exists (audit period exactly one day) meets the fire criterion.
  const isDaily = (beginning: unknown, ending: unknown) =>
    parseDatetime(ending as string) - parseDatetime(beginning as string) === DAY;
  const exists = notifications.filter(
    (n) =>
      n.event_type === 'compute.instance.exists' &&
      isDaily(payload(n).audit_period_beginning, payload(n).audit_period_ending),
  );

  const lastTs = Math.max(...notifications.map((n) => parseDatetime(n.timestamp as string)));
  const isoOf = (t: number) =>
    new Date(Math.floor(t / 1000)).toISOString().replace('Z', `${String(t % 1000).padStart(3, '0')}Z`);
  const justAfterLast = isoOf(lastTs + 1);

  test('one fire per instance and day, on the exists whose audit period is that day', async () => {
    assert.ok(exists.length >= 6, `the workload has exists notifications (${exists.length})`);
    const r = await replay(['--until', justAfterLast], input);
    assert.equal(r.code, 0, r.stderr);
    const fires = r.lines.filter((l) => l.kind === 'fire');
    assert.equal(fires.length, exists.length, 'one fired stream per end-of-day exists');
    const expected = exists
      .map((n) => {
        const p = payload(n);
        return JSON.stringify([p.instance_id, iso(p.audit_period_beginning as string), n.message_id]);
      })
      .sort();
    const actual = fires
      .map((l) => {
        const day = l.distinguished_by.timestamp as { begin: string; end: string };
        assert.equal(parseDatetime(day.end) - parseDatetime(day.begin), DAY);
        const ex = l.events.filter(
          (e) =>
            e.event_type === 'compute.instance.exists' &&
            isDaily(e.audit_period_beginning, e.audit_period_ending),
        );
        assert.equal(ex.length, 1, 'each fired stream holds its one end-of-day exists');
        return JSON.stringify([l.distinguished_by.instance_id, day.begin, ex[0]?.message_id]);
      })
      .sort();
    assert.deepEqual(actual, expected);
    for (const l of fires) {
      assert.equal(l.trigger, 'test_trigger');
      assert.equal(l.pipeline, 'test_fire_pipeline');
      const stamps = l.events.map((e) => parseDatetime(e.timestamp));
      assert.deepEqual(
        stamps,
        [...stamps].sort((a, b) => a - b),
        'events sorted by timestamp',
      );
      assert.equal(l.first_event, l.events[0]?.timestamp);
      assert.equal(l.last_event, l.events[l.events.length - 1]?.timestamp);
      const day = l.distinguished_by.timestamp as { begin: string; end: string };
      for (const e of l.events) {
        assert.equal(e.instance_id, l.distinguished_by.instance_id, 'only that instance');
        if (e.event_type === 'compute.instance.exists') continue;
        const t = parseDatetime(e.timestamp);
        assert.ok(
          t >= parseDatetime(day.begin) && t < parseDatetime(day.end),
          'lifecycle events of that day',
        );
      }
    }
  });

  test('by default the clock stops at the last event: the stream it scheduled does not fire (as the reference)', async () => {
    const r = await replay([], input);
    const fired = new Set(r.lines.filter((l) => l.kind === 'fire').map((l) => l.events.at(-1)?.message_id));
    const last = exists.filter((n) => parseDatetime(n.timestamp as string) === lastTs);
    assert.equal(last.length, 1, 'the workload ends with an end-of-day exists');
    for (const n of exists) {
      assert.equal(fired.has(n.message_id as string), !last.includes(n), `exists ${n.message_id}`);
    }
  });

  test('every lifecycle event of an audited instance-day is in that day’s fired stream', async () => {
    const r = await replay(['--until', justAfterLast], input);
    const byStream = new Map<string, Set<string>>();
    for (const l of r.lines.filter((x) => x.kind === 'fire')) {
      const day = (l.distinguished_by.timestamp as { begin: string }).begin;
      byStream.set(`${l.distinguished_by.instance_id} ${day}`, new Set(l.events.map((e) => e.message_id)));
    }
    let checked = 0;
    for (const n of notifications) {
      const type = n.event_type as string;
      if (!type.startsWith('compute.instance.') || type.startsWith('compute.instance.exists')) continue;
      const instance = payload(n).instance_id;
      const ts = parseDatetime(n.timestamp as string);
      const dayBegin = new Date(Math.floor(ts / DAY) * (DAY / 1000)).toISOString().replace('Z', '000Z');
      const ids = byStream.get(`${instance} ${dayBegin}`);
      if (ids === undefined) continue; // that day had no exists (e.g. the instance was deleted)
      assert.ok(ids.has(n.message_id as string), `${type} ${n.message_id} is in its day's stream`);
      checked++;
    }
    assert.ok(checked > 20, `checked ${checked} lifecycle events`);
  });

  test('redelivered notifications change nothing; --events on distilled input gives the same output', async () => {
    const plain = await replay([], input);
    const dupInput = toLines(
      generateNotifications({
        seed: 11,
        instances: 6,
        days: 3,
        operationsPerDay: 3,
        deleteRate: 0.1,
        duplicates: 0.2,
      }),
    );
    assert.notEqual(dupInput, input);
    const dup = await replay([], dupInput);
    assert.deepEqual(dup.lines, plain.lines);

    const distilled = await runCli(['distill', '--definitions', join(ROOT, 'etc/event_definitions.yaml')], {
      stdin: input,
    });
    assert.equal(distilled.code, 0, distilled.stderr);
    const fromEvents = await replay(['--events'], distilled.stdout);
    assert.equal(fromEvents.code, 0, fromEvents.stderr);
    assert.deepEqual(fromEvents.lines, plain.lines);
  });

  test('--until far ahead expires the streams still open, through the expire pipeline', async () => {
    // notigen audits every day it generates, so an instance update an hour after the last
    // notification opens a day whose end-of-day exists never comes: that stream must expire.
    const update = notifications.find((n) => n.event_type === 'compute.instance.update');
    assert.ok(update, 'the workload has an instance update to copy');
    const lateTs = lastTs + 3_600_000_000;
    const late = {
      ...update,
      message_id: 'replay-test-late-update',
      timestamp: isoOf(lateTs).replace('T', ' ').replace('Z', ''),
    };
    const openInput = input + toLines([late]);
    const r = await replay(['--until', isoOf(lateTs + 3 * DAY)], openInput);
    const plain = await replay(['--until', isoOf(lateTs + 1)], openInput);
    assert.deepEqual(
      r.lines.filter((l) => l.kind === 'fire'),
      plain.lines.filter((l) => l.kind === 'fire'),
    );
    const expired = r.lines.filter((l) => l.kind === 'expire');
    assert.ok(expired.length > 0, 'the last day’s post-midnight events and unaudited days expire');
    for (const l of expired) {
      assert.equal(l.pipeline, 'test_expire_pipeline');
      assert.ok(
        l.events.every(
          (e) =>
            e.event_type !== 'compute.instance.exists' ||
            !isDaily(e.audit_period_beginning, e.audit_period_ending),
        ),
        'a stream holding its end-of-day exists fires instead',
      );
    }
    assert.match(r.stderr, /0 still open/);
  });
});

describe('winchester replay: contract details', () => {
  const dir = mkdtempSync(join(tmpdir(), 'replay-'));
  writeFileSync(
    join(dir, 'triggers.yaml'),
    [
      '- name: by_host',
      '  distinguished_by: [host, size]',
      '  expiration: "$last + 1h"',
      '  fire_delay: 60',
      '  fire_pipeline: fire_p',
      '  match_criteria: [{event_type: "a.*"}]',
      '  fire_criteria: [{event_type: a.end, number: 2}]',
      '- name: no_pipelines_for_expiry',
      '  distinguished_by: [host]',
      '  expiration: "$first + 10m"',
      '  fire_pipeline: fire_p',
      '  match_criteria: [{event_type: "b.*"}]',
      '  fire_criteria: [{event_type: never}]',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'pipelines.yaml'), 'fire_p:\n  - logger\n');
  writeFileSync(
    join(dir, 'winchester.yaml'),
    'trigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\n',
  );
  const config = join(dir, 'winchester.yaml');
  const ev = (id: string, type: string, ts: string, extra = '') =>
    `{"message_id":"${id}","event_type":"${type}","timestamp":"${ts}","host":"h1","size":2.0${extra}}`;
  const input = [
    ev('1', 'a.start', '2015-01-01T00:00:00.000000Z'),
    ev('2', 'a.end', '2015-01-01T00:01:00.000000Z'),
    ev('3', 'a.end', '2015-01-01T00:02:00.000000Z'), // criteria met: fire at 00:03:00
    ev('4', 'b.x', '2015-01-01T00:02:30.000000Z'), // expires at 00:12:30
    ev('5', 'a.more', '2015-01-01T00:03:00.000000Z', ',"n":7'), // joins: the fire is not yet due
    ev('6', 'z.other', '2015-01-01T00:03:00.000001Z'), // no trigger: the clock passes the fire time
    '',
  ].join('\n');
  const run = (args: string[], stdin = input) =>
    runCli(['replay', '-c', config, '--events', ...args], { stdin });

  test('fires at now + fire_delay with events that joined meanwhile; --until must pass a due time', async () => {
    const r = await run([]);
    assert.equal(r.code, 0, r.stderr);
    const [line] = r.stdoutLines();
    assert.equal(
      line,
      '{"trigger":"by_host","kind":"fire","pipeline":"fire_p","distinguished_by":{"host":"h1","size":2.0},' +
        '"first_event":"2015-01-01T00:00:00.000000Z","last_event":"2015-01-01T00:03:00.000000Z","events":[' +
        '{"message_id":"1","event_type":"a.start","timestamp":"2015-01-01T00:00:00.000000Z","host":"h1","size":2.0},' +
        '{"message_id":"2","event_type":"a.end","timestamp":"2015-01-01T00:01:00.000000Z","host":"h1","size":2.0},' +
        '{"message_id":"3","event_type":"a.end","timestamp":"2015-01-01T00:02:00.000000Z","host":"h1","size":2.0},' +
        '{"message_id":"5","event_type":"a.more","timestamp":"2015-01-01T00:03:00.000000Z","host":"h1","size":2.0,"n":7}]}',
    );
    assert.equal(r.stdoutLines().length, 1);
    assert.match(
      r.stderr,
      /6 events, 0 malformed, 1 events joined no trigger, 1 streams fired, 0 expired, 1 still open/,
    );

    // Stream 4 expires at 00:12:30: it closes only once the clock is strictly past that.
    const at = await run(['--until', '2015-01-01T00:12:30Z']);
    assert.equal(at.stdoutLines().length, 1);
    const after = await run(['--until', '2015-01-01T00:12:30.000001Z']);
    const expired = JSON.parse(after.stdoutLines()[1] ?? 'null');
    assert.deepEqual(
      [expired.trigger, expired.kind, expired.pipeline, expired.distinguished_by],
      ['no_pipelines_for_expiry', 'expire', null, { host: 'h1' }],
    );
  });

  test('malformed lines are reported with their line number and skipped', async () => {
    const r = await run([], `not json\n${input}{"message_id":"x"}\n`);
    assert.equal(r.code, 0);
    assert.equal(r.stdoutLines().length, 1);
    assert.match(r.stderr, /line 1: not an event/);
    assert.match(r.stderr, /line 8: not an event: .*event_type/);
    assert.match(r.stderr, /2 malformed/);
  });

  test('usage and input errors', async () => {
    const until = await run(['--until', 'yesterday']);
    assert.equal(until.code, 2);
    assert.match(until.stderr, /--until: not a datetime/);
    const missing = await run([join(dir, 'nope.jsonl')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read input .*no such file/);
    const noDistiller = await runCli(['replay', '-c', config], { stdin: input });
    assert.equal(noDistiller.code, 2);
    assert.match(noDistiller.stderr, /no distiller_config/);
    assert.equal(until.stderr.includes('    at '), false, 'no stack trace');
  });

  test('reads the events from a file argument too, and an empty input prints nothing', async () => {
    writeFileSync(join(dir, 'events.jsonl'), input);
    const r = await run([join(dir, 'events.jsonl')]);
    assert.equal(r.stdoutLines().length, 1);
    const empty = await run([], '');
    assert.equal(empty.code, 0);
    assert.equal(empty.stdout, '');
  });
});
