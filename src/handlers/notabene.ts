/**
 * The `notabene` handler: the reference's RabbitMQ publisher (NotabeneHandler), rebuilt on Kafka. In
 * commit() it publishes, to one topic, the events of the batch its `event_types` select and the
 * notifications earlier handlers left in `env` under its `env_keys`, each keyed by its message id so that
 * consumers can drop the copies a redelivered batch produces. Documented in docs/handlers.md.
 */
import { WinchesterError } from '../errors.js';
import type { EventTypeMatcher } from '../glob.js';
import type { Logger } from '../log.js';
import type { Event } from '../model/event.js';
import { eventToJson } from '../model/event-json.js';
import type { Handler, HandlerContext, HandlerEnv, PublishPort } from '../pipeline/handler.js';
import { HandlerParamsError, ParamReader, warnOncePerStep } from './param-checks.js';

/** The reference's RabbitMQ connection params: accepted so its pipelines.yaml loads, but meaningless here. */
const RABBITMQ_PARAMS = ['exchange', 'exchange_type', 'host', 'library', 'password', 'port', 'user', 'vhost'];

const KNOWN_PARAMS = new Set(['topic', 'queue_name', 'env_keys', 'event_types', ...RABBITMQ_PARAMS]);

/** Kafka's rule for topic names. */
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/** One Kafka message to publish. */
export interface NotabeneMessage {
  readonly key: string;
  readonly value: string;
}

/**
 * Publishes the batch's verdicts (or any events and notifications) to Kafka. Params:
 *
 * - `topic` (string): the Kafka topic. Default: `queue_name`.
 * - `queue_name` (string, the reference's): the queue the reference's consumers read (it was also the
 *   routing key), hence the natural topic when `topic` is absent. One of the two is required.
 * - `env_keys` (list of strings, default none): `env` keys holding lists of notifications that earlier
 *   handlers built; each item is published: an event as flat event JSON, any other value as JSON.
 * - `event_types` (glob or list; `!glob` excludes; default none): events of the batch to publish as flat
 *   event JSON (src/model/event-json.ts), e.g. `compute.instance.exists.*` for the usage verdicts.
 * - `exchange`, `exchange_type`, `host`, `port`, `user`, `password`, `vhost`, `library` (the
 *   reference's RabbitMQ connection): accepted and ignored, with one warning per pipeline step. The
 *   broker is the process's Kafka connection. `exchange` is not used as a topic: the reference's
 *   exchange (`nova`) is where notifications come from, so publishing there would feed verdicts back.
 *
 * Keys: an item's `message_id`; an env item without one gets `<batch_id>:<env key>:<index>`, the same
 * on every delivery of the batch. An id already published by this commit is not published twice (an
 * event both selected and listed). Messages go in list order: selected events, then each env key's
 * list in `env_keys` order. Without a Kafka publisher (offline replay) commit() fails, saying so.
 */
export class NotabeneHandler implements Handler {
  /** The topic messages go to. */
  readonly topic: string;
  private readonly envKeys: readonly string[];
  private readonly select: EventTypeMatcher | undefined;
  private readonly log: Logger;
  private readonly publish: PublishPort | undefined;
  private pending: { readonly batchId: string; readonly messages: readonly NotabeneMessage[] } | undefined;

  constructor(params: Readonly<Record<string, unknown>>, context: HandlerContext) {
    const p = new ParamReader('notabene', params);
    const topic = p.string('topic') ?? p.string('queue_name');
    if (topic === undefined || topic === '') {
      throw new HandlerParamsError(
        "notabene: param 'topic' is required (or the reference's 'queue_name', used as the topic when 'topic' is absent)",
      );
    }
    if (!TOPIC_NAME.test(topic) || topic === '.' || topic === '..') {
      throw new HandlerParamsError(
        `notabene: '${topic}' is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)`,
      );
    }
    this.topic = topic;
    this.envKeys = p.stringList('env_keys') ?? [];
    this.select = p.eventTypes('event_types');
    // Read for their type only: a malformed value is still a configuration mistake worth stopping on.
    for (const name of ['exchange', 'exchange_type', 'host', 'user', 'password', 'vhost', 'library'])
      p.string(name);
    if (p.has('port') && typeof params.port !== 'string') p.number('port', 0, { integer: true });
    this.log = context.log;
    this.publish = context.publish;
    const ignored = RABBITMQ_PARAMS.filter((name) => p.has(name));
    if (ignored.length > 0) {
      warnOncePerStep(
        this.log,
        params,
        'rabbitmq',
        'notabene: RabbitMQ connection params are ignored; messages go to the Kafka topic',
        { handler: 'notabene', ignored, topic },
      );
    }
    const unknown = p.unknown(KNOWN_PARAMS);
    if (unknown.length > 0)
      warnOncePerStep(this.log, params, 'unknown', 'notabene: ignoring unknown params', { params: unknown });
  }

  /** Serialises what commit() will publish (so a value that cannot be sent fails the batch here). */
  handleEvents(events: Event[], env: HandlerEnv): Event[] {
    const messages: NotabeneMessage[] = [];
    const seen = new Set<string>();
    const add = (key: string, value: string) => {
      if (seen.has(key)) return;
      seen.add(key);
      messages.push({ key, value });
    };
    if (this.select !== undefined) {
      for (const event of events) {
        if (this.select.test(event.event_type)) add(event.message_id, eventToJson(event));
      }
    }
    for (const envKey of this.envKeys) {
      const list = Object.hasOwn(env, envKey) ? env[envKey] : undefined;
      if (list === undefined || list === null) continue;
      if (!Array.isArray(list)) {
        throw new WinchesterError(
          `notabene: env['${envKey}'] must be a list of notifications, not ${typeof list === 'object' ? 'a mapping' : typeof list}`,
        );
      }
      list.forEach((item: unknown, index: number) => {
        const id = messageIdOf(item);
        add(id ?? `${env.batch_id}:${envKey}:${index}`, notificationJson(item, envKey, index));
      });
    }
    this.pending = messages.length === 0 ? undefined : { batchId: env.batch_id, messages };
    return events;
  }

  /** Publishes and waits for the broker's acknowledgement; throws when it is not acknowledged. */
  async commit(): Promise<void> {
    const pending = this.pending;
    if (pending === undefined) return;
    if (this.publish === undefined) {
      throw new WinchesterError(
        `notabene: no Kafka publisher in this process (an offline run such as replay --run-pipelines), ` +
          `${pending.messages.length} message(s) for topic '${this.topic}' not published`,
      );
    }
    await this.publish(this.topic, pending.messages);
    this.log('info', 'notabene published', {
      handler: 'notabene',
      batch_id: pending.batchId,
      topic: this.topic,
      count: pending.messages.length,
    });
    this.pending = undefined;
  }

  rollback(): void {
    this.pending = undefined;
  }
}

function isEvent(item: unknown): item is Event {
  if (typeof item !== 'object' || item === null) return false;
  const e = item as Partial<Event>;
  return (
    typeof e.message_id === 'string' &&
    typeof e.event_type === 'string' &&
    typeof e.timestamp === 'number' &&
    typeof e.traits === 'object' &&
    e.traits !== null
  );
}

function messageIdOf(item: unknown): string | undefined {
  if (typeof item !== 'object' || item === null) return undefined;
  const id = (item as { message_id?: unknown }).message_id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

function notificationJson(item: unknown, envKey: string, index: number): string {
  if (isEvent(item)) return eventToJson(item);
  let json: string | undefined;
  try {
    json = JSON.stringify(item);
  } catch (err) {
    throw new WinchesterError(
      `notabene: env['${envKey}'][${index}] cannot be written as JSON: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  if (json === undefined) throw new WinchesterError(`notabene: env['${envKey}'][${index}] has no JSON form`);
  return json;
}
