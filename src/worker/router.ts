/**
 * The route stage of the trigger worker: notifications in, one stream-events record out per
 * (trigger, distinguishing values) the event matched, malformed input to the dead-letter topic.
 *
 * {@link Router} is the pure core (no Kafka, no clock): it turns a batch of consumed messages into the
 * messages to produce. {@link RouterWorker} drives it from a kafkajs consumer (eachBatch) and producer,
 * committing a notification's offset only after everything it produced was acknowledged, so the stage is
 * at-least-once (the streams stage ignores a repeated message id per stream). It also sends the periodic
 * time ticks to every stream-events partition.
 */
import type { Distiller } from '../distill/index.js';
import { describeKafkaError } from '../kafka/errors.js';
import { PartitionCache } from '../kafka/partitioner.js';
import { streamEventHead, streamEventTail, streamRecordKey } from '../kafka/records.js';
import type { Consumer, EachBatchPayload, Producer } from '../kafka/types.js';
import type { WinchesterMetrics } from '../metrics/metrics.js';
import type { Event } from '../model/event.js';
import { eventToTypedJson } from '../model/event-json.js';
import { isConfluentFramed, jsonCodec, type RecordCodec, type RecordValue } from '../serde/codec.js';
import type { AvroNotificationDecoder } from '../serde/notifications.js';
import type { Instant } from '../timex/instant.js';
import type { DistinguishingValues, TriggerDefinition } from '../triggers/types.js';

/** A consumed message, as much of it as routing needs (kafkajs' KafkaMessage satisfies it). */
export interface InboundMessage {
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** A message to produce. */
export interface OutboundMessage {
  readonly topic: string;
  readonly key: string | Buffer | null;
  readonly value: string | Buffer | null;
  /** Set for ticks (one per partition) and for the router's records; otherwise the key decides. */
  readonly partition?: number;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Why a notification went to the dead-letter topic: the distiller's reasons, or an empty value. */
export type DeadLetterReason = string;

/** Counters of what the router did (all monotonic). */
export interface RouterCounts {
  notifications: number;
  /** Notifications distilled into an event. */
  events: number;
  /** Notifications no event definition covers (dropped, as the reference does). */
  unmatched: number;
  /** Events that matched no trigger. */
  joinedNone: number;
  /** stream-events records produced (one per matching trigger). */
  records: number;
  /** Events matched per trigger, indexed like {@link RouterOptions.triggers}. */
  readonly matched: number[];
  /** Dead-lettered notifications by reason. */
  deadLettered: Record<DeadLetterReason, number>;
}

/** The router's counters and event time at one moment ({@link Router.snapshot}). */
export interface RouterSnapshot {
  readonly counts: Readonly<RouterCounts>;
  readonly highestEventTime: Instant | null;
}

/** Options of {@link Router}. */
export interface RouterOptions {
  readonly distiller: Distiller;
  readonly triggers: readonly TriggerDefinition[];
  readonly streamEventsTopic: string;
  readonly deadLetterTopic: string;
  /**
   * Notifications larger than this (bytes) are dead-lettered as `too_large` without being distilled.
   * Default {@link DEFAULT_MAX_NOTIFICATION_BYTES}.
   */
  readonly maxNotificationBytes?: number;
  /** Format of the stream-events records written (default: JSON text). */
  readonly codec?: RecordCodec;
  /**
   * Reads Confluent-framed Avro notifications (with a schema registry configured). Without it a framed
   * value goes to the JSON distiller like any other, which dead-letters it as `invalid_json`.
   */
  readonly avroNotifications?: AvroNotificationDecoder;
  /**
   * Partitions of the stream-events topic. When given, every record carries its partition, computed
   * (and cached per key) exactly as the producer's default partitioner would from its key, which saves
   * the client library's slow hash; pipeline-emitted records, partitioned by the producer, agree.
   */
  readonly streamEventsPartitions?: number;
}

/** Default of {@link RouterOptions.maxNotificationBytes}: 1 MiB, the broker's default message limit. */
export const DEFAULT_MAX_NOTIFICATION_BYTES = 1024 * 1024;
/** Largest stream-events record value produced: the broker refuses messages over 1 MiB by default. */
export const MAX_RECORD_BYTES = 900 * 1024;
/** Dead-lettered values are cut to this many bytes (header `winchester-truncated-from` gives the size). */
export const MAX_DEAD_LETTER_VALUE_BYTES = 512 * 1024;

/** Whether a record appended to `out` from index `from` on has a value over {@link MAX_RECORD_BYTES}. */
function tooLarge(out: readonly OutboundMessage[], from: number): boolean {
  for (let i = from; i < out.length; i++) {
    const v = (out[i] as OutboundMessage).value;
    // A string's UTF-8 size is at most 3 bytes per UTF-16 unit: measure only when it could be too big.
    if (typeof v === 'string' && v.length * 3 > MAX_RECORD_BYTES && Buffer.byteLength(v) > MAX_RECORD_BYTES) {
      return true;
    }
    if (Buffer.isBuffer(v) && v.length > MAX_RECORD_BYTES) return true;
  }
  return false;
}

/** The pure routing core. Holds only counters and the highest event time routed. */
export class Router {
  readonly counts: RouterCounts = {
    notifications: 0,
    events: 0,
    unmatched: 0,
    joinedNone: 0,
    records: 0,
    matched: [],
    deadLettered: Object.create(null),
  };
  private highest: Instant = Number.NEGATIVE_INFINITY;
  /** Where matched events go (built once: the same for every event). */
  private readonly target: EventRecordTarget;

  constructor(private readonly options: RouterOptions) {
    for (let i = 0; i < options.triggers.length; i++) this.counts.matched.push(0);
    this.target = {
      triggers: options.triggers,
      streamEventsTopic: options.streamEventsTopic,
      matched: this.counts.matched,
      ...(options.codec === undefined ? {} : { codec: options.codec }),
      ...(options.streamEventsPartitions === undefined
        ? {}
        : { partitions: new PartitionCache(options.streamEventsPartitions) }),
      streams: new StreamRecordCache(options.triggers.length),
    };
  }

  /** The trigger definitions, in the order of {@link RouterCounts.matched}. */
  get triggers(): readonly TriggerDefinition[] {
    return this.options.triggers;
  }

  /** The highest timestamp of an event routed so far, or null before the first. */
  get highestEventTime(): Instant | null {
    return this.highest === Number.NEGATIVE_INFINITY ? null : this.highest;
  }

  /**
   * A copy of the counters and the highest event time as they are now: what the metrics publish once
   * the output routed so far is acknowledged, and what {@link restore} goes back to when output routed
   * after it is discarded unsent.
   */
  snapshot(): RouterSnapshot {
    const c = this.counts;
    return {
      counts: {
        notifications: c.notifications,
        events: c.events,
        unmatched: c.unmatched,
        joinedNone: c.joinedNone,
        records: c.records,
        matched: [...c.matched],
        deadLettered: Object.assign(Object.create(null), c.deadLettered),
      },
      highestEventTime: this.highestEventTime,
    };
  }

  /** Goes back to a {@link snapshot}, forgetting everything routed since (it was never sent). */
  restore(s: RouterSnapshot): void {
    const c = this.counts;
    const from = s.counts;
    c.notifications = from.notifications;
    c.events = from.events;
    c.unmatched = from.unmatched;
    c.joinedNone = from.joinedNone;
    c.records = from.records;
    for (let i = 0; i < c.matched.length; i++) c.matched[i] = from.matched[i] ?? 0;
    const dead: Record<DeadLetterReason, number> = Object.create(null);
    for (const reason in from.deadLettered) dead[reason] = from.deadLettered[reason] as number;
    c.deadLettered = dead;
    this.highest = s.highestEventTime ?? Number.NEGATIVE_INFINITY;
  }

  /**
   * The messages to produce for `messages` of `topic`/`partition`, in input order. Never throws for any
   * message content: what cannot be read goes to the dead-letter topic with its reason.
   */
  route(topic: string, partition: number, messages: readonly InboundMessage[]): OutboundMessage[] {
    const { distiller, triggers } = this.options;
    const out: OutboundMessage[] = [];
    const counts = this.counts;
    for (const m of messages) {
      counts.notifications++;
      if (m.value === null || m.value.length === 0) {
        out.push(this.deadLetter(topic, partition, m, 'empty_value', 'the record has no value'));
        continue;
      }
      if (m.value.length > this.maxNotificationBytes) {
        out.push(
          this.deadLetter(
            topic,
            partition,
            m,
            'too_large',
            `the notification is ${m.value.length} bytes, more than trigger_worker.max_notification_bytes (${this.maxNotificationBytes})`,
          ),
        );
        continue;
      }
      let r: ReturnType<Distiller['distillJson']>;
      const avro = this.options.avroNotifications;
      // Per message: JSON text never starts with a NUL byte, the Confluent wire format always does.
      if (avro !== undefined && m.value[0] === 0 && isConfluentFramed(m.value)) {
        const d = avro.decode(m.value);
        if (!d.ok) {
          out.push(this.deadLetter(topic, partition, m, d.reason, d.detail));
          continue;
        }
        r = distiller.distill(d.notification);
      } else {
        r = distiller.distillJson(m.value.toString('utf8'));
      }
      if (!r.ok) {
        if (r.kind === 'unmatched') counts.unmatched++;
        else out.push(this.deadLetter(topic, partition, m, r.reason, r.detail));
        continue;
      }
      const event = r.event;
      counts.events++;
      if (event.timestamp > this.highest) this.highest = event.timestamp;
      const before = out.length;
      const joined = appendEventRecords(out, event, this.target, this.highest);
      if (joined > 0 && tooLarge(out, before)) {
        // A record the broker would refuse would block the partition forever: dead-letter the notification.
        out.length = before;
        for (let i = 0; i < triggers.length; i++) {
          if ((triggers[i] as TriggerDefinition).match(event, event.timestamp).matched) {
            counts.matched[i] = (counts.matched[i] as number) - 1;
          }
        }
        out.push(
          this.deadLetter(
            topic,
            partition,
            m,
            'event_too_large',
            `its event's stream-events record would be more than ${MAX_RECORD_BYTES} bytes`,
          ),
        );
        counts.events--;
        continue;
      }
      counts.records += joined;
      if (joined === 0) counts.joinedNone++;
    }
    return out;
  }

  /**
   * Fetches what {@link route} needs to decode `messages` synchronously (the writer schemas of Avro
   * notifications); a no-op without a schema registry. Rejects only when the registry cannot be
   * reached, so the batch is retried rather than dead-lettered.
   */
  prepare(messages: readonly InboundMessage[]): Promise<void> {
    const avro = this.options.avroNotifications;
    if (avro === undefined) return Promise.resolve();
    return avro.prepare(messages.map((m) => m.value));
  }

  /** One tick record per partition of the stream-events topic. */
  ticks(partitions: number, time: Instant): OutboundMessage[] {
    const value = (this.options.codec ?? jsonCodec).encodeTick(time);
    const out: OutboundMessage[] = [];
    for (let p = 0; p < partitions; p++) {
      out.push({ topic: this.options.streamEventsTopic, partition: p, key: null, value });
    }
    return out;
  }

  private get maxNotificationBytes(): number {
    return this.options.maxNotificationBytes ?? DEFAULT_MAX_NOTIFICATION_BYTES;
  }

  private deadLetter(
    topic: string,
    partition: number,
    m: InboundMessage,
    reason: DeadLetterReason,
    detail: string,
  ): OutboundMessage {
    this.counts.deadLettered[reason] = (this.counts.deadLettered[reason] ?? 0) + 1;
    const headers: Record<string, string> = {
      'winchester-reason': reason,
      'winchester-detail': detail.length > 1000 ? `${detail.slice(0, 1000)}…` : detail,
      'winchester-topic': topic,
      'winchester-partition': String(partition),
      'winchester-offset': m.offset,
    };
    let value = m.value;
    if (value !== null && value.length > MAX_DEAD_LETTER_VALUE_BYTES) {
      // The dead-letter topic has the broker's usual 1 MiB limit: keep the head of the value and say so
      // (the original stays in the input topic at the offset in the headers while it is retained).
      headers['winchester-truncated-from'] = String(value.length);
      value = value.subarray(0, MAX_DEAD_LETTER_VALUE_BYTES);
    }
    return { topic: this.options.deadLetterTopic, key: m.key, value, headers };
  }
}

/** What every stream-events record of one stream of one trigger shares, computed once per stream. */
interface StreamRecordParts {
  /** The Kafka key ({@link streamRecordKey}). */
  readonly key: string;
  /** The key's partition, when the target picks partitions. */
  readonly partition: number | undefined;
  /** {@link streamEventHead} of the stream, for JSON records. */
  readonly head: string | undefined;
}

/**
 * `s` as one flat string. Text built by concatenation is a rope of many small strings in V8; one kept for
 * a long time costs several times its length in heap, so what is remembered per stream is copied flat.
 */
function flat(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

/**
 * Per trigger, the parts of a stream-events record that do not depend on the event: its Kafka key,
 * partition and JSON head. A trigger's match hands out the same frozen values object for the events of a
 * stream while it remembers the stream (its memo is bounded), so the parts are remembered per values
 * object, weakly: a hit replaces building the record key, finding its partition and writing the stream's
 * identity as JSON, and an entry goes away with the values object, so this holds no more streams than
 * the triggers do. Values that are not frozen (built anew for every event) are not remembered.
 */
export class StreamRecordCache {
  private readonly maps: WeakMap<DistinguishingValues, StreamRecordParts>[] = [];

  constructor(triggers: number) {
    for (let i = 0; i < triggers; i++) this.maps.push(new WeakMap());
  }

  /** The parts for `triggers[index]`'s match (key `key`, values `distinguishing`). */
  parts(
    index: number,
    trigger: string,
    key: string,
    distinguishing: DistinguishingValues,
    partitions: PartitionCache | undefined,
    json: boolean,
  ): StreamRecordParts {
    const frozen = Object.isFrozen(distinguishing);
    const map = this.maps[index] as WeakMap<DistinguishingValues, StreamRecordParts>;
    if (frozen) {
      const known = map.get(distinguishing);
      if (known !== undefined && (known.head !== undefined) === json) return known;
    }
    const recordKey = frozen ? flat(streamRecordKey(trigger, key)) : streamRecordKey(trigger, key);
    const head = json ? streamEventHead(trigger, key, distinguishing) : undefined;
    const parts: StreamRecordParts = {
      key: recordKey,
      partition: partitions?.of(recordKey),
      head: frozen && head !== undefined ? flat(head) : head,
    };
    if (frozen) map.set(distinguishing, parts);
    return parts;
  }
}

/** Where {@link appendEventRecords} sends matched events: the same for every event of a worker. */
export interface EventRecordTarget {
  readonly triggers: readonly TriggerDefinition[];
  readonly streamEventsTopic: string;
  /** Default: JSON. */
  readonly codec?: RecordCodec;
  /**
   * When given, `matched[i]` is incremented for every trigger `triggers[i]` an event matched (plain
   * numbers: the metrics read them per chunk, not per event).
   */
  readonly matched?: number[];
  /**
   * When given, records get an explicit partition from it (the default partitioner's choice for their
   * key); otherwise the producer's partitioner decides.
   */
  readonly partitions?: PartitionCache;
  /** When given, the per-stream parts of records are remembered there (built for `triggers`). */
  readonly streams?: StreamRecordCache;
}

/**
 * Appends to `out` one stream-events record per trigger `event` matches (keyed by trigger and canonical
 * stream key, so a stream stays on one partition) and returns how many. Used for distilled notifications
 * and for the new events pipelines emit, which go back into trigger processing without re-distilling.
 * `watermark` is the router's event time when it routed the event (none for pipelines' events).
 *
 * Values are Buffers: the JSON text is encoded once here, in one piece, so the record holds no string
 * rope (which the young-generation GC would copy while the chunk waits for its acks) and the producer
 * copies bytes instead of measuring and encoding the text again.
 */
export function appendEventRecords(
  out: OutboundMessage[],
  event: Event,
  target: EventRecordTarget,
  watermark?: Instant,
): number {
  const { triggers, streamEventsTopic, matched, partitions, streams } = target;
  const codec = target.codec ?? jsonCodec;
  // The JSON codec's text is assembled here from its parts (exactly encodeStreamEvent's text), so the
  // event's JSON is written once whatever the number of triggers it matched.
  const json = codec === jsonCodec;
  let eventJson: string | undefined;
  let joined = 0;
  for (let i = 0; i < triggers.length; i++) {
    const def = triggers[i] as TriggerDefinition;
    const match = def.match(event, event.timestamp);
    if (!match.matched) continue;
    joined++;
    if (matched !== undefined) matched[i] = (matched[i] ?? 0) + 1;
    const parts =
      streams === undefined
        ? undefined
        : streams.parts(i, def.name, match.key, match.distinguishing, partitions, json);
    const key = parts === undefined ? streamRecordKey(def.name, match.key) : parts.key;
    let value: RecordValue;
    if (json) {
      eventJson ??= eventToTypedJson(event);
      const head = parts?.head ?? streamEventHead(def.name, match.key, match.distinguishing);
      value = Buffer.from(head + streamEventTail(eventJson, watermark), 'utf8');
    } else {
      value = codec.encodeStreamEvent({
        trigger: def.name,
        key: match.key,
        distinguishing: match.distinguishing,
        event,
        ...(watermark === undefined ? {} : { watermark }),
      });
      if (typeof value === 'string') value = Buffer.from(value, 'utf8');
    }
    const partition = parts === undefined ? partitions?.of(key) : parts.partition;
    out.push(
      partition === undefined
        ? { topic: streamEventsTopic, key, value }
        : { topic: streamEventsTopic, key, value, partition },
    );
  }
  return joined;
}

/** Produces messages and resolves once the broker acknowledged all of them (acks = all). */
export type SendPort = (messages: readonly OutboundMessage[]) => Promise<void>;

/** Default cap on the bytes of one produce request (the broker refuses record batches over 1 MiB). */
export const MAX_REQUEST_BYTES = 512 * 1024;

function sizeOf(v: string | Buffer | null): number {
  return v === null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}

/**
 * A {@link SendPort} on a kafkajs producer: sendBatch requests grouped by topic, each at most
 * `maxRequestBytes` of keys and values (one larger message goes alone), sent one after the other so the
 * order within every partition is kept.
 */
export function producerSendPort(
  producer: Pick<Producer, 'sendBatch'>,
  maxRequestBytes = MAX_REQUEST_BYTES,
): SendPort {
  const sendOne = async (messages: readonly OutboundMessage[]) => {
    const byTopic = new Map<string, OutboundMessage[]>();
    for (const m of messages) {
      const list = byTopic.get(m.topic);
      if (list === undefined) byTopic.set(m.topic, [m]);
      else list.push(m);
    }
    await producer.sendBatch({
      acks: -1,
      // The messages go as they are (kafkajs reads key, value, partition and headers, copies what it
      // encodes and mutates nothing): no second object per record.
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
  };
  return async (messages) => {
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as OutboundMessage;
      const size = sizeOf(m.key) + sizeOf(m.value);
      if (i > start && bytes + size > maxRequestBytes) {
        await sendOne(messages.slice(start, i));
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    if (start < messages.length) await sendOne(messages.slice(start));
  };
}

/** Options of {@link RouterWorker}. */
export interface RouterWorkerOptions {
  readonly router: Router;
  /** A consumer of the notifications group (not yet connected). */
  readonly consumer: Consumer;
  readonly send: SendPort;
  readonly notificationsTopic: string;
  /** Partitions of the stream-events topic (ticks go to each). */
  readonly streamEventsPartitions: number;
  /** Milliseconds between ticks; 0 disables them. */
  readonly tickIntervalMs: number;
  /**
   * What a tick says the time is: `wall` → `now()`, `event` → the highest event time routed (nothing is
   * sent before the first event).
   */
  readonly clockMode: 'wall' | 'event';
  readonly now: () => Instant;
  /**
   * The most notifications routed per produce round trip (bounded so heartbeats keep flowing). Default
   * 500. A batch of up to twice this is cut in two halves (of at least {@link MIN_PIPELINED_CHUNK}, or
   * of this size when it is smaller), so the pipeline has a second chunk to route during the first's acks.
   */
  readonly chunkSize?: number;
  /** Where failures of the tick timer are reported (they are retried at the next tick). */
  readonly onError?: (message: string) => void;
  /** Read the topic from the beginning when the group has no committed offset. Default false. */
  readonly fromBeginning?: boolean;
  /** Where the stage's metrics go (route stage of the contract, rebalances, partitions, Kafka errors). */
  readonly metrics?: WinchesterMetrics;
}

/**
 * Moves the router's plain-number counters into the Prometheus metrics by their increase since the last
 * call, once per produced chunk: the per-notification path never touches prom-client, and every labelled
 * child is looked up once and cached.
 */
class RouterMetricsSync {
  private readonly last = {
    notifications: 0,
    unmatched: 0,
    joinedNone: 0,
    records: 0,
    matched: [] as number[],
    deadLettered: new Map<string, number>(),
  };
  private readonly received: ReturnType<WinchesterMetrics['notificationsReceived']['labels']>;
  private readonly unmatched: ReturnType<WinchesterMetrics['notificationsDropped']['labels']>;
  private readonly noTrigger: ReturnType<WinchesterMetrics['notificationsDropped']['labels']>;
  private readonly matched: ReturnType<WinchesterMetrics['eventsMatched']['labels']>[];

  constructor(
    private readonly metrics: WinchesterMetrics,
    private readonly router: Router,
    topic: string,
  ) {
    this.received = metrics.notificationsReceived.labels({ topic });
    this.unmatched = metrics.notificationsDropped.labels({ reason: 'unmatched' });
    this.noTrigger = metrics.notificationsDropped.labels({ reason: 'no_trigger' });
    this.matched = router.triggers.map((def) => metrics.eventsMatched.labels({ trigger: def.name }));
    this.sync();
  }

  /** Publishes the increase up to `c` (default: the router's counters now). */
  sync(c: Readonly<RouterCounts> = this.router.counts): void {
    const last = this.last;
    // inc(0) is cheap and makes the series exist, so every trigger and reason shows up from the start.
    this.received.inc(c.notifications - last.notifications);
    this.unmatched.inc(c.unmatched - last.unmatched);
    this.noTrigger.inc(c.joinedNone - last.joinedNone);
    this.metrics.streamEventRecords.inc(c.records - last.records);
    for (let i = 0; i < this.matched.length; i++) {
      const now = c.matched[i] ?? 0;
      this.matched[i]?.inc(now - (last.matched[i] ?? 0));
      last.matched[i] = now;
    }
    for (const reason in c.deadLettered) {
      const now = c.deadLettered[reason] ?? 0;
      const before = last.deadLettered.get(reason) ?? 0;
      if (now === before) continue;
      this.metrics.notificationsDeadLettered.labels({ reason }).inc(now - before);
      last.deadLettered.set(reason, now);
    }
    last.notifications = c.notifications;
    last.unmatched = c.unmatched;
    last.joinedNone = c.joinedNone;
    last.records = c.records;
  }
}

/** Default of {@link RouterWorkerOptions.chunkSize}. */
export const DEFAULT_CHUNK_SIZE = 500;
/** A batch is cut into two chunks (for the pipeline) only when each holds at least this many. */
export const MIN_PIPELINED_CHUNK = 100;

/** A routed chunk whose produce request is in flight. */
interface InFlightChunk {
  readonly sent: Promise<void>;
  /** The offset to resolve once it is acknowledged (its last message's). */
  readonly lastOffset: string;
  /** The router right after routing it: what its acknowledgement makes final. */
  readonly state: RouterSnapshot;
}

/** Runs the {@link Router} on a consumer group of the notifications topic. */
export class RouterWorker {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  /**
   * The highest event time of what the broker has acknowledged. Event-time ticks carry this, never the
   * time of records still in flight, so on every partition a tick comes after the events it covers.
   */
  private ackedEventTime: Instant | null = null;
  private stopped = false;
  private readonly metricsSync: RouterMetricsSync | undefined;
  private removeJoinListener: (() => void) | undefined;

  constructor(private readonly options: RouterWorkerOptions) {
    const m = options.metrics;
    this.metricsSync = m && new RouterMetricsSync(m, options.router, options.notificationsTopic);
  }

  /** Connects, subscribes and starts consuming and ticking. */
  async start(): Promise<void> {
    const o = this.options;
    const m = o.metrics;
    if (m !== undefined) {
      m.partitionsAssigned.labels({ stage: 'route' }).set(0);
      this.removeJoinListener = o.consumer.on(o.consumer.events.GROUP_JOIN, (e) => {
        m.rebalances.labels({ group: e.payload.groupId }).inc();
        const assigned = e.payload.memberAssignment[o.notificationsTopic] ?? [];
        m.partitionsAssigned.labels({ stage: 'route' }).set(assigned.length);
      });
    }
    await o.consumer.connect();
    await o.consumer.subscribe({ topics: [o.notificationsTopic], fromBeginning: o.fromBeginning ?? false });
    await o.consumer.run({
      eachBatchAutoResolve: false,
      autoCommit: true,
      eachBatch: (payload) => this.handleBatch(payload),
    });
    if (o.tickIntervalMs > 0) {
      this.timer = setInterval(() => {
        this.ticking = this.ticking.then(() => this.tick());
      }, o.tickIntervalMs);
      this.timer.unref();
    }
  }

  /** Sends one tick to every stream-events partition now (also used for a final tick on shutdown). */
  async tick(): Promise<void> {
    const o = this.options;
    const time = o.clockMode === 'wall' ? o.now() : this.ackedEventTime;
    if (time === null) return;
    try {
      await o.send(o.router.ticks(o.streamEventsPartitions, time));
      o.metrics?.ticksSent.inc(o.streamEventsPartitions);
    } catch (error) {
      o.metrics?.kafkaErrors.labels({ operation: 'send_ticks' }).inc();
      o.onError?.(`sending time ticks failed (retried at the next tick): ${describeKafkaError(error)}`);
    }
  }

  /**
   * Routes one fetched batch in chunks: produce, wait for the acknowledgement, then resolve the offsets
   * (committed by kafkajs' auto-commit) and heartbeat, so a long batch neither loses its input on a crash
   * nor its group membership (kafkajs #375: only heartbeats keep a member alive during eachBatch).
   *
   * Pipelined one chunk deep: chunk k+1 is routed while chunk k's produce request is in flight, and sent
   * once chunk k is acknowledged (so records still go out in input order, one request after the other).
   * An offset is still resolved only after the acks of its own chunk and of every chunk before it. When
   * chunk k+1 is not sent (k's send failed, or the batch went stale meanwhile), the router goes back to
   * its snapshot after chunk k, so counters and metrics count only what was handed to the producer.
   */
  async handleBatch(
    payload: Pick<
      EachBatchPayload,
      'batch' | 'resolveOffset' | 'heartbeat' | 'isRunning' | 'isStale' | 'commitOffsetsIfNecessary'
    >,
  ): Promise<void> {
    const { batch } = payload;
    const router = this.options.router;
    const messages = batch.messages;
    // At least two chunks per batch when it is large enough, so that one is routed while the other is
    // acknowledged: a fetch brings at most 1 MiB per partition (~370 notifications of 2.7 KB), less
    // than one default chunk.
    const max = this.options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    const size = Math.min(max, Math.max(MIN_PIPELINED_CHUNK, Math.ceil(messages.length / 2)));
    const live = () => payload.isRunning() && !payload.isStale();
    let inFlight: InFlightChunk | undefined;
    let stale = false;
    for (let i = 0; i < messages.length; i += size) {
      // After a rebalance the rest of the batch belongs to someone else (kafkajs #1527: stale batches).
      if (!live()) {
        stale = true;
        break;
      }
      const chunk = messages.slice(i, i + size);
      let out: OutboundMessage[];
      try {
        await router.prepare(chunk);
        out = router.route(batch.topic, batch.partition, chunk);
      } catch (error) {
        if (inFlight !== undefined) await this.settle(inFlight, payload);
        throw error;
      }
      if (inFlight !== undefined) {
        const previous = inFlight;
        inFlight = undefined;
        try {
          await this.settle(previous, payload);
        } catch (error) {
          router.restore(previous.state);
          throw error;
        }
        if (!live()) {
          // This chunk stays unsent: the partition's new owner routes it again.
          router.restore(previous.state);
          return;
        }
      }
      inFlight = this.dispatch(out, (chunk[chunk.length - 1] as InboundMessage).offset, router.snapshot());
    }
    if (inFlight !== undefined) await this.settle(inFlight, payload);
    if (!stale) await payload.commitOffsetsIfNecessary();
  }

  /** Starts producing a routed chunk (its rejection is observed by {@link settle}, never left unhandled). */
  private dispatch(out: OutboundMessage[], lastOffset: string, state: RouterSnapshot): InFlightChunk {
    const sent = this.options.send(out);
    sent.catch(() => undefined);
    return { sent, lastOffset, state };
  }

  /**
   * Waits for a dispatched chunk's acknowledgement, then publishes its counts, advances the event time
   * ticks may carry, resolves its offset and heartbeats. Rethrows a failed send (nothing resolved).
   */
  private async settle(
    c: InFlightChunk,
    payload: Pick<EachBatchPayload, 'resolveOffset' | 'heartbeat'>,
  ): Promise<void> {
    try {
      await c.sent;
    } catch (error) {
      // kafkajs retries the batch; the counters already include this chunk, as the router's do.
      this.options.metrics?.kafkaErrors.labels({ operation: 'produce_stream_events' }).inc();
      this.metricsSync?.sync(c.state.counts);
      throw error;
    }
    this.metricsSync?.sync(c.state.counts);
    this.ackedEventTime = c.state.highestEventTime;
    payload.resolveOffset(c.lastOffset);
    await payload.heartbeat();
  }

  /** Stops ticking and consuming (the in-flight batch finishes first) and leaves the group. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
    await this.options.consumer.disconnect();
    this.removeJoinListener?.();
    this.options.metrics?.partitionsAssigned.labels({ stage: 'route' }).set(0);
  }
}
