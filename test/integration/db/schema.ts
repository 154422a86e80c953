/** A per-test database with the winchester schema applied (for tests of code that uses the schema). */
import { readMigrations, upgrade } from '../../../src/db/migrate.js';
import { type TestDatabase, testDatabase } from '../../helpers/db.js';
import type { TestScope } from '../../helpers/integration.js';

/** A fresh database (dropped after the test) with every migration applied. */
export async function migratedDatabase(t: TestScope, prefix = 'it_schema'): Promise<TestDatabase> {
  const db = await testDatabase(t, prefix);
  await upgrade(db.pool, await readMigrations());
  return db;
}
