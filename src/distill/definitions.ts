/**
 * Validates and compiles event_definitions.yaml into matchers and trait extractors, once, at load
 * time: globs become predicates, field paths become selectors, plugins are instantiated. Every
 * problem is collected (with its line) before failing, so a user fixes them all in one go.
 */
import type { ConfigProblem } from '../errors.js';
import { compileEventTypes, type EventTypeMatcher, globError } from '../glob.js';
import type { TraitType } from '../model/event.js';
import { compileFields, type FieldSelector, JsonPathError } from './jsonpath.js';
import { builtinParameters, builtinPlugins, type TraitPlugin, type TraitPluginFactory } from './plugins.js';

/** Where problems are reported: a YAML file with positions, or a plain value with none. */
export interface ProblemSink {
  problem(message: string, container?: object, key?: string | number): ConfigProblem;
}

/** One trait of a definition, ready to extract. */
export interface CompiledTrait {
  readonly name: string;
  readonly type: TraitType;
  /** The `fields` paths as written (for messages). */
  readonly paths: readonly string[];
  readonly fields: FieldSelector;
  /** The configured plugin instance, if the trait has one. */
  readonly plugin?: TraitPlugin;
  readonly pluginName?: string;
}

/** One entry of the definitions file. */
export interface CompiledDefinition {
  /** Position of the entry in the file, 0-based (the file is searched from the last entry). */
  readonly index: number;
  /** The event_type rule as written. */
  readonly eventTypes: readonly string[];
  readonly matcher: EventTypeMatcher;
  /** Default traits first, then the definition's own (an own trait replaces a default in place). */
  readonly traits: readonly CompiledTrait[];
  /** True for the catch-all added by `catch_all_notifications` (not in the file). */
  readonly synthetic?: boolean;
}

const TRAIT_TYPES: readonly TraitType[] = ['text', 'int', 'float', 'datetime'];

/** Trait names the event envelope owns; a trait with one of these names could never be seen. */
export const RESERVED_TRAIT_NAMES: readonly string[] = ['message_id', 'event_type', 'timestamp'];

/** The traits every definition gets unless it defines a trait of the same name (as the reference). */
export const DEFAULT_TRAITS: Readonly<Record<string, { type: TraitType; fields: readonly string[] }>> = {
  service: { type: 'text', fields: ['publisher_id'] },
  request_id: { type: 'text', fields: ['_context_request_id'] },
  tenant_id: { type: 'text', fields: ['payload.tenant_id', '_context_tenant'] },
};

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

const show = (v: unknown) => JSON.stringify(v) ?? String(v);

/** Compilation output: definitions in search order (last file entry first), problems, warnings. */
export interface CompileOutput {
  definitions: CompiledDefinition[];
  problems: ConfigProblem[];
  warnings: ConfigProblem[];
}

/** Options of {@link compileDefinitions}. */
export interface CompileOptions {
  /** Plugins by name; the built-ins `split` and `bitfield` are always there unless overridden. */
  plugins?: Readonly<Record<string, TraitPluginFactory>>;
  /** Add a `*` definition with only the default traits when no definition is a catch-all. */
  catchAll?: boolean;
}

function compileDefaultTraits(): CompiledTrait[] {
  return Object.entries(DEFAULT_TRAITS).map(([name, d]) => ({
    name,
    type: d.type,
    paths: d.fields,
    fields: compileFields(d.fields),
  }));
}

/** Validates and compiles the parsed definitions file (the value of the whole YAML document). */
export function compileDefinitions(
  value: unknown,
  sink: ProblemSink,
  options: CompileOptions = {},
): CompileOutput {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const plugins: Record<string, TraitPluginFactory> = { ...builtinPlugins, ...(options.plugins ?? {}) };
  const defaults = compileDefaultTraits();
  const compiled: CompiledDefinition[] = [];

  let entries: unknown[];
  if (value === null || value === undefined) {
    entries = []; // an empty file: no definitions
  } else if (!Array.isArray(value)) {
    problems.push(
      sink.problem(
        'the event definitions must be a list of {event_type, traits} entries',
        isMapping(value) ? value : undefined,
      ),
    );
    entries = [];
  } else {
    entries = value;
  }

  const compileTrait = (
    name: string,
    cfg: unknown,
    owner: Record<string, unknown>,
  ): CompiledTrait | undefined => {
    const here = `trait '${name}'`;
    if (!isMapping(cfg)) {
      problems.push(
        sink.problem(
          `${here}: expected a mapping with 'fields' (and optional 'type', 'plugin'), got ${show(cfg)}`,
          owner,
          name,
        ),
      );
      return undefined;
    }
    let ok = true;
    for (const k of Object.keys(cfg)) {
      if (k !== 'fields' && k !== 'type' && k !== 'plugin')
        warnings.push(sink.problem(`${here}: unknown key '${k}' ignored`, cfg, k));
    }
    const typeName = cfg.type ?? 'text';
    if (typeof typeName !== 'string' || !TRAIT_TYPES.includes(typeName as TraitType)) {
      problems.push(
        sink.problem(
          `${here}: invalid type ${show(typeName)} (expected one of ${TRAIT_TYPES.join(', ')})`,
          cfg,
          'type',
        ),
      );
      ok = false;
    }
    let paths: string[] = [];
    const f = cfg.fields;
    if (f === undefined || f === null) {
      problems.push(sink.problem(`${here}: 'fields' is required`, cfg));
      ok = false;
    } else if (typeof f === 'string') {
      paths = [f];
    } else if (Array.isArray(f) && f.length > 0 && f.every((p) => typeof p === 'string')) {
      paths = f as string[];
    } else {
      problems.push(
        sink.problem(`${here}: 'fields' must be a path or a non-empty list of paths`, cfg, 'fields'),
      );
      ok = false;
    }
    let fields: FieldSelector | undefined;
    if (paths.length > 0) {
      const pathProblems: string[] = [];
      for (const p of paths) {
        try {
          compileFields([p]);
        } catch (err) {
          if (!(err instanceof JsonPathError)) throw err;
          pathProblems.push(`${here}: invalid path ${show(p)}: ${err.message} (column ${err.column})`);
        }
      }
      if (pathProblems.length > 0) {
        for (const m of pathProblems) problems.push(sink.problem(m, cfg, 'fields'));
        ok = false;
      } else {
        fields = compileFields(paths);
      }
    }
    let plugin: TraitPlugin | undefined;
    let pluginName: string | undefined;
    if (cfg.plugin !== undefined && cfg.plugin !== null) {
      let params: Record<string, unknown> = {};
      const pc = cfg.plugin;
      if (typeof pc === 'string') {
        pluginName = pc;
      } else if (isMapping(pc) && typeof pc.name === 'string') {
        pluginName = pc.name;
        if (pc.parameters !== undefined && pc.parameters !== null) {
          if (isMapping(pc.parameters)) params = pc.parameters;
          else {
            problems.push(sink.problem(`${here}: plugin 'parameters' must be a mapping`, pc, 'parameters'));
            ok = false;
          }
        }
        for (const k of Object.keys(pc)) {
          if (k !== 'name' && k !== 'parameters')
            warnings.push(sink.problem(`${here}: unknown plugin key '${k}' ignored`, pc, k));
        }
      } else {
        problems.push(
          sink.problem(
            `${here}: plugin specified, but no plugin name given`,
            isMapping(pc) ? pc : cfg,
            isMapping(pc) ? undefined : 'plugin',
          ),
        );
        ok = false;
      }
      if (pluginName !== undefined) {
        const factory = Object.hasOwn(plugins, pluginName) ? plugins[pluginName] : undefined;
        if (!factory) {
          const known = Object.keys(plugins).sort().join(', ');
          problems.push(
            sink.problem(`${here}: no plugin named '${pluginName}' (known: ${known})`, cfg, 'plugin'),
          );
          ok = false;
        } else {
          const builtin = builtinPlugins[pluginName] === factory ? builtinParameters[pluginName] : undefined;
          if (builtin) {
            for (const k of Object.keys(params)) {
              if (!builtin.includes(k))
                warnings.push(
                  sink.problem(`${here}: plugin '${pluginName}' ignores unknown parameter '${k}'`, params, k),
                );
            }
          }
          try {
            const instance = factory(params);
            if (
              typeof instance !== 'object' ||
              instance === null ||
              typeof instance.traitValue !== 'function'
            ) {
              throw new Error(
                'the plugin factory did not return an object with a traitValue(matches) method',
              );
            }
            plugin = instance;
          } catch (err) {
            const why = err instanceof Error ? err.message : String(err);
            problems.push(sink.problem(`${here}: plugin '${pluginName}': ${why}`, cfg, 'plugin'));
            ok = false;
          }
        }
      }
    }
    if (!ok || !fields) return undefined;
    return {
      name,
      type: typeName as TraitType,
      paths,
      fields,
      ...(plugin ? { plugin, pluginName: pluginName! } : {}),
    };
  };

  entries.forEach((entry, index) => {
    const where = `definition #${index + 1}`;
    if (!isMapping(entry)) {
      problems.push(
        sink.problem(
          `${where}: expected a mapping with 'event_type' and 'traits', got ${show(entry)}`,
          value as object,
          index,
        ),
      );
      return;
    }
    for (const k of Object.keys(entry)) {
      if (k !== 'event_type' && k !== 'traits')
        warnings.push(sink.problem(`${where}: unknown key '${k}' ignored`, entry, k));
    }
    let ok = true;
    let types: string[] = [];
    const et = entry.event_type;
    if (et === undefined) {
      problems.push(sink.problem(`${where}: required key 'event_type' is missing`, entry));
      ok = false;
    } else if (typeof et === 'string' && et !== '') {
      types = [et];
    } else if (Array.isArray(et) && et.every((t) => typeof t === 'string' && t !== '')) {
      types = et as string[];
      if (types.length === 0)
        warnings.push(
          sink.problem(`${where}: an empty event_type list matches nothing`, entry, 'event_type'),
        );
    } else {
      problems.push(
        sink.problem(
          `${where}: 'event_type' must be a glob or a list of globs, got ${show(et)}`,
          entry,
          'event_type',
        ),
      );
      ok = false;
    }
    for (const t of types) {
      const bad = globError(t.startsWith('!') ? t.slice(1) : t);
      if (bad !== undefined) {
        problems.push(
          sink.problem(`${where}: invalid event_type glob ${JSON.stringify(t)}: ${bad}`, entry, 'event_type'),
        );
        ok = false;
      }
    }
    const traitsCfg = entry.traits;
    let ownTraits: Record<string, unknown> = {};
    if (!Object.hasOwn(entry, 'traits')) {
      problems.push(sink.problem(`${where}: required key 'traits' is missing`, entry));
      ok = false;
    } else if (traitsCfg === null) {
      ownTraits = {};
    } else if (isMapping(traitsCfg)) {
      ownTraits = traitsCfg;
    } else {
      problems.push(
        sink.problem(`${where}: 'traits' must be a mapping of trait name to definition`, entry, 'traits'),
      );
      ok = false;
    }
    const traits = new Map<string, CompiledTrait>(defaults.map((t) => [t.name, t]));
    for (const [name, cfg] of Object.entries(ownTraits)) {
      if (RESERVED_TRAIT_NAMES.includes(name)) {
        warnings.push(
          sink.problem(
            `${where}: trait '${name}' is ignored: the event's own ${name} always wins`,
            ownTraits,
            name,
          ),
        );
        continue;
      }
      const t = compileTrait(name, cfg, ownTraits);
      if (t) traits.set(name, t);
      else ok = false;
    }
    if (!ok) return;
    compiled.push({
      index,
      eventTypes: types,
      matcher: compileEventTypes(types),
      traits: [...traits.values()],
    });
  });

  // The file is searched from its last entry to its first.
  compiled.reverse();
  if (options.catchAll && !compiled.some((d) => d.matcher.isCatchAll)) {
    compiled.push({
      index: entries.length,
      eventTypes: ['*'],
      matcher: compileEventTypes(['*']),
      traits: defaults,
      synthetic: true,
    });
  }
  return { definitions: compiled, problems, warnings };
}
