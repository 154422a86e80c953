/**
 * The pipeline runner (SPEC.md §5): one batch through one pipeline. Pure — it knows nothing of Kafka,
 * Postgres or retries; the pipeline worker and `winchester replay --run-pipelines` both call it and
 * decide what a failure means (retry later, dead-letter, report).
 *
 * Think in handleEvents, act in commit: every handler sees the list the previous one returned, and only
 * when all of them succeeded does any side effect happen. A failure anywhere rolls back every handler
 * that was created, so a retried batch starts from nothing.
 */
import type { Logger } from '../log.js';
import type { Event } from '../model/event.js';
import type { PipelineDefinition } from './definitions.js';
import type { Handler, HandlerEnv, HandlerFactory, PipelineInput, PipelineOutcome } from './handler.js';

interface HandlerError {
  readonly handler: string;
  readonly error: string;
}

/**
 * Runs `input` through `pipeline`: a fresh handler per step from `create`, `handleEvents` on each in
 * order, then `commit()` on each (all succeeded) or `rollback()` on each created one (any failed).
 *
 * - A step whose construction throws fails the batch as if its `handleEvents` had thrown; the handlers
 *   already made are rolled back.
 * - A `handleEvents` result that is not an array of events (objects with a string `message_id`) is a
 *   failure naming the handler: the next handler, or the feedback of new events, would otherwise break
 *   far from the cause.
 * - Commit and rollback errors are logged and returned, never thrown, and never stop the other handlers.
 * - `newEvents` are the final list's events whose `message_id` was not in the input, in list order.
 *
 * Handlers receive a copy of the input array and of `env` (shallow: not of the events nor of env's
 * values), so they cannot reorder or truncate the caller's list, and the keys one run adds to `env` are
 * gone on the next; events are `readonly` by type and not copied, this being a hot path.
 */
export async function runPipeline(
  pipeline: PipelineDefinition,
  input: PipelineInput,
  create: HandlerFactory,
  log: Logger,
): Promise<PipelineOutcome> {
  const steps = pipeline.handlers;
  const created: { readonly name: string; readonly handler: Handler }[] = [];
  // A fresh scratchpad per run, as the reference's per-batch Pipeline had: keys a failed attempt left
  // (half-built notifications) must not reach the retry, nor the caller's object.
  const env: HandlerEnv = { ...input.env };
  const where = (): Record<string, unknown> => ({
    pipeline: pipeline.name,
    batch_id: env.batch_id,
    stream_id: env.stream_id,
    trigger: env.trigger,
    kind: env.kind,
  });

  let failure: HandlerError | undefined;
  // Every instance is made before any runs, as the reference does: a step that cannot even be
  // constructed (bad params) fails the batch before any handler has thought about it.
  for (const step of steps) {
    try {
      created.push({ name: step.name, handler: create({ name: step.name, params: step.params }) });
    } catch (err) {
      failure = { handler: step.name, error: `cannot create handler: ${errorText(err)}` };
      break;
    }
  }

  let events: Event[] = input.events.slice();
  if (failure === undefined) {
    for (const { name, handler } of created) {
      try {
        const result: unknown = await handler.handleEvents(events, env);
        const invalid = checkEvents(result);
        if (invalid !== undefined) {
          failure = { handler: name, error: `handleEvents returned ${invalid}` };
          break;
        }
        events = result as Event[];
      } catch (err) {
        failure = { handler: name, error: errorText(err) };
        break;
      }
    }
  }

  if (failure !== undefined) {
    log('error', 'pipeline failed', { ...where(), handler: failure.handler, error: failure.error });
    const rollbackErrors: HandlerError[] = [];
    for (const { name, handler } of created) {
      try {
        await handler.rollback();
      } catch (err) {
        const error = errorText(err);
        rollbackErrors.push({ handler: name, error });
        log('error', 'handler rollback failed', { ...where(), handler: name, error });
      }
    }
    return { ok: false, handler: failure.handler, error: failure.error, rollbackErrors };
  }

  const newEvents = findNewEvents(input.events, events);

  const commitErrors: HandlerError[] = [];
  for (const { name, handler } of created) {
    try {
      await handler.commit();
    } catch (err) {
      const error = errorText(err);
      commitErrors.push({ handler: name, error });
      log('error', 'handler commit failed', { ...where(), handler: name, error });
    }
  }
  return { ok: true, events, newEvents, commitErrors };
}

/** The events of `final` whose message_id is not among `input`'s, in `final`'s order. */
export function findNewEvents(input: readonly Event[], final: readonly Event[]): Event[] {
  const seen = new Set<string>();
  for (const e of input) seen.add(e.message_id);
  const out: Event[] = [];
  for (const e of final) if (!seen.has(e.message_id)) out.push(e);
  return out;
}

/** Why `value` is not a list of events, or undefined when it is one. */
function checkEvents(value: unknown): string | undefined {
  if (!Array.isArray(value)) return `${describe(value)}, not an array of events`;
  for (let i = 0; i < value.length; i++) {
    const e: unknown = value[i];
    if (typeof e !== 'object' || e === null || typeof (e as { message_id?: unknown }).message_id !== 'string')
      return `an array whose item ${i} is not an event (${describe(e)} without a string message_id)`;
  }
  return undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/** An error as one line for logs and outcomes: its message, never its stack. */
function errorText(err: unknown): string {
  if (err instanceof Error) return err.message === '' ? err.name : err.message;
  return String(err);
}
