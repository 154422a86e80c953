/**
 * Creating, dropping and probing whole databases: what `scripts/infra.sh` and the integration tests need
 * to give every test a database of its own.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DatabasePool } from 'slonik';
import { sql } from 'slonik';
import { hasErrorCode, WinchesterError } from '../errors.js';
import { createPool } from './pool.js';

/** The database could not be reached or did not answer in time; trying again later may succeed. */
export class DatabaseUnavailableError extends WinchesterError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, retriable: true });
  }
}

// Lower-case identifiers only, so names never need quoting anywhere (psql, URLs, logs).
const DATABASE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** @throws TypeError when `name` is not a plain lower-case identifier of at most 63 characters. */
export function assertDatabaseName(name: string): void {
  if (!DATABASE_NAME.test(name)) {
    throw new TypeError(`database name '${name}' must match ${DATABASE_NAME.source}`);
  }
}

/** Returns `databaseUrl` pointing at database `name` instead, keeping credentials, host and parameters. */
export function withDatabaseName(databaseUrl: string, name: string): string {
  assertDatabaseName(name);
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Removes the password from a connection URL so it can be logged. */
export function redactDatabaseUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return '<unparsable DATABASE_URL>';
  }
}

/** Creates database `name`, owned by the connected role. */
export async function createDatabase(pool: DatabasePool, name: string): Promise<void> {
  assertDatabaseName(name);
  await pool.query(sql.unsafe`CREATE DATABASE ${sql.identifier([name])}`);
}

/**
 * Drops database `name` if it exists, disconnecting any sessions still attached to it.
 *
 * `WITH (FORCE)` refuses (42501) when a session the connected role may not signal is attached, which
 * happens to a role without superuser or pg_signal_backend when an autovacuum worker is busy in the
 * database. A plain DROP stops autovacuum workers itself (and waits a few seconds for other sessions),
 * so that is the fallback, tried a few times while the worker winds down.
 */
export async function dropDatabase(pool: DatabasePool, name: string): Promise<void> {
  assertDatabaseName(name);
  const id = sql.identifier([name]);
  try {
    await pool.query(sql.unsafe`DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
    return;
  } catch (error) {
    if (!hasErrorCode(error, '42501')) throw error;
  }
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query(sql.unsafe`DROP DATABASE IF EXISTS ${id}`);
      return;
    } catch (error) {
      // 55006: still in use by other sessions (the plain DROP waits about 5 s for them before this).
      if (attempt >= 3 || !hasErrorCode(error, '55006')) throw error;
    }
  }
}

/** Options for {@link waitForDatabase}. */
export interface WaitForDatabaseOptions {
  /** Give up after this many milliseconds. Default 60000. */
  timeoutMs?: number;
  /** Pause between attempts in milliseconds. Default 250. */
  intervalMs?: number;
  /** Checked before every attempt; returning a reason stops the wait at once with that reason. */
  abortReason?: () => string | undefined;
}

/**
 * Waits until `databaseUrl` accepts a connection and answers a query.
 * @returns the server's version string, e.g. `15.14`.
 * @throws DatabaseUnavailableError carrying the last error when the time runs out or `abortReason` fires.
 */
export async function waitForDatabase(
  databaseUrl: string,
  options: WaitForDatabaseOptions = {},
): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 60000;
  const intervalMs = options.intervalMs ?? 250;
  const deadline = Date.now() + timeoutMs;
  const where = redactDatabaseUrl(databaseUrl);
  let lastError: unknown;
  for (;;) {
    const reason = options.abortReason?.();
    if (reason !== undefined) {
      throw new DatabaseUnavailableError(`PostgreSQL at ${where} will not become ready: ${reason}`, {
        cause: lastError,
      });
    }
    let pool: DatabasePool | undefined;
    try {
      pool = await createPool(databaseUrl, {
        maximumPoolSize: 1,
        connectionRetryLimit: 0,
        connectionTimeoutMs: Math.max(500, Math.min(3000, deadline - Date.now())),
      });
      const version = await pool.oneFirst(sql.unsafe`SHOW server_version`);
      return String(version);
    } catch (error) {
      lastError = error;
    } finally {
      await pool?.end().catch(() => undefined);
    }
    if (Date.now() + intervalMs > deadline) {
      const why = lastError instanceof Error ? lastError.message : String(lastError);
      throw new DatabaseUnavailableError(
        `PostgreSQL at ${where} not ready after ${Math.round(timeoutMs / 1000)}s: ${why}`,
        { cause: lastError },
      );
    }
    await sleep(intervalMs);
  }
}
