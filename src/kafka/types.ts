/**
 * kafkajs types the rest of the project may name. Re-exported here so that `src/kafka/` stays the only
 * folder importing `kafkajs` (type-only re-exports cost nothing at run time).
 */
export type {
  Admin,
  Consumer,
  ConsumerConfig,
  EachBatchPayload,
  EachMessagePayload,
  IHeaders,
  Kafka,
  KafkaMessage,
  Message,
  Producer,
  ProducerConfig,
  RecordMetadata,
  Transaction,
} from 'kafkajs';
