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

/** Encodes one `[name, tag, …]` entry. */
export function keyEntry(name: string, v: DistinguishingValue): string {
  return entryText(JSON.stringify(name), v, isoInstant);
}

function entryText(quotedName: string, v: DistinguishingValue, iso: (t: number) => string): string {
  switch (v.type) {
    case 'text':
      return `[${quotedName},"t",${JSON.stringify(v.value)}]`;
    case 'int':
      return `[${quotedName},"i","${numberText(v.value)}"]`;
    case 'float':
      return `[${quotedName},"f","${numberText(v.value)}"]`;
    case 'datetime':
      return `[${quotedName},"d","${iso(v.value)}"]`;
    case 'range':
      return `[${quotedName},"r","${iso(v.begin)}","${iso(v.end)}"]`;
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

/**
 * A key builder for one trigger: names sorted and quoted once, and the last few datetimes
 * formatted remembered (consecutive events of a stream share their `day` range), so building the
 * key of a matched event is mostly string concatenation. Same output as {@link keyOf}.
 */
export function keyEncoder(names: readonly string[]): (values: DistinguishingValues) => string {
  const sorted = [...names].sort(compareCodeUnits);
  const quoted = sorted.map((n) => JSON.stringify(n));
  const n = sorted.length;
  // Per entry, the last instant(s) formatted and their text: a stream's events share their
  // range, and each encoder owns its cache, so nothing is shared between triggers or tests.
  const lastA: number[] = new Array(n).fill(Number.NaN);
  const textA: string[] = new Array(n).fill('');
  const lastB: number[] = new Array(n).fill(Number.NaN);
  const textB: string[] = new Array(n).fill('');
  const isoA = (i: number, t: number): string => {
    if (lastA[i] !== t) {
      lastA[i] = t;
      textA[i] = isoInstant(t);
    }
    return textA[i] as string;
  };
  const isoB = (i: number, t: number): string => {
    if (lastB[i] !== t) {
      lastB[i] = t;
      textB[i] = isoInstant(t);
    }
    return textB[i] as string;
  };
  return (values) => {
    let out = '[';
    for (let i = 0; i < n; i++) {
      if (i > 0) out += ',';
      const q = quoted[i] as string;
      const v = values[sorted[i] as string] as DistinguishingValue;
      if (v.type === 'range') out += `[${q},"r","${isoA(i, v.begin)}","${isoB(i, v.end)}"]`;
      else if (v.type === 'datetime') out += `[${q},"d","${isoA(i, v.value)}"]`;
      else out += entryText(q, v, isoInstant);
    }
    return `${out}]`;
  };
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
