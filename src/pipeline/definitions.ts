/**
 * Pipeline definitions: pipelines.yaml (pipeline name → list of handlers, each a name or
 * `{name, params}`) validated against the handlers that exist — the built-ins, the reference's
 * Python class paths for them, and `pipeline_handlers` entries of winchester.yaml naming JS
 * modules. Only definitions live here; instantiating and running handlers is the runner's job.
 */
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute } from 'node:path';
import type { Pos, Problems } from '../config/problems.js';
import { closest } from '../config/settings.js';
import { describe, toPlain, type YNode } from '../config/yaml.js';

/** The handlers that ship with winchester, usable in pipelines.yaml without any registration. */
export const BUILTIN_HANDLERS = ['logger', 'usage', 'notabene', 'atompub', 'webhook'] as const;
export type BuiltinHandler = (typeof BUILTIN_HANDLERS)[number];

/** The reference's Python class paths, accepted so that existing configuration loads unchanged. */
export const PYTHON_HANDLER_ALIASES: Readonly<Record<string, BuiltinHandler>> = Object.freeze({
  'winchester.pipeline_handler:LoggingHandler': 'logger',
  'winchester.pipeline_handler:UsageHandler': 'usage',
  'winchester.pipeline_handler:NotabeneHandler': 'notabene',
  'winchester.pipeline_handler:AtomPubHandler': 'atompub',
});

/** Where a handler's implementation comes from. */
export type HandlerRef =
  | { readonly kind: 'builtin'; readonly name: BuiltinHandler }
  | {
      readonly kind: 'module';
      /** The spec as written, e.g. `./handlers/mine.js#MyHandler`. */
      readonly spec: string;
      /** Absolute file path of the module (checked to exist at load). */
      readonly path: string;
      /** The export to instantiate (`default` when the spec has no `#name`). */
      readonly exportName: string;
    };

/** One step of a pipeline: the handler and the params its instances are created with. */
export interface HandlerConfig {
  /** The name as written in pipelines.yaml. */
  readonly name: string;
  readonly handler: HandlerRef;
  /** Free-form, deeply frozen; passed as is to the handler (e.g. the notabene host/user/… keys). */
  readonly params: Readonly<Record<string, unknown>>;
}

export interface PipelineDefinition {
  readonly name: string;
  readonly handlers: readonly HandlerConfig[];
}

/** Pipelines by name, in file order. */
export type PipelineDefinitions = ReadonlyMap<string, PipelineDefinition>;

/** Finds a file named in configuration (relative names searched along config_path). */
export type FileFinder = (name: string) => string | undefined;

const PYTHON_CLASS_PATH = /^[A-Za-z_][\w.]*:[A-Za-z_]\w*$/;

function isBuiltin(name: string): name is BuiltinHandler {
  return (BUILTIN_HANDLERS as readonly string[]).includes(name);
}

/**
 * Resolves a handler implementation spec: a built-in name, a reference Python class path alias,
 * or `module#Export` where module is a path (relative ones found with `find`) or a package name
 * (resolved from `baseDir`). Returns an error message instead when it cannot be resolved.
 */
export function resolveHandlerSpec(
  spec: string,
  find: FileFinder,
  baseDir: string,
): HandlerRef | { error: string } {
  const s = spec.trim();
  if (isBuiltin(s)) return { kind: 'builtin', name: s };
  const alias = PYTHON_HANDLER_ALIASES[s];
  if (alias !== undefined) return { kind: 'builtin', name: alias };
  if (PYTHON_CLASS_PATH.test(s)) {
    return {
      error: `'${s}' is a Python class path; only the reference's built-in handlers (${Object.keys(PYTHON_HANDLER_ALIASES).join(', ')}) are recognised. Port the handler to a JS module and write './path/to/module.js#ExportName'`,
    };
  }
  return resolveModuleSpec(s, find, baseDir);
}

/** Resolves `path/to/module.js#Export` (or a package name) to an existing file. */
export function resolveModuleSpec(
  spec: string,
  find: FileFinder,
  baseDir: string,
): { kind: 'module'; spec: string; path: string; exportName: string } | { error: string } {
  const hash = spec.lastIndexOf('#');
  const modulePart = hash >= 0 ? spec.slice(0, hash) : spec;
  const exportName = hash >= 0 ? spec.slice(hash + 1) : 'default';
  if (modulePart === '') return { error: `'${spec}' names no module (expected './module.js#ExportName')` };
  if (!/^[A-Za-z_$][\w$]*$/.test(exportName))
    return { error: `'${exportName}' in '${spec}' is not a valid export name` };
  const isPath = modulePart.startsWith('.') || isAbsolute(modulePart) || modulePart.startsWith('file:');
  if (isPath) {
    const local = modulePart.startsWith('file:') ? new URL(modulePart).pathname : modulePart;
    const path = find(local);
    if (path === undefined) return { error: `module '${modulePart}' not found` };
    return { kind: 'module', spec, path, exportName };
  }
  try {
    const path = createRequire(`${baseDir}/`).resolve(modulePart);
    return { kind: 'module', spec, path, exportName };
  } catch {
    return { error: `module '${modulePart}' cannot be resolved (a relative path must start with ./)` };
  }
}

/**
 * The handler registry: built-ins, plus every `pipeline_handlers` entry resolved. Entries that
 * cannot be resolved are reported at their line in winchester.yaml and left out.
 */
export function buildHandlerRegistry(
  entries: Readonly<Record<string, string>>,
  opts: {
    file: string;
    pos: (name: string) => Pos | undefined;
    problems: Problems;
    find: FileFinder;
    baseDir: string;
  },
): ReadonlyMap<string, HandlerRef> {
  const registry = new Map<string, HandlerRef>();
  for (const name of BUILTIN_HANDLERS) registry.set(name, { kind: 'builtin', name });
  for (const [name, spec] of Object.entries(entries)) {
    const ref = resolveHandlerSpec(spec, opts.find, opts.baseDir);
    if ('error' in ref) {
      opts.problems.error(opts.file, opts.pos(name), `pipeline_handlers.${name}: ${ref.error}`);
      continue;
    }
    registry.set(name, Object.freeze(ref));
  }
  return registry;
}

/**
 * Compiles the top-level node of pipelines.yaml. Each handler name must be in `handlers`, or be
 * one of the reference's Python class paths for a built-in.
 */
export function compilePipelines(
  root: YNode | null,
  opts: { file: string; problems: Problems; handlers: ReadonlyMap<string, HandlerRef> },
): PipelineDefinitions {
  const { file, problems, handlers } = opts;
  const out = new Map<string, PipelineDefinition>();
  if (root === null || (root.kind === 'scalar' && root.value === null)) {
    problems.warn(file, undefined, 'the file defines no pipelines');
    return out;
  }
  if (root.kind !== 'map') {
    problems.error(
      file,
      root.pos,
      `pipelines must be a mapping of pipeline name: list of handlers, not ${describe(root)}`,
    );
    return out;
  }
  for (const entry of root.entries) {
    const where = `pipeline '${entry.key}'`;
    const list = entry.value;
    if (list.kind === 'scalar' && list.value === null) {
      problems.warn(
        file,
        entry.keyPos,
        `${where} has no handlers: its streams complete without doing anything`,
      );
      out.set(entry.key, Object.freeze({ name: entry.key, handlers: Object.freeze([]) }));
      continue;
    }
    if (list.kind !== 'seq') {
      problems.error(file, list.pos, `${where} must be a list of handlers, not ${describe(list)}`);
      continue;
    }
    if (list.items.length === 0) {
      problems.warn(file, list.pos, `${where} has no handlers: its streams complete without doing anything`);
    }
    const steps: HandlerConfig[] = [];
    let ok = true;
    for (const item of list.items) {
      const step = compileStep(item, where, { file, problems, handlers });
      if (step) steps.push(step);
      else ok = false;
    }
    if (ok) out.set(entry.key, Object.freeze({ name: entry.key, handlers: Object.freeze(steps) }));
  }
  return out;
}

function compileStep(
  item: YNode,
  where: string,
  opts: { file: string; problems: Problems; handlers: ReadonlyMap<string, HandlerRef> },
): HandlerConfig | undefined {
  const { file, problems, handlers } = opts;
  let nameNode: YNode | undefined;
  let params: Record<string, unknown> = {};
  if (item.kind === 'scalar') {
    nameNode = item;
  } else if (item.kind === 'map') {
    nameNode = item.get('name')?.value;
    if (nameNode === undefined) {
      problems.error(file, item.pos, `${where}: handler entry without 'name'`);
      return undefined;
    }
    for (const e of item.entries) {
      if (e.key === 'name' || e.key === 'params') continue;
      const near = closest(e.key, ['name', 'params']);
      if (near) problems.error(file, e.keyPos, `${where}: unknown key '${e.key}'; did you mean '${near}'?`);
      else problems.unknownKey(file, e.keyPos, `${where}: unknown key '${e.key}' in a handler entry`);
    }
    const p = item.get('params')?.value;
    if (p !== undefined && !(p.kind === 'scalar' && p.value === null)) {
      if (p.kind !== 'map') {
        problems.error(file, p.pos, `${where}: params must be a mapping, not ${describe(p)}`);
        return undefined;
      }
      params = toPlain(p) as Record<string, unknown>;
    }
  } else {
    problems.error(file, item.pos, `${where}: a handler is a name or {name, params}, not a list`);
    return undefined;
  }
  if (nameNode.kind !== 'scalar' || typeof nameNode.value !== 'string' || nameNode.value === '') {
    problems.error(file, nameNode.pos, `${where}: handler name must be a string, not ${describe(nameNode)}`);
    return undefined;
  }
  const name = nameNode.value;
  let handler = handlers.get(name);
  if (handler === undefined) {
    const alias = PYTHON_HANDLER_ALIASES[name];
    if (alias !== undefined) handler = { kind: 'builtin', name: alias };
  }
  if (handler === undefined) {
    const near = closest(name, [...handlers.keys()]);
    problems.error(
      file,
      nameNode.pos,
      `${where}: unknown handler '${name}'${near ? `; did you mean '${near}'?` : ''} (built-ins: ${BUILTIN_HANDLERS.join(', ')}; others need a pipeline_handlers entry in winchester.yaml)`,
    );
    return undefined;
  }
  return Object.freeze({ name, handler, params: deepFreeze(params) });
}

/** Freezes a plain data structure in place, all the way down, and returns it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/** True when `path` names an existing regular file. */
export function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}
