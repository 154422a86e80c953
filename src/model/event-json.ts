/**
 * The flat JSON form of an event (SPEC §7), shared by `winchester distill`, `winchester replay`
 * and anything else that writes events as JSON:
 *
 * ```json
 * {"message_id":"…","event_type":"compute.instance.exists","timestamp":"2015-01-22T02:50:22.702356Z",
 *  "memory_mb":15360,"ratio":1.0,"launched_at":"2015-01-20T10:00:00.000000Z","host":"host-1"}
 * ```
 *
 * Types survive the round trip {@link eventToJson} → {@link eventFromJson}:
 * - `datetime` is written as ISO-8601 UTC with exactly six fractional digits and `Z`;
 *   a string in exactly that form is read back as a datetime;
 * - `int` is written as an integer literal; an integer literal is read back as an int;
 * - `float` is always written with a `.` or an exponent (`1.0`, not `1`); a number literal with
 *   `.` or an exponent is read back as a float — which is why reading needs the literal's text,
 *   not the value `JSON.parse` gives (see {@link parseJsonLossless});
 * - `text` is any other string. (A text trait that happens to look exactly like one of our
 *   datetimes comes back as a datetime: the flat format has no room for a type tag.)
 *
 * Trait names equal to `message_id`, `event_type` or `timestamp` cannot be represented and are not
 * written (the distiller never produces them).
 *
 * Winchester's own topics carry events in a second, **typed** form ({@link eventToTypedJson} →
 * {@link eventFromTyped}) that the native `JSON.parse` reads without losing anything, so the streams
 * stage and the pipeline workers never need the (JavaScript) lossless parser for records we wrote:
 *
 * ```json
 * {"message_id":"…","event_type":"compute.instance.exists","timestamp":1422756622702356,
 *  "traits":["memory_mb","i",15360,"ratio","f",1,"launched_at","d",1422439200000000,"host","t","host-1"]}
 * ```
 *
 * `timestamp` and datetime traits are integer microseconds since the epoch; `traits` is a flat list of
 * (name, type, value) triples in the event's order, the type being `t` text, `i` int, `f` float or
 * `d` datetime. The type says how to read the value, so `1` may be a float and a text is never taken
 * for a datetime; a float -0 is written `-0`. Every trait survives, whatever its name.
 */
import { InputError } from '../errors.js';
import { formatInstant, type Instant, isInstantInRange, parseDatetime } from '../timex/instant.js';
import type { Event, TraitValue } from './event.js';

const ENVELOPE = new Set(['message_id', 'event_type', 'timestamp']);

/** Our datetime output format, and only it (so free text is not mistaken for a datetime). */
const OUR_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

// A string without quotes, backslashes, control characters or surrogates is its own JSON body;
// checking that is much cheaper than JSON.stringify on this hot path.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

// Trait names repeat endlessly; their quoted form is cached (bounded, in case names are hostile).
const quotedNames = new Map<string, string>();

function quoteName(name: string): string {
  let q = quotedNames.get(name);
  if (q === undefined) {
    q = quote(name);
    if (quotedNames.size >= 10_000) quotedNames.clear();
    quotedNames.set(name, q);
  }
  return q;
}

/** A float literal that keeps its type in JSON: always has a '.' or an exponent. */
export function formatFloat(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`a float trait must be finite, got ${value}`);
  const s = String(value);
  return /^-?\d+$/.test(s) ? `${s}.0` : s;
}

/** The JSON text of one trait value. */
export function traitValueToJson(t: TraitValue): string {
  switch (t.type) {
    case 'text':
      return quote(t.value);
    case 'int':
      if (!Number.isSafeInteger(t.value))
        throw new RangeError(`an int trait must be a safe integer, got ${t.value}`);
      return String(t.value === 0 ? 0 : t.value);
    case 'float':
      return formatFloat(t.value);
    case 'datetime':
      return `"${formatInstant(t.value)}"`;
  }
}

/**
 * The event as one line of flat JSON (no trailing newline): `message_id`, `event_type`,
 * `timestamp`, then every trait in the event's order. To embed events in a larger JSON document
 * (e.g. replay's `"events": [...]`), splice these strings in rather than re-serializing parsed
 * objects, or floats like `1.0` lose their type.
 */
export function eventToJson(event: Event): string {
  let out = `{"message_id":${quote(event.message_id)},"event_type":${quote(event.event_type)},"timestamp":"${formatInstant(event.timestamp)}"`;
  const traits = event.traits;
  // Object.keys rather than for-in: traits objects are often prototype-less dictionaries, where
  // for-in is several times slower.
  const names = Object.keys(traits);
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (ENVELOPE.has(name)) continue;
    out += `,${quoteName(name)}:${traitValueToJson(traits[name]!)}`;
  }
  return `${out}}`;
}

// ---- the typed form --------------------------------------------------------------------------

/**
 * The event in the typed form (see the module comment): one line, the envelope then every trait in the
 * event's order, each as `name,tag,value`.
 * @throws RangeError for an int that is not a safe integer, a float that is not finite, or a datetime
 * or timestamp that is not a safe integer (the distiller never produces them).
 */
export function eventToTypedJson(event: Event): string {
  let out = `{"message_id":${quote(event.message_id)},"event_type":${quote(event.event_type)},"timestamp":${instantJson(event.timestamp)},"traits":[`;
  const traits = event.traits;
  const names = Object.keys(traits);
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (i > 0) out += ',';
    out += `${quoteName(name)},${typedValueJson(traits[name] as TraitValue)}`;
  }
  return `${out}]}`;
}

/** `tag,value` of one trait in the typed form. */
function typedValueJson(t: TraitValue): string {
  switch (t.type) {
    case 'text':
      return `"t",${quote(t.value)}`;
    case 'int':
      if (!Number.isSafeInteger(t.value))
        throw new RangeError(`an int trait must be a safe integer, got ${t.value}`);
      return `"i",${t.value === 0 ? '0' : String(t.value)}`;
    case 'float':
      return `"f",${floatJson(t.value)}`;
    case 'datetime':
      return `"d",${instantJson(t.value)}`;
  }
}

/**
 * A finite float as a JSON number `JSON.parse` gives back exactly: the shortest round-trip form, and
 * `-0` for negative zero (which `String` would write as `0`).
 * @throws RangeError for NaN and ±Infinity, which JSON cannot carry.
 */
export function floatJson(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`a float must be finite, got ${value}`);
  return value === 0 && 1 / value < 0 ? '-0' : String(value);
}

/**
 * An instant as integer microseconds.
 * @throws RangeError when it is not a safe integer.
 */
export function instantJson(t: Instant): string {
  if (!Number.isSafeInteger(t)) throw new RangeError(`an instant must be integer microseconds, got ${t}`);
  return String(t);
}

/**
 * An instant read from the typed form: integer microseconds within the supported range (1700–2200).
 * @throws InputError naming `what` otherwise.
 */
export function instantOfTyped(v: unknown, what: string): Instant {
  if (typeof v !== 'number' || !isInstantInRange(v)) {
    throw new InputError(`${what} must be integer microseconds within 1700–2200, got ${describe(v)}`);
  }
  return v === 0 ? 0 : v;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v)) return 'a list';
  if (v === null || typeof v !== 'object') return String(v);
  return 'an object';
}

function typedTrait(name: string, tag: unknown, v: unknown): TraitValue {
  switch (tag) {
    case 't':
      if (typeof v === 'string') return { type: 'text', value: v };
      break;
    case 'i':
      if (typeof v === 'number' && Number.isSafeInteger(v)) return { type: 'int', value: v === 0 ? 0 : v };
      break;
    case 'f':
      // JSON.parse gives Infinity for a literal like 1e400.
      if (typeof v === 'number' && Number.isFinite(v)) return { type: 'float', value: v };
      break;
    case 'd':
      return { type: 'datetime', value: instantOfTyped(v, `trait ${JSON.stringify(name)}`) };
    default:
      throw new InputError(`trait ${JSON.stringify(name)}: unknown type tag ${describe(tag)} (t, i, f or d)`);
  }
  const expected = tag === 't' ? 'a string' : tag === 'i' ? 'a safe integer' : 'a finite number';
  throw new InputError(
    `trait ${JSON.stringify(name)} of type ${tag} must be ${expected}, got ${describe(v)}`,
  );
}

function typedEnvelopeString(obj: Record<string, unknown>, key: string): string {
  const v = obj[key];
  if (typeof v !== 'string' || v === '') throw new InputError(`event ${key} must be a non-empty string`);
  return v;
}

/**
 * Builds an event from its typed form as `JSON.parse` returned it (the inverse of
 * {@link eventToTypedJson}). A trait listed twice keeps its last value.
 * @throws InputError saying what is wrong when the value is not a typed event.
 */
export function eventFromTyped(value: unknown): Event {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InputError('an event must be a JSON object');
  }
  const obj = value as Record<string, unknown>;
  const message_id = typedEnvelopeString(obj, 'message_id');
  const event_type = typedEnvelopeString(obj, 'event_type');
  const timestamp = instantOfTyped(obj.timestamp, 'event timestamp');
  const list = obj.traits;
  if (!Array.isArray(list) || list.length % 3 !== 0) {
    throw new InputError('event traits must be a list of (name, type, value) triples');
  }
  // Prototype-less, so assigning a trait called `__proto__` makes an own property like any other name.
  const traits: Record<string, TraitValue> = Object.create(null);
  for (let i = 0; i < list.length; i += 3) {
    const name = list[i];
    if (typeof name !== 'string')
      throw new InputError(`event trait names must be strings, got ${describe(name)}`);
    traits[name] = typedTrait(name, list[i + 1], list[i + 2]);
  }
  return { message_id, event_type, timestamp, traits };
}

/**
 * Reads one event from its typed JSON text.
 * @throws InputError for bad JSON or a value that is not a typed event.
 */
export function eventFromTypedJson(text: string): Event {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new InputError(`invalid JSON: ${(err as Error).message}`);
  }
  return eventFromTyped(v);
}

// ---- the flat form, read losslessly ------------------------------------------------------------

/** A JSON number as written, for readers that must tell `1` from `1.0`. */
export class JsonNumber {
  constructor(readonly text: string) {}
  get value(): number {
    return Number(this.text);
  }
  /** True for a literal with a fraction or an exponent. */
  get isFloat(): boolean {
    return /[.eE]/.test(this.text);
  }
}

/** A JSON value where numbers are kept as {@link JsonNumber} literals. */
export type LosslessJson =
  | null
  | boolean
  | string
  | JsonNumber
  | LosslessJson[]
  | { [key: string]: LosslessJson };

/** A syntax error in {@link parseJsonLossless}; `offset` is 0-based in the text. */
export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at position ${offset}`);
  }
}

/**
 * Number literals whose type or value `JSON.parse` would lose: a fraction ending in 0 (`1.0`, `2.50`), an
 * exponent, or 16+ digits (beyond 2^53). Each is matched only where a literal ends (`,` `}` `]`, white
 * space or the end), so our datetimes (`….000000Z"`) never match; a string that happens to contain such text
 * only sends the record down the slower, exact path.
 */
const LOSSY_NUMBER = /\.\d*0(?:[,}\]\s]|$)|\d[eE][+-]?\d+(?:[,}\]\s]|$)|\d{16}/;

/** A value from `JSON.parse` as {@link LosslessJson}: exact when no literal matched {@link LOSSY_NUMBER}. */
function losslessOf(v: unknown): LosslessJson {
  if (typeof v === 'number') return new JsonNumber(String(v));
  if (typeof v !== 'object' || v === null) return v as LosslessJson;
  if (Array.isArray(v)) return v.map(losslessOf);
  const out: { [key: string]: LosslessJson } = {};
  for (const k of Object.keys(v)) {
    // Defined, not assigned, as the exact parser does: a "__proto__" key stays an own property.
    Object.defineProperty(out, k, {
      value: losslessOf((v as Record<string, unknown>)[k]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * The same result as {@link parseJsonLossless}, through the native `JSON.parse` whenever no number literal
 * could lose its type or value that way (the common case: about ten times faster on stream-events
 * records); otherwise, and for anything `JSON.parse` refuses, through the exact parser.
 */
export function parseJsonFast(text: string): LosslessJson {
  if (!LOSSY_NUMBER.test(text)) {
    try {
      return losslessOf(JSON.parse(text));
    } catch {
      // Invalid or too deeply nested: the exact parser gives the error (or the value) itself.
    }
  }
  return parseJsonLossless(text);
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WS = /[ \t\n\r]*/y;

/**
 * Parses JSON (RFC 8259) keeping every number's literal text, so `1.0` and `1` stay different.
 * Strings are decoded by `JSON.parse` itself (exact escapes); nesting is limited to 1000 levels.
 */
export function parseJsonLossless(text: string): LosslessJson {
  let i = 0;
  const ws = () => {
    WS.lastIndex = i;
    WS.exec(text);
    i = WS.lastIndex;
  };
  const fail = (what: string): never => {
    throw new JsonSyntaxError(i >= text.length ? 'unexpected end of JSON' : `${what} '${text[i]}'`, i);
  };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c)) fail('unterminated string');
      if (c === 0x22) break;
      if (c === 0x5c) i += 2;
      else if (c < 0x20) fail('control character in string');
      else i++;
    }
    i++;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      throw new JsonSyntaxError('invalid string escape', start);
    }
  };
  const value = (depth: number): LosslessJson => {
    if (depth > 1000) throw new JsonSyntaxError('nesting too deep', i);
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: { [key: string]: LosslessJson } = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a string key, got');
        const key = str();
        ws();
        if (text[i] !== ':') fail("expected ':', got");
        i++;
        Object.defineProperty(obj, key, {
          value: value(depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("expected ',' or '}', got");
      }
    }
    if (c === '[') {
      i++;
      const arr: LosslessJson[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("expected ',' or ']', got");
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m) {
      i = NUMBER.lastIndex;
      return new JsonNumber(m[0]);
    }
    return fail('unexpected character');
  };
  const v = value(0);
  ws();
  if (i < text.length) fail('unexpected character after the JSON value');
  return v;
}

function traitFromLossless(name: string, v: LosslessJson): TraitValue | undefined {
  if (v === null) return undefined; // a null trait is an absent trait
  if (typeof v === 'string') {
    if (OUR_DATETIME.test(v)) {
      try {
        return { type: 'datetime', value: parseDatetime(v) };
      } catch {
        return { type: 'text', value: v };
      }
    }
    return { type: 'text', value: v };
  }
  if (v instanceof JsonNumber) {
    const n = v.value;
    if (v.isFloat) {
      if (!Number.isFinite(n)) throw new InputError(`trait '${name}': float out of range: ${v.text}`);
      return { type: 'float', value: n };
    }
    if (!Number.isSafeInteger(n)) throw new InputError(`trait '${name}': integer out of range: ${v.text}`);
    return { type: 'int', value: n === 0 ? 0 : n };
  }
  throw new InputError(
    `trait '${name}': unsupported value (${typeof v === 'boolean' ? v : Array.isArray(v) ? 'a list' : 'an object'}); traits are strings, numbers or datetimes`,
  );
}

function envelopeString(obj: { [key: string]: LosslessJson }, key: string): string {
  const v = obj[key];
  if (typeof v !== 'string' || v === '') throw new InputError(`event ${key} must be a non-empty string`);
  return v;
}

/** Builds an event from a lossless-parsed flat object; throws {@link InputError} saying what is wrong. */
export function eventFromLossless(value: LosslessJson): Event {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof JsonNumber) {
    throw new InputError('an event must be a JSON object');
  }
  const message_id = envelopeString(value, 'message_id');
  const event_type = envelopeString(value, 'event_type');
  const ts = envelopeString(value, 'timestamp');
  let timestamp: Instant;
  try {
    timestamp = parseDatetime(ts);
  } catch (err) {
    throw new InputError(`event timestamp: ${(err as Error).message}`);
  }
  const traits: Record<string, TraitValue> = Object.create(null);
  for (const name of Object.keys(value)) {
    if (ENVELOPE.has(name)) continue;
    const t = traitFromLossless(name, value[name]!);
    if (t !== undefined) traits[name] = t;
  }
  return { message_id, event_type, timestamp, traits };
}

/**
 * Reads one event from its flat JSON text (the inverse of {@link eventToJson}; rules in this
 * module's header). The envelope `timestamp` may be any datetime `parseDatetime` reads.
 * Throws {@link InputError} for bad JSON or a value that is not an event.
 */
export function eventFromJson(text: string): Event {
  let v: LosslessJson;
  try {
    v = parseJsonLossless(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new InputError(`invalid JSON: ${err.message}`);
    throw err;
  }
  return eventFromLossless(v);
}

/**
 * Reads an event from an already-parsed object. Without the literal text, a number is an int
 * when integral and a float otherwise (so `1.0` becomes an int): prefer {@link eventFromJson}.
 */
export function eventFromJsonObject(obj: unknown): Event {
  const toLossless = (v: unknown): LosslessJson => {
    if (typeof v === 'number') return new JsonNumber(Number.isInteger(v) ? String(v) : formatFloat(v));
    if (Array.isArray(v)) return v.map(toLossless);
    if (typeof v === 'object' && v !== null) {
      const o: { [key: string]: LosslessJson } = {};
      for (const [k, x] of Object.entries(v)) o[k] = toLossless(x);
      return o;
    }
    return v as LosslessJson;
  };
  return eventFromLossless(toLossless(obj));
}
