/**
 * Throw-away topics for the worker tests, deleted by one after-hook that then disconnects the admin.
 * (With separate hooks, node:test runs them in registration order: the admin would be disconnected
 * first and deleteTopics would reconnect it, leaving a socket that keeps the test process alive.)
 */
import { createTopics } from '../../../src/kafka/admin.js';
import type { Admin, Kafka } from '../../../src/kafka/types.js';
import { type TestScope, uniqueName } from '../../helpers/integration.js';

/** Creates uniquely named topics (`prefix-…`, with the given partition counts); returns their names. */
export async function workerTopics<K extends string>(
  t: TestScope,
  kafka: Kafka,
  specs: Record<K, { prefix: string; partitions: number }>,
): Promise<{ admin: Admin; names: Record<K, string> }> {
  const admin = kafka.admin();
  await admin.connect();
  const names = {} as Record<K, string>;
  for (const key of Object.keys(specs) as K[]) names[key] = uniqueName(specs[key].prefix);
  t.after(async () => {
    await admin.deleteTopics({ topics: Object.values(names), timeout: 10000 }).catch(() => undefined);
    await admin.disconnect();
  });
  await createTopics(
    admin,
    (Object.keys(specs) as K[]).map((key) => ({ topic: names[key], numPartitions: specs[key].partitions })),
  );
  return { admin, names };
}
