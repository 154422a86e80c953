/**
 * The one place that constructs kafkajs clients. Everything else in the project imports Kafka types and
 * factories from `src/kafka/`, never from `kafkajs`, so the client library could be replaced (kafkajs has
 * been looking for maintainers since 2023).
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import {
  type ISocketFactory,
  Kafka,
  type KafkaConfig,
  logLevel as KafkajsLogLevel,
  type LogEntry,
  Partitioners,
  type Producer,
  type ProducerConfig,
  type RetryOptions,
} from 'kafkajs';
import { ConfigError } from '../errors.js';
import { KafkaUnavailableError } from './errors.js';

/** Log levels the adapter accepts, quietest first. */
export type KafkaLogLevel = 'nothing' | 'error' | 'warn' | 'info' | 'debug';

/** One kafkajs log line, reshaped into a flat structured record. */
export interface KafkaLogRecord {
  /** ISO-8601 time kafkajs stamped on the entry. */
  time: string;
  level: Exclude<KafkaLogLevel, 'nothing'>;
  /** kafkajs subsystem, e.g. `Consumer`, `Connection`, `BrokerPool`. */
  namespace: string;
  message: string;
  /** Whatever structured fields kafkajs attached (broker, groupId, error, stack, …). */
  fields: Record<string, unknown>;
}

/** Where log records go; defaults to one JSON line per record on stderr. */
export type KafkaLogSink = (record: KafkaLogRecord) => void;

/** Options for {@link createKafka}. */
export interface KafkaClientOptions {
  /** Bootstrap brokers, as `host:port` strings or one comma-separated string (the KAFKA_BROKERS format). */
  brokers: readonly string[] | string;
  /** Client id sent to the broker; shows up in broker logs and quotas. */
  clientId: string;
  /**
   * Minimum level that reaches the sink. Default `'nothing'`: kafkajs is chatty (every reconnect attempt is
   * logged at ERROR) and every failure that matters also surfaces as a rejected promise or a consumer
   * CRASH event, so long-running workers opt in to `'warn'` or `'info'` explicitly.
   */
  logLevel?: KafkaLogLevel;
  /** Receives the records that pass `logLevel`. Default: JSON lines on stderr. */
  logSink?: KafkaLogSink;
  /** TCP connect timeout in milliseconds. Default 3000. */
  connectionTimeoutMs?: number;
  /** Per-request timeout in milliseconds. Default 30000 (kafkajs' own default). */
  requestTimeoutMs?: number;
  /**
   * kafkajs retry policy for each request (exponential backoff with jitter). Default: kafkajs' own
   * (5 retries starting at 300 ms). Tests pass small values so an absent broker fails in seconds.
   */
  retry?: RetryOptions;
  /** SASL authentication (PLAIN or SCRAM); absent: none. */
  sasl?: KafkaSasl;
  /** TLS to the brokers; absent: plaintext. */
  ssl?: KafkaTls;
  /**
   * Opens the client's TCP connections; default kafkajs' own. Tests pass one that injects network faults
   * kafkajs meets only in races of a real outage (test/integration/worker/consumer-restart.test.ts).
   */
  socketFactory?: ISocketFactory;
}

/** SASL credentials (the mechanisms kafkajs implements without plugins). */
export interface KafkaSasl {
  readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  readonly username: string;
  readonly password: string;
}

/** TLS settings, file names already resolved. */
export interface KafkaTls {
  /** PEM file of the authorities to trust; absent: the system ones. */
  readonly caFile?: string;
  /** PEM client certificate and key, for mutual TLS. */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** Verify the brokers' certificates (default true). */
  readonly rejectUnauthorized?: boolean;
}

const LEVEL_TO_KAFKAJS: Record<KafkaLogLevel, KafkajsLogLevel> = {
  nothing: KafkajsLogLevel.NOTHING,
  error: KafkajsLogLevel.ERROR,
  warn: KafkajsLogLevel.WARN,
  info: KafkajsLogLevel.INFO,
  debug: KafkajsLogLevel.DEBUG,
};

const KAFKAJS_TO_LEVEL = new Map<KafkajsLogLevel, Exclude<KafkaLogLevel, 'nothing'>>([
  [KafkajsLogLevel.ERROR, 'error'],
  [KafkajsLogLevel.WARN, 'warn'],
  [KafkajsLogLevel.INFO, 'info'],
  [KafkajsLogLevel.DEBUG, 'debug'],
]);

/** Writes each record as one JSON line on stderr, the format the rest of the project logs in. */
export const stderrJsonSink: KafkaLogSink = (record) => {
  process.stderr.write(
    `${JSON.stringify({ time: record.time, level: record.level, component: `kafka.${record.namespace}`, msg: record.message, ...record.fields })}\n`,
  );
};

/**
 * Parses a broker list such as `127.0.0.1:19092,10.0.0.2:9092` into `host:port` strings.
 * @throws ConfigError when the list is empty or an entry lacks a valid port.
 */
export function parseBrokers(brokers: readonly string[] | string, source = 'KAFKA_BROKERS'): string[] {
  const parts = (typeof brokers === 'string' ? brokers.split(',') : [...brokers])
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
  if (parts.length === 0) {
    throw new ConfigError([
      { file: source, message: 'no Kafka broker given (expected host:port[,host:port…])' },
    ]);
  }
  const problems = parts
    .filter((b) => {
      const m = /^(.+):(\d{1,5})$/.exec(b);
      return m === null || Number(m[2]) < 1 || Number(m[2]) > 65535;
    })
    .map((b) => ({ file: source, message: `broker '${b}' is not host:port` }));
  if (problems.length > 0) throw new ConfigError(problems);
  return parts;
}

/** Builds the kafkajs logCreator that filters by `level` and reshapes entries for `sink`. */
export function createLogCreator(level: KafkaLogLevel, sink: KafkaLogSink): KafkaConfig['logCreator'] {
  const threshold = LEVEL_TO_KAFKAJS[level];
  return () =>
    ({ namespace, level: entryLevel, log }: LogEntry) => {
      if (entryLevel > threshold) return;
      const name = KAFKAJS_TO_LEVEL.get(entryLevel);
      if (name === undefined) return;
      const { timestamp, message, ...fields } = log;
      sink({ time: timestamp, level: name, namespace, message, fields });
    };
}

/**
 * Creates a kafkajs client with the project's defaults: quiet logging through a structured sink, a short
 * connect timeout, and validated broker addresses.
 * @throws ConfigError when `brokers` is malformed.
 */
export function createKafka(options: KafkaClientOptions): Kafka {
  const level = options.logLevel ?? 'nothing';
  const config: KafkaConfig = {
    clientId: options.clientId,
    brokers: parseBrokers(options.brokers),
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    requestTimeout: options.requestTimeoutMs ?? 30000,
    logLevel: LEVEL_TO_KAFKAJS[level],
    logCreator: createLogCreator(level, options.logSink ?? stderrJsonSink),
  };
  if (options.retry !== undefined) config.retry = options.retry;
  if (options.sasl !== undefined) config.sasl = { ...options.sasl } as KafkaConfig['sasl'];
  if (options.ssl !== undefined) config.ssl = tlsOptions(options.ssl);
  if (options.socketFactory !== undefined) config.socketFactory = options.socketFactory;
  return new Kafka(config);
}

/**
 * Creates a producer that partitions keyed messages exactly like the Java client (murmur2), so a stream's
 * events land on the same partition whichever client wrote them. kafkajs 2 would otherwise warn on every
 * producer about its changed default. Any `config` field overrides these defaults.
 */
export function createProducer(kafka: Kafka, config: ProducerConfig = {}): Producer {
  return kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...config });
}

/** The backoff of a worker's Kafka client (src/cli/worker-runtime.ts `workerKafka`), in milliseconds. */
export const WORKER_RETRY = { initialRetryTime: 300, maxRetryTime: 10_000 } as const;

/**
 * The time `retries` retries of a worker's Kafka client wait in all: the backoff doubles from
 * {@link WORKER_RETRY}.initialRetryTime up to its maxRetryTime (jitter left out).
 */
export function retryBudgetMs(retries: number): number {
  let total = 0;
  let next: number = WORKER_RETRY.initialRetryTime;
  for (let i = 0; i < retries; i++) {
    total += next;
    next = Math.min(next * 2, WORKER_RETRY.maxRetryTime);
  }
  return total;
}

/** Options of {@link createIdempotentProducer}. */
export interface IdempotentProducerOptions {
  /** The client's retries (`kafka.retries`): a send waits as long as they would, see `sendTimeoutMs`. */
  readonly retries: number;
  /**
   * How long a caller waits for a send to be acknowledged before it gets a KafkaUnavailableError.
   * Default: {@link retryBudgetMs}(retries) plus one request timeout (30 s), what a send with that many
   * retries took to fail before.
   */
  readonly sendTimeoutMs?: number;
}

/**
 * An idempotent producer (acks from all in-sync replicas, one request in flight per broker) that keeps
 * its exactly-once-per-session guarantee through an outage, for the long-running workers.
 *
 * kafkajs wants unlimited retries for an idempotent producer and warns otherwise ("Limiting retries for the
 * idempotent producer may invalidate EoS guarantees"), rightly: a send that gives up rolls its sequence
 * numbers back, so if the broker had written it after all (the answer lost with a connection or a
 * timeout), the next records sent with those numbers are taken for a duplicate and dropped, or refused as
 * out of order. Yet a client retry limit (`kafka.retries`) is inherited by every producer of the client.
 * So this producer gets kafkajs' unlimited retries for what may have reached a broker (request timeouts,
 * connections cut, leaders moving), and the bound moves to the caller:
 *
 * - a broker that refuses connections still ends a send, with kafkajs' connection error, once the
 *   client's own reconnect retries (`kafka.retries`) are spent: nothing was sent, so rolling the sequence
 *   numbers back is right (measured: ~3.4 s with 3 retries, test/integration/worker/consumer-restart.test.ts);
 * - sends run one at a time, so no send's sequence numbers are assigned while an earlier one is retrying;
 * - a caller that waited `sendTimeoutMs` (a broker that accepts connections but does not answer) gets a
 *   (retriable) KafkaUnavailableError instead of hanging: a send that had not started is dropped, one
 *   that had keeps retrying in the background (a later send waits for it). The caller then sends its
 *   records again: at least once, as everywhere in the workers (consumers drop repeats).
 */
export function createIdempotentProducer(kafka: Kafka, options: IdempotentProducerOptions): Producer {
  const producer = createProducer(kafka, {
    idempotent: true,
    maxInFlightRequests: 1,
    retry: { retries: Number.MAX_SAFE_INTEGER },
  });
  const timeoutMs = options.sendTimeoutMs ?? retryBudgetMs(options.retries) + 30_000;
  const serial = new SerialSends(timeoutMs);
  return {
    ...producer,
    send: (record) => serial.run(() => producer.send(record)),
    sendBatch: (batch) => serial.run(() => producer.sendBatch(batch)),
  };
}

/** Runs sends one after another; each caller waits at most `timeoutMs`. */
class SerialSends {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly timeoutMs: number) {}

  run<T>(send: () => Promise<T>): Promise<T> {
    let started = false;
    let abandoned = false;
    const result = this.tail.then(() => {
      if (abandoned) return undefined as T;
      started = true;
      return send();
    });
    const ignore = () => undefined;
    this.tail = result.then(ignore, ignore);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        abandoned = !started;
        const seconds = this.timeoutMs / 1000;
        reject(
          new KafkaUnavailableError(
            started
              ? `Kafka did not acknowledge the records within ${seconds} s (the producer keeps retrying them)`
              : `the records could not be sent within ${seconds} s: an earlier send is still retrying (Kafka unavailable?)`,
          ),
        );
      }, this.timeoutMs);
      result.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }
}

/** Reads the PEM files now, so a missing or unreadable file is a configuration error at start. */
function tlsOptions(tls: KafkaTls): ConnectionOptions {
  const read = (what: string, file: string | undefined): string | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError([
        { file, message: `kafka.ssl.${what}: cannot read: ${(error as Error).message}` },
      ]);
    }
  };
  const out: ConnectionOptions = { rejectUnauthorized: tls.rejectUnauthorized ?? true };
  const ca = read('ca_file', tls.caFile);
  const cert = read('cert_file', tls.certFile);
  const key = read('key_file', tls.keyFile);
  if (ca !== undefined) out.ca = [ca];
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) out.key = key;
  return out;
}

/** The kafka section of winchester.yaml, as far as the client needs it. */
export interface KafkaClientSettings {
  readonly brokers: readonly string[];
  readonly client_id: string;
  readonly sasl: {
    readonly mechanism: string;
    readonly username: string | null;
    readonly password: string | null;
  };
  readonly ssl: {
    readonly enabled: boolean;
    readonly ca_file: string | null;
    readonly cert_file: string | null;
    readonly key_file: string | null;
    readonly reject_unauthorized: boolean;
  };
}

/**
 * Client options from the kafka settings (brokers, client id, SASL, TLS). Configuration loading has
 * already checked that a SASL mechanism comes with a username and password.
 */
export function kafkaClientOptions(
  kafka: KafkaClientSettings,
  extra: Omit<KafkaClientOptions, 'brokers' | 'clientId' | 'sasl' | 'ssl'> = {},
): KafkaClientOptions {
  const options: KafkaClientOptions = { ...extra, brokers: kafka.brokers, clientId: kafka.client_id };
  const { mechanism, username, password } = kafka.sasl;
  if (mechanism === 'plain' || mechanism === 'scram-sha-256' || mechanism === 'scram-sha-512') {
    options.sasl = { mechanism, username: username ?? '', password: password ?? '' };
  }
  if (kafka.ssl.enabled) {
    const tls: { -readonly [K in keyof KafkaTls]: KafkaTls[K] } = {
      rejectUnauthorized: kafka.ssl.reject_unauthorized,
    };
    if (kafka.ssl.ca_file !== null) tls.caFile = kafka.ssl.ca_file;
    if (kafka.ssl.cert_file !== null) tls.certFile = kafka.ssl.cert_file;
    if (kafka.ssl.key_file !== null) tls.keyFile = kafka.ssl.key_file;
    options.ssl = tls;
  }
  return options;
}
