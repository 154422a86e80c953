/**
 * The one place that constructs database pools. Everything else in the project receives a pool (or a
 * connection) from here and never imports `pg` or configures slonik itself.
 */
import { type ClientConfigurationInput, createPool as createSlonikPool, type DatabasePool } from 'slonik';

/** Options for {@link createPool}; unset fields keep slonik's documented defaults. */
export interface PoolOptions {
  /** Most connections the pool opens. Default 10. */
  maximumPoolSize?: number;
  /** Give up connecting after this many milliseconds. Default 5000. */
  connectionTimeoutMs?: number;
  /** How many times to retry opening a connection before failing the query. Default 3. */
  connectionRetryLimit?: number;
  /** Server-side statement timeout in milliseconds. Default 60000. */
  statementTimeoutMs?: number;
  /** Close connections idle for this many milliseconds. Default 5000. */
  idleTimeoutMs?: number;
  /** Any further slonik settings (type parsers, interceptors…); these win over the fields above. */
  slonik?: ClientConfigurationInput;
}

/**
 * Creates a slonik pool for `databaseUrl` (`postgres://user:password@host:port/database`).
 * No connection is opened until the first query.
 */
export async function createPool(databaseUrl: string, options: PoolOptions = {}): Promise<DatabasePool> {
  const config: { -readonly [K in keyof ClientConfigurationInput]: ClientConfigurationInput[K] } = {};
  if (options.maximumPoolSize !== undefined) config.maximumPoolSize = options.maximumPoolSize;
  if (options.connectionTimeoutMs !== undefined) config.connectionTimeout = options.connectionTimeoutMs;
  if (options.connectionRetryLimit !== undefined) config.connectionRetryLimit = options.connectionRetryLimit;
  if (options.statementTimeoutMs !== undefined) config.statementTimeout = options.statementTimeoutMs;
  if (options.idleTimeoutMs !== undefined) config.idleTimeout = options.idleTimeoutMs;
  return createSlonikPool(databaseUrl, { ...config, ...options.slonik });
}

export type { DatabasePool, DatabasePoolConnection, DatabaseTransactionConnection } from 'slonik';
export { sql } from 'slonik';
