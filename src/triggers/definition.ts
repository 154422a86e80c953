/**
 * Compiles triggers.yaml into frozen {@link TriggerDefinition}s (the contract in types.ts).
 *
 * Matching follows the reference: every distinguishing trait named in distinguished_by must be
 * present, and the first match criterion that matches decides which `map_distinguished_by`
 * applies. A `{trait: timex}` entry of distinguished_by is evaluated with `$timestamp` = the
 * (mapped) trait's value, nothing else, giving a range (e.g. `day`) or a single datetime.
 */

import type { Pos } from '../config/problems.js';
import { closest } from '../config/settings.js';
import { describe, type YNode } from '../config/yaml.js';
import type { Event, TraitValue } from '../model/event.js';
import type { Instant } from '../timex/instant.js';
import { MAX_INSTANT, MIN_INSTANT, US_PER_DAY, US_PER_HOUR, US_PER_SECOND } from '../timex/instant.js';
import type { TimexExpression, TimexValue } from '../timex/types.js';
import {
  type CompileContext,
  type Criterion,
  checkKeys,
  compileCriterion,
  compileTimex,
  fieldGetter,
} from './criteria.js';
import { compareCodeUnits, type EncodedValue, EntryEncoder } from './key.js';
import type { DistinguishingValue, DistinguishingValues, TriggerDefinition, TriggerMatch } from './types.js';

const TRIGGER_KEYS = [
  'name',
  'debug_level',
  'distinguished_by',
  'expiration',
  'fire_pipeline',
  'expire_pipeline',
  'match_criteria',
  'fire_criteria',
  'load_criteria',
  'fire_delay',
];

/** One distinguished_by entry: a trait name, optionally with the timex applied to its value. */
interface DistinguishedBy {
  readonly name: string;
  readonly expr: TimexExpression | undefined;
}

/** Where a compiled trigger came from, and which pipelines it names (checked against pipelines.yaml). */
export interface TriggerSource {
  readonly file: string;
  readonly pos: Pos;
  readonly firePipelinePos: Pos | undefined;
  readonly expirePipelinePos: Pos | undefined;
}

/** A compiled trigger with the extras the loader and tools use beyond the engine contract. */
export interface CompiledTrigger extends TriggerDefinition {
  readonly matchCriteria: readonly Criterion[];
  readonly loadCriteria: readonly Criterion[];
  readonly source: TriggerSource;
}

type Getter = (e: Event) => TraitValue | undefined;

const MISSING: TriggerMatch = Object.freeze({ matched: false, reason: 'missing_distinguishing_trait' });
const NO_CRITERION: TriggerMatch = Object.freeze({ matched: false, reason: 'no_criterion_matched' });
const BAD_VALUE: TriggerMatch = Object.freeze({ matched: false, reason: 'bad_distinguishing_value' });

/**
 * Compiles the top-level node of triggers.yaml. Problems (all of them) go to `ctx.problems`;
 * the triggers that compiled cleanly are returned.
 */
export function compileTriggers(root: YNode | null, ctx: CompileContext): CompiledTrigger[] {
  if (root === null || (root.kind === 'scalar' && root.value === null)) {
    ctx.problems.warn(ctx.file, undefined, 'the file defines no triggers');
    return [];
  }
  if (root.kind !== 'seq') {
    ctx.problems.error(
      ctx.file,
      root.pos,
      `triggers must be a list of trigger definitions, not ${describe(root)}`,
    );
    return [];
  }
  const out: CompiledTrigger[] = [];
  const names = new Map<string, Pos>();
  for (const item of root.items) {
    const t = compileTrigger(item, ctx, names);
    if (t) out.push(t);
  }
  return out;
}

function compileTrigger(
  node: YNode,
  ctx: CompileContext,
  names: Map<string, Pos>,
): CompiledTrigger | undefined {
  const { problems, file } = ctx;
  if (node.kind !== 'map') {
    problems.error(file, node.pos, `a trigger definition must be a mapping, not ${describe(node)}`);
    return undefined;
  }
  const errorsBefore = problems.errors.length;

  const nameEntry = node.get('name');
  let name = '';
  if (nameEntry === undefined) {
    problems.error(file, node.pos, "trigger definition without 'name'");
  } else if (
    nameEntry.value.kind !== 'scalar' ||
    nameEntry.value.value === null ||
    typeof nameEntry.value.value === 'boolean' ||
    String(nameEntry.value.value).trim() === ''
  ) {
    problems.error(
      file,
      nameEntry.value.pos,
      `trigger name must be a non-empty string, not ${describe(nameEntry.value)}`,
    );
  } else {
    name = String(nameEntry.value.value);
    const first = names.get(name);
    if (first !== undefined) {
      problems.error(
        file,
        nameEntry.value.pos,
        `duplicate trigger name '${name}' (first defined at line ${first.line})`,
      );
    } else {
      names.set(name, nameEntry.value.pos);
    }
  }
  const where = name === '' ? 'trigger' : `trigger '${name}'`;
  checkKeys(node, TRIGGER_KEYS, ctx, where);

  // debug_level: 0 (off), 1 (match/mismatch counts), 2 (with reasons). The reference int()s it.
  let debugLevel: 0 | 1 | 2 = 0;
  const dl = node.get('debug_level');
  if (dl !== undefined) {
    const v = dl.value;
    const n =
      v.kind === 'scalar'
        ? typeof v.value === 'string' && /^\s*\d+\s*$/.test(v.value)
          ? Number(v.value)
          : v.value
        : undefined;
    if (n === 0 || n === 1 || n === 2) debugLevel = n;
    else problems.error(file, v.pos, `${where}: debug_level must be 0, 1 or 2, not ${describe(v)}`);
  }

  // distinguished_by
  const distinguishedBy: DistinguishedBy[] = [];
  const db = node.get('distinguished_by');
  if (db !== undefined && !(db.value.kind === 'scalar' && db.value.value === null)) {
    if (db.value.kind !== 'seq') {
      problems.error(
        file,
        db.value.pos,
        `${where}: distinguished_by must be a list of trait names or {trait: timex} mappings, not ${describe(db.value)}`,
      );
    } else {
      const seen = new Map<string, Pos>();
      for (const item of db.value.items) {
        const entry = compileDistinguishedBy(item, ctx, where);
        if (!entry) continue;
        if (entry.name === '__proto__') {
          // The values are a plain object keyed by name; this one name cannot be a key of it.
          problems.error(file, item.pos, `${where}: '__proto__' cannot be a distinguishing trait name`);
          continue;
        }
        const prev = seen.get(entry.name);
        if (prev !== undefined) {
          problems.error(
            file,
            item.pos,
            `${where}: distinguished_by lists '${entry.name}' twice (also at line ${prev.line})`,
          );
          continue;
        }
        seen.set(entry.name, item.pos);
        distinguishedBy.push(entry);
      }
    }
  }

  // expiration: required timex over $first and $last ($timestamp = now).
  let expiration: TimexExpression | undefined;
  const exp = node.get('expiration');
  if (exp === undefined) {
    problems.error(file, node.pos, `${where}: missing required 'expiration' (e.g. "$last + 1h")`);
  } else {
    expiration = compileTimex(exp.value, ctx, `${where}: expiration`);
    if (expiration) {
      const extra = [...expiration.variables].filter(
        (v) => v !== 'first' && v !== 'last' && v !== 'timestamp',
      );
      if (extra.length > 0) {
        problems.error(
          file,
          exp.value.pos,
          `${where}: expiration may only use $first, $last and $timestamp, not ${extra.map((v) => `$${v}`).join(', ')}`,
        );
      }
    }
  }

  // fire_pipeline / expire_pipeline: at least one. Absent or null means none; an empty name is an
  // error: the reference takes '' for a pipeline that does not exist and errors every stream at fire.
  const pipelineName = (key: string): { name: string | null; pos: Pos | undefined } => {
    const e = node.get(key);
    if (e === undefined || (e.value.kind === 'scalar' && e.value.value === null)) {
      return { name: null, pos: undefined };
    }
    if (e.value.kind === 'scalar' && typeof e.value.value === 'string' && e.value.value.trim() === '') {
      problems.error(
        file,
        e.value.pos,
        `${where}: ${key} is an empty pipeline name: name a pipeline of pipelines.yaml, or leave ${key} out`,
      );
      return { name: null, pos: e.value.pos };
    }
    if (e.value.kind !== 'scalar' || typeof e.value.value === 'boolean') {
      problems.error(file, e.value.pos, `${where}: ${key} must be a pipeline name, not ${describe(e.value)}`);
      return { name: null, pos: e.value.pos };
    }
    return { name: String(e.value.value), pos: e.value.pos };
  };
  const fire = pipelineName('fire_pipeline');
  const expire = pipelineName('expire_pipeline');
  for (const [key, p] of [
    ['fire_pipeline', fire],
    ['expire_pipeline', expire],
  ] as const) {
    const why = p.name === null ? undefined : ctx.pipelineProblem?.(p.name);
    if (why !== undefined) problems.error(file, p.pos, `${where}: ${key} '${p.name}' ${why}`);
  }
  if (fire.name === null && expire.name === null && fire.pos === undefined && expire.pos === undefined) {
    problems.error(
      file,
      node.pos,
      `${where}: at least one of 'fire_pipeline' or 'expire_pipeline' is required`,
    );
  }

  // fire_delay: seconds.
  let fireDelay = 0;
  const fd = node.get('fire_delay');
  if (fd !== undefined) {
    const v = fd.value;
    if (v.kind === 'scalar' && typeof v.value === 'number' && Number.isFinite(v.value) && v.value >= 0) {
      fireDelay = Math.round(v.value * US_PER_SECOND);
    } else {
      problems.error(file, v.pos, `${where}: fire_delay must be a number of seconds ≥ 0, not ${describe(v)}`);
    }
  }

  const criteriaList = (key: string, required: boolean): Criterion[] => {
    const e = node.get(key);
    if (e === undefined) {
      if (required) problems.error(file, node.pos, `${where}: missing required '${key}'`);
      return [];
    }
    if (e.value.kind === 'scalar' && e.value.value === null) {
      if (required)
        problems.error(file, e.value.pos, `${where}: ${key} must be a list of criteria, not empty`);
      return [];
    }
    if (e.value.kind !== 'seq') {
      problems.error(
        file,
        e.value.pos,
        `${where}: ${key} must be a list of criteria, not ${describe(e.value)}`,
      );
      return [];
    }
    const out: Criterion[] = [];
    e.value.items.forEach((item, i) => {
      const c = compileCriterion(item, ctx, `${where}: ${key}[${i}]`);
      if (c) out.push(c);
    });
    if (e.value.items.length === 0 && key === 'match_criteria') {
      problems.warn(
        file,
        e.value.pos,
        `${where}: match_criteria is empty, so no event ever joins this trigger`,
      );
    }
    if (e.value.items.length === 0 && key === 'fire_criteria') {
      problems.warn(
        file,
        e.value.pos,
        `${where}: fire_criteria is empty, so a stream is ready to fire as soon as it opens`,
      );
    }
    return out;
  };
  const matchCriteria = criteriaList('match_criteria', true);
  const fireCriteria = criteriaList('fire_criteria', true);
  const loadCriteria = criteriaList('load_criteria', false);

  // map_distinguished_by naming a trait that is not distinguishing has no effect: say so.
  const distinguishedNames = distinguishedBy.map((d) => d.name);
  const mc = node.get('match_criteria');
  if (mc?.value.kind === 'seq') {
    for (const item of mc.value.items) {
      const mdb = item.kind === 'map' ? item.get('map_distinguished_by') : undefined;
      if (mdb?.value.kind !== 'map') continue;
      for (const e of mdb.value.entries) {
        if (distinguishedNames.includes(e.key)) continue;
        const near = closest(e.key, distinguishedNames);
        problems.warn(
          file,
          e.keyPos,
          `${where}: map_distinguished_by.${e.key} has no effect: '${e.key}' is not in distinguished_by${near ? ` (did you mean '${near}'?)` : ''}`,
        );
      }
    }
  }

  if (problems.errors.length > errorsBefore || expiration === undefined) return undefined;
  return makeTrigger({
    name,
    debugLevel,
    firePipeline: fire.name,
    expirePipeline: expire.name,
    fireDelay,
    distinguishedBy,
    matchCriteria,
    fireCriteria,
    loadCriteria,
    expiration,
    isEvalError: ctx.isEvalError,
    source: { file, pos: node.pos, firePipelinePos: fire.pos, expirePipelinePos: expire.pos },
  });
}

function compileDistinguishedBy(
  item: YNode,
  ctx: CompileContext,
  where: string,
): DistinguishedBy | undefined {
  const { problems, file } = ctx;
  if (item.kind === 'scalar' && typeof item.value === 'string' && item.value !== '') {
    return { name: item.value, expr: undefined };
  }
  if (item.kind === 'map' && item.entries.length === 1) {
    const e = item.entries[0] as { key: string; value: YNode };
    if (e.key === '') {
      problems.error(file, item.pos, `${where}: distinguished_by entry needs a trait name`);
      return undefined;
    }
    const expr = compileTimex(e.value, ctx, `${where}: distinguished_by ${e.key}`);
    if (!expr) return undefined;
    const extra = [...expr.variables].filter((v) => v !== 'timestamp');
    if (extra.length > 0) {
      problems.error(
        file,
        e.value.pos,
        `${where}: distinguished_by ${e.key} may only use $timestamp (the value of '${e.key}'), not ${extra.map((v) => `$${v}`).join(', ')}`,
      );
      return undefined;
    }
    return { name: e.key, expr };
  }
  if (item.kind === 'map') {
    problems.error(
      file,
      item.pos,
      `${where}: a distinguished_by mapping has exactly one trait: expression entry, found ${item.entries.length}`,
    );
    return undefined;
  }
  problems.error(
    file,
    item.pos,
    `${where}: distinguished_by entries are trait names or {trait: timex}, not ${describe(item)}`,
  );
  return undefined;
}

interface TriggerParts {
  name: string;
  debugLevel: 0 | 1 | 2;
  firePipeline: string | null;
  expirePipeline: string | null;
  fireDelay: number;
  distinguishedBy: readonly DistinguishedBy[];
  matchCriteria: readonly Criterion[];
  fireCriteria: readonly Criterion[];
  loadCriteria: readonly Criterion[];
  expiration: TimexExpression;
  isEvalError: (err: unknown) => boolean;
  source: TriggerSource;
}

/** The most event types a trigger remembers its criteria decision for (then it starts over). */
export const EVENT_TYPE_CACHE_LIMIT = 1024;

/**
 * For `day` / `hour` (optionally of `$timestamp`), the range length: such a range is the
 * unit-long interval containing the instant, computed here without the generic evaluation.
 * Anything else, 0 (evaluated generically).
 */
export function fixedRangeStep(expr: TimexExpression): number {
  const m = /^\s*(day|hour)\s*(?:\(\s*\$timestamp\s*\))?\s*$/.exec(expr.source);
  if (m === null) return 0;
  const step = m[1] === 'day' ? US_PER_DAY : US_PER_HOUR;
  // Belt and braces: the shortcut must agree with the expression on a few instants, or it is not used.
  try {
    for (const t of [0, 1, -1, 1_406_851_200_000_000, 1_406_937_599_999_999, -86_400_000_001]) {
      const v = expr.evaluate({ timestamp: t }, 0);
      const r = rangeOfStep(t, step);
      if (v.kind !== 'range' || r === undefined || v.begin !== r || v.end !== r + step) return 0;
    }
  } catch {
    return 0;
  }
  return step;
}

/** The beginning of the `step`-long interval containing `t`, or undefined outside the supported years. */
function rangeOfStep(t: number, step: number): number | undefined {
  const begin = t - (((t % step) + step) % step);
  return begin >= MIN_INSTANT && begin + step <= MAX_INSTANT ? begin : undefined;
}

/** The most keys a trigger remembers (one per value of its first plain distinguishing trait). */
export const KEY_MEMO_LIMIT = 8192;

/** A remembered match result and the values (in distinguished_by order) it was built from. */
interface KeyMemo {
  readonly vals: readonly DistinguishingValue[];
  readonly result: TriggerMatch;
}

/** Whether two distinguishing values are the same (the same object, or the same type and value; -0 is not 0). */
function sameValue(a: DistinguishingValue, b: DistinguishingValue): boolean {
  if (a === b) return true;
  if (a.type === 'range') return b.type === 'range' && Object.is(a.begin, b.begin) && Object.is(a.end, b.end);
  return a.type === b.type && Object.is(a.value, (b as TraitValue).value);
}

/** Whether every value but the one at `skip` is the same. */
function sameOtherValues(
  a: readonly DistinguishingValue[],
  b: readonly DistinguishingValue[],
  skip: number,
): boolean {
  for (let i = 0; i < a.length; i++) {
    if (i !== skip && !sameValue(a[i] as DistinguishingValue, b[i] as DistinguishingValue)) return false;
  }
  return true;
}

/** How one distinguishing value is read for one match criterion (map_distinguished_by resolved). */
interface Source {
  /** The event field to read. */
  readonly field: string;
  /** Whether the name exists on Object.prototype, so a trait is only an own property. */
  readonly guarded: boolean;
  /** `timestamp`, `message_id` or `event_type` (read from the envelope when no trait has the name). */
  readonly envelope: boolean;
  /** The accessor of a plain (no timex) value. */
  readonly get: Getter;
}

function sourceOf(field: string): Source {
  return {
    field,
    guarded: field in Object.prototype,
    envelope: field === 'timestamp' || field === 'message_id' || field === 'event_type',
    get: fieldGetter(field),
  };
}

/** Builds the frozen trigger object around closures specialised for its shape. */
function makeTrigger(p: TriggerParts): CompiledTrigger {
  const dist = p.distinguishedBy;
  const names = dist.map((d) => d.name);
  const criteria = p.matchCriteria;
  const nCriteria = criteria.length;
  const nDist = dist.length;
  const isEvalError = p.isEvalError;
  const expiration = p.expiration;
  // The envelope fields are always there (fieldOf never misses them): only traits need checking.
  const checked = names.filter((n) => n !== 'timestamp' && n !== 'message_id' && n !== 'event_type');
  const checkedGuarded = checked.map((n) => n in Object.prototype);
  const nChecked = checked.length;
  // Per match criterion, where each distinguishing value comes from.
  const sources: Source[][] = criteria.map((c) =>
    dist.map((d) =>
      sourceOf(
        Object.hasOwn(c.mapDistinguishedBy, d.name) ? (c.mapDistinguishedBy[d.name] as string) : d.name,
      ),
    ),
  );
  const exprs = dist.map((d) => d.expr);
  const steps = dist.map((d) => (d.expr === undefined ? 0 : fixedRangeStep(d.expr)));
  const encoders = names.map((n) => new EntryEncoder(n));
  // Key entries are written in code-unit order of the names, whatever the configured order.
  const order = names
    .map((_, i) => i)
    .sort((a, b) => compareCodeUnits(names[a] as string, names[b] as string));
  const entries: string[] = new Array(nDist).fill('');
  // The values of the event being matched, in distinguished_by order (scratch: match never re-enters).
  const vals: DistinguishingValue[] = new Array(nDist);
  // The result for the last event seen per value of the first plain distinguishing trait (e.g.
  // the instance id): when the other values are the same again (a stream's cached `day` range is
  // the same object), that result is returned as is. This skips building the values and the key,
  // and hands the engine a key string whose hash V8 has already computed. Bounded: cleared when full.
  const memoAt = dist.findIndex((d) => d.expr === undefined);
  const memo = new Map<string, KeyMemo>();
  const resultOf = (): { matched: true; distinguishing: DistinguishingValues; key: string } => {
    const values: Record<string, DistinguishingValue> = {};
    for (let i = 0; i < nDist; i++) {
      const v = vals[i] as DistinguishingValue;
      values[names[i] as string] = v;
      if (exprs[i] === undefined) entries[i] = (encoders[i] as EntryEncoder).trait(v as TraitValue);
    }
    let key = '[';
    for (let k = 0; k < nDist; k++) {
      if (k > 0) key += ',';
      key += entries[order[k] as number] as string;
    }
    return { matched: true, distinguishing: values, key: `${key}]` };
  };

  // Per event_type, the criteria whose event_type part matches, in order (the type decision is a
  // pure function of the type, so it is remembered; bounded so odd input cannot grow it).
  const byType = new Map<string, readonly number[]>();
  const candidatesOf = (eventType: string): readonly number[] => {
    let c = byType.get(eventType);
    if (c === undefined) {
      const found: number[] = [];
      for (let i = 0; i < nCriteria; i++) {
        if ((criteria[i] as Criterion).matchesEventType(eventType)) {
          found.push(i);
          // A criterion with nothing beyond the type always matches: later ones cannot be reached.
          if ((criteria[i] as Criterion).matchesRest === undefined) break;
        }
      }
      c = found;
      if (byType.size >= EVENT_TYPE_CACHE_LIMIT) byType.clear();
      byType.set(eventType, c);
    }
    return c;
  };

  const match = (event: Event, now: Instant): TriggerMatch => {
    const traits = event.traits;
    // The reference checks the configured names, before any criterion, even when a criterion maps them.
    for (let i = 0; i < nChecked; i++) {
      const n = checked[i] as string;
      if (traits[n] === undefined || (checkedGuarded[i] && !Object.hasOwn(traits, n))) return MISSING;
    }
    const candidates = candidatesOf(event.event_type);
    let matched = -1;
    for (let k = 0; k < candidates.length; k++) {
      const i = candidates[k] as number;
      const rest = (criteria[i] as Criterion).matchesRest;
      if (rest === undefined || rest(event)) {
        matched = i;
        break;
      }
    }
    if (matched < 0) return NO_CRITERION;
    const from = sources[matched] as Source[];
    let memoText: string | undefined;
    for (let i = 0; i < nDist; i++) {
      const src = from[i] as Source;
      const expr = exprs[i];
      if (expr === undefined) {
        const v = src.get(event);
        if (v === undefined) return MISSING;
        vals[i] = v;
        if (i === memoAt && v.type === 'text') memoText = v.value;
        continue;
      }
      // The instant the timex applies to, read without building a field object.
      const f = src.field;
      const tv = src.guarded ? (Object.hasOwn(traits, f) ? traits[f] : undefined) : traits[f];
      let t: number;
      if (tv !== undefined) {
        if (tv.type !== 'datetime') return BAD_VALUE;
        t = tv.value;
      } else if (f === 'timestamp') {
        t = event.timestamp;
      } else {
        // message_id / event_type are text; any other name is simply missing.
        return src.envelope ? BAD_VALUE : MISSING;
      }
      const enc = encoders[i] as EntryEncoder;
      const step = steps[i] as number;
      const begin = step > 0 ? rangeOfStep(t, step) : undefined;
      let e: EncodedValue;
      if (begin !== undefined) {
        e = enc.range(begin, begin + step);
      } else {
        let r: TimexValue;
        try {
          r = expr.evaluate({ timestamp: t }, now);
        } catch (err) {
          if (isEvalError(err)) return BAD_VALUE;
          throw err;
        }
        e = r.kind === 'range' ? enc.range(r.begin, r.end) : enc.datetime(r.at);
      }
      vals[i] = e.value;
      entries[i] = e.entry;
    }
    if (memoText === undefined) return resultOf();
    const m = memo.get(memoText);
    if (m !== undefined && sameOtherValues(m.vals, vals, memoAt)) return m.result;
    const result = resultOf();
    Object.freeze(result.distinguishing);
    if (memo.size >= KEY_MEMO_LIMIT) memo.clear();
    memo.set(memoText, { vals: vals.slice(), result: Object.freeze(result) });
    return result;
  };

  const expirationOf = (first: Instant, last: Instant, now: Instant): Instant => {
    // A range means its beginning, as the reference's `.timestamp` of a TimeRange.
    const v = expiration.evaluate({ first, last }, now);
    return v.kind === 'range' ? v.begin : v.at;
  };

  return Object.freeze({
    name: p.name,
    debugLevel: p.debugLevel,
    firePipeline: p.firePipeline,
    expirePipeline: p.expirePipeline,
    fireDelay: p.fireDelay,
    distinguishedBy: Object.freeze(names),
    fireCriteria: Object.freeze([...p.fireCriteria]),
    matchCriteria: Object.freeze([...p.matchCriteria]),
    loadCriteria: Object.freeze([...p.loadCriteria]),
    source: Object.freeze(p.source),
    match,
    expiration: expirationOf,
  });
}
