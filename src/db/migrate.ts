/**
 * Schema migrations: the numbered plain SQL files of `migrations/` (`0001_streams.sql`, …) applied in
 * order, each in its own transaction, recorded in `schema_migrations` with a SHA-256 of the file.
 *
 * - Idempotent: applied versions are skipped.
 * - Safe when several processes upgrade at once (workers starting together, a deploy job): a
 *   session advisory lock serializes them; the later ones find nothing pending.
 * - An applied file that changed since (checksum differs), or a version the database has but this
 *   code does not know, stops the upgrade: the schema is not what this code expects.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WinchesterError } from '../errors.js';
import { classifyDatabaseError } from './errors.js';
import { type DatabasePool, type DatabasePoolConnection, sql } from './pool.js';
import { splitSqlStatements } from './sql-split.js';

/** One migration file. */
export interface Migration {
  /** The number the file name starts with; migrations apply in ascending order. */
  readonly version: number;
  /** The rest of the file name, without `.sql` (e.g. `streams`). */
  readonly name: string;
  /** The file name, e.g. `0001_streams.sql`. */
  readonly file: string;
  readonly sql: string;
  /** Hex SHA-256 of the file's bytes. */
  readonly checksum: string;
}

/** A migration recorded in `schema_migrations`. */
export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
  /** ISO-8601 time it was applied. */
  readonly appliedAt: string;
}

/** Where one migration stands in a database. */
export type MigrationStatus =
  | { readonly state: 'applied'; readonly migration: Migration; readonly appliedAt: string }
  | { readonly state: 'pending'; readonly migration: Migration }
  | {
      readonly state: 'changed';
      readonly migration: Migration;
      readonly appliedAt: string;
      readonly appliedChecksum: string;
    }
  | { readonly state: 'unknown'; readonly applied: AppliedMigration };

/** The migrations cannot be read or applied as they are (not retriable: a person must look). */
export class MigrationError extends WinchesterError {}

const FILE_NAME = /^(\d{4,})_([a-z0-9_]+)\.sql$/;

/** The `migrations/` directory shipped with this package (next to `src/` and `dist/`). */
export function defaultMigrationsDir(): string {
  return fileURLToPath(new URL('../../migrations/', import.meta.url));
}

/** The SHA-256 of a migration's text, as recorded in `schema_migrations`. */
export function checksumOf(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Reads every `NNNN_name.sql` of `dir`, sorted by version. Other files are refused rather than
 * ignored, so a typo in a name cannot silently skip a migration.
 */
export async function readMigrations(dir: string = defaultMigrationsDir()): Promise<Migration[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw new MigrationError(`cannot read the migrations directory ${dir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const out: Migration[] = [];
  for (const file of names.sort()) {
    if (file.startsWith('.')) continue;
    const m = FILE_NAME.exec(file);
    if (m === null) {
      throw new MigrationError(
        `${join(dir, file)}: not a migration file name (expected NNNN_lower_case_name.sql)`,
      );
    }
    const version = Number(m[1]);
    const clash = out.find((x) => x.version === version);
    if (clash !== undefined) {
      throw new MigrationError(`${file} and ${clash.file} both have version ${version}`);
    }
    const text = await readFile(join(dir, file), 'utf8');
    try {
      if (splitSqlStatements(text).length === 0) throw new SyntaxError('no SQL statement');
    } catch (error) {
      throw new MigrationError(`${join(dir, file)}: ${(error as Error).message}`, { cause: error });
    }
    out.push({ version, name: m[2] as string, file, sql: text, checksum: checksumOf(text) });
  }
  return out.sort((a, b) => a.version - b.version);
}

// One constant key for every winchester deployment's migration lock (pg_advisory_lock takes a bigint).
const LOCK_KEY = 0x5769_6e63_6865_7374n; // "Winchest"

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);`;

/** A query made of literal SQL text (one statement of a migration file), without parameters. */
function rawSql(text: string) {
  // slonik accepts only template literals, which it recognises by their frozen `raw` array.
  const strings = Object.freeze(
    Object.assign([text], { raw: Object.freeze([text]) }),
  ) as unknown as TemplateStringsArray;
  return sql.unsafe(strings);
}

async function readApplied(db: DatabasePool | DatabasePoolConnection): Promise<AppliedMigration[]> {
  const exists = await db.oneFirst(sql.unsafe`SELECT to_regclass('schema_migrations') IS NOT NULL`);
  if (exists !== true) return [];
  const rows = await db.any(
    sql.unsafe`SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version`,
  );
  return rows.map((r) => ({
    version: Number(r.version),
    name: String(r.name),
    checksum: String(r.checksum),
    appliedAt: new Date(Number(r.applied_at)).toISOString(),
  }));
}

function statusOf(migrations: readonly Migration[], applied: readonly AppliedMigration[]): MigrationStatus[] {
  const byVersion = new Map(applied.map((a) => [a.version, a]));
  const out: MigrationStatus[] = migrations.map((migration) => {
    const a = byVersion.get(migration.version);
    if (a === undefined) return { state: 'pending', migration };
    if (a.checksum !== migration.checksum) {
      return { state: 'changed', migration, appliedAt: a.appliedAt, appliedChecksum: a.checksum };
    }
    return { state: 'applied', migration, appliedAt: a.appliedAt };
  });
  const known = new Set(migrations.map((m) => m.version));
  for (const a of applied) if (!known.has(a.version)) out.push({ state: 'unknown', applied: a });
  return out.sort(
    (x, y) =>
      ('migration' in x ? x.migration.version : x.applied.version) -
      ('migration' in y ? y.migration.version : y.applied.version),
  );
}

/** Where each migration stands in the database (read-only: creates nothing). */
export async function migrationStatus(
  pool: DatabasePool,
  migrations: readonly Migration[],
): Promise<MigrationStatus[]> {
  try {
    return statusOf(migrations, await readApplied(pool));
  } catch (error) {
    throw classifyDatabaseError(error, 'reading the schema version');
  }
}

/** Throws a {@link MigrationError} describing every changed or unknown migration, if any. */
function refuseDrift(status: readonly MigrationStatus[]): void {
  const problems: string[] = [];
  for (const s of status) {
    if (s.state === 'changed') {
      problems.push(
        `${s.migration.file} was applied on ${s.appliedAt} with checksum ${s.appliedChecksum.slice(0, 12)}… but the file now has ${s.migration.checksum.slice(0, 12)}…; applied migrations must never be edited (add a new one instead)`,
      );
    } else if (s.state === 'unknown') {
      problems.push(
        `the database has migration ${s.applied.version} (${s.applied.name}) that this version of winchester does not know; run a newer winchester`,
      );
    }
  }
  if (problems.length > 0) throw new MigrationError(problems.join('\n'));
}

/** Options of {@link upgrade}. */
export interface UpgradeOptions {
  /** Called just before each pending migration runs (e.g. to print its name). */
  onApply?: (migration: Migration) => void | Promise<void>;
}

/**
 * Applies the pending migrations in order, each in its own transaction together with its
 * `schema_migrations` row. Returns the migrations applied (empty when the schema was current).
 * @throws MigrationError for a changed or unknown applied migration (nothing is applied then) or a
 *   failing migration (those before it stay applied); DatabaseUnavailableError when PostgreSQL cannot be reached.
 */
export async function upgrade(
  pool: DatabasePool,
  migrations: readonly Migration[],
  options: UpgradeOptions = {},
): Promise<Migration[]> {
  try {
    return await pool.connect(async (connection) => {
      // A session lock, held across the per-migration transactions; released explicitly, and by the
      // server if this connection dies.
      await connection.query(sql.unsafe`SELECT pg_advisory_lock(${LOCK_KEY.toString()}::bigint)`);
      try {
        await connection.query(rawSql(CREATE_TABLE));
        const status = statusOf(migrations, await readApplied(connection));
        refuseDrift(status);
        const applied: Migration[] = [];
        for (const s of status) {
          if (s.state !== 'pending') continue;
          const m = s.migration;
          await options.onApply?.(m);
          await connection.transaction(async (tx) => {
            try {
              for (const statement of splitSqlStatements(m.sql)) await tx.query(rawSql(statement));
            } catch (error) {
              const retried = classifyDatabaseError(error, `applying ${m.file}`);
              if (retried !== error) throw retried;
              throw new MigrationError(`${m.file} failed: ${(error as Error).message}`, { cause: error });
            }
            await tx.query(
              sql.unsafe`INSERT INTO schema_migrations (version, name, checksum) VALUES (${m.version}, ${m.name}, ${m.checksum})`,
            );
          });
          applied.push(m);
        }
        return applied;
      } finally {
        await connection
          .query(sql.unsafe`SELECT pg_advisory_unlock(${LOCK_KEY.toString()}::bigint)`)
          .catch(() => undefined);
      }
    });
  } catch (error) {
    throw classifyDatabaseError(error, 'upgrading the database schema');
  }
}

/**
 * The SQL `upgrade` would run on an empty database, as one psql-ready script: every migration and its
 * `schema_migrations` row, all in one transaction. For DBAs who apply schema changes themselves.
 */
export function upgradeSql(migrations: readonly Migration[]): string {
  const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const parts = [
    '-- winchester database schema: every migration, for an empty database.',
    '-- Apply with: psql -v ON_ERROR_STOP=1 -f FILE',
    'BEGIN;',
    '',
    CREATE_TABLE,
  ];
  for (const m of migrations) {
    parts.push(
      '',
      `-- ${m.file}`,
      m.sql.trimEnd(),
      '',
      `INSERT INTO schema_migrations (version, name, checksum) VALUES (${m.version}, ${quote(m.name)}, ${quote(m.checksum)});`,
    );
  }
  parts.push('', 'COMMIT;', '');
  return parts.join('\n');
}
