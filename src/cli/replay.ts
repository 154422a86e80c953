import { relative } from 'node:path';
import { loadConfig, type WinchesterConfig } from '../config/load.js';
import type { Distiller } from '../distill/index.js';
import { EventTimeClock } from '../engine/clock.js';
import type { Effect, StreamClosed } from '../engine/effects.js';
import { MemoryEventStore } from '../engine/event-store.js';
import { PartitionEngine } from '../engine/partition-engine.js';
import { formatProblem, InputError, UsageError } from '../errors.js';
import { createJsonLogger, type Logger } from '../log.js';
import type { Event } from '../model/event.js';
import { eventFromJson, eventToJson, traitValueToJson } from '../model/event-json.js';
import { readJsonRecords } from '../model/json-records.js';
import type { HandlerContext, HandlerFactory, PipelineOutcome } from '../pipeline/handler.js';
import { checkPipelineHandlers, handlerFactory, loadHandlerClasses } from '../pipeline/registry.js';
import { runPipeline } from '../pipeline/runner.js';
import { DatetimeError, formatInstant, type Instant, parseDatetime } from '../timex/instant.js';
import type { DistinguishingValue, DistinguishingValues } from '../triggers/types.js';
import { type CliIo, type Command, openInput, parseCommandArgs, write } from './io.js';

const usage = `Usage: winchester replay [-c FILE] [--events] [--until DATETIME] [--run-pipelines] [INPUT]

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

With --run-pipelines, each closed stream's pipeline (the trigger's fire_pipeline or
expire_pipeline) runs in-process on the stream's events, and its line ends with a "run" field:
  "run": null                                  the trigger has no pipeline for this outcome
  "run": {"ok": true, "emitted": [event, ...], "commit_errors": [{"handler", "error"}, ...]}
  "run": {"ok": false, "handler": name, "error": message, "rollback_errors": [...]}
emitted lists the new events (message_id not among the stream's events), flat as above. They
are fed back into the triggers as distilled events right after the batches closed by the same
step, before the next input line, so they may open or fire other streams (printed after it);
a chain of batches emitting events that close further batches stops feeding back after 100
links (reported on stderr). A failed pipeline is reported and the replay goes on; nothing is
retried. The run is offline: handlers get no Kafka publisher, and HTTP requests (atompub,
webhook) are refused; such handlers fail saying so, which a commit() failure reports under
commit_errors (the other handlers still commit). Handlers log JSON lines to stderr (level info
and above; --quiet does not silence them), never to stdout. Handler modules, params and the
pipelines' built-ins are checked before any input is read. The summary on stderr adds how many
pipelines succeeded and failed and how many new events were fed back.

Options:
  -c, --config FILE     winchester.yaml (default: $WINCHESTER_CONFIG, else ./winchester.yaml)
      --events          INPUT holds already distilled events (flat JSON, as 'distill' prints)
      --until DATETIME  move the clock to this time after the input (ISO-8601; UTC if no offset)
      --run-pipelines   also run each closed stream's pipeline in-process (see above)
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
  run?: string,
): string {
  return (
    `{"trigger":${JSON.stringify(closed.trigger)},"kind":"${closed.type === 'fired' ? 'fire' : 'expire'}",` +
    `"pipeline":${closed.pipeline === null ? 'null' : JSON.stringify(closed.pipeline)},` +
    `"distinguished_by":${distinguishingToJson(distinguishing)},` +
    `"first_event":"${formatInstant(closed.first)}","last_event":"${formatInstant(closed.last)}",` +
    `"events":[${events.map(eventToJson).join(',')}]${run === undefined ? '' : `,"run":${run}`}}`
  );
}

/** The `run` field of a line: what the stream's pipeline did (null when it has none). */
export function pipelineRunJson(outcome: PipelineOutcome | null): string {
  if (outcome === null) return 'null';
  if (outcome.ok) {
    return (
      `{"ok":true,"emitted":[${outcome.newEvents.map(eventToJson).join(',')}],` +
      `"commit_errors":${JSON.stringify(outcome.commitErrors)}}`
    );
  }
  return (
    `{"ok":false,"handler":${JSON.stringify(outcome.handler)},"error":${JSON.stringify(outcome.error)},` +
    `"rollback_errors":${JSON.stringify(outcome.rollbackErrors)}}`
  );
}

/** How deep a chain of batches may go, each closed by new events of the previous one. */
const MAX_FEEDBACK_DEPTH = 100;

/** What an offline HTTP request gets: replay must not deliver anything anywhere. */
const offlineFetch = (() =>
  Promise.reject(
    new Error('replay --run-pipelines is offline: HTTP requests are refused'),
  )) as unknown as typeof fetch;

/** The pipelines of a configuration, ready to run offline on closed streams. */
class ReplayPipelines {
  ok = 0;
  failed = 0;

  private constructor(
    private readonly config: WinchesterConfig,
    private readonly create: HandlerFactory,
    private readonly log: Logger,
  ) {}

  /**
   * Loads every handler and creates every pipeline step once, so a missing module or export, a
   * built-in this build lacks or refused params stop the replay before it reads any input.
   */
  static async load(config: WinchesterConfig, log: Logger, cwd: string): Promise<ReplayPipelines> {
    const show = (file: string) => relative(cwd, file) || file;
    const classes = await loadHandlerClasses(config.handlers, {
      pipelines: config.pipelines,
      configFile: show(config.files.config),
    });
    const context: HandlerContext = {
      log,
      // No publish: a handler that publishes (notabene) fails its batch with its own message.
      fetch: offlineFetch,
      now: () => Date.now(),
      // Nothing to wait for offline: a retrying handler gives up at once.
      sleep: async () => {},
    };
    const create = handlerFactory(classes, context);
    checkPipelineHandlers(config.pipelines, create, {
      pipelineFile:
        config.files.pipelineConfig === null ? 'pipelines.yaml' : show(config.files.pipelineConfig),
    });
    return new ReplayPipelines(config, create, log);
  }

  /** Runs the stream's pipeline on its events; null when the trigger has none for this outcome. */
  async run(
    closed: StreamClosed,
    distinguishing: DistinguishingValues,
    events: readonly Event[],
  ): Promise<PipelineOutcome | null> {
    if (closed.pipeline === null) return null;
    const kind = closed.type === 'fired' ? 'fire' : 'expire';
    const definition = this.config.pipelines.get(closed.pipeline);
    let outcome: PipelineOutcome;
    if (definition === undefined) {
      // The configuration check rejects this; kept so a replay never crashes on it.
      outcome = {
        ok: false,
        handler: '',
        error: `pipeline '${closed.pipeline}' is not defined`,
        rollbackErrors: [],
      };
    } else {
      outcome = await runPipeline(
        definition,
        {
          events,
          env: {
            batch_id: `${closed.streamId}:${kind}`,
            stream_id: closed.streamId,
            stream_name: closed.trigger,
            trigger: closed.trigger,
            kind,
            pipeline: closed.pipeline,
            distinguishing,
          },
        },
        this.create,
        this.log,
      );
    }
    if (outcome.ok) this.ok++;
    else this.failed++;
    return outcome;
  }
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

  /** Applies effects; calls `closedStream` with each stream that closed, its values and events. */
  apply(
    effects: readonly Effect[],
    closedStream: (
      closed: StreamClosed,
      distinguishing: DistinguishingValues,
      events: readonly Event[],
    ) => void,
  ): void {
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
          closedStream(e, dist, this.store.read(e.streamId));
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
  let out = '';
  let err = '';
  // Handler logs share the stderr buffer, so they interleave with the replay's reports in order.
  const pipelines = opts.runPipelines
    ? await ReplayPipelines.load(
        config,
        createJsonLogger({
          write: (line) => {
            err += line;
          },
        }),
        io.cwd,
      )
    : null;
  const input = await openInput(opts.input, io);

  const engine = new PartitionEngine({
    triggers: config.triggers,
    clock: new EventTimeClock(0),
    duplicateWindow: Math.round(config.settings.duplicate_window * 1e6),
  });
  const sink = new ReplaySink();
  let events = 0;
  let unmatchedNotifications = 0;
  let joinedNone = 0;
  let malformed = 0;
  let lastTimestamp: Instant | undefined;
  const emit = (line: string) => {
    out += `${line}\n`;
  };
  const printClosed = (
    closed: StreamClosed,
    distinguishing: DistinguishingValues,
    stream: readonly Event[],
  ) => emit(closedStreamLine(closed, distinguishing, stream));
  let fedBack = 0;
  let fedBackJoinedNone = 0;
  let notFedBack = 0;
  /**
   * With --run-pipelines: runs the pipeline of every stream these effects closed, prints them, then
   * feeds the new events back, one at a time, settling what each of them closes (depth first).
   */
  const settle = async (effects: readonly Effect[], depth: number): Promise<void> => {
    const closed: [StreamClosed, DistinguishingValues, readonly Event[]][] = [];
    sink.apply(effects, (c, d, stream) => closed.push([c, d, stream]));
    const emitted: Event[] = [];
    for (const [c, d, stream] of closed) {
      const outcome = await (pipelines as ReplayPipelines).run(c, d, stream);
      emit(closedStreamLine(c, d, stream, pipelineRunJson(outcome)));
      if (outcome?.ok) for (const e of outcome.newEvents) emitted.push(e);
    }
    if (emitted.length === 0) return;
    if (depth >= MAX_FEEDBACK_DEPTH) {
      if (notFedBack === 0)
        err += `winchester: replay: new events of a chain of ${MAX_FEEDBACK_DEPTH} pipeline batches, each closed by the previous one's events, are not fed back (do pipelines feed each other in a loop?)\n`;
      notFedBack += emitted.length;
      return;
    }
    for (const e of emitted) {
      fedBack++;
      if (engine.add(e) === 0) fedBackJoinedNone++;
      await settle(engine.takeEffects(), depth + 1);
    }
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
    if (pipelines === null) sink.apply(engine.takeEffects(), printClosed);
    else await settle(engine.takeEffects(), 0);
    if (out.length >= FLUSH_AT || err.length >= FLUSH_AT) await flush();
  }

  // The end of the input: one more pass with the clock at --until (default: the latest event
  // time). Ready means strictly before now, as everywhere: the reference, replayed the same way,
  // leaves a stream whose fire time is the last event's timestamp unfired.
  const until = opts.until ?? (lastTimestamp === undefined ? undefined : Math.max(lastTimestamp, engine.now));
  if (until !== undefined) engine.advance(until);
  if (pipelines === null) sink.apply(engine.takeEffects(), printClosed);
  else await settle(engine.takeEffects(), 0);
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
    if (pipelines !== null) {
      parts.push(
        `${pipelines.ok} pipelines ok`,
        `${pipelines.failed} failed`,
        `${fedBack} new events fed back (${fedBackJoinedNone} joined no trigger${notFedBack > 0 ? `, ${notFedBack} more not fed back` : ''})`,
      );
    }
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
