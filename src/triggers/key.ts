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
import { formatInstant, parseDatetime } from '../timex/instant.js';
import type { DistinguishingValue, DistinguishingValues } from './types.js';

/** The canonical text of one number: the shortest round-trip form, with -0 folded into 0. */
function numberText(n: number): string {
  return Object.is(n, -0) ? '0' : String(n);
}

/** Encodes one `[name, tag, …]` entry. */
export function keyEntry(name: string, v: DistinguishingValue): string {
  const n = JSON.stringify(name);
  switch (v.type) {
    case 'text':
      return `[${n},"t",${JSON.stringify(v.value)}]`;
    case 'int':
      return `[${n},"i","${numberText(v.value)}"]`;
    case 'float':
      return `[${n},"f","${numberText(v.value)}"]`;
    case 'datetime':
      return `[${n},"d","${formatInstant(v.value)}"]`;
    case 'range':
      return `[${n},"r","${formatInstant(v.begin)}","${formatInstant(v.end)}"]`;
  }
}

/** The canonical key of a set of distinguishing values (see the module comment for the format). */
export function distinguishingKey(values: DistinguishingValues): string {
  return keyOf(Object.keys(values).sort(compareCodeUnits), values);
}

/**
 * The key of `values` whose names are already sorted with {@link compareCodeUnits}: what a
 * compiled trigger calls per event, having sorted its distinguished_by once at load.
 */
export function keyOf(sortedNames: readonly string[], values: DistinguishingValues): string {
  let out = '[';
  for (let i = 0; i < sortedNames.length; i++) {
    const name = sortedNames[i] as string;
    if (i > 0) out += ',';
    out += keyEntry(name, values[name] as DistinguishingValue);
  }
  return `${out}]`;
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
