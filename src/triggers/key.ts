/**
 * The canonical stream key: one string per set of distinguishing values, the same in every
 * process and every version, used as the Kafka partition key of the stream-events topic and as
 * the stream's identity within its trigger.
 *
 * Format: a JSON array with one entry per distinguishing trait, **sorted by trait name** (UTF-16
 * code-unit order, so reordering distinguished_by in triggers.yaml keeps existing streams), each
 * entry `[name, tag, ...values]` with every value a JSON string:
 *
 * | value | entry |
 * | --- | --- |
 * | text | `["name","t","the text"]` |
 * | int | `["name","i","42"]` |
 * | float | `["name","f","0.5"]` (shortest round-trip form; `NaN`, `Infinity`, `-Infinity`; -0 is 0) |
 * | datetime | `["name","d","2014-08-01T00:00:00.000000Z"]` |
 * | time range | `["name","r","2014-08-01T00:00:00.000000Z","2014-08-02T00:00:00.000000Z"]` |
 *
 * e.g. `[["instance_id","t","3d7c…"],["timestamp","r","2014-08-01T00:00:00.000000Z","2014-08-02T00:00:00.000000Z"]]`,
 * and `[]` for a trigger without distinguished_by. The type tag keeps an int 3, a float 3.0 and a
 * text "3" apart; JSON string escaping keeps any text unambiguous, so the key is injective:
 * {@link parseKey} gives the values back.
 */
import { InputError } from '../errors.js';
import type { TraitValue } from '../model/event.js';
import { parseDatetime } from '../timex/instant.js';
import type { DistinguishingValue, DistinguishingValues } from './types.js';

/** The canonical text of one number: the shortest round-trip form, with -0 folded into 0. */
function numberText(n: number): string {
  return Object.is(n, -0) ? '0' : String(n);
}

const US_PER_DAY = 86_400_000_000;
const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/**
 * `formatInstant` without a Date: the same `YYYY-MM-DDTHH:MM:SS.ffffffZ` text, computed with
 * integer arithmetic (days → civil date after H. Hinnant's `civil_from_days`), because keys are
 * built for every matched event and Date-based formatting dominated that cost.
 */
export function isoInstant(t: number): string {
  const days = Math.floor(t / US_PER_DAY);
  let rem = t - days * US_PER_DAY;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(rem / 3_600_000_000);
  rem -= hour * 3_600_000_000;
  const minute = Math.floor(rem / 60_000_000);
  rem -= minute * 60_000_000;
  const second = Math.floor(rem / 1_000_000);
  const micro = rem - second * 1_000_000;
  return `${String(year).padStart(4, '0')}-${pad2(month)}-${pad2(day)}T${pad2(hour)}:${pad2(minute)}:${pad2(second)}.${String(micro).padStart(6, '0')}Z`;
}

/** Characters JSON.stringify escapes in a string: `"`, `\`, controls, and (lone) surrogates. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * `JSON.stringify(s)` for a string, faster for the usual text with nothing to escape (ids, names):
 * one RegExp test and a concatenation. Any character JSON would escape, and any surrogate (so a
 * lone one is escaped exactly as JSON.stringify does), takes the JSON.stringify path.
 */
export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** Encodes one `[name, tag, …]` entry. */
export function keyEntry(name: string, v: DistinguishingValue): string {
  return entryText(JSON.stringify(name), v);
}

function entryText(quotedName: string, v: DistinguishingValue): string {
  switch (v.type) {
    case 'text':
      return `[${quotedName},"t",${jsonString(v.value)}]`;
    case 'int':
      return `[${quotedName},"i","${numberText(v.value)}"]`;
    case 'float':
      return `[${quotedName},"f","${numberText(v.value)}"]`;
    case 'datetime':
      return `[${quotedName},"d","${isoInstant(v.value)}"]`;
    case 'range':
      return `[${quotedName},"r","${isoInstant(v.begin)}","${isoInstant(v.end)}"]`;
  }
}

/** The canonical key of a set of distinguishing values (see the module comment for the format). */
export function distinguishingKey(values: DistinguishingValues): string {
  return keyOf(Object.keys(values).sort(compareCodeUnits), values);
}

/** The key of `values` whose names are already sorted with {@link compareCodeUnits}. */
export function keyOf(sortedNames: readonly string[], values: DistinguishingValues): string {
  let out = '[';
  for (let i = 0; i < sortedNames.length; i++) {
    const name = sortedNames[i] as string;
    if (i > 0) out += ',';
    out += keyEntry(name, values[name] as DistinguishingValue);
  }
  return `${out}]`;
}

/** A computed distinguishing value (a timex result) with its key entry, as {@link EntryEncoder} caches them. */
export interface EncodedValue {
  readonly value: DistinguishingValue;
  /** `keyEntry(name, value)`. */
  readonly entry: string;
}

/** `a === b`, but telling 0 from -0, so a cached value is never handed out for the other zero. */
const sameInstant = (a: number, b: number) => a === b && (a !== 0 || Object.is(a, b));

/**
 * Key entries of one distinguishing name, with the last few computed values remembered: the
 * events of a stream share their `day` range, so in steady state a matched event reuses the
 * frozen range object and its formatted entry instead of allocating and formatting them again.
 * The cache is a small ring (per trigger and name, nothing shared); a hit needs the exact same
 * kind, begin and end, so it never returns a value for another instant.
 */
export class EntryEncoder {
  private readonly quoted: string;
  private readonly kinds: Array<'range' | 'datetime' | ''>;
  private readonly begins: number[];
  private readonly ends: number[];
  private readonly values: EncodedValue[];
  private next = 0;

  /** @param size ring slots (≥ 1): 4 covers a stream's day plus the previous day of audit events. */
  constructor(
    readonly name: string,
    private readonly size = 4,
  ) {
    if (!(Number.isSafeInteger(size) && size >= 1)) throw new RangeError('cache size must be ≥ 1');
    this.quoted = JSON.stringify(name);
    this.kinds = new Array(size).fill('');
    this.begins = new Array(size).fill(Number.NaN);
    this.ends = new Array(size).fill(Number.NaN);
    this.values = new Array(size);
  }

  /** The key entry of a trait value (taken as is: an event's trait object is already immutable). */
  trait(v: TraitValue): string {
    return entryText(this.quoted, v);
  }

  /** The range [begin, end) as a value and its entry. */
  range(begin: number, end: number): EncodedValue {
    for (let i = 0; i < this.size; i++) {
      if (
        this.kinds[i] === 'range' &&
        sameInstant(this.begins[i] as number, begin) &&
        sameInstant(this.ends[i] as number, end)
      ) {
        return this.values[i] as EncodedValue;
      }
    }
    const value: DistinguishingValue = Object.freeze({ type: 'range', begin, end });
    return this.remember('range', begin, end, value);
  }

  /** The single instant `at` as a datetime value and its entry. */
  datetime(at: number): EncodedValue {
    for (let i = 0; i < this.size; i++) {
      if (this.kinds[i] === 'datetime' && sameInstant(this.begins[i] as number, at)) {
        return this.values[i] as EncodedValue;
      }
    }
    const value: DistinguishingValue = Object.freeze({ type: 'datetime', value: at });
    return this.remember('datetime', at, at, value);
  }

  private remember(
    kind: 'range' | 'datetime',
    begin: number,
    end: number,
    value: DistinguishingValue,
  ): EncodedValue {
    const e: EncodedValue = Object.freeze({ value, entry: entryText(this.quoted, value) });
    const i = this.next;
    this.next = i + 1 === this.size ? 0 : i + 1;
    this.kinds[i] = kind;
    this.begins[i] = begin;
    this.ends[i] = end;
    this.values[i] = e;
    return e;
  }
}

/** Plain `<` on strings compares UTF-16 code units, which is locale-independent and stable. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Reads a key back into its values (for stored streams and diagnostics). Throws an InputError if malformed. */
export function parseKey(key: string): DistinguishingValues {
  let parsed: unknown;
  try {
    parsed = JSON.parse(key);
  } catch {
    throw new InputError(`not a stream key: ${key.slice(0, 80)}`);
  }
  if (!Array.isArray(parsed)) throw new InputError('not a stream key: expected a JSON array');
  const out: Record<string, DistinguishingValue> = {};
  for (const entry of parsed) {
    if (!Array.isArray(entry) || !entry.every((x) => typeof x === 'string') || entry.length < 3) {
      throw new InputError(`not a stream key entry: ${JSON.stringify(entry)}`);
    }
    const [name, tag, a, b] = entry as string[];
    // defineProperty: a trait may be called `__proto__`, which plain assignment would swallow.
    Object.defineProperty(out, name as string, {
      value: decodeValue(tag as string, a as string, b, entry.length),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function decodeValue(tag: string, a: string, b: string | undefined, length: number): DistinguishingValue {
  const expect = (n: number) => {
    if (length !== n) throw new InputError(`stream key entry of type ${tag} needs ${n - 2} value(s)`);
  };
  switch (tag) {
    case 't':
      expect(3);
      return { type: 'text', value: a };
    case 'i':
      expect(3);
      return { type: 'int', value: Number(a) };
    case 'f':
      expect(3);
      return { type: 'float', value: Number(a) };
    case 'd':
      expect(3);
      return { type: 'datetime', value: parseDatetime(a) };
    case 'r':
      expect(4);
      return { type: 'range', begin: parseDatetime(a), end: parseDatetime(b as string) };
    default:
      throw new InputError(`unknown stream key value type ${JSON.stringify(tag)}`);
  }
}
