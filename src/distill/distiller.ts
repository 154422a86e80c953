/**
 * The distiller: turns an OpenStack notification into a flat typed {@link Event} according to
 * event_definitions.yaml (SPEC §2). Pure and synchronous on the hot path; never throws on bad
 * input — every notification gets a {@link DistillResult}.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError, type ConfigProblem } from '../errors.js';
import type { Event, TraitValue } from '../model/event.js';
import { DatetimeError, type Instant, nowInstant } from '../timex/instant.js';
import { parseNotificationDatetime } from './datetime.js';
import {
  type CompiledDefinition,
  type CompiledTrait,
  type CompileOptions,
  compileDefinitions,
  type ProblemSink,
} from './definitions.js';
import {
  loadTraitPlugins,
  PluginLoadError,
  type ResolvedPluginRef,
  type TraitPluginFactory,
} from './plugins.js';
import { ConversionError, pyFloat, pyInt, pyStr } from './python.js';
import { parseYamlLocated } from './yaml-located.js';

/**
 * Why a notification could not be distilled: a small fixed set, usable as a metric label.
 * - `invalid_json`: the text is not JSON;
 * - `not_an_object`: the JSON is not an object;
 * - `bad_envelope`: an oslo.messaging envelope with an unsupported version or an unreadable
 *   `oslo.message`;
 * - `missing_event_type` / `missing_message_id`: absent, empty or not a string;
 * - `bad_timestamp`: `timestamp` (or `_context_timestamp`) is not a datetime;
 * - `bad_trait_value`: a trait's value cannot be converted to its type (`int` of `"abc"`, a bad
 *   datetime) — the reference fails the whole notification then, so do we;
 * - `plugin_error`: a trait plugin threw.
 */
export type MalformedReason =
  | 'invalid_json'
  | 'not_an_object'
  | 'bad_envelope'
  | 'missing_event_type'
  | 'missing_message_id'
  | 'bad_timestamp'
  | 'bad_trait_value'
  | 'plugin_error';

/** Every {@link MalformedReason}, for pre-registering metric label values. */
export const MALFORMED_REASONS: readonly MalformedReason[] = [
  'invalid_json',
  'not_an_object',
  'bad_envelope',
  'missing_event_type',
  'missing_message_id',
  'bad_timestamp',
  'bad_trait_value',
  'plugin_error',
];

/**
 * The outcome for one notification: an event; or `unmatched` (no definition covers its
 * event_type: drop and count it); or `malformed` with a bounded `reason` and a human `detail`
 * (dead-letter it).
 */
export type DistillResult =
  | { readonly ok: true; readonly event: Event }
  | { readonly ok: false; readonly kind: 'unmatched'; readonly eventType: string; readonly messageId: string }
  | {
      readonly ok: false;
      readonly kind: 'malformed';
      readonly reason: MalformedReason;
      readonly detail: string;
    };

/** Options of a {@link Distiller}. */
export interface DistillerOptions extends CompileOptions {
  /**
   * The clock for a notification that has neither `timestamp` nor `_context_timestamp` (the
   * reference stamps it with the current time). Default: the wall clock.
   */
  now?: () => Instant;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const clip = (s: string, n = 80) => (s.length > n ? `${s.slice(0, n)}…` : s);

/**
 * `clip(pyStr(v), n)` for an error detail, whatever `v` is: JSON.parse accepts any nesting depth, and a
 * value nested deeper than the stack allows (`[[[[…]]]]` 100k deep) must stay a malformed notification,
 * not become an exception that stalls the partition.
 */
function preview(v: unknown, n: number): string {
  try {
    return clip(pyStr(v), n);
  } catch {
    return Array.isArray(v)
      ? '[…] (a list nested too deep to show)'
      : '{…} (a mapping nested too deep to show)';
  }
}

function malformed(reason: MalformedReason, detail: string): DistillResult {
  return { ok: false, kind: 'malformed', reason, detail };
}

// NUL and the surrogate range: the only characters a JS string may hold that PostgreSQL (text and jsonb)
// refuses. Tested first because almost no text has any, so the exact checks below rarely run.
const SUSPECT_CHARS = /[\u0000\ud800-\udfff]/;

/**
 * Whether `s` can be stored as it is: no U+0000 and no unpaired surrogate (a checkpoint holding either
 * would fail forever and block its partition, so such input is refused at distill time instead).
 */
export function storableText(s: string): boolean {
  if (!SUSPECT_CHARS.test(s)) return true;
  if (s.includes('\u0000')) return false;
  // String.prototype.isWellFormed is Node 20's but not in this TypeScript lib: check pairs by hand.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff) return false; // a low surrogate with no high one before it
    const next = s.charCodeAt(i + 1);
    if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
    i++;
  }
  return true;
}

/** A trait failed; carries the reason so the loop stays free of result allocations. */
class TraitFailure {
  constructor(
    readonly reason: MalformedReason,
    readonly detail: string,
  ) {}
}

/** Converts a selected value to the trait's type; undefined means "absent". Throws ConversionError. */
function convert(trait: CompiledTrait, v: unknown): TraitValue | undefined {
  if (v === null || v === undefined) return undefined;
  switch (trait.type) {
    case 'text': {
      const text = typeof v === 'string' ? v : pyStr(v);
      if (!storableText(text)) {
        throw new ConversionError('holds U+0000 or an unpaired surrogate, which no event store can keep');
      }
      return { type: 'text', value: text };
    }
    case 'int':
      return v === '' ? undefined : { type: 'int', value: pyInt(v) };
    case 'float':
      return v === '' ? undefined : { type: 'float', value: pyFloat(v) };
    case 'datetime':
      if (v === '') return undefined;
      if (typeof v === 'string') return { type: 'datetime', value: parseNotificationDatetime(v) };
      if (v instanceof Date && !Number.isNaN(v.getTime()))
        return { type: 'datetime', value: v.getTime() * 1000 };
      throw new ConversionError(`not a datetime string: ${preview(v, 60)}`);
  }
}

// Event types are a small set in practice; the cap only bounds memory against hostile input.
const TYPE_CACHE_LIMIT = 4096;

/** Distills notifications with a compiled set of definitions; build one with {@link loadDistiller}. */
export class Distiller {
  /** Definitions in search order: the last entry of the file first (catch-all, if added, last). */
  readonly definitions: readonly CompiledDefinition[];
  /** How many entries the definitions file has (not counting a catch-all added by `catchAll`). */
  readonly definitionCount: number;
  /** Harmless oddities found while loading (unknown keys, ignored traits), with their lines. */
  readonly warnings: readonly ConfigProblem[];
  private readonly now: () => Instant;
  private readonly byType = new Map<string, CompiledDefinition | null>();

  constructor(
    definitions: readonly CompiledDefinition[],
    warnings: readonly ConfigProblem[],
    now?: () => Instant,
  ) {
    this.definitions = definitions;
    this.definitionCount = definitions.filter((d) => !d.synthetic).length;
    this.warnings = warnings;
    this.now = now ?? nowInstant;
  }

  /** The definition that governs an event type (the first match from the end of the file), if any. */
  definitionFor(eventType: string): CompiledDefinition | undefined {
    const cached = this.byType.get(eventType);
    if (cached !== undefined) return cached ?? undefined;
    let found: CompiledDefinition | null = null;
    for (const d of this.definitions) {
      if (d.matcher.test(eventType)) {
        found = d;
        break;
      }
    }
    if (this.byType.size >= TYPE_CACHE_LIMIT) this.byType.clear();
    this.byType.set(eventType, found);
    return found ?? undefined;
  }

  /** Distills a notification given as JSON text (a Kafka message, a line of input). */
  distillJson(text: string): DistillResult {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return malformed('invalid_json', err instanceof Error ? err.message : String(err));
    }
    return this.distill(parsed);
  }

  /**
   * Distills a parsed notification (or an oslo.messaging v2 envelope around one). Never throws
   * for any input value.
   */
  distill(notification: unknown): DistillResult {
    if (!isObject(notification)) {
      return malformed(
        'not_an_object',
        `a notification must be a JSON object, got ${preview(notification, 40)}`,
      );
    }
    let body = notification;
    if (Object.hasOwn(body, 'oslo.version')) {
      const unwrapped = unwrapEnvelope(body);
      if ('error' in unwrapped) return unwrapped.error;
      body = unwrapped.body;
    }
    const eventType = body.event_type;
    if (typeof eventType !== 'string' || eventType === '' || !storableText(eventType)) {
      return malformed('missing_event_type', `event_type is ${describeField(eventType)}`);
    }
    const messageId = body.message_id;
    if (typeof messageId !== 'string' || messageId === '' || !storableText(messageId)) {
      return malformed(
        'missing_message_id',
        `message_id is ${describeField(messageId)} (event_type ${eventType})`,
      );
    }
    const def = this.definitionFor(eventType);
    if (def === undefined) return { ok: false, kind: 'unmatched', eventType, messageId };

    let timestamp: Instant;
    const when = pickTimestamp(body);
    if (when === undefined) {
      timestamp = this.now();
    } else if (typeof when !== 'string') {
      return malformed(
        'bad_timestamp',
        `timestamp is not a string: ${preview(when, 40)} (message ${messageId})`,
      );
    } else {
      try {
        timestamp = parseNotificationDatetime(when);
      } catch (err) {
        return malformed('bad_timestamp', `${(err as Error).message} (message ${messageId})`);
      }
    }

    const traits: Record<string, TraitValue> = Object.create(null);
    const list = def.traits;
    for (let i = 0; i < list.length; i++) {
      const t = list[i]!;
      const r = extract(t, body);
      if (r instanceof TraitFailure) return malformed(r.reason, `${r.detail} (message ${messageId})`);
      if (r !== undefined) traits[t.name] = r;
    }
    return { ok: true, event: { message_id: messageId, event_type: eventType, timestamp, traits } };
  }
}

function describeField(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === '') return 'empty';
  if (typeof v === 'string')
    return `not storable text (it holds U+0000 or an unpaired surrogate): ${preview(v, 40)}`;
  return `not a string (${preview(v, 40)})`;
}

/** `timestamp`, else `_context_timestamp`; null and "" count as absent. */
function pickTimestamp(body: Record<string, unknown>): unknown {
  const t = body.timestamp;
  if (t !== undefined && t !== null && t !== '') return t;
  const c = body._context_timestamp;
  if (c !== undefined && c !== null && c !== '') return c;
  return undefined;
}

/** Unwraps `{"oslo.version": "2.x", "oslo.message": "<json>"}`; returns the body or a malformed result. */
function unwrapEnvelope(
  env: Record<string, unknown>,
): { body: Record<string, unknown> } | { error: DistillResult } {
  const bad = (r: MalformedReason, detail: string) => ({ error: malformed(r, detail) });
  const version = env['oslo.version'];
  if (typeof version !== 'string' || !/^2(\.\d+)?$/.test(version)) {
    return bad('bad_envelope', `unsupported oslo.messaging envelope version ${preview(version, 20)}`);
  }
  const inner = env['oslo.message'];
  if (typeof inner !== 'string') return bad('bad_envelope', 'oslo.message is missing or not a string');
  let parsed: unknown;
  try {
    parsed = JSON.parse(inner);
  } catch (err) {
    return bad('bad_envelope', `oslo.message is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) return bad('bad_envelope', 'oslo.message is not a JSON object');
  return { body: parsed };
}

function extract(t: CompiledTrait, body: Record<string, unknown>): TraitValue | undefined | TraitFailure {
  let raw: unknown;
  if (t.plugin) {
    try {
      raw = t.plugin.traitValue(t.fields.matches(body));
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return new TraitFailure(
        'plugin_error',
        `trait '${t.name}': plugin '${t.pluginName}' failed: ${clip(why, 200)}`,
      );
    }
  } else {
    raw = t.fields.first(body);
  }
  try {
    return convert(t, raw);
  } catch (err) {
    if (err instanceof ConversionError || err instanceof DatetimeError) {
      return new TraitFailure('bad_trait_value', `trait '${t.name}' (${t.type}): ${err.message}`);
    }
    const why = err instanceof Error ? err.message : String(err);
    return new TraitFailure('bad_trait_value', `trait '${t.name}' (${t.type}): ${why}`);
  }
}

/** A sink for definitions that did not come from a file: problems carry only the name given. */
function plainSink(file: string): ProblemSink {
  return { problem: (message) => ({ file, message }) };
}

/**
 * Builds a distiller from already-parsed definitions (a list of `{event_type, traits}`), e.g. in
 * tests or from another config format. Throws {@link ConfigError} listing every problem.
 */
export function createDistiller(
  definitions: unknown,
  options: DistillerOptions & { file?: string } = {},
): Distiller {
  return build(definitions, plainSink(options.file ?? '<definitions>'), options);
}

/**
 * Builds a distiller from the YAML text of an event_definitions file; problems name `file` and
 * the line. Throws {@link ConfigError}.
 */
export function distillerFromYaml(text: string, file: string, options: DistillerOptions = {}): Distiller {
  const doc = parseYamlLocated(text, file);
  return build(doc.value, doc, options);
}

function build(value: unknown, sink: ProblemSink, options: DistillerOptions): Distiller {
  const out = compileDefinitions(value, sink, options);
  if (out.problems.length > 0) throw new ConfigError(out.problems);
  return new Distiller(out.definitions, out.warnings, options.now);
}

/** Options of {@link loadDistiller}. */
export interface LoadDistillerOptions extends DistillerOptions {
  /**
   * User plugins to import, name → `MODULE[#EXPORT]` (winchester.yaml `distiller_trait_plugins`).
   * They join (and may replace) the built-ins and any factories given in `plugins`.
   */
  pluginModules?: Readonly<Record<string, string | ResolvedPluginRef>>;
  /** The file name shown in problems (default: `file` as given). */
  displayName?: string;
  /** Directory relative plugin module paths are resolved against; default: the definitions file's. */
  baseDir?: string;
}

/**
 * Reads, validates and compiles an event_definitions.yaml file, importing user plugin modules
 * first. Rejects with {@link ConfigError} (file, line and what is wrong) for any problem,
 * including an unreadable file or a plugin module that cannot be loaded.
 */
export async function loadDistiller(file: string, options: LoadDistillerOptions = {}): Promise<Distiller> {
  const shown = options.displayName ?? file;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError([{ file: shown, message: `cannot read event definitions: ${why}` }], {
      cause: err,
    });
  }
  let plugins: Record<string, TraitPluginFactory> = { ...(options.plugins ?? {}) };
  if (options.pluginModules && Object.keys(options.pluginModules).length > 0) {
    try {
      const loaded = await loadTraitPlugins(options.pluginModules, options.baseDir ?? dirname(file));
      plugins = { ...plugins, ...loaded };
    } catch (err) {
      if (err instanceof PluginLoadError)
        throw new ConfigError([{ file, message: err.message }], { cause: err });
      throw err;
    }
  }
  return distillerFromYaml(text, shown, { ...options, plugins });
}

/**
 * The distiller builder `loadConfig` expects (its `loadDistiller` option): event_definitions.yaml
 * with winchester.yaml's `catch_all_notifications` and resolved `distiller_trait_plugins`.
 */
export function configDistillerLoader(
  path: string,
  options: {
    readonly displayName: string;
    readonly catchAll: boolean;
    readonly plugins: ReadonlyMap<string, ResolvedPluginRef>;
  },
): Promise<Distiller> {
  return loadDistiller(path, {
    displayName: options.displayName,
    catchAll: options.catchAll,
    pluginModules: Object.fromEntries(options.plugins),
  });
}
