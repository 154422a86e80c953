import { loadConfig } from '../config/load.js';
import type { Distiller } from '../distill/index.js';
import { EventTimeClock } from '../engine/clock.js';
import type { Effect, StreamClosed } from '../engine/effects.js';
import { MemoryEventStore } from '../engine/event-store.js';
import { PartitionEngine } from '../engine/partition-engine.js';
import { formatProblem, InputError, UsageError } from '../errors.js';
import type { Event } from '../model/event.js';
import { eventFromJson, eventToJson, traitValueToJson } from '../model/event-json.js';
import { readJsonRecords } from '../model/json-records.js';
import { DatetimeError, formatInstant, type Instant, parseDatetime } from '../timex/instant.js';
import type { DistinguishingValue, DistinguishingValues } from '../triggers/types.js';
import { type CliIo, type Command, openInput, parseCommandArgs, write } from './io.js';

const usage = `Usage: winchester replay [-c FILE] [--events] [--until DATETIME] [INPUT]

Runs the stream engine in-process over recorded input, with an event-time clock (the highest
event timestamp seen; no lateness), and prints the streams that fire or expire.

Reads notifications from INPUT (or stdin when INPUT is absent or '-'), as JSON lines or one JSON
array, distills them with the configuration's event definitions and feeds the events to every
trigger in input order. Time moves with the events: before each event is added, the clock reads
the highest event timestamp seen so far, and streams whose fire time or expiration is strictly
before it fire or expire (a stream due for both fires), as the reference's pipeline worker does.
After the input, the clock is moved to --until (default: the latest event timestamp) for one more
pass; a stream due exactly at that instant stays open (use a later --until to close it).

Prints one JSON line per fired or expired stream, in the order it happened:
  {"trigger": name, "kind": "fire"|"expire", "pipeline": name|null,
   "distinguished_by": {trait: value}, "first_event": datetime, "last_event": datetime,
   "events": [event, ...]}
events are flat as printed by 'winchester distill', sorted by timestamp; datetimes are
ISO-8601 UTC with six fractional digits; a time-range value is {"begin": …, "end": …}.
Streams still open at the end are not printed; a summary goes to stderr.

Options:
  -c, --config FILE     winchester.yaml (default: $WINCHESTER_CONFIG, else ./winchester.yaml)
      --events          INPUT holds already distilled events (flat JSON, as 'distill' prints)
      --until DATETIME  move the clock to this time after the input (ISO-8601; UTC if no offset)
      --run-pipelines   also run the pipelines in-process (not available yet: exits 2)
  -q, --quiet           no per-line reports and no summary on stderr
  -h, --help            show this help

Exit status: 0 (malformed input lines are reported on stderr and skipped), 1 when INPUT cannot
be read, 2 for bad usage or an invalid configuration.
`;

interface Options {
  config: string | undefined;
  events: boolean;
  until: Instant | undefined;
  runPipelines: boolean;
  quiet: boolean;
  input: string | undefined;
}

function parse(args: string[]): Options {
  const { values, positionals } = parseCommandArgs('replay', args, {
    config: { type: 'string', short: 'c' },
    events: { type: 'boolean' },
    until: { type: 'string' },
    'run-pipelines': { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
  });
  if (positionals.length > 1)
    throw new UsageError(`replay: unexpected argument '${positionals[1]}' (one INPUT at most)`);
  let until: Instant | undefined;
  if (values.until !== undefined) {
    try {
      until = parseDatetime(values.until);
    } catch (err) {
      if (!(err instanceof DatetimeError)) throw err;
      throw new UsageError(`replay: --until: ${err.message}`);
    }
  }
  return {
    config: values.config,
    events: values.events ?? false,
    until,
    runPipelines: values['run-pipelines'] ?? false,
    quiet: values.quiet ?? false,
    input: positionals[0],
  };
}

/** The JSON text of a distinguishing value: as a trait, or a range as {"begin","end"}. */
function distinguishingValueToJson(v: DistinguishingValue): string {
  if (v.type === 'range') return `{"begin":"${formatInstant(v.begin)}","end":"${formatInstant(v.end)}"}`;
  return traitValueToJson(v);
}

function distinguishingToJson(values: DistinguishingValues): string {
  const parts: string[] = [];
  for (const name of Object.keys(values)) {
    parts.push(`${JSON.stringify(name)}:${distinguishingValueToJson(values[name] as DistinguishingValue)}`);
  }
  return `{${parts.join(',')}}`;
}

/** One output line for a closed stream (events spliced as text so floats keep their `.0`). */
export function closedStreamLine(
  closed: StreamClosed,
  distinguishing: DistinguishingValues,
  events: readonly Event[],
): string {
  return (
    `{"trigger":${JSON.stringify(closed.trigger)},"kind":"${closed.type === 'fired' ? 'fire' : 'expire'}",` +
    `"pipeline":${closed.pipeline === null ? 'null' : JSON.stringify(closed.pipeline)},` +
    `"distinguished_by":${distinguishingToJson(distinguishing)},` +
    `"first_event":"${formatInstant(closed.first)}","last_event":"${formatInstant(closed.last)}",` +
    `"events":[${events.map(eventToJson).join(',')}]}`
  );
}

// Output is batched: one write per ~64 KiB keeps a large replay fast and still streams.
const FLUSH_AT = 64 * 1024;
// A flood of bad lines should not bury the summary.
const MAX_REPORTED = 100;

/**
 * Turns engine effects into output lines: keeps each open stream's distinguishing values and
 * events (the in-memory event store) and renders a stream when it closes.
 */
class ReplaySink {
  readonly store = new MemoryEventStore();
  private readonly distinguishing = new Map<string, DistinguishingValues>();
  fired = 0;
  expired = 0;

  /** Applies effects; calls `emit` with the output line of each stream that closed. */
  apply(effects: readonly Effect[], emit: (line: string) => void): void {
    for (const e of effects) {
      switch (e.type) {
        case 'streamOpened':
          this.distinguishing.set(e.streamId, e.distinguishing);
          break;
        case 'eventAdded':
          this.store.append(e.streamId, e.event);
          break;
        case 'fired':
        case 'expired': {
          if (e.type === 'fired') this.fired++;
          else this.expired++;
          const dist = this.distinguishing.get(e.streamId) ?? {};
          emit(closedStreamLine(e, dist, this.store.read(e.streamId)));
          this.distinguishing.delete(e.streamId);
          this.store.discard(e.streamId);
          break;
        }
        default:
          break;
      }
    }
  }
}

async function run(args: string[], io: CliIo): Promise<number> {
  const opts = parse(args);
  if (opts.runPipelines) {
    throw new UsageError(
      'replay: --run-pipelines is not available yet: the in-process pipeline runner is not built. ' +
        'Run without it to see which streams fire or expire.',
    );
  }
  const configPath = opts.config ?? io.env.WINCHESTER_CONFIG ?? 'winchester.yaml';
  const config = await loadConfig(configPath, { env: io.env, cwd: io.cwd });
  const distiller = config.distiller;
  if (!opts.events && distiller === null) {
    throw new UsageError(
      `replay: ${configPath} has no distiller_config, so notifications cannot be distilled; ` +
        'give one, or pass --events with already distilled events',
    );
  }
  if (!opts.quiet) {
    for (const w of config.warnings) {
      await write(io.stderr, `winchester: ${formatProblem({ ...w, message: `warning: ${w.message}` })}\n`);
    }
  }
  const input = await openInput(opts.input, io);

  const engine = new PartitionEngine({ triggers: config.triggers, clock: new EventTimeClock(0) });
  const sink = new ReplaySink();
  let events = 0;
  let unmatchedNotifications = 0;
  let joinedNone = 0;
  let malformed = 0;
  let lastTimestamp: Instant | undefined;
  let out = '';
  let err = '';
  const emit = (line: string) => {
    out += `${line}\n`;
  };
  const report = (line: number, what: string) => {
    malformed++;
    if (opts.quiet) return;
    if (malformed <= MAX_REPORTED) err += `winchester: line ${line}: ${what}\n`;
    else if (malformed === MAX_REPORTED + 1)
      err += 'winchester: further malformed lines are counted but not shown\n';
  };
  const flush = async () => {
    if (out !== '') await write(io.stdout, out);
    if (err !== '') await write(io.stderr, err);
    out = '';
    err = '';
  };

  for await (const rec of readJsonRecords(input)) {
    if (rec.error !== undefined) {
      report(rec.line, `invalid JSON: ${rec.error}`);
      continue;
    }
    const text = rec.text as string;
    let event: Event;
    if (opts.events) {
      try {
        event = eventFromJson(text);
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        report(rec.line, `not an event: ${e.message}`);
        continue;
      }
    } else {
      const r = (distiller as Distiller).distillJson(text);
      if (!r.ok) {
        if (r.kind === 'unmatched') unmatchedNotifications++;
        else report(rec.line, `malformed notification (${r.reason}): ${r.detail}`);
        continue;
      }
      event = r.event;
    }
    events++;
    lastTimestamp = event.timestamp;
    if (engine.add(event) === 0) joinedNone++;
    sink.apply(engine.takeEffects(), emit);
    if (out.length >= FLUSH_AT || err.length >= FLUSH_AT) await flush();
  }

  // The end of the input: one more pass with the clock at --until (default: the latest event
  // time). Ready means strictly before now, as everywhere: the reference, replayed the same way,
  // leaves a stream whose fire time is the last event's timestamp unfired.
  const until = opts.until ?? (lastTimestamp === undefined ? undefined : Math.max(lastTimestamp, engine.now));
  if (until !== undefined) engine.advance(until);
  sink.apply(engine.takeEffects(), emit);
  await flush();

  if (!opts.quiet) {
    const parts = [
      `${events} events`,
      ...(opts.events ? [] : [`${unmatchedNotifications} notifications matched no event definition`]),
      `${malformed} malformed`,
      `${joinedNone} events joined no trigger`,
      `${sink.fired} streams fired`,
      `${sink.expired} expired`,
      `${engine.activeStreams} still open${until === undefined ? '' : ` at ${formatInstant(until)}`}`,
    ];
    await write(io.stderr, `winchester: replay: ${parts.join(', ')}\n`);
  }
  return 0;
}

export const replayCommand: Command = {
  name: 'replay',
  summary: 'run the stream engine over recorded notifications or events and print fired/expired streams',
  usage,
  run,
};
