/**
 * Criteria of triggers.yaml (`match_criteria`, `fire_criteria`, `load_criteria`), compiled once
 * into closures so that matching an event costs a few comparisons and no allocation unless a
 * time expression has to be evaluated.
 *
 * Semantics follow the reference (winchester/definition.py): an event matches a criterion when
 * its event_type matches an included glob and no excluded one, its timestamp falls in the
 * `timestamp` expression (evaluated with the event's datetime traits as variables), and every
 * trait criterion holds. Where the reference would crash at match time (an unknown criterion
 * type, a malformed number) we refuse the file at load instead; where it silently never matches
 * (a `>=` operator) we refuse too, and say why.
 */

import type { Problems } from '../config/problems.js';
import { closest } from '../config/settings.js';
import { columnInScalar, describe, type YMap, type YNode, type YScalar } from '../config/yaml.js';
import { compileEventTypes, globError } from '../glob.js';
import { type Event, fieldOf, type TraitValue } from '../model/event.js';
import type { Instant } from '../timex/instant.js';
import { parseDatetime } from '../timex/instant.js';
import type { TimexExpression, TimexValue, TimexVariables } from '../timex/types.js';
import type { FireCriterion } from './types.js';

/** Parses a timex expression; throws an error with a numeric `position` on a syntax error. */
export type TimexParser = (source: string) => TimexExpression;

/** What compiling needs: where problems go and how to parse time expressions. */
export interface CompileContext {
  readonly file: string;
  readonly problems: Problems;
  readonly parseTimex: TimexParser;
  /** True for errors thrown by a TimexExpression that mean "cannot evaluate for this event". */
  readonly isEvalError: (err: unknown) => boolean;
  /**
   * Why a pipeline name used by a trigger is unusable (undefined when it is fine, or when it
   * cannot be known). Called for every trigger, valid or not, so all problems surface at once.
   */
  readonly pipelineProblem?: (name: string) => string | undefined;
}

/** A compiled criterion: usable as a fire criterion, and by triggers for matching. */
export interface Criterion extends FireCriterion {
  /** Distinguishing trait name → the trait of this event to take its value from. */
  readonly mapDistinguishedBy: Readonly<Record<string, string>>;
  /** The event_type part of {@link FireCriterion.matches} alone (a pure function of the type). */
  readonly matchesEventType: (eventType: string) => boolean;
  /**
   * The rest of {@link FireCriterion.matches} (timestamp and trait tests) for an event whose type
   * matched, or undefined when the criterion tests the event_type only. `matches(e)` is exactly
   * `matchesEventType(e.event_type) && (rest === undefined || rest(e))`; triggers use the split
   * to cache the type decision per event_type.
   */
  readonly matchesRest: ((event: Event) => boolean) | undefined;
}

/** Whether a timex value contains an instant: a timestamp only itself, a range [begin, end). */
export function timexContains(v: TimexValue, t: Instant): boolean {
  return v.kind === 'timestamp' ? v.at === t : v.begin <= t && t < v.end;
}

/**
 * The variables time expressions of criteria see: every datetime trait of the event, and
 * `timestamp` = the event's timestamp (as in the reference, where the envelope timestamp
 * overwrites a trait of the same name).
 */
export function timeVariables(event: Event): TimexVariables {
  const vars: Record<string, Instant> = {};
  const traits = event.traits;
  for (const name of Object.keys(traits)) {
    const t = traits[name] as TraitValue;
    if (t.type === 'datetime') vars[name] = t.value;
  }
  vars.timestamp = event.timestamp;
  return vars;
}

/**
 * Compiles, for one expression, the gathering of the variables it uses from an event: the same
 * values as {@link timeVariables} but only those the expression references. Undefined when the
 * event lacks one (or has it with another type), which is a mismatch decided without evaluating
 * and without the cost of an exception.
 */
export function variablesFor(expr: TimexExpression): (event: Event) => TimexVariables | undefined {
  const names = [...expr.variables].filter((n) => n !== 'timestamp');
  const getters = names.map((n) => (e: Event) => (Object.hasOwn(e.traits, n) ? e.traits[n] : undefined));
  const n = names.length;
  return (event) => {
    const vars: Record<string, Instant> = { timestamp: event.timestamp };
    for (let i = 0; i < n; i++) {
      const t = (getters[i] as (e: Event) => TraitValue | undefined)(event);
      if (t === undefined || t.type !== 'datetime') return undefined;
      vars[names[i] as string] = t.value;
    }
    return vars;
  };
}

/**
 * A compiled accessor for a named field of an event, as criteria and distinguished_by read it
 * (see `fieldOf`): a trait, else `timestamp` / `message_id` / `event_type`. Specialised per name
 * at load, so the common case is one property read; names that exist on Object.prototype
 * (`constructor`, `toString`, …) are read with an own-property check so they are never mistaken
 * for traits.
 */
export function fieldGetter(name: string): (e: Event) => TraitValue | undefined {
  const special = name === 'timestamp' || name === 'message_id' || name === 'event_type';
  if (name in Object.prototype) {
    return (e) => (Object.hasOwn(e.traits, name) ? e.traits[name] : special ? fieldOf(e, name) : undefined);
  }
  if (special) return (e) => fieldOf(e, name);
  return (e) => e.traits[name];
}

const CRITERION_KEYS = ['event_type', 'number', 'timestamp', 'map_distinguished_by', 'traits'];

type TraitTest = (event: Event) => boolean;

/** Compiles one criterion mapping; problems are reported and `undefined` returned if it is invalid. */
export function compileCriterion(node: YNode, ctx: CompileContext, where: string): Criterion | undefined {
  if (node.kind !== 'map') {
    ctx.problems.error(ctx.file, node.pos, `${where} must be a mapping, not ${describe(node)}`);
    return undefined;
  }
  const errorsBefore = ctx.problems.errors.length;
  checkKeys(node, CRITERION_KEYS, ctx, where);

  // event_type: a glob or a list of globs; `!glob` excludes; only exclusions means "all but";
  // absent means every type, an empty list none (as the reference's Criteria reads it).
  const patterns: string[] = [];
  const et = node.get('event_type');
  if (et === undefined) {
    patterns.push('*');
  } else {
    const items = et.value.kind === 'seq' ? et.value.items : [et.value];
    if (items.length === 0) {
      ctx.problems.warn(ctx.file, et.value.pos, `${where}: an empty event_type list matches nothing`);
    }
    for (const item of items) {
      if (item.kind !== 'scalar' || typeof item.value !== 'string' || item.value === '') {
        ctx.problems.error(
          ctx.file,
          item.pos,
          `${where}: event_type must be a glob or a list of globs, not ${describe(item)}`,
        );
        continue;
      }
      const bad = globError(item.value.startsWith('!') ? item.value.slice(1) : item.value);
      if (bad !== undefined) {
        ctx.problems.error(
          ctx.file,
          item.pos,
          `${where}: invalid event_type glob ${JSON.stringify(item.value)}: ${bad}`,
        );
        continue;
      }
      patterns.push(item.value);
    }
  }
  const eventTypes = compileEventTypes(patterns);

  let number = 1;
  const num = node.get('number');
  if (num !== undefined) {
    const v = num.value;
    if (v.kind === 'scalar' && typeof v.value === 'number' && Number.isSafeInteger(v.value) && v.value >= 1) {
      number = v.value;
    } else {
      ctx.problems.error(ctx.file, v.pos, `${where}: number must be a whole number ≥ 1, not ${describe(v)}`);
    }
  }

  let timestamp: TimexExpression | undefined;
  const ts = node.get('timestamp');
  if (ts !== undefined) timestamp = compileTimex(ts.value, ctx, `${where}: timestamp`);

  const mapDistinguishedBy: Record<string, string> = {};
  const mdb = node.get('map_distinguished_by');
  if (mdb !== undefined) {
    const m = mdb.value;
    if (m.kind === 'map') {
      for (const e of m.entries) {
        if (e.value.kind === 'scalar' && typeof e.value.value === 'string' && e.value.value !== '') {
          Object.defineProperty(mapDistinguishedBy, e.key, { value: e.value.value, enumerable: true });
        } else {
          ctx.problems.error(
            ctx.file,
            e.value.pos,
            `${where}: map_distinguished_by.${e.key} must be a trait name, not ${describe(e.value)}`,
          );
        }
      }
    } else if (!(m.kind === 'scalar' && m.value === null)) {
      ctx.problems.error(
        ctx.file,
        m.pos,
        `${where}: map_distinguished_by must be a mapping of distinguishing trait: event trait, not ${describe(m)}`,
      );
    }
  }

  const tests: TraitTest[] = [];
  const traits = node.get('traits');
  if (traits !== undefined) {
    const t = traits.value;
    if (t.kind === 'map') {
      for (const e of t.entries) {
        const test = compileTraitCriterion(e.key, e.value, ctx, `${where}: traits.${e.key}`);
        if (test) tests.push(test);
      }
    } else if (!(t.kind === 'scalar' && t.value === null)) {
      ctx.problems.error(
        ctx.file,
        t.pos,
        `${where}: traits must be a mapping of trait name: criterion, not ${describe(t)}`,
      );
    }
  }
  if (ctx.problems.errors.length > errorsBefore) return undefined;

  const matchesType = eventTypes.test;
  const isEvalError = ctx.isEvalError;
  const timestampVars = timestamp === undefined ? undefined : variablesFor(timestamp);
  const inTime =
    timestamp === undefined
      ? undefined
      : (event: Event): boolean => {
          const vars = timestampVars?.(event);
          if (vars === undefined) return false;
          let value: TimexValue;
          try {
            value = (timestamp as TimexExpression).evaluate(vars, event.timestamp);
          } catch (err) {
            // The event lacks a trait the expression refers to: not a match (as in the reference).
            if (isEvalError(err)) return false;
            throw err;
          }
          return timexContains(value, event.timestamp);
        };
  const matches = buildMatcher(matchesType, inTime, tests);
  return Object.freeze({
    number,
    mapDistinguishedBy: Object.freeze(mapDistinguishedBy),
    matches,
    matchesEventType: matchesType,
    matchesRest: buildRest(inTime, tests),
  });
}

function buildRest(inTime: TraitTest | undefined, tests: readonly TraitTest[]): TraitTest | undefined {
  if (inTime === undefined && tests.length === 0) return undefined;
  if (inTime === undefined && tests.length === 1) return tests[0];
  return (e) => {
    if (inTime !== undefined && !inTime(e)) return false;
    for (let i = 0; i < tests.length; i++) if (!(tests[i] as TraitTest)(e)) return false;
    return true;
  };
}

function buildMatcher(
  matchesType: (s: string) => boolean,
  inTime: TraitTest | undefined,
  tests: readonly TraitTest[],
): (event: Event) => boolean {
  // Specialised shapes for the common cases keep the hot path free of loops and closures calls.
  if (inTime === undefined && tests.length === 0) return (e) => matchesType(e.event_type);
  if (inTime === undefined && tests.length === 1) {
    const only = tests[0] as TraitTest;
    return (e) => matchesType(e.event_type) && only(e);
  }
  return (e) => {
    if (!matchesType(e.event_type)) return false;
    if (inTime !== undefined && !inTime(e)) return false;
    for (let i = 0; i < tests.length; i++) if (!(tests[i] as TraitTest)(e)) return false;
    return true;
  };
}

/** Reports keys that are not in `known`: an error if it looks like a typo of one, else a warning. */
export function checkKeys(node: YMap, known: readonly string[], ctx: CompileContext, where: string): void {
  for (const e of node.entries) {
    if (known.includes(e.key)) continue;
    const near = closest(e.key, known);
    if (near !== undefined)
      ctx.problems.error(ctx.file, e.keyPos, `${where}: unknown key '${e.key}'; did you mean '${near}'?`);
    else ctx.problems.unknownKey(ctx.file, e.keyPos, `${where}: unknown key '${e.key}'`);
  }
}

/** Parses a timex string node, reporting a syntax error at its exact column. */
export function compileTimex(node: YNode, ctx: CompileContext, where: string): TimexExpression | undefined {
  if (node.kind !== 'scalar' || typeof node.value !== 'string' || node.value.trim() === '') {
    ctx.problems.error(
      ctx.file,
      node.pos,
      `${where} must be a time expression string, not ${describe(node)}`,
    );
    return undefined;
  }
  try {
    return ctx.parseTimex(node.value);
  } catch (err) {
    const position = (err as { position?: unknown }).position;
    const raw = err instanceof Error ? err.message : String(err);
    // The column already says where; drop the expression-relative offset from the text.
    const message = typeof position === 'number' ? raw.replace(/ at position \d+$/, '') : raw;
    const pos =
      typeof position === 'number'
        ? { line: node.pos.line, column: columnInScalar(node as YScalar, position) }
        : node.pos;
    ctx.problems.error(
      ctx.file,
      pos,
      `${where}: invalid time expression ${JSON.stringify(node.value)}: ${message}`,
    );
    return undefined;
  }
}

// YAML 1.1 (PyYAML) reads an unquoted timestamp as a datetime; we keep the text, so recognise it
// here: only in a bare trait criterion does the type of the value change what it matches.
const YAML_TIMESTAMP =
  /^\d{4}-\d{1,2}-\d{1,2}(?:[Tt]|[ \t]+)\d{1,2}:\d{2}:\d{2}(?:\.\d*)?(?:[ \t]*(?:Z|[-+]\d{1,2}(?::?\d{2})?))?$/;
const YAML_DATE = /^\d{4}-\d{2}-\d{2}$/;

type Expected =
  | { kind: 'number'; value: number }
  | { kind: 'text'; value: string }
  | { kind: 'datetime'; value: Instant }
  | { kind: 'never'; why: string };

/**
 * What a constant compares equal to, with Python's `==` of the reference: numbers (ints, floats,
 * and booleans as 1/0) equal numeric traits of either type; strings equal text traits; an
 * unquoted YAML timestamp is a datetime and equals datetime traits.
 */
function expectedOf(node: YScalar): Expected {
  const v = node.value;
  if (v === null) return { kind: 'never', why: 'a null value never equals a trait (traits are never null)' };
  if (typeof v === 'boolean') return { kind: 'number', value: v ? 1 : 0 };
  if (typeof v === 'number') return { kind: 'number', value: v };
  if (node.plain && YAML_TIMESTAMP.test(v.trim())) {
    try {
      return { kind: 'datetime', value: parseDatetime(v.trim().replace(/[ \t]+(Z|[-+])/, '$1')) };
    } catch {
      return { kind: 'text', value: v };
    }
  }
  if (node.plain && YAML_DATE.test(v)) {
    return {
      kind: 'never',
      why: 'an unquoted date is a YAML date, which never equals a datetime or a text trait',
    };
  }
  return { kind: 'text', value: v };
}

function equalityTest(name: string, expected: Expected): TraitTest {
  const get = fieldGetter(name);
  switch (expected.kind) {
    case 'number': {
      const want = expected.value;
      return (e) => {
        const t = get(e);
        return t !== undefined && (t.type === 'int' || t.type === 'float') && t.value === want;
      };
    }
    case 'text': {
      const want = expected.value;
      return (e) => {
        const t = get(e);
        return t !== undefined && t.type === 'text' && t.value === want;
      };
    }
    case 'datetime': {
      const want = expected.value;
      return (e) => {
        const t = get(e);
        return t !== undefined && t.type === 'datetime' && t.value === want;
      };
    }
    case 'never':
      return () => false;
  }
}

const INT_TEXT = /^[-+]?\d+$/;
const FLOAT_TEXT = /^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf|infinity|nan)$/i;

/** Reads `"> 4096"`, `"<4096"`, `"= 3"` or `"3"` into an operator and a number. */
function parseNumericCriterion(
  node: YScalar,
  type: 'int' | 'float',
): { op: '=' | '>' | '<'; value: number } | { error: string } {
  const v = node.value;
  if (typeof v === 'number') {
    if (type === 'int' && !Number.isInteger(v)) return { error: `${v} is not a whole number` };
    return { op: '=', value: v };
  }
  if (typeof v !== 'string') return { error: `expected a number or "<op> <number>", not ${describe(node)}` };
  const m = /^\s*([<>=!]+)?\s*(\S*)\s*$/.exec(v);
  const op = m?.[1] ?? '=';
  const text = m?.[2] ?? '';
  if (op !== '=' && op !== '>' && op !== '<') {
    return { error: `unsupported operator ${JSON.stringify(op)} in ${JSON.stringify(v)} (use =, > or <)` };
  }
  if (type === 'int') {
    if (!INT_TEXT.test(text))
      return { error: `invalid int criterion ${JSON.stringify(v)}: expected [=|>|<] <integer>` };
    return { op, value: Number(text) };
  }
  if (!FLOAT_TEXT.test(text))
    return { error: `invalid float criterion ${JSON.stringify(v)}: expected [=|>|<] <number>` };
  const lower = text.toLowerCase().replace(/^[-+]/, '');
  const sign = text.startsWith('-') ? -1 : 1;
  const value =
    lower === 'inf' || lower === 'infinity'
      ? sign * Number.POSITIVE_INFINITY
      : lower === 'nan'
        ? Number.NaN
        : Number(text);
  return { op, value };
}

function numericTest(name: string, op: '=' | '>' | '<', want: number): TraitTest {
  const get = fieldGetter(name);
  // Only numeric traits compare with numbers (Python 3 semantics; the reference's Python 2
  // ordered strings above all numbers, which no configuration can have relied on sensibly).
  switch (op) {
    case '=':
      return equalityTest(name, { kind: 'number', value: want });
    case '>':
      return (e) => {
        const t = get(e);
        return t !== undefined && (t.type === 'int' || t.type === 'float') && t.value > want;
      };
    case '<':
      return (e) => {
        const t = get(e);
        return t !== undefined && (t.type === 'int' || t.type === 'float') && t.value < want;
      };
  }
}

function timeTest(name: string, expr: TimexExpression, isEvalError: (err: unknown) => boolean): TraitTest {
  const varsOf = variablesFor(expr);
  const get = fieldGetter(name);
  return (e) => {
    const t = get(e);
    if (t === undefined || t.type !== 'datetime') return false;
    const vars = varsOf(e);
    if (vars === undefined) return false;
    let range: TimexValue;
    try {
      range = expr.evaluate(vars, e.timestamp);
    } catch (err) {
      if (isEvalError(err)) return false;
      throw err;
    }
    return timexContains(range, t.value);
  };
}

/**
 * One entry of a criterion's `traits`: a constant (equality), or a single-key typed mapping
 * `{int|float: "[op] n"}`, `{string|text: value}`, `{datetime: "<timex>"}`.
 */
export function compileTraitCriterion(
  name: string,
  node: YNode,
  ctx: CompileContext,
  where: string,
): TraitTest | undefined {
  if (node.kind === 'scalar') {
    const expected = expectedOf(node);
    if (expected.kind === 'never')
      ctx.problems.warn(
        ctx.file,
        node.pos,
        `${where} never matches: ${expected.why}; quote it to compare text`,
      );
    if (typeof node.value === 'boolean') {
      ctx.problems.warn(
        ctx.file,
        node.pos,
        `${where}: ${node.value} compares as the number ${node.value ? 1 : 0} (as in the reference); quote it to compare text`,
      );
    }
    return equalityTest(name, expected);
  }
  if (node.kind === 'seq') {
    ctx.problems.error(
      ctx.file,
      node.pos,
      `${where}: expected a value or a single-key mapping such as {int: "> 4096"}, not a list`,
    );
    return undefined;
  }
  if (node.entries.length !== 1) {
    ctx.problems.error(
      ctx.file,
      node.pos,
      `${where}: a typed criterion has exactly one key (int, float, string, text or datetime), found ${node.entries.length}`,
    );
    return undefined;
  }
  const entry = node.entries[0] as { key: string; keyPos: { line: number; column: number }; value: YNode };
  const value = entry.value;
  switch (entry.key) {
    case 'int':
    case 'float': {
      if (value.kind !== 'scalar') {
        ctx.problems.error(
          ctx.file,
          value.pos,
          `${where}: expected a number or "<op> <number>", not ${describe(value)}`,
        );
        return undefined;
      }
      const parsed = parseNumericCriterion(value, entry.key);
      if ('error' in parsed) {
        ctx.problems.error(ctx.file, value.pos, `${where}: ${parsed.error}`);
        return undefined;
      }
      return numericTest(name, parsed.op, parsed.value);
    }
    case 'string':
    case 'text':
      // The reference compares the YAML value itself, whatever its type (a plain constant).
      if (value.kind !== 'scalar') {
        ctx.problems.error(ctx.file, value.pos, `${where}: expected a value, not ${describe(value)}`);
        return undefined;
      }
      return compileTraitCriterion(name, value, ctx, where);
    case 'datetime': {
      const expr = compileTimex(value, ctx, `${where}: datetime`);
      return expr === undefined ? undefined : timeTest(name, expr, ctx.isEvalError);
    }
    default: {
      const near = closest(entry.key, ['int', 'float', 'string', 'text', 'datetime']);
      ctx.problems.error(
        ctx.file,
        entry.keyPos,
        `${where}: unknown criterion type '${entry.key}' (expected int, float, string, text or datetime)${near ? `; did you mean '${near}'?` : ''}`,
      );
      return undefined;
    }
  }
}
