import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError } from '../../../src/errors.js';
import { LoggerHandler } from '../../../src/handlers/logger.js';
import type { Logger } from '../../../src/log.js';
import type {
  HandlerRef,
  PipelineDefinition,
  PipelineDefinitions,
} from '../../../src/pipeline/definitions.js';
import type { HandlerContext, HandlerEnv } from '../../../src/pipeline/handler.js';
import { checkPipelineHandlers, handlerFactory, loadHandlerClasses } from '../../../src/pipeline/registry.js';
import { runPipeline } from '../../../src/pipeline/runner.js';

let dir = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'winchester-registry-'));
  await writeFile(
    join(dir, 'good.mjs'),
    `export class Tagger {
  constructor(params, context) { this.tag = params.tag; this.context = context; }
  handleEvents(events, env) {
    return [...events, { message_id: 'tag-' + env.stream_id, event_type: this.tag, timestamp: 0, traits: {} }];
  }
  commit() { this.context.log('info', 'tagged', { tag: this.tag }); }
  rollback() {}
}
export default class Passthrough {
  handleEvents(events) { return events; }
  commit() {}
  rollback() {}
}
export const notAClass = () => {};
export const config = { a: 1 };
export async function asyncFn() {}
`,
  );
  await writeFile(join(dir, 'broken.mjs'), 'export class Broken {\n  handleEvents( {\n}\n');
  await writeFile(join(dir, 'throws.mjs'), "throw new Error('cannot start: missing credentials');\n");
  await writeFile(
    join(dir, 'common.cjs'),
    'class Legacy { handleEvents(e) { return e; } commit() {} rollback() {} }\nmodule.exports = { Legacy };\n',
  );
  await writeFile(
    join(dir, 'incomplete.mjs'),
    'export class NoCommit { handleEvents(e) { return e; } rollback() {} }\n',
  );
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function mod(file: string, exportName: string): HandlerRef {
  return { kind: 'module', spec: `./${file}#${exportName}`, path: join(dir, file), exportName };
}

async function loadError(
  handlers: Map<string, HandlerRef>,
  options?: Parameters<typeof loadHandlerClasses>[1],
): Promise<ConfigError> {
  try {
    await loadHandlerClasses(handlers, options);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected loadHandlerClasses to throw');
}

const context: HandlerContext = { log: () => {} };

function env(): HandlerEnv {
  return {
    batch_id: 'b',
    stream_id: '7',
    stream_name: 't',
    trigger: 't',
    kind: 'fire',
    pipeline: 'p',
    distinguishing: {},
  };
}

describe('loadHandlerClasses', () => {
  test('a good module: named and default exports load, and the factory makes working instances', async () => {
    const classes = await loadHandlerClasses(
      new Map<string, HandlerRef>([
        ['tagger', mod('good.mjs', 'Tagger')],
        ['pass', mod('good.mjs', 'default')],
        ['legacy', mod('common.cjs', 'Legacy')],
        ['logger', { kind: 'builtin', name: 'logger' }],
      ]),
    );
    assert.deepEqual([...classes.keys()].sort(), ['legacy', 'logger', 'pass', 'tagger']);
    assert.equal(classes.get('logger'), LoggerHandler);
    const logged: unknown[] = [];
    const log: Logger = (_level, msg, fields) => logged.push([msg, fields]);
    const pipeline: PipelineDefinition = {
      name: 'p',
      handlers: [
        { name: 'pass', handler: mod('good.mjs', 'default'), params: {} },
        { name: 'legacy', handler: mod('common.cjs', 'Legacy'), params: {} },
        { name: 'tagger', handler: mod('good.mjs', 'Tagger'), params: { tag: 'audit.done' } },
      ],
    };
    const out = await runPipeline(
      pipeline,
      { events: [], env: env() },
      handlerFactory(classes, { log }),
      () => {},
    );
    assert.ok(out.ok);
    assert.deepEqual(
      out.newEvents.map((e) => [e.message_id, e.event_type]),
      [['tag-7', 'audit.done']],
    );
    assert.deepEqual(logged, [['tagged', { tag: 'audit.done' }]]);
  });

  test('a module that does not exist names the handler and the path', async () => {
    const err = await loadError(new Map([['gone', mod('nowhere.mjs', 'Gone')]]), {
      configFile: 'etc/winchester.yaml',
    });
    assert.equal(err.problems.length, 1);
    assert.equal(err.problems[0]?.file, 'etc/winchester.yaml');
    assert.match(
      err.message,
      /^etc\/winchester\.yaml: pipeline_handlers\.gone: cannot import module .*nowhere\.mjs: /,
    );
  });

  test('a module with a syntax error, or that throws while loading, is reported with its error message', async () => {
    const err = await loadError(
      new Map([
        ['broken', mod('broken.mjs', 'Broken')],
        ['throws', mod('throws.mjs', 'X')],
      ]),
    );
    assert.equal(err.problems.length, 2);
    assert.match(
      err.problems[0]?.message ?? '',
      /pipeline_handlers\.broken: cannot import module .*broken\.mjs: .+/,
    );
    assert.match(
      err.problems[1]?.message ?? '',
      /pipeline_handlers\.throws: .*throws\.mjs: cannot start: missing credentials/,
    );
    assert.doesNotMatch(err.message, /\n\s+at /);
  });

  test('a missing export names the handler, the module and the export, and lists the classes it has', async () => {
    const err = await loadError(new Map([['mine', mod('good.mjs', 'Tager')]]));
    assert.match(
      err.message,
      /pipeline_handlers\.mine: module .*good\.mjs has no export 'Tager' \(its classes: .*Tagger/,
    );
  });

  for (const [exportName, what] of [
    ['notAClass', 'a function that cannot be called with new'],
    ['asyncFn', 'a function that cannot be called with new'],
    ['config', 'an object'],
  ] as const) {
    test(`an export that is ${what} (${exportName}) is not a class`, async () => {
      const err = await loadError(new Map([['mine', mod('good.mjs', exportName)]]));
      assert.match(
        err.message,
        new RegExp(
          `pipeline_handlers\\.mine: export '${exportName}' of module .*good\\.mjs is ${what}, not a class`,
        ),
      );
    });
  }

  test('every problem is reported at once', async () => {
    const err = await loadError(
      new Map([
        ['a', mod('nowhere.mjs', 'A')],
        ['b', mod('good.mjs', 'Nope')],
        ['c', mod('good.mjs', 'Tagger')],
        ['d', mod('good.mjs', 'config')],
      ]),
    );
    assert.deepEqual(
      err.problems.map((p) => p.message.split(':')[0]),
      ['pipeline_handlers.a', 'pipeline_handlers.b', 'pipeline_handlers.d'],
    );
  });

  test('a built-in without a class in this build is a ConfigError when a pipeline uses it, not a crash', async () => {
    const handlers = new Map<string, HandlerRef>([
      ['logger', { kind: 'builtin', name: 'logger' }],
      ['fake', { kind: 'builtin', name: 'nosuch' as 'logger' }],
    ]);
    const pipelines: PipelineDefinitions = new Map([
      [
        'audit',
        {
          name: 'audit',
          handlers: [{ name: 'fake', handler: { kind: 'builtin', name: 'nosuch' as 'logger' }, params: {} }],
        },
      ],
    ]);
    const err = await loadError(handlers, { pipelines });
    assert.equal(err.problems.length, 1);
    assert.match(err.message, /handler 'nosuch' is not available in this build \(used by pipeline 'audit'\)/);
    // Without the pipelines every built-in in the map must exist.
    const strict = await loadError(handlers);
    assert.match(strict.message, /handler 'nosuch' is not available in this build$/);
  });

  test('with the pipelines, unused built-ins need no class, and Python class path names find their built-in', async () => {
    const handlers = new Map<string, HandlerRef>([
      ['logger', { kind: 'builtin', name: 'logger' }],
      ['fake', { kind: 'builtin', name: 'nosuch' as 'logger' }],
    ]);
    const alias = 'winchester.pipeline_handler:LoggingHandler';
    const pipelines: PipelineDefinitions = new Map([
      [
        'p',
        { name: 'p', handlers: [{ name: alias, handler: { kind: 'builtin', name: 'logger' }, params: {} }] },
      ],
    ]);
    const classes = await loadHandlerClasses(handlers, { pipelines });
    assert.equal(classes.get(alias), LoggerHandler);
    assert.equal(classes.has('fake'), false);
    // The factory also resolves an alias through its built-in's name.
    const only = new Map([['logger', LoggerHandler]]);
    assert.ok(handlerFactory(only, context)({ name: alias, params: {} }) instanceof LoggerHandler);
  });
});

describe('handlerFactory', () => {
  test('a fresh instance per call, constructed with the params and the context', () => {
    const seen: unknown[] = [];
    class Probe {
      constructor(params: Readonly<Record<string, unknown>>, ctx: HandlerContext) {
        seen.push([params, ctx]);
      }
      handleEvents(e: never[]) {
        return e;
      }
      commit() {}
      rollback() {}
    }
    const create = handlerFactory(new Map([['probe', Probe]]), context);
    const a = create({ name: 'probe', params: { x: 1 } });
    const b = create({ name: 'probe', params: { x: 1 } });
    assert.notEqual(a, b);
    assert.deepEqual(seen, [
      [{ x: 1 }, context],
      [{ x: 1 }, context],
    ]);
  });

  test('an unknown name throws a clear error (the runner turns it into a failed batch)', () => {
    const create = handlerFactory(new Map(), context);
    assert.throws(
      () => create({ name: 'usage', params: {} }),
      /handler 'usage' is not available in this build/,
    );
  });
});

describe('checkPipelineHandlers', () => {
  test('params a constructor refuses and instances without the methods stop the start, naming pipeline and step', async () => {
    const classes = await loadHandlerClasses(
      new Map<string, HandlerRef>([
        ['logger', { kind: 'builtin', name: 'logger' }],
        ['nocommit', mod('incomplete.mjs', 'NoCommit')],
      ]),
    );
    const pipelines: PipelineDefinitions = new Map([
      [
        'ok',
        {
          name: 'ok',
          handlers: [
            { name: 'logger', handler: { kind: 'builtin', name: 'logger' }, params: { level: 'debug' } },
          ],
        },
      ],
      [
        'bad',
        {
          name: 'bad',
          handlers: [
            { name: 'logger', handler: { kind: 'builtin', name: 'logger' }, params: { level: 'loud' } },
            { name: 'nocommit', handler: mod('incomplete.mjs', 'NoCommit'), params: {} },
          ],
        },
      ],
    ]);
    const create = handlerFactory(classes, context);
    assert.throws(
      () => checkPipelineHandlers(pipelines, create, { pipelineFile: 'etc/pipelines.yaml' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(
          err.problems.map((p) => `${p.file}: ${p.message}`),
          [
            `etc/pipelines.yaml: pipeline 'bad', handler 1 'logger': logger: param 'level' must be one of 'debug', 'info', 'warn', 'error', not 'loud'`,
            `etc/pipelines.yaml: pipeline 'bad', handler 2 'nocommit': the handler has no commit method`,
          ],
        );
        return true;
      },
    );
    checkPipelineHandlers(new Map([['ok', pipelines.get('ok') as PipelineDefinition]]), create);
  });
});
