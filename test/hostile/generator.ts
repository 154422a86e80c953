/**
 * The hostile-input generator: a seeded, deterministic stream of notification-topic record values that a
 * trigger worker must survive — invalid JSON, binary, non-UTF-8, wrong-typed and missing fields, huge
 * strings, deep nesting, invalid dates, oversize records, Avro-framed values with unknown schema ids — mixed
 * with valid notigen notifications. Each input says which outcomes are acceptable, so a run can check the
 * worker's verdict per input, not only in total.
 */
import { generateNotifications, Prng } from '../../src/notigen/index.js';

/**
 * What the route stage may do with one input: `event` (distilled; it then matched some triggers or none),
 * `unmatched` (dropped: no event definition covers it) or `dead:<reason>` (dead-lettered with that reason).
 * `dead:*` accepts any dead-letter reason.
 */
export type Outcome = 'event' | 'unmatched' | `dead:${string}`;

/** One generated input. */
export interface HostileInput {
  /** Position in the generated sequence; also the Kafka record key (`h<index>`), copied to the dead letter. */
  readonly index: number;
  /** Which kind of hostility (for reporting). */
  readonly kind: string;
  /** The record value; null produces a record without a value (a tombstone). */
  readonly value: Buffer | null;
  /** The acceptable outcomes. */
  readonly allowed: readonly Outcome[];
}

/** The broker's default `max.message.bytes` (1 MiB) and the worker's default `max_notification_bytes`. */
export const ONE_MIB = 1024 * 1024;

type Json = Record<string, unknown>;

interface Kind {
  readonly name: string;
  /** Relative weight. */
  readonly weight: number;
  make(rng: Prng, base: Json, index: number): { value: Buffer | null; allowed: readonly Outcome[] };
}

/** Concatenates bytes (latin1 maps each byte to one char and back; @types/node 20.9's Buffer.concat typing clashes with TS 5.9). */
const cat = (parts: readonly Buffer[]): Buffer =>
  Buffer.from(parts.map((p) => p.toString('latin1')).join(''), 'latin1');
const enc = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const clone = (n: Json): Json => structuredClone(n);
const payloadOf = (n: Json): Json => n.payload as Json;

/** A deterministic string of `n` ASCII letters. */
function letters(rng: Prng, n: number): string {
  const chunk = Array.from({ length: 64 }, () => String.fromCharCode(97 + rng.int(26))).join('');
  return chunk.repeat(Math.ceil(n / 64)).slice(0, n);
}

function randomBytes(rng: Prng, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

const ANY_DEAD: Outcome[] = ['dead:*'];
/** Wrong-typed fields: the distiller may read them leniently (as the reference's Python would) or refuse. */
const ANYTHING: Outcome[] = ['event', 'unmatched', 'dead:*'];

const INVALID_JSON_TEXTS = [
  '{',
  '}',
  '{"event_type": "compute.instance.create.start", ',
  "{'event_type': 'x'}",
  '{"a": NaN}',
  '{"a": 1,}',
  '[1, 2',
  'undefined',
  '{"event_type": "x"} trailing',
  '"unterminated',
  '{"a": "\\x41"}',
  '{"a": 01}',
  '\u0000\u0001\u0002',
  '<notification/>',
  'event_type=compute.instance.create.start',
];

const BAD_DATES = [
  '2015-13-45 99:00:00',
  '2015-02-30 10:00:00',
  'yesterday',
  '2015-02-01T25:61:00Z',
  '0000-00-00 00:00:00',
  '99999-01-01 00:00:00',
  '2015-02-01 10:00:00 +99:00',
  'null',
  '1e400',
  '2015-02-01\u0000',
];

const KINDS: readonly Kind[] = [
  {
    name: 'valid',
    weight: 20,
    make: (_rng, base, i) => ({ value: enc({ ...base, message_id: `hostile-${i}` }), allowed: ['event'] }),
  },
  {
    name: 'unknown_event_type',
    weight: 4,
    make: (rng, base, i) => ({
      value: enc({ ...base, message_id: `hostile-${i}`, event_type: `hostile.unknown.${rng.int(1000)}` }),
      allowed: ['unmatched'],
    }),
  },
  {
    name: 'invalid_json',
    weight: 8,
    make: (rng, base) => {
      const text = JSON.stringify(base);
      const v =
        rng.int(3) === 0
          ? rng.pick(INVALID_JSON_TEXTS)
          : text.slice(0, 1 + rng.int(Math.max(1, text.length - 2))); // truncated mid-document
      return { value: Buffer.from(v), allowed: ['dead:invalid_json'] };
    },
  },
  {
    name: 'binary',
    weight: 5,
    // The first byte is not ASCII, so the value can never be read as JSON by accident.
    make: (rng) => {
      const b = randomBytes(rng, 1 + rng.int(2000));
      b[0] = 0x80 + rng.int(128);
      return { value: b, allowed: ['dead:invalid_json'] };
    },
  },
  {
    name: 'non_utf8_in_string',
    weight: 4,
    // Valid JSON syntax whose string holds bytes that are not UTF-8 (lone continuation bytes, overlong forms,
    // a surrogate encoded in UTF-8). The worker may decode leniently (U+FFFD) or refuse the record.
    make: (rng, base, i) => {
      const bad = rng.pick([
        Buffer.from([0x80]),
        Buffer.from([0xc0, 0xaf]),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from([0xff, 0xfe]),
        Buffer.from([0xe2, 0x82]),
      ]);
      const text = JSON.stringify({ ...base, message_id: `hostile-${i}` });
      const at = text.indexOf('"display_name":"');
      const cut = at >= 0 ? at + 16 : text.indexOf('"event_type":"') + 14;
      return {
        value: cat([Buffer.from(text.slice(0, cut)), bad, Buffer.from(text.slice(cut))]),
        allowed: ['event', 'dead:invalid_json', 'dead:invalid_utf8', 'dead:*'],
      };
    },
  },
  {
    name: 'non_utf8_whole',
    weight: 2,
    // The whole notification in UTF-16LE (with BOM): every other byte is NUL.
    make: (_rng, base, i) => ({
      value: cat([
        Buffer.from([0xff, 0xfe]),
        Buffer.from(JSON.stringify({ ...base, message_id: `hostile-${i}` }), 'utf16le'),
      ]),
      allowed: ['dead:invalid_json'],
    }),
  },
  {
    name: 'not_an_object',
    weight: 4,
    make: (rng, base) => ({
      value: enc(rng.pick<unknown>([[base], 42, 'compute.instance.create.start', null, true, [], 1.5e308])),
      allowed: ['dead:not_an_object'],
    }),
  },
  {
    name: 'missing_event_type',
    weight: 3,
    make: (_rng, base, i) => {
      const n = clone(base);
      n.message_id = `hostile-${i}`;
      delete n.event_type;
      return { value: enc(n), allowed: ['dead:missing_event_type'] };
    },
  },
  {
    name: 'missing_message_id',
    weight: 3,
    make: (_rng, base) => {
      const n = clone(base);
      delete n.message_id;
      return { value: enc(n), allowed: ['dead:missing_message_id'] };
    },
  },
  {
    name: 'missing_payload',
    weight: 2,
    make: (_rng, base, i) => {
      const n = clone(base);
      n.message_id = `hostile-${i}`;
      delete n.payload;
      return { value: enc(n), allowed: ['event', 'dead:*'] };
    },
  },
  {
    name: 'wrong_type_envelope_field',
    weight: 6,
    make: (rng, base, i) => {
      const n = clone(base);
      n.message_id = `hostile-${i}`;
      const field = rng.pick([
        'event_type',
        'message_id',
        'timestamp',
        'payload',
        'publisher_id',
        'priority',
      ]);
      n[field] = rng.pick<unknown>([
        12345,
        -1,
        true,
        false,
        [],
        ['compute.instance.create.start'],
        {},
        { nested: { deeper: 1 } },
        1e21,
        '',
      ]);
      return { value: enc(n), allowed: ANYTHING };
    },
  },
  {
    name: 'wrong_type_payload_field',
    weight: 6,
    make: (rng, base, i) => {
      const n = clone(base);
      n.message_id = `hostile-${i}`;
      const p = payloadOf(n);
      const field = rng.pick([
        'tenant_id',
        'instance_id',
        'memory_mb',
        'vcpus',
        'launched_at',
        'deleted_at',
        'state',
        'image_meta',
        'display_name',
        'audit_period_beginning',
      ]);
      p[field] = rng.pick<unknown>([
        'abc',
        '12.5x',
        -0,
        1e300,
        Number.MAX_SAFE_INTEGER * 1024,
        [],
        [1, 2, 3],
        {},
        { a: { b: 'c' } },
        true,
        '',
        '   ',
      ]);
      return { value: enc(n), allowed: ANYTHING };
    },
  },
  {
    name: 'nul_in_text_trait',
    weight: 1,
    // A NUL character (valid JSON, "\u0000") in a text trait: PostgreSQL can store it in neither text nor
    // jsonb, so the distiller refuses it (bad_trait_value) rather than let a checkpoint fail forever.
    make: (rng, base, i) => {
      const n = clone(base);
      n.message_id = `hostile-${i}`;
      payloadOf(n)[rng.pick(['display_name', 'tenant_id', 'state'])] = `a\u0000b${rng.int(100)}`;
      return { value: enc(n), allowed: ['dead:bad_trait_value'] };
    },
  },
  {
    name: 'lone_surrogate_in_text_trait',
    weight: 1,
    // JSON may escape an unpaired UTF-16 surrogate ("\ud800"); JavaScript keeps it in the string.
    make: (rng, base, i) => {
      const n = clone(base);
      n.message_id = `hostile-${i}`;
      const text = JSON.stringify(n).replace(
        '"display_name":"',
        `"display_name":"${rng.pick(['\\ud800', '\\udfff', 'x\\udbff'])}`,
      );
      return { value: Buffer.from(text), allowed: ['dead:bad_trait_value'] };
    },
  },
  {
    name: 'bad_timestamp',
    weight: 4,
    make: (rng, base, i) => ({
      value: enc({ ...base, message_id: `hostile-${i}`, timestamp: rng.pick(BAD_DATES) }),
      allowed: ['dead:bad_timestamp'],
    }),
  },
  {
    name: 'bad_trait_date',
    weight: 3,
    make: (rng, base, i) => {
      const n = clone(base);
      n.message_id = `hostile-${i}`;
      payloadOf(n).launched_at = rng.pick(BAD_DATES);
      // Only notifications whose definition has the launched_at trait can refuse it.
      return { value: enc(n), allowed: ['event', 'unmatched', 'dead:bad_trait_value'] };
    },
  },
  {
    name: 'bad_trait_int',
    weight: 3,
    make: (rng, base, i) => {
      const n = clone(base);
      n.message_id = `hostile-${i}`;
      payloadOf(n).memory_mb = rng.pick(['lots', '12abc', '0x', 'NaN!', '1_000_000x']);
      return { value: enc(n), allowed: ['event', 'unmatched', 'dead:bad_trait_value'] };
    },
  },
  {
    name: 'huge_string_untraited',
    weight: 0.5,
    // A large field no trait reads: the record stays under the broker's limit and must be processed.
    make: (rng, base, i) => {
      const n = clone(base);
      n.message_id = `hostile-${i}`;
      payloadOf(n).hostile_padding = letters(rng, 20_000 + rng.int(200_000));
      return { value: enc(n), allowed: ['event'] };
    },
  },
  {
    name: 'huge_string_traited',
    weight: 0.2,
    // A large value in a text trait: the event may be too large for a stream-events record.
    make: (rng, base, i) => {
      const n = clone(base);
      n.message_id = `hostile-${i}`;
      payloadOf(n).display_name = letters(rng, 100_000 + rng.int(850_000));
      return { value: enc(n), allowed: ['event', 'dead:event_too_large'] };
    },
  },
  {
    name: 'huge_event_type',
    weight: 0.3,
    make: (rng, base, i) => ({
      value: enc({
        ...base,
        message_id: `hostile-${i}`,
        event_type: `compute.instance.${letters(rng, 50_000)}`,
      }),
      allowed: ['event', 'unmatched', 'dead:event_too_large'],
    }),
  },
  {
    name: 'deep_nesting_payload',
    weight: 1,
    // Deeply nested arrays and objects inside a valid notification, where traits do and do not look.
    make: (rng, base, i) => {
      const depth = 1_000 + rng.int(20_000);
      const obj = rng.chance(0.5);
      const nested = obj
        ? `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
        : `${'['.repeat(depth)}${']'.repeat(depth)}`;
      const field = rng.pick(['display_name', 'image_meta', 'hostile_nest', 'launched_at', 'memory_mb']);
      const text = JSON.stringify({ ...base, message_id: `hostile-${i}` });
      const at = text.indexOf('"payload":{') + 11;
      return {
        value: Buffer.from(`${text.slice(0, at)}"${field}":${nested},${text.slice(at)}`),
        allowed: ['event', 'unmatched', 'dead:bad_trait_value', 'dead:*'],
      };
    },
  },
  {
    name: 'deep_nesting_top',
    weight: 0.3,
    make: (rng) => {
      const depth = 10_000 + rng.int(100_000);
      const closed = rng.chance(0.5);
      return {
        value: Buffer.from(`${'['.repeat(depth)}${closed ? ']'.repeat(depth) : ''}`),
        allowed: [closed ? 'dead:not_an_object' : 'dead:invalid_json'],
      };
    },
  },
  {
    name: 'deep_nesting_field',
    // A field the distiller describes in its error detail, nested deeper than any stack: the detail must not
    // recurse into it.
    make: (rng, base, i) => {
      const depth = 20_000 + rng.int(80_000);
      const field = rng.pick(['event_type', 'message_id', 'timestamp', 'oslo.version']);
      const nested = rng.chance(0.5)
        ? `${'['.repeat(depth)}${']'.repeat(depth)}`
        : `${'{"a":'.repeat(depth)}0${'}'.repeat(depth)}`;
      const text = JSON.stringify({ ...base, message_id: `hostile-${i}`, [field]: null });
      const reason: Outcome = {
        event_type: 'dead:missing_event_type',
        message_id: 'dead:missing_message_id',
        timestamp: 'dead:bad_timestamp',
        'oslo.version': 'dead:bad_envelope',
      }[field] as Outcome;
      return {
        value: Buffer.from(text.replace(`"${field}":null`, `"${field}":${nested}`)),
        allowed: [reason],
      };
    },
    weight: 0.5,
  },
  {
    name: 'bad_envelope',
    weight: 2,
    make: (rng, base) => ({
      value: enc(
        rng.pick<Json>([
          { 'oslo.version': '2.0', 'oslo.message': '{not json' },
          { 'oslo.version': '2.0', 'oslo.message': 42 },
          { 'oslo.version': '2.0', 'oslo.message': '[1]' },
          { 'oslo.version': '9.9', 'oslo.message': JSON.stringify(base) },
          { 'oslo.version': 2, 'oslo.message': JSON.stringify(base) },
        ]),
      ),
      allowed: ['dead:bad_envelope'],
    }),
  },
  {
    name: 'empty',
    weight: 1,
    make: (rng) => ({ value: rng.chance(0.5) ? null : Buffer.alloc(0), allowed: ['dead:empty_value'] }),
  },
  {
    name: 'avro_unknown_schema',
    weight: 3,
    // Confluent wire format: magic byte 0, a 4-byte schema id no registry knows, then Avro-looking garbage.
    make: (rng) => {
      const head = Buffer.alloc(5);
      head.writeUInt32BE(900_000_000 + rng.int(1_000_000), 1);
      return { value: cat([head, randomBytes(rng, rng.int(400))]), allowed: ANY_DEAD };
    },
  },
  {
    name: 'oversize',
    weight: 0.05,
    // Larger than the broker's default 1 MiB (the test topic allows more): dead-lettered unread.
    make: (rng, base, i) => {
      const n = clone(base);
      n.message_id = `hostile-${i}`;
      payloadOf(n).hostile_padding = letters(rng, ONE_MIB + rng.int(ONE_MIB / 2));
      return { value: enc(n), allowed: ['dead:too_large'] };
    },
  },
];

/** The kinds' names, for reports. */
export const KIND_NAMES: readonly string[] = KINDS.map((k) => k.name);

/**
 * Kinds that expose a bug not fixed yet, left out of a run unless asked for (`--include-known-bugs`), so the
 * CI run stays meaningful for everything else. Each entry says what goes wrong; remove it with the fix.
 */
export const KNOWN_OPEN_BUGS: Readonly<Record<string, string>> = {};

/**
 * `size` hostile inputs for `seed`, deterministically. Every kind appears at least once when `size` is at
 * least the number of kinds (the first inputs walk through the kinds in order), so a short CI run still
 * covers everything.
 */
export function* generateHostile(options: {
  seed: number;
  size: number;
  /** Kinds not to generate (see {@link KNOWN_OPEN_BUGS}). */
  exclude?: readonly string[];
}): Generator<HostileInput> {
  const kinds = KINDS.filter((k) => !(options.exclude ?? []).includes(k.name));
  const totalWeight = kinds.reduce((s, k) => s + k.weight, 0);
  const rng = new Prng(options.seed, 7);
  // Bases are the instance notifications etc/event_definitions.yaml covers, so a mutation's outcome depends
  // on the mutation alone (an uncovered event type would be dropped before its timestamp is even read).
  const bases = ([...generateNotifications({ seed: options.seed, instances: 20, days: 2 })] as Json[]).filter(
    (n) => typeof n.event_type === 'string' && n.event_type.startsWith('compute.instance.'),
  );
  if (bases.length === 0) throw new Error('notigen produced no notifications');
  for (let index = 0; index < options.size; index++) {
    let kind: Kind;
    if (index < kinds.length) kind = kinds[index] as Kind;
    else {
      let r = rng.float() * totalWeight;
      kind = kinds[kinds.length - 1] as Kind;
      for (const k of kinds) {
        r -= k.weight;
        if (r < 0) {
          kind = k;
          break;
        }
      }
    }
    const base = bases[rng.int(bases.length)] as Json;
    const { value, allowed } = kind.make(rng, base, index);
    yield { index, kind: kind.name, value, allowed };
  }
}

/** Whether `outcome` is one of `allowed`. */
export function isAllowed(outcome: Outcome, allowed: readonly Outcome[]): boolean {
  return allowed.includes(outcome) || (outcome.startsWith('dead:') && allowed.includes('dead:*'));
}
