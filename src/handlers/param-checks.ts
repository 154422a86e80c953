/**
 * Validation of a built-in handler's `params` (the mapping under `params:` in pipelines.yaml). Handlers
 * read every param through a {@link ParamReader} in their constructor, so a wrong type or a missing
 * required value stops the worker at start with a message naming the handler and the param, instead of
 * failing the first batch.
 */
import { WinchesterError } from '../errors.js';
import { compileEventTypes, type EventTypeMatcher, globError } from '../glob.js';
import type { Logger } from '../log.js';

/** A handler's params are unusable (wrong type, missing required value, value out of range). */
export class HandlerParamsError extends WinchesterError {
  /**
   * @param param the param at fault, when there is one (`winchester check` points at its line); absent
   * for problems of several params together.
   */
  constructor(
    message: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

type Params = Readonly<Record<string, unknown>>;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Number constraints of {@link ParamReader.number}. */
export interface NumberRule {
  /** Smallest accepted value (inclusive). */
  readonly min?: number;
  /** Whether 0 itself is refused even when `min` is 0 (durations that must be positive). */
  readonly positive?: boolean;
  readonly integer?: boolean;
}

/**
 * Typed access to one handler's params. A param given as YAML `null` counts as absent, as a Python
 * keyword default would treat `None` for the reference's optional params.
 */
export class ParamReader {
  constructor(
    /** The handler's name, used in messages (`webhook: param 'url' …`). */
    readonly handler: string,
    readonly params: Params,
  ) {}

  private value(name: string): unknown {
    return Object.hasOwn(this.params, name) ? this.params[name] : undefined;
  }

  private fail(name: string, problem: string): never {
    throw new HandlerParamsError(`${this.handler}: param '${name}' ${problem}`, name);
  }

  /** True when the param is present and not null. */
  has(name: string): boolean {
    const v = this.value(name);
    return v !== undefined && v !== null;
  }

  /** A string param, or undefined when absent. */
  string(name: string): string | undefined {
    const v = this.value(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') this.fail(name, `must be a string, not ${describe(v)}`);
    return v;
  }

  /** A string param that must be present and non-empty. */
  requiredString(name: string, why = 'is required'): string {
    const v = this.string(name);
    if (v === undefined || v.trim() === '') this.fail(name, why);
    return v;
  }

  /** A number param, or `fallback` when absent. */
  number(name: string, fallback: number, rule: NumberRule = {}): number {
    const v = this.value(name);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(name, `must be a number, not ${describe(v)}`);
    if (rule.integer === true && !Number.isInteger(v)) this.fail(name, `must be a whole number, not ${v}`);
    if (rule.min !== undefined && v < rule.min) this.fail(name, `must be at least ${rule.min}, not ${v}`);
    if (rule.positive === true && v <= 0) this.fail(name, `must be greater than 0, not ${v}`);
    return v;
  }

  /** A list of strings; a single string is read as a one-element list (as the reference does). */
  stringList(name: string): string[] | undefined {
    const v = this.value(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return [v];
    if (!Array.isArray(v)) this.fail(name, `must be a string or a list of strings, not ${describe(v)}`);
    return v.map((item, i) => {
      if (typeof item !== 'string') this.fail(name, `item ${i + 1} must be a string, not ${describe(item)}`);
      return item;
    });
  }

  /** A mapping of string to string (e.g. HTTP headers); numbers are accepted and written in decimal. */
  stringMap(name: string): Record<string, string> | undefined {
    const v = this.value(name);
    if (v === undefined || v === null) return undefined;
    if (!isMapping(v)) this.fail(name, `must be a mapping, not ${describe(v)}`);
    const out: Record<string, string> = {};
    for (const [key, item] of Object.entries(v)) {
      if (typeof item === 'string') out[key] = item;
      else if (typeof item === 'number' && Number.isFinite(item)) out[key] = String(item);
      else this.fail(name, `value of '${key}' must be a string, not ${describe(item)}`);
    }
    return out;
  }

  /**
   * An `event_types` rule: a glob or a list of globs (fnmatch, see src/glob.ts), where `!glob` excludes
   * and a list of only exclusions means "everything but". Undefined when absent.
   */
  eventTypes(name: string): EventTypeMatcher | undefined {
    const globs = this.stringList(name);
    if (globs === undefined) return undefined;
    if (globs.length === 0) this.fail(name, 'must list at least one glob');
    for (const g of globs) {
      const problem = globError(g.startsWith('!') ? g.slice(1) : g);
      if (problem !== undefined) this.fail(name, `has an invalid glob '${g}': ${problem}`);
    }
    return compileEventTypes(globs);
  }

  /** An http or https URL. */
  url(name: string): string {
    const v = this.requiredString(name);
    let parsed: URL;
    try {
      parsed = new URL(v);
    } catch {
      this.fail(name, `is not a URL: '${v}'`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      this.fail(name, `must be an http or https URL, not '${v}'`);
    return v;
  }

  /** One of a fixed set of strings, or `fallback` when absent. */
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const v = this.string(name);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v))
      this.fail(name, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, not '${v}'`);
    return v as T;
  }

  /** Names of params not in `known` (sorted), for a warning: the reference ignored unknown keywords. */
  unknown(known: ReadonlySet<string>): string[] {
    return Object.keys(this.params)
      .filter((k) => !known.has(k))
      .sort();
  }
}

// Handlers are created once per batch with the same (deeply frozen) params object of their pipeline
// step, so remembering the params objects already warned about turns "warn" into "warn once per
// configured step" without a process-wide registry; the entries go with the configuration.
const warned = new WeakMap<object, Set<string>>();

/**
 * Logs `msg` at warn level the first time it is asked for these `params` (the first batch a pipeline
 * step handles), and never again for the same step.
 */
export function warnOncePerStep(
  log: Logger,
  params: Params,
  key: string,
  msg: string,
  fields?: Record<string, unknown>,
): void {
  let keys = warned.get(params);
  if (keys === undefined) {
    keys = new Set();
    warned.set(params, keys);
  }
  if (keys.has(key)) return;
  keys.add(key);
  log('warn', msg, fields);
}
