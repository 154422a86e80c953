import type { Readable } from 'node:stream';
import { loadConfig } from '../config/load.js';
import type { Settings } from '../config/schema.js';
import { InputError, UsageError, WinchesterError } from '../errors.js';
import { advanceClock } from '../kafka/advance-clock.js';
import { type KafkaClientOptions, kafkaClientOptions } from '../kafka/kafka.js';
import { judgeLine, type MalformedKind } from '../kafka/notification-key.js';
import { type NotificationProducer, openNotificationProducer } from '../kafka/notification-producer.js';
import { readJsonRecords } from '../model/json-records.js';
import { formatInstant, type Instant, parseDatetime } from '../timex/instant.js';
import { triggerGroupIds } from '../worker/trigger-worker.js';
import { type CliIo, type Command, openInput, parseCommandArgs, write } from './io.js';
import { workerAvro } from './worker-runtime.js';

const usage = `Usage: winchester produce [-c FILE] [options] [INPUT]

Sends OpenStack notifications to the notifications topic of the configuration (kafka.topics.notifications),
for feeding the trigger workers from a file or from 'winchester generate'.

Reads INPUT (or stdin when INPUT is absent or '-') as JSON lines or as one JSON array, streaming:
any length of input is sent in constant memory. Each notification's value is its original JSON text,
byte for byte. Its key is payload.instance_id (or payload.instance_uuid), so that every instance's
notifications stay in order on one partition; notifications about no instance are keyed by
message_id. oslo.messaging v2 envelopes are sent as they are, keyed by the notification inside.

The producer is idempotent (acks from all in-sync replicas, no duplicates on retry) and sends in
batches, one at a time, so per-key order holds even across retries. Lines that are not a JSON object
are reported on stderr with their line number and skipped. A progress line is shown on stderr when it
is a terminal; a summary always ends the run.

Options:
  -c, --config FILE     the configuration file (default: $WINCHESTER_CONFIG, else ./winchester.yaml);
                        KAFKA_BROKERS overrides kafka.brokers
  -t, --topic NAME      send to NAME instead of kafka.topics.notifications
      --no-create-topic fail when the topic does not exist (default: create it with kafka.partitions
                        partitions and kafka.replication_factor)
      --strict          stop at the first malformed line and exit 1 (what came before it is sent)
      --batch-size N    most notifications per produce request (default 500; a request is also
                        cut at 768 KiB, below the broker's 1 MiB record batch limit)
      --timeout SECONDS give up when Kafka does not answer (connect, create the topic, acknowledge a
                        batch) within SECONDS (default 30)
      --advance-clock DATETIME
                        after sending INPUT (if one is given; stdin is not read without one), move the
                        event-time clock of every stream-events partition to DATETIME (ISO 8601, UTC
                        when no offset is given), so that the streams of a replayed history fire their
                        delayed triggers and expire (clock.mode: event). It first waits until the route
                        stage (group <kafka.client_id>.route) has routed everything on the notifications
                        topic, within --timeout, so no stream-events partition's clock passes events
                        still to be routed. With schema_registry.url configured the ticks are Avro,
                        as the trigger workers write them (the schema registered under
                        <kafka.topics.stream_events>-value first: a registry that cannot be reached
                        or refuses ends the command, exit 1, before anything is sent)
      --no-wait         with --advance-clock: send the tick without waiting for the route stage
  -q, --quiet           no per-line reports, progress or summary on stderr
  -h, --help            show this help

Exit status: 0 (even when some lines are malformed), 1 when INPUT cannot be read, Kafka cannot be
reached or refuses, or --strict meets a malformed line, 2 for bad usage or configuration.
`;

interface Options {
  config: string | undefined;
  topic: string | undefined;
  createTopic: boolean;
  strict: boolean;
  batchSize: number;
  timeoutMs: number;
  quiet: boolean;
  input: string | undefined;
  advanceClock: Instant | undefined;
  wait: boolean;
}

function positiveNumber(name: string, raw: string | undefined, integer: boolean, fallback: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new UsageError(
      `produce: --${name} expects a positive ${integer ? 'whole number' : 'number'}, got '${raw}'`,
    );
  }
  return v;
}

function parse(args: string[]): Options {
  const { values, positionals } = parseCommandArgs('produce', args, {
    config: { type: 'string', short: 'c' },
    topic: { type: 'string', short: 't' },
    // node 20's parseArgs has no --no-X negation, so both spellings are declared.
    'create-topic': { type: 'boolean' },
    'no-create-topic': { type: 'boolean' },
    strict: { type: 'boolean' },
    'batch-size': { type: 'string' },
    timeout: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
    'advance-clock': { type: 'string' },
    'no-wait': { type: 'boolean' },
  });
  if (positionals.length > 1) {
    throw new UsageError(`produce: unexpected argument '${positionals[1]}' (one INPUT at most)`);
  }
  if (values['create-topic'] === true && values['no-create-topic'] === true) {
    throw new UsageError('produce: --create-topic and --no-create-topic contradict each other');
  }
  if (values.topic !== undefined && values.topic.trim() === '') {
    throw new UsageError('produce: --topic expects a topic name');
  }
  const batchSize = positiveNumber('batch-size', values['batch-size'], true, 500);
  if (batchSize > 100_000) throw new UsageError('produce: --batch-size is at most 100000');
  return {
    config: values.config,
    topic: values.topic,
    createTopic: values['no-create-topic'] !== true,
    strict: values.strict ?? false,
    batchSize,
    timeoutMs: Math.round(positiveNumber('timeout', values.timeout, false, 30) * 1000),
    quiet: values.quiet ?? false,
    input: positionals[0],
    advanceClock: advanceClockOf(values['advance-clock'], values['no-wait'] === true),
    wait: values['no-wait'] !== true,
  };
}

function advanceClockOf(raw: string | undefined, noWait: boolean): Instant | undefined {
  if (raw === undefined) {
    if (noWait) throw new UsageError('produce: --no-wait goes with --advance-clock');
    return undefined;
  }
  try {
    return parseDatetime(raw);
  } catch (error) {
    throw new UsageError(
      `produce: --advance-clock expects a date and time (ISO 8601): ${(error as Error).message}`,
    );
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Notifications per second, rounded; 0 when no time has passed (nothing meaningful to divide by). */
export function ratePerSecond(count: number, elapsedMs: number): number {
  return elapsedMs <= 0 ? 0 : Math.round((count * 1000) / elapsedMs);
}

/** Elapsed time as seconds with one decimal (two below one second), e.g. `12.3s`, `0.04s`. */
export function formatSeconds(elapsedMs: number): string {
  const s = Math.max(0, elapsedMs) / 1000;
  return `${s < 1 ? s.toFixed(2) : s.toFixed(1)}s`;
}

/** The summary line that ends a run (without the newline). */
export function formatSummary(produced: number, topic: string, elapsedMs: number, skipped: number): string {
  return (
    `produced ${plural(produced, 'notification')} to ${topic} in ${formatSeconds(elapsedMs)} ` +
    `(${ratePerSecond(produced, elapsedMs)}/s); skipped ${plural(skipped, 'malformed line')}`
  );
}

/**
 * The live progress line for a terminal: redrawn in place (`\r`, erase to end of line) at most once per
 * `intervalMs`, so a fast run costs a handful of writes, not one per notification.
 */
export class ProgressLine {
  private last: number;
  private shown = false;

  constructor(
    private readonly out: (text: string) => void,
    private readonly now: () => number,
    private readonly startedAt: number,
    private readonly intervalMs = 200,
  ) {
    this.last = startedAt;
  }

  /** Redraws when `intervalMs` has passed since the last redraw (or the start). */
  update(produced: number, skipped: number): void {
    const t = this.now();
    if (t - this.last < this.intervalMs) return;
    this.last = t;
    this.shown = true;
    const elapsed = t - this.startedAt;
    this.out(
      `\r\x1b[K${produced} produced, ${skipped} skipped, ${formatSeconds(elapsed)}, ${ratePerSecond(produced, elapsed)}/s`,
    );
  }

  /** Erases the line (if one was drawn) so the summary starts on a clean line. */
  clear(): void {
    if (this.shown) this.out('\r\x1b[K');
    this.shown = false;
  }
}

// A flood of bad lines should not bury the summary.
const MAX_REPORTED = 100;
// Progress is checked every this many lines: reading the clock per line would cost more than the line.
const PROGRESS_EVERY = 256;

async function run(args: string[], io: CliIo): Promise<number> {
  const opts = parse(args);
  const configPath = opts.config ?? io.env.WINCHESTER_CONFIG ?? 'winchester.yaml';
  const config = await loadConfig(configPath, { env: io.env, cwd: io.cwd });
  const { kafka, clock } = config.settings;
  const client = kafkaClientOptions(kafka);
  const topic = opts.topic ?? kafka.topics.notifications;
  // Ticks in the workers' record format. Connecting before INPUT is sent means a registry that is away
  // fails the command with nothing done, as it stops a worker at start.
  const avro = opts.advanceClock === undefined ? undefined : await workerAvro(config, () => undefined);
  let status = 0;
  if (opts.advanceClock === undefined || opts.input !== undefined) {
    status = await send(opts, io, kafka, client, topic);
  }
  if (opts.advanceClock === undefined || status !== 0) return status;
  if (clock.mode !== 'event' && !opts.quiet) {
    await write(
      io.stderr,
      'winchester: warning: clock.mode is wall in this configuration; ticks move only event-time clocks\n',
    );
  }
  const result = await advanceClock({
    client: { ...client, connectionTimeoutMs: Math.min(3000, opts.timeoutMs) },
    notificationsTopic: topic,
    streamEventsTopic: kafka.topics.stream_events,
    routeGroup: triggerGroupIds(kafka.client_id).route,
    time: opts.advanceClock,
    wait: opts.wait,
    timeoutMs: opts.timeoutMs,
    ...(avro === undefined ? {} : { codec: avro.codec }),
  });
  if (!opts.quiet) {
    const notes: string[] = [];
    if (opts.wait) notes.push(`waited ${formatSeconds(result.waitedMs)} for the route stage`);
    if (avro !== undefined) notes.push(`Avro, schema id ${avro.codec.schemaIds.streamRecord}`);
    await write(
      io.stderr,
      `advanced the event-time clock of ${plural(result.partitions, 'partition')} of ${kafka.topics.stream_events} ` +
        `to ${formatInstant(opts.advanceClock)}${notes.length === 0 ? '' : ` (${notes.join('; ')})`}\n`,
    );
  }
  return 0;
}

async function send(
  opts: Options,
  io: CliIo,
  kafka: Settings['kafka'],
  client: KafkaClientOptions,
  topic: string,
): Promise<number> {
  const input = await openInput(opts.input, io);

  const producer: NotificationProducer = await openNotificationProducer({
    brokers: kafka.brokers,
    clientId: kafka.client_id,
    ...(client.sasl === undefined ? {} : { sasl: client.sasl }),
    ...(client.ssl === undefined ? {} : { ssl: client.ssl }),
    topic,
    createTopic: opts.createTopic,
    partitions: kafka.partitions,
    replicationFactor: kafka.replication_factor,
    batchSize: opts.batchSize,
    timeoutMs: opts.timeoutMs,
  });
  try {
    if (producer.createdTopic && !opts.quiet) {
      await write(
        io.stderr,
        `winchester: created topic ${topic} (${plural(producer.partitions, 'partition')}, replication factor ${kafka.replication_factor})\n`,
      );
    }
    return await pump(input, producer, topic, opts, io);
  } finally {
    await producer.close();
  }
}

async function pump(
  input: Readable,
  producer: NotificationProducer,
  topic: string,
  opts: Options,
  io: CliIo,
): Promise<number> {
  const started = Date.now();
  const tty = !opts.quiet && (io.stderr as { isTTY?: boolean }).isTTY === true;
  const progress = tty ? new ProgressLine((s) => io.stderr.write(s), Date.now, started) : null;
  let queued = 0;
  let skipped = 0;
  let reports = '';

  const report = (line: number, kind: MalformedKind | 'framing', detail: string) => {
    skipped++;
    if (opts.quiet) return;
    if (skipped <= MAX_REPORTED)
      reports += `winchester: line ${line}: malformed notification (${kind}): ${detail}\n`;
    else if (skipped === MAX_REPORTED + 1)
      reports += 'winchester: further malformed lines are counted but not shown\n';
  };
  const flushReports = async () => {
    if (reports === '') return;
    progress?.clear();
    await write(io.stderr, reports);
    reports = '';
  };

  let strictStop: number | undefined;
  try {
    for await (const rec of readJsonRecords(input)) {
      if (rec.error !== undefined) {
        report(rec.line, 'framing', rec.error);
      } else {
        const verdict = judgeLine(rec.text!);
        if (verdict.ok) {
          queued++;
          const wait = producer.add(verdict.key, rec.text!);
          if (wait !== undefined) await wait;
        } else {
          report(rec.line, verdict.kind, verdict.detail);
        }
      }
      if (opts.strict && skipped > 0) {
        strictStop = rec.line;
        break;
      }
      if ((queued + skipped) % PROGRESS_EVERY === 0) {
        if (reports.length > 0) await flushReports();
        progress?.update(producer.acknowledged, skipped);
      }
    }
  } catch (e) {
    await flushReports();
    progress?.clear();
    if (e instanceof WinchesterError) throw e;
    throw new InputError(
      `cannot read input '${opts.input ?? '-'}': ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  // Whatever was read before a --strict stop is sent too, so "everything before line N" holds.
  try {
    await producer.flush();
  } finally {
    // An error message must not be appended to a half-drawn progress line.
    progress?.clear();
  }
  await flushReports();
  const elapsed = Date.now() - started;
  if (strictStop !== undefined) {
    await write(
      io.stderr,
      `winchester: stopped at line ${strictStop} (--strict); produced ${plural(producer.acknowledged, 'notification')} to ${topic} before it\n`,
    );
    return 1;
  }
  if (!opts.quiet) {
    await write(io.stderr, `${formatSummary(producer.acknowledged, topic, elapsed, skipped)}\n`);
  }
  return 0;
}

export const produceCommand: Command = {
  name: 'produce',
  summary: 'send notifications (JSON lines or array) to the Kafka notifications topic',
  usage,
  run,
};
