/**
 * Pure decisions `winchester produce` makes about each input line before it reaches Kafka: is it a
 * notification at all, and which key does it get. No kafkajs here, so the rules are unit-tested alone.
 */

/** Why a line is not produced. */
export type MalformedKind = 'invalid_json' | 'not_an_object' | 'invalid_envelope';

/** The verdict on one line: a key to produce it with (null: no key), or why it is skipped. */
export type LineVerdict =
  | { readonly ok: true; readonly key: string | null }
  | { readonly ok: false; readonly kind: MalformedKind; readonly detail: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// An id usable as a key: a non-empty string, or a number (some emitters send integer ids).
function idText(value: unknown): string | null {
  if (typeof value === 'string') return value === '' ? null : value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

/**
 * The Kafka key of a (parsed, unwrapped) notification: `payload.instance_id`, else
 * `payload.instance_uuid`, else `message_id`, else null.
 *
 * Why the instance first: a partition is the unit of ordering in Kafka, and Winchester's streams are
 * almost always per instance (distinguished by instance_id), so keying by instance keeps each instance's
 * notifications in the order they were emitted, all on one partition. Notifications about no instance
 * have no such order to keep; their message_id spreads them evenly over the partitions instead.
 */
export function notificationKey(notification: Readonly<Record<string, unknown>>): string | null {
  const payload = notification.payload;
  if (isObject(payload)) {
    const instance = idText(payload.instance_id) ?? idText(payload.instance_uuid);
    if (instance !== null) return instance;
  }
  return idText(notification.message_id);
}

// oslo.messaging v2 wraps the notification as a JSON string in `oslo.message`.
const OSLO_MESSAGE = 'oslo.message';

/**
 * Judges one line of input: it must be a JSON object (an oslo.messaging v2 envelope must wrap one);
 * its key is chosen by {@link notificationKey} on the unwrapped notification.
 */
export function judgeLine(text: string): LineVerdict {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { ok: false, kind: 'invalid_json', detail: (error as Error).message };
  }
  if (!isObject(parsed)) {
    return { ok: false, kind: 'not_an_object', detail: `a JSON ${jsonKind(parsed)}, not an object` };
  }
  const wrapped = parsed[OSLO_MESSAGE];
  if (wrapped === undefined) return { ok: true, key: notificationKey(parsed) };
  if (typeof wrapped !== 'string') {
    return {
      ok: false,
      kind: 'invalid_envelope',
      detail: `${OSLO_MESSAGE} is a ${jsonKind(wrapped)}, not a string`,
    };
  }
  let inner: unknown;
  try {
    inner = JSON.parse(wrapped);
  } catch (error) {
    return { ok: false, kind: 'invalid_envelope', detail: `${OSLO_MESSAGE}: ${(error as Error).message}` };
  }
  if (!isObject(inner)) {
    return {
      ok: false,
      kind: 'invalid_envelope',
      detail: `${OSLO_MESSAGE} holds a JSON ${jsonKind(inner)}, not an object`,
    };
  }
  return { ok: true, key: notificationKey(inner) };
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}
