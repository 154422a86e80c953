/**
 * The `logger` built-in handler (the reference's LoggingHandler): one structured log line per batch,
 * written in commit() so that a batch that fails and is retried is logged once, when it completes.
 *
 * ```yaml
 * my_pipeline:
 *   - name: logger
 *     params: { level: debug }   # optional: debug | info (default) | warn | error
 * ```
 *
 * The line carries `handler: "logger"`, `trigger`, `kind` (fire|expire), `pipeline`, `stream_id`,
 * `count` and `message_ids` (every event's id, in list order). The reference logged the event types
 * too, as free text; ids are what one greps for, and they identify the events exactly.
 */
import type { LogLevel } from '../log.js';
import type { Event } from '../model/event.js';
import type { Handler, HandlerContext, HandlerEnv } from '../pipeline/handler.js';
import { ParamReader, warnOncePerStep } from './param-checks.js';

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const PARAMS: ReadonlySet<string> = new Set(['level']);

/** What commit() writes, taken from the last handleEvents of this instance. */
interface BatchSummary {
  readonly trigger: string;
  readonly kind: 'fire' | 'expire';
  readonly pipeline: string;
  readonly stream_id: string;
  readonly message_ids: readonly string[];
}

export class LoggerHandler implements Handler {
  private readonly level: LogLevel;
  private batch: BatchSummary | undefined;

  constructor(
    params: Readonly<Record<string, unknown>>,
    private readonly context: HandlerContext,
  ) {
    const p = new ParamReader('logger', params);
    this.level = p.oneOf('level', LEVELS, 'info');
    // As every built-in: the reference ignored unknown keywords; say so once per pipeline step.
    const unknown = p.unknown(PARAMS);
    if (unknown.length > 0)
      warnOncePerStep(context.log, params, 'unknown', 'logger: ignoring unknown params', { params: unknown });
  }

  handleEvents(events: Event[], env: HandlerEnv): Event[] {
    const ids = new Array<string>(events.length);
    for (let i = 0; i < events.length; i++) ids[i] = (events[i] as Event).message_id;
    this.batch = {
      trigger: env.trigger,
      kind: env.kind,
      pipeline: env.pipeline,
      stream_id: env.stream_id,
      message_ids: ids,
    };
    return events;
  }

  commit(): void {
    const b = this.batch;
    // commit() without handleEvents cannot happen in a pipeline run; there is nothing to report then.
    if (b === undefined) return;
    this.context.log(this.level, 'pipeline batch', {
      handler: 'logger',
      trigger: b.trigger,
      kind: b.kind,
      pipeline: b.pipeline,
      stream_id: b.stream_id,
      count: b.message_ids.length,
      message_ids: b.message_ids,
    });
  }

  rollback(): void {
    this.batch = undefined;
  }
}
