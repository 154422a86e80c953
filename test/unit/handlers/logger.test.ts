import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LoggerHandler } from '../../../src/handlers/logger.js';
import { HandlerParamsError } from '../../../src/handlers/param-checks.js';
import { createJsonLogger, type LogLevel } from '../../../src/log.js';
import type { Event } from '../../../src/model/event.js';
import type { HandlerClass, HandlerEnv } from '../../../src/pipeline/handler.js';
import { handlerFactory } from '../../../src/pipeline/registry.js';
import { runPipeline } from '../../../src/pipeline/runner.js';

function ev(id: string): Event {
  return { message_id: id, event_type: 'compute.instance.exists', timestamp: 0, traits: {} };
}

function env(kind: 'fire' | 'expire' = 'fire'): HandlerEnv {
  return {
    batch_id: 'batch-9',
    stream_id: '123',
    stream_name: 'instance_usage',
    trigger: 'instance_usage',
    kind,
    pipeline: 'usage_pipeline',
    distinguishing: { instance_id: { type: 'text', value: 'abc' } },
  };
}

function capture(level: LogLevel = 'debug') {
  const lines: Record<string, unknown>[] = [];
  const log = createJsonLogger({
    level,
    write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
    now: () => new Date(0),
  });
  return { lines, log };
}

describe('logger handler', () => {
  test('commit writes one line per batch with exactly the documented fields, all message ids in order', async () => {
    const { lines, log } = capture();
    const h = new LoggerHandler({}, { log });
    const events = [ev('m3'), ev('m1'), ev('m2')];
    assert.equal(h.handleEvents(events, env('expire')), events, 'returns the very list it was given');
    assert.equal(lines.length, 0, 'nothing is logged before commit');
    h.commit();
    assert.deepEqual(lines, [
      {
        time: '1970-01-01T00:00:00.000Z',
        level: 'info',
        msg: 'pipeline batch',
        handler: 'logger',
        trigger: 'instance_usage',
        kind: 'expire',
        pipeline: 'usage_pipeline',
        stream_id: '123',
        count: 3,
        message_ids: ['m3', 'm1', 'm2'],
      },
    ]);
  });

  test('rollback logs nothing, and a rolled back instance has nothing to commit', () => {
    const { lines, log } = capture();
    const h = new LoggerHandler({}, { log });
    h.handleEvents([ev('a')], env());
    h.rollback();
    h.commit();
    assert.deepEqual(lines, []);
  });

  test('the level param sets the line level', () => {
    for (const level of ['debug', 'info', 'warn', 'error'] as const) {
      const { lines, log } = capture();
      const h = new LoggerHandler({ level }, { log });
      h.handleEvents([], env());
      h.commit();
      assert.equal(lines[0]?.level, level);
      assert.equal(lines[0]?.count, 0);
      assert.deepEqual(lines[0]?.message_ids, []);
    }
  });

  test('a bad level is refused at construction with a clear message', () => {
    const { log } = capture();
    assert.throws(
      () => new LoggerHandler({ level: 'verbose' }, { log }),
      (err: unknown) =>
        err instanceof HandlerParamsError &&
        err.message ===
          "logger: param 'level' must be one of 'debug', 'info', 'warn', 'error', not 'verbose'",
    );
    assert.throws(
      () => new LoggerHandler({ level: 3 }, { log }),
      /logger: param 'level' must be a string, not number 3/,
    );
  });

  test('unknown params are ignored with one warning per pipeline step, as for every built-in', () => {
    const { lines, log } = capture();
    const params = Object.freeze({ levle: 'debug', colour: true });
    new LoggerHandler(params, { log });
    new LoggerHandler(params, { log });
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.params]),
      [['warn', 'logger: ignoring unknown params', ['colour', 'levle']]],
    );
  });

  test('in a pipeline: logs at commit, once, and not at all when a later handler fails', async () => {
    const { lines, log } = capture();
    const create = handlerFactory(
      new Map<string, HandlerClass>([
        ['logger', LoggerHandler],
        [
          'fail',
          class {
            handleEvents(): Event[] {
              throw new Error('later failure');
            }
            commit() {}
            rollback() {}
          },
        ],
      ]),
      { log },
    );
    const step = (name: string) => ({
      name,
      handler: { kind: 'builtin', name: 'logger' } as const,
      params: {},
    });
    const failed = await runPipeline(
      { name: 'usage_pipeline', handlers: [step('logger'), step('fail')] },
      { events: [ev('a')], env: env() },
      create,
      () => {},
    );
    assert.equal(failed.ok, false);
    assert.equal(lines.length, 0);
    const ok = await runPipeline(
      { name: 'usage_pipeline', handlers: [step('logger')] },
      { events: [ev('a'), ev('b')], env: env() },
      create,
      () => {},
    );
    assert.equal(ok.ok, true);
    assert.equal(lines.length, 1);
    assert.deepEqual(lines[0]?.message_ids, ['a', 'b']);
  });
});
