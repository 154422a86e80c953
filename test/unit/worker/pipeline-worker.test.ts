import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DatabaseUnavailableError } from '../../../src/db/databases.js';
import type { CompletionResult, StoredStreamState } from '../../../src/db/pipeline-store.js';
import type { StreamState } from '../../../src/engine/effects.js';
import {
  type BatchRecord,
  decodeStreamRecord,
  encodeBatch,
  encodeBatchReference,
} from '../../../src/kafka/records.js';
import type { Consumer } from '../../../src/kafka/types.js';
import type { Event } from '../../../src/model/event.js';
import type { PipelineDefinition } from '../../../src/pipeline/definitions.js';
import type { Handler, HandlerEnv } from '../../../src/pipeline/handler.js';
import type { TriggerDefinition } from '../../../src/triggers/types.js';
import {
  type PipelineBatchPayload,
  type PipelineMetricsPort,
  type PipelineStorePort,
  PipelineWorker,
} from '../../../src/worker/pipeline-worker.js';
import type { OutboundMessage } from '../../../src/worker/router.js';

const T0 = Date.UTC(2026, 0, 1) * 1000;

function ev(id: string, type = 'widget.start'): Event {
  return {
    message_id: id,
    event_type: type,
    timestamp: T0,
    traits: { instance_id: { type: 'text', value: 'i-1' } },
  };
}

function batch(over: Partial<BatchRecord> = {}): BatchRecord {
  return {
    batchId: 's1:fire',
    streamId: 's1',
    trigger: 'widgets',
    kind: 'fire',
    pipeline: 'p',
    distinguishing: { instance_id: { type: 'text', value: 'i-1' } },
    first: T0,
    last: T0,
    events: [ev('m1'), ev('m2', 'widget.end')],
    ...over,
  };
}

/** One trigger that every `widget.verdict` joins, keyed by its instance id. */
const verdicts: TriggerDefinition = {
  name: 'verdicts',
  debugLevel: 0,
  firePipeline: null,
  expirePipeline: null,
  fireDelay: 0,
  distinguishedBy: ['instance_id'],
  fireCriteria: [],
  match: (e) =>
    e.event_type === 'widget.verdict'
      ? {
          matched: true,
          distinguishing: { instance_id: { type: 'text', value: 'v' } },
          key: '[["instance_id","t","v"]]',
        }
      : { matched: false, reason: 'no_criterion_matched' },
  expiration: () => T0,
};

/** What the handler does on each attempt (1-based). */
type Behaviour = (attempt: number, events: Event[], env: HandlerEnv) => Event[];

interface Rig {
  worker: PipelineWorker;
  journal: string[];
  sent: OutboundMessage[];
  states: Map<string, StoredStreamState>;
  completed: Set<string>;
  metrics: string[];
  sleeps: number[];
  running: { value: boolean };
}

function rig(
  behaviour: Behaviour,
  o: { maxRetries?: number; state?: StreamState; outages?: number; commitThrows?: boolean } = {},
): Rig {
  const journal: string[] = [];
  const sent: OutboundMessage[] = [];
  const states = new Map<string, StoredStreamState>([['s1', { state: o.state ?? 'firing', version: 3 }]]);
  const completed = new Set<string>();
  const metrics: string[] = [];
  const sleeps: number[] = [];
  const running = { value: true };
  let outages = o.outages ?? 0;
  const store: PipelineStorePort = {
    async isCompleted(id) {
      if (outages > 0) {
        outages--;
        throw new DatabaseUnavailableError('connection refused');
      }
      return completed.has(id);
    },
    async streamState(id) {
      return states.get(id) ?? null;
    },
    async moveStream(id, from, to, expected) {
      journal.push(`move ${from}→${to}`);
      const s = states.get(id);
      if (s === undefined || s.state !== from || s.version !== expected) return null;
      states.set(id, { state: to, version: expected + 1 });
      return expected + 1;
    },
    async completeBatch(c): Promise<CompletionResult> {
      journal.push('complete');
      if (completed.has(c.batchId)) return { recorded: false, stream: 'unchanged' };
      completed.add(c.batchId);
      states.delete(c.streamId);
      return { recorded: true, stream: 'purged' };
    },
    async outboxPayload() {
      return null;
    },
  };
  let attempt = 0;
  const pipelines = new Map<string, PipelineDefinition>([
    ['p', { name: 'p', handlers: [{ name: 'h', handler: { kind: 'builtin', name: 'logger' }, params: {} }] }],
  ]);
  const handler = (): Handler => ({
    handleEvents: (events, env) => {
      attempt++;
      journal.push(`handle ${attempt}`);
      return behaviour(attempt, events, env);
    },
    commit: () => {
      journal.push('commit');
      if (o.commitThrows) throw new Error('commit broke');
    },
    rollback: () => void journal.push('rollback'),
  });
  const port: PipelineMetricsPort = {
    batch: (p, k, outcome) => void metrics.push(`batch ${p} ${k} ${outcome}`),
    retried: (p) => void metrics.push(`retried ${p}`),
    duration: (p, outcome) => void metrics.push(`duration ${p} ${outcome}`),
    handler: (h, phase, _s, failed) => void metrics.push(`handler ${h} ${phase}${failed ? ' failed' : ''}`),
    newEvents: (p, n) => void metrics.push(`new ${p} ${n}`),
    databaseError: (op) => void metrics.push(`db ${op}`),
  };
  const worker = new PipelineWorker({
    consumer: {} as Consumer,
    send: async (messages) => {
      for (const m of messages) {
        journal.push(`send ${m.topic}`);
        sent.push(m);
      }
    },
    store,
    batchesTopic: 'batches',
    streamEventsTopic: 'stream-events',
    deadLetterTopic: 'dead-letter',
    pipelines,
    triggers: [verdicts],
    createHandler: handler,
    purgeCompletedStreams: true,
    maxRetries: o.maxRetries ?? 2,
    backoff: { baseMs: 1000, maxMs: 10_000 },
    log: () => {},
    metrics: port,
    random: () => 0.5,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  });
  return { worker, journal, sent, states, completed, metrics, sleeps, running };
}

function payload(r: Rig, values: (string | null)[], stale = false): PipelineBatchPayload {
  return {
    batch: {
      topic: 'batches',
      partition: 0,
      messages: values.map((v, i) => ({
        offset: String(i),
        key: Buffer.from('s1:fire'),
        value: v === null ? null : Buffer.from(v),
      })),
    },
    resolveOffset: (offset: string) => void r.journal.push(`resolve ${offset}`),
    heartbeat: async () => {},
    isRunning: () => r.running.value,
    isStale: () => stale,
    commitOffsetsIfNecessary: async () => void r.journal.push('commit offsets'),
  } as unknown as PipelineBatchPayload;
}

describe('PipelineWorker (in-memory ports)', () => {
  test('success: new events are produced before completion is recorded, the offset only after both', async () => {
    const r = rig((_, events, env) => [...events, { ...ev(`v-${env.batch_id}`, 'widget.verdict') }]);
    await r.worker.handleBatch(payload(r, [encodeBatch(batch())]));
    assert.deepEqual(r.journal, [
      'handle 1',
      'commit',
      'send stream-events',
      'complete',
      'resolve 0',
      'commit offsets',
    ]);
    const record = decodeStreamRecord(String(r.sent[0]?.value));
    assert.equal(record.type === 'event' && record.event.message_id, 'v-s1:fire');
    assert.equal(r.sent[0]?.key, '"verdicts"[["instance_id","t","v"]]');
    assert.deepEqual(r.metrics, [
      'handler h handle',
      'handler h commit',
      'new p 1',
      'duration p completed',
      'batch p fire completed',
    ]);
    assert.equal(r.worker.counts.newEvents, 1);
  });

  test('a commit() error is counted and the batch still completes', async () => {
    const r = rig((_, events) => events, { commitThrows: true });
    await r.worker.handleBatch(payload(r, [encodeBatch(batch())]));
    assert.ok(r.completed.has('s1:fire'));
    assert.ok(r.metrics.includes('handler h commit failed'));
  });

  test('retries wait the jittered backoff, then a failure for good dead-letters before the state moves', async () => {
    const r = rig(() => {
      throw new Error('downstream is down');
    });
    await r.worker.handleBatch(payload(r, [encodeBatch(batch())]));
    // random 0.5: 3/4 of 1 s, then of 2 s, slept in slices of at most 200 ms.
    assert.equal(
      r.sleeps.reduce((a, b) => a + b, 0),
      750 + 1500,
    );
    assert.ok(r.sleeps.every((ms) => ms <= 200));
    assert.deepEqual(
      r.journal.filter((j) => !j.startsWith('handle') && j !== 'rollback'),
      ['send dead-letter', 'move firing→error', 'resolve 0', 'commit offsets'],
    );
    assert.equal(r.journal.filter((j) => j === 'rollback').length, 3);
    assert.equal(r.completed.size, 0, 'completion not recorded');
    assert.equal(r.states.get('s1')?.state, 'error');
    const letter = r.sent[0];
    assert.equal(letter?.headers?.['winchester-reason'], 'pipeline_failed');
    assert.match(letter?.headers?.['winchester-detail'] ?? '', /downstream is down \(after 3 attempts\)/);
    assert.deepEqual(
      r.metrics.filter((m) => !m.startsWith('handler')),
      ['retried p', 'retried p', 'duration p failed', 'batch p fire failed'],
    );
  });

  test('a stop while waiting to retry gives the record back: no dead letter, no state change, not resolved', async () => {
    const r = rig((attempt) => {
      if (attempt === 1) r.running.value = false;
      throw new Error('flaky');
    });
    await r.worker.handleBatch(
      payload(r, [encodeBatch(batch()), encodeBatch(batch({ batchId: 's2:fire' }))]),
    );
    assert.deepEqual(r.journal, ['handle 1', 'rollback']);
    assert.equal(r.states.get('s1')?.state, 'firing');
    assert.deepEqual(r.sent, []);
  });

  test('a stale batch (rebalance) is not touched', async () => {
    const r = rig((_, events) => events);
    await r.worker.handleBatch(payload(r, [encodeBatch(batch())], true));
    assert.deepEqual(r.journal, []);
  });

  test('Postgres unreachable: retried with backoff, counted, then the batch runs', async () => {
    const r = rig((_, events) => events, { outages: 2 });
    await r.worker.handleBatch(payload(r, [encodeBatch(batch())]));
    assert.ok(r.completed.has('s1:fire'));
    assert.deepEqual(
      r.metrics.filter((m) => m.startsWith('db')),
      ['db is_completed', 'db is_completed'],
    );
    assert.equal(r.sleeps.length, 2);
  });

  test('retry_fire is moved to firing with the version checked, then runs; a completed id is skipped', async () => {
    const r = rig((_, events) => events, { state: 'retry_fire' });
    const value = encodeBatch(batch());
    await r.worker.handleBatch(payload(r, [value, value]));
    assert.deepEqual(r.journal.slice(0, 3), ['move retry_fire→firing', 'handle 1', 'commit']);
    assert.equal(r.worker.counts.completed, 1);
    assert.equal(r.worker.counts.skippedDuplicate, 1);
    assert.deepEqual(r.journal.slice(-4), ['resolve 0', 'commit offsets', 'resolve 1', 'commit offsets']);
  });

  test('unreadable records are dead-lettered with their reason and resolved', async () => {
    const r = rig((_, events) => events);
    await r.worker.handleBatch(payload(r, ['not json', null, encodeBatch(batch({ pipeline: null }))]));
    assert.deepEqual(
      r.sent.map((m) => [m.topic, m.headers?.['winchester-reason'], m.headers?.['winchester-offset']]),
      [
        ['dead-letter', 'invalid_batch', '0'],
        ['dead-letter', 'empty_value', '1'],
        ['dead-letter', 'no_pipeline', '2'],
      ],
    );
    assert.equal(r.worker.counts.deadLettered, 3);
    assert.deepEqual(
      r.journal.filter((j) => j.startsWith('resolve')),
      ['resolve 0', 'resolve 1', 'resolve 2'],
    );
  });

  test('a reference whose outbox row is gone: skipped when the batch is complete (pruned), else dead-lettered', async () => {
    const r = rig((_, events) => events);
    r.completed.add('s1:fire');
    const ref = (batchId: string) =>
      encodeBatchReference({
        batchId,
        streamId: batchId.split(':')[0] as string,
        kind: 'fire',
        bytes: 2_000_000,
      });
    await r.worker.handleBatch(payload(r, [ref('s1:fire'), ref('s2:fire')]));
    assert.deepEqual(
      r.sent.map((m) => [m.topic, m.headers?.['winchester-reason'], m.headers?.['winchester-offset']]),
      [['dead-letter', 'missing_reference', '1']],
    );
    assert.equal(r.worker.counts.skippedDuplicate, 1);
    assert.equal(r.worker.counts.deadLettered, 1);
    assert.ok(!r.journal.some((j) => j.startsWith('handle')), 'nothing ran');
    assert.deepEqual(
      r.journal.filter((j) => j.startsWith('resolve')),
      ['resolve 0', 'resolve 1'],
    );
  });
});
