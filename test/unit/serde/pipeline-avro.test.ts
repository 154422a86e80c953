import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CompletionResult } from '../../../src/db/pipeline-store.js';
import type { BatchRecord } from '../../../src/kafka/records.js';
import type { Consumer } from '../../../src/kafka/types.js';
import type { Event } from '../../../src/model/event.js';
import type { PipelineDefinition } from '../../../src/pipeline/definitions.js';
import type { AvroCodec } from '../../../src/serde/avro-codec.js';
import { frame } from '../../../src/serde/codec.js';
import type { TriggerDefinition } from '../../../src/triggers/types.js';
import {
  type PipelineBatchPayload,
  type PipelineStorePort,
  PipelineWorker,
} from '../../../src/worker/pipeline-worker.js';
import type { OutboundMessage } from '../../../src/worker/router.js';
import { startAvroCodec } from '../../helpers/avro-registry.js';
import type { FakeRegistry } from './fake-registry.js';

const T0 = Date.UTC(2026, 0, 1) * 1000;
const ev = (id: string, type: string): Event => ({
  message_id: id,
  event_type: type,
  timestamp: T0,
  traits: {},
});
const batch: BatchRecord = {
  batchId: 's1:fire',
  streamId: 's1',
  trigger: 't',
  kind: 'fire',
  pipeline: 'p',
  distinguishing: {},
  first: T0,
  last: T0,
  events: [ev('m1', 'widget.start')],
};

/** Every widget.verdict joins one stream. */
const verdicts: TriggerDefinition = {
  name: 'verdicts',
  debugLevel: 0,
  firePipeline: null,
  expirePipeline: null,
  fireDelay: 0,
  distinguishedBy: [],
  fireCriteria: [],
  match: (e) =>
    e.event_type === 'widget.verdict'
      ? { matched: true, distinguishing: {}, key: '[]' }
      : { matched: false, reason: 'no_criterion_matched' },
  expiration: () => T0,
};

function worker(codec: AvroCodec, sent: OutboundMessage[]): PipelineWorker {
  const completed = new Set<string>();
  const store: PipelineStorePort = {
    isCompleted: async (id) => completed.has(id),
    streamState: async () => ({ state: 'firing', version: 1 }),
    moveStream: async (_id, _from, _to, expected) => expected + 1,
    completeBatch: async (c): Promise<CompletionResult> => {
      completed.add(c.batchId);
      return { recorded: true, stream: 'purged' };
    },
    outboxPayload: async () => null,
  };
  const pipelines = new Map<string, PipelineDefinition>([
    ['p', { name: 'p', handlers: [{ name: 'h', handler: { kind: 'builtin', name: 'logger' }, params: {} }] }],
  ]);
  return new PipelineWorker({
    consumer: {} as Consumer,
    send: async (messages) => void sent.push(...messages),
    store,
    batchesTopic: 'b',
    streamEventsTopic: 'se',
    deadLetterTopic: 'dl',
    pipelines,
    triggers: [verdicts],
    createHandler: () => ({
      handleEvents: (events) => [...events, ev('v1', 'widget.verdict')],
      commit: () => {},
      rollback: () => {},
    }),
    purgeCompletedStreams: true,
    maxRetries: 0,
    backoff: { baseMs: 1, maxMs: 1 },
    log: () => {},
    random: () => 0.5,
    sleep: async () => {},
    codec,
  });
}

function payload(values: Buffer[]): PipelineBatchPayload {
  return {
    batch: {
      topic: 'b',
      partition: 0,
      messages: values.map((value, i) => ({ offset: String(i), key: Buffer.from('s1:fire'), value })),
    },
    resolveOffset: () => {},
    heartbeat: async () => {},
    isRunning: () => true,
    isStale: () => false,
    commitOffsetsIfNecessary: async () => {},
  } as unknown as PipelineBatchPayload;
}

describe('PipelineWorker with the Avro record codec', () => {
  let registry: FakeRegistry;
  let codec: AvroCodec;
  before(async () => {
    ({ registry, codec } = await startAvroCodec());
  });
  after(() => registry.close());

  test('runs an Avro batch, writes new events as Avro, dead-letters an unknown schema id', async () => {
    const sent: OutboundMessage[] = [];
    const w = worker(codec, sent);
    await w.handleBatch(payload([codec.encodeBatch(batch), frame(5150, Buffer.from([0]))]));
    const records = sent.filter((m) => m.topic === 'se');
    assert.equal(records.length, 1);
    const rec = codec.decodeStreamRecord(records[0]?.value as Buffer);
    assert.ok(rec.type === 'event' && rec.event.message_id === 'v1');
    const dead = sent.filter((m) => m.topic === 'dl');
    assert.equal(dead.length, 1);
    assert.match(JSON.stringify(dead[0]?.headers ?? {}), /unknown_schema/);
  });
});
