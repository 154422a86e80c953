/**
 * `winchester streams list | show | retry`: what an operator needs to look into the streams the trigger
 * workers keep in PostgreSQL, and to run a failed stream's pipeline again.
 *
 * The argument parsing and every output format are pure functions exported for unit tests; the
 * queries are in `src/db/streams-query.ts`; Kafka is reached only through `src/kafka/`.
 */
import { loadConfig } from '../config/load.js';
import { redactDatabaseUrl } from '../db/databases.js';
import type { DatabasePool } from '../db/pool.js';
import {
  batchKindOf,
  compileDistinguishingFilter,
  type DistinguishingFilter,
  getStream,
  isStreamState,
  listStreams,
  moveToRetry,
  RETRY_OF,
  type RetryCandidate,
  type RetryMove,
  retryCandidates,
  STREAM_STATES,
  type StreamQuery,
  type StreamSummary,
  type StreamView,
  streamStates,
} from '../db/streams-query.js';
import type { StreamState } from '../engine/effects.js';
import { ConfigError, hasErrorCode, InputError, UsageError, WinchesterError } from '../errors.js';
import { classifyKafkaError, KafkaUnavailableError } from '../kafka/errors.js';
import { createKafka, createProducer, kafkaClientOptions } from '../kafka/kafka.js';
import { retriesWithin } from '../kafka/notification-producer.js';
import { MAX_INLINE_BATCH_BYTES } from '../kafka/records.js';
import type { Message, Producer } from '../kafka/types.js';
import type { Event, TraitValue } from '../model/event.js';
import { formatFloat } from '../model/event-json.js';
import { jsonCodec, type RecordCodec, type RecordValue } from '../serde/codec.js';
import { publishValue } from '../serde/publish.js';
import {
  formatInstant,
  type Instant,
  nowInstant,
  US_PER_DAY,
  US_PER_HOUR,
  US_PER_MINUTE,
  US_PER_SECOND,
} from '../timex/instant.js';
import { jsonString } from '../triggers/key.js';
import type { DistinguishingValue, DistinguishingValues } from '../triggers/types.js';
import { withPool } from './db.js';
import { type CliIo, type Command, parseCommandArgs, write } from './io.js';
import { workerAvro } from './worker-runtime.js';

const usage = `Usage: winchester streams list [-c FILE] [--trigger NAME] [--state STATE]
                               [--distinguishing NAME=VALUE]... [--older-than DURATION]
                               [--newer-than DURATION] [--limit N] [--format table|json]
       winchester streams show ID [-c FILE] [--format table|json]
       winchester streams retry (ID... | --state error|expire_error [--trigger NAME])
                                [-c FILE] [--dry-run] [--timeout SECONDS]

Looks into the streams the trigger workers keep in PostgreSQL, and runs failed ones again.

  list   streams matching every filter given, oldest first event first (ties by id), at most
         --limit of them. A stream's age is the time since its FIRST EVENT (event time, as the
         reference's find_streams measures it), not since the row was written: after a replay of
         old notifications the ages are those of the history.
  show   one stream: every column, its events (oldest first) with their typed traits, and its
         fire/expire batch in the outbox (published or not, completed by a pipeline or not).
  retry  moves each stream in error to retry_fire (expire_error to retry_expire), version + 1, only
         if its state and version are still those just read (a stream that changed meanwhile is
         left alone and reported), clears a completion record of its batch if there is one, then
         produces its outbox batch again to kafka.topics.batches (acks from all replicas), keyed as
         before, so a pipeline worker runs it again with the same batch id. A stream already in
         retry_fire / retry_expire has its batch produced again (the recovery when an earlier
         retry could not reach Kafka). A stream without an outbox batch (e.g. its trigger was
         removed from the configuration) cannot be re-run and is reported. With
         schema_registry.url configured the batch is produced as Avro, as the trigger workers
         publish it (the schemas registered first: a registry that cannot be reached or refuses
         ends the command, exit 1, before any stream is changed).

Filters (list):
  --trigger NAME              the trigger's name
  --state STATE               one of active, firing, expiring, error, expire_error,
                              completed, retry_fire, retry_expire
  --distinguishing NAME=VALUE a distinguishing value (repeat for several; all must match).
                              VALUE matches a text equal to it; a number also matches an int or
                              float equal to it; a datetime also matches a datetime value, or a
                              time range containing it (begin <= VALUE < end); BEGIN/END matches
                              that exact range; "TEXT" in JSON quotes matches only that text.
                              list prints values in this same form.
  --older-than DURATION       first event more than DURATION ago
  --newer-than DURATION       first event less than DURATION ago
                              DURATION: a number and a unit s, m, h, d or w, or several
                              (90m, 2h, 3d, 1h30m, 45s, 1.5h)

Options:
  -c, --config FILE      the configuration file (default: $WINCHESTER_CONFIG, else ./winchester.yaml);
                         DATABASE_URL overrides database.url, KAFKA_BROKERS kafka.brokers
      --limit N          (list) most streams shown (default 50)
      --format FORMAT    table (default) or json: one JSON object per line (list) or one object
                         (show), times ISO-8601 UTC with microseconds, values with their types
      --dry-run          (retry) say what would be done; change and produce nothing
      --timeout SECONDS  (retry) give up when Kafka does not answer within SECONDS (default 30)
  -h, --help             show this help

Exit status: 0 on success; 1 when the database, Kafka or the schema registry cannot be reached, show's stream does not
exist, or retry could not retry every stream asked for (each one is reported); 2 for bad usage or
configuration (including a missing database.url).
`;

// ---- arguments ------------------------------------------------------------------------------------

type Format = 'table' | 'json';

/** Parsed `streams list` arguments. */
export interface ListOptions {
  readonly action: 'list';
  readonly config: string | undefined;
  readonly trigger: string | undefined;
  readonly state: StreamState | undefined;
  readonly distinguishing: readonly DistinguishingFilter[];
  /** µs; streams whose first event is older than now − this. */
  readonly olderThan: number | undefined;
  /** µs; streams whose first event is newer than now − this. */
  readonly newerThan: number | undefined;
  readonly limit: number;
  readonly format: Format;
}

/** Parsed `streams show` arguments. */
export interface ShowOptions {
  readonly action: 'show';
  readonly config: string | undefined;
  readonly id: string;
  readonly format: Format;
}

/** Parsed `streams retry` arguments: named ids, or every stream of a failed state. */
export interface RetryOptions {
  readonly action: 'retry';
  readonly config: string | undefined;
  readonly ids: readonly string[];
  readonly state: 'error' | 'expire_error' | undefined;
  readonly trigger: string | undefined;
  readonly dryRun: boolean;
  readonly timeoutMs: number;
}

export type StreamsOptions = ListOptions | ShowOptions | RetryOptions;

const UNIT_US: Record<string, number> = {
  s: US_PER_SECOND,
  m: US_PER_MINUTE,
  h: US_PER_HOUR,
  d: US_PER_DAY,
  w: 7 * US_PER_DAY,
};

/**
 * A duration such as `2h`, `90m`, `3d`, `45s`, `1w`, `1h30m` or `1.5h`, in microseconds.
 * @throws UsageError for anything else.
 */
export function parseDuration(text: string, option = 'duration'): number {
  const whole = /^(?:\d+(?:\.\d+)?[smhdw])+$/;
  if (!whole.test(text)) {
    throw new UsageError(`streams: ${option} expects a duration such as 90m, 2h, 3d or 1h30m, got '${text}'`);
  }
  let us = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)) {
    us += Number(m[1]) * (UNIT_US[m[2] as string] as number);
  }
  const rounded = Math.round(us);
  if (!Number.isSafeInteger(rounded)) throw new UsageError(`streams: ${option} is too long: '${text}'`);
  return rounded;
}

function stateArg(raw: string): StreamState {
  if (!isStreamState(raw)) {
    throw new UsageError(`streams: unknown state '${raw}' (valid states: ${STREAM_STATES.join(', ')})`);
  }
  return raw;
}

function formatArg(raw: string | undefined): Format {
  if (raw === undefined || raw === 'table') return 'table';
  if (raw === 'json') return 'json';
  throw new UsageError(`streams: --format expects table or json, got '${raw}'`);
}

function distinguishingArg(raw: string): DistinguishingFilter {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new UsageError(`streams: --distinguishing expects NAME=VALUE, got '${raw}'`);
  return compileDistinguishingFilter(raw.slice(0, eq), raw.slice(eq + 1));
}

const ACTIONS = ['list', 'show', 'retry'] as const;

/**
 * Parses `streams` arguments.
 * @throws UsageError (exit 2) naming what is wrong.
 */
export function parseStreamsArgs(args: string[]): StreamsOptions {
  const { values, positionals } = parseCommandArgs('streams', args, {
    config: { type: 'string', short: 'c' },
    trigger: { type: 'string' },
    state: { type: 'string' },
    distinguishing: { type: 'string', multiple: true },
    'older-than': { type: 'string' },
    'newer-than': { type: 'string' },
    limit: { type: 'string' },
    format: { type: 'string' },
    'dry-run': { type: 'boolean' },
    timeout: { type: 'string' },
  });
  const [action, ...rest] = positionals;
  if (action === undefined) throw new UsageError('streams: missing action (list, show or retry)');
  if (!(ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(`streams: unknown action '${action}' (list, show or retry)`);
  }
  const allowed: Record<(typeof ACTIONS)[number], readonly string[]> = {
    list: ['config', 'trigger', 'state', 'distinguishing', 'older-than', 'newer-than', 'limit', 'format'],
    show: ['config', 'format'],
    retry: ['config', 'trigger', 'state', 'dry-run', 'timeout'],
  };
  for (const name of Object.keys(values)) {
    if (!allowed[action as (typeof ACTIONS)[number]].includes(name)) {
      throw new UsageError(`streams: --${name} does not go with ${action}`);
    }
  }
  if (values.trigger !== undefined && values.trigger === '') {
    throw new UsageError('streams: --trigger expects a trigger name');
  }
  if (action === 'list') {
    if (rest.length > 0) throw new UsageError(`streams: unexpected argument '${rest[0]}'`);
    let limit = 50;
    if (values.limit !== undefined) {
      limit = Number(values.limit);
      if (!/^\d+$/.test(values.limit) || limit < 1 || limit > 1_000_000) {
        throw new UsageError(
          `streams: --limit expects a whole number from 1 to 1000000, got '${values.limit}'`,
        );
      }
    }
    return {
      action,
      config: values.config,
      trigger: values.trigger,
      state: values.state === undefined ? undefined : stateArg(values.state),
      distinguishing: (values.distinguishing ?? []).map(distinguishingArg),
      olderThan:
        values['older-than'] === undefined ? undefined : parseDuration(values['older-than'], '--older-than'),
      newerThan:
        values['newer-than'] === undefined ? undefined : parseDuration(values['newer-than'], '--newer-than'),
      limit,
      format: formatArg(values.format),
    };
  }
  if (action === 'show') {
    if (rest.length === 0) throw new UsageError('streams: show needs a stream ID');
    if (rest.length > 1) throw new UsageError(`streams: show takes one stream ID, got also '${rest[1]}'`);
    return { action, config: values.config, id: rest[0] as string, format: formatArg(values.format) };
  }
  let state: 'error' | 'expire_error' | undefined;
  if (values.state !== undefined) {
    const s = stateArg(values.state);
    if (s !== 'error' && s !== 'expire_error') {
      throw new UsageError(`streams: retry --state takes error or expire_error, got '${s}'`);
    }
    state = s;
  }
  if (state !== undefined && rest.length > 0) {
    throw new UsageError('streams: retry takes stream IDs or --state, not both');
  }
  if (state === undefined && rest.length === 0) {
    throw new UsageError('streams: retry needs stream IDs or --state error|expire_error');
  }
  if (values.trigger !== undefined && state === undefined) {
    throw new UsageError('streams: retry --trigger only goes with --state');
  }
  let timeoutMs = 30_000;
  if (values.timeout !== undefined) {
    const s = Number(values.timeout);
    if (values.timeout.trim() === '' || !Number.isFinite(s) || s <= 0) {
      throw new UsageError(
        `streams: --timeout expects a positive number of seconds, got '${values.timeout}'`,
      );
    }
    timeoutMs = Math.round(s * 1000);
  }
  return {
    action: 'retry',
    config: values.config,
    ids: [...new Set(rest)],
    state,
    trigger: values.trigger,
    dryRun: values['dry-run'] ?? false,
    timeoutMs,
  };
}

/** The query of a `list`, with ages turned into instants relative to `now`. */
export function listQuery(opts: ListOptions, now: Instant, limit = opts.limit): StreamQuery {
  return {
    ...(opts.trigger === undefined ? {} : { trigger: opts.trigger }),
    ...(opts.state === undefined ? {} : { state: opts.state }),
    distinguishing: opts.distinguishing,
    ...(opts.olderThan === undefined ? {} : { firstBefore: now - opts.olderThan }),
    ...(opts.newerThan === undefined ? {} : { firstAfter: now - opts.newerThan }),
    limit,
  };
}

// ---- text formats -----------------------------------------------------------------------------------

// Text that could be read as something else (a number, a datetime, empty, spaced) is quoted as JSON.
const PLAIN_TEXT = /^[^\s"=\\\u0000-\u001f]+$/;
const LOOKS_TYPED = /^[+-]?(?:\d|\.\d)|^(?:NaN|-?Infinity)$/;

function textValue(s: string): string {
  return PLAIN_TEXT.test(s) && !LOOKS_TYPED.test(s) ? s : JSON.stringify(s);
}

function numberText(type: 'float' | 'int', n: number): string {
  if (type === 'int') return String(n);
  return Number.isFinite(n) ? formatFloat(n) : String(n);
}

/**
 * A distinguishing value as the table shows it, and as `--distinguishing NAME=VALUE` reads it back:
 * text as is (JSON-quoted when it could pass for something else), numbers (a float keeps its `.0`),
 * datetimes ISO-8601 with microseconds, a time range as `BEGIN/END`.
 */
export function formatDistinguishingValue(v: DistinguishingValue): string {
  switch (v.type) {
    case 'text':
      return textValue(v.value);
    case 'int':
    case 'float':
      return numberText(v.type, v.value);
    case 'datetime':
      return formatInstant(v.value);
    case 'range':
      return `${formatInstant(v.begin)}/${formatInstant(v.end)}`;
  }
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** `name=value` pairs sorted by name, space separated; `-` when there are none. */
export function formatDistinguishing(values: DistinguishingValues): string {
  const names = Object.keys(values).sort(byName);
  if (names.length === 0) return '-';
  return names.map((n) => `${n}=${formatDistinguishingValue(values[n] as DistinguishingValue)}`).join(' ');
}

/** A trait value for the table (same rules as distinguishing values). */
function traitText(t: TraitValue): string {
  // A trait value is a distinguishing value without the range case: the same printed form.
  return formatDistinguishingValue(t);
}

/** Rows as columns padded to the widest cell; the last column is not padded; `right` columns align right. */
export function alignColumns(
  rows: readonly (readonly string[])[],
  right: ReadonlySet<number> = new Set(),
): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, [...cell].length);
    });
  }
  let out = '';
  for (const row of rows) {
    const cells = row.map((cell, i) => {
      if (i === row.length - 1 && !right.has(i)) return cell;
      const pad = ' '.repeat((widths[i] ?? 0) - [...cell].length);
      return right.has(i) ? pad + cell : cell + pad;
    });
    out += `${cells.join('  ')}\n`;
  }
  return out;
}

/** `streams list` as a table: a header and one line per stream. */
export function formatListTable(streams: readonly StreamSummary[]): string {
  const rows = [['ID', 'TRIGGER', 'STATE', 'EVENTS', 'FIRST_EVENT', 'LAST_EVENT', 'DISTINGUISHING']];
  for (const s of streams) {
    rows.push([
      s.id,
      s.trigger,
      s.state,
      String(s.events),
      formatInstant(s.first),
      formatInstant(s.last),
      formatDistinguishing(s.distinguishing),
    ]);
  }
  return alignColumns(rows, new Set([3]));
}

// ---- JSON formats (built as text: a float must keep its `.0`) ------------------------------------

function jsonNumber(type: 'int' | 'float', n: number): string {
  if (!Number.isFinite(n)) return 'null';
  return type === 'float' ? formatFloat(n) : String(n);
}

/** `{"type":…,"value":…}` (a range: `"begin"`, `"end"`), datetimes as ISO strings, floats with `.0`. */
export function typedValueJson(v: DistinguishingValue): string {
  switch (v.type) {
    case 'text':
      return `{"type":"text","value":${jsonString(v.value)}}`;
    case 'int':
    case 'float':
      return `{"type":"${v.type}","value":${jsonNumber(v.type, v.value)}}`;
    case 'datetime':
      return `{"type":"datetime","value":"${formatInstant(v.value)}"}`;
    case 'range':
      return `{"type":"range","begin":"${formatInstant(v.begin)}","end":"${formatInstant(v.end)}"}`;
  }
}

function typedObjectJson(values: Readonly<Record<string, DistinguishingValue>>): string {
  const names = Object.keys(values).sort(byName);
  return `{${names.map((n) => `${jsonString(n)}:${typedValueJson(values[n] as DistinguishingValue)}`).join(',')}}`;
}

const instantJson = (t: Instant | null) => (t === null ? 'null' : `"${formatInstant(t)}"`);
const stringJson = (s: string | null) => (s === null ? 'null' : jsonString(s));

/** One `streams list` line (without the newline). */
export function streamSummaryJson(s: StreamSummary): string {
  return (
    `{"id":${jsonString(s.id)},"trigger":${jsonString(s.trigger)},"state":"${s.state}","events":${s.events},` +
    `"first_event":${instantJson(s.first)},"last_event":${instantJson(s.last)},` +
    `"distinguishing":${typedObjectJson(s.distinguishing)}}`
  );
}

/** An event with its traits typed (`{"type":…,"value":…}`), for `streams show --format json`. */
export function eventJson(e: Event): string {
  return (
    `{"message_id":${jsonString(e.message_id)},"event_type":${jsonString(e.event_type)},` +
    `"timestamp":${instantJson(e.timestamp)},"traits":${typedObjectJson(e.traits)}}`
  );
}

/** `streams show --format json`: the stream, its events and its batches as one object. */
export function streamViewJson(v: StreamView): string {
  const s = v.stream;
  const stream =
    `{"id":${jsonString(s.id)},"trigger":${jsonString(s.trigger)},"state":"${s.state}","version":${s.version},` +
    `"topic":${jsonString(s.topic)},"partition":${s.partition},"seq":${s.seq},"key":${jsonString(s.key)},` +
    `"distinguishing":${typedObjectJson(s.distinguishing)},"events":${s.events},` +
    `"first_event":${instantJson(s.first)},"last_event":${instantJson(s.last)},` +
    `"expire_at":${instantJson(s.expireAt)},"fire_at":${instantJson(s.fireAt)},"closed_at":${instantJson(s.closedAt)},` +
    `"criterion_counts":[${s.criterionCounts.join(',')}],` +
    `"created_at":${jsonString(s.createdAt)},"updated_at":${jsonString(s.updatedAt)}}`;
  const batches = v.batches.map(
    (b) =>
      `{"batch_id":${jsonString(b.batchId)},"kind":"${b.kind}","message_key":${stringJson(b.messageKey)},` +
      `"bytes":${b.bytes},"created_at":${jsonString(b.createdAt)},"published":${b.publishedAt !== null},` +
      `"published_at":${stringJson(b.publishedAt)},"completed":${b.completedAt !== null},` +
      `"completed_at":${stringJson(b.completedAt)}}`,
  );
  return `{"stream":${stream},"events":[${v.events.map(eventJson).join(',')}],"batches":[${batches.join(',')}]}`;
}

/** `streams show` as text: the stream's fields, its batch, then its events as a table. */
export function formatStreamView(v: StreamView): string {
  const s = v.stream;
  const at = (t: Instant | null) => (t === null ? '-' : formatInstant(t));
  const fields: [string, string][] = [
    ['stream', s.id],
    ['trigger', s.trigger],
    ['state', s.state],
    ['version', String(s.version)],
    ['distinguishing', formatDistinguishing(s.distinguishing)],
    ['key', s.key],
    ['partition', `${s.topic}[${s.partition}] seq ${s.seq}`],
    ['first_event', at(s.first)],
    ['last_event', at(s.last)],
    ['expire_at', at(s.expireAt)],
    ['fire_at', at(s.fireAt)],
    ['closed_at', at(s.closedAt)],
    ['criterion_counts', s.criterionCounts.length === 0 ? '-' : s.criterionCounts.join(', ')],
    ['created_at', s.createdAt],
    ['updated_at', s.updatedAt],
  ];
  if (v.batches.length === 0) fields.push(['batch', '- (none in the outbox)']);
  for (const b of v.batches) {
    const published = b.publishedAt === null ? 'not published yet' : `published ${b.publishedAt}`;
    const completed = b.completedAt === null ? 'not completed' : `completed ${b.completedAt}`;
    fields.push(['batch', `${b.batchId} (${b.kind}, ${b.bytes} bytes), ${published}, ${completed}`]);
  }
  let out = alignColumns(fields);
  out += `\nevents (${v.events.length})\n`;
  if (v.events.length > 0) {
    const rows = [['MESSAGE_ID', 'EVENT_TYPE', 'TIMESTAMP', 'TRAITS']];
    for (const e of v.events) {
      const names = Object.keys(e.traits).sort(byName);
      const traits = names.map((n) => `${n}=${traitText(e.traits[n] as TraitValue)}`).join(' ');
      rows.push([e.message_id, e.event_type, formatInstant(e.timestamp), traits === '' ? '-' : traits]);
    }
    out += alignColumns(rows);
  }
  return out;
}

// ---- retry planning (pure) ---------------------------------------------------------------------------

/** What happens, or happened, to one stream `retry` was asked about. */
export type RetryOutcome =
  | {
      readonly id: string;
      readonly result: 'retried';
      readonly from: StreamState;
      readonly to: StreamState;
      readonly version: number;
      readonly batchId: string;
      /** Its completion record was removed so the pipeline worker does not skip it. */
      readonly uncompleted: boolean;
    }
  | {
      readonly id: string;
      readonly result: 'republished';
      readonly state: StreamState;
      readonly batchId: string;
    }
  /** Someone else moved it to its retry state in between (they publish it). */
  | { readonly id: string; readonly result: 'already'; readonly state: StreamState }
  | { readonly id: string; readonly result: 'skipped'; readonly reason: string }
  /** Moved to its retry state, but its batch could not be produced. */
  | {
      readonly id: string;
      readonly result: 'unpublished';
      readonly state: StreamState;
      readonly batchId: string;
      readonly reason: string;
    };

/** What a page of candidates asks of the database and of Kafka. */
export interface RetryPlan {
  readonly moves: readonly RetryMove[];
  /** Streams already in a retry state whose batch is produced again. */
  readonly republish: readonly RetryCandidate[];
  /** Streams left alone, with the reason, in the order asked. */
  readonly skipped: readonly RetryOutcome[];
}

/**
 * Decides, from what was just read, which streams move to their retry state, which only have their
 * batch produced again, and which are left alone and why. `asked` are the ids named on the command
 * line (null for a `--state` selection), so that unknown ids are reported.
 */
export function planRetry(asked: readonly string[] | null, candidates: readonly RetryCandidate[]): RetryPlan {
  const byId = new Map(candidates.map((c) => [c.id, c]));
  const moves: RetryMove[] = [];
  const republish: RetryCandidate[] = [];
  const skipped: RetryOutcome[] = [];
  for (const id of asked ?? candidates.map((c) => c.id)) {
    const c = byId.get(id);
    if (c === undefined) {
      skipped.push({ id, result: 'skipped', reason: 'no such stream' });
      continue;
    }
    const kind = batchKindOf(c.state);
    if (kind === null) {
      skipped.push({
        id,
        result: 'skipped',
        reason: `state ${c.state} cannot be retried (only error and expire_error)`,
      });
      continue;
    }
    if (c.batch === null) {
      skipped.push({
        id,
        result: 'skipped',
        reason: `no ${kind} batch in the outbox to run again; left in ${c.state}`,
      });
      continue;
    }
    if (c.state === 'error' || c.state === 'expire_error') {
      moves.push({ id, version: c.version, from: c.state, batchId: c.batch.batchId });
    } else if (c.batch.completed) {
      skipped.push({
        id,
        result: 'skipped',
        reason: `in ${c.state}, but batch ${c.batch.batchId} is recorded complete, so a pipeline worker would skip it`,
      });
    } else {
      republish.push(c);
    }
  }
  return { moves, republish, skipped };
}

function outcomeRow(o: RetryOutcome, topic: string, dryRun: boolean): string[] {
  switch (o.result) {
    case 'retried':
      return dryRun
        ? [
            'would retry',
            o.id,
            `${o.from} → ${o.to}; batch ${o.batchId} would be produced to ${topic}${o.uncompleted ? ' (its completion record cleared)' : ''}`,
          ]
        : [
            'retried',
            o.id,
            `${o.from} → ${o.to} (version ${o.version}); batch ${o.batchId} produced to ${topic}${o.uncompleted ? ' (its completion record cleared)' : ''}`,
          ];
    case 'republished':
      return dryRun
        ? [
            'would republish',
            o.id,
            `already ${o.state}; batch ${o.batchId} would be produced again to ${topic}`,
          ]
        : ['republished', o.id, `already ${o.state}; batch ${o.batchId} produced again to ${topic}`];
    case 'already':
      return ['already', o.id, `moved to ${o.state} by someone else meanwhile; not produced again`];
    case 'skipped':
      return ['skipped', o.id, o.reason];
    case 'unpublished':
      return [
        'failed',
        o.id,
        `moved to ${o.state}, but batch ${o.batchId} could not be produced (${o.reason}); run 'winchester streams retry ${o.id}' again`,
      ];
  }
}

/** One line per outcome (`retried  ID  …`), aligned. `dryRun` words it as what would happen. */
export function formatRetryOutcomes(
  outcomes: readonly RetryOutcome[],
  topic: string,
  dryRun: boolean,
): string {
  const rows = outcomes.map((o) => outcomeRow(o, topic, dryRun));
  return alignColumns(rows);
}

/** Counts per result and the summary line; `ok` is true when nothing was skipped or failed. */
export function retrySummary(
  outcomes: readonly RetryOutcome[],
  dryRun: boolean,
): { line: string; ok: boolean } {
  const count = (r: RetryOutcome['result']) => outcomes.filter((o) => o.result === r).length;
  const retried = count('retried');
  const republished = count('republished');
  const already = count('already');
  const skipped = count('skipped');
  const failed = count('unpublished');
  const parts = [
    `${retried} ${dryRun ? 'would be retried' : 'retried'}`,
    `${republished} ${dryRun ? 'would be republished' : 'republished'}`,
  ];
  if (already > 0) parts.push(`${already} already retried by someone else`);
  parts.push(`${skipped} skipped`);
  if (failed > 0) parts.push(`${failed} not produced`);
  const line = `${dryRun ? 'dry run: ' : ''}${parts.join(', ')}${dryRun ? ' (nothing changed)' : ''}`;
  return { line, ok: skipped === 0 && failed === 0 };
}

// ---- running ----------------------------------------------------------------------------------------

function configPath(opts: { config: string | undefined }, io: CliIo): string {
  return opts.config ?? io.env.WINCHESTER_CONFIG ?? 'winchester.yaml';
}

/** {@link withPool}, with the usual first-run mistake (no schema yet) explained. */
async function usePool<T>(url: string, fn: (pool: DatabasePool) => Promise<T>): Promise<T> {
  try {
    return await withPool(url, fn);
  } catch (error) {
    // 42P01 undefined_table: the database exists but the migrations were never applied.
    if (hasErrorCode(error, '42P01')) {
      throw new WinchesterError(
        `no winchester schema in the database at ${redactDatabaseUrl(url)}: run 'winchester db upgrade' first`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** The configuration and its database.url (with the environment overrides applied). */
async function configAndUrl(opts: { config: string | undefined }, io: CliIo) {
  const path = configPath(opts, io);
  const config = await loadConfig(path, { env: io.env, cwd: io.cwd });
  const url = config.settings.database.url;
  if (url === null || url === undefined || url === '') {
    // The same error as `winchester db`: a configuration problem (exit 2), named with its file.
    throw new ConfigError([
      { file: path, message: 'database.url is not set: set it there, or set DATABASE_URL' },
    ]);
  }
  return { config, url };
}

async function runList(opts: ListOptions, io: CliIo): Promise<number> {
  const { url } = await configAndUrl(opts, io);
  // One row more than asked tells whether the limit cut the list.
  const rows = await usePool(url, (pool) => listStreams(pool, listQuery(opts, nowInstant(), opts.limit + 1)));
  const more = rows.length > opts.limit;
  const shown = more ? rows.slice(0, opts.limit) : rows;
  await write(
    io.stdout,
    opts.format === 'json' ? shown.map((s) => `${streamSummaryJson(s)}\n`).join('') : formatListTable(shown),
  );
  if (shown.length === 0 && opts.format === 'table') await write(io.stderr, 'winchester: no streams match\n');
  if (more) {
    await write(
      io.stderr,
      `winchester: showing the first ${opts.limit} streams; more match (raise --limit)\n`,
    );
  }
  return 0;
}

async function runShow(opts: ShowOptions, io: CliIo): Promise<number> {
  const { url } = await configAndUrl(opts, io);
  const view = await usePool(url, (pool) => getStream(pool, opts.id));
  if (view === null) throw new InputError(`no stream '${opts.id}'`);
  await write(io.stdout, opts.format === 'json' ? `${streamViewJson(view)}\n` : formatStreamView(view));
  return 0;
}

/** Rejects with `onTimeout()` when `promise` has not settled within `ms`. */
async function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

// A produce request is cut here, below the broker's default 1 MiB record batch limit (as `produce` does).
const MAX_REQUEST_BYTES = 768 * 1024;
// Streams read, moved and produced per round: bounds memory (payloads up to the inline limit).
const PAGE = 100;

/**
 * The batches producer and the record codec, opened on first use so a dry run or a run with nothing to
 * do needs neither Kafka nor the schema registry.
 */
class BatchSender {
  private opened: { producer: Producer; codec: RecordCodec } | undefined;

  constructor(
    private readonly open: () => Promise<{ producer: Producer; codec: RecordCodec }>,
    private readonly topic: string,
    private readonly timeoutMs: number,
    private readonly where: string,
  ) {}

  async connect(): Promise<void> {
    this.opened ??= await this.open();
  }

  /**
   * The message of `c`'s batch in the configured format ({@link connect} first).
   * @throws InputError when its stored payload is not a batch record and must be re-encoded.
   */
  message(c: RetryCandidate): Message {
    const { codec } = this.opened as { codec: RecordCodec };
    return { key: (c.batch as NonNullable<RetryCandidate['batch']>).messageKey, value: retryValue(c, codec) };
  }

  /** Produces `messages` in order, in requests below the record batch limit. */
  async send(messages: readonly Message[]): Promise<void> {
    await this.connect();
    const { producer } = this.opened as { producer: Producer };
    let chunk: Message[] = [];
    let bytes = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      const messages = chunk;
      chunk = [];
      bytes = 0;
      try {
        await withDeadline(
          producer.send({ topic: this.topic, acks: -1, messages }),
          this.timeoutMs,
          () =>
            new KafkaUnavailableError(
              `Kafka at ${this.where} did not acknowledge within ${this.timeoutMs / 1000}s`,
            ),
        );
      } catch (error) {
        throw classifyKafkaError(error, `producing to ${this.topic}`);
      }
    };
    for (const m of messages) {
      const size = byteSize(m.value) + byteSize(m.key);
      if (chunk.length > 0 && bytes + size > MAX_REQUEST_BYTES) await flush();
      chunk.push(m);
      bytes += size;
    }
    await flush();
  }

  async close(): Promise<void> {
    await this.opened?.producer.disconnect().catch(() => undefined);
  }
}

function byteSize(v: Message['value'] | Message['key']): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}

/**
 * The value the outbox publisher produced for `c`'s batch, in `codec`'s format: inline, or a reference
 * when the payload is over the inline limit (its payload was then not read).
 * @throws InputError when the stored payload is not a batch record (Avro re-encodes it).
 */
export function retryValue(c: RetryCandidate, codec: RecordCodec = jsonCodec): RecordValue {
  const batch = c.batch;
  if (batch === null) throw new TypeError(`stream ${c.id} has no batch`);
  const reference = { batchId: batch.batchId, streamId: c.id, kind: batch.kind, bytes: batch.bytes };
  if (batch.payload === null) return codec.encodeBatchReference(reference);
  return publishValue(codec, {
    batchId: batch.batchId,
    streamId: c.id,
    kind: batch.kind,
    payload: batch.payload,
  });
}

async function runRetry(opts: RetryOptions, io: CliIo): Promise<number> {
  const { config, url } = await configAndUrl(opts, io);
  const { kafka } = config.settings;
  const topic = kafka.topics.batches;
  const brokers = kafka.brokers.join(',');
  const sender = new BatchSender(
    async () => {
      // The trigger workers' record format: Avro when schema_registry.url is set. Before Kafka, so a
      // registry that is away leaves nothing connected and every stream as it was.
      const codec = (await workerAvro(config, () => undefined))?.codec ?? jsonCodec;
      const client = createKafka(
        kafkaClientOptions(kafka, {
          connectionTimeoutMs: Math.min(3000, opts.timeoutMs),
          requestTimeoutMs: Math.min(30000, opts.timeoutMs),
          retry: { retries: retriesWithin(opts.timeoutMs), initialRetryTime: 300, maxRetryTime: 3000 },
        }),
      );
      const producer = createProducer(client, { idempotent: true, maxInFlightRequests: 1 });
      try {
        await withDeadline(
          producer.connect(),
          opts.timeoutMs,
          () =>
            new KafkaUnavailableError(`Kafka at ${brokers} did not answer within ${opts.timeoutMs / 1000}s`),
        );
      } catch (error) {
        await producer.disconnect().catch(() => undefined);
        throw classifyKafkaError(error, `connecting to Kafka at ${brokers}`);
      }
      return { producer, codec };
    },
    topic,
    opts.timeoutMs,
    brokers,
  );

  const all: RetryOutcome[] = [];
  let kafkaFailure: unknown;
  try {
    await usePool(url, async (pool) => {
      for await (const page of retryPages(pool, opts)) {
        const done = await retryPage(pool, page.asked, page.candidates, opts.dryRun, sender);
        all.push(...done.outcomes);
        await write(io.stdout, formatRetryOutcomes(done.outcomes, topic, opts.dryRun));
        if (done.kafkaFailure !== undefined) {
          kafkaFailure = done.kafkaFailure;
          break;
        }
      }
    });
  } finally {
    await sender.close();
  }
  if (all.length === 0) {
    await write(
      io.stdout,
      `no stream in ${opts.state}${opts.trigger === undefined ? '' : ` for trigger ${opts.trigger}`}\n`,
    );
    return 0;
  }
  const summary = retrySummary(all, opts.dryRun);
  await write(io.stdout, `${summary.line}\n`);
  if (kafkaFailure !== undefined) throw kafkaFailure;
  return summary.ok ? 0 : 1;
}

/**
 * The candidates in pages of {@link PAGE}: the named ids in command-line order, or every stream of the
 * state by id (keyset paging, so streams left in the state do not come round again).
 */
async function* retryPages(
  pool: DatabasePool,
  opts: RetryOptions,
): AsyncGenerator<{ asked: readonly string[] | null; candidates: RetryCandidate[] }> {
  if (opts.state === undefined) {
    for (let i = 0; i < opts.ids.length; i += PAGE) {
      const asked = opts.ids.slice(i, i + PAGE);
      yield { asked, candidates: await retryCandidates(pool, { ids: asked }, MAX_INLINE_BATCH_BYTES) };
    }
    return;
  }
  let afterId: string | null = null;
  for (;;) {
    const selection = {
      state: opts.state,
      ...(opts.trigger === undefined ? {} : { trigger: opts.trigger }),
      afterId,
      limit: PAGE,
    };
    const candidates = await retryCandidates(pool, selection, MAX_INLINE_BATCH_BYTES);
    if (candidates.length === 0) return;
    yield { asked: null, candidates };
    if (candidates.length < PAGE) return;
    afterId = (candidates[candidates.length - 1] as RetryCandidate).id;
  }
}

/**
 * One page: plan, open Kafka if anything is to be produced (before changing anything, so an unreachable
 * Kafka leaves every stream as it was), move, then produce. A Kafka failure after the move is returned
 * with the moved streams reported as not produced (a second `retry` of them produces them).
 */
async function retryPage(
  pool: DatabasePool,
  asked: readonly string[] | null,
  candidates: readonly RetryCandidate[],
  dryRun: boolean,
  sender: BatchSender,
): Promise<{ outcomes: RetryOutcome[]; kafkaFailure?: unknown }> {
  const plan = planRetry(asked, candidates);
  const byId = new Map(candidates.map((c) => [c.id, c]));
  const outcomes = new Map<string, RetryOutcome>(plan.skipped.map((o) => [o.id, o]));
  const order = asked ?? candidates.map((c) => c.id);
  const ordered = () => order.map((id) => outcomes.get(id)).filter((o): o is RetryOutcome => o !== undefined);
  if (dryRun) {
    for (const m of plan.moves) {
      const c = byId.get(m.id) as RetryCandidate;
      outcomes.set(m.id, {
        id: m.id,
        result: 'retried',
        from: m.from,
        to: RETRY_OF[m.from] as StreamState,
        version: m.version + 1,
        batchId: m.batchId,
        uncompleted: c.batch?.completed === true,
      });
    }
    for (const c of plan.republish) {
      outcomes.set(c.id, {
        id: c.id,
        result: 'republished',
        state: c.state,
        batchId: c.batch?.batchId ?? '',
      });
    }
    return { outcomes: ordered() };
  }
  if (plan.moves.length === 0 && plan.republish.length === 0) return { outcomes: ordered() };
  await sender.connect();
  // Encoded before anything moves: a batch that cannot be written in the configured format (with Avro,
  // an outbox payload that is not a batch record) leaves its stream as it was, reported, instead of
  // moving it to a retry state that no later retry could produce either.
  const messages = new Map<string, Message>();
  const producible = (c: RetryCandidate): boolean => {
    try {
      messages.set(c.id, sender.message(c));
      return true;
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      outcomes.set(c.id, {
        id: c.id,
        result: 'skipped',
        reason: `its outbox batch ${c.batch?.batchId ?? ''} cannot be produced: ${error.message}`,
      });
      return false;
    }
  };
  const moves = plan.moves.filter((m) => producible(byId.get(m.id) as RetryCandidate));
  const republish = plan.republish.filter(producible);
  if (moves.length === 0 && republish.length === 0) return { outcomes: ordered() };
  const { moved, uncompleted } = await moveToRetry(pool, moves);
  const missed = moves.filter((m) => !moved.has(m.id)).map((m) => m.id);
  const now = await streamStates(pool, missed);
  for (const id of missed) {
    const current = now.get(id);
    const was = byId.get(id) as RetryCandidate;
    if (current === undefined) {
      outcomes.set(id, { id, result: 'skipped', reason: 'deleted meanwhile' });
    } else if (current.state === RETRY_OF[was.state]) {
      outcomes.set(id, { id, result: 'already', state: current.state });
    } else {
      outcomes.set(id, {
        id,
        result: 'skipped',
        reason: `changed meanwhile: now ${current.state} (version ${current.version}, was ${was.state} version ${was.version})`,
      });
    }
  }
  const toSend: RetryCandidate[] = [];
  const movedOutcomes = new Map<string, RetryOutcome & { result: 'retried' }>();
  for (const m of moves) {
    if (!moved.has(m.id)) continue;
    const c = byId.get(m.id) as RetryCandidate;
    toSend.push(c);
    movedOutcomes.set(m.id, {
      id: m.id,
      result: 'retried',
      from: m.from,
      to: RETRY_OF[m.from] as StreamState,
      version: m.version + 1,
      batchId: m.batchId,
      uncompleted: uncompleted.has(m.batchId),
    });
  }
  toSend.push(...republish);
  try {
    await sender.send(toSend.map((c) => messages.get(c.id) as Message));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    for (const c of toSend) {
      const state = movedOutcomes.get(c.id)?.to ?? c.state;
      outcomes.set(c.id, { id: c.id, result: 'unpublished', state, batchId: c.batch?.batchId ?? '', reason });
    }
    return { outcomes: ordered(), kafkaFailure: error };
  }
  for (const [id, o] of movedOutcomes) outcomes.set(id, o);
  for (const c of republish) {
    outcomes.set(c.id, { id: c.id, result: 'republished', state: c.state, batchId: c.batch?.batchId ?? '' });
  }
  return { outcomes: ordered() };
}

export const streamsCommand: Command = {
  name: 'streams',
  summary: 'list, show and retry the streams kept in PostgreSQL',
  usage,
  async run(args: string[], io: CliIo): Promise<number> {
    const opts = parseStreamsArgs(args);
    switch (opts.action) {
      case 'list':
        return runList(opts, io);
      case 'show':
        return runShow(opts, io);
      case 'retry':
        return runRetry(opts, io);
    }
  },
};
