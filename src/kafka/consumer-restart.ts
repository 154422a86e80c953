/**
 * A consumer that survives kafkajs giving up on it in a Kafka outage.
 *
 * kafkajs 2.2.4 restarts a crashed consumer itself only when the crash's root cause is retriable (or its
 * retries ran out); otherwise its CRASH event says `restart: false` and the consumer stays stopped. Some of
 * those crashes are outages all the same: during a broker restart, the group-coordinator lookup swallows the
 * failed request of every broker it asks and throws `KafkaJSGroupCoordinatorNotFound` ("Failed to find group
 * coordinator"), which kafkajs marks non-retriable. {@link RestartingConsumer} replaces such a consumer in
 * the process (a new kafkajs consumer of the same group, subscriptions and run options), backing off, and
 * gives up (its `onFatal`) only after a bounded number of replacements in a row or on an error that no
 * restart can cure (authentication, authorization, invalid configuration, a bug).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsumerRunConfig, ConsumerSubscribeTopic, ConsumerSubscribeTopics } from 'kafkajs';
import { causeChain } from '../errors.js';
import type { Logger } from '../log.js';
import type { WinchesterMetrics } from '../metrics/metrics.js';
import { describeKafkaError, KafkaUnavailableError } from './errors.js';
import type { Consumer } from './types.js';

// kafkajs error classes that mean "the cluster could not be reached, or did not answer in time".
const OUTAGE_NAMES = new Set([
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSStaleTopicMetadataAssignment',
  'KafkaJSTimeout',
  'KafkaJSLockTimeout',
]);

// kafkajs error classes that no restart cures: refused credentials, a broker too old or too new, a bug.
const FATAL_NAMES = new Set([
  'KafkaJSSASLAuthenticationError',
  'KafkaJSServerDoesNotSupportApiKey',
  'KafkaJSNotImplemented',
  'KafkaJSInvariantViolation',
  'KafkaJSUnsupportedMagicByteInMessageSet',
]);

// Broker answers kafkajs marks non-retriable that are group-membership churn or a broker going away:
// a new member rejoins and is assigned afresh.
const OUTAGE_PROTOCOL_TYPES = new Set([
  'REBALANCE_IN_PROGRESS',
  'UNKNOWN_MEMBER_ID',
  'ILLEGAL_GENERATION',
  'BROKER_NOT_AVAILABLE',
]);

/**
 * Whether a consumer crash is a Kafka outage that a new consumer can ride out, rather than a mistake
 * another attempt would repeat. Decided on kafkajs' error classes along the `cause` chain:
 *
 * - restart: group coordinator not found, connection errors (refused, closed, TLS handshake cut), request
 *   and lock timeouts, retries exhausted, no broker / unknown broker / metadata not loaded, protocol errors
 *   kafkajs marks retriable (coordinator moving or loading, leader not available, network exception, …)
 *   and group-membership churn (rebalance in progress, unknown member, illegal generation);
 * - fatal: SASL authentication failures, protocol errors kafkajs marks non-retriable (authorization
 *   failed, invalid session timeout, unsupported version, invalid group id, …), an API the broker does not
 *   support, kafkajs invariant violations, any error that is not kafkajs' own (a bug or a handler's failure
 *   in the worker's code), and any kafkajs error not known as an outage. Fatal wins when a chain has both.
 */
export function isOutageCrash(error: unknown): boolean {
  let outage = false;
  for (const e of causeChain(error)) {
    if (!(e instanceof Error) || !e.name.startsWith('KafkaJS')) return false;
    if (FATAL_NAMES.has(e.name)) return false;
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string') {
      // A broker's answer (KafkaJSProtocolError and its subclasses).
      if ((e as { retriable?: unknown }).retriable === true || OUTAGE_PROTOCOL_TYPES.has(type)) outage = true;
      else return false;
    } else if (OUTAGE_NAMES.has(e.name)) {
      outage = true;
    }
  }
  return outage;
}

/** The message of the warn line logged for each replacement, after the stage's name (`route …`). */
export const CONSUMER_RESTARTING = 'consumer given up by kafkajs in a Kafka outage: restarting it in-process';

/** How hard a {@link RestartingConsumer} tries before it gives up. */
export interface ConsumerRestartPolicy {
  /** Replacements in a row (none of them having joined the group) before giving up; 0: never replace. */
  readonly attempts: number;
  /** Wait before the first replacement; doubled for each further one (with ±20 % jitter). */
  readonly initialBackoffMs: number;
  /** Longest wait between two replacements. */
  readonly maxBackoffMs: number;
}

/**
 * The restart policy of a worker whose Kafka client retries `retries` times backing off from 300 ms to
 * 10 s (`kafka.retries`, src/cli/worker-runtime.ts): as many replacements in a row, with the same backoff.
 * Each replacement's own requests retry as the client does, so a replacement that finds the broker still
 * away takes up to about a minute (the default) before the next one.
 */
export function consumerRestartPolicy(retries: number): ConsumerRestartPolicy {
  return { attempts: Math.max(0, Math.floor(retries)), initialBackoffMs: 300, maxBackoffMs: 10_000 };
}

/** Options of {@link RestartingConsumer}. */
export interface RestartingConsumerOptions {
  /** A new kafkajs consumer of the group (same group id and settings each time). */
  readonly create: () => Consumer;
  /** The stage's name in logs and the `stage` label (`route`, `streams`, `pipeline`). */
  readonly stage: string;
  readonly log: Logger;
  readonly policy: ConsumerRestartPolicy;
  /** `winchester_consumer_restarts_total{stage}` is counted here. */
  readonly metrics?: WinchesterMetrics;
  /**
   * Called before a replacement starts: whatever the stage holds per assigned partition must go, as on a
   * revocation (the crashed member's partitions may have moved and moved back meanwhile).
   */
  readonly beforeRestart?: () => void;
  /** Every crash of the current consumer, restarted or not (readiness, error counters). */
  readonly onCrash?: (error: unknown) => void;
  /**
   * The consumer stopped for good: a crash no replacement cures (its error as kafkajs reported it), or
   * the replacements ran out (a KafkaUnavailableError saying so, the last crash as its cause).
   */
  readonly onFatal?: (error: unknown) => void;
  /** Jitter source (tests). Default Math.random. */
  readonly random?: () => number;
  /**
   * How long a replacement may take to connect and join its group (kafkajs' `run` resolves once joined)
   * before it counts as a failed attempt and the next one is tried: a replacement stuck without an error
   * must not leave the worker alive but consuming nothing. Default 3 minutes (a join may wait out the
   * group's 60 s rebalance timeout).
   */
  readonly joinTimeoutMs?: number;
}

type Listener = (event: never) => void;
interface Registration {
  readonly eventName: string;
  readonly listener: Listener;
  remove: () => void;
}
type Subscription = ConsumerSubscribeTopics | ConsumerSubscribeTopic;
/** The untyped view of kafkajs' overloaded `on`. */
type OnAny = (eventName: string, listener: Listener) => () => void;

/**
 * A kafkajs {@link Consumer} (use {@link RestartingConsumer.consumer}) that is replaced by a new one when
 * kafkajs gives up on it in an outage. Listeners registered with `on`, subscriptions and the run options
 * carry over to each replacement; `pause` does not (no caller pauses). Offsets resolved but not yet
 * committed by a crashed consumer are delivered again to whoever owns the partition next.
 */
export class RestartingConsumer {
  /** The consumer to hand to a worker: every call goes to the current kafkajs consumer. */
  readonly consumer: Consumer;
  private current: Consumer;
  private readonly registrations = new Set<Registration>();
  private readonly subscriptions: Subscription[] = [];
  private runConfig: ConsumerRunConfig | undefined;
  /** Replacements since the group was last joined. */
  private inARow = 0;
  private total = 0;
  private closed = false;
  private readonly closing = new AbortController();
  /** Replacements given up on for not joining in time: their late events are ignored. */
  private readonly abandoned = new WeakSet<Consumer>();
  /** Replacements run one after another. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: RestartingConsumerOptions) {
    this.current = options.create();
    this.attach(this.current);
    this.consumer = this.facade();
  }

  /** Replacements made so far. */
  get restarts(): number {
    return this.total;
  }

  private facade(): Consumer {
    const facade = {
      connect: () => this.current.connect(),
      disconnect: () => this.close(() => this.current.disconnect()),
      stop: () => this.close(() => this.current.stop()),
      subscribe: async (subscription: Subscription) => {
        this.subscriptions.push(subscription);
        await this.current.subscribe(subscription);
      },
      run: async (config?: ConsumerRunConfig) => {
        this.runConfig = config;
        await this.current.run(config);
      },
      commitOffsets: (offsets: Parameters<Consumer['commitOffsets']>[0]) =>
        this.current.commitOffsets(offsets),
      seek: (offset: Parameters<Consumer['seek']>[0]) => this.current.seek(offset),
      describeGroup: () => this.current.describeGroup(),
      pause: (topics: Parameters<Consumer['pause']>[0]) => this.current.pause(topics),
      paused: () => this.current.paused(),
      resume: (topics: Parameters<Consumer['resume']>[0]) => this.current.resume(topics),
      on: (eventName: string, listener: Listener) => this.on(eventName, listener),
      logger: () => this.current.logger(),
      events: this.current.events,
    };
    // kafkajs types `on` as one overload per event; the facade's single signature covers them all.
    return facade as unknown as Consumer;
  }

  private on(eventName: string, listener: Listener): () => void {
    const registration: Registration = {
      eventName,
      listener,
      remove: (this.current.on as unknown as OnAny)(eventName, listener),
    };
    this.registrations.add(registration);
    return () => {
      this.registrations.delete(registration);
      registration.remove();
    };
  }

  private async close(what: () => Promise<void>): Promise<void> {
    this.closed = true;
    this.closing.abort();
    await what();
  }

  /** Registers the callers' listeners and our own on `consumer`. */
  private attach(consumer: Consumer): void {
    for (const r of this.registrations) r.remove = (consumer.on as unknown as OnAny)(r.eventName, r.listener);
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (consumer === this.current) this.inARow = 0;
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (consumer !== this.current || this.closed || this.abandoned.has(consumer)) return;
      this.options.onCrash?.(e.payload.error);
      if (e.payload.restart) {
        this.options.log('error', `${this.options.stage} consumer crashed`, {
          error: e.payload.error.message,
          restart: true,
        });
        return;
      }
      this.restartOrGiveUp(e.payload.error);
    });
  }

  private restartOrGiveUp(error: unknown, outage = isOutageCrash(error)): void {
    const o = this.options;
    if (!outage || this.inARow >= o.policy.attempts) {
      o.log('error', `${o.stage} consumer crashed`, {
        error: error instanceof Error ? error.message : String(error),
        restart: false,
        ...(outage ? { in_process_restarts: this.inARow } : {}),
      });
      // Ran out: the operator reads why from the cause and how often it was tried from the message.
      const n = this.inARow;
      o.onFatal?.(
        outage
          ? new KafkaUnavailableError(
              `${describeKafkaError(error)} (after ${n} in-process restart${n === 1 ? '' : 's'} in a row, kafka.retries)`,
              { cause: error },
            )
          : error,
      );
      return;
    }
    this.inARow++;
    this.total++;
    const base = Math.min(o.policy.maxBackoffMs, o.policy.initialBackoffMs * 2 ** (this.inARow - 1));
    const delayMs = Math.round(base * (0.8 + 0.4 * (o.random ?? Math.random)()));
    o.log('warn', `${o.stage} ${CONSUMER_RESTARTING}`, {
      error: describeKafkaError(error),
      attempt: this.inARow,
      attempts: o.policy.attempts,
      delay_ms: delayMs,
    });
    o.metrics?.consumerRestarts.labels({ stage: o.stage }).inc();
    this.queue = this.queue
      .then(() => this.replace(delayMs))
      .catch((failure: unknown) => {
        // Not Kafka: the stage's own clean-up or the consumer factory threw. Nothing to retry.
        o.log('error', `${o.stage} consumer could not be replaced`, {
          error: failure instanceof Error ? failure.message : String(failure),
        });
        o.onFatal?.(failure);
      });
  }

  /**
   * Replaces the current consumer after `delayMs`. Kafka's failures become the next crash to judge;
   * rejects only when `beforeRestart` or `create` throws.
   */
  private async replace(delayMs: number): Promise<void> {
    try {
      await sleep(delayMs, undefined, { signal: this.closing.signal });
    } catch {
      return; // closed meanwhile
    }
    // kafkajs disconnected it before reporting the crash; this closes whatever is left (not waiting long
    // for a consumer that hung).
    const dead = this.current;
    await Promise.race([dead.disconnect().catch(() => undefined), sleep(10_000, undefined, { ref: false })]);
    if (this.closed) return;
    this.options.beforeRestart?.();
    // The callers' listeners leave the dead consumer for the new one.
    for (const r of this.registrations) r.remove();
    const next = this.options.create();
    this.current = next;
    this.attach(next);
    const joinTimeoutMs = this.options.joinTimeoutMs ?? 180_000;
    const watchdog = new AbortController();
    const stuck = sleep(joinTimeoutMs, 'stuck' as const, { signal: watchdog.signal }).catch(
      () => 'done' as const,
    );
    const start = async (): Promise<'done'> => {
      await next.connect();
      for (const subscription of this.subscriptions) await next.subscribe(subscription);
      if (this.closed) throw new Error('closed');
      // Crashes from here on come as CRASH events of `next`.
      if (this.runConfig !== undefined) await next.run(this.runConfig);
      return 'done';
    };
    const started = start();
    // Settled after the watchdog fired, it is no longer anyone's concern.
    started.catch(() => undefined);
    try {
      if ((await Promise.race([started, stuck])) === 'stuck') {
        if (this.closed || next !== this.current) return;
        this.abandoned.add(next);
        void next.disconnect().catch(() => undefined);
        this.restartOrGiveUp(
          new KafkaUnavailableError(
            `the new consumer did not connect and join its group within ${joinTimeoutMs / 1000} s`,
          ),
          true,
        );
      }
    } catch (error) {
      if (this.closed || next !== this.current) {
        await next.disconnect().catch(() => undefined);
        return;
      }
      this.restartOrGiveUp(error);
    } finally {
      watchdog.abort();
    }
  }
}
