/**
 * The winchester.yaml settings, declared once: type, default and help text of every key. The
 * loader validates against this, environment overrides are derived from it, and
 * docs/configuration.md is generated from it (`node --import tsx scripts/config-docs.ts`).
 */

/** How a leaf value is written in YAML and in an environment variable. */
export type LeafType =
  | 'string'
  | 'optional-string'
  | 'file'
  | 'string-list'
  | 'int'
  | 'seconds'
  | 'boolean'
  | 'enum'
  | 'string-map'
  | 'timex';

export interface Leaf<T> {
  readonly kind: 'leaf';
  readonly type: LeafType;
  readonly default: T;
  readonly help: string;
  /** Allowed values of an `enum`. */
  readonly values?: readonly string[];
  /** Inclusive bounds of an `int`. */
  readonly min?: number;
  readonly max?: number;
  /** Extra environment variable names read after `WINCHESTER_<PATH>` (e.g. `DATABASE_URL`). */
  readonly envAliases?: readonly string[];
  /** False for values that cannot sensibly come from one environment variable (mappings). */
  readonly env: boolean;
  /** Set for reference settings that are accepted but have no effect here: the warning to give. */
  readonly ignored?: string;
  /** Holds a secret: never echoed back in messages. */
  readonly secret?: boolean;
}

export interface Section<F extends Fields> {
  readonly kind: 'section';
  readonly help: string;
  readonly fields: F;
}

export type Spec = Leaf<unknown> | Section<Fields>;
export type Fields = { readonly [key: string]: Spec };

/** The typed value a spec describes. */
export type Infer<S> =
  S extends Leaf<infer T> ? T : S extends Section<infer F> ? { readonly [K in keyof F]: Infer<F[K]> } : never;

type LeafOptions = {
  envAliases?: readonly string[];
  ignored?: string;
  secret?: boolean;
};

function leaf<T>(type: LeafType, dflt: T, help: string, extra: Partial<Leaf<T>> & LeafOptions = {}): Leaf<T> {
  return { kind: 'leaf', type, default: dflt, help, env: type !== 'string-map', ...extra };
}

const str = (dflt: string, help: string, o?: LeafOptions) => leaf<string>('string', dflt, help, o);
const optStr = (help: string, o?: LeafOptions) => leaf<string | null>('optional-string', null, help, o);
const file = (help: string, o?: LeafOptions) => leaf<string | null>('file', null, help, o);
const list = (dflt: readonly string[], help: string, o?: LeafOptions) =>
  leaf<readonly string[]>('string-list', dflt, help, o);
const int = (dflt: number, help: string, min: number, max: number, o?: LeafOptions) =>
  leaf<number>('int', dflt, help, { min, max, ...o });
const seconds = (dflt: number, help: string, o?: LeafOptions) => leaf<number>('seconds', dflt, help, o);
/** Seconds with a floor: smaller values are refused (a retention that would be unsafe). */
const secondsAtLeast = (min: number, dflt: number, help: string) =>
  leaf<number>('seconds', dflt, help, { min });
const bool = (dflt: boolean, help: string, o?: LeafOptions) => leaf<boolean>('boolean', dflt, help, o);
const oneOf = <V extends string>(values: readonly V[], dflt: V, help: string, o?: LeafOptions) =>
  leaf<V>('enum', dflt, help, { values, ...o });
const strMap = (help: string) => leaf<Readonly<Record<string, string>>>('string-map', {}, help);
const timex = (dflt: string, help: string) => leaf<string>('timex', dflt, help);
const section = <F extends Fields>(help: string, fields: F): Section<F> => ({
  kind: 'section',
  help,
  fields,
});

export const LOG_LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const;
export const CLOCK_MODES = ['wall', 'event'] as const;
export const SASL_MECHANISMS = ['none', 'plain', 'scram-sha-256', 'scram-sha-512'] as const;

export const winchesterSchema = section('Top-level settings of winchester.yaml.', {
  config_path: list(
    [],
    'Directories searched, in order, for the files named by distiller_config, trigger_definitions and ' +
      'pipeline_config (and for relative module paths of pipeline_handlers / distiller_trait_plugins). A ' +
      'string or a list. Relative directories are taken from the directory of winchester.yaml, which is ' +
      'always searched last.',
  ),
  distiller_config: file(
    'event_definitions.yaml: how notifications are distilled into events. Without it no notification is ' +
      'turned into an event (only already distilled events can be replayed).',
  ),
  trigger_definitions: file('triggers.yaml: the trigger definitions. Without it there are no triggers.'),
  pipeline_config: file(
    'pipelines.yaml: the pipelines (lists of handlers) that triggers fire and expire into.',
  ),
  pipeline_handlers: strMap(
    'Handler name → implementation, for names used in pipelines.yaml. The built-in handlers (logger, usage, ' +
      'notabene, atompub, webhook) need no entry. A value is a JS module and export, ' +
      '`./handlers/mine.js#MyHandler` (relative to config_path), or one of the reference Python class paths ' +
      '`winchester.pipeline_handler:LoggingHandler`, `:UsageHandler`, `:NotabeneHandler`, `:AtomPubHandler`.',
  ),
  distiller_trait_plugins: strMap(
    'Trait plugin name → JS module and export (`./plugins/mine.js#MyPlugin`), in addition to the built-in ' +
      '`split` and `bitfield` (also accepted under their stackdistiller class paths ' +
      '`stackdistiller.trait_plugins:SplitterTraitPlugin` / `:BitfieldTraitPlugin`).',
  ),
  catch_all_notifications: bool(
    false,
    'Turn every notification into an event with the default traits, even when no definition matches it.',
  ),
  statistics_period: seconds(10, 'How often workers log their statistics, in seconds.'),
  pipeline_worker_batch_size: int(
    1000,
    'Reference setting: the most streams a pipeline worker took from the database at a time. Not used: ' +
      'pipeline workers here take batches from the batches topic as they arrive (see ' +
      'pipeline_worker.concurrency).',
    1,
    1_000_000,
  ),
  pipeline_worker_delay: seconds(
    10,
    'Reference setting: seconds an idle pipeline worker waited before polling the database again. Not ' +
      'used: pipeline workers here are woken by the batches topic, with no polling delay.',
  ),
  purge_completed_streams: bool(true, 'Delete streams (and their events) once their pipeline has succeeded.'),
  trim_events: bool(
    false,
    'The reference deletes stored events older than trim_events_age. Not implemented here (a warning ' +
      'says so when it is true): events are deleted with their stream when its pipeline completes.',
  ),
  trim_events_age: timex('$timestamp - 14d', 'Timex expression: events older than this are trimmed.'),
  trim_events_batch_size: int(100, 'Maximum number of events trimmed at a time.', 1, 1_000_000),
  log_level: oneOf(LOG_LEVELS, 'info', 'Lowest level of log lines written (JSON lines on stdout).'),
  logging_config: optStr('Python logging configuration file of the reference.', {
    ignored: 'logging_config (a Python logging file) is not used: set log_level instead',
  }),
  time_sync_endpoint: optStr('Time sync service of the reference, for replaying old events.', {
    ignored: 'time_sync_endpoint is not used: set clock.mode to event for replays',
  }),
  database: section('PostgreSQL, where stream state and events are kept.', {
    url: optStr('Connection URL, `postgres://user:password@host:5432/winchester`. Required by the workers.', {
      envAliases: ['DATABASE_URL'],
      secret: true,
    }),
  }),
  kafka: section('The Kafka cluster and topics.', {
    brokers: list(
      ['localhost:9092'],
      'Bootstrap brokers, `host:port`. A string or a list; in env, comma-separated.',
      {
        envAliases: ['KAFKA_BROKERS'],
      },
    ),
    client_id: str('winchester', 'Kafka client id (consumer group ids are derived from it).'),
    retries: int(
      10,
      "Retries of a failed request by a worker's Kafka client, backing off from 0.3 s, doubling, to at most 10 s (with jitter): the default rides out about a minute of broker outage (a restart, a leader moving). A consumer kafkajs gives up on in an outage all the same is replaced in the process, up to this many times in a row without joining its group (then the worker exits 1). Idempotent producers retry without limit; a send's caller waits as long as these retries plus 30 s. The command-line tools keep kafkajs' 5.",
      0,
      100,
    ),
    partitions: int(
      12,
      'Partition count used when winchester creates its internal topics (the most trigger workers that can share the work).',
      1,
      10_000,
    ),
    replication_factor: int(
      1,
      'Replication factor used when winchester creates its internal topics.',
      1,
      100,
    ),
    topics: section('Topic names.', {
      notifications: str('notifications', 'Input: OpenStack notifications (JSON or Avro).'),
      stream_events: str(
        'winchester.stream-events',
        'Internal: events keyed by trigger and distinguishing values, partitioned by that key.',
      ),
      batches: str('winchester.batches', 'Internal: fired and expired streams for the pipeline workers.'),
      dead_letter: str(
        'winchester.dead-letter',
        'Malformed notifications and failed batches, with the reason.',
      ),
    }),
    sasl: section('SASL authentication.', {
      mechanism: oneOf(SASL_MECHANISMS, 'none', 'SASL mechanism; `none` disables SASL.'),
      username: optStr('SASL user name.'),
      password: optStr('SASL password.', { secret: true }),
    }),
    ssl: section('TLS to the brokers. `ssl: true` is short for `ssl: {enabled: true}`.', {
      enabled: bool(false, 'Connect with TLS.'),
      ca_file: optStr('PEM file of the certificate authorities to trust (default: the system ones).'),
      cert_file: optStr('PEM client certificate, for mutual TLS.'),
      key_file: optStr('PEM private key of the client certificate.'),
      reject_unauthorized: bool(true, 'Verify the brokers’ certificates.'),
    }),
  }),
  schema_registry: section(
    'Confluent-compatible schema registry (docs/avro.md); when set, the internal topics carry Avro and ' +
      'Avro notifications are accepted beside JSON. Every worker registers the schemas at start and exits ' +
      '1 when the registry cannot be reached then.',
    {
      url: optStr(
        'Base URL of the Confluent REST API: `http://localhost:8081`, or Apicurio’s ' +
          '`http://host:8080/apis/ccompat/v7`. Unset: internal topics carry JSON.',
      ),
      username: optStr('Basic-auth user name (with `password`).'),
      password: optStr('Basic-auth password; better from the environment or a Secret than in the file.', {
        secret: true,
      }),
      timeout: seconds(10, 'Seconds one registry request may take before it counts as failed.'),
      retries: int(
        3,
        'Retries of a registry request that failed with a 5xx answer before the call fails (a failure at ' +
          'start exits; later, the batch is retried as in any outage).',
        0,
        20,
      ),
    },
  ),
  metrics: section('Prometheus metrics and health endpoints (`/metrics`, `/healthz`, `/readyz`).', {
    port: int(9464, 'HTTP port; 0 disables the endpoint.', 0, 65535),
    host: str('0.0.0.0', 'Address to listen on.'),
  }),
  duplicate_window: seconds(
    3600,
    'Seconds (of the clock the streams run on) that the message ids of a fired or expired stream are ' +
      'remembered: a notification arriving again within that time (a resend, or a redelivery after a worker ' +
      'crash) is ignored instead of opening a new stream. The reference drops duplicates for as long as it ' +
      'keeps events; 0 remembers them only while their stream is open.',
  ),
  trigger_worker: section('The trigger worker: the route stage and the streams stage.', {
    start_from: oneOf(
      ['earliest', 'latest'] as const,
      'earliest',
      'Where the route stage starts in the notifications topic when its consumer group has no committed ' +
        'offset yet: `earliest` (everything the topic retains) or `latest` (only what arrives from now on).',
    ),
    max_notification_bytes: int(
      1024 * 1024,
      'Notifications larger than this many bytes are sent to the dead-letter topic (reason `too_large`) ' +
        'without being distilled; dead-lettered values over 512 KiB are cut (header ' +
        '`winchester-truncated-from`).',
      1024,
      100 * 1024 * 1024,
    ),
    tick_interval: seconds(
      1,
      'How often the route stage sends a time tick to every stream-events partition, so quiet partitions ' +
        'still fire delayed triggers and expire streams. 0 disables ticks.',
    ),
    session_timeout: seconds(
      10,
      'Kafka consumer session timeout of both stages, in seconds: how long a group waits for a silent worker ' +
        '(killed, or its host gone) before its partitions move to another worker. Heartbeats continue ' +
        'during long batches, so this bounds failover time, not batch length.',
    ),
    checkpoint_records: int(
      1000,
      'The streams stage checkpoints a partition to Postgres after this many records (or checkpoint_interval).',
      1,
      1_000_000,
    ),
    checkpoint_interval: seconds(
      1,
      'The streams stage checkpoints a partition at least this often while it has unsaved work, in seconds.',
    ),
    partitions_concurrently: int(
      4,
      'Stream-events partitions the streams stage of one worker handles at the same time, so one ' +
        'partition waiting for its checkpoint or claim does not hold up the others. The records of one ' +
        'partition are always handled one after the other, in order.',
      1,
      64,
    ),
  }),
  clock: section('What "now" means for fire delays and expirations.', {
    mode: oneOf(
      CLOCK_MODES,
      'wall',
      '`wall`: the machine clock. `event`: the highest event timestamp seen minus `lateness` (for replaying history).',
    ),
    lateness: seconds(
      0,
      'With mode `event`: how late, in seconds, an event may arrive and still be counted as on time.',
    ),
  }),
  pipeline_worker: section('The pipeline worker: runs fired and expired streams through their pipelines.', {
    max_retries: int(
      3,
      'How many times a failed pipeline is retried (with jittered exponential backoff) before its stream ' +
        'moves to error / expire_error and the batch goes to the dead-letter topic. 0: no retry.',
      0,
      100,
    ),
    retry_backoff: seconds(
      1,
      'The wait before the first retry, in seconds; each further retry waits twice as long (a random point ' +
        'in the upper half of it), up to retry_backoff_max.',
    ),
    retry_backoff_max: seconds(60, 'The longest wait between two attempts of a pipeline, in seconds.'),
    concurrency: int(
      2,
      'Batches-topic partitions one worker processes at the same time. The batches of one partition always ' +
        'run one after the other, in order.',
      1,
      64,
    ),
    session_timeout: seconds(
      30,
      'Kafka consumer session timeout, in seconds: how long the group waits for a silent worker (crashed, ' +
        'or its host gone) before its partitions move to another. Heartbeats continue while a pipeline runs.',
    ),
  }),
  retention: section(
    'How long bookkeeping rows are kept in PostgreSQL (docs/schema.md, "Retention"). Workers delete what is ' +
      'older in small batches (trigger workers: published outbox rows; pipeline workers: completion marks); ' +
      '`winchester db prune` does the same on demand.',
    {
      completed_batches: secondsAtLeast(
        86400,
        7 * 86400,
        'Seconds a completion mark (`completed_batches`) is kept after its pipeline succeeded. A pipeline ' +
          'worker skips a batch whose mark it finds, so keep it at least as long as the batch can be read ' +
          'again: the retention of kafka.topics.batches (Kafka default 7 days) and of the pipeline group’s ' +
          'committed offsets (offsets.retention.minutes, default 7 days). At least one day.',
      ),
      published_outbox: secondsAtLeast(
        3600,
        86400,
        'Seconds a published outbox row is kept after publication. Only rows whose stream is completed or ' +
          'purged are deleted: a stream waiting for its pipeline, failed (error, expire_error) or in retry ' +
          'keeps its batch, so the claim check of a batch sent by reference and `winchester streams retry` ' +
          'still find it. At least one hour, and not more than completed_batches (a batch redelivered after ' +
          'its row went is then skipped by its completion mark).',
      ),
      interval: seconds(
        300,
        'How often each worker prunes, in seconds (the first run comes at a random point of the first ' +
          'interval, so workers started together do not prune together). 0: workers never prune (run ' +
          '`winchester db prune` instead).',
      ),
      batch_size: int(
        1000,
        'Rows deleted per statement: small batches keep each delete short and its locks few.',
        1,
        100_000,
      ),
    },
  ),
});

/** The validated settings of winchester.yaml, with defaults applied and environment overrides. */
export type Settings = Infer<typeof winchesterSchema>;

/** `WINCHESTER_` + the dotted path in upper case with `_` between parts: `WINCHESTER_KAFKA_TOPICS_BATCHES`. */
export function envName(path: readonly string[]): string {
  return `WINCHESTER_${path.join('_').toUpperCase()}`;
}

/** Every leaf with its path, depth-first in declaration order. */
export function leaves(
  spec: Section<Fields> = winchesterSchema,
  prefix: readonly string[] = [],
): [string[], Leaf<unknown>][] {
  const out: [string[], Leaf<unknown>][] = [];
  for (const [key, child] of Object.entries(spec.fields)) {
    const path = [...prefix, key];
    if (child.kind === 'leaf') out.push([path, child]);
    else out.push(...leaves(child, path));
  }
  return out;
}
