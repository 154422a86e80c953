/**
 * Trait plugins: small functions that derive a trait's value from every field the trait's `fields`
 * matched. Two are built in (`split`, `bitfield`); users add their own as JS modules, named in
 * winchester.yaml's `distiller_trait_plugins` (or `winchester distill --plugin`).
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FieldMatch } from './jsonpath.js';
import { pyEquals, pyInt, pyStr } from './python.js';

export type { FieldMatch } from './jsonpath.js';

/**
 * A configured plugin instance: one per trait definition that uses it, created at load time.
 *
 * `traitValue` is called for every distilled notification — even when no field matched (then
 * `matches` is empty), so a plugin can supply a default. `matches` lists every non-null value the
 * trait's `fields` found, in order, as `[path, value]` where `path` is the dotted path of that
 * value with quotes removed (`payload.image_meta.org.openstack__1__os_distro`) and list indexes as
 * `[i]` steps (`payload.list.[0]`). Returning `null` or `undefined` leaves the trait out of the
 * event; any other value is converted to the trait's type (a string for `text`; a number, numeric
 * string or boolean for `int`/`float`; a datetime string or `Date` for `datetime`; `""` counts as
 * absent for the non-text types). Throwing marks the notification malformed (`plugin_error`).
 * It must be synchronous and should be fast: it is on the hot path.
 */
export interface TraitPlugin {
  traitValue(matches: readonly FieldMatch[]): unknown;
}

/**
 * Creates a plugin from the trait's `plugin.parameters` (an empty object when none are given).
 * Throw {@link PluginParameterError} (or any Error) for bad parameters: the message is reported
 * as a configuration problem at the trait's line.
 *
 * A user module may export either such a factory function or a class whose constructor takes the
 * parameters object and whose instances have `traitValue`.
 */
export type TraitPluginFactory = (parameters: Readonly<Record<string, unknown>>) => TraitPlugin;

/** Bad plugin parameters; reported as a configuration problem. */
export class PluginParameterError extends Error {
  override name = 'PluginParameterError';
}

/**
 * Names in `parameters` that a built-in plugin does not know; the reference ignores them, so they
 * only warn (a typo there silently changes nothing).
 */
export interface PluginWarnings {
  unknownParameters?: string[];
}

function unknownKeys(params: Readonly<Record<string, unknown>>, known: readonly string[]): string[] {
  return Object.keys(params).filter((k) => !known.includes(k));
}

function intParam(
  params: Readonly<Record<string, unknown>>,
  name: string,
  dflt: number | null,
): number | null {
  const v = params[name];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new PluginParameterError(`parameter '${name}' must be an integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Python's `str.split(sep, maxsplit)` with a non-empty separator; maxsplit < 0 means no limit. */
export function pySplit(s: string, sep: string, maxSplit: number | null): string[] {
  if (maxSplit === null || maxSplit < 0) return s.split(sep);
  const out: string[] = [];
  let from = 0;
  while (out.length < maxSplit) {
    const at = s.indexOf(sep, from);
    if (at < 0) break;
    out.push(s.slice(from, at));
    from = at + sep.length;
  }
  out.push(s.slice(from));
  return out;
}

/**
 * `split`: takes the first matched value as a string, splits it on `separator` (default `.`) at
 * most `max_split` times (default: no limit) and returns segment number `segment` (default 0;
 * negative counts from the end), or nothing when there is no such segment.
 * `publisher_id: compute.host-1` with `segment: 1, max_split: 1` gives `host-1`.
 */
export const splitPlugin: TraitPluginFactory = (params) => {
  const sep = params.separator ?? '.';
  if (typeof sep !== 'string' || sep === '') {
    throw new PluginParameterError(
      `parameter 'separator' must be a non-empty string, got ${JSON.stringify(sep)}`,
    );
  }
  const segment = intParam(params, 'segment', 0)!;
  const maxSplit = intParam(params, 'max_split', null);
  return {
    traitValue(matches) {
      const first = matches[0];
      if (first === undefined) return undefined;
      const parts = pySplit(pyStr(first[1]), sep, maxSplit);
      const i = segment < 0 ? parts.length + segment : segment;
      return i >= 0 && i < parts.length ? parts[i] : undefined;
    },
  };
};

interface BitFlag {
  path: string;
  bit: bigint;
  hasValue: boolean;
  value: unknown;
}

/**
 * `bitfield`: starts from `initial_bitfield` (default 0) and sets bit `bit` for each flag
 * `{path, bit, value?}` whose `path` was matched (with a value equal to `value`, when given).
 * Always returns a number, so the trait is present even when nothing matched.
 */
export const bitfieldPlugin: TraitPluginFactory = (params) => {
  const initial = intParam(params, 'initial_bitfield', 0)!;
  const rawFlags = params.flags ?? [];
  if (!Array.isArray(rawFlags)) throw new PluginParameterError(`parameter 'flags' must be a list`);
  const flags: BitFlag[] = rawFlags.map((f, i) => {
    if (typeof f !== 'object' || f === null || Array.isArray(f)) {
      throw new PluginParameterError(`flags[${i}] must be a mapping with 'path' and 'bit'`);
    }
    const flag = f as Record<string, unknown>;
    if (typeof flag.path !== 'string') throw new PluginParameterError(`flags[${i}].path must be a string`);
    let bit: number;
    try {
      bit = pyInt(flag.bit);
    } catch {
      throw new PluginParameterError(`flags[${i}].bit must be an integer, got ${JSON.stringify(flag.bit)}`);
    }
    if (bit < 0 || bit > 52) throw new PluginParameterError(`flags[${i}].bit must be between 0 and 52`);
    return {
      path: flag.path,
      bit: 1n << BigInt(bit),
      hasValue: Object.hasOwn(flag, 'value'),
      value: flag.value,
    };
  });
  const start = BigInt(initial);
  return {
    traitValue(matches) {
      // Later matches of the same path win, as when the reference builds a dict of them.
      const byPath = new Map<string, unknown>();
      for (const [p, v] of matches) byPath.set(p, v);
      let field = start;
      for (const f of flags) {
        if (!byPath.has(f.path)) continue;
        if (!f.hasValue || pyEquals(byPath.get(f.path), f.value)) field |= f.bit;
      }
      return Number(field);
    },
  };
};

/** The plugins every distiller knows, by the names the reference uses. */
export const builtinPlugins: Readonly<Record<string, TraitPluginFactory>> = Object.freeze({
  split: splitPlugin,
  bitfield: bitfieldPlugin,
});

/** Parameter names the built-in plugins accept (others are ignored, with a warning). */
export const builtinParameters: Readonly<Record<string, readonly string[]>> = Object.freeze({
  split: ['separator', 'segment', 'max_split'],
  bitfield: ['initial_bitfield', 'flags'],
});

export { unknownKeys };

/** Thrown when a user plugin module cannot be loaded; the message says which and why. */
export class PluginLoadError extends Error {
  override name = 'PluginLoadError';
}

function isClass(fn: unknown): fn is new (p: Readonly<Record<string, unknown>>) => TraitPlugin {
  if (typeof fn !== 'function') return false;
  if (/^class[\s{]/.test(Function.prototype.toString.call(fn))) return true;
  const proto = (fn as { prototype?: unknown }).prototype;
  return (
    typeof proto === 'object' && proto !== null && typeof (proto as TraitPlugin).traitValue === 'function'
  );
}

/**
 * Splits a plugin reference `MODULE[#EXPORT]` (default export `default`). MODULE is a file path
 * (relative to `baseDir`) or a package name.
 */
export function parsePluginRef(ref: string): { module: string; exportName: string } {
  const hash = ref.lastIndexOf('#');
  const module = hash < 0 ? ref : ref.slice(0, hash);
  const exportName = hash < 0 ? 'default' : ref.slice(hash + 1);
  return { module, exportName: exportName === '' ? 'default' : exportName };
}

/**
 * Imports user plugins: `refs` maps a plugin name to `MODULE[#EXPORT]`. Relative module paths are
 * resolved against `baseDir`. The export must be a factory function or a class (see
 * {@link TraitPluginFactory}). Rejects with {@link PluginLoadError} naming the plugin.
 */
export async function loadTraitPlugins(
  refs: Readonly<Record<string, string | ResolvedPluginRef>>,
  baseDir: string,
): Promise<Record<string, TraitPluginFactory>> {
  const out: Record<string, TraitPluginFactory> = {};
  for (const [name, given] of Object.entries(refs)) {
    if (typeof given === 'object' && given !== null) {
      out[name] = await importFactory(name, pathToFileURL(given.path).href, given.path, given.exportName);
      continue;
    }
    const ref = given;
    if (typeof ref !== 'string' || ref === '') {
      throw new PluginLoadError(`plugin '${name}': expected MODULE[#EXPORT], got ${JSON.stringify(ref)}`);
    }
    const { module, exportName } = parsePluginRef(ref);
    if (/^[\w.]+:\w+$/.test(module) && !module.includes('/')) {
      throw new PluginLoadError(
        `plugin '${name}': '${ref}' looks like a Python class path; write the plugin as a JS module and give MODULE[#EXPORT]`,
      );
    }
    const isPath = module.startsWith('.') || isAbsolute(module);
    const specifier = isPath ? pathToFileURL(resolve(baseDir, module)).href : module;
    out[name] = await importFactory(name, specifier, module, exportName);
  }
  return out;
}

/** A plugin module already resolved to a file (as winchester.yaml's loader does). */
export interface ResolvedPluginRef {
  /** Absolute path of the module file. */
  readonly path: string;
  /** The export to use (`default` for the default export). */
  readonly exportName: string;
}

async function importFactory(
  name: string,
  specifier: string,
  module: string,
  exportName: string,
): Promise<TraitPluginFactory> {
  {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(specifier)) as Record<string, unknown>;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new PluginLoadError(`plugin '${name}': cannot import '${module}': ${why}`, { cause: err });
    }
    const exp = mod[exportName];
    if (isClass(exp)) {
      const Cls = exp;
      return (p) => new Cls(p);
    }
    if (typeof exp === 'function') return exp as TraitPluginFactory;
    throw new PluginLoadError(
      `plugin '${name}': module '${module}' has no function or class export '${exportName}'`,
    );
  }
}
