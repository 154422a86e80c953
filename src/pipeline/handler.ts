/**
 * The pipeline handler contract (SPEC.md §5). A pipeline is a list of handlers; for every batch (a
 * fired or expired stream) a fresh instance of each is created with its params, then:
 *
 * 1. `handleEvents(events, env)` runs on each in order; the list it returns is what the next one sees.
 *    It must have no side effects outside `env` (it may run again when the batch is retried).
 * 2. When all succeed, `commit()` runs on each (side effects go here). A commit error is logged and
 *    counted; the other handlers still commit.
 * 3. When one throws, `rollback()` runs on each, and the batch is retried later, then marked failed.
 *
 * Delivery is at least once: a crash after `commit()` and before the pipeline worker records the batch
 * complete runs the batch, and `commit()`, again (docs/pipeline-worker.md). Make side effects idempotent
 * by `env.batch_id`, which is the same on every delivery of a batch.
 *
 * Events of the final list whose `message_id` was not in the input are new events: they go back into
 * trigger processing as they are (not re-distilled).
 *
 * A user handler is a class exported from a JS module named in winchester.yaml:
 *
 * ```yaml
 * pipeline_handlers:
 *   count_deletes: ./handlers/count-deletes.js#CountDeletes
 * ```
 *
 * ```js
 * export class CountDeletes {
 *   constructor(params, context) { this.params = params; this.context = context; }
 *   handleEvents(events, env) {
 *     this.deletes = events.filter((e) => e.event_type === 'compute.instance.delete.end').length;
 *     return events;
 *   }
 *   commit() { this.context.log('info', 'deletes counted', { deletes: this.deletes }); }
 *   rollback() {}
 * }
 * ```
 */
import type { Logger } from '../log.js';
import type { Event } from '../model/event.js';
import type { DistinguishingValues } from '../triggers/types.js';

/**
 * The scratchpad shared by the handlers of one batch. The named fields are set by the runner before the
 * first handler; handlers may add their own keys (the reference's `env_keys` convention: e.g. `usage`
 * leaves the notifications it built under a key that a publisher handler then sends).
 */
export interface HandlerEnv {
  /**
   * The batch's id, the same on every delivery of this batch: the key for idempotent side effects (a
   * crash between commit() and recording completion runs commit() again on redelivery).
   */
  batch_id: string;
  /** The stream's id. */
  stream_id: string;
  /** The trigger's name (the reference's name for it). */
  stream_name: string;
  /** The trigger's name. */
  trigger: string;
  /** Whether the stream fired or expired. */
  kind: 'fire' | 'expire';
  /** The pipeline running. */
  pipeline: string;
  /** The stream's distinguishing values, in distinguished_by order. */
  distinguishing: DistinguishingValues;
  [key: string]: unknown;
}

/** One handler instance, for one batch. Methods may be synchronous or return a promise. */
export interface Handler {
  handleEvents(events: Event[], env: HandlerEnv): Event[] | Promise<Event[]>;
  commit(): void | Promise<void>;
  rollback(): void | Promise<void>;
}

/** Messages a handler asks to publish to Kafka (the `notabene` replacement). Resolves once acknowledged. */
export type PublishPort = (
  topic: string,
  messages: readonly { readonly key: string | null; readonly value: string }[],
) => Promise<void>;

/** What the process gives every handler instance besides its params. */
export interface HandlerContext {
  /** Structured logs (the `logger` handler writes its line here). */
  readonly log: Logger;
  /** Publishes to Kafka; absent offline (`winchester replay --run-pipelines`). */
  readonly publish?: PublishPort;
  /** HTTP client (atompub, webhook); defaults to the global fetch. */
  readonly fetch?: typeof fetch;
  /** The machine clock in milliseconds (injected so retries and token expiry can be tested). */
  readonly now?: () => number;
  /** Waits `ms` milliseconds (injected so backoff can be tested without sleeping). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** A handler implementation: built-ins and user classes alike are constructed with (params, context). */
export type HandlerClass = new (
  params: Readonly<Record<string, unknown>>,
  context: HandlerContext,
) => Handler;

/** Makes the handler instance of one pipeline step (a fresh one per batch). */
export type HandlerFactory = (step: {
  readonly name: string;
  readonly params: Readonly<Record<string, unknown>>;
}) => Handler;

/** What {@link runPipeline} is given: the batch and its env. */
export interface PipelineInput {
  readonly events: readonly Event[];
  readonly env: HandlerEnv;
}

/** How a pipeline run ended. */
export type PipelineOutcome =
  | {
      readonly ok: true;
      /** The final list of the last handler. */
      readonly events: readonly Event[];
      /** Events of the final list whose message_id was not in the input, in list order. */
      readonly newEvents: readonly Event[];
      /** Handlers whose commit() threw (the others committed). */
      readonly commitErrors: readonly { readonly handler: string; readonly error: string }[];
    }
  | {
      readonly ok: false;
      /** The handler whose handleEvents threw (or was given an invalid result). */
      readonly handler: string;
      readonly error: string;
      /** Handlers whose rollback() threw. */
      readonly rollbackErrors: readonly { readonly handler: string; readonly error: string }[];
    };
