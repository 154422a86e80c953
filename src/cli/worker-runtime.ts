/**
 * What the long-running worker commands (`trigger-worker`, `pipeline-worker`) share: configuration with
 * the database URL required, a structured logger at the configured level, a Kafka client with SASL/TLS,
 * a Postgres pool whose schema is checked (or upgraded with --migrate), and a run loop that stops
 * gracefully on SIGTERM/SIGINT (a second signal exits at once).
 */
import { loadConfig, type WinchesterConfig } from '../config/load.js';
import { DatabaseUnavailableError, redactDatabaseUrl } from '../db/databases.js';
import { classifyDatabaseError, describeDatabaseError } from '../db/errors.js';
import {
  defaultMigrationsDir,
  MigrationError,
  migrationStatus,
  readMigrations,
  upgrade,
} from '../db/migrate.js';
import { createPool, type DatabasePool } from '../db/pool.js';
import { ConfigError, causeChain, WinchesterError } from '../errors.js';
import { classifyKafkaError } from '../kafka/errors.js';
import { createKafka, type KafkaLogRecord, kafkaClientOptions, WORKER_RETRY } from '../kafka/kafka.js';
import { type AvroWiring, connectAvro, redactRegistryUrl } from '../kafka/schema-registry.js';
import type { Kafka } from '../kafka/types.js';
import { createJsonLogger, type Logger, type LogLevel } from '../log.js';
import type { WinchesterMetrics } from '../metrics/metrics.js';
import type { CliIo } from './io.js';

/** A worker's configuration, with database.url known to be set. */
export interface WorkerConfig {
  readonly path: string;
  readonly config: WinchesterConfig;
  readonly databaseUrl: string;
}

/** Loads the configuration; a worker cannot run without database.url. */
export async function loadWorkerConfig(path: string, io: CliIo, command: string): Promise<WorkerConfig> {
  const config = await loadConfig(path, { env: io.env, cwd: io.cwd });
  const url = config.settings.database.url;
  if (url === null || url === '') {
    throw new ConfigError([
      { file: path, message: `${command} needs database.url: set it there, or set DATABASE_URL` },
    ]);
  }
  return { path, config, databaseUrl: url };
}

/** Logs the configuration's non-fatal findings, one line each. */
export function logConfigWarnings(config: WinchesterConfig, log: Logger): void {
  for (const w of config.warnings)
    log('warn', 'configuration', { problem: w.message, file: w.file, line: w.line });
}

/**
 * What a worker does when one of its consumers stopped for good (kafkajs gave up on it on an error no
 * restart cures, or the in-process restarts after an outage ran out, src/kafka/consumer-restart.ts): stop
 * (the process would stay up, consuming nothing) and exit 1 so the orchestrator restarts it. Pass `onFatal`
 * to the worker and `signal` to {@link untilSignalled}; after it, `throwIfFatal` raises the cause.
 */
export function fatalStop(what: string): {
  readonly signal: AbortSignal;
  onFatal(error: unknown): void;
  throwIfFatal(): void;
} {
  const controller = new AbortController();
  let fatal: { error: unknown } | undefined;
  return {
    signal: controller.signal,
    onFatal(error) {
      fatal ??= { error };
      controller.abort();
    },
    throwIfFatal() {
      if (fatal === undefined) return;
      const { error } = fatal;
      throw new WinchesterError(
        `${what} stopped and cannot restart: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    },
  };
}

const LEVELS: Record<string, LogLevel> = {
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'error',
};

/** JSON lines on stdout at log_level, each with `worker: <name>`. */
export function workerLogger(config: WinchesterConfig, io: CliIo, worker: string): Logger {
  return createJsonLogger({
    level: LEVELS[config.settings.log_level] ?? 'info',
    write: (line) => io.stdout.write(line),
    base: { worker },
  });
}

/**
 * What a worker's start throws, with kafkajs' own errors (connecting, creating topics, joining a group)
 * turned into the typed Kafka errors, so that a broker that is down or restarting when the worker starts
 * ends the command with exit 1 and one line naming Kafka, as documented, instead of an "internal error"
 * (exit 70). Errors that are not kafkajs' pass unchanged.
 */
export function workerStartError(error: unknown, command: string): unknown {
  if (error instanceof WinchesterError || !fromKafkaClient(error)) return error;
  return classifyKafkaError(error, `${command} could not start: Kafka`);
}

/** Whether kafkajs threw it (its error classes are all named KafkaJS…, causes included). */
function fromKafkaClient(error: unknown): boolean {
  for (const e of causeChain(error)) {
    if (!(e instanceof Error)) return false;
    if (e.name.startsWith('KafkaJS')) return true;
  }
  return false;
}

/** A Kafka client from the kafka settings whose own warnings and errors go to `log`. */
export function workerKafka(config: WinchesterConfig, log: Logger): Kafka {
  return createKafka(
    kafkaClientOptions(config.settings.kafka, {
      // Long-running workers ride out a broker restart: each request retries for about a minute by
      // default. Consumers kafkajs gives up on all the same are replaced in-process with the same bound
      // (src/kafka/consumer-restart.ts); idempotent producers retry without limit, their callers bounded
      // (createIdempotentProducer).
      retry: { retries: config.settings.kafka.retries, ...WORKER_RETRY },
      logLevel: 'warn',
      logSink: (r: KafkaLogRecord) =>
        log(kafkaLevel(r), r.message, { component: `kafka.${r.namespace}`, ...pickKafkaFields(r.fields) }),
    }),
  );
}

// kafkajs logs every error response of a request at ERROR, also those it then retries (a leader moving,
// a coordinator loading); failures that matter reach us as rejected calls or consumer CRASH events.
function kafkaLevel(r: KafkaLogRecord): LogLevel {
  return r.namespace === 'Connection' && r.message.startsWith('Response ') ? 'debug' : r.level;
}

// kafkajs attaches stacks and whole request objects; the message and a few identifiers are what help.
function pickKafkaFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of [
    'broker',
    'groupId',
    'memberId',
    'topic',
    'partition',
    'error',
    'retryCount',
    'retryTime',
  ]) {
    if (fields[key] !== undefined) out[key] = fields[key];
  }
  return out;
}

/**
 * The Avro codec and notification decoder when `schema_registry.url` is set (docs/avro.md), else
 * undefined: the worker then reads and writes JSON exactly as without a registry. The schemas are
 * registered here, at start, so an unreachable registry or refused credentials stop the worker at once
 * (exit 1) with the reason, instead of failing on the first record. With `metrics`, every failed registry
 * call (at start and later) counts in `winchester_schema_registry_errors_total{operation}`.
 * @throws SchemaRegistryUnavailableError, SchemaRegistryRequestError
 */
export async function workerAvro(
  config: WinchesterConfig,
  log: Logger,
  metrics?: Pick<WinchesterMetrics, 'schemaRegistryErrors'>,
): Promise<AvroWiring | undefined> {
  const registry = config.settings.schema_registry;
  if (registry.url === null || registry.url === '') return undefined;
  const topics = config.settings.kafka.topics;
  const wiring = await connectAvro(
    {
      url: registry.url,
      retries: registry.retries,
      timeoutMs: Math.round(registry.timeout * 1000),
      ...(metrics === undefined
        ? {}
        : { onError: (operation) => metrics.schemaRegistryErrors.inc({ operation }) }),
      ...(registry.username === null || registry.password === null
        ? {}
        : { auth: { username: registry.username, password: registry.password } }),
    },
    { streamEventsTopic: topics.stream_events, batchesTopic: topics.batches },
  );
  const ids = wiring.codec.schemaIds;
  log('info', 'schema registry: internal topics carry Avro', {
    registry: redactRegistryUrl(registry.url),
    subjects: {
      [`${topics.stream_events}-value`]: ids.streamRecord,
      [`${topics.batches}-value`]: ids.batchMessage,
    },
  });
  return wiring;
}

/**
 * Opens the pool and checks the schema: pending migrations are applied when `migrate` is set, else they
 * are an error telling the operator to run `winchester db upgrade`.
 */
export async function openWorkerPool(
  databaseUrl: string,
  options: { migrate: boolean; log: Logger; maximumPoolSize?: number },
): Promise<DatabasePool> {
  let pool: DatabasePool | undefined;
  try {
    pool = await createPool(databaseUrl, {
      maximumPoolSize: options.maximumPoolSize ?? 10,
      connectionTimeoutMs: 5000,
    });
    const migrations = await readMigrations(defaultMigrationsDir());
    if (options.migrate) {
      const applied = await upgrade(pool, migrations);
      if (applied.length > 0) options.log('info', 'database schema upgraded', { applied: applied.length });
    } else {
      const pending = (await migrationStatus(pool, migrations)).filter((s) => s.state !== 'applied');
      if (pending.length > 0) {
        throw new MigrationError(
          `the database schema is not up to date (${pending.length} migration${pending.length === 1 ? '' : 's'} ` +
            `not applied): run 'winchester db upgrade -c FILE' first, or start with --migrate`,
        );
      }
    }
    return pool;
  } catch (caught) {
    await pool?.end().catch(() => undefined);
    const error = classifyDatabaseError(caught, 'connecting');
    if (error instanceof DatabaseUnavailableError) {
      throw new DatabaseUnavailableError(
        `cannot use PostgreSQL at ${redactDatabaseUrl(databaseUrl)}: ${describeDatabaseError(error.cause ?? error)}`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** Something that runs until asked to stop. */
export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Resolves once a SIGTERM or SIGINT arrived (or `abort` fired) and `target.stop()` finished; a second
 * signal while stopping exits the process at once with status 130.
 */
export function untilSignalled(target: Stoppable, log: Logger, abort?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const stop = (why: string) => {
      if (stopping) {
        log('warn', 'second signal: exiting without a graceful stop', { signal: why });
        process.exit(130);
      }
      stopping = true;
      log('info', 'stopping gracefully', { signal: why });
      target.stop().then(
        () => {
          cleanup();
          resolve();
        },
        (error: unknown) => {
          cleanup();
          reject(error);
        },
      );
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    const onAbort = () => stop('abort');
    const cleanup = () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      abort?.removeEventListener('abort', onAbort);
    };
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    if (abort?.aborted) onAbort();
    else abort?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Closes a worker's database pool, waiting at most `ms`: a connection a revoked partition's checkpoint
 * or a broken socket still holds must not keep a stopped worker alive (the process would then outlive its
 * SIGTERM until the orchestrator kills it). Never rejects.
 */
export async function closeWorkerPool(pool: DatabasePool, log: Logger, ms = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref();
  });
  const ended = pool.end().then(
    () => 'ended' as const,
    () => 'ended' as const,
  );
  if ((await Promise.race([ended, timedOut])) === 'timeout') {
    log('warn', 'database pool did not close in time; leaving its connections to the exit', { ms });
  }
  clearTimeout(timer);
}
