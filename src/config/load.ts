/**
 * Loads winchester.yaml and everything it references (triggers.yaml, pipelines.yaml,
 * event_definitions.yaml, handler and plugin modules) into one deeply frozen
 * {@link WinchesterConfig}. Every problem in every file is collected first, then reported
 * together in one {@link ConfigError} with file, line and column.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { builtinPlugins, type Distiller, loadDistiller, type TraitPluginFactory } from '../distill/index.js';
import { ConfigError, type ConfigProblem } from '../errors.js';
import {
  buildHandlerRegistry,
  compilePipelines,
  deepFreeze,
  type HandlerRef,
  type PipelineDefinitions,
  resolveModuleSpec,
} from '../pipeline/definitions.js';
import { TimexEvalError } from '../timex/errors.js';
import { parseTimex } from '../timex/index.js';
import { type CompileContext, compileTimex } from '../triggers/criteria.js';
import { type CompiledTrigger, compileTriggers } from '../triggers/definition.js';
import { type Pos, Problems, sortProblems } from './problems.js';
import type { Settings } from './schema.js';
import { closest, ENV_SOURCE, readSettings } from './settings.js';
import { parseYaml, type YNode } from './yaml.js';

/** A JS module export named in configuration, resolved to an existing file (imported later). */
export interface ModuleRef {
  readonly spec: string;
  readonly path: string;
  readonly exportName: string;
}

/** A distiller trait plugin of winchester.yaml: a JS module, or a built-in named by its Python path. */
export type TraitPluginRef =
  | ({ readonly kind: 'module' } & ModuleRef)
  | { readonly kind: 'builtin'; readonly name: 'split' | 'bitfield' };

/** The stackdistiller class paths of the built-in plugins, so existing winchester.yaml files load. */
export const PYTHON_TRAIT_PLUGIN_ALIASES: Readonly<Record<string, 'split' | 'bitfield'>> = Object.freeze({
  'stackdistiller.trait_plugins:SplitterTraitPlugin': 'split',
  'stackdistiller.trait_plugins:BitfieldTraitPlugin': 'bitfield',
});

export interface LoadConfigOptions {
  /** Environment variables for overrides (default: none; the CLI passes process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Directory file names in problems are shown relative to (default: process.cwd()). */
  readonly cwd?: string;
  /**
   * What a key nothing reads (and no near miss of a known one) is: `warn` (default; the reference ignores
   * such keys) or `error` (`winchester check`).
   */
  readonly unknownKeys?: 'warn' | 'error';
}

/** The absolute paths of the files winchester.yaml referenced (null when not configured). */
export interface ConfigFiles {
  readonly config: string;
  readonly distillerConfig: string | null;
  readonly triggerDefinitions: string | null;
  readonly pipelineConfig: string | null;
}

/** Everything winchester.yaml describes, validated and compiled; deeply frozen. */
export interface WinchesterConfig {
  readonly files: ConfigFiles;
  /** Directories relative file names were searched in, in order (config_path, then the file's own directory). */
  readonly configPath: readonly string[];
  readonly settings: Settings;
  readonly triggers: readonly CompiledTrigger[];
  readonly pipelines: PipelineDefinitions;
  /** Handler name → implementation (built-ins plus pipeline_handlers). */
  readonly handlers: ReadonlyMap<string, HandlerRef>;
  /** distiller_trait_plugins, resolved. */
  readonly traitPlugins: ReadonlyMap<string, TraitPluginRef>;
  /** The distiller built from distiller_config; null when there is none. */
  readonly distiller: Distiller | null;
  /** Number of event definitions the distiller searches (with the catch-all, if added); 0 without one. */
  readonly eventDefinitionCount: number;
  /** Non-fatal findings: unknown keys, settings of the reference that have no effect here, … */
  readonly warnings: readonly ConfigProblem[];
}

/** The compile context for triggers with the real timex implementation. */
export function triggerContext(file: string, problems: Problems): CompileContext {
  return { file, problems, parseTimex, isEvalError: (err) => err instanceof TimexEvalError };
}

/**
 * Loads winchester.yaml at `path` (relative to `options.cwd`) and everything it references.
 * Throws a {@link ConfigError} listing every problem; never anything else for bad configuration.
 */
export async function loadConfig(path: string, options: LoadConfigOptions = {}): Promise<WinchesterConfig> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? {};
  const configFile = resolve(cwd, path);
  const show = (abs: string): string => {
    const rel = relative(cwd, abs);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
  };
  const problems = new Problems({ unknownKeys: options.unknownKeys ?? 'warn' });
  const mainName = show(configFile);

  const text = await readText(configFile);
  if (typeof text !== 'string') throw new ConfigError([{ file: mainName, message: text.error }]);
  const { root } = parseYaml(text, mainName, problems);
  const { settings, fromEnv } = readSettings(root, mainName, env, problems);
  const posOf = (...keys: string[]): Pos | undefined => nodeAt(root, keys)?.pos;
  // Where a key is written (for problems about a whole section, the section's own line).
  const keyPosOf = (...keys: string[]): Pos | undefined => {
    const parent = nodeAt(root, keys.slice(0, -1));
    return parent?.kind === 'map' ? parent.get(keys[keys.length - 1] as string)?.keyPos : undefined;
  };

  // config_path: relative entries are taken from winchester.yaml's directory, which is searched last.
  const baseDir = dirname(configFile);
  const configPath: string[] = [];
  settings.config_path.forEach((dir, i) => {
    const abs = resolve(baseDir, dir);
    if (!isDirectory(abs)) {
      const p =
        nodeAt(root, ['config_path'])?.kind === 'seq'
          ? posOf('config_path', String(i))
          : posOf('config_path');
      problems.warn(mainName, p, `config_path: directory ${abs} does not exist`);
    }
    if (!configPath.includes(abs)) configPath.push(abs);
  });
  if (!configPath.includes(baseDir)) configPath.push(baseDir);
  const find = (name: string): string | undefined => {
    if (isAbsolute(name)) return isRegularFile(name) ? name : undefined;
    for (const dir of configPath) {
      const candidate = join(dir, name);
      if (isRegularFile(candidate)) return candidate;
    }
    return undefined;
  };
  const locate = (key: 'distiller_config' | 'trigger_definitions' | 'pipeline_config'): string | null => {
    const name = settings[key];
    if (name === null) return null;
    const found = find(name);
    if (found === undefined) {
      const searched = isAbsolute(name) ? '' : ` (searched ${configPath.join(', ')})`;
      problems.error(mainName, posOf(key), `${key}: file '${name}' not found${searched}`);
      return null;
    }
    return found;
  };

  // Handlers and trait plugins.
  const handlers = buildHandlerRegistry(settings.pipeline_handlers, {
    file: mainName,
    pos: (name) => posOf('pipeline_handlers', name),
    problems,
    find,
    baseDir,
  });
  const traitPlugins = new Map<string, TraitPluginRef>();
  for (const [name, spec] of Object.entries(settings.distiller_trait_plugins)) {
    const builtin = PYTHON_TRAIT_PLUGIN_ALIASES[spec.trim()];
    if (builtin !== undefined) {
      traitPlugins.set(name, Object.freeze({ kind: 'builtin', name: builtin }));
      continue;
    }
    const ref = resolveModuleSpec(spec, find, baseDir);
    if ('error' in ref) {
      problems.error(
        mainName,
        posOf('distiller_trait_plugins', name),
        `distiller_trait_plugins.${name}: ${ref.error}`,
      );
    } else {
      traitPlugins.set(
        name,
        Object.freeze({ kind: 'module', spec: ref.spec, path: ref.path, exportName: ref.exportName }),
      );
    }
  }

  // Other cross-field checks.
  // trim_events_age is a timex: from the file, point at the character; from the environment, name it.
  const trimEnv = fromEnv.get('trim_events_age');
  const trimNode = nodeAt(root, ['trim_events_age']);
  if (trimEnv === undefined && trimNode !== undefined) {
    compileTimex(trimNode, triggerContext(mainName, problems), 'trim_events_age');
  } else {
    try {
      parseTimex(settings.trim_events_age);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      problems.error(ENV_SOURCE, undefined, `${trimEnv}: invalid time expression: ${message}`);
    }
  }
  if (settings.trim_events) {
    problems.warn(
      fromEnv.has('trim_events') ? ENV_SOURCE : mainName,
      fromEnv.has('trim_events') ? undefined : keyPosOf('trim_events'),
      "trim_events is not implemented here and has no effect: a stream's events are deleted with it when " +
        'its pipeline completes (purge_completed_streams); streams left in error keep theirs until retried',
    );
  }
  // A batch redelivered after its outbox row was pruned is skipped by its completion mark; the other
  // order would dead-letter it as a missing reference.
  const retention = settings.retention;
  if (retention.published_outbox > retention.completed_batches) {
    const envVar = fromEnv.get('retention.published_outbox');
    problems.error(
      envVar === undefined ? mainName : ENV_SOURCE,
      envVar === undefined ? (posOf('retention', 'published_outbox') ?? keyPosOf('retention')) : undefined,
      `${envVar ?? 'retention.published_outbox'} (${retention.published_outbox} s) must not exceed ` +
        `retention.completed_batches (${retention.completed_batches} s): a completion mark must outlive the ` +
        'outbox row of its batch',
    );
  }
  const sasl = settings.kafka.sasl;
  if (sasl.mechanism !== 'none' && (sasl.username === null || sasl.password === null)) {
    problems.error(
      mainName,
      keyPosOf('kafka', 'sasl') ?? keyPosOf('kafka'),
      `kafka.sasl: mechanism ${sasl.mechanism} needs a username and a password`,
    );
  }

  // Values that parse but cannot work. A problem names the environment variable when the value
  // came from there, and never echoes a URL (it may hold a password).
  const where = (...keys: string[]): [string, Pos | undefined, string] => {
    const envVar = fromEnv.get(keys.join('.'));
    return envVar === undefined
      ? [mainName, posOf(...keys), keys.join('.')]
      : [ENV_SOURCE, undefined, envVar];
  };
  const dbUrl = settings.database.url;
  if (dbUrl !== null) {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(dbUrl)?.[1]?.toLowerCase();
    const [file, pos, name] = where('database', 'url');
    if (scheme === undefined) {
      problems.error(file, pos, `${name}: not a URL (expected postgres://user:password@host:5432/database)`);
    } else if (scheme !== 'postgres' && scheme !== 'postgresql') {
      problems.error(
        file,
        pos,
        `${name}: ${scheme}:// is not supported; winchester on Kafka keeps its state in PostgreSQL (postgres://…)`,
      );
    }
  }
  settings.kafka.brokers.forEach((broker, i) => {
    if (/^(?:\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}$/.test(broker)) return;
    const [file, , name] = where('kafka', 'brokers');
    const node = nodeAt(root, ['kafka', 'brokers']);
    const pos = file === ENV_SOURCE ? undefined : node?.kind === 'seq' ? node.items[i]?.pos : node?.pos;
    problems.error(file, pos, `${name}: broker ${JSON.stringify(broker)} must be host:port`);
  });
  if (settings.kafka.brokers.length === 0) {
    const [file, pos, name] = where('kafka', 'brokers');
    problems.error(file, pos, `${name}: at least one broker is needed`);
  }
  const registry = settings.schema_registry.url;
  if (registry !== null && !/^https?:\/\/[^\s/]+/i.test(registry)) {
    const [file, pos, name] = where('schema_registry', 'url');
    problems.error(file, pos, `${name}: expected an http:// or https:// URL`);
  }
  const sr = settings.schema_registry;
  if ((sr.username === null) !== (sr.password === null)) {
    const [file, pos, name] = where('schema_registry', sr.username === null ? 'password' : 'username');
    problems.error(file, pos, `${name}: basic auth needs both schema_registry.username and password`);
  }
  if (sr.timeout <= 0) {
    const [file, pos, name] = where('schema_registry', 'timeout');
    problems.error(file, pos, `${name}: must be more than 0 seconds`);
  }

  // Pipelines. `declared` holds every pipeline name the file has, even those with errors, so a
  // broken pipeline is reported once (where it is) and not again by each trigger naming it.
  const pipelineFile = locate('pipeline_config');
  let pipelines: PipelineDefinitions = new Map();
  let declared: ReadonlySet<string> | null = null;
  if (pipelineFile !== null) {
    const loaded = await readYamlFile(pipelineFile, show(pipelineFile), problems);
    if (loaded !== undefined) {
      pipelines = compilePipelines(loaded, { file: show(pipelineFile), problems, handlers });
      declared = new Set(loaded?.kind === 'map' ? loaded.entries.map((e) => e.key) : []);
    }
  } else if (settings.pipeline_config === null) {
    declared = new Set();
  }

  // Triggers, and the pipelines they name.
  const triggerFile = locate('trigger_definitions');
  let triggers: CompiledTrigger[] = [];
  if (triggerFile !== null) {
    const shown = show(triggerFile);
    const loaded = await readYamlFile(triggerFile, shown, problems);
    const pipelineProblem = (name: string): string | undefined => {
      if (declared === null || declared.has(name)) return undefined;
      const where =
        pipelineFile === null ? '(winchester.yaml sets no pipeline_config)' : `in ${show(pipelineFile)}`;
      const near = closest(name, [...declared]);
      return `is not defined ${where}${near ? `; did you mean '${near}'?` : ''}`;
    };
    if (loaded !== undefined) {
      triggers = compileTriggers(loaded, { ...triggerContext(shown, problems), pipelineProblem });
    }
  }

  // Event definitions (the distiller). Its problems name the absolute path it was given: show
  // them like ours.
  const distillerFile = locate('distiller_config');
  let distiller: Distiller | null = null;
  if (distillerFile !== null) {
    const shown = show(distillerFile);
    const rename = (p: ConfigProblem): ConfigProblem =>
      p.file === distillerFile ? { ...p, file: shown } : p;
    const pluginModules: Record<string, string> = {};
    const plugins: Record<string, TraitPluginFactory> = {};
    for (const [name, ref] of traitPlugins) {
      if (ref.kind === 'module') pluginModules[name] = `${ref.path}#${ref.exportName}`;
      else plugins[name] = builtinPlugins[ref.name] as TraitPluginFactory;
    }
    // A plugin already reported as unresolvable above stands in as a no-op so the definitions that
    // use it are still checked without a second "no plugin named" problem; the load fails anyway.
    for (const name of Object.keys(settings.distiller_trait_plugins)) {
      if (!traitPlugins.has(name)) plugins[name] = () => ({ traitValue: () => null });
    }
    try {
      distiller = await loadDistiller(distillerFile, {
        catchAll: settings.catch_all_notifications,
        pluginModules,
        plugins,
      });
      problems.warnings.push(...distiller.warnings.map(rename));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.errors.push(...err.problems.map(rename));
    }
  }

  problems.throwIfAny();
  const handlerMap = frozenMap(handlers);
  return deepFreezeConfig({
    files: {
      config: configFile,
      distillerConfig: distillerFile,
      triggerDefinitions: triggerFile,
      pipelineConfig: pipelineFile,
    },
    configPath,
    settings,
    triggers,
    pipelines: frozenMap(pipelines),
    handlers: handlerMap,
    traitPlugins: frozenMap(traitPlugins),
    distiller,
    eventDefinitionCount: distiller?.definitions.length ?? 0,
    warnings: sortProblems(problems.warnings),
  });
}

/** Freezes the plain-data parts; the distiller and the compiled triggers freeze themselves. */
function deepFreezeConfig(c: WinchesterConfig): WinchesterConfig {
  deepFreeze(c.files);
  deepFreeze(c.configPath);
  deepFreeze(c.settings);
  deepFreeze(c.warnings);
  Object.freeze(c.triggers);
  return Object.freeze(c);
}

/** A Map that refuses changes, so the frozen config cannot be altered through its maps either. */
class FrozenMap<K, V> extends Map<K, V> {
  #sealed = false;
  constructor(entries: Iterable<readonly [K, V]>) {
    // Map's constructor would call the overridden set() before #sealed exists: fill afterwards.
    super();
    for (const [k, v] of entries) super.set(k, v);
    this.#sealed = true;
    Object.freeze(this);
  }
  override set(key: K, value: V): this {
    if (this.#sealed) throw new TypeError('configuration is frozen');
    return super.set(key, value);
  }
  override delete(): boolean {
    throw new TypeError('configuration is frozen');
  }
  override clear(): void {
    throw new TypeError('configuration is frozen');
  }
}

function frozenMap<K, V>(m: ReadonlyMap<K, V>): ReadonlyMap<K, V> {
  return new FrozenMap(m.entries());
}

async function readText(path: string): Promise<string | { error: string }> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { error: 'file not found' };
    if (code === 'EISDIR') return { error: 'is a directory, not a file' };
    if (code === 'EACCES') return { error: 'permission denied' };
    return { error: `cannot read: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Reads and parses a referenced YAML file; undefined (with a problem) when unreadable or not YAML. */
async function readYamlFile(
  path: string,
  shown: string,
  problems: Problems,
): Promise<YNode | null | undefined> {
  const text = await readText(path);
  if (typeof text !== 'string') {
    problems.error(shown, undefined, text.error);
    return undefined;
  }
  const before = problems.errors.length;
  const { root } = parseYaml(text, shown, problems);
  return problems.errors.length > before ? undefined : root;
}

/** The node at a path of keys (list indexes as strings) under `root`. */
function nodeAt(root: YNode | null, keys: readonly string[]): YNode | undefined {
  let node: YNode | undefined = root ?? undefined;
  for (const k of keys) {
    if (node === undefined) return undefined;
    if (node.kind === 'map') node = node.get(k)?.value;
    else if (node.kind === 'seq') node = node.items[Number(k)];
    else return undefined;
  }
  return node;
}

function isDirectory(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

function isRegularFile(p: string): boolean {
  return existsSync(p) && statSync(p).isFile();
}

export { ENV_SOURCE };
