/**
 * The CPU part of producing, without a broker: kafkajs' own encoding of a Produce request (record batches
 * with varint records and their CRC32C) for messages already grouped by topic and partition, exactly as
 * its producer builds it for an idempotent send. For benchmarks (bench/route.ts) that want to see what the
 * client library costs per message beside our own routing work; src/kafka is the only place that may
 * reach into kafkajs.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** One message as kafkajs' record encoder takes it. */
export interface EncodableMessage {
  readonly key: string | Buffer | null;
  readonly value: string | Buffer | null;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Messages of one topic by partition. */
export interface EncodableTopic {
  readonly topic: string;
  readonly partitions: readonly {
    readonly partition: number;
    readonly messages: readonly EncodableMessage[];
  }[];
}

interface ProduceRequest {
  encode(): Promise<{ buffer: Buffer }>;
}

type ProduceRequestFactory = (args: {
  acks: number;
  timeout: number;
  producerId: unknown;
  producerEpoch: number;
  topicData: unknown[];
}) => ProduceRequest;

interface LongModule {
  fromInt(n: number): unknown;
}

let factory: ProduceRequestFactory | undefined;
let long: LongModule | undefined;

/**
 * The bytes of a Produce request (version 3 framing, the record batch format every later version uses)
 * carrying `topics`, as an idempotent producer (producer id 1, acks all) would send them.
 */
export async function encodeProduceRequest(topics: readonly EncodableTopic[]): Promise<Buffer> {
  factory ??= require('kafkajs/src/protocol/requests/produce/v3/request.js') as ProduceRequestFactory;
  long ??= require('kafkajs/src/utils/long.js') as LongModule;
  const request = factory({
    acks: -1,
    timeout: 30_000,
    producerId: long.fromInt(1),
    producerEpoch: 0,
    topicData: topics.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map((p) => ({
        partition: p.partition,
        firstSequence: 0,
        messages: p.messages,
      })),
    })),
  });
  return (await request.encode()).buffer;
}
