/**
 * PostgreSQL helpers for integration tests: every test gets a fresh database of its own, dropped when the
 * test ends, so tests never see each other's rows and can run in any order or in parallel.
 */
import { createDatabase, dropDatabase, withDatabaseName } from '../../src/db/databases.js';
import { createPool, type DatabasePool } from '../../src/db/pool.js';
import { databaseUrl, type TestScope, uniqueName } from './integration.js';

/** A throw-away database and a pool connected to it. */
export interface TestDatabase {
  name: string;
  url: string;
  pool: DatabasePool;
}

/**
 * Creates a uniquely named database (`prefix_…`) with a pool on it; both go away when the test ends.
 * Connection attempts are bounded so an absent server fails the test in seconds.
 */
export async function testDatabase(t: TestScope, prefix = 'test'): Promise<TestDatabase> {
  const admin = await createPool(databaseUrl(), {
    maximumPoolSize: 1,
    connectionTimeoutMs: 3000,
    connectionRetryLimit: 1,
  });
  const name = uniqueName(prefix, '_');
  try {
    await createDatabase(admin, name);
  } catch (error) {
    await admin.end();
    throw error;
  }
  const url = withDatabaseName(databaseUrl(), name);
  const pool = await createPool(url, {
    maximumPoolSize: 4,
    connectionTimeoutMs: 3000,
    connectionRetryLimit: 1,
  });
  t.after(async () => {
    await pool.end();
    await dropDatabase(admin, name);
    await admin.end();
  });
  return { name, url, pool };
}
