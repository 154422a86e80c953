import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { kafkajsKeyPartition, keyPartition, PartitionCache } from '../../../src/kafka/partitioner.js';
import { streamRecordKey } from '../../../src/kafka/records.js';

const partitionCounts = fc.integer({ min: 1, max: 1000 });

describe('keyPartition', () => {
  test('agrees with kafkajs DefaultPartitioner on any string key (any Unicode, lone surrogates)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'grapheme' }),
          fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
        ),
        partitionCounts,
        (key, n) => {
          assert.equal(keyPartition(key, n), kafkajsKeyPartition(key, n));
        },
      ),
      { numRuns: 3000 },
    );
  });

  test('agrees with kafkajs on any byte key, every tail length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), partitionCounts, (bytes, n) => {
        const key = Buffer.from(bytes);
        assert.equal(keyPartition(key, n), kafkajsKeyPartition(key, n));
      }),
      { numRuns: 2000 },
    );
  });

  test('agrees with kafkajs on stream-events record keys', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), partitionCounts, (trigger, value, n) => {
        const key = streamRecordKey(trigger, JSON.stringify([['instance_id', 't', value]]));
        assert.equal(keyPartition(key, n), kafkajsKeyPartition(key, n));
      }),
    );
  });

  test("the Java client's murmur2 test vectors (Kafka's UtilsTest), through the sign mask", () => {
    const vectors: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    // With 2^31 - 1 partitions the partition is the masked hash itself (no masked hash reaches 2^31 - 1 here).
    for (const [key, hash] of vectors) assert.equal(keyPartition(key, 0x7fffffff), hash & 0x7fffffff, key);
  });
});

describe('PartitionCache', () => {
  test('gives keyPartition for every key, before and after its bound is reached', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 40 }), partitionCounts, (keys, n) => {
        const cache = new PartitionCache(n, 8);
        for (const k of [...keys, ...keys]) {
          assert.equal(cache.of(k), keyPartition(k, n));
          assert.ok(cache.size <= 8);
        }
      }),
    );
  });

  test('refuses a partition count below 1 or not an integer', () => {
    assert.throws(() => new PartitionCache(0), /at least 1 partition, not 0/);
    assert.throws(() => new PartitionCache(1.5), /at least 1 partition, not 1.5/);
  });
});
