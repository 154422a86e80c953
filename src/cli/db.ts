import { loadConfig, type WinchesterConfig } from '../config/load.js';
import { DatabaseUnavailableError, redactDatabaseUrl } from '../db/databases.js';
import { classifyDatabaseError, describeDatabaseError } from '../db/errors.js';
import {
  defaultMigrationsDir,
  type MigrationStatus,
  migrationStatus,
  readMigrations,
  upgrade,
  upgradeSql,
} from '../db/migrate.js';
import { createPool, type DatabasePool } from '../db/pool.js';
import { countPrunable, type PruneCounts, pruneAll, retentionPolicyOf } from '../db/retention.js';
import { ConfigError, UsageError, WinchesterError } from '../errors.js';
import { type CliIo, type Command, parseCommandArgs, write } from './io.js';

const usage = `Usage: winchester db upgrade [-c FILE]
       winchester db upgrade --sql
       winchester db status [-c FILE]
       winchester db prune [-c FILE] [--dry-run]

Manages the PostgreSQL schema winchester keeps its streams, events, checkpoints and outbox in.

  upgrade        apply the pending migrations, in order, each in its own transaction. Safe to run
                 again (nothing to do) and from several processes at once (one applies, the others
                 wait and find nothing pending). Refuses to run when a migration already applied
                 has been edited since, or when the database is newer than this winchester.
  upgrade --sql  print the SQL of every migration as one script for an empty database, without
                 connecting (for applying it with psql yourself).
  status         list each migration as applied, pending, changed (edited after being applied) or
                 unknown (in the database, not in this winchester); exits 1 if any is changed or unknown.
  prune          delete what the retention settings let go, in batches of retention.batch_size: completion
                 marks older than retention.completed_batches, and published outbox rows older than
                 retention.published_outbox whose stream is completed or purged (rows of streams still
                 waiting, failed or in retry are kept). Workers do the same every retention.interval;
                 this is for doing it now, or when retention.interval is 0. See docs/schema.md.
  prune --dry-run  count those rows without deleting anything.

The database is database.url of the configuration file; the DATABASE_URL (or
WINCHESTER_DATABASE_URL) environment variable overrides it. An unreachable database exits 1.

Options:
  -c, --config FILE  the configuration file (default: $WINCHESTER_CONFIG, else ./winchester.yaml)
      --sql          (upgrade) print the SQL instead of applying it
      --dry-run      (prune) count the rows that would be deleted, delete nothing
  -h, --help         show this help
`;

interface Options {
  action: 'upgrade' | 'status' | 'prune';
  config: string | undefined;
  sql: boolean;
  dryRun: boolean;
}

function parse(args: string[]): Options {
  const { values, positionals } = parseCommandArgs('db', args, {
    config: { type: 'string', short: 'c' },
    sql: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
  });
  const [action, extra] = positionals;
  if (action === undefined) throw new UsageError('db: missing action (upgrade, status or prune)');
  if (action !== 'upgrade' && action !== 'status' && action !== 'prune') {
    throw new UsageError(`db: unknown action '${action}' (upgrade, status or prune)`);
  }
  if (extra !== undefined) throw new UsageError(`db: unexpected argument '${extra}'`);
  if (values.sql === true && action !== 'upgrade') throw new UsageError('db: --sql only goes with upgrade');
  if (values.sql === true && values.config !== undefined) {
    throw new UsageError('db: --sql prints the SQL without a database; -c is not used with it');
  }
  const dryRun = values['dry-run'] ?? false;
  if (dryRun && action !== 'prune') throw new UsageError('db: --dry-run only goes with prune');
  return { action, config: values.config, sql: values.sql ?? false, dryRun };
}

/** The configuration and its database.url (with the environment overrides applied). */
async function configAndUrlOf(path: string, io: CliIo): Promise<{ config: WinchesterConfig; url: string }> {
  const config = await loadConfig(path, { env: io.env, cwd: io.cwd });
  const url = config.settings.database.url;
  if (url === null || url === undefined || url === '') {
    throw new ConfigError([
      {
        file: path,
        message: 'database.url is not set: set it there, or set DATABASE_URL',
      },
    ]);
  }
  return { config, url };
}

/** `7 days`, `1 day`, `36 hours`, `90 minutes`, `45 s`: a retention as an operator reads it. */
export function describeDuration(seconds: number): string {
  const unit = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;
  if (seconds >= 86400 && seconds % 86400 === 0) return unit(seconds / 86400, 'day');
  if (seconds >= 3600 && seconds % 3600 === 0) return unit(seconds / 3600, 'hour');
  if (seconds >= 60 && seconds % 60 === 0) return unit(seconds / 60, 'minute');
  return `${seconds} s`;
}

function pruneReport(counts: PruneCounts, config: WinchesterConfig, dryRun: boolean): string {
  const r = config.settings.retention;
  const verb = dryRun ? 'would delete' : 'deleted';
  return (
    `completed_batches  ${verb} ${counts.completed_batches}  (completion marks older than ${describeDuration(r.completed_batches)})\n` +
    `outbox             ${verb} ${counts.outbox}  (published rows of completed or purged streams older than ${describeDuration(r.published_outbox)})\n`
  );
}

/**
 * Runs `fn` with a one-connection pool on `url`, closed afterwards; an unreachable server becomes a
 * one-line DatabaseUnavailableError naming the URL without its password.
 */
export async function withPool<T>(url: string, fn: (pool: DatabasePool) => Promise<T>): Promise<T> {
  let pool: DatabasePool | undefined;
  try {
    // slonik opens a first connection while creating the pool, so this too can find the server down.
    pool = await createPool(url, { maximumPoolSize: 1, connectionTimeoutMs: 5000, connectionRetryLimit: 1 });
    return await fn(pool);
  } catch (caught) {
    const error = classifyDatabaseError(caught, 'connecting');
    // Say where, without the password: the usual cause is a wrong URL or a server that is down.
    if (error instanceof DatabaseUnavailableError) {
      throw new DatabaseUnavailableError(
        `cannot use PostgreSQL at ${redactDatabaseUrl(url)}: ${describeDatabaseError(error.cause ?? error)}`,
        { cause: error },
      );
    }
    if (!(error instanceof WinchesterError)) {
      throw new WinchesterError(`PostgreSQL at ${redactDatabaseUrl(url)}: ${describeDatabaseError(error)}`, {
        cause: error,
      });
    }
    throw error;
  } finally {
    await pool?.end().catch(() => undefined);
  }
}

function statusLine(s: MigrationStatus): string {
  switch (s.state) {
    case 'applied':
      return `applied  ${s.migration.file}  ${s.appliedAt}`;
    case 'pending':
      return `pending  ${s.migration.file}`;
    case 'changed':
      return `changed  ${s.migration.file}  applied ${s.appliedAt}, edited since (checksum ${s.appliedChecksum.slice(0, 12)}… → ${s.migration.checksum.slice(0, 12)}…)`;
    case 'unknown':
      return `unknown  ${String(s.applied.version).padStart(4, '0')}_${s.applied.name}.sql  applied ${s.applied.appliedAt}, not in this winchester`;
  }
}

export const dbCommand: Command = {
  name: 'db',
  summary: 'create or upgrade the PostgreSQL schema, prune old rows (upgrade, upgrade --sql, status, prune)',
  usage,
  async run(args: string[], io: CliIo): Promise<number> {
    const opts = parse(args);
    const migrations = await readMigrations(defaultMigrationsDir());
    if (opts.sql) {
      await write(io.stdout, upgradeSql(migrations));
      return 0;
    }
    const { config, url } = await configAndUrlOf(
      opts.config ?? io.env.WINCHESTER_CONFIG ?? 'winchester.yaml',
      io,
    );
    if (opts.action === 'prune') {
      const policy = retentionPolicyOf(config.settings.retention);
      const counts = await withPool(url, (pool) =>
        opts.dryRun ? countPrunable(pool, policy) : pruneAll(pool, policy),
      );
      await write(io.stdout, pruneReport(counts, config, opts.dryRun));
      return 0;
    }
    if (opts.action === 'upgrade') {
      const applied = await withPool(url, (pool) =>
        upgrade(pool, migrations, { onApply: (m) => write(io.stdout, `applying ${m.file}\n`) }),
      );
      const latest = migrations[migrations.length - 1]?.version ?? 0;
      await write(
        io.stdout,
        applied.length === 0
          ? `database schema is up to date (version ${latest})\n`
          : `database schema upgraded to version ${latest} (${applied.length} migration${applied.length === 1 ? '' : 's'} applied)\n`,
      );
      return 0;
    }
    const status = await withPool(url, (pool) => migrationStatus(pool, migrations));
    await write(io.stdout, status.map((s) => `${statusLine(s)}\n`).join(''));
    const drift = status.filter((s) => s.state === 'changed' || s.state === 'unknown').length;
    if (drift > 0) {
      await write(
        io.stderr,
        `winchester: the database schema does not match this winchester (${drift} changed or unknown migration${drift === 1 ? '' : 's'})\n`,
      );
      return 1;
    }
    return 0;
  },
};
