/**
 * From handler references (config) to handler classes and a factory of instances. Everything that can
 * be wrong with a handler's implementation — a module that does not import, a missing export, an export
 * that is not a class, a built-in this build lacks, params a constructor refuses — is found here, at
 * start, and reported as one {@link ConfigError}: never at the first batch.
 */
import { pathToFileURL } from 'node:url';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { BUILTIN_HANDLER_CLASSES } from '../handlers/index.js';
import {
  type BuiltinHandler,
  type HandlerRef,
  type PipelineDefinitions,
  PYTHON_HANDLER_ALIASES,
} from './definitions.js';
import type { HandlerClass, HandlerContext, HandlerFactory } from './handler.js';

/** Options of {@link loadHandlerClasses} and {@link checkPipelineHandlers}. */
export interface LoadHandlerOptions {
  /**
   * The pipelines that will run. When given, only the built-ins they use must exist in this build (and
   * the classes are also keyed by the names the steps use, e.g. the reference's Python class paths);
   * when omitted, every built-in in `handlers` must exist.
   */
  readonly pipelines?: PipelineDefinitions;
  /** The file problems are reported against (winchester.yaml's path as shown). Default `winchester.yaml`. */
  readonly configFile?: string;
}

/**
 * Loads the class of every handler: built-ins from this build, user modules by dynamic import. Every
 * `module` reference is imported (a declared handler that cannot load is a configuration mistake even
 * if no pipeline uses it yet, as in the reference). Returns handler name → class.
 *
 * @throws ConfigError listing every handler that cannot be loaded, with its name, module path and export.
 */
export async function loadHandlerClasses(
  handlers: ReadonlyMap<string, HandlerRef>,
  options: LoadHandlerOptions = {},
): Promise<Map<string, HandlerClass>> {
  const file = options.configFile ?? 'winchester.yaml';
  const problems: ConfigProblem[] = [];
  const classes = new Map<string, HandlerClass>();
  // import() caches modules itself; this only keeps one failure message per module path.
  const imports = new Map<string, Promise<{ ns: Record<string, unknown> } | { error: string }>>();

  for (const [name, ref] of handlers) {
    if (ref.kind !== 'module') continue;
    let loading = imports.get(ref.path);
    if (loading === undefined) {
      loading = importModule(ref.path);
      imports.set(ref.path, loading);
    }
    const loaded = await loading;
    const where = `pipeline_handlers.${name}`;
    if ('error' in loaded) {
      problems.push({ file, message: `${where}: cannot import module ${ref.path}: ${loaded.error}` });
      continue;
    }
    const exported = Object.hasOwn(loaded.ns, ref.exportName) ? loaded.ns[ref.exportName] : undefined;
    if (exported === undefined) {
      const names = Object.keys(loaded.ns).filter((k) => isConstructor(loaded.ns[k]));
      problems.push({
        file,
        message: `${where}: module ${ref.path} has no export '${ref.exportName}'${names.length > 0 ? ` (its classes: ${names.join(', ')})` : ''}`,
      });
      continue;
    }
    if (!isConstructor(exported)) {
      problems.push({
        file,
        message: `${where}: export '${ref.exportName}' of module ${ref.path} is ${describe(exported)}, not a class (a handler is constructed with new Class(params, context))`,
      });
      continue;
    }
    classes.set(name, exported);
  }

  // Built-ins: the ones the pipelines use (by the step's own name, alias or not), or all of them.
  const wanted = new Map<string, { builtin: BuiltinHandler; pipelines: string[] }>();
  if (options.pipelines !== undefined) {
    for (const pipeline of options.pipelines.values()) {
      for (const step of pipeline.handlers) {
        if (step.handler.kind !== 'builtin') continue;
        const entry = wanted.get(step.name) ?? { builtin: step.handler.name, pipelines: [] };
        if (!entry.pipelines.includes(pipeline.name)) entry.pipelines.push(pipeline.name);
        wanted.set(step.name, entry);
      }
    }
  } else {
    for (const [name, ref] of handlers)
      if (ref.kind === 'builtin') wanted.set(name, { builtin: ref.name, pipelines: [] });
  }
  for (const [name, { builtin, pipelines }] of wanted) {
    const cls = BUILTIN_HANDLER_CLASSES[builtin];
    if (cls === undefined) {
      const used =
        pipelines.length > 0
          ? ` (used by pipeline${pipelines.length > 1 ? 's' : ''} ${pipelines.map((p) => `'${p}'`).join(', ')})`
          : '';
      problems.push({ file, message: `handler '${builtin}' is not available in this build${used}` });
      continue;
    }
    classes.set(name, cls);
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return classes;
}

/**
 * The factory {@link runPipeline} calls for every step of every batch: `new Class(params, context)`.
 * A step name that is one of the reference's Python class paths finds its built-in. A name with no
 * class throws, which fails that batch (loadHandlerClasses with the pipelines prevents it at start).
 */
export function handlerFactory(
  classes: ReadonlyMap<string, HandlerClass>,
  context: HandlerContext,
): HandlerFactory {
  return ({ name, params }) => {
    let cls = classes.get(name);
    if (cls === undefined) {
      const alias = PYTHON_HANDLER_ALIASES[name];
      if (alias !== undefined) cls = classes.get(alias);
    }
    if (cls === undefined) throw new Error(`handler '${name}' is not available in this build`);
    return new cls(params, context);
  };
}

/**
 * Creates every step of every pipeline once, so that params a constructor refuses (a bad `level`, a
 * missing `url`) and instances lacking handleEvents/commit/rollback stop the start, naming the pipeline
 * and the handler. Handler constructors are therefore expected to be cheap and free of side effects
 * (the runner creates one per batch anyway); the instances made here are dropped unused.
 *
 * @throws ConfigError listing every step that cannot be created.
 */
export function checkPipelineHandlers(
  pipelines: PipelineDefinitions,
  create: HandlerFactory,
  options: { readonly pipelineFile?: string } = {},
): void {
  const file = options.pipelineFile ?? 'pipelines.yaml';
  const problems: ConfigProblem[] = [];
  for (const pipeline of pipelines.values()) {
    pipeline.handlers.forEach((step, i) => {
      const where = `pipeline '${pipeline.name}', handler ${i + 1} '${step.name}'`;
      let instance: unknown;
      try {
        instance = create({ name: step.name, params: step.params });
      } catch (err) {
        problems.push({ file, message: `${where}: ${err instanceof Error ? err.message : String(err)}` });
        return;
      }
      const missing = ['handleEvents', 'commit', 'rollback'].filter(
        (m) => typeof (instance as Record<string, unknown> | null)?.[m] !== 'function',
      );
      if (missing.length > 0)
        problems.push({ file, message: `${where}: the handler has no ${missing.join(', ')} method` });
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

async function importModule(path: string): Promise<{ ns: Record<string, unknown> } | { error: string }> {
  try {
    return { ns: (await import(pathToFileURL(path).href)) as Record<string, unknown> };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** True for what `new` accepts: classes and ordinary functions, not arrows, methods or async functions. */
function isConstructor(value: unknown): value is HandlerClass {
  if (typeof value !== 'function') return false;
  try {
    // Constructs a String with `value` as new.target: throws exactly when value is not a constructor,
    // without running any of its code.
    Reflect.construct(String, [], value);
    return true;
  } catch {
    return false;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'function') return 'a function that cannot be called with new';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value} (${String(value)})`;
}
