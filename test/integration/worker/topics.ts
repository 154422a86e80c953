/** Throw-away topics for the worker tests, made and deleted through the shared test helpers. */
import type { Admin, Kafka } from '../../../src/kafka/types.js';
import type { TestScope } from '../../helpers/integration.js';
import { testAdmin, testTopic } from '../../helpers/kafka.js';

/** Creates uniquely named topics (`prefix-…`, with the given partition counts); returns their names. */
export async function workerTopics<K extends string>(
  t: TestScope,
  kafka: Kafka,
  specs: Record<K, { prefix: string; partitions: number }>,
): Promise<{ admin: Admin; names: Record<K, string> }> {
  const admin = await testAdmin(t, kafka);
  const names = {} as Record<K, string>;
  for (const key of Object.keys(specs) as K[]) {
    names[key] = await testTopic(t, admin, specs[key].prefix, { numPartitions: specs[key].partitions });
  }
  return { admin, names };
}
