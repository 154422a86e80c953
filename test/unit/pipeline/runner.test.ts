import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Logger, LogLevel } from '../../../src/log.js';
import type { Event } from '../../../src/model/event.js';
import type { PipelineDefinition } from '../../../src/pipeline/definitions.js';
import type { Handler, HandlerEnv, HandlerFactory } from '../../../src/pipeline/handler.js';
import { findNewEvents, runPipeline } from '../../../src/pipeline/runner.js';

const T0 = Date.UTC(2026, 0, 1) * 1000;

function ev(id: string, type = 'test.event'): Event {
  return { message_id: id, event_type: type, timestamp: T0, traits: {} };
}

function env(): HandlerEnv {
  return {
    batch_id: 'b-1',
    stream_id: '42',
    stream_name: 'trig',
    trigger: 'trig',
    kind: 'fire',
    pipeline: 'p',
    distinguishing: {},
  };
}

function pipeline(...names: string[]): PipelineDefinition {
  return {
    name: 'p',
    handlers: names.map((name) => ({ name, handler: { kind: 'builtin', name: 'logger' }, params: {} })),
  };
}

interface Recorded {
  level: LogLevel;
  msg: string;
  fields?: Record<string, unknown>;
}

function recordingLog(): { log: Logger; lines: Recorded[] } {
  const lines: Recorded[] = [];
  return { lines, log: (level, msg, fields) => lines.push({ level, msg, fields }) };
}

type Behaviour = {
  handle?: (events: Event[], env: HandlerEnv) => unknown;
  commit?: () => void | Promise<void>;
  rollback?: () => void | Promise<void>;
  construct?: () => void;
};

/** A factory whose handlers record every call, in order, in `calls`. */
function recordingFactory(behaviours: Record<string, Behaviour>, calls: string[]): HandlerFactory {
  return ({ name }) => {
    const b = behaviours[name] ?? {};
    calls.push(`new ${name}`);
    b.construct?.();
    const h: Handler = {
      handleEvents(events, e) {
        calls.push(`handle ${name}`);
        return (b.handle ? b.handle(events, e) : events) as Event[];
      },
      async commit() {
        calls.push(`commit ${name}`);
        await b.commit?.();
      },
      async rollback() {
        calls.push(`rollback ${name}`);
        await b.rollback?.();
      },
    };
    return h;
  };
}

/** Runs pipeline `p` of `names` over `events` with recording handlers: the outcome, the calls, the log lines. */
async function runRecorded(
  names: string[],
  behaviours: Record<string, Behaviour> = {},
  events: Event[] = [ev('1')],
) {
  const calls: string[] = [];
  const { log, lines } = recordingLog();
  const out = await runPipeline(
    pipeline(...names),
    { events, env: env() },
    recordingFactory(behaviours, calls),
    log,
  );
  return { out, calls, lines };
}

describe('runPipeline', () => {
  test('all succeed: handlers made in order, handleEvents in order, then commit in order', async () => {
    const { out, calls, lines } = await runRecorded(['a', 'b', 'c'], {}, [ev('1'), ev('2')]);
    assert.deepEqual(calls, [
      'new a',
      'new b',
      'new c',
      'handle a',
      'handle b',
      'handle c',
      'commit a',
      'commit b',
      'commit c',
    ]);
    assert.equal(out.ok, true);
    assert.ok(out.ok);
    assert.deepEqual(
      out.events.map((e) => e.message_id),
      ['1', '2'],
    );
    assert.deepEqual(out.newEvents, []);
    assert.deepEqual(out.commitErrors, []);
    assert.deepEqual(lines, []);
  });

  test('each handler sees the list the previous returned, and the shared env', async () => {
    const seen: string[][] = [];
    const { out } = await runRecorded(
      ['drop', 'add', 'look'],
      {
        drop: {
          handle: (events, e) => {
            e.note = 'from drop';
            return events.filter((x) => x.message_id !== '1');
          },
        },
        add: { handle: (events) => [...events, ev('n1', 'new.event')] },
        look: {
          handle: (events, e) => {
            seen.push(events.map((x) => x.message_id));
            seen.push([String(e.note)]);
            return events;
          },
        },
      },
      [ev('1'), ev('2')],
    );
    assert.deepEqual(seen, [['2', 'n1'], ['from drop']]);
    assert.ok(out.ok);
    assert.deepEqual(
      out.newEvents.map((e) => e.message_id),
      ['n1'],
    );
  });

  test('a handler that throws: no commit, every created handler rolled back, error named', async () => {
    const { out, calls, lines } = await runRecorded(['a', 'b', 'c'], {
      b: {
        handle: () => {
          throw new Error('boom');
        },
      },
    });
    assert.deepEqual(calls, [
      'new a',
      'new b',
      'new c',
      'handle a',
      'handle b',
      'rollback a',
      'rollback b',
      'rollback c',
    ]);
    assert.deepEqual(out, { ok: false, handler: 'b', error: 'boom', rollbackErrors: [] });
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.level, 'error');
    assert.equal(lines[0]?.fields?.handler, 'b');
    assert.equal(lines[0]?.fields?.pipeline, 'p');
    assert.equal(lines[0]?.fields?.batch_id, 'b-1');
  });

  test('an async handleEvents that rejects fails the same way; a thrown non-Error becomes its string', async () => {
    const { out, calls } = await runRecorded(['a'], { a: { handle: () => Promise.reject('plain string') } });
    assert.deepEqual(out, { ok: false, handler: 'a', error: 'plain string', rollbackErrors: [] });
    assert.deepEqual(calls, ['new a', 'handle a', 'rollback a']);
  });

  test('a constructor that throws: that handler fails, the ones already made are rolled back, none runs', async () => {
    const { out, calls } = await runRecorded(['a', 'b', 'c'], {
      b: {
        construct: () => {
          throw new TypeError('bad params: level must be one of debug, info');
        },
      },
    });
    assert.deepEqual(calls, ['new a', 'new b', 'rollback a']);
    assert.ok(!out.ok);
    assert.equal(out.handler, 'b');
    assert.match(out.error, /cannot create handler: bad params: level must be one of debug, info/);
    assert.doesNotMatch(out.error, /\n\s+at /, 'no stack trace');
  });

  for (const [what, value, pattern] of [
    ['undefined', undefined, /handleEvents returned undefined, not an array of events/],
    ['an object', { events: [] }, /handleEvents returned an object, not an array of events/],
    ['a promise of null', Promise.resolve(null), /handleEvents returned null, not an array/],
    ['an array holding a non-event', [ev('1'), 'x'], /item 1 is not an event/],
    ['an array holding an event without message_id', [{ event_type: 'x' }], /item 0 is not an event/],
  ] as const) {
    test(`handleEvents returning ${what} fails the batch naming the handler`, async () => {
      const { out, calls } = await runRecorded(['a', 'bad', 'c'], { bad: { handle: () => value } });
      assert.ok(!out.ok);
      assert.equal(out.handler, 'bad');
      assert.match(out.error, pattern);
      assert.deepEqual(calls, [
        'new a',
        'new bad',
        'new c',
        'handle a',
        'handle bad',
        'rollback a',
        'rollback bad',
        'rollback c',
      ]);
    });
  }

  test('a commit error is logged and collected; the other handlers still commit', async () => {
    const { out, calls, lines } = await runRecorded(['a', 'b', 'c'], {
      a: {
        commit: () => {
          throw new Error('a down');
        },
      },
      b: { commit: () => Promise.reject(new Error('b down')) },
    });
    assert.deepEqual(calls.slice(-3), ['commit a', 'commit b', 'commit c']);
    assert.ok(out.ok);
    assert.deepEqual(out.commitErrors, [
      { handler: 'a', error: 'a down' },
      { handler: 'b', error: 'b down' },
    ]);
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.fields?.handler, l.fields?.error]),
      [
        ['error', 'handler commit failed', 'a', 'a down'],
        ['error', 'handler commit failed', 'b', 'b down'],
      ],
    );
  });

  test('commits run one after another, never overlapping', async () => {
    let active = 0;
    let maxActive = 0;
    const slow = async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 5));
      active--;
    };
    await runRecorded(['a', 'b', 'c'], { a: { commit: slow }, b: { commit: slow }, c: { commit: slow } }, []);
    assert.equal(maxActive, 1);
  });

  test('rollback errors are collected and logged, never thrown; every handler still rolls back', async () => {
    const { out, calls, lines } = await runRecorded(['a', 'b', 'c'], {
      a: {
        rollback: () => {
          throw new Error('a cannot undo');
        },
      },
      c: {
        handle: () => {
          throw new Error('c failed');
        },
        rollback: () => Promise.reject(new Error('c cannot undo')),
      },
    });
    assert.deepEqual(calls.slice(-3), ['rollback a', 'rollback b', 'rollback c']);
    assert.deepEqual(out, {
      ok: false,
      handler: 'c',
      error: 'c failed',
      rollbackErrors: [
        { handler: 'a', error: 'a cannot undo' },
        { handler: 'c', error: 'c cannot undo' },
      ],
    });
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['pipeline failed', 'handler rollback failed', 'handler rollback failed'],
    );
  });

  test("handlers cannot change the caller's input array", async () => {
    const input = [ev('1'), ev('2'), ev('3')];
    const copy = [...input];
    const out = await runPipeline(
      pipeline('mutate'),
      { events: input, env: env() },
      recordingFactory(
        {
          mutate: {
            handle: (events) => {
              events.splice(0, 2);
              events.push(ev('n'));
              events.reverse();
              return events;
            },
          },
        },
        [],
      ),
      recordingLog().log,
    );
    assert.deepEqual(input, copy);
    assert.ok(out.ok);
    assert.deepEqual(
      out.events.map((e) => e.message_id),
      ['n', '3'],
    );
    assert.deepEqual(
      out.newEvents.map((e) => e.message_id),
      ['n'],
    );
  });

  test("env keys a run adds stay in that run: not in the caller's env, not in a retry", async () => {
    const input = { events: [ev('1')], env: env() };
    const seen: unknown[] = [];
    let attempt = 0;
    const factory = recordingFactory(
      {
        build: {
          handle: (events, e) => {
            seen.push(e.usage_notifications);
            e.usage_notifications = [`attempt ${++attempt}`];
            return events;
          },
        },
        fail: {
          handle: (events) => {
            if (attempt === 1) throw new Error('first attempt fails');
            return events;
          },
        },
      },
      [],
    );
    assert.equal((await runPipeline(pipeline('build', 'fail'), input, factory, () => {})).ok, false);
    assert.equal((await runPipeline(pipeline('build', 'fail'), input, factory, () => {})).ok, true);
    assert.deepEqual(seen, [undefined, undefined]);
    assert.equal('usage_notifications' in input.env, false);
  });

  test('new events: only message ids absent from the input, in final-list order; a changed event with an old id is not new', async () => {
    const out = await runPipeline(
      pipeline('a'),
      { events: [ev('1'), ev('2')], env: env() },
      recordingFactory({ a: { handle: () => [ev('x'), ev('2', 'rewritten'), ev('y'), ev('1')] } }, []),
      recordingLog().log,
    );
    assert.ok(out.ok);
    assert.deepEqual(
      out.newEvents.map((e) => e.message_id),
      ['x', 'y'],
    );
  });

  test('an empty pipeline passes the events through and commits nothing', async () => {
    const out = await runPipeline(
      { name: 'empty', handlers: [] },
      { events: [ev('1')], env: env() },
      () => {
        throw new Error('no step to create');
      },
      recordingLog().log,
    );
    assert.ok(out.ok);
    assert.deepEqual(
      out.events.map((e) => e.message_id),
      ['1'],
    );
    assert.deepEqual(out.newEvents, []);
  });

  test('params reach the factory with the step name', async () => {
    const steps: unknown[] = [];
    const def: PipelineDefinition = {
      name: 'p',
      handlers: [{ name: 'a', handler: { kind: 'builtin', name: 'logger' }, params: { level: 'debug' } }],
    };
    await runPipeline(
      def,
      { events: [], env: env() },
      (step) => {
        steps.push(step);
        return { handleEvents: (e) => e, commit() {}, rollback() {} };
      },
      recordingLog().log,
    );
    assert.deepEqual(steps, [{ name: 'a', params: { level: 'debug' } }]);
  });

  test('a handler that throws once succeeds when the pipeline runs the batch again, with fresh instances', async () => {
    let attempts = 0;
    const calls: string[] = [];
    const factory = recordingFactory(
      {
        flaky: {
          handle: (events) => {
            attempts++;
            if (attempts === 1) throw new Error('temporarily unavailable');
            return [...events, ev('verdict')];
          },
        },
      },
      calls,
    );
    const input = { events: [ev('1')], env: env() };
    const first = await runPipeline(pipeline('log', 'flaky'), input, factory, recordingLog().log);
    assert.deepEqual(first, {
      ok: false,
      handler: 'flaky',
      error: 'temporarily unavailable',
      rollbackErrors: [],
    });
    const second = await runPipeline(pipeline('log', 'flaky'), input, factory, recordingLog().log);
    assert.ok(second.ok);
    assert.deepEqual(
      second.newEvents.map((e) => e.message_id),
      ['verdict'],
    );
    assert.deepEqual(calls, [
      'new log',
      'new flaky',
      'handle log',
      'handle flaky',
      'rollback log',
      'rollback flaky',
      'new log',
      'new flaky',
      'handle log',
      'handle flaky',
      'commit log',
      'commit flaky',
    ]);
  });
});

describe('new events property', () => {
  // A step either keeps the events a random predicate picks, or appends events with fresh or reused ids.
  const stepArb = fc.oneof(
    fc.record({ kind: fc.constant('filter' as const), keep: fc.array(fc.boolean(), { maxLength: 30 }) }),
    fc.record({
      kind: fc.constant('append' as const),
      ids: fc.array(fc.constantFrom('i0', 'i1', 'i2', 'n0', 'n1', 'n2', 'n3', 'n4'), { maxLength: 4 }),
    }),
  );

  test('newEvents is exactly the final list minus the input, by message_id, in final order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.constantFrom('i0', 'i1', 'i2', 'i3', 'i4', 'i5'), { maxLength: 6 }),
        fc.array(stepArb, { maxLength: 6 }),
        async (inputIds, steps) => {
          const input = inputIds.map((id) => ev(id));
          const names = steps.map((_, i) => `s${i}`);
          const factory: HandlerFactory = ({ name }) => {
            const step = steps[Number(name.slice(1))];
            return {
              handleEvents(events) {
                if (step === undefined) return events;
                if (step.kind === 'filter')
                  return events.filter((_, i) => step.keep[i % Math.max(1, step.keep.length)] ?? true);
                return [...events, ...step.ids.map((id) => ev(id))];
              },
              commit() {},
              rollback() {},
            };
          };
          const out = await runPipeline(pipeline(...names), { events: input, env: env() }, factory, () => {});
          assert.ok(out.ok);
          // The model: the same chain on bare ids, and "new" as set difference.
          let ids: string[] = [...inputIds];
          for (const step of steps) {
            if (step.kind === 'filter')
              ids = ids.filter((_, i) => step.keep[i % Math.max(1, step.keep.length)] ?? true);
            else ids = [...ids, ...step.ids];
          }
          assert.deepEqual(
            out.events.map((e) => e.message_id),
            ids,
          );
          const inputSet = new Set<string>(inputIds);
          const expected = ids.filter((id) => !inputSet.has(id));
          assert.deepEqual(
            out.newEvents.map((e) => e.message_id),
            expected,
          );
          assert.deepEqual(
            findNewEvents(input, out.events).map((e) => e.message_id),
            expected,
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
