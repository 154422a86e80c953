/**
 * The partition Kafka's default partitioner gives a keyed record, computed without the client library:
 * murmur2 of the key's UTF-8 bytes (the Java client's variant, which kafkajs' DefaultPartitioner copies),
 * sign bit masked off, modulo the partition count.
 *
 * Why compute it ourselves: kafkajs hashes every keyed message with 64-bit `Long` objects, several
 * allocations per 4 key bytes, on the producer's hot path. The route stage instead passes an explicit
 * partition, computed here with 32-bit integer arithmetic and remembered per key, and it must be exactly
 * the partition the default partitioner would choose: records written without an explicit partition (the
 * events pipelines emit) must land on the same partition as the router's for the same stream.
 */
import { Partitioners } from 'kafkajs';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** The body of murmur2 (Kafka's variant, seed 0x9747b28c) once the 4-byte words are mixed in. */
function finish(h0: number, tail: number, tailBytes: number): number {
  let h = h0;
  // The Java client mixes the 1-3 tail bytes (little-endian, as one word) and multiplies once.
  if (tailBytes > 0) h = Math.imul(h ^ tail, M);
  h ^= h >>> 13;
  h = Math.imul(h, M);
  return h ^ (h >>> 15);
}

function mix(h: number, word: number): number {
  let k = Math.imul(word, M);
  k ^= k >>> 24;
  return Math.imul(h, M) ^ Math.imul(k, M);
}

/** murmur2 of the bytes of an ASCII string (its char codes). */
function murmur2Ascii(s: string): number {
  const length = s.length;
  const whole = length & ~3;
  let h = SEED ^ length;
  for (let i = 0; i < whole; i += 4) {
    h = mix(
      h,
      s.charCodeAt(i) |
        (s.charCodeAt(i + 1) << 8) |
        (s.charCodeAt(i + 2) << 16) |
        (s.charCodeAt(i + 3) << 24),
    );
  }
  let tail = 0;
  for (let i = length - 1; i >= whole; i--) tail = (tail << 8) | s.charCodeAt(i);
  return finish(h, tail, length - whole);
}

/** murmur2 of `bytes`. */
function murmur2Bytes(bytes: ArrayLike<number>): number {
  const length = bytes.length;
  const whole = length & ~3;
  let h = SEED ^ length;
  for (let i = 0; i < whole; i += 4) {
    h = mix(
      h,
      (bytes[i] as number) |
        ((bytes[i + 1] as number) << 8) |
        ((bytes[i + 2] as number) << 16) |
        ((bytes[i + 3] as number) << 24),
    );
  }
  let tail = 0;
  for (let i = length - 1; i >= whole; i--) tail = (tail << 8) | (bytes[i] as number);
  return finish(h, tail, length - whole);
}

/** Whether every UTF-16 unit of `s` is ASCII, so its UTF-8 bytes are its char codes. */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * The partition (of `partitions`, at least 1) Kafka's default partitioner gives a record keyed `key`
 * (a string is hashed as its UTF-8 bytes, unpaired surrogates as U+FFFD, as `Buffer.from` encodes them).
 */
export function keyPartition(key: string | ArrayLike<number>, partitions: number): number {
  const h =
    typeof key !== 'string'
      ? murmur2Bytes(key)
      : isAscii(key)
        ? murmur2Ascii(key)
        : murmur2Bytes(Buffer.from(key, 'utf8'));
  return (h & 0x7fffffff) % partitions;
}

/** Default bound of {@link PartitionCache}. */
export const DEFAULT_PARTITION_CACHE_KEYS = 65_536;

/**
 * {@link keyPartition} for one topic's partition count, remembering up to `maxKeys` keys: a stream's
 * events come again and again with the same key, and a Map hit is cheaper than hashing the key. When
 * full it starts over (the working set of live streams refills it), so memory stays bounded.
 */
export class PartitionCache {
  private readonly cache = new Map<string, number>();

  constructor(
    /** Partitions of the topic (at least 1). */
    readonly partitions: number,
    private readonly maxKeys = DEFAULT_PARTITION_CACHE_KEYS,
  ) {
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new RangeError(`a topic has at least 1 partition, not ${partitions}`);
    }
  }

  /** The partition of a record keyed `key`. */
  of(key: string): number {
    const known = this.cache.get(key);
    if (known !== undefined) return known;
    const p = keyPartition(key, this.partitions);
    if (this.cache.size >= this.maxKeys) this.cache.clear();
    this.cache.set(key, p);
    return p;
  }

  /** Keys remembered now (at most the bound). */
  get size(): number {
    return this.cache.size;
  }
}

/**
 * The partition kafkajs' own DefaultPartitioner chooses for a record keyed `key` when all `partitions`
 * have a leader: the reference {@link keyPartition} is checked against.
 */
export function kafkajsKeyPartition(key: string | Buffer, partitions: number): number {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));
  return partitioner({ topic: 't', partitionMetadata, message: { key, value: null } });
}
