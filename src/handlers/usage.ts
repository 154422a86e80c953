/**
 * The `usage` pipeline handler: the OpenStack usage audit of the reference's `UsageHandler`
 * (stacktach-winchester `winchester/pipeline_handler.py`), re-derived.
 *
 * A stream holds one instance's events for one audit day, ending with the end-of-day
 * `compute.instance.exists`. The stream is cut into blocks, each ending at a `.exists`; the
 * operations of a block are checked against its `.exists` and one verdict is appended per
 * `.exists`:
 *
 * | code | verdict `compute.instance.exists.failed` when … |
 * | --- | --- |
 * | U0 | operations follow the last `.exists` (or there is none): "Notifications, but no .exists notification found." |
 * | U1 | the `.exists` is `active` but has no `launched_at` |
 * | U2 | a core field differs between the `.exists` and the last rebuild/resize/rescue `.end` of its block, or `launched_at`/`deleted_at` differ from the `.delete.end` |
 * | U3 | `deleted_at` is set but the state is not `deleted` |
 * | U4 | `deleted_at` < `launched_at` with no `.delete.end` |
 * | U5 | `deleted_at` falls in the audit period but there is no `.delete.end` |
 * | U6 | a `.delete.end` is in the block but the `.exists` has no `deleted_at` |
 * | U7 | more than one `.delete.end` in the block |
 * | U8 | `active`, `launched_at` in the audit period, and no other event in the block |
 *
 * Otherwise the verdict is `compute.instance.exists.verified`. A `.exists` whose audit period is
 * not exactly one day and whose block has no rebuild/resize/rescue adds a warning; once the stream
 * has a warning, a `compute.instance.exists.warnings` event precedes every later verdict (the
 * reference keeps one warning list per stream, not per block; kept for the same output).
 *
 * ## The new events (distilled-style, typed traits)
 *
 * The reference builds each new event as a Python dict and saves it as an event whose traits are
 * the dict's keys other than message_id/event_type/timestamp, typed by their Python type, with
 * None values dropped. The same here:
 *
 * - verdict (`.verified` / `.failed` for U1–U8): every trait of the `.exists` (same types), plus
 *   `bandwidth_in` (int 0), `bandwidth_out` (int 0) and `rax_options` (text `'0'`) when the
 *   `.exists` lacks them, `original_message_id` (text, the `.exists` message id), `publisher_id`
 *   (text `stv3`), `stream_id` (int), `error` (text: the message, or `'None'` when verified, as the
 *   reference's `str(None)`), `error_code` (text `U1`…`U8`; absent when verified). `timestamp` is
 *   the `.exists` timestamp. message_id = UUIDv5(namespace = the `.exists` message id, name = the
 *   verdict's event type), the reference's derivation, so a repeated verdict has a repeated id.
 * - `.warnings`: `publisher_id` (`stv3`), `stream_id` (int), `instance_id` (the `.exists`'
 *   instance_id, else text `n/a`), `warnings` (text, the warnings joined by `, `); timestamp of the
 *   `.exists`.
 * - U0 `.failed`: `stream_id` (int), `instance_id` (of the first dangling event, absent if it has
 *   none), `error`, `error_code` (`U0`); timestamp of the first dangling event.
 *
 * `stream_id` is an int trait when the stream id is a decimal integer (the reference's
 * `int(stream_id)`), otherwise text (our stream ids may carry a partition prefix, where the
 * reference would raise).
 *
 * ## Differences from the reference, on purpose
 *
 * - The reference gives `.warnings` and U0 events random ids (uuid4). Ours are UUIDv5 of the
 *   `.exists` (for `.warnings`) or first dangling event (for U0) message id and the event type, so
 *   a retried batch yields the same ids and downstream deduplication works for them too.
 * - A message id that is not a UUID makes the reference raise; here its namespace is
 *   UUIDv5(nil UUID, message id), so the verdict is still produced and still deterministic.
 * - Where the reference's checks raise on unusable data (ordering a datetime against a missing
 *   `launched_at`, a core field present on only one side of a comparison, audit-period bounds that
 *   are not datetimes), the reference's pipeline fails; ours throws a {@link UsageAuditError}
 *   naming the `.exists` and the problem, so the batch fails the same way instead of receiving a
 *   verdict the reference never gives.
 *
 * ## What it leaves in env
 *
 * `env.usage_notifications` (see {@link USAGE_NOTIFICATIONS_KEY}) is set to the list of the dicts
 * built, in the order of the new events, as JSON-ready objects: the same keys and values as the
 * reference's dicts, datetimes as ISO-8601 UTC strings with six fractional digits and `Z`, and None
 * as null (the verified verdict's `error_code`, a U0's missing `instance_id`). A publisher step
 * with `env_keys: [usage_notifications]` (the StackTach pipelines) publishes them. The reference
 * kept this list in env until August 2015 and then switched to returning the verdicts as events;
 * this handler does both, so either style of pipeline works.
 */
import { WinchesterError } from '../errors.js';
import type { Logger } from '../log.js';
import { type Event, fieldOf, int, type TraitValue, text } from '../model/event.js';
import type { Handler, HandlerContext, HandlerEnv } from '../pipeline/handler.js';
import { formatInstant, type Instant, US_PER_DAY } from '../timex/instant.js';
import { ParamReader, warnOncePerStep } from './param-checks.js';
import {
  IncomparableError,
  pyCompare,
  pyEquals,
  pyEqualsText,
  pyStr,
  truthy,
} from './usage/python-values.js';
import { NIL_UUID, parseUuid, type UuidBytes, uuidV5, uuidV5Bytes } from './uuid.js';

/** The env key under which the handler leaves the notifications it built. */
export const USAGE_NOTIFICATIONS_KEY = 'usage_notifications';

export const EXISTS = 'compute.instance.exists';
export const EXISTS_VERIFIED = 'compute.instance.exists.verified';
export const EXISTS_FAILED = 'compute.instance.exists.failed';
export const EXISTS_WARNINGS = 'compute.instance.exists.warnings';

const DELETE_END = 'compute.instance.delete.end';
/** Operations that change what a `.exists` reports; the last one of a block is compared with it. */
const INTERESTING = new Set([
  'compute.instance.rebuild.end',
  'compute.instance.finish_resize.end',
  'compute.instance.rescue.end',
]);
/** Fields a `.delete.end` must agree on with its `.exists`. */
const DELETE_FIELDS = ['launched_at', 'deleted_at'] as const;
/** Fields the last rebuild/resize/rescue must agree on with the `.exists`. */
export const CORE_FIELDS: readonly string[] = [
  'launched_at',
  'instance_flavor_id',
  'tenant_id',
  'os_architecture',
  'os_version',
  'os_distro',
];

const PUBLISHER = 'stv3';
const U0_MESSAGE = 'Notifications, but no .exists notification found.';

/** A JSON-ready notification as left in env: strings, numbers and nulls. */
export type UsageNotification = Record<string, string | number | null>;

/** The error codes of `compute.instance.exists.failed`. */
export type UsageErrorCode = 'U0' | 'U1' | 'U2' | 'U3' | 'U4' | 'U5' | 'U6' | 'U7' | 'U8';

/** A failed check: becomes a `.failed` verdict, never escapes the handler. */
class UsageCheckFailure {
  constructor(
    readonly code: UsageErrorCode,
    readonly message: string,
  ) {}
}

/**
 * Thrown by `handleEvents` where the reference's audit raises on data it cannot compare, so the
 * batch fails (and is retried, then marked failed) as in the reference, instead of getting a verdict.
 */
export class UsageAuditError extends WinchesterError {}

type Verdict = typeof EXISTS_VERIFIED | typeof EXISTS_FAILED;

/** A new event and the notification dict it was made from. */
interface Built {
  readonly event: Event;
  readonly notification: UsageNotification;
}

function jsonValue(v: TraitValue | undefined): string | number | null {
  if (v === undefined) return null;
  return v.type === 'datetime' ? formatInstant(v.value) : v.value;
}

/** The reference's `int(stream_id)` when the id is a decimal integer; otherwise the id as text. */
function streamIdTrait(id: string): TraitValue {
  if (/^\s*[+-]?\d+(?:_\d+)*\s*$/.test(id)) {
    const n = Number(id.trim().replaceAll('_', ''));
    if (Number.isSafeInteger(n)) return int(n);
  }
  return text(id);
}

/** The usage handler reads no params. */
const NO_PARAMS: ReadonlySet<string> = new Set();

/** Day number of an instant (Python's `datetime.date()` as a count). */
const dayOf = (t: Instant): number => Math.floor(t / US_PER_DAY);

/**
 * The usage audit handler. Construct with `(params, context)`; it takes no params (the reference's
 * accepts and ignores any). `handleEvents` returns the input followed by the new events.
 */
export class UsageHandler implements Handler {
  private readonly log: Logger;

  constructor(params: Readonly<Record<string, unknown>>, context: HandlerContext) {
    this.log = context.log;
    // As every built-in: the reference ignored unknown keywords; say so once per pipeline step.
    const unknown = new ParamReader('usage', params).unknown(NO_PARAMS);
    if (unknown.length > 0)
      warnOncePerStep(context.log, params, 'unknown', 'usage: ignoring unknown params', { params: unknown });
  }

  /** The fields compared with the last rebuild/resize/rescue; override to audit other traits. */
  protected coreFields(): readonly string[] {
    return CORE_FIELDS;
  }

  handleEvents(events: Event[], env: HandlerEnv): Event[] {
    const streamId = streamIdTrait(String(env.stream_id));
    // One list for the whole stream, as in the reference: a warning once raised is repeated in
    // the .warnings event of every later block.
    const warnings: string[] = [];
    const built: Built[] = [];
    let block: Event[] = [];
    for (const event of events) {
      if (event.event_type === EXISTS) {
        this.processBlock(block, event, streamId, warnings, env, built);
        block = [];
      } else {
        block.push(event);
      }
    }
    if (block.length > 0) built.push(danglingFailure(block[0]!, streamId));

    env[USAGE_NOTIFICATIONS_KEY] = built.map((b) => b.notification);
    if (built.length === 0) return events;
    const out = events.slice();
    for (const b of built) out.push(b.event);
    return out;
  }

  commit(): void {}

  rollback(): void {}

  private processBlock(
    block: readonly Event[],
    exists: Event,
    streamId: TraitValue,
    warnings: string[],
    env: HandlerEnv,
    built: Built[],
  ): void {
    let failure: UsageCheckFailure | undefined;
    try {
      this.check(block, exists, warnings);
    } catch (err) {
      if (err instanceof UsageCheckFailure) failure = err;
      else if (err instanceof IncomparableError) {
        throw new UsageAuditError(
          `usage: cannot audit ${EXISTS} ${exists.message_id} (stream ${env.stream_id}): ${err.message}`,
          { cause: err },
        );
      } else throw err;
    }
    if (failure !== undefined) {
      this.log('warn', 'usage audit failed', {
        handler: 'usage',
        stream_id: env.stream_id,
        trigger: env.trigger,
        message_id: exists.message_id,
        error_code: failure.code,
        error: failure.message,
        instance_id: jsonValue(fieldOf(exists, 'instance_id')),
        state: jsonValue(fieldOf(exists, 'state')),
        launched_at: jsonValue(fieldOf(exists, 'launched_at')),
        deleted_at: jsonValue(fieldOf(exists, 'deleted_at')),
        audit_period_beginning: jsonValue(fieldOf(exists, 'audit_period_beginning')),
        audit_period_ending: jsonValue(fieldOf(exists, 'audit_period_ending')),
        events: block.length,
      });
    }
    if (warnings.length > 0) built.push(warningsEvent(exists, streamId, warnings));
    built.push(verdictEvent(exists, failure, streamId));
  }

  /** The reference's checks, in its order; throws a {@link UsageCheckFailure} for the first that fails. */
  private check(block: readonly Event[], exists: Event, warnings: string[]): void {
    confirmLaunchedAt(block, exists);

    let lastInteresting: Event | undefined;
    for (const event of block) if (INTERESTING.has(event.event_type)) lastInteresting = event;
    if (lastInteresting !== undefined) verifyFields(lastInteresting, exists, this.coreFields());
    else if (isNonEodExists(exists)) {
      warnings.push(`Non-EOD .exists found (msg_id: ${exists.message_id}) with no operation event.`);
    }

    const deletes = block.filter((e) => e.event_type === DELETE_END);
    confirmDelete(exists, deletes);
  }
}

/** U1 and U8: an active instance launched during the audit period must have events in the block. */
function confirmLaunchedAt(block: readonly Event[], exists: Event): void {
  if (!pyEqualsText(fieldOf(exists, 'state'), 'active')) return;
  const apb = fieldOf(exists, 'audit_period_beginning');
  const ape = fieldOf(exists, 'audit_period_ending');
  const launchedAt = fieldOf(exists, 'launched_at');
  if (!truthy(launchedAt)) throw new UsageCheckFailure('U1', '.exists has no launched_at value.');
  // Python's chained `apb <= launched_at <= ape`: the second comparison only when the first holds.
  if (
    truthy(apb) &&
    truthy(ape) &&
    pyCompare(apb, launchedAt) <= 0 &&
    pyCompare(launchedAt, ape) <= 0 &&
    block.length === 0
  ) {
    throw new UsageCheckFailure('U8', '.exists launched_at in audit period, but no related events found.');
  }
}

/** U2: the named fields must be equal on both events (skipped when both lack one). */
function verifyFields(a: Event, b: Event, fields: readonly string[]): void {
  for (const field of fields) {
    const x = fieldOf(a, field);
    const y = fieldOf(b, field);
    if (x === undefined && y === undefined) continue;
    // The reference then reads the field from both dicts and raises KeyError when one lacks it.
    if (x === undefined || y === undefined) {
      const missing = x === undefined ? a : b;
      throw new IncomparableError(
        `'${field}' is missing from ${missing.event_type} ${missing.message_id} but set on the other event`,
      );
    }
    if (!pyEquals(x, y)) {
      throw new UsageCheckFailure('U2', `Conflicting '${field}' values ('${pyStr(x)}' != '${pyStr(y)}')`);
    }
  }
}

/** U3–U7 and the U2 of a delete: the `.exists`' deletion facts against the block's `.delete.end`s. */
function confirmDelete(exists: Event, deletes: readonly Event[]): void {
  const deletedAt = fieldOf(exists, 'deleted_at');
  const state = fieldOf(exists, 'state');
  const apb = fieldOf(exists, 'audit_period_beginning');
  const ape = fieldOf(exists, 'audit_period_ending');

  if (!truthy(deletedAt) && deletes.length > 0) {
    throw new UsageCheckFailure('U6', '.deleted events found but .exists has no deleted_at value.');
  }
  if (truthy(deletedAt) && !pyEqualsText(state, 'deleted')) {
    throw new UsageCheckFailure('U3', ".exists state not 'deleted' but .exists deleted_at is set.");
  }
  if (truthy(deletedAt) && deletes.length === 0) {
    if (pyCompare(deletedAt, fieldOf(exists, 'launched_at')) < 0) {
      throw new UsageCheckFailure('U4', '.exists deleted_at < .exists launched_at.');
    }
    if (truthy(apb) && truthy(ape) && pyCompare(deletedAt, apb) >= 0 && pyCompare(deletedAt, ape) <= 0) {
      throw new UsageCheckFailure(
        'U5',
        '.exists deleted_at in audit period, but no matching .delete event found.',
      );
    }
  }
  if (deletes.length > 1) throw new UsageCheckFailure('U7', 'Multiple .delete.end events');
  if (deletes.length > 0) verifyFields(exists, deletes[deletes.length - 1]!, DELETE_FIELDS);
}

/** A `.exists` whose audit period does not end on the day after it begins (not an end-of-day one). */
function isNonEodExists(exists: Event): boolean {
  const apb = fieldOf(exists, 'audit_period_beginning');
  const ape = fieldOf(exists, 'audit_period_ending');
  if (!truthy(apb) || !truthy(ape)) return false;
  if (apb!.type !== 'datetime' || ape!.type !== 'datetime') {
    // The reference calls .date() on them.
    throw new IncomparableError('audit_period_beginning and audit_period_ending must be datetimes');
  }
  return dayOf(ape!.value) !== dayOf(apb!.value) + 1;
}

/** The namespace for ids derived from a message id: the id itself when it is a UUID. */
function namespaceOf(messageId: string): UuidBytes {
  return parseUuid(messageId) ?? uuidV5Bytes(NIL_UUID, messageId);
}

/** Builds the event and its notification from the reference's dict, key by key in its order. */
function build(
  message_id: string,
  event_type: string,
  timestamp: Instant,
  entries: readonly (readonly [string, TraitValue | undefined])[],
): Built {
  const traits: Record<string, TraitValue> = Object.create(null);
  const notification: UsageNotification = {
    message_id,
    event_type,
    timestamp: formatInstant(timestamp),
  };
  for (const [name, value] of entries) {
    notification[name] = jsonValue(value);
    // save_event drops None values, and a trait cannot be named like an envelope field.
    if (value === undefined) delete traits[name];
    else traits[name] = value;
  }
  return { event: { message_id, event_type, timestamp, traits }, notification };
}

function verdictEvent(exists: Event, failure: UsageCheckFailure | undefined, streamId: TraitValue): Built {
  const eventType: Verdict = failure === undefined ? EXISTS_VERIFIED : EXISTS_FAILED;
  const entries: [string, TraitValue | undefined][] = [];
  for (const name of Object.keys(exists.traits)) entries.push([name, exists.traits[name]]);
  const has = (name: string): boolean => Object.hasOwn(exists.traits, name);
  if (!has('bandwidth_in')) entries.push(['bandwidth_in', int(0)]);
  if (!has('bandwidth_out')) entries.push(['bandwidth_out', int(0)]);
  if (!has('rax_options')) entries.push(['rax_options', text('0')]);
  entries.push(
    ['original_message_id', text(exists.message_id)],
    ['publisher_id', text(PUBLISHER)],
    ['stream_id', streamId],
    ['error', text(failure === undefined ? 'None' : failure.message)],
    ['error_code', failure === undefined ? undefined : text(failure.code)],
  );
  const id = uuidV5(namespaceOf(exists.message_id), eventType);
  return build(id, eventType, exists.timestamp, entries);
}

function warningsEvent(exists: Event, streamId: TraitValue, warnings: readonly string[]): Built {
  const id = uuidV5(namespaceOf(exists.message_id), EXISTS_WARNINGS);
  return build(id, EXISTS_WARNINGS, exists.timestamp, [
    ['publisher_id', text(PUBLISHER)],
    ['stream_id', streamId],
    ['instance_id', fieldOf(exists, 'instance_id') ?? text('n/a')],
    ['warnings', text(warnings.join(', '))],
  ]);
}

function danglingFailure(first: Event, streamId: TraitValue): Built {
  const id = uuidV5(namespaceOf(first.message_id), EXISTS_FAILED);
  return build(id, EXISTS_FAILED, first.timestamp, [
    ['stream_id', streamId],
    ['instance_id', fieldOf(first, 'instance_id')],
    ['error', text(U0_MESSAGE)],
    ['error_code', text('U0')],
  ]);
}
