import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCli } from '../../helpers/cli.js';

interface Run {
  ok: boolean;
  emitted?: Array<Record<string, unknown>>;
  commit_errors?: Array<{ handler: string; error: string }>;
  handler?: string;
  error?: string;
  rollback_errors?: Array<{ handler: string; error: string }>;
}

interface Line {
  trigger: string;
  kind: 'fire' | 'expire';
  pipeline: string | null;
  distinguished_by: Record<string, unknown>;
  events: Array<Record<string, unknown> & { message_id: string; event_type: string }>;
  run?: Run | null;
}

/** A configuration directory: `files` are written relative to it. */
function setup(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'replay-pipelines-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return join(dir, 'winchester.yaml');
}

const TRIGGERS = [
  // An order fires on its a.end; its pipeline audits it and emits an audit.done event...
  '- name: orders',
  '  distinguished_by: [order_id]',
  '  expiration: "$last + 1h"',
  '  fire_pipeline: audit',
  '  expire_pipeline: expire_p',
  '  match_criteria: [{event_type: "a.*"}]',
  '  fire_criteria: [{event_type: a.end}]',
  // ...which only this second trigger collects: it fires on it and runs `report`.
  '- name: audits',
  '  distinguished_by: [order_id]',
  '  expiration: "$last + 1h"',
  '  fire_pipeline: report',
  '  match_criteria: [{event_type: audit.done}]',
  '  fire_criteria: [{event_type: audit.done}]',
  // No pipeline when it expires.
  '- name: idle',
  '  distinguished_by: [order_id]',
  '  expiration: "$last + 10m"',
  '  fire_pipeline: report',
  '  match_criteria: [{event_type: "b.*"}]',
  '  fire_criteria: [{event_type: never}]',
  '',
].join('\n');

// A user handler: emits one audit.done per batch (id derived from the stream), or fails for order 'bad'.
const AUDITOR = `export class Auditor {
  constructor(params, context) { this.params = params; this.context = context; }
  handleEvents(events, env) {
    const order = events[0].traits.order_id.value;
    if (order === 'bad') throw new Error('order bad cannot be audited');
    const last = events[events.length - 1];
    this.emitted = 'audit-' + env.stream_id;
    return [...events, {
      message_id: this.emitted,
      event_type: 'audit.done',
      timestamp: last.timestamp,
      traits: { order_id: { type: 'text', value: order }, verdict: { type: 'text', value: this.params.verdict } },
    }];
  }
  commit() { this.context.log('info', 'audited', { handler: 'auditor', message_id: this.emitted }); }
  rollback() { this.context.log('info', 'audit rolled back', { handler: 'auditor' }); }
}
`;

const PIPELINES = [
  'audit:',
  '  - logger',
  '  - name: auditor',
  '    params: {verdict: pass}',
  'report:',
  '  - name: logger',
  '    params: {level: warn}',
  'expire_p:',
  '  - logger',
  '',
].join('\n');

const WINCHESTER = [
  'trigger_definitions: triggers.yaml',
  'pipeline_config: pipelines.yaml',
  'pipeline_handlers:',
  '  auditor: ./handlers/auditor.mjs#Auditor',
  '',
].join('\n');

const ev = (id: string, type: string, ts: string, order = 'o1') =>
  `{"message_id":"${id}","event_type":"${type}","timestamp":"2015-01-01T${ts}.000000Z","order_id":"${order}"}`;

const INPUT = [
  ev('1', 'a.start', '00:00:00'),
  ev('2', 'a.end', '00:01:00'), // orders/o1 will fire once the clock passes 00:01:00
  ev('3', 'z.tick', '00:02:00'), // the clock passes it: orders fires, audit.done fed back
  '',
].join('\n');

function parseStderr(stderr: string) {
  const logs: Array<Record<string, unknown>> = [];
  const other: string[] = [];
  for (const line of stderr.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('{')) logs.push(JSON.parse(line) as Record<string, unknown>);
    else other.push(line);
  }
  return { logs, other };
}

async function replay(config: string, args: string[], stdin = INPUT) {
  const r = await runCli(['replay', '-c', config, '--events', ...args], { stdin });
  return { ...r, lines: r.stdoutLines().map((l) => JSON.parse(l) as Line), ...parseStderr(r.stderr) };
}

describe('winchester replay --run-pipelines', () => {
  const config = setup({
    'winchester.yaml': WINCHESTER,
    'triggers.yaml': TRIGGERS,
    'pipelines.yaml': PIPELINES,
    'handlers/auditor.mjs': AUDITOR,
  });

  test('runs the pipeline of a fired stream; its new event is fed back and fires a second trigger', async () => {
    const r = await replay(config, ['--run-pipelines', '--until', '2015-01-01T00:02:00.000001Z']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.lines.map((l) => [l.trigger, l.kind, l.pipeline, l.run?.ok]),
      [
        ['orders', 'fire', 'audit', true],
        ['audits', 'fire', 'report', true],
      ],
    );
    const [orders, audits] = r.lines as [Line, Line];
    assert.deepEqual(orders.run, {
      ok: true,
      emitted: [
        {
          message_id: 'audit-1',
          event_type: 'audit.done',
          timestamp: '2015-01-01T00:01:00.000000Z',
          order_id: 'o1',
          verdict: 'pass',
        },
      ],
      commit_errors: [],
    });
    // The second stream holds exactly the fed-back event, as distilled (not re-distilled) traits.
    assert.deepEqual(audits.events, orders.run?.emitted);
    assert.deepEqual(audits.distinguished_by, { order_id: 'o1' });
    assert.deepEqual(audits.run, { ok: true, emitted: [], commit_errors: [] });

    // Handler logs: JSON lines on stderr, the logger's with exactly its fields, at its level.
    const strip = ({ time: _t, ...rest }: Record<string, unknown>) => rest;
    assert.deepEqual(r.logs.map(strip), [
      {
        level: 'info',
        msg: 'pipeline batch',
        handler: 'logger',
        trigger: 'orders',
        kind: 'fire',
        pipeline: 'audit',
        stream_id: '1',
        count: 2,
        message_ids: ['1', '2'],
      },
      { level: 'info', msg: 'audited', handler: 'auditor', message_id: 'audit-1' },
      {
        level: 'warn',
        msg: 'pipeline batch',
        handler: 'logger',
        trigger: 'audits',
        kind: 'fire',
        pipeline: 'report',
        stream_id: '2',
        count: 1,
        message_ids: ['audit-1'],
      },
    ]);
    assert.deepEqual(r.other, [
      'winchester: replay: 3 events, 0 malformed, 1 events joined no trigger, 2 streams fired, 0 expired, ' +
        '0 still open at 2015-01-01T00:02:00.000001Z, 2 pipelines ok, 0 failed, ' +
        '1 new events fed back (0 joined no trigger)',
    ]);
    assert.equal(r.stdout.includes('pipeline batch'), false, 'logs never go to stdout');
  });

  test('without --run-pipelines the output is what it always was: no run field, nothing fed back', async () => {
    const withRun = await replay(config, ['--run-pipelines']);
    const plain = await replay(config, []);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdoutLines().length, 1);
    assert.equal(plain.stdout.includes('"run"'), false);
    assert.deepEqual(plain.logs, []);
    // The same line, minus the run field at its end.
    const first = withRun.stdoutLines()[0] ?? '';
    assert.equal(`${first.slice(0, first.indexOf(',"run":'))}}`, plain.stdoutLines()[0]);
    assert.match(plain.stderr, /1 streams fired, 0 expired, 0 still open at [^,]*\n$/);
  });

  test('a failing pipeline is reported on its line, rolled back, and the replay goes on', async () => {
    const input = [
      ev('1', 'a.start', '00:00:00', 'bad'),
      ev('2', 'a.end', '00:01:00', 'bad'),
      ev('3', 'a.end', '00:01:30', 'o2'),
      ev('4', 'z.tick', '00:02:00'),
      '',
    ].join('\n');
    const r = await replay(config, ['--run-pipelines', '--until', '2015-01-01T00:03:00Z'], input);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.lines.map((l) => [l.trigger, l.distinguished_by.order_id, l.run?.ok]),
      [
        ['orders', 'bad', false],
        ['orders', 'o2', true],
        ['audits', 'o2', true],
      ],
    );
    assert.deepEqual(r.lines[0]?.run, {
      ok: false,
      handler: 'auditor',
      error: 'order bad cannot be audited',
      rollback_errors: [],
    });
    assert.ok(r.logs.some((l) => l.msg === 'audit rolled back'));
    assert.ok(
      r.logs.some((l) => l.msg === 'pipeline failed' && l.handler === 'auditor' && l.pipeline === 'audit'),
    );
    // The failed batch's logger never committed: only o2's and the audit's batches were logged.
    assert.deepEqual(
      r.logs.filter((l) => l.msg === 'pipeline batch').map((l) => l.trigger),
      ['orders', 'audits'],
    );
    assert.match(r.stderr, /2 pipelines ok, 1 failed, 1 new events fed back \(0 joined no trigger\)\n$/);
  });

  test('an expired stream runs its expire_pipeline; an outcome without a pipeline prints run: null', async () => {
    const input = [ev('1', 'a.start', '00:00:00'), ev('2', 'b.x', '00:00:00', 'o9'), ''].join('\n');
    const r = await replay(config, ['--run-pipelines', '--until', '2015-01-01T02:00:00Z'], input);
    assert.equal(r.code, 0, r.stderr);
    const byTrigger = Object.fromEntries(r.lines.map((l) => [l.trigger, l]));
    assert.equal(byTrigger.idle?.kind, 'expire');
    assert.equal(byTrigger.idle?.pipeline, null);
    assert.equal(byTrigger.idle?.run, null);
    assert.equal(byTrigger.orders?.kind, 'expire');
    assert.deepEqual(byTrigger.orders?.run, { ok: true, emitted: [], commit_errors: [] });
    assert.deepEqual(
      r.logs.filter((l) => l.handler === 'logger').map((l) => [l.trigger, l.kind, l.pipeline]),
      [['orders', 'expire', 'expire_p']],
    );
  });

  test('no Kafka offline: notabene reports its commit error on the line and the replay goes on', async () => {
    const cfg = setup({
      'winchester.yaml': WINCHESTER,
      'triggers.yaml': TRIGGERS,
      'pipelines.yaml': PIPELINES.replace(
        'audit:\n  - logger\n',
        'audit:\n  - logger\n  - name: notabene\n    params: {topic: verdicts, event_types: "a.*"}\n',
      ),
      'handlers/auditor.mjs': AUDITOR,
    });
    const r = await replay(cfg, ['--run-pipelines', '--until', '2015-01-01T00:02:00.000001Z']);
    assert.equal(r.code, 0, r.stderr);
    const run = r.lines[0]?.run;
    assert.equal(run?.ok, true);
    assert.equal(run?.commit_errors?.length, 1);
    assert.equal(run?.commit_errors?.[0]?.handler, 'notabene');
    assert.match(run?.commit_errors?.[0]?.error ?? '', /no Kafka publisher/);
    // The other handlers still committed, and the audit event still fed back.
    assert.ok(r.logs.some((l) => l.msg === 'audited'));
    assert.equal(r.lines[1]?.trigger, 'audits');
  });

  test('HTTP is refused offline: a webhook fails its batch saying why', async () => {
    const cfg = setup({
      'winchester.yaml': WINCHESTER,
      'triggers.yaml': TRIGGERS,
      'pipelines.yaml': PIPELINES.replace(
        'audit:\n  - logger\n',
        'audit:\n  - logger\n  - name: webhook\n    params: {url: "http://127.0.0.1:9/hook"}\n',
      ),
      'handlers/auditor.mjs': AUDITOR,
    });
    const r = await replay(cfg, ['--run-pipelines', '--until', '2015-01-01T00:02:00.000001Z']);
    assert.equal(r.code, 0, r.stderr);
    const run = r.lines[0]?.run;
    const errors = [run?.error, ...(run?.commit_errors ?? []).map((e) => e.error)].join(' ');
    assert.match(errors, /offline: HTTP requests are refused/);
  });

  test('a pipeline feeding its own trigger stops being fed back after 100 links', async () => {
    // Each batch opens the next stream (a.end of a new order) and moves the clock past its fire time.
    const loop = `export class Again {
  handleEvents(events, env) {
    const t = events[events.length - 1].timestamp + 3600000000; // an hour on: past the clock
    return [...events,
      { message_id: 'again-' + env.stream_id, event_type: 'a.end', timestamp: t,
        traits: { order_id: { type: 'text', value: 'loop-' + env.stream_id } } },
      { message_id: 'tick-' + env.stream_id, event_type: 'z.tick', timestamp: t + 1, traits: {} }];
  }
  commit() {}
  rollback() {}
}
`;
    const cfg = setup({
      'winchester.yaml': WINCHESTER.replace('auditor.mjs#Auditor', 'again.mjs#Again'),
      'triggers.yaml': TRIGGERS,
      'pipelines.yaml': PIPELINES,
      'handlers/again.mjs': loop,
    });
    const r = await replay(cfg, ['--run-pipelines', '--until', '2015-01-01T00:02:00.000001Z']);
    assert.equal(r.code, 0, r.stderr);
    // The input's stream, then one stream per link of the chain; the last one's events are dropped.
    assert.equal(r.lines.length, 101);
    assert.ok(r.lines.every((l) => l.trigger === 'orders' && l.run?.ok === true));
    assert.equal(r.lines[100]?.distinguished_by.order_id, 'loop-100');
    assert.match(r.stderr, /chain of 100 pipeline batches.*not fed back/);
    assert.match(r.stderr, /200 new events fed back \(100 joined no trigger, 2 more not fed back\)/);
  });

  test('bad handlers stop the replay before any input is read, exit 2, no stack trace', async () => {
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      [
        'missing export',
        { 'handlers/auditor.mjs': 'export class Other {}\n' },
        /pipeline_handlers\.auditor: module .*auditor\.mjs has no export 'Auditor' \(its classes: Other\)/,
      ],
      [
        'export not a class',
        { 'handlers/auditor.mjs': 'export const Auditor = 42;\n' },
        /export 'Auditor' of module .*auditor\.mjs is a number \(42\), not a class/,
      ],
      [
        'module that fails to import',
        { 'handlers/auditor.mjs': 'export class Auditor {\n' },
        /pipeline_handlers\.auditor: cannot import module .*auditor\.mjs: /,
      ],
      [
        'refused params',
        { 'pipelines.yaml': PIPELINES.replace('{level: warn}', '{level: loud}') },
        /pipelines\.yaml: pipeline 'report', handler 1 'logger': logger: param 'level' must be one of/,
      ],
    ];
    for (const [what, files, pattern] of cases) {
      const cfg = setup({
        'winchester.yaml': WINCHESTER,
        'triggers.yaml': TRIGGERS,
        'pipelines.yaml': PIPELINES,
        'handlers/auditor.mjs': AUDITOR,
        ...files,
      });
      const r = await runCli(['replay', '-c', cfg, '--events', '--run-pipelines'], { stdin: INPUT });
      assert.equal(r.code, 2, `${what}: ${r.stderr}`);
      assert.match(r.stderr, pattern, what);
      assert.equal(r.stdout, '', what);
      assert.equal(r.stderr.includes('    at '), false, `${what}: no stack trace`);
    }
  });

  test('--help documents the run field and where logs go', async () => {
    const r = await runCli(['replay', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--run-pipelines +also run each closed stream's pipeline/);
    assert.match(r.stdout, /"run": \{"ok": true, "emitted"/);
    assert.match(r.stdout, /JSON lines to stderr/);
    assert.doesNotMatch(r.stdout, /not available/);
  });
});
